"""A drawing at full depth shows every op the forward ran, each once, with its real inputs.

The ops a forward runs are counted independently of viz, by the engine's
observer hook (`tinygrad_enc.tensor.add_observer`, the one the profiler
uses): every op object whose forward ran. The drawing must hold exactly these
ops, one node each (compared by identity and by name), each with an edge from
every input it read; and its leaves must say what they are.
"""

import re
from collections import Counter

import numpy as np
import pytest

import tinygrad_enc.functional as F
import viz
from tinygrad_enc import Tensor, manual_seed, nn, no_grad
from tinygrad_enc.tensor import add_observer, remove_observer
from viz.trace import made_by, trace


def executed(forward):
    """(output of forward(), [every op object whose forward ran, in order])."""
    ops = []

    def observer(phase, op, seconds, result):
        if phase == "forward":
            ops.append(op)

    add_observer(observer)
    try:
        out = forward()
    finally:
        remove_observer(observer)
    return out, ops


def rng(seed=0):
    return np.random.default_rng(seed)


def encoder_layer(norm_first, training, input_grad):
    def build():
        manual_seed(0)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, norm_first=norm_first).train(training)
        x = Tensor(rng().standard_normal((2, 3, 8)), requires_grad=input_grad)
        x.name = "x"
        return layer, lambda: layer(x).sum()
    return build


def mse_loss():
    manual_seed(0)
    model = nn.Linear(4, 2)
    x, t = Tensor(rng().standard_normal((5, 4))), Tensor(rng(1).standard_normal((5, 2)))

    def forward():
        d = model(x) - t
        return (d * d).mean()
    return model, forward


def hand_written_attention():
    q, k, v = (Tensor(rng(s).standard_normal((3, 4)), requires_grad=True) for s in range(3))
    return None, lambda: (F.softmax(q @ k.T / 2.0, axis=-1) @ v).sum()


def encoder_stack_with_masks():
    manual_seed(0)
    encoder = nn.TransformerEncoder(2, 8, 2, 16, dropout=0.1, norm_first=True, final_norm=True).train()
    x = Tensor(rng().standard_normal((2, 4, 8)))
    padding = np.array([[False] * 4, [False, False, True, True]])
    return encoder, lambda: encoder(x, mask=nn.causal_mask(4), key_padding_mask=padding).sum()


class TokenModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(11, 8)
        self.pos = nn.SinusoidalPositionalEncoding(8, max_len=16)
        self.encoder = nn.TransformerEncoder(1, 8, 2, 16, dropout=0.0)
        self.head = nn.Linear(8, 11)

    def forward(self, ids):
        return self.head(self.encoder(self.pos(self.embed(ids))))


def token_model_cross_entropy():
    manual_seed(0)
    model = TokenModel()
    ids, target = np.array([[1, 2, 3, 4, 5]]), np.array([[2, 3, 4, 5, 6]])
    return model, lambda: F.cross_entropy(model(ids), target)


def cross_attention():
    manual_seed(0)
    attn = nn.MultiHeadAttention(8, 2)
    query, memory = Tensor(rng().standard_normal((1, 2, 8))), Tensor(rng(1).standard_normal((1, 5, 8)))
    return attn, lambda: attn(query, memory, key_padding_mask=np.array([[False] * 4 + [True]])).sum()


def gelu_feed_forward_learned_positions():
    manual_seed(0)
    model = nn.ModuleList([nn.LearnedPositionalEmbedding(6, 8), nn.FeedForward(8, 16, activation="gelu"),
                           nn.LayerNorm(8)])
    x = Tensor(rng().standard_normal((1, 6, 8)))
    return model, lambda: model[2](model[1](model[0](x))).mean()


def transformer_training():
    manual_seed(0)
    model = nn.Transformer(12, 12, d_model=8, n_heads=2, num_encoder_layers=1, num_decoder_layers=2, d_ff=16,
                           dropout=0.1, norm_first=True, max_len=10).train()
    src, tgt = np.array([[1, 2, 3, 4], [4, 3, 0, 0]]), np.array([[0, 5, 6], [0, 7, 0]])
    return model, lambda: F.cross_entropy(model(src, tgt, src_key_padding_mask=src == 0), np.array([[5, 6, 7],
                                                                                                     [7, 1, 1]]))


def neuron():
    x = Tensor([1.0, -2.0, 0.5])
    w, b = Tensor([0.3, 0.1, -0.4], requires_grad=True), Tensor(0.2, requires_grad=True)
    return None, lambda: (((w * x).sum() + b).tanh() - 0.5) ** 2


