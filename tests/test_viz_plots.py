"""viz plots: attention heatmap and graph, positional encoding, loss curve."""

import importlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import viz

needs_renderer = pytest.mark.skipif(importlib.import_module("viz.rendering").find_renderer() is None,
                                    reason="no Graphviz renderer")
PNG, PDF = b"\x89PNG\r\n\x1a\n", b"%PDF"
TOKENS = ["The", "animal", "didn't", "cross"]


def softmax_rows(shape, seed=0):
    x = np.random.default_rng(seed).normal(size=shape) * 2
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def svg_texts(path):
    """Every text string in a matplotlib svg saved with real text (svg.fonttype 'none')."""
    root = ET.parse(path).getroot()
    return {"".join(t.itertext()).strip() for t in root.iter("{http://www.w3.org/2000/svg}text")}


def magic(path):
    data = Path(path).read_bytes()
    assert len(data) > 1000
    return data[:8]


def test_heatmap_panels_tokens_and_values(tmp_path):
    w = softmax_rows((1, 2, 3, 4))
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        out = viz.attention_heatmap(w, TOKENS[:3], TOKENS, tmp_path / "attn.svg")
    assert out == str(tmp_path / "attn.svg")
    texts = svg_texts(out)
    assert {"head 0", "head 1", "query (position:token)", "key (position:token)",
            "attention weight (0 to 1)"} <= texts
    assert {"0:The", "1:animal", "2:didn't", "3:cross"} <= texts and "3:cross" in texts
    assert f"{w[0, 1, 2, 3]:.2f}" in texts  # small grid: every value is written in its cell
    assert "head 2" not in texts


def test_heatmap_accepts_2d_tensor_like_and_defaults_to_png(tmp_path):
    class TensorLike:
        data = softmax_rows((4, 4))

    out = viz.attention_heatmap(TensorLike(), TOKENS, TOKENS, tmp_path / "deep" / "attn")
    assert out.endswith("attn.png") and magic(out) == PNG


def test_heatmap_large_grid_has_no_cell_values(tmp_path):
    tokens = [f"t{i}" for i in range(12)]
    w = softmax_rows((12, 12))
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        texts = svg_texts(viz.attention_heatmap(w, tokens, tokens, tmp_path / "big.svg"))
    assert not any(re.fullmatch(r"0\.\d\d", t) for t in texts)


