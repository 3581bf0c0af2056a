"""How the computation graph looks: a colour per role, and labels in the paper's terms.

Labels are what a reader maps back to code and to "The Illustrated
Transformer": op names as the engine calls them (`matmul`, `softmax`), the
library's tensor names with the paper's formula (`scores = Q·Kᵀ/√d_k`),
parameters by their module path, and the projections by their symbol (W^Q).
The font is Helvetica, which every renderer has; every label asks for the
width it needs in DejaVu Sans (see `fonts`), so it still fits its box where a
viewer substitutes that wider font. graphviz-pure draws every
character used here (·, ᵀ, √, Σ, →, ×, ÷, ‖); it measures "·" as a space and
says so on stderr, which render() ignores: labels keep their size.
"""

from __future__ import annotations

import html
import math

import numpy as np

from tinygrad_enc import names

from .fonts import text_width
from .trace import is_split

FONT = "Helvetica"
TITLE_SIZE, CLUSTER_SIZE, NODE_SIZE, LEGEND_SIZE, EDGE_SIZE, SMALL = 15, 12, 11, 10, 9, 9  # points
LEGEND_PAD = 4  # the legend table's cellpadding, points
MAX_VALUES = 8  # values=True writes out tensors up to this many elements
MARGIN = (0.1, 0.04)  # a node's margin around its label, inches (x, y)

ROLES = {  # role -> (legend text, node attributes)
    "input": ("input", {"shape": "box", "style": "rounded,filled", "fillcolor": "#d5e8d4", "color": "#5a9e4b"}),
    "parameter": ("parameter (module path)", {"shape": "box", "style": "filled", "fillcolor": "#fff2cc",
                                               "color": "#c9a227"}),
    "constant": ("constant (buffer)", {"shape": "box", "style": "rounded,filled", "fillcolor": "#eeeeee",
                                       "color": "#999999"}),
    "mask": ("mask", {"shape": "box", "style": "rounded,filled", "fillcolor": "#f4e1f0", "color": "#a05195"}),
    "index": ("index (integers)", {"shape": "box", "style": "rounded,filled", "fillcolor": "#e8f4f8",
                                   "color": "#4f8fa3"}),
    "unrecorded": ("made under no_grad or detached: not recorded",
                   {"shape": "box", "style": "rounded,filled,dashed", "fillcolor": "#ffffff", "color": "#c0392b"}),
    "op": ("op", {"shape": "ellipse", "style": "filled", "fillcolor": "#dae8fc", "color": "#6c8ebf"}),
    "module": ("module, collapsed", {"shape": "box3d", "style": "filled", "fillcolor": "#e1d5e7",
                                     "color": "#9673a6"}),
    "output": ("output", {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "#f8cecc",
                          "color": "#b85450"}),
}
SUM = {"shape": "circle", "style": "filled", "fillcolor": "#fce5cd", "color": "#e69138", "fixedsize": "true",
       "width": "0.32", "fontsize": "12", "label": "Σ"}
SKIP_EDGE = {"style": "dashed", "color": "#e69138", "penwidth": "2.2", "fontcolor": "#b45f06"}
GRAD_EDGE = {"color": "#c0392b", "fontcolor": "#a93226", "dir": "back"}
NO_GRAD_EDGE = {"color": "#aaaaaa", "fontcolor": "#888888", "style": "dotted"}  # into inputs that need no gradient
CLUSTER_FILLS = ("#fbfbfb", "#f1f5fb", "#fdf6ec", "#eef7ee", "#f7f0f9")  # one per nesting level, cycling
HEADS_FILL = "#fff9e6"

PAPER = {"q_proj": "W^Q", "k_proj": "W^K", "v_proj": "W^V", "out_proj": "W^O", "linear1": "W_1", "linear2": "W_2"}
NAMED = {  # the names the library declares (tinygrad_enc.names) -> what they are in the paper
    names.Q: "Q = x·W^Q", names.K: "K = x·W^K", names.V: "V = x·W^V",
    names.SCORES: "scores = Q·Kᵀ/√d_k",
    names.WEIGHTS: "weights = softmax(scores)",
    names.Z: "Z = weights·V",
    names.CONCAT: "concat heads",
    names.RESIDUAL: "residual: x + sublayer(x)",
}
LEAF_TITLES = {  # (role, name, note) of the arrays an op reads besides its tensors -> what to call them
    ("mask", "mask", ""): "mask (True = masked)",
    ("mask", "mask", "causal"): "causal mask (True = masked)",
    ("mask", "mask", "padding"): "padding mask (True = masked)",
    ("mask", "mask", "causal + padding"): "causal + padding mask (True = masked)",
}
SCALAR_OPS = {"mul": "×", "add": "+", "sub": "−", "div": "÷", "matmul": "×"}  # matmul: its scale
FUSED = {  # (op, its number of inputs) for one op in the engine: say what it does
    ("layer_norm", 1): "(x − mean) / √(variance + ε)",
    ("layer_norm", 3): "γ · (x − mean) / √(variance + ε) + β",
    ("linear_relu", 2): "max(0, x·Wᵀ)",
    ("linear_relu", 3): "max(0, x·Wᵀ + b)",
}


