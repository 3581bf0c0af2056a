"""The gradients a backward pass sends along each edge of the graph, for `draw_graph(backward=True)`.

`tinygrad_enc.tensor.walk_backward` yields every tensor's complete gradient,
outputs first, and tells `on_edge` of each gradient one consumer sends back to
one input (already summed back to the input's shape); a tensor read by several
ops (x feeding Q, K and V) receives the sum of those contributions, which is
what walk_backward yields for it. This is the engine's own backward pass, run
once; nothing here touches `.grad`.
"""

from __future__ import annotations

import numpy as np


def edge_gradients(trace) -> tuple[dict, dict]:
    """(totals, parts): totals[node] is the gradient array of a node's tensor;
    parts[(parent, op)] the gradient array op sends back to parent (summed if
    the op reads parent twice). Keys are node indices of `trace`."""
    from tinygrad_enc.tensor import walk_backward  # imported when drawn: `import viz` stays light

    index = {id(n.tensor): n.index for n in trace.nodes if n.tensor is not None}
    totals, parts = {}, {}

    def on_edge(parent, consumer, g):  # the engine tells of every gradient it sends
        key = (index[id(parent)], index[id(consumer)])
        parts[key] = parts[key] + g if key in parts else g

    for tensor, grad in walk_backward(trace.nodes[trace.output].tensor, on_edge=on_edge):
        totals[index[id(tensor)]] = grad
    return totals, parts


def merged_norm(parts, keys) -> float | None:
    """‖sum of the gradients on `keys`‖: one drawn edge may stand for several
    (parent, op) pairs when the ops sit inside one collapsed module."""
    arrays = [parts[k] for k in dict.fromkeys(keys) if k in parts]  # x * x: one pair, listed twice
    if not arrays:
        return None
    return float(np.linalg.norm(np.sum(arrays, axis=0, dtype=np.float64)))
