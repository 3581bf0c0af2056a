"""The encoder as a whole: independent layers, an end-to-end gradient check,
permutation equivariance (and why positions are added), and learning."""
import numpy as np
import pytest

import tinygrad_enc.functional as F
from nn_helpers import D_MODEL, N_HEADS, T, leaf, padding_mask, randn, tiny_encoder
from tinygrad_enc import Tensor, manual_seed, nn, optim
from tinygrad_enc.gradcheck import gradcheck


def test_layers_do_not_share_weights_or_gradients():
    enc = tiny_encoder(num_layers=2)
    first, second = (dict(layer.named_parameters()) for layer in enc.layers)
    assert list(first) == list(second)
    for name in first:
        assert first[name] is not second[name]
        if not name.startswith("norm"):  # layer norms start at ones and zeros
            assert not np.array_equal(first[name].data, second[name].data), name
    enc(leaf(2, T, D_MODEL)).backward(randn(2, T, D_MODEL, seed=1))
    for name in first:
        assert first[name].grad is not second[name].grad
        if name != "self_attn.k_proj.bias":  # softmax ignores a shift shared by all keys: 0
            assert not np.allclose(first[name].grad, second[name].grad), name
    np.testing.assert_allclose(first["self_attn.k_proj.bias"].grad, 0.0, atol=1e-12)


def test_structure_and_final_norm():
    enc = tiny_encoder(num_layers=3, final_norm=True, norm_first=True, activation="gelu")
    assert len(enc.layers) == 3 and isinstance(enc.norm, nn.LayerNorm)
    layer = enc.layers[0]
    assert layer.norm_first and layer.ffn.activation == "gelu"
    assert [n for n, _ in layer.named_children()] == \
        ["self_attn", "ffn", "norm1", "norm2", "dropout1", "dropout2"]
    assert tiny_encoder().norm is None
    with pytest.raises(ValueError, match="activation must be one of .* got 'tanh'"):
        nn.FeedForward(4, 8, activation="tanh")


@pytest.mark.parametrize("norm_first, activation", [(False, "relu"), (True, "gelu")])
def test_gradcheck_whole_encoder(norm_first, activation):
    """d=8, 2 heads, T=5, float64: d(output)/d(input) and d(output)/d(a few
    parameters, one from each kind of sub-layer) against finite differences."""
    enc = tiny_encoder(norm_first=norm_first, activation=activation, final_norm=norm_first)
    params = [enc.layers[0].self_attn.q_proj.weight, enc.layers[1].self_attn.v_proj.bias,
              enc.layers[0].ffn.linear1.bias, enc.layers[1].norm1.weight]
    x = leaf(1, T, D_MODEL)
    mask = nn.causal_mask(T)
    assert gradcheck(lambda x, *_: enc(x, mask=mask), [x, *params])


def test_gradcheck_with_key_padding():
    enc = tiny_encoder(num_layers=1)
    pad = padding_mask(2, T, [2, 0])
    assert gradcheck(lambda x, w: enc(x, key_padding_mask=pad),
                     [leaf(2, T, D_MODEL), enc.layers[0].ffn.linear2.weight])


def _permuted_outputs(model, seed=0):
    """model(x) permuted along the tokens, and model(x permuted)."""
    x = randn(2, 7, D_MODEL, seed=seed)
    perm = np.random.default_rng(seed).permutation(7)
    return model(Tensor(x, dtype=np.float64)).data[:, perm], \
        model(Tensor(x[:, perm], dtype=np.float64)).data


def test_without_positions_the_encoder_is_permutation_equivariant():
    """Attention sums over keys and the FFN treats each token alone, so the
    order of the tokens is invisible: permute them, the outputs permute alike."""
    enc = tiny_encoder(num_layers=2)
    permuted_out, out_of_permuted = _permuted_outputs(enc)
    np.testing.assert_allclose(out_of_permuted, permuted_out, rtol=0, atol=1e-6)
    assert np.abs(permuted_out - enc(Tensor(randn(2, 7, D_MODEL))).data).max() > 0.1


@pytest.mark.parametrize("positions", [nn.SinusoidalPositionalEncoding(D_MODEL, max_len=10),
                                       nn.LearnedPositionalEmbedding(10, D_MODEL)])
def test_with_positions_added_it_is_not(positions):
    """This is why positions are added: with them, order changes the output."""
    enc = tiny_encoder(num_layers=2)
    positions.to(np.float64)
    permuted_out, out_of_permuted = _permuted_outputs(lambda x: enc(positions(x)))
    assert np.abs(out_of_permuted - permuted_out).max() > 0.1


class TinyModel(nn.Module):
    def __init__(self, vocab, d_model):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.SinusoidalPositionalEncoding(d_model, max_len=16)
        self.encoder = nn.TransformerEncoder(1, d_model, N_HEADS, 2 * d_model, dropout=0.0)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, ids):
        return self.head(self.encoder(self.pos(self.embed(ids))))


def test_tiny_encoder_overfits_four_sequences():
    """Each position's target depends on the whole sequence (the token at the
    mirrored position): the model has to use attention and positions."""
    manual_seed(0)
    ids = np.random.default_rng(0).integers(0, 6, size=(4, 6))
    targets = ids[:, ::-1].copy()
    model = TinyModel(vocab=6, d_model=16)
    opt = optim.Adam(model.parameters(), lr=0.02)
    history = []
    for _ in range(400):
        loss = F.cross_entropy(model(ids), targets)
        history.append(loss.item())
        if history[-1] < 1e-3:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert history[-1] < 1e-3, f"loss {history[-1]:.4g} after {len(history)} steps"
    assert history[0] > 1.0
    np.testing.assert_array_equal(model(ids).data.argmax(-1), targets)
