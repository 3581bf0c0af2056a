"""The gradients a backward pass sends along each edge of the graph, for `draw_graph(backward=True)`.

`tinygrad_enc.tensor.walk_backward` yields every tensor's complete gradient,
outputs first. The gradient one consumer sends back to one input is that
consumer's op backward applied to its own gradient, summed back to the input's
shape; a tensor read by several ops (x feeding Q, K and V) receives the sum of
those contributions, which is what walk_backward yields for it. Nothing here
touches `.grad`.
"""

from __future__ import annotations

import numpy as np


def edge_gradients(trace) -> tuple[dict, dict]:
    """(totals, parts): totals[node] is the gradient array of a node's tensor;
    parts[(parent, op)] the gradient array op sends back to parent (summed if
    the op reads parent twice). Keys are node indices of `trace`."""
    from tinygrad_enc.tensor import unbroadcast, walk_backward  # imported when drawn: `import viz` stays light

    index = {id(n.tensor): n.index for n in trace.nodes if n.tensor is not None}
    totals, parts = {}, {}
    for tensor, grad in walk_backward(trace.nodes[trace.output].tensor):
        node = index[id(tensor)]
        totals[node] = grad
        ctx = tensor._ctx
        if ctx is None:
            continue
        sent = ctx.backward(grad)
        sent = sent if isinstance(sent, tuple) else (sent,)
        for parent, needs, g in zip(ctx.parents, ctx.needs_grad, sent):
            if needs and g is not None:
                key = (index[id(parent)], node)
                g = unbroadcast(g, parent.shape)
                parts[key] = parts[key] + g if key in parts else g
    return totals, parts


def merged_norm(parts, keys) -> float | None:
    """‖sum of the gradients on `keys`‖: one drawn edge may stand for several
    (parent, op) pairs when the ops sit inside one collapsed module."""
    arrays = [parts[k] for k in dict.fromkeys(keys) if k in parts]  # x * x: one pair, listed twice
    if not arrays:
        return None
    return float(np.linalg.norm(np.sum(arrays, axis=0, dtype=np.float64)))
