"""The basic layers and positional encodings, each against the formula it implements."""
import math

import numpy as np
import pytest

from nn_helpers import leaf, randn
from tinygrad_enc import Tensor, manual_seed, nn
from tinygrad_enc.nn.positional import sinusoidal_table


# ----- Linear -------------------------------------------------------------------

def test_linear_init_is_pytorch_uniform():
    manual_seed(0)
    lin = nn.Linear(16, 400)
    bound = 1 / math.sqrt(16)
    assert lin.weight.shape == (400, 16) and lin.bias.shape == (400,)
    assert lin.weight.dtype == np.float32
    for p in (lin.weight, lin.bias):
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.97 * bound  # spread over the whole interval
        assert abs(p.data.mean()) < 0.05 * bound
    # a uniform on [-b, b] has variance b^2 / 3
    assert abs(lin.weight.data.var() - bound ** 2 / 3) < 0.05 * bound ** 2 / 3


def test_linear_forward_and_shapes():
    manual_seed(0)
    lin = nn.Linear(3, 4).to(np.float64)
    x = randn(2, 5, 3)
    y = lin(Tensor(x, dtype=np.float64))
    assert y.shape == (2, 5, 4)
    np.testing.assert_allclose(y.data, x @ lin.weight.data.T + lin.bias.data, rtol=1e-12)
    no_bias = nn.Linear(3, 4, bias=False)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    np.testing.assert_allclose(no_bias(Tensor(x)).data, x @ no_bias.weight.data.T, rtol=1e-5)


def test_linear_wrong_in_features_names_shapes():
    lin = nn.Linear(3, 4)
    with pytest.raises(ValueError, match=r"Linear\(3, 4\): input of shape \(2, 5\) must end in 3"):
        lin(Tensor(np.zeros((2, 5))))


# ----- Embedding ----------------------------------------------------------------

def test_embedding_lookup():
    manual_seed(0)
    emb = nn.Embedding(10, 4)
    ids = np.array([[3, 0, 9], [3, 3, 1]])
    out = emb(ids)
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out.data, emb.weight.data[ids])
    np.testing.assert_array_equal(emb(Tensor(ids)).data, out.data)  # ids as a Tensor too


def test_embedding_repeated_ids_accumulate_gradient():
    manual_seed(0)
    emb = nn.Embedding(5, 3)
    ids = np.array([[1, 1, 4], [1, 0, 4]])
    upstream = randn(2, 3, 3, dtype=np.float32)
    emb(ids).backward(upstream)
    want = np.zeros((5, 3), dtype=np.float32)
    np.add.at(want, ids, upstream)
    np.testing.assert_allclose(emb.weight.grad, want, rtol=1e-6)
    np.testing.assert_array_equal(emb.weight.grad[[2, 3]], 0.0)
    np.testing.assert_allclose(emb.weight.grad[1], upstream[0, 0] + upstream[0, 1] + upstream[1, 0],
                               rtol=1e-6)


def test_embedding_init_is_standard_normal():
    manual_seed(0)
    weight = nn.Embedding(1000, 20).weight.data
    assert abs(weight.mean()) < 0.02 and abs(weight.std() - 1.0) < 0.02


@pytest.mark.parametrize("ids, error, message", [
    (np.array([0, 5]), ValueError, r"ids must be in \[0, 5\), got min 0 max 5"),
    (np.array([-1, 2]), ValueError, r"ids must be in \[0, 5\), got min -1"),
    (np.array([0.0, 1.0]), TypeError, "ids must be integers, got dtype float64"),
])
def test_embedding_bad_ids(ids, error, message):
    with pytest.raises(error, match=message):
        nn.Embedding(5, 3)(ids)


# ----- LayerNorm ----------------------------------------------------------------

def test_layer_norm_matches_formula():
    """Biased variance (divide by n) and eps inside the square root; a large eps
    and n = 6 make either mistake visible."""
    ln = nn.LayerNorm(6, eps=0.5).to(np.float64)
    ln.weight.data[...] = randn(6, seed=1)
    ln.bias.data[...] = randn(6, seed=2)
    x = randn(2, 3, 6) * 3 + 1
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).sum(-1, keepdims=True) / 6
    want = (x - mean) / np.sqrt(var + 0.5) * ln.weight.data + ln.bias.data
    np.testing.assert_allclose(ln(Tensor(x, dtype=np.float64)).data, want, rtol=1e-12)


def test_layer_norm_init_and_default_output():
    ln = nn.LayerNorm(4)
    np.testing.assert_array_equal(ln.weight.data, np.ones(4))
    np.testing.assert_array_equal(ln.bias.data, np.zeros(4))
    x = randn(3, 4)
    y = ln(Tensor(x)).data
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-6)
    np.testing.assert_allclose(y.var(-1), x.var(-1) / (x.var(-1) + 1e-5), rtol=1e-5)


# ----- Dropout ------------------------------------------------------------------

