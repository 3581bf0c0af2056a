"""`draw_graph`: the computation graph the engine recorded, grouped by module, as a graphviz Digraph.

The work is split by concept: `trace` reads the engine's graph, `collapse`
decides what is drawn at a depth, `gradients` computes what backward sends
along each edge, `style` gives colours and labels; this module checks the
arguments, picks the depth, and writes the DOT.
"""

from __future__ import annotations

import numpy as np

from . import style
from .collapse import plan
from .gradients import edge_gradients, merged_norm
from .trace import is_data, trace

MAX_NODES = 150


def draw_graph(output, model=None, depth=None, backward=False, *, values=False, collapse=(), max_nodes=MAX_NODES):
    """Draw how `output` was computed: a `graphviz.Digraph` to render with
    `viz.render(g, path, format)` or to show in Jupyter.

    output: a Tensor made by ops (a loss, a layer's output). model: the Module
    the ops ran in, optional; with it, parameters are named by their path
    (`layers.0.self_attn.q_proj.weight`) and clusters by the model's paths even
    when a submodule was called on its own. Without it a parameter is named
    after the module that used it and a number (`layers.0.self_attn.q_proj #1`).

    Ops made inside a module are drawn inside a box (cluster) labelled with the
    module's path and class, nested as the modules nest; a ModuleList
    (`layers`) gets a dashed box, and the per-head ops of an attention call
    (Kᵀ, scores, softmax, Z) a dashed "heads" box. Edges carry tensor shapes;
    the skip input of each residual add is dashed orange.

    depth: None draws every op; k >= 0 draws modules called k levels below the
    root as single boxes (shapes in and out, parameter count). For a Model
    holding embed, pos, encoder (a TransformerEncoder) and head: depth=0 is
    one box for the model, 1 shows embed -> pos -> encoder -> head, 2 opens
    the encoder into layers.0, layers.1, 3 opens each layer into self_attn,
    ffn, norm1, norm2 and the residual adds, 4 opens those into q_proj,
    ..., the heads and the layer norm's ops, 5 (= None) opens the Linear layers.

    collapse: module class names or paths always drawn as one box, whatever
    the depth: collapse=("LayerNorm", "Linear") keeps a layer's attention and
    residuals open while each norm and projection is one box.

    backward: also run the backward pass (without touching `.grad`) and label
    each edge with the norm of the gradient sent back along it; a tensor read
    by several ops gets a Σ node where their gradients are summed. Needs a
    scalar output.

    values: also write on each tensor its data and its gradient (d output /
    d tensor, from a backward walk that leaves `.grad` untouched; only when
    the output is a scalar), as micrograd's draw_dot does for scalars: for
    small graphs, such as one neuron. A tensor of more than 8 numbers shows
    their mean and range instead.

    max_nodes: with depth=None, a graph of more nodes (ops, tensors, boxes)
    is collapsed to the deepest depth that fits, and its label says so;
    max_nodes=None never collapses. The returned graph has `node_count` and
    `depth` (the depth drawn, None for all) attributes.

    Node ids follow the walk order, so the same model and input give the same
    DOT source in every run and process.
    """
    _check(output, model, depth, backward, max_nodes)
    if not isinstance(values, bool):
        raise TypeError(f"draw_graph: values must be True or False, got {values!r}")
    collapse = _names("collapse", collapse)
    traced = trace(output, model)
    chosen = plan(traced, depth, collapse)
    note = ""
    if depth is None and max_nodes is not None and chosen.count > max_nodes:
        full = chosen.count
        for k in range(traced.max_level, -1, -1):
            chosen = plan(traced, k, collapse)
            if chosen.count <= max_nodes:
                break
        fits = "" if chosen.count <= max_nodes else f" (still {chosen.count}: the smallest there is)"
        note = (f"collapsed to depth={chosen.depth}{fits}: the full graph has {full} nodes, "
                f"over max_nodes={max_nodes}; pass depth= or max_nodes=None to choose")
    scalar = output.size == 1 and output.requires_grad
    grads = edge_gradients(traced) if backward or (values and scalar) else None
    if values and not scalar:
        note = "\n".join(filter(None, [note, "values=True: no gradients drawn, the output is not a scalar loss"]))
    shown = (grads[0] if grads is not None else {}) if values else None
    return _emit(traced, chosen, grads if backward else None, _title(traced, chosen, collapse, backward, note), shown)


