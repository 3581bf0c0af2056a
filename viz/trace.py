"""Read the graph the engine recorded into a plain, ordered description.

`trace(output, model)` walks back from `output` once, iteratively, and returns
a `Trace`: one `Node` per tensor worth drawing (ops, parameters, inputs,
constants; scalar constants are folded into their op's label instead), in
an order where every node comes after its inputs, and the tree of `Cluster`s
(module calls) the ops were made in. Node and cluster numbers come from this
walk order, never from `id()`, so the same model traces the same way in every
process.

The walk follows every op the forward ran with grad enabled, also those
that take no part in backward because none of their inputs requires grad
(a layer norm of an input that does not require grad: the engine keeps such
an op on its output as `_origin`). A leaf an op made under no_grad is drawn
as what it is: made by that op, not recorded, its inputs unknown.

Leaves say what they are: a parameter (by its path), an input, a constant
(a module's buffer), a mask (a dropout mask, an attention mask, "causal"
or "padding" when its values are exactly that pattern), an index. Names come from the
tensors themselves, that is from `tinygrad_enc.names` where the library
declares them, or from the learner.

Clusters are module *calls*: each `nn.Module.__call__` opened a Scope, so a
module called twice gives two clusters. Two kinds of cluster do not run
themselves but help the reader: a ModuleList such as `layers` (never called,
so `layers.0` would otherwise sit straight under the encoder) and, inside a
MultiHeadAttention, the ops that work on all heads at once (B, H, T, .).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tinygrad_enc import names


@dataclass
class Cluster:
    """One box of the drawing: a module call ("scope"), a ModuleList ("list") or the heads ("heads")."""
    key: int
    kind: str            # class name: "MultiHeadAttention", "ModuleList"; "" for heads
    path: str            # dotted module path, "" for the root module
    parent: int | None   # enclosing cluster's key
    level: int           # module calls above this one (the root module is 0); lists and heads add none
    what: str = "scope"  # "scope", "list" or "heads"
    heads: int = 0       # for "heads": how many


@dataclass
class Node:
    """One tensor (or an array an op read, such as token ids or a mask)."""
    index: int
    role: str                      # "op", "parameter", "input", "constant", "mask", "index", "unrecorded"
    shape: tuple
    op: str = ""                   # op name for role "op"
    name: str | None = None        # the library's label ("Q", "scores", "residual") or a parameter's path
    parents: list = field(default_factory=list)  # node indices of the op's inputs, in order
    scalars: list = field(default_factory=list)  # (position, value) of folded scalar inputs
    cluster: int | None = None     # for ops: the cluster the op was made in
    skip: int | None = None        # for a residual add: the parent that is the skip input
    tensor: object = None          # the Tensor (None for array inputs), for backward=True
    note: str = ""                 # what else a leaf is: "requires grad", "causal", "made by softmax under no_grad"
    in_backward: bool = True       # an op whose output takes part in backward (some input requires grad)


@dataclass
class Trace:
    nodes: list
    clusters: dict        # key -> Cluster, keys in order of first appearance
    output: int           # index of the output node
    max_level: int        # deepest module-call level, -1 without modules


class _Tracer:
    def __init__(self, model):
        from tinygrad_enc.nn import Parameter

        self.parameter_type = Parameter
        self.param_paths = {id(p): name for name, p in model.named_parameters()} if model else {}
        self.module_paths = {id(m): (path, type(m).__name__) for path, m in model.named_modules()} if model else {}
        self.buffers = [(name, module._buffers[key]) for name, module, key in model.named_buffers()] if model else []
        self.nodes, self.index, self.clusters, self.scope_keys = [], {}, {}, {}
        self.unnamed = {}  # cluster key -> parameters named so far, without a model

    def add(self, role, shape, **kw):
        node = Node(len(self.nodes), role, tuple(shape), **kw)
        self.nodes.append(node)
        return node

    # ----- clusters --------------------------------------------------------------
    def cluster(self, scope):
        """The key of the cluster of a module call, creating it (and its ancestors) on first sight."""
        chain = []
        while scope is not None and id(scope) not in self.scope_keys:
            chain.append(scope)
            scope = scope.parent
        parent = self.scope_keys[id(scope)] if scope is not None else None
        for s in reversed(chain):
            module = s.module
            path, kind = self.module_paths.get(id(module), (s.path, s.kind)) if module is not None \
                else (s.path, s.kind)
            level = self.clusters[parent].level + 1 if parent is not None else 0
            parent = self._list_clusters(parent, path)
            key = len(self.clusters)
            self.clusters[key] = Cluster(key, kind, path, parent, level)
            self.scope_keys[id(s)] = parent = key
        return parent

    def _list_clusters(self, parent, path):
        """Clusters for the containers between a module and its caller (`layers` between
        `encoder` and `encoder.layers.0`): they hold modules but are never called."""
        if parent is None:
            return None
        outer = self.clusters[parent]
        prefix = f"{outer.path}." if outer.path else ""
        if not path.startswith(prefix):
            return parent
        parts = path[len(prefix):].split(".")
        for i in range(1, len(parts)):
            list_path = prefix + ".".join(parts[:i])
            found = next((c.key for c in self.clusters.values()
                          if c.parent == parent and c.what == "list" and c.path == list_path), None)
            if found is None:
                kind = next((k for p, k in self.module_paths.values() if p == list_path), "")
                found = len(self.clusters)
                self.clusters[found] = Cluster(found, kind, list_path, parent, outer.level, what="list")
            parent = found
        return parent

    # ----- nodes -----------------------------------------------------------------
    def leaf(self, t, consumer):
        """A node for a tensor no op made (or one made under no_grad), or None for a scalar constant."""
        if isinstance(t, self.parameter_type) or id(t) in self.param_paths:
            return self.add("parameter", t.shape, name=self._param_name(t, consumer), tensor=t)
        made_by = getattr(t, "_origin", None)
        if made_by == "detach":
            return self.add("unrecorded", t.shape, name=t.name, tensor=t,
                            note="detached: cut from the graph, what made it not drawn")
        if isinstance(made_by, str):
            return self.add("unrecorded", t.shape, name=t.name, tensor=t,
                            note=f"made by {made_by} under no_grad: not recorded, its inputs not drawn")
        if names.is_dropout_mask(t.name):
            return self.add("mask", t.shape, name=t.name, tensor=t)
        if t.requires_grad:
            return self.add("input", t.shape, name=t.name, tensor=t, note="requires grad")
        if t.data.ndim == 0 and t.name is None:
            return None
        buffer = next((name for name, array in self.buffers if np.shares_memory(t.data, array)), None)
        if buffer is not None:
            return self.add("constant", t.shape, name=buffer, tensor=t)
        return self.add("input", t.shape, name=t.name, tensor=t)

    def _param_name(self, t, consumer):
        """Its path in the model; without a model, the path of the module that used it and a number."""
        if id(t) in self.param_paths:
            return self.param_paths[id(t)]
        scope = made_by(consumer).scope
        key = self.cluster(scope) if scope is not None else None
        count = self.unnamed[key] = self.unnamed.get(key, 0) + 1
        where = (self.clusters[key].path or self.clusters[key].kind) if key is not None else "parameter"
        return f"{where} #{count}"

    def array_inputs(self, op, seen_arrays):
        """Nodes for the arrays an op read beside its tensors (an index, a mask), as the op declares them."""
        found = []
        for attr in op.array_inputs:
            array = getattr(op, attr, None)
            if not isinstance(array, np.ndarray) or array.ndim == 0:
                continue
            if id(array) not in seen_arrays:
                role = "mask" if array.dtype == np.bool_ else "index"
                note = mask_kind(array) if role == "mask" else ""
                seen_arrays[id(array)] = (self.add(role, array.shape, name=attr, note=note), array)
            found.append(seen_arrays[id(array)][0])
        return found


def is_data(node) -> bool:
    """Does this leaf come from outside the model: an input, token ids, a mask the caller
    passed (not a dropout mask, which the model makes)? Such leaves are never folded into a box."""
    return node.role in ("input", "index") or (node.role == "mask" and node.tensor is None)


def made_by(t):
    """The op that made tensor `t`: recorded for backward (`_ctx`), or kept for drawing only
    (`_origin`, when no input required grad); None for a leaf or an op run under no_grad."""
    if t._ctx is not None:
        return t._ctx
    origin = getattr(t, "_origin", None)
    return None if origin is None or isinstance(origin, str) else origin


def mask_kind(mask) -> str:
    """What a boolean (..., T_q, T_k) mask is, read from its values: "causal" (True exactly
    above the diagonal), "padding" (whole key columns True), "causal + padding", or ""."""
    if mask.ndim < 2:
        return ""
    columns = np.broadcast_to(mask.all(axis=-2, keepdims=True), mask.shape)  # keys no query may see
    if mask.shape[-1] == mask.shape[-2]:
        causal = np.triu(np.ones(mask.shape[-2:], dtype=bool), k=1)
        if (mask == causal).all():
            return "causal"
        if columns.any() and (mask == (causal | columns)).all():
            return "causal + padding"
    return "padding" if mask.any() and (mask == columns).all() else ""


def trace(output, model=None) -> Trace:
    """Walk the graph behind `output` (a Tensor made by ops) and describe it; see the module docstring."""
    from tinygrad_enc.tensor import topological_order  # imported when drawn, as in _Tracer

    tracer = _Tracer(model)
    first_consumer = {}
    order = topological_order(output, include_constants=True)  # every op that ran, each after its inputs
    for t in order:  # who reads each leaf first: names unnamed parameters after that module
        op = made_by(t)
        if op is not None:
            for p in op.parents:
                first_consumer.setdefault(id(p), t)
    seen_arrays = {}  # keeps the arrays alive so their ids stay unique while tracing
    for t in order:
        op = made_by(t)
        if op is None:
            node = tracer.leaf(t, first_consumer.get(id(t), t))
            if node is not None:
                tracer.index[id(t)] = node.index
            continue
        extra = tracer.array_inputs(op, seen_arrays)
        node = tracer.add("op", t.shape, op=op.op_name, name=t.name, tensor=t, in_backward=op is t._ctx,
                          cluster=tracer.cluster(op.scope) if op.scope is not None else None)
        for position, p in enumerate(op.parents):
            if id(p) in tracer.index:
                node.parents.append(tracer.index[id(p)])
            else:
                node.scalars.append((position, float(p.data)))
        node.parents.extend(e.index for e in extra)
        if op.op_name == "matmul" and op.scale is not None:  # attention's scores: Q·Kᵀ × 1/√d_k
            node.scalars.append((len(op.parents), op.scale))
        tracer.index[id(t)] = node.index
    nodes = tracer.nodes
    _mark_skips(nodes)
    _add_heads(tracer)
    levels = [c.level for c in tracer.clusters.values()]
    return Trace(nodes, tracer.clusters, tracer.index[id(output)], max(levels, default=-1))


def _ancestors(nodes, start):
    """Indices of every node `start` was computed from (iterative)."""
    found, stack = set(), [start]
    while stack:
        for p in nodes[stack.pop()].parents:
            if p not in found:
                found.add(p)
                stack.append(p)
    return found


def _mark_skips(nodes):
    """For each add the library named a residual (x + sublayer(x)), the skip input
    is the parent the other parent was computed from."""
    for node in nodes:
        if node.op == "add" and node.name == names.RESIDUAL and len(node.parents) == 2:
            a, b = node.parents
            node.skip = a if a in _ancestors(nodes, b) else b if b in _ancestors(nodes, a) else a


def _add_heads(tracer):
    """Inside each MultiHeadAttention call, gather the per-head ops (from the
    split heads to Z: K^T, scores, softmax, weighted sum) into a "heads" cluster."""
    nodes, clusters = tracer.nodes, tracer.clusters
    for z in [n for n in nodes if n.name == names.Z and n.cluster is not None
              and clusters[n.cluster].kind == "MultiHeadAttention"]:
        scope = z.cluster
        members, stack = [], [z.index]
        while stack:
            n = nodes[stack.pop()]
            if n.role != "op" or n.cluster != scope or n.index in members or is_split(nodes, n):
                continue
            members.append(n.index)
            stack.extend(n.parents)
        key = len(clusters)
        outer = clusters[scope]
        clusters[key] = Cluster(key, "", outer.path, scope, outer.level, what="heads",
                                heads=z.shape[-3] if len(z.shape) >= 3 else 1)
        for i in sorted(members):
            nodes[i].cluster = key


def is_split(nodes, node):
    """Is this op part of splitting Q, K or V into heads (the reshape, or the
    permute right after it)?"""
    def reshapes_projection(n):
        return n.op == "reshape" and any(nodes[p].name in names.SPLIT_INTO_HEADS for p in n.parents)

    if node.op == "permute" and node.parents:
        return reshapes_projection(nodes[node.parents[0]])
    return reshapes_projection(node)