def _dropped(p, seed, n=200_000):
    manual_seed(seed)
    return nn.Dropout(p)(Tensor(np.ones(n, dtype=np.float32))).data


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_inverted_scaling(p):
    out = _dropped(p, seed=0)
    zeros = np.mean(out == 0)
    assert abs(zeros - p) < 0.005
    np.testing.assert_allclose(out[out != 0], 1 / (1 - p), rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.01  # the expected value is kept


def test_dropout_reproducible_with_manual_seed():
    np.testing.assert_array_equal(_dropped(0.5, seed=3, n=100), _dropped(0.5, seed=3, n=100))
    assert not np.array_equal(_dropped(0.5, seed=3, n=100), _dropped(0.5, seed=4, n=100))


def test_dropout_identity_in_eval_and_gradient_in_train():
    drop = nn.Dropout(0.5)
    x = leaf(1000, dtype=np.float32)
    drop.eval()
    assert drop(x) is x
    drop.train()
    manual_seed(0)
    y = drop(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, (y.data != 0) * 2.0)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_bad_probability(p):
    with pytest.raises(ValueError, match=f"p must be a probability in \\[0, 1\\], got {p}"):
        nn.Dropout(p)


# ----- positional encodings ------------------------------------------------------

def test_sinusoidal_paper_values_for_d4():
    pe = nn.SinusoidalPositionalEncoding(4).pe
    np.testing.assert_allclose(pe[1], [0.8415, 0.5403, 0.0100, 1.0000], atol=1e-4)
    np.testing.assert_array_equal(pe[0], [0.0, 1.0, 0.0, 1.0])


@pytest.mark.parametrize("d", [4, 6, 5])
def test_sinusoidal_interleaved_layout(d):
    pe = nn.SinusoidalPositionalEncoding(d, max_len=50).pe
    assert pe.shape == (50, d) and pe.dtype == np.float32
    for pos in range(50):
        for i in range(d):
            angle = pos / 10000 ** ((i - i % 2) / d)
            want = math.sin(angle) if i % 2 == 0 else math.cos(angle)
            assert abs(pe[pos, i] - want) < 1e-6, (pos, i)


def test_sinusoidal_adds_to_input_and_is_not_saved():
    enc = nn.SinusoidalPositionalEncoding(4, max_len=10)
    x = randn(2, 3, 4, dtype=np.float32)
    np.testing.assert_allclose(enc(Tensor(x)).data, x + enc.pe[:3], rtol=1e-6)
    assert enc.state_dict() == {} and enc.parameters() == []
    with pytest.raises(ValueError, match=r"\(2, 11, 4\) must be \(\.\.\., T, d_model\) with T <= "
                                         r"max_len = 10"):
        enc(Tensor(np.zeros((2, 11, 4))))
    with pytest.raises(ValueError, match=r"\(2, 3, 5\) must end in d_model = 4"):
        enc(Tensor(np.zeros((2, 3, 5))))


def test_sinusoidal_float64_model_adds_exact_positions():
    d, max_len = 6, 50
    i, pos = np.arange(d), np.arange(max_len)[:, None]
    angle = pos / 10000.0 ** ((i - i % 2) / d)
    exact = np.where(i % 2 == 0, np.sin(angle), np.cos(angle))  # float64
    enc = nn.SinusoidalPositionalEncoding(d, max_len)
    x = randn(2, max_len, d)
    for _ in range(2):  # and again after a round trip through float32
        out = enc.to(np.float64)(Tensor(x, dtype=np.float64))
        assert out.dtype == np.float64
        np.testing.assert_allclose(out.data, x + exact, rtol=0, atol=1e-12)
        out = enc.to(np.float32)(Tensor(x))
        assert out.dtype == enc.pe.dtype == np.float32
        np.testing.assert_array_equal(out.data, x.astype(np.float32) + exact.astype(np.float32))


def test_sinusoidal_table_is_exact_in_a_float64_model():
    """model.to(float64) reaches the encoding's own to(): positions exact there too."""
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.SinusoidalPositionalEncoding(6, 20)])

    model = Model().to(np.float64)
    exact = sinusoidal_table(20, 6)
    assert model.layers[0].pe.dtype == np.float64
    np.testing.assert_array_equal(model.layers[0].pe, exact)


def test_learned_positional_embedding():
    manual_seed(0)
    pos = nn.LearnedPositionalEmbedding(7, 4)
    assert list(pos.state_dict()) == ["weight"] and pos.weight.shape == (7, 4)
    x = leaf(2, 3, 4, dtype=np.float32)
    y = pos(x)
    np.testing.assert_allclose(y.data, x.data + pos.weight.data[:3], rtol=1e-6)
    upstream = randn(2, 3, 4, seed=1, dtype=np.float32)
    y.backward(upstream)
    np.testing.assert_allclose(pos.weight.grad[:3], upstream.sum(0), rtol=1e-6)
    np.testing.assert_array_equal(pos.weight.grad[3:], 0.0)
    with pytest.raises(ValueError, match="T <= max_len = 7"):
        pos(Tensor(np.zeros((1, 8, 4))))


def test_causal_mask_exact():
    np.testing.assert_array_equal(nn.causal_mask(4), [
        [False, True, True, True],
        [False, False, True, True],
        [False, False, False, True],
        [False, False, False, False]])
    assert nn.causal_mask(4).dtype == np.bool_