def _check(output, model, depth, backward, max_nodes):
    from tinygrad_enc import Tensor
    from tinygrad_enc.nn import Module

    if not isinstance(output, Tensor):
        raise TypeError(f"draw_graph: output must be a Tensor made by ops, got {type(output).__name__}")
    if output._ctx is None:
        raise ValueError("draw_graph: this tensor was not made by a recorded op, so there is no graph to "
                         "draw (it is a leaf, was made under no_grad, or none of its inputs requires grad)")
    if backward and output.size != 1:
        raise ValueError(f"draw_graph: backward=True needs a scalar output (a loss) to start the backward "
                         f"pass from, got shape {tuple(output.shape)}; reduce it first, e.g. output.sum()")
    if model is not None and not isinstance(model, Module):
        raise TypeError(f"draw_graph: model must be an nn.Module or None, got {type(model).__name__}")
    for name, value in (("depth", depth), ("max_nodes", max_nodes)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"draw_graph: {name} must be None or an int >= 0, got {value!r}")
        if value < 0:
            raise ValueError(f"draw_graph: {name} must be None or an int >= 0, got {value}")


def _names(what, names) -> tuple:
    """A tuple of strings from one string or an iterable of them."""
    names = (names,) if isinstance(names, str) else tuple(names)
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"draw_graph: {what} must hold module class names or paths (strings), got {names!r}")
    return names


def _title(traced, plan_, collapse, backward, note) -> list[str]:
    roots = [c for c in traced.clusters.values() if c.parent is None]
    what = f"{roots[0].kind}: " if len(roots) == 1 else ""
    boxed = f"; each {', '.join(collapse)} drawn as one box" if collapse else ""
    lines = [f"{what}{'gradient flow (backward)' if backward else 'computation graph'}",
             (f"every op drawn{boxed} (depth=None)" if plan_.depth is None else
              "depth=0: the whole model drawn as one box" if plan_.depth == 0 else
              f"depth={plan_.depth}: modules {plan_.depth} level{'s' if plan_.depth > 1 else ''} below the root "
              f"drawn as boxes{boxed}")]
    if backward:
        lines.append("arrows point the way gradients flow, each labelled with the norm ‖grad‖ it carries")
    if note:
        lines.extend(note.split("\n"))
    return lines


def _cluster_names(traced, keys):
    """A unique DOT name per drawn cluster, readable: cluster_layers.0.self_attn."""
    names, used = {}, {}
    for key in keys:
        c = traced.clusters[key]
        base = "cluster_" + (c.path or c.kind or "root") + (".heads" if c.what == "heads" else "")
        used[base] = used.get(base, 0) + 1
        names[key] = base if used[base] == 1 else f"{base}#{used[base]}"
    return names


def _emit(traced, plan_, grads, title, values=None):
    import graphviz

    from .jupyter import Graph

    clusters = traced.clusters
    g = Graph("computation_graph")
    g.attr(label=style.fitted([(line, False, False) for line in title], style.TITLE_SIZE), labelloc="t",
           fontname=style.FONT, fontsize=str(style.TITLE_SIZE), rankdir="TB", nodesep="0.25", ranksep="0.3",
           newrank="true")
    g.attr("node", fontname=style.FONT, fontsize=str(style.NODE_SIZE), margin="%g,%g" % style.MARGIN, height="0.3")
    g.attr("edge", fontname=style.FONT, fontsize=str(style.EDGE_SIZE), color="#555555", arrowsize="0.7")

    names = _cluster_names(traced, plan_.clusters)
    bodies, tree_depth = {}, {}
    for k in plan_.clusters:
        parent = clusters[k].parent
        tree_depth[k] = tree_depth[parent] + 1 if parent is not None else 0
        bodies[k] = graphviz.Digraph(names[k], graph_attr=style.cluster_attrs(clusters[k], tree_depth[k]))

    statements = [_node(traced, plan_, s, values) for s in plan_.shown.values()]
    marks, specs = _edge_specs(traced, plan_, grads)
    style.legend(g, {role for _, _, role in statements}, any(e.skip for e in plan_.edges), grads is not None,
                 bool(marks))
    for (s, (label, attrs, role)) in zip(plan_.shown.values(), statements):
        (bodies[s.container] if s.container is not None else g).node(s.id, label, **attrs)
    into_modules = {e.src for e in plan_.edges if plan_.shown[e.dst].container is not None
                    or plan_.shown[e.dst].box is not None}
    with g.subgraph() as first:  # the model's inputs on the top row: the picture reads from input to output
        first.attr(rank="min")  # (an input only the loss reads, such as a target, stays beside the loss)
        for s, (_, _, role) in zip(plan_.shown.values(), statements):
            if s.node is not None and is_data(traced.nodes[s.node]) and s.container is None and s.id in into_modules:
                first.node(s.id)
        first.node("legend")
    _weights_on_top(g, bodies, traced, plan_)
    for mark, src in marks:  # a Σ node sits beside the tensor whose gradients it sums
        container = plan_.shown[src].container
        (bodies[container] if container is not None else g).node(mark, **style.SUM)
    for k in sorted(plan_.clusters, key=lambda k: -tree_depth[k]):  # innermost first, so each is complete
        parent = clusters[k].parent
        (bodies[parent] if parent is not None else g).subgraph(bodies[k])
    for src, dst, label, attrs in specs:
        g.edge(src, dst, label, **attrs)
    g.node_count, g.depth = plan_.count, plan_.depth
    return g


