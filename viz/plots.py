"""Pictures of what a Transformer computes: attention weights, positional encodings, training curves.

matplotlib is imported inside the functions that draw with it, so `import viz`
stays light. Figures are built as `matplotlib.figure.Figure` objects, not with
pyplot: nothing is registered in pyplot's global figure list, so nothing stays
open after a function returns, whatever backend the user has selected.
"""

from __future__ import annotations

import math

import numpy as np

from .rendering import FORMATS, output_path, render

DPI = 150
GREY, BLUE = np.array([0xD9, 0xD9, 0xD9]), np.array([0x08, 0x30, 0x6B])  # edge colour at weight 0 and at max


def _array(x) -> np.ndarray:
    """A float ndarray from an ndarray, a nested list, or a Tensor-like object with `.data`."""
    if not isinstance(x, np.ndarray) and hasattr(x, "data"):
        x = x.data
    return np.asarray(x, dtype=np.float64)


MAX_TICKS = 40        # a longer axis labels every k-th position only
SCALES = ("fixed", "figure")


def _attention(weights, fn: str, q_tokens, k_tokens=None) -> tuple[np.ndarray, list[str], list[str]]:
    """Attention weights as (H, T_q, T_k), checked against the tokens, and the tokens as strings.

    weights: (T_q, T_k), (H, T_q, T_k) or (1, H, T_q, T_k). k_tokens=None means
    self-attention: the weights must be square and `q_tokens` names both axes.
    NaN or inf weights, and weights outside [0, 1] (scores, not softmax
    output), are refused: a picture of them would look like attention and be wrong.
    """
    w = _array(weights)
    if w.ndim == 4 and w.shape[0] != 1:
        raise ValueError(f"{fn}: weights {w.shape} hold a batch of {w.shape[0]} sequences; "
                         f"pick one, e.g. weights[0]")
    if w.ndim not in (2, 3, 4):
        raise ValueError(f"{fn}: weights must be (T_q, T_k), (H, T_q, T_k) or (1, H, T_q, T_k); "
                         f"got shape {w.shape}")
    bad = ~np.isfinite(w)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{fn}: {int(bad.sum())} of the {w.size} weights are NaN or inf (the first at index "
                         f"{where}: {w[where]}); the attention that made them is broken: find where with "
                         f"tinygrad_enc.detect_anomaly()")
    if w.size and (w.min() < -1e-6 or w.max() > 1 + 1e-6):
        raise ValueError(f"{fn}: attention weights lie in [0, 1] (each row a softmax), got values from "
                         f"{w.min():.4g} to {w.max():.4g}: are these the scores before softmax?")
    names = ("q_tokens", "k_tokens")
    if k_tokens is None:
        if w.shape[-1] != w.shape[-2]:
            raise ValueError(f"{fn}: self-attention weights must be square (T, T); got shape {w.shape}")
        k_tokens, names = q_tokens, ("tokens", "tokens")
    for what, tokens, size in zip(names, (q_tokens, k_tokens), w.shape[-2:]):
        if isinstance(tokens, str) or not hasattr(tokens, "__len__"):
            raise TypeError(f"{fn}: {what} must be a list of tokens (one per position), "
                            f"got {type(tokens).__name__} {tokens!r}")
        if len(tokens) != size:
            raise ValueError(f"{fn}: {len(tokens)} {what} for weights of shape {w.shape} (need {size})")
    return w.reshape(-1, *w.shape[-2:]), [str(t) for t in q_tokens], [str(t) for t in k_tokens]


def _scale_max(w, fn: str, scale: str) -> float:
    """The weight drawn darkest: 1 ("fixed": pictures compare across layers and
    runs), or the largest weight drawn ("figure": faint patterns show up)."""
    if scale not in SCALES:
        raise ValueError(f"{fn}: scale must be 'fixed' (0 to 1) or 'figure' (0 to the largest weight), "
                         f"got {scale!r}")
    return 1.0 if scale == "fixed" else max(float(w.max(initial=0.0)), 1e-12)


def _sequence(tokens, limit=60) -> str:
    """The input sequence for a title, shortened in the middle when long."""
    text = " ".join(tokens)
    return text if len(text) <= limit else f"{text[:limit // 2 - 2]} … {text[-(limit // 2 - 2):]}"


def _title(what, title, q_tokens, k_tokens) -> str:
    """"layer 0: attention weights" and the sequence(s) the weights are about."""
    head = f"{title}: {what}" if title else what
    if q_tokens == k_tokens:
        return f"{head}\ninput: {_sequence(q_tokens)}"
    return f"{head}\nqueries: {_sequence(q_tokens)}\nkeys: {_sequence(k_tokens)}"