def shape_text(shape) -> str:
    return "scalar" if len(shape) == 0 else "(" + ", ".join(str(n) for n in shape) + ")"


def edge_text(node) -> str:
    """What an edge carries: the tensor's name, if the library gave it one, and its shape."""
    return f"{node.name} {shape_text(node.shape)}" if node.role == "op" and node.name else shape_text(node.shape)


def paper_symbol(path: str) -> str:
    """W^Q for `...self_attn.q_proj`, "" when the module has no symbol in the paper."""
    return PAPER.get(path.rsplit(".", 1)[-1], "")


class Label(str):
    """An HTML-like graphviz label that knows the width of its widest line in DejaVu Sans (points)."""
    points: float = 0.0


def _lines(lines, size: float) -> Label:
    """Lines given as (text, bold, small) joined into a Label."""
    parts, width = [], 0.0
    for text, bold, small in lines:
        width = max(width, text_width(text, SMALL if small else size, bold))
        text = html.escape(text)
        if bold:
            text = f"<b>{text}</b>"
        if small:
            text = f'<font point-size="{SMALL}">{text}</font>'
        parts.append(text)
    label = Label("<" + "<br/>".join(parts) + ">")
    label.points = width
    return label


def _html(lines) -> Label:
    """A node's label at the node font size."""
    return _lines(lines, NODE_SIZE)


def fitted(lines, size: float) -> str:
    """A label of lines (text, bold, small) for a cluster or the graph's title: one
    cell as wide as its widest line in DejaVu Sans (see `fonts`), so the box
    around it fits whichever sans-serif the viewer has."""
    label = _lines(lines, size)
    return (f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="0"><tr>'
            f'<td width="{math.ceil(label.points)}">{label[1:-1]}</td></tr></table>>')


def node_width(label: Label, shape: str) -> str:
    """The `width` (inches, a minimum) a node needs for its label in DejaVu Sans: the label
    plus the node margin, times √2 for an ellipse (graphviz's rule for the ellipse around a box)."""
    inches = label.points / 72 + 2 * MARGIN[0]
    return f"{inches * (math.sqrt(2) if shape == 'ellipse' else 1):.3f}"


def op_label(node, nodes, extra=()) -> Label:
    """`matmul`, `mul ×0.5`, then what the op computes in the paper's terms, if known."""
    head = node.op
    if len(node.scalars) == 1 and node.op in SCALAR_OPS:
        position, value = node.scalars[0]
        symbol = SCALAR_OPS[node.op]
        head = f"{node.op} {value:.4g}{symbol}·" if position == 0 else f"{node.op} {symbol}{value:.4g}"
    lines = [(head, False, False)]
    note = NAMED.get(node.name) or (f"→ {node.name}" if node.name else _structural_note(node, nodes))
    if note:
        lines.append((note, bool(node.name), False))
    return _html(lines + list(extra))


def _structural_note(node, nodes) -> str:
    """What an unnamed op is, from what it certainly is: a fused op's formula,
    the split of a declared Q, K or V into heads and Kᵀ, a weight's transpose,
    a row lookup, x times itself. Nothing in the paper's terms is guessed from
    the shape of several ops (a hand-written mean of squares is not a
    "variance"); each rule looks one or two ops back, never further."""
    parents = [nodes[p] for p in node.parents]
    if not parents:
        return ""
    fused = fused_text(node)
    if fused:
        return fused
    first = parents[0]
    if is_split(nodes, node):
        return f"split {first.name} into heads" if node.op == "reshape" else "(B, H, T, d_k)"
    if node.op == "permute":
        if first.role == "parameter":
            return "Wᵀ"
        if is_split(nodes, first) and first.op == "permute" and len(node.shape) == 4:
            return "Kᵀ"
        if first.name == names.Z:
            return "(B, T, H, d_k)"
    if node.op == "getitem" and parents[-1].role == "index":
        return "look up rows"
    if node.op == "mul" and len(node.parents) == 2 and node.parents[0] == node.parents[1]:
        return "x · x"
    return ""


def leaf_label(node, extra=()) -> Label:
    """Parameters by path (and symbol), inputs and constants by name, each with its shape."""
    if node.role == "parameter":
        symbol = paper_symbol(node.name.rsplit(".", 1)[0]) if node.name.endswith(".weight") else ""
        return _html([(node.name, False, False), (f"{symbol}  {shape_text(node.shape)}" if symbol
                                                  else shape_text(node.shape), bool(symbol), False), *extra])
    title = LEAF_TITLES.get((node.role, node.name, node.note)) or node.name or node.role
    notes = [(node.note, False, True)] if node.note and node.role in ("input", "unrecorded") else []
    return _html([(title, node.role == "input", False), (shape_text(node.shape), False, False), *notes, *extra])


def output_label(name, shape, extra=()) -> Label:
    return _html([(name or "output", True, False), (shape_text(shape), False, False), *extra])


