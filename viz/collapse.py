"""Decide what is drawn at a given depth: which clusters open, which modules become one box.

`plan(trace, depth, collapse)` maps every traced node to the thing that
represents it in the picture: itself, or the box of the outermost collapsed
module call that contains it: the one at level `depth` (depth=0: the root
module is one box; depth=None: none), or one whose class name or path is in
`collapse`. Parameters and constants used only inside one box disappear into
it; the box counts them. Edges between things inside one box disappear too;
edges that cross a box's border carry the tensor that crosses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .trace import is_data


@dataclass
class Shown:
    """One drawn node: "n<i>" a traced node, "m<c>" a collapsed cluster, "out" the output."""
    id: str
    container: int | None     # key of the open cluster it is drawn in, None at top level
    node: int | None = None   # traced node index, for "n<i>" and "out"
    box: int | None = None    # cluster key, for "m<c>"


@dataclass
class Edge:
    src: str
    dst: str
    tensor: int                                 # traced node index of the tensor the edge carries
    pairs: list = field(default_factory=list)   # (parent, op) node-index pairs it stands for
    skip: bool = False                          # the skip input of a residual add


@dataclass
class Plan:
    depth: int | None
    shown: dict            # id -> Shown, in drawing order
    edges: list            # Edge, in drawing order
    clusters: list         # keys of the clusters drawn (open and holding something), in trace order
    box_params: dict       # cluster key -> (parameters, weights) absorbed by that box
    box_ops: dict = field(default_factory=dict)  # cluster key -> traced indices of the ops inside it

    @property
    def count(self) -> int:
        """Nodes drawn (ops, tensors, boxes, the output), not counting the legend or Σ marks."""
        return len(self.shown)


def _boxes(clusters, depth, collapse):
    """cluster key -> key of the collapsed cluster it lies in (itself at level == depth,
    or named in `collapse`), or None if open."""
    box = {}
    for key, c in clusters.items():  # parents come before children
        outer = box.get(c.parent) if c.parent is not None else None
        if outer is None and c.what == "scope" and (
                (depth is not None and c.level >= depth) or c.kind in collapse or c.path in collapse):
            outer = key
        box[key] = outer
    return box


def _chain(clusters, key):
    """Cluster keys from the top down to `key`."""
    chain = []
    while key is not None:
        chain.append(key)
        key = clusters[key].parent
    return chain[::-1]


def _common(clusters, keys):
    """The deepest cluster containing every one of `keys` (None = top level)."""
    chains = [_chain(clusters, k) for k in keys]
    common = None
    for level in zip(*chains):
        if len(set(level)) != 1:
            break
        common = level[0]
    return common if all(chains) else None


def plan(trace, depth, collapse=()) -> Plan:
    nodes, clusters = trace.nodes, trace.clusters
    box = _boxes(clusters, depth, frozenset(collapse))
    where = {}  # traced node -> shown id
    for n in nodes:
        if n.role == "op":
            b = box[n.cluster] if n.cluster is not None else None
            where[n.index] = f"m{b}" if b is not None else f"n{n.index}"
    consumers = {}
    for n in nodes:
        for p in n.parents:
            consumers.setdefault(p, []).append(n.index)
    shown, box_params, box_ops = {}, {}, {}
    for n in nodes:
        if n.role == "op" and n.cluster is not None and box[n.cluster] is not None:
            box_ops.setdefault(box[n.cluster], []).append(n.index)
        if n.role == "op" and where[n.index] not in shown:
            b = box[n.cluster] if n.cluster is not None else None
            sid = where[n.index]
            shown[sid] = (Shown(sid, clusters[b].parent, box=b) if b is not None
                          else Shown(sid, n.cluster, node=n.index))
    for n in nodes:
        if n.role == "op":
            continue
        used_by = [where[c] for c in consumers.get(n.index, [])]
        if not is_data(n) and len(set(used_by)) == 1 and used_by[0].startswith("m"):
            where[n.index] = used_by[0]  # used inside one box only: part of it
            if n.role == "parameter":
                key = int(used_by[0][1:])
                count, size = box_params.get(key, (0, 0))
                box_params[key] = (count + 1, size + _size(n.shape))
            continue
        where[n.index] = sid = f"n{n.index}"
        inside = None if is_data(n) else _common(clusters, [shown[u].container for u in used_by])
        shown[sid] = Shown(sid, inside, node=n.index)
    shown = _in_first_use_order(shown, nodes, where)
    shown["out"] = Shown("out", None, node=trace.output)

    edges, by_key = [], {}
    for n in nodes:
        for p in n.parents:
            src, dst = where[p], where[n.index]
            if src == dst:
                continue
            edge = by_key.get((src, dst, p))
            if edge is None:
                edge = by_key[(src, dst, p)] = Edge(src, dst, p)
                edges.append(edge)
            edge.pairs.append((p, n.index))
            edge.skip = edge.skip or (n.skip == p and dst == f"n{n.index}")  # only where the add is drawn
    edges.append(Edge(where[trace.output], "out", trace.output))

    drawn = set()
    for s in shown.values():
        drawn.update(_chain(clusters, s.container) if s.container is not None else ())
    return Plan(depth, shown, edges, [k for k in clusters if k in drawn], box_params, box_ops)


def _in_first_use_order(shown, nodes, where):
    """Leaves are listed just before the first thing that reads them, so a
    parameter is written next to its op (the DOT order steers the layout)."""
    ordered = {}
    for n in nodes:
        if n.role != "op":
            continue
        for p in n.parents:
            sid = where[p]
            if sid in shown and sid not in ordered and shown[sid].box is None and nodes[p].role != "op":
                ordered[sid] = shown[sid]
        sid = where[n.index]
        if sid not in ordered:
            ordered[sid] = shown[sid]
    for sid, s in shown.items():
        ordered.setdefault(sid, s)
    return ordered


def _size(shape) -> int:
    size = 1
    for n in shape:
        size *= n
    return size