def _ticks(tokens) -> tuple[list[int], list[str]]:
    """Tick positions and `position:token` labels, every k-th one for a long sequence."""
    step = math.ceil(len(tokens) / MAX_TICKS) if tokens else 1
    where = list(range(0, len(tokens), step))
    return where, [f"{i}:{tokens[i]}" for i in where]


def save_figure(fig, path) -> str:
    """Save `fig` in the format of path's extension (png when it has none) and return the path."""
    out, fmt = output_path(path, fig.canvas.get_supported_filetypes(), "png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format=fmt, dpi=DPI, bbox_inches="tight")
    return str(out)


def attention_heatmap(weights, q_tokens, k_tokens, path, *, title=None, scale="fixed") -> str:
    """Draw attention weights as one heatmap per head; return the path written.

    weights: (T_q, T_k), (H, T_q, T_k) or (1, H, T_q, T_k), e.g. a
    MultiHeadAttention's `attn_weights` for one sequence; q_tokens and k_tokens
    the tokens at the query and key positions (the same list for
    self-attention). Row i shows how query token i spreads its attention over
    the key tokens (columns); every row sums to 1. Axes are labelled
    `position:token`, every k-th one when a sequence is longer than 40.
    title: what the weights are, e.g. "layer 0" or "layers.1.self_attn"; the
    figure's title adds the input sequence, each panel's its head.
    scale: "fixed" (default) colours 0 to 1 in every picture, so layers, heads
    and runs compare; "figure" colours 0 to the largest weight drawn. Values
    are written in the cells when the grid is at most 10x10. NaN weights, or
    values outside [0, 1], raise ValueError.
    """
    from matplotlib.figure import Figure

    fn = "attention_heatmap"
    w, q_tokens, k_tokens = _attention(weights, fn, q_tokens, k_tokens)
    vmax = _scale_max(w, fn, scale)
    n_heads, t_q, t_k = w.shape
    cols = min(n_heads, 4)
    rows = math.ceil(n_heads / cols)
    side = min(max(0.45 * max(t_q, t_k) + 1.5, 3.0), 9.0)
    fig = Figure(figsize=(side * cols + 1.0, side * rows + 0.6), layout="constrained")
    fig.suptitle(_title("attention weights", title, q_tokens, k_tokens))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n_heads:]:
        ax.set_axis_off()
    for h, ax in enumerate(axes[:n_heads]):
        image = ax.imshow(w[h], cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"head {h}" if n_heads > 1 else "one head")
        ax.set_xticks(*_ticks(k_tokens), rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(*_ticks(q_tokens))
        ax.set_xlabel("key (position:token)")
        ax.set_ylabel("query (position:token)")
        if t_q <= 10 and t_k <= 10:
            for (i, j), v in np.ndenumerate(w[h]):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if v > 0.6 * vmax else "black")
    label = "attention weight (0 to 1)" if scale == "fixed" else "attention weight (0 to this figure's largest)"
    fig.colorbar(image, ax=axes[:n_heads].tolist(), label=label, shrink=0.8)
    return save_figure(fig, path)


