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
    assert {"head 0", "head 1", "query", "key", "attention weight"} <= texts
    assert set(TOKENS) <= texts
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
    widths = edges(viz.attention_digraph(w, TOKENS).source)
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