MODELS = {
    "post-LN layer, eval, input without grad": encoder_layer(False, False, False),
    "post-LN layer, training, input with grad": encoder_layer(False, True, True),
    "pre-LN layer, training, input without grad": encoder_layer(True, True, False),
    "pre-LN layer, eval, input with grad": encoder_layer(True, False, True),
    "MSE loss (d * d).mean()": mse_loss,
    "hand-written attention": hand_written_attention,
    "pre-LN stack, causal and padding masks, final norm, training": encoder_stack_with_masks,
    "embedding, positions, encoder, head, cross-entropy": token_model_cross_entropy,
    "cross-attention with a padding mask": cross_attention,
    "learned positions, GELU feed-forward, layer norm": gelu_feed_forward_learned_positions,
    "encoder-decoder Transformer, pre-LN, training, padding": transformer_training,
    "a neuron": neuron,
}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_op_that_ran_is_drawn_once_with_its_inputs(name):
    model, forward = MODELS[name]()
    out, ran = executed(forward)
    traced = trace(out, model)
    drawn_ops = [made_by(n.tensor) for n in traced.nodes if n.role == "op"]
    assert len(drawn_ops) == len({id(op) for op in drawn_ops})  # each once
    assert {id(op) for op in drawn_ops} == {id(op) for op in ran}  # exactly the ops that ran
    # the DOT text itself: one op node per op, by name, and an edge into it for every input
    g = viz.draw_graph(out, model, max_nodes=None)
    op_nodes = dict(re.findall(r'^\t+(n\d+) \[label=<(\w+)[ <>][^\n]*fillcolor="#dae8fc"', g.source, re.M))
    assert Counter(op_nodes.values()) == Counter(op.op_name for op in ran)
    into = Counter(dst for dst in re.findall(r"^\t+\w+ -> (n\d+)", g.source, re.M))
    for n in traced.nodes:
        if n.role != "op":
            continue
        op = made_by(n.tensor)
        # its real inputs: every input tensor (scalar constants are written in the label instead)
        # and every array it read beside them (a mask, an index), in order
        drawn = [traced.nodes[p].tensor for p in n.parents if traced.nodes[p].tensor is not None]
        real = [t for t in op.parents if not (t.ndim == 0 and made_by(t) is None and t.name is None
                                              and not t.requires_grad)]
        assert [id(t) for t in drawn] == [id(t) for t in real], (name, n.op)
        arrays = [a for a in (getattr(op, attr) for attr in op.array_inputs) if isinstance(a, np.ndarray)
                  and a.ndim]
        assert len(n.parents) == len(drawn) + len(arrays)
        assert into[f"n{n.index}"] == len(set(n.parents)), (name, n.op)  # x * x: one edge, read twice


def leaves(out, model):
    return [(n.role, n.name, n.note) for n in trace(out, model).nodes if n.role != "op"]


def test_leaves_say_what_they_are():
    model, forward = encoder_stack_with_masks()
    found = leaves(forward(), model)
    assert ("input", None, "") in found  # the input, drawn once
    assert sum(role == "input" for role, _, _ in found) == 1
    assert found.count(("mask", "dropout mask, p=0.1", "")) == 2 * 4  # attention, two sub-layers, ffn; 2 layers
    assert ("mask", "mask", "causal + padding") in found  # nn.causal_mask(4) and the key padding, combined
    assert ("parameter", "layers.0.self_attn.q_proj.weight", "") in found
    model, forward = token_model_cross_entropy()
    found = leaves(forward(), model)
    assert ("constant", "pos.pe", "") in found and ("index", "index", "") in found


def test_the_picture_names_the_leaves():
    model, forward = encoder_stack_with_masks()
    source = viz.draw_graph(forward(), model, max_nodes=None).source
    assert "causal + padding mask (True = masked)" in source and "dropout mask, p=0.1" in source
    assert "layers.1.norm1.weight" in source and "(8)" in source


@pytest.mark.parametrize("mask, kind", [
    (nn.causal_mask(3), "causal"), (nn.causal_mask(3)[None, None], "causal"),
    (np.array([[False, False, True]] * 3), "padding"),
    (nn.causal_mask(3) | np.array([False, False, True]), "causal + padding"),
    (np.eye(3, dtype=bool), ""), (~nn.causal_mask(3), ""), (np.zeros((3, 3), bool), ""),
])
def test_masks_are_named_by_their_values(mask, kind):
    from viz.trace import mask_kind

    assert mask_kind(mask) == kind


def test_what_cannot_be_drawn_is_said_on_the_picture():
    manual_seed(0)
    layer = nn.Linear(4, 4)
    with no_grad():
        frozen = F.softmax(Tensor(rng().standard_normal((2, 4))), axis=-1)
    out = layer(frozen).sum()
    assert ("unrecorded", None, "made by softmax under no_grad: not recorded, its inputs not drawn") in \
        leaves(out, layer)
    source = viz.draw_graph(out, layer).source
    assert "made by softmax under no_grad: not recorded, its inputs not drawn" in source
    assert "made under no_grad or detached: not recorded" in source  # and the legend says what the dashed box is
    cut = (layer(Tensor(np.ones((2, 4)))) * 2.0).detach()
    detached = ("unrecorded", None, "detached: cut from the graph, what made it not drawn")
    assert detached in leaves(layer(cut).sum(), layer)
