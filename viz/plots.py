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


def _attention(weights, fn: str, q_tokens, k_tokens=None) -> tuple[np.ndarray, list[str], list[str]]:
    """Attention weights as (H, T_q, T_k), checked against the tokens, and the tokens as strings.

    weights: (T_q, T_k), (H, T_q, T_k) or (1, H, T_q, T_k). k_tokens=None means
    self-attention: the weights must be square and `q_tokens` names both axes.
    """
    w = _array(weights)
    if w.ndim == 4 and w.shape[0] != 1:
        raise ValueError(f"{fn}: weights {w.shape} hold a batch of {w.shape[0]} sequences; "
                         f"pick one, e.g. weights[0]")
    if w.ndim not in (2, 3, 4):
        raise ValueError(f"{fn}: weights must be (T_q, T_k), (H, T_q, T_k) or (1, H, T_q, T_k); "
                         f"got shape {w.shape}")
    names = ("q_tokens", "k_tokens")
    if k_tokens is None:
        if w.shape[-1] != w.shape[-2]:
            raise ValueError(f"{fn}: self-attention weights must be square (T, T); got shape {w.shape}")
        k_tokens, names = q_tokens, ("tokens", "tokens")
    for what, tokens, size in zip(names, (q_tokens, k_tokens), w.shape[-2:]):
        if len(tokens) != size:
            raise ValueError(f"{fn}: {len(tokens)} {what} for weights of shape {w.shape} (need {size})")
    return w.reshape(-1, *w.shape[-2:]), [str(t) for t in q_tokens], [str(t) for t in k_tokens]


def save_figure(fig, path) -> str:
    """Save `fig` in the format of path's extension (png when it has none) and return the path."""
    out, fmt = output_path(path, fig.canvas.get_supported_filetypes(), "png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format=fmt, dpi=DPI, bbox_inches="tight")
    return str(out)


def attention_heatmap(weights, q_tokens, k_tokens, path) -> str:
    """Draw attention weights as one heatmap per head; return the path written.

    weights: (T_q, T_k), (H, T_q, T_k) or (1, H, T_q, T_k), e.g. a
    MultiHeadAttention's `attn_weights` for one sequence. Row i shows how query
    token i spreads its attention over the key tokens (columns); every row sums
    to 1. All heads share one colour scale (0 to the largest weight) so they can
    be compared; values are written in the cells when the grid is at most 10x10.
    """
    from matplotlib.figure import Figure

    w, q_tokens, k_tokens = _attention(weights, "attention_heatmap", q_tokens, k_tokens)
    n_heads, t_q, t_k = w.shape
    cols = min(n_heads, 4)
    rows = math.ceil(n_heads / cols)
    side = min(max(0.45 * max(t_q, t_k) + 1.5, 3.0), 9.0)
    fig = Figure(figsize=(side * cols + 1.0, side * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    vmax = max(w.max(), 1e-12)
    for ax in axes[n_heads:]:
        ax.set_axis_off()
    for h, ax in enumerate(axes[:n_heads]):
        image = ax.imshow(w[h], cmap="Blues", vmin=0.0, vmax=vmax)
        ax.set_title(f"head {h}")
        ax.set_xticks(range(t_k), k_tokens, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(t_q), q_tokens)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        if t_q <= 10 and t_k <= 10:
            for (i, j), v in np.ndenumerate(w[h]):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if v > 0.6 * vmax else "black")
    fig.colorbar(image, ax=axes[:n_heads].tolist(), label="attention weight", shrink=0.8)
    return save_figure(fig, path)


def attention_digraph(weights, tokens):
    """Self-attention as message passing on the complete graph of tokens, as a `graphviz.Digraph`.

    weights: (T, T), (H, T, T) or (1, H, T, T), row i = query token i. Every
    token j sends a message (its value vector) to every token i, and token i
    takes weight[i, j] of it. The complete graph is drawn unrolled, as one
    round of message passing: each token appears twice, as a sender in the
    left column (key, node id `h{head}_k{j}`) and as a receiver in the right
    column (query, `h{head}_q{i}`), labelled "i: token". (Drawn with both ends
    in one row, the T^2 edges of a complete graph overlap into a tangle.) Edge
    j -> i grows wider and darker (light grey -> dark blue) with the weight,
    scaled by the largest weight of all heads; its tooltip (hover in svg) gives
    the value. Positions are pinned, so token order is kept and ids are stable
    from run to run; heads sit side by side, four per row.
    """
    import graphviz

    w, tokens, _ = _attention(weights, "attention_graph", tokens)
    n_heads, t, _ = w.shape
    vmax = max(w.max(), 1e-12)
    box = 0.1 * max(len(f"{i}: {tok}") for i, tok in enumerate(tokens)) + 0.4  # node width, inches
    dx, dy = box + 2.5, 0.7  # key column -> query column, token -> next token
    g = graphviz.Digraph("attention", graph_attr={"layout": "neato", "fontname": "Helvetica"},
                         node_attr={"shape": "box", "style": "rounded", "fontname": "Helvetica"},
                         edge_attr={"arrowsize": "0.6"})
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


def attention_graph(weights, tokens, path) -> str:
    """Draw `attention_digraph(weights, tokens)` to `path` (svg unless it ends in .png/.pdf/.dot); return the path."""
    out, fmt = output_path(path, FORMATS, "svg")
    return render(attention_digraph(weights, tokens), out, format=fmt)


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