def _weights_on_top(g, bodies, traced, plan_):
    """A module's own weights on one row at its top, below the data that comes into the module
    (invisible edges): the picture reads downwards, and the data entering a module comes from
    above it instead of sideways from a module drawn beside it."""
    clusters, shown = traced.clusters, plan_.shown

    def inside(sid, key):
        c = shown[sid].container
        while c is not None and c != key:
            c = clusters[c].parent
        return c == key

    for key, body in bodies.items():
        weights = [sid for sid, s in shown.items() if s.container == key and s.node is not None
                   and traced.nodes[s.node].role in ("parameter", "constant")]
        if not weights:
            continue
        if len(weights) > 1:
            with body.subgraph() as row:
                row.attr(rank="same")
                for sid in weights:
                    row.node(sid)
        arriving = dict.fromkeys(e.src for e in plan_.edges if e.dst != "out" and inside(e.dst, key)
                                 and not inside(e.src, key) and not (shown[e.src].node is not None and
                                 traced.nodes[shown[e.src].node].role in ("parameter", "constant")))
        for src in arriving:
            for sid in weights:
                g.edge(src, sid, style="invis", weight="0")


def _node(traced, plan_, shown, values):
    """(label, attributes, role) of one drawn node; its width fits the label in DejaVu Sans.
    values: None, or node index -> gradient, to write each tensor's data and gradient on it."""
    label, role = _label(traced, plan_, shown, values)
    attrs = style.ROLES[role][1]
    return label, {**attrs, "width": style.node_width(label, attrs["shape"])}, role


def _label(traced, plan_, shown, values):
    """(label, role) of one drawn node."""
    nodes = traced.nodes
    extra = ()
    if values is not None and shown.node is not None and nodes[shown.node].tensor is not None:
        n = nodes[shown.node]
        extra = style.value_lines(n.tensor.data, values.get(n.index), n.tensor.requires_grad)
    if shown.box is not None:
        shapes = [list(dict.fromkeys(nodes[e.tensor].shape for e in plan_.edges if getattr(e, end) == shown.id))
                  for end in ("dst", "src")]
        ops = [nodes[i] for i in plan_.box_ops.get(shown.box, ())]
        return style.box_label(traced.clusters[shown.box], *shapes, *plan_.box_params.get(shown.box, (0, 0)),
                               fused=style.fused_text(ops[0]) if len(ops) == 1 else ""), "module"
    n = nodes[shown.node]
    if shown.id == "out":
        return style.output_label(n.name, n.shape, extra), "output"
    return (style.op_label(n, nodes, extra) if n.role == "op" else style.leaf_label(n, extra)), n.role


def _edge_specs(traced, plan_, grads):
    """([(Σ node id, source id)], [(src, dst, label, attrs)]): each edge labelled
    with its tensor's shape; with gradients also with ‖grad‖, and a Σ node
    wherever the gradients one tensor gets from several ops are summed."""
    nodes = traced.nodes
    if grads is None:
        return [], [(e.src, e.dst, style.edge_text(nodes[e.tensor]), style.SKIP_EDGE if e.skip else {})
                    for e in plan_.edges]
    totals, parts = grads
    top = max((float(np.linalg.norm(a)) for a in totals.values()), default=1.0) or 1.0

    def spec(src, dst, tensor, norm, skip):
        if norm is None:  # an input that needs no gradient: nothing flows back to it
            return src, dst, style.edge_text(nodes[tensor]) + "\\nno grad", style.NO_GRAD_EDGE
        width = 1.0 + 2.5 * (norm / top) ** 0.5
        return (src, dst, style.edge_text(nodes[tensor]) + f"\\n‖grad‖ {norm:.4g}",
                {**style.GRAD_EDGE, **(style.SKIP_EDGE if skip else {}), "penwidth": f"{width:.2f}"})

    fan_out = {}
    for e in plan_.edges:
        fan_out.setdefault((e.src, e.tensor), []).append(e)
    marks, specs = [], []
    for (src, tensor), group in fan_out.items():
        total = float(np.linalg.norm(totals[tensor])) if tensor in totals else None
        if len(group) == 1:
            e = group[0]
            specs.append(spec(src, e.dst, tensor, total if e.dst == "out" else merged_norm(parts, e.pairs), e.skip))
            continue
        mark = f"s{tensor}"
        marks.append((mark, src))
        specs.append(spec(src, mark, tensor, total, False))
        specs.extend(spec(mark, e.dst, tensor, merged_norm(parts, e.pairs), e.skip) for e in group)
    return marks, specs