def _numbers(array) -> list[str]:
    """A small array as text, one line per row; a bigger one by its mean and range."""
    array = np.asarray(array, dtype=np.float64)
    if array.size > MAX_VALUES:
        return [f"{array.size} values, mean {array.mean():.4g}, from {array.min():.4g} to {array.max():.4g}"]
    if array.ndim == 0:
        return [f"{float(array):.4f}"]
    return np.array2string(array, precision=4, separator=", ", suppress_small=True,
                           floatmode="fixed").splitlines()


def value_lines(data, grad, needs_grad: bool) -> list:
    """The lines `draw_graph(values=True)` adds to a node: its data and its
    gradient. A tensor whose values the library released (attention's
    scores: tensor.release) says so instead of showing numbers."""
    if isinstance(data, np.ndarray):
        lines = [(f"data {line}" if k == 0 else f"     {line}", False, True) for k, line in enumerate(_numbers(data))]
    else:
        lines = [("data: not kept (no backward reads it)", False, True)]
    if grad is not None:
        lines += [(f"grad {line}" if k == 0 else f"     {line}", False, True) for k, line in enumerate(_numbers(grad))]
    elif needs_grad is False:
        lines.append(("grad: none (needs no gradient)", False, True))
    return lines


def cluster_label(cluster) -> str:
    """`layers.0.self_attn · MultiHeadAttention`; the root module by its class; heads by their count."""
    if cluster.what == "heads":
        return f"{cluster.heads} heads, computed side by side: (B, H, T, ·)"
    kind = cluster.kind or "container"
    text = f"{cluster.path} · {kind}" if cluster.path else kind
    symbol = paper_symbol(cluster.path) if cluster.what == "scope" else ""
    return f"{text} = {symbol}" if symbol else text


def fused_text(node) -> str:
    """What a fused op computes (`max(0, x·Wᵀ + b)`), "" for any other op."""
    return FUSED.get((node.op, len(node.parents)), "")


def box_label(cluster, inputs, outputs, n_params, n_weights, fused="") -> Label:
    """A collapsed module: its path and class, the shapes in and out, how many weights it
    holds, and, when the box is one fused op, what that op computes (a Linear that also
    applies the relu says so)."""
    lines = [(cluster_label(cluster), True, False),
             (" ".join(map(shape_text, inputs)) + " → " + " ".join(map(shape_text, outputs)), False, False)]
    if fused:
        lines.append((fused, False, False))
    if n_params:
        lines.append((f"{n_params} parameter{'s' if n_params != 1 else ''}, {n_weights:,} weights", False, True))
    return _html(lines)


def cluster_attrs(cluster, depth_in_tree: int) -> dict:
    fill = HEADS_FILL if cluster.what == "heads" else CLUSTER_FILLS[depth_in_tree % len(CLUSTER_FILLS)]
    style = "rounded,filled,dashed" if cluster.what != "scope" else "rounded,filled"
    return {"label": fitted([(cluster_label(cluster), False, False)], CLUSTER_SIZE), "style": style,
            "fillcolor": fill, "color": "#7f7f7f", "fontname": FONT, "fontsize": str(CLUSTER_SIZE),
            "labeljust": "l", "margin": "10"}


def _cell(text, attrs="", bold=False, size=LEGEND_SIZE) -> str:
    """One legend cell, wide enough for `text` in DejaVu Sans."""
    width = math.ceil(text_width(text, size, bold)) + 2 * LEGEND_PAD + 2
    text = f"<b>{html.escape(text)}</b>" if bold else html.escape(text)
    return f'<td width="{width}"{attrs}>{text}</td>'


def legend(graph, roles, skip: bool, backward: bool, sums: bool) -> None:
    """One table node naming each colour drawn, and each special edge."""
    cells = []
    for role, (text, attrs) in ROLES.items():
        if role in roles:
            rounded = ' style="rounded"' if "rounded" in attrs["style"] or role == "op" else ""
            cells.append(_cell(text, f' colspan="2" bgcolor="{attrs["fillcolor"]}" color="{attrs["color"]}"{rounded}'))
    rows = [f"<tr>{cell}</tr>" for cell in cells]
    for flag, attrs, glyph, text in ((skip, SKIP_EDGE, "- - -", "residual: the skip input"),
                                     (backward, GRAD_EDGE, "——", "gradient, labelled ‖grad‖")):
        if flag:
            rows.append(f'<tr><td border="0"><font color="{attrs["color"]}" point-size="14"><b>{glyph}</b></font></td>'
                        + _cell(text, ' border="0" align="left"') + '</tr>')
    if sums:
        rows.append(f'<tr><td border="0"><font color="{SUM["color"]}"><b>Σ</b></font></td>'
                    + _cell("gradients from several ops summed", ' border="0" align="left"') + '</tr>')
    table = (f'<<table border="0" cellborder="1" cellspacing="3" cellpadding="{LEGEND_PAD}">'
             '<tr>' + _cell("legend", ' colspan="2" border="0"', bold=True) + '</tr>' + "".join(rows) + "</table>>")
    graph.node("legend", table, shape="plaintext", fontname=FONT, fontsize=str(LEGEND_SIZE))