def attention_digraph(weights, tokens, *, title=None, scale="fixed"):
    """Self-attention as message passing on the complete graph of tokens, as a `graphviz.Digraph`
    (shown inline in Jupyter).

    weights: (T, T), (H, T, T) or (1, H, T, T), row i = query token i. Every
    token j sends a message (its value vector) to every token i, and token i
    takes weight[i, j] of it. The complete graph is drawn unrolled, as one
    round of message passing: each token appears twice, as a sender in the
    left column (key, node id `h{head}_k{j}`) and as a receiver in the right
    column (query, `h{head}_q{i}`), labelled "i: token". (Drawn with both ends
    in one row, the T^2 edges of a complete graph overlap into a tangle.) Edge
    j -> i grows wider and darker (light grey -> dark blue) with the weight:
    on the scale 0 to 1 (scale="fixed", the default) or 0 to the largest weight
    drawn (scale="figure"); its tooltip (hover in svg) gives the value. title
    ("layer 1") and the sequence head the picture. Positions are pinned, so
    token order is kept and ids are stable from run to run; heads sit side by
    side, four per row. NaN weights, or values outside [0, 1], raise ValueError.
    """
    from .jupyter import Graph

    fn = "attention_graph"
    w, tokens, _ = _attention(weights, fn, tokens)
    vmax = _scale_max(w, fn, scale)
    n_heads, t, _ = w.shape
    box = 0.1 * max((len(f"{i}: {tok}") for i, tok in enumerate(tokens)), default=1) + 0.4  # node width, inches
    dx, dy = box + 2.5, 0.7  # key column -> query column, token -> next token
    scale_text = "0 to 1" if scale == "fixed" else f"0 to {vmax:.3g}, the largest drawn"
    lines = _title("attention as message passing", title, tokens, tokens) + f"\nedge width: weight, {scale_text}"
    label = lines.replace("\n", "\\n")  # DOT's line break
    g = Graph("attention", graph_attr={"layout": "neato", "fontname": "Helvetica", "label": label,
                                                  "labelloc": "t"},
                         node_attr={"shape": "box", "style": "rounded", "fontname": "Helvetica"},
                         edge_attr={"arrowsize": "0.6"})
    g.centred_labels = False  # plain labels: the renderer already anchors them at their middle
    for h in range(n_heads):
        x0, y0 = (h % 4) * (dx + box + 1.0), -(h // 4) * (dy * t + 1.5)
        with g.subgraph(name=f"head{h}") as c:
            c.node(f"h{h}_title", f"head {h}", shape="plaintext", pos=f"{x0 + dx / 2},{y0 + 1.1}!")
            for side, x, caption in (("k", x0, "key j (sends)"), ("q", x0 + dx, "query i (receives)")):
                c.node(f"h{h}_{side}", caption, shape="plaintext", fontsize="10", pos=f"{x},{y0 + 0.6}!")
                for i, tok in enumerate(tokens):
                    c.node(f"h{h}_{side}{i}", f"{i}: {tok}", pos=f"{x},{y0 - dy * i}!")
            # weakest first, so the strong edges are drawn on top
            for i, j in sorted(np.ndindex(t, t), key=lambda ij: w[h][ij]):
                s = w[h, i, j] / vmax
                colour = "#%02x%02x%02x" % tuple(np.rint(GREY + s * (BLUE - GREY)).astype(int))
                c.edge(f"h{h}_k{j}", f"h{h}_q{i}", penwidth=f"{0.3 + 4.7 * s:.2f}", color=colour,
                       tooltip=f"head {h}: {tokens[j]} -> {tokens[i]}: {w[h, i, j]:.3f}")
    return g


def attention_graph(weights, tokens, path, *, title=None, scale="fixed") -> str:
    """Draw `attention_digraph(weights, tokens, title=, scale=)` to `path` (svg unless it ends in
    .png/.pdf/.dot); return the path."""
    out, fmt = output_path(path, FORMATS, "svg")
    return render(attention_digraph(weights, tokens, title=title, scale=scale), out, format=fmt)


def positional_encoding(pe, path) -> str:
    """Draw a positional-encoding table as a heatmap, positions down, dimensions across; return the path.

    pe: (max_len, d_model), e.g. `SinusoidalPositionalEncoding(...).pe[:50]`.
    A diverging colormap centred on 0 shows the sinusoids' signs: the
    low dimensions change quickly from position to position, the high ones slowly.
    """
    from matplotlib.figure import Figure

    pe = _array(pe)
    if pe.ndim != 2:
        raise ValueError(f"positional_encoding: pe must be 2-D (max_len, d_model); got shape {pe.shape}")
    if not np.isfinite(pe).all():
        raise ValueError(f"positional_encoding: {int((~np.isfinite(pe)).sum())} of the {pe.size} values "
                         "are NaN or inf; the colour scale would be meaningless")
    limit = max(np.abs(pe).max(), 1e-12)
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(pe, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    ax.set_title(f"positional encoding: {pe.shape[0]} positions x {pe.shape[1]} dimensions")
    ax.set_xlabel("dimension i")
    ax.set_ylabel("position")
    fig.colorbar(image, ax=ax, label="value")
    return save_figure(fig, path)


def loss_curve(history, path) -> str:
    """Plot training curves against the step; return the path written.

    history: a list of floats, or a dict name -> list of floats, e.g.
    {"loss": [...], "accuracy": [...]}; each series is plotted against its own
    index (record them at the same steps). Series of similar size (largest
    absolute values within a factor 10) share one panel so they can be compared;
    otherwise each gets its own panel, so a small series is not flattened.
    """
    from matplotlib.figure import Figure

    series = dict(history) if isinstance(history, dict) else {"loss": history}
    series = {name: _array(values).ravel() for name, values in series.items()}
    if not series or any(v.size == 0 for v in series.values()):
        raise ValueError(f"loss_curve: empty history; got series lengths "
                         f"{ {name: v.size for name, v in series.items()} }")
    scales = [np.nanmax(np.abs(v)) for v in series.values()]
    shared = max(scales) <= 10 * max(min(scales), 1e-12)
    panels = 1 if shared else len(series)
    fig = Figure(figsize=(7, 3 + 1.5 * (panels - 1)), layout="constrained")
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False).ravel()
    for k, (name, values) in enumerate(series.items()):
        ax = axes[0 if shared else k]
        ax.plot(np.arange(values.size), values, label=name, marker="." if values.size <= 50 else None)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    if shared and len(series) > 1:
        axes[0].set_ylabel("value")
        axes[0].legend()
    axes[-1].set_xlabel("step")
    return save_figure(fig, path)
