"""viz.draw_graph on a real 2-layer, 2-head encoder's loss: clusters, names, depth, gradients, stability."""

import hashlib
import importlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import tinygrad_enc.functional as F
import viz
from tinygrad_enc import Tensor, manual_seed, nn, no_grad

render_mod = importlib.import_module("viz.rendering")
needs_renderer = pytest.mark.skipif(render_mod.find_renderer() is None, reason="no Graphviz renderer")
SVG = "{http://www.w3.org/2000/svg}"
ROOT = Path(__file__).resolve().parents[1]


class Model(nn.Module):
    """Token ids -> embedding -> positions -> 2 encoder layers -> vocabulary logits."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(11, 8)
        self.pos = nn.SinusoidalPositionalEncoding(8, max_len=16)
        self.encoder = nn.TransformerEncoder(2, d_model=8, n_heads=2, d_ff=16, dropout=0.0)
        self.head = nn.Linear(8, 11)

    def forward(self, ids):
        return self.head(self.encoder(self.pos(self.embed(ids))))


IDS, TARGET = np.array([[1, 2, 3, 4, 5]]), np.array([[2, 3, 4, 5, 6]])


def build(seed=0):
    manual_seed(seed)
    model = Model()
    return model, F.cross_entropy(model(IDS), TARGET)


@pytest.fixture(scope="module")
def built():
    return build()


# ----- reading the DOT source back -----------------------------------------------
def parse(source):
    """(clusters, nodes, edges) of a DOT source: clusters {name: enclosing cluster names},
    nodes {id: (label, enclosing cluster or None)}, edges [(src, dst, attribute text)]."""
    clusters, nodes, edges, stack = {}, {}, [], []
    for line in source.splitlines():
        s = line.strip()
        m = re.match(r'subgraph "?(cluster_[^"{]+?)"? \{$', s)
        if m:
            clusters[m.group(1)] = list(stack)
            stack.append(m.group(1))
        elif s == "{":
            stack.append(None)  # an unnamed subgraph (the rank=min row)
        elif s == "}" and stack:
            stack.pop()
        elif re.match(r"^(n\d+|m\d+|s\d+|out) -> ", s):
            src, rest = s.split(" -> ", 1)
            dst, _, attrs = rest.partition(" ")
            edges.append((src, dst, attrs))
        elif re.match(r"^(n\d+|m\d+|s\d+|out) \[", s):
            inside = [c for c in stack if c]
            nodes[s.split(" ", 1)[0]] = (s, inside[-1] if inside else None)
    return clusters, nodes, edges


def cluster_labels(source):
    """The text of every cluster label (a one-cell table sized for DejaVu Sans)."""
    return re.findall(r'label=<<table border="0"[^>]*><tr><td width="\d+">(.*?)</td></tr></table>>', source)


def shape_text(shape):
    return "(" + ", ".join(map(str, shape)) + ")"


def grad_norm(attrs):
    m = re.search(r"‖grad‖ ([-+0-9.e]+)", attrs)
    return float(m.group(1)) if m else None


def ran_ops(model):
    """Module paths whose call made ops (Dropout(0.0) returns its input untouched)."""
    return {path for path, m in model.named_modules() if path and not isinstance(m, nn.Dropout)}


# ----- structure -----------------------------------------------------------------
def test_one_cluster_per_module_path_nested_as_modules_nest(built):
    model, loss = built
    clusters, nodes, _ = parse(viz.draw_graph(loss, model, max_nodes=None).source)
    heads = {f"encoder.layers.{i}.self_attn.heads" for i in range(2)}
    assert set(clusters) == {f"cluster_{p}" for p in ran_ops(model) | heads | {"Model"}}
    # each cluster sits inside the cluster of its dotted parent path (layers.0 inside layers)
    for name, outer in clusters.items():
        path = name[len("cluster_"):]
        if path == "Model":
            assert outer == []
        else:
            parent = path.rsplit(".", 1)[0] if "." in path else "Model"
            assert outer[-1] == f"cluster_{parent}", (name, outer)
    source = viz.draw_graph(loss, model, max_nodes=None).source
    labels = cluster_labels(source)
    assert {"encoder.layers.1.self_attn · MultiHeadAttention", "encoder.layers · ModuleList",
            "encoder.layers.0.self_attn.out_proj · Linear = W^O"} <= set(labels)


def test_every_parameter_node_carries_its_path_and_shape_inside_its_module(built):
    model, loss = built
    _, nodes, _ = parse(viz.draw_graph(loss, model, max_nodes=None).source)
    params = {label: where for label, where in nodes.values() if 'fillcolor="#fff2cc"' in label}
    assert len(params) == len(list(model.named_parameters())) == 1 + 2 * 16 + 2
    for name, p in model.named_parameters():
        found = [(label, where) for label, where in params.items()
                 if f"<{name}<br/>" in label and shape_text(p.shape) in label]
        assert len(found) == 1, name
        assert found[0][1] == f"cluster_{name.rsplit('.', 1)[0]}"


def test_ops_are_named_in_the_papers_terms(built):
    model, loss = built
    source = viz.draw_graph(loss, model, max_nodes=None).source
    for text in ("split Q into heads", "split V into heads", "Kᵀ", "<b>scores = Q·Kᵀ/√d_k</b>",
                 "softmax<br/><b>weights = softmax(scores)</b>", "matmul<br/><b>Z = weights·V</b>",
                 "reshape<br/><b>concat heads</b>", "<b>Q = x·W^Q</b>", "W^O  (8, 8)",
                 "layer_norm<br/>γ · (x − mean) / √(variance + ε) + β",
                 "linear_relu<br/>max(0, x·Wᵀ + b)",
                 "getitem<br/>look up rows", "matmul ×0.5<br/><b>scores = Q·Kᵀ/√d_k</b>",
                 "2 heads, computed side by side"):
        assert text in source, text
    assert "<mul ×" not in source  # the scale is in the scores' product, not an op on Q
    assert source.count("residual: x + sublayer(x)") == 4
    # Z's edge says what it carries, with its per-head shape (B, H, T, d_k)
    assert 'label="Z (1, 2, 5, 4)"' in source


def test_inputs_and_output_are_distinguished(built):
    model, loss = built
    _, nodes, edges = parse(viz.draw_graph(loss, model, depth=1).source)
    ids = [n for n, (label, _) in nodes.items() if "label=<index<br/>(1, 5)>" in label]
    assert len(ids) == 1 and nodes[ids[0]][1] is None  # the token ids feed the embedding, from outside
    assert 'fillcolor="#e8f4f8"' in nodes[ids[0]][0]
    assert "<b>output</b><br/>scalar" in nodes["out"][0] and 'fillcolor="#f8cecc"' in nodes["out"][0]
    assert [e for e in edges if e[1] == "out"]
    assert "legend" in viz.draw_graph(loss, model, depth=1).source


def test_node_count_shrinks_monotonically_as_depth_decreases(built):
    model, loss = built
    counts = []
    for depth in (None, 5, 4, 3, 2, 1, 0):
        g = viz.draw_graph(loss, model, depth=depth, max_nodes=None)
        _, nodes, _ = parse(g.source)
        assert g.node_count == len(nodes), depth  # the attribute counts what the DOT draws
        counts.append(len(nodes))
    assert counts[0] == counts[1]  # depth 5 opens the deepest modules: everything
    assert all(a > b for a, b in zip(counts[1:], counts[2:])), counts


def test_depth_one_shows_the_models_parts_as_boxes(built):
    model, loss = built
    _, nodes, edges = parse(viz.draw_graph(loss, model, depth=1).source)
    boxes = {label.split("<b>")[1].split("</b>")[0]: n for n, (label, _) in nodes.items() if n.startswith("m")}
    assert set(boxes) == {"embed · Embedding", "pos · SinusoidalPositionalEncoding",
                          "encoder · TransformerEncoder", "head · Linear"}
    chain = [(src, dst) for src, dst, _ in edges if src in boxes.values() and dst in boxes.values()]
    names = {v: k.split(" ")[0] for k, v in boxes.items()}
    assert sorted((names[a], names[b]) for a, b in chain) == [("embed", "pos"), ("encoder", "head"),
                                                                  ("pos", "encoder")]
    encoder = nodes[boxes["encoder · TransformerEncoder"]][0]
    assert "(1, 5, 8) → (1, 5, 8)" in encoder and "32 parameters, 1,200 weights" in encoder
    assert not any("weight<br/>" in label for label, _ in nodes.values())  # all inside boxes
    _, nodes0, _ = parse(viz.draw_graph(loss, model, depth=0).source)
    assert sum(n.startswith("m") for n in nodes0) == 1


def test_residual_skip_inputs_are_dashed_where_the_add_is_drawn(built):
    model, loss = built
    for depth, expected in ((None, 4), (3, 4), (2, 0)):
        _, nodes, edges = parse(viz.draw_graph(loss, model, depth=depth, max_nodes=None).source)
        skips = [(src, dst) for src, dst, attrs in edges if "dashed" in attrs]
        assert len(skips) == expected, depth
        for src, dst in skips:
            assert "residual: x + sublayer(x)" in nodes[dst][0]
    # the first residual of layer 0 skips from the positional encoding's add, around self_attn
    _, nodes, edges = parse(viz.draw_graph(loss, model, depth=3).source)
    first = [src for src, dst, attrs in edges if "dashed" in attrs][0]
    assert nodes[first][1] == "cluster_pos"


# ----- stability -----------------------------------------------------------------
def test_dot_is_identical_across_runs_and_processes():
    sources = [viz.draw_graph(loss, model, max_nodes=None).source for model, loss in (build(), build())]
    assert sources[0] == sources[1]
    model, loss = build()
    assert viz.draw_graph(loss, model, backward=True).source == viz.draw_graph(loss, model, backward=True).source
    script = ("import hashlib, sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; import test_viz_graph as t, viz; "
              "m, l = t.build(); print(hashlib.sha256(viz.draw_graph(l, m, backward=True).source.encode()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", script, str(ROOT), str(ROOT / "tests")],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == hashlib.sha256(viz.draw_graph(loss, model, backward=True).source.encode()).hexdigest()
    assert not re.search(r"\d{9,}", sources[0])  # no id() leaked into node names


def test_oversized_graph_collapses_itself_and_says_so(built):
    model, loss = built
    full = viz.draw_graph(loss, model, max_nodes=None).node_count
    assert full > 80
    g = viz.draw_graph(loss, model, max_nodes=80)
    assert g.depth == 4 and g.node_count <= 80
    assert f"collapsed to depth=4: the full graph has {full} nodes, over max_nodes=80" in g.source
    small = viz.draw_graph(loss, model, max_nodes=20)
    assert small.depth == 2 and small.node_count <= 20 and "collapsed to depth=2" in small.source
    assert "collapsed" not in viz.draw_graph(loss, model, depth=5).source  # an explicit depth is obeyed


# ----- gradients -----------------------------------------------------------------
def test_backward_edge_norms_equal_the_real_gradients():
    model, loss = build()
    g = viz.draw_graph(loss, model, backward=True, max_nodes=None)
    loss.backward()
    _, nodes, edges = parse(g.source)
    for name, p in model.named_parameters():
        node = next(n for n, (label, _) in nodes.items() if f"<{name}<br/>" in label)
        [attrs] = [a for src, dst, a in edges if src == node]
        assert grad_norm(attrs) == pytest.approx(np.linalg.norm(p.grad), rel=1e-3), name
        assert "dir=back" in attrs
    assert grad_norm(next(a for _, dst, a in edges if dst == "out")) == pytest.approx(1.0)
    # into a collapsed layer, one edge stands for the four ops that read x (W^Q, W^K, W^V and the
    # residual add): it carries their sum, here the embedding's gradient (distinct ids: same norm)
    _, nodes, edges = parse(viz.draw_graph(loss, model, depth=2, backward=True).source)
    layer0 = next(n for n, (label, _) in nodes.items() if "<b>encoder.layers.0 · " in label)
    [attrs] = [a for src, dst, a in edges if dst == layer0]
    assert grad_norm(attrs) == pytest.approx(np.linalg.norm(model.embed.weight.grad), rel=1e-3)
    target = next(n for n, (label, _) in nodes.items() if "label=<target<br/>(5)>" in label)
    assert "no grad" in next(a for src, _, a in edges if src == target)


def test_fan_out_gradients_meet_in_a_sum_node():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    loss = (x * 2.0).sum() + (x * x).sum() + x.exp().sum()
    g = viz.draw_graph(loss, backward=True)
    loss.backward()
    _, nodes, edges = parse(g.source)
    [mark] = [n for n in nodes if n.startswith("s")]
    [into] = [a for src, dst, a in edges if dst == mark]
    assert grad_norm(into) == pytest.approx(np.linalg.norm(x.grad), rel=1e-3)
    parts = sorted(grad_norm(a) for src, _, a in edges if src == mark)
    expected = sorted(np.linalg.norm(a) for a in (np.full((2, 3), 2.0), 2 * x.data, np.exp(x.data)))
    assert parts == pytest.approx(expected, rel=1e-3)
    assert "gradients from several ops summed" in g.source
    assert x.grad is not None and np.allclose(x.grad, 2 + 2 * x.data + np.exp(x.data), rtol=1e-5)


def test_backward_leaves_grads_alone(built):
    model, loss = built
    model.zero_grad()
    viz.draw_graph(loss, model, backward=True)
    assert all(p.grad is None for p in model.parameters())


# ----- rendering and display -------------------------------------------------------
@needs_renderer
def test_svg_render_holds_the_cluster_titles(built, tmp_path):
    model, loss = built
    g = viz.draw_graph(loss, model, depth=4)
    clusters, _, _ = parse(g.source)
    out = viz.render(g, tmp_path / "encoder", format="svg")
    root = ET.parse(out).getroot()
    titles = {e.findtext(f"{SVG}title") for e in root.iter(f"{SVG}g") if e.get("class") == "cluster"}
    assert titles == set(clusters)
    assert {"cluster_encoder.layers.0.self_attn", "cluster_encoder.layers.1.ffn",
            "cluster_encoder.layers.0.norm2"} <= titles
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert "encoder.layers.1.self_attn · MultiHeadAttention" in texts


@needs_renderer
def test_digraph_shows_itself_in_jupyter_without_system_dot(built):
    import graphviz

    model, loss = built
    g = viz.draw_graph(loss, model, depth=1)
    assert isinstance(g, graphviz.Digraph)
    bundle = g._repr_mimebundle_()
    assert set(bundle) == {"image/svg+xml"}
    assert ET.fromstring(bundle["image/svg+xml"].encode()).tag == f"{SVG}svg"
    assert g._repr_mimebundle_(include=["image/png"]) == {}


def test_jupyter_without_a_renderer_says_how_to_install_one(built, monkeypatch):
    model, loss = built
    monkeypatch.setattr(importlib.import_module("viz.jupyter"), "find_renderer", lambda: None)
    bundle = viz.draw_graph(loss, model, depth=0)._repr_mimebundle_()
    assert "pip install graphviz-pure" in bundle["text/plain"]


# ----- without a model, and submodules ----------------------------------------------
def test_without_a_model_parameters_are_named_after_their_module(built):
    _, loss = built
    source = viz.draw_graph(loss, max_nodes=None).source
    assert "encoder.layers.0.self_attn.q_proj #1<br/>(8, 8)" in source
    assert "encoder.layers.0.self_attn.q_proj #2<br/>(8)" in source
    assert 'subgraph "cluster_encoder.layers.1.ffn"' in source


def test_submodule_called_alone_keeps_the_models_paths(built):
    model, _ = built
    x = Tensor(np.ones((1, 3, 8)))
    out = model.encoder(x).sum()
    with_model = viz.draw_graph(out, model, max_nodes=None).source
    assert 'subgraph "cluster_encoder.layers.0.self_attn"' in with_model
    assert "encoder.layers.0.self_attn.q_proj.weight" in with_model
    alone = viz.draw_graph(out, max_nodes=None).source
    assert 'subgraph "cluster_layers.0.self_attn"' in alone and "cluster_TransformerEncoder" in alone


def test_walk_is_iterative_and_visits_each_node_once():
    x = Tensor(np.ones(3), requires_grad=True)
    y = x
    for _ in range(3000):  # far deeper than Python's recursion limit
        y = y + y * 1e-3   # every node is read twice: a naive walk would visit 2^3000 paths
    g = viz.draw_graph(y.sum(), max_nodes=None)
    _, nodes, edges = parse(g.source)
    assert len(nodes) == 2 * 3000 + 1 + 1 + 1  # ops, the input, the sum, the output
    assert len(edges) == 3 * 3000 + 1 + 1
    z = x.reshape(1, 3)
    for _ in range(1500):  # labels look back along chains too: means of means, transposes of transposes
        z = z.mean(axis=1, keepdims=True)
    for _ in range(1500):
        z = z.T
    assert viz.draw_graph(z.sum(), max_nodes=None).node_count == 1 + 1 + 2 * 1500 + 1500 + 1 + 1


# ----- bad input ---------------------------------------------------------------------
def test_bad_inputs_get_clear_errors(built):
    model, loss = built
    with pytest.raises(TypeError, match="output must be a Tensor"):
        viz.draw_graph(loss.data, model)
    with pytest.raises(ValueError, match="depth must be None or an int >= 0, got -1"):
        viz.draw_graph(loss, model, depth=-1)
    for bad in (1.5, True, "2"):
        with pytest.raises(TypeError, match="depth must be None or an int"):
            viz.draw_graph(loss, model, depth=bad)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        viz.draw_graph(loss, model=dict(model.named_parameters()))
    with pytest.raises(ValueError, match="max_nodes"):
        viz.draw_graph(loss, model, max_nodes=-5)
    with pytest.raises(ValueError, match="no graph to draw"):
        viz.draw_graph(Tensor([1.0, 2.0], requires_grad=True))
    with no_grad():
        plain = model(IDS)
    with pytest.raises(ValueError, match="no graph to draw"):
        viz.draw_graph(plain, model)
    with pytest.raises(ValueError, match=r"backward=True needs a scalar output .* shape \(1, 5, 11\)"):
        viz.draw_graph(model(IDS), model, backward=True)


def test_readme_picture_script_draws_one_encoder_layer(tmp_path):
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        script = importlib.import_module("make_encoder_layer_picture")
    finally:
        sys.path.remove(str(ROOT / "docs"))
    g = script.encoder_layer_graph()
    clusters, nodes, edges = parse(g.source)
    assert set(clusters) == {"cluster_TransformerEncoder", "cluster_layers", "cluster_layers.0",
                             "cluster_layers.0.self_attn", "cluster_layers.0.self_attn.heads", "cluster_layers.0.ffn"}
    boxes = [label for n, (label, _) in nodes.items() if n.startswith("m")]
    assert len(boxes) == 8 and sum("LayerNorm" in b for b in boxes) == 2  # 6 Linear, 2 LayerNorm
    assert sum("dashed" in a for _, _, a in edges) == 2
    assert "each Linear, LayerNorm drawn as one box" in g.source


def test_collapse_draws_named_modules_as_boxes_at_any_depth(built):
    model, loss = built
    g = viz.draw_graph(loss, model, collapse="LayerNorm", max_nodes=None)
    clusters, nodes, _ = parse(g.source)
    assert not any("norm" in c for c in clusters)
    assert sum("LayerNorm</b>" in label for label, _ in nodes.values()) == 4
    by_path = viz.draw_graph(loss, model, collapse=["encoder.layers.1"], max_nodes=None)
    clusters, nodes, _ = parse(by_path.source)
    assert "cluster_encoder.layers.0.ffn" in clusters and not any("layers.1" in c for c in clusters)
    assert by_path.node_count < viz.draw_graph(loss, model, max_nodes=None).node_count
    with pytest.raises(TypeError, match="collapse must hold module class names or paths"):
        viz.draw_graph(loss, model, collapse=[nn.LayerNorm])


def test_labels_come_from_declared_names_never_from_the_shape_of_ops():
    """A hand-written MSE, (d * d).mean(), has the shape of a variance; it is drawn as what it is."""
    y = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    d = y - Tensor(np.ones((2, 3)))
    source = viz.draw_graph((d * d).mean()).source
    for guess in ("variance", "= mean", "x − mean", "residual", "scores"):
        assert guess not in source, guess
    assert "x · x" in source  # d * d reads one tensor twice: that is certain
    centered = y - y.mean(-1, keepdims=True)
    assert "variance" not in viz.draw_graph((centered * centered).mean(-1)).source
    named = y * 2.0
    named.name = "scores"  # a learner's own declaration is taken at its word
    assert "scores = Q·Kᵀ/√d_k" in viz.draw_graph(named.sum()).source


# ----- values=True ---------------------------------------------------------------
def neuron():
    x = Tensor([1.0, -2.0, 0.5])
    w = Tensor([0.3, 0.1, -0.4], requires_grad=True)
    b = Tensor(0.2, requires_grad=True)
    x.name, w.name, b.name = "x", "w", "b"
    return x, w, b, (((w * x).sum() + b).tanh() - 0.5) ** 2


def label_of(nodes, first_line):
    return next(label for label, _ in nodes.values() if f"<b>{first_line}</b><br/>" in label
                or f"[label=<{first_line}<br/>" in label)


def test_values_put_data_and_gradient_on_every_node():
    x, w, b, loss = neuron()
    _, nodes, _ = parse(viz.draw_graph(loss, values=True).source)
    assert w.grad is None  # drawing leaves .grad alone
    loss.backward()
    w_label = label_of(nodes, "w")
    assert "data [ 0.3000,  0.1000, -0.4000]" in w_label and "grad [-0.7927,  1.5854, -0.3964]" in w_label
    np.testing.assert_allclose(w.grad, [-0.7927, 1.5854, -0.3964], atol=1e-4)  # what backward() gives
    assert f"grad {b.grad.item():.4f}" in label_of(nodes, "b")
    assert "grad: none (needs no gradient)" in label_of(nodes, "x")
    tanh = label_of(nodes, "tanh")
    assert "data 0.0997" in tanh and "grad -0.8007" in tanh  # an intermediate's gradient, d loss / d tanh
    assert "data 0.1603" in label_of(nodes, "pow") and "grad 1.0000" in label_of(nodes, "pow")


def test_values_on_a_non_scalar_output_and_on_big_tensors():
    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    g = viz.draw_graph(x * 2.0, values=True)
    assert "values=True: no gradients drawn, the output is not a scalar loss" in g.source
    assert "12 values, mean 5.5, from 0 to 11" in g.source and "grad [" not in g.source
    with pytest.raises(TypeError, match="draw_graph: values must be True or False, got 'yes'"):
        viz.draw_graph(x * 2.0, values="yes")


@needs_renderer
def test_values_say_the_released_scores_were_not_kept():
    """Attention drops its scores' numbers once softmax has them (no backward
    reads them): values=True still draws the scores node, and says so
    instead of writing numbers; the weights next to it have theirs."""
    manual_seed(0)
    mha = nn.MultiHeadAttention(4, 1)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 2, 4)).astype(np.float32), requires_grad=True)
    _, nodes, _ = parse(viz.draw_graph(mha(x).sum(), model=mha, values=True).source)
    scores = [label for label, _ in nodes.values() if "scores = Q·Kᵀ/√d_k" in label]
    weights = [label for label, _ in nodes.values() if "weights = softmax(scores)" in label]
    assert len(scores) == 1 and "data: not kept (no backward reads it)" in scores[0]
    assert "grad [" in scores[0]  # its gradient is computed by the walk all the same
    assert len(weights) == 1 and "data [" in weights[0] and "not kept" not in weights[0]


def test_autograd_basics_draws_its_neuron_with_values(tmp_path):
    sys.path.insert(0, str(ROOT / "demos"))
    import autograd_basics

    result = autograd_basics.main(["--out", str(tmp_path)])
    svg = (tmp_path / "neuron.svg").read_text()
    assert result["paths"] == [str(tmp_path / "neuron.svg"), str(tmp_path / "neuron.png")]
    texts = {" ".join("".join(t.itertext()).split()) for t in ET.fromstring(svg).iter(f"{SVG}text")}
    assert {"tanh", "data 0.1603", "grad [-0.7927, 1.5854, -0.3964]"} <= texts


# ----- the decoder ---------------------------------------------------------------
def test_the_transformer_draws_encoder_decoder_cross_attention_and_the_causal_mask():
    manual_seed(0)
    model = nn.Transformer(12, 12, d_model=8, n_heads=2, num_encoder_layers=2, num_decoder_layers=2,
                           d_ff=16, dropout=0.0, max_len=10)
    loss = F.cross_entropy(model(np.array([[1, 2, 3, 4]]), np.array([[0, 5, 6]])), np.array([[5, 6, 7]]))
    clusters, nodes, edges = parse(viz.draw_graph(loss, model, depth=3).source)
    assert {"cluster_encoder", "cluster_decoder"} <= set(clusters)
    boxes = {label.split("<b>")[1].split(" · ")[0]: n for n, (label, _) in nodes.items() if n.startswith("m")}
    memory = [src for src, dst, _ in edges if dst == boxes["decoder.layers.0.cross_attn"]
              and nodes.get(src, ("", None))[1] == "cluster_encoder.norm"]
    assert len(memory) == 1  # the encoder's output (its final norm) ...
    memory = memory[0]
    for i in range(2):  # ... goes into the cross-attention of every decoder layer
        assert (memory, boxes[f"decoder.layers.{i}.cross_attn"]) in {(s, d) for s, d, _ in edges}
    causal = [n for n, (label, _) in nodes.items() if "causal mask (True = masked)<br/>(3, 3)" in label]
    assert len(causal) == 1  # one named input of masked self-attention, in every decoder layer
    assert {d for s, d, _ in edges if s == causal[0]} == {boxes[f"decoder.layers.{i}.self_attn"] for i in range(2)}


# ----- fused ops say what they compute, also inside a collapsed box ------------------
def test_a_box_that_is_one_fused_op_says_what_it_computes(built):
    model, loss = built
    _, nodes, _ = parse(viz.draw_graph(loss, model, depth=4).source)
    labels = [label for label, _ in nodes.values()]
    linear1 = [t for t in labels if "encoder.layers.0.ffn.linear1 · Linear" in t]
    linear2 = [t for t in labels if "encoder.layers.0.ffn.linear2 · Linear" in t]
    _, nodes, _ = parse(viz.draw_graph(loss, model, depth=3).source)
    norm = [label for label, _ in nodes.values() if "encoder.layers.0.norm1 · LayerNorm" in label]
    assert len(linear1) == len(linear2) == len(norm) == 1
    assert "max(0, x·Wᵀ + b)" in linear1[0] and "max(0" not in linear2[0]  # the relu ran in linear1
    assert "γ · (x − mean) / √(variance + ε) + β" in norm[0]
    # with gelu the relu is not there, and linear1's box says nothing of it
    manual_seed(0)
    ffn = nn.FeedForward(8, 16, activation="gelu")
    out = ffn(Tensor(np.ones((1, 2, 8)), requires_grad=True))
    _, nodes, _ = parse(viz.draw_graph(out, ffn, depth=1).source)
    box = [label for label, _ in nodes.values() if "linear1 · Linear" in label]
    assert len(box) == 1 and "max(0" not in box[0]
    assert any("gelu" in label for label, _ in nodes.values())