@pytest.mark.parametrize("shape, q, k, match", [
    ((4,), 4, 4, r"attention_heatmap: .*got shape \(4,\)"),
    ((1, 1, 1, 4, 4), 4, 4, r"attention_heatmap: .*got shape \(1, 1, 1, 4, 4\)"),
    ((2, 1, 4, 4), 4, 4, r"attention_heatmap: weights \(2, 1, 4, 4\) hold a batch of 2 .*weights\[0\]"),
    ((2, 3, 4), 2, 4, r"attention_heatmap: 2 q_tokens for weights of shape \(2, 3, 4\) \(need 3\)"),
    ((3, 4), 3, 5, r"attention_heatmap: 5 k_tokens for weights of shape \(3, 4\) \(need 4\)"),
])
def test_heatmap_bad_inputs(tmp_path, shape, q, k, match):
    with pytest.raises(ValueError, match=match):
        viz.attention_heatmap(np.ones(shape), ["a"] * q, ["b"] * k, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def edges(dot_source):
    """(key j, query i, head h) -> penwidth for every drawn edge."""
    pattern = r"h(\d+)_k(\d+) -> h\1_q(\d+) \[[^\]]*penwidth=([\d.]+)"
    return {(int(h), int(j), int(i)): float(p) for h, j, i, p in re.findall(pattern, dot_source)}


def test_attention_digraph_is_complete_with_width_monotone_in_weight():
    w = softmax_rows((1, 2, 4, 4))
    widths = edges(viz.attention_digraph(w, TOKENS, scale="figure").source)
    assert len(widths) == 2 * 4 * 4  # T*T edges per head
    pairs = sorted((w[0, h, i, j], widths[h, j, i]) for h, j, i in widths)
    assert all(a[1] <= b[1] for a, b in zip(pairs, pairs[1:]))
    assert pairs[-1][1] == pytest.approx(5.0) and pairs[0][1] < 1.0


def test_attention_digraph_labels_ids_and_determinism():
    w = softmax_rows((4, 4))
    source = viz.attention_digraph(w, TOKENS).source
    assert len(edges(source)) == 16
    for i, tok in enumerate(TOKENS):
        assert re.search(rf'h0_k{i} \[label="{i}: {tok}"', source)
        assert re.search(rf'h0_q{i} \[label="{i}: {tok}"', source)
    assert "head 0" in source and "h1_" not in source
    assert source == viz.attention_digraph(w.copy(), list(TOKENS)).source


@pytest.mark.parametrize("shape, n_tokens, match", [
    ((3, 4), 3, r"attention_graph: .*square.*got shape \(3, 4\)"),
    ((4,), 4, r"attention_graph: .*got shape \(4,\)"),
    ((1, 2, 4, 4), 3, r"attention_graph: 3 tokens for weights of shape \(1, 2, 4, 4\) \(need 4\)"),
])
def test_attention_graph_bad_inputs(tmp_path, shape, n_tokens, match):
    with pytest.raises(ValueError, match=match):
        viz.attention_graph(np.ones(shape), ["a"] * n_tokens, tmp_path / "g")


@needs_renderer
def test_attention_graph_renders_svg_by_default_and_png_on_request(tmp_path):
    w = softmax_rows((2, 4, 4))
    svg = viz.attention_graph(w, TOKENS, tmp_path / "graph")
    assert svg.endswith("graph.svg")
    root = ET.parse(svg).getroot()
    titles = {t.text for t in root.iter("{http://www.w3.org/2000/svg}title")}
    assert {"h0_k3->h0_q0", "h1_k0->h1_q3", "h1_q3"} <= titles
    png = viz.attention_graph(w, TOKENS, tmp_path / "graph.png")
    assert png.endswith("graph.png") and magic(png) == PNG


def test_positional_encoding(tmp_path):
    pos = np.arange(20)[:, None]
    i = np.arange(16)[None, :]
    pe = np.where(i % 2 == 0, np.sin(pos / 10000 ** (i / 16)), np.cos(pos / 10000 ** ((i - 1) / 16)))
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        texts = svg_texts(viz.positional_encoding(pe, tmp_path / "pe.svg"))
    assert {"position", "dimension i", "positional encoding: 20 positions x 16 dimensions"} <= texts
    assert magic(viz.positional_encoding(pe, tmp_path / "pe.pdf"))[:4] == PDF
    with pytest.raises(ValueError, match=r"positional_encoding: .*\(max_len, d_model\).*\(2, 3, 4\)"):
        viz.positional_encoding(np.zeros((2, 3, 4)), tmp_path / "bad.png")


def test_loss_curve_list_and_shared_panel(tmp_path):
    out = viz.loss_curve([2.0, 1.5, 1.1, 0.9], tmp_path / "loss")
    assert out.endswith("loss.png") and magic(out) == PNG
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        texts = svg_texts(viz.loss_curve({"train": [2.0, 1.0], "val": [2.2, 1.4]}, tmp_path / "tv.svg"))
    assert {"step", "train", "val", "value"} <= texts  # one panel, with a legend


def test_loss_curve_different_scales_get_own_panels(tmp_path):
    history = {"loss": [900.0, 400.0, 100.0], "accuracy": [0.1, 0.5, 0.9]}
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        texts = svg_texts(viz.loss_curve(history, tmp_path / "la.svg"))
    assert {"step", "loss", "accuracy"} <= texts and "value" not in texts


@pytest.mark.parametrize("history", [[], {}, {"loss": [1.0], "acc": []}])
def test_loss_curve_empty_history(tmp_path, history):
    with pytest.raises(ValueError, match="loss_curve: empty history"):
        viz.loss_curve(history, tmp_path / "x.png")


def test_heatmap_title_names_what_and_the_sequence(tmp_path):
    w = softmax_rows((2, 4, 4))
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        texts = svg_texts(viz.attention_heatmap(w, TOKENS, TOKENS, tmp_path / "a.svg", title="layer 1"))
    assert {"layer 1: attention weights", "input: The animal didn't cross"} <= {
        line for t in texts for line in t.split("\n")}
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        texts = svg_texts(viz.attention_heatmap(w[0, :2], TOKENS[:2], TOKENS, tmp_path / "c.svg"))
    assert {"queries: The animal", "keys: The animal didn't cross", "one head"} <= {
        line for t in texts for line in t.split("\n")}


def colour_limits(monkeypatch):
    """The (vmin, vmax) each imshow of the next heatmap is drawn with."""
    from matplotlib.axes import Axes

    limits, imshow = [], Axes.imshow

    def spy(self, *args, **kw):
        limits.append((kw["vmin"], kw["vmax"]))
        return imshow(self, *args, **kw)

    monkeypatch.setattr(Axes, "imshow", spy)
    return limits


def test_heatmap_scale_fixed_by_default_or_per_figure(tmp_path, monkeypatch):
    w = softmax_rows((2, 4, 4)) * 0.5
    limits = colour_limits(monkeypatch)
    viz.attention_heatmap(w, TOKENS, TOKENS, tmp_path / "a.png")
    viz.attention_heatmap(w, TOKENS, TOKENS, tmp_path / "b.png", scale="figure")
    assert limits == [(0.0, 1.0)] * 2 + [(0.0, pytest.approx(w.max()))] * 2
    with pytest.raises(ValueError, match="attention_heatmap: scale must be 'fixed'.*'figure'.*got 'auto'"):
        viz.attention_heatmap(w, TOKENS, TOKENS, tmp_path / "c.png", scale="auto")


def test_attention_digraph_fixed_scale_keeps_weights_absolute():
    w = softmax_rows((4, 4)) * 0.5  # every weight below 0.5: no edge may be drawn as strong as weight 1
    widths = edges(viz.attention_digraph(w, TOKENS).source)
    for (h, j, i), width in widths.items():
        assert width == pytest.approx(0.3 + 4.7 * w[i, j], abs=0.006)


def test_long_sequences_get_thinned_ticks(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    ticks, set_xticks = [], Axes.set_xticks
    monkeypatch.setattr(Axes, "set_xticks", lambda self, where, labels=None, **kw:
                        ticks.append(list(labels)) or set_xticks(self, where, labels, **kw))
    tokens = [f"t{i}" for i in range(1000)]
    viz.attention_heatmap(np.full((1000, 1000), 1e-3), tokens, tokens, tmp_path / "long.png")
    assert len(ticks[0]) == 40 and ticks[0][:2] == ["0:t0", "25:t25"]


@pytest.mark.parametrize("fn", ["attention_heatmap", "attention_graph"])
@pytest.mark.parametrize("bad, match", [
    (np.nan, r"1 of the 16 weights are NaN or inf \(the first at index \(1, 2\): nan\)"),
    (np.inf, r"1 of the 16 weights are NaN or inf"),
    (3.5, r"attention weights lie in \[0, 1\].*to 3.5: are these the scores before softmax"),
    (-0.2, r"attention weights lie in \[0, 1\].*from -0.2"),
])
def test_nan_or_out_of_range_weights_are_refused(tmp_path, fn, bad, match):
    w = softmax_rows((4, 4))
    w[1, 2] = bad
    args = (TOKENS, TOKENS) if fn == "attention_heatmap" else (TOKENS,)
    with pytest.raises(ValueError, match=f"{fn}: {match}"):
        getattr(viz, fn)(w, *args, tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("tokens", ["The animal", 4])
def test_tokens_must_be_a_list(tmp_path, tokens):
    with pytest.raises(TypeError, match="attention_heatmap: q_tokens must be a list of tokens"):
        viz.attention_heatmap(softmax_rows((4, 4)), tokens, TOKENS, tmp_path / "x.png")
