"""MultiHeadAttention: shapes, values against a numpy reference, the mask
convention (True = may not attend), fully masked rows, cross-attention, errors."""
import numpy as np
import pytest

import tinygrad_enc.checks
import tinygrad_enc.functional as F
import tinygrad_enc.nn.attention
import tinygrad_enc.tensor
from nn_helpers import leaf, padding_mask, randn, reference_attention
from tinygrad_enc import Tensor, manual_seed, nn

B, T, D, H = 2, 5, 8, 2


@pytest.fixture
def mha():
    manual_seed(0)
    return nn.MultiHeadAttention(D, H).to(np.float64)


def _check_against_reference(mha, query, key=None, value=None, mask=None, key_padding_mask=None,
                             blocked=None):
    key = query if key is None else key
    value = key if value is None else value
    out = mha(Tensor(query, dtype=np.float64), Tensor(key, dtype=np.float64),
              Tensor(value, dtype=np.float64), mask=mask, key_padding_mask=key_padding_mask)
    want_out, want_weights = reference_attention(mha, query, key, value, blocked)
    np.testing.assert_allclose(mha.attn_weights, want_weights, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out.data, want_out, rtol=1e-12, atol=1e-12)
    return out


def test_shapes_and_weights_rows_sum_to_one(mha):
    x = randn(B, T, D)
    out = _check_against_reference(mha, x)
    assert out.shape == (B, T, D)
    assert mha.attn_weights.shape == (B, H, T, T) and isinstance(mha.attn_weights, np.ndarray)
    np.testing.assert_allclose(mha.attn_weights.sum(-1), 1.0, rtol=1e-12)
    assert not mha.attn_weights.flags.writeable
    assert mha.d_k == D // H
    assert [n for n, _ in mha.named_parameters()] == [
        f"{p}.{w}" for p in ("q_proj", "k_proj", "v_proj", "out_proj") for w in ("weight", "bias")]


def test_causal_mask_blocks_the_future(mha):
    _check_against_reference(mha, randn(B, T, D), mask=nn.causal_mask(T),
                             blocked=nn.causal_mask(T))
    above = np.triu(np.ones((T, T), dtype=bool), 1)
    assert np.all(mha.attn_weights[..., above] == 0.0)
    np.testing.assert_allclose(mha.attn_weights.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(mha.attn_weights[..., 0, 0], 1.0)


def test_key_padding_mask_blocks_padded_keys_of_its_batch_only(mha):
    pad = padding_mask(B, T, [2, 0])
    _check_against_reference(mha, randn(B, T, D), key_padding_mask=pad,
                             blocked=pad[:, None, None, :])
    assert np.all(mha.attn_weights[0, :, :, 3:] == 0.0)
    assert np.all(mha.attn_weights[1] > 0.0)


def test_mask_and_key_padding_mask_combine(mha):
    pad = padding_mask(B, T, [1, 3])
    mask = nn.causal_mask(T)
    _check_against_reference(mha, randn(B, T, D), mask=Tensor(mask), key_padding_mask=Tensor(pad),
                             blocked=mask | pad[:, None, None, :])
    assert np.all(mha.attn_weights[..., mask] == 0.0)
    assert np.all(mha.attn_weights[1, :, :, 2:] == 0.0)


def test_per_head_mask(mha):
    mask = np.zeros((1, H, T, T), dtype=bool)
    mask[0, 1, :, 0] = True  # head 1 may not look at token 0
    _check_against_reference(mha, randn(B, T, D), mask=mask, blocked=mask)
    assert np.all(mha.attn_weights[:, 1, :, 0] == 0.0) and np.all(mha.attn_weights[:, 0] > 0)


def test_a_3d_mask_is_refused_as_ambiguous(mha):
    """(B, T, T) with B == H would silently apply per head; PyTorch reads 3-D as (B*H, T, T)."""
    with pytest.raises(ValueError, match=r"MultiHeadAttention: a 3-D mask \(2, 5, 5\) is ambiguous"):
        mha(Tensor(randn(H, T, D)), mask=np.zeros((H, T, T), dtype=bool))


def test_fully_masked_rows_give_zeros_not_nan_forward_and_backward(mha):
    """Query 2 may attend to nothing, and batch element 1 is all padding: those
    rows get zero weights, a zero attention output (so the output is
    out_proj's bias), and finite gradients that treat them as constants."""
    mask = np.zeros((T, T), dtype=bool)
    mask[2] = True
    pad = padding_mask(B, T, [0, T])
    x = leaf(B, T, D)
    out = mha(x, mask=mask, key_padding_mask=pad)
    weights = mha.attn_weights
    assert np.all(np.isfinite(out.data))
    assert np.all(weights[0, :, 2] == 0.0) and np.all(weights[1] == 0.0)
    np.testing.assert_allclose(weights[0, :, [0, 1, 3, 4]].sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(out.data[0, 2], mha.out_proj.bias.data)
    np.testing.assert_array_equal(out.data[1], np.broadcast_to(mha.out_proj.bias.data, (T, D)))

    upstream = randn(B, T, D, seed=1)
    out.backward(upstream)
    grads = [x.grad] + [p.grad for p in mha.parameters()]
    assert all(np.all(np.isfinite(g)) for g in grads)
    np.testing.assert_array_equal(x.grad[1], 0.0)  # nothing of batch 1 reached the output
    np.testing.assert_allclose(mha.out_proj.bias.grad, upstream.sum((0, 1)), rtol=1e-12)
    # the unmasked rows' gradients are those of the same model without the dead rows
    manual_seed(0)
    alone = nn.MultiHeadAttention(D, H).to(np.float64)
    x0 = Tensor(x.data[:1], requires_grad=True, dtype=np.float64)
    keep = np.ones((1, T, D))
    keep[0, 2] = 0.0
    (alone(x0, mask=mask) * Tensor(keep)).backward(upstream[:1])
    np.testing.assert_allclose(x.grad[:1], x0.grad, rtol=1e-10, atol=1e-14)


def test_cross_attention(mha):
    T_q, T_k = 3, 6
    query, key, value = randn(B, T_q, D, seed=1), randn(B, T_k, D, seed=2), randn(B, T_k, D, seed=3)
    pad = padding_mask(B, T_k, [0, 4])
    out = _check_against_reference(mha, query, key, value, key_padding_mask=pad,
                                   blocked=pad[:, None, None, :])
    assert out.shape == (B, T_q, D) and mha.attn_weights.shape == (B, H, T_q, T_k)
    assert np.all(mha.attn_weights[1, ..., 2:] == 0.0)
    mask = np.zeros((T_q, T_k), dtype=bool)
    mask[:, -1] = True
    _check_against_reference(mha, query, key, value, mask=mask, blocked=mask)


def test_value_defaults_to_key(mha):
    query, key = randn(B, 3, D, seed=1), randn(B, 4, D, seed=2)
    np.testing.assert_array_equal(mha(Tensor(query), Tensor(key)).data,
                                  mha(Tensor(query), Tensor(key), Tensor(key)).data)


def test_attention_dropout_only_in_training():
    manual_seed(0)
    mha = nn.MultiHeadAttention(D, H, dropout=0.5)
    x = Tensor(randn(B, T, D))
    mha.eval()
    first = mha(x).data
    np.testing.assert_array_equal(first, mha(x).data)
    mha.train()
    assert not np.allclose(mha(x).data, first)
    assert mha.attn_weights.shape == (B, H, T, T)  # kept before dropout
    np.testing.assert_allclose(mha.attn_weights.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"mask": np.zeros((T, T))}, TypeError, "mask must be boolean .* got dtype float64"),
    ({"mask": np.zeros((T, T), dtype=int)}, TypeError, "mask must be boolean .* got dtype int"),
    ({"key_padding_mask": np.zeros((B, T), dtype=np.float32)}, TypeError,
     "key_padding_mask must be boolean, got dtype float32"),
    ({"mask": np.zeros((T, T - 1), dtype=bool)}, ValueError,
     r"mask of shape \(5, 4\) does not broadcast to \(B, H, T_q, T_k\) = \(2, 2, 5, 5\)"),
    ({"key_padding_mask": np.zeros((B, T + 1), dtype=bool)}, ValueError,
     r"key_padding_mask must be \(B, T_k\) = \(2, 5\), got \(2, 6\)"),
    ({"key_padding_mask": np.zeros(T, dtype=bool)}, ValueError,
     r"key_padding_mask must be \(B, T_k\) = \(2, 5\), got \(5,\)"),
])
def test_bad_masks(mha, kwargs, error, message):
    with pytest.raises(error, match=message):
        mha(Tensor(randn(B, T, D)), **kwargs)


@pytest.mark.parametrize("shapes, message", [
    ([(B, T, D + 1)], r"query \(2, 5, 9\), key \(2, 5, 9\), value \(2, 5, 9\): each must be "
                      r"\(B, T, d_model=8\)"),
    ([(T, D)], r"query \(5, 8\).*each must be \(B, T, d_model=8\)"),
    ([(B, T, D), (B, 4, D), (B, 3, D)], "key and value need the same length"),
    ([(B, T, D), (B + 1, T, D)], r"key \(3, 5, 8\).*batch sizes must agree"),
])
def test_bad_shapes(mha, shapes, message):
    with pytest.raises(ValueError, match=message):
        mha(*[Tensor(np.zeros(s)) for s in shapes])


def test_heads_must_divide_d_model():
    with pytest.raises(ValueError, match="d_model 10 is not divisible by n_heads 4"):
        nn.MultiHeadAttention(10, 4)


def test_init_is_linears_as_documented():
    """The docstring's claim: every projection has Linear's init (biases too,
    not PyTorch's zeros; weights within 1/sqrt(d), not xavier's wider bound)."""
    manual_seed(0)
    d = 64
    mha = nn.MultiHeadAttention(d, 4)
    for proj in (mha.q_proj, mha.k_proj, mha.v_proj, mha.out_proj):
        for p in (proj.weight, proj.bias):
            assert 0.9 / d ** 0.5 < np.abs(p.data).max() <= 1 / d ** 0.5


def test_each_mask_is_checked_once(mha, monkeypatch):
    """The mask and the key padding mask are checked where the learner passed
    them, in MultiHeadAttention, and not again on the way down."""
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[0])
        return tinygrad_enc.checks.check_mask(*args, **kwargs)

    for module in (tinygrad_enc.nn.attention, F, tinygrad_enc.tensor):
        monkeypatch.setattr(module, "check_mask", counting)
    x = Tensor(randn(B, T, D), dtype=np.float64)
    mha(x, mask=nn.causal_mask(T), key_padding_mask=padding_mask(B, T, [T, 3]))
    assert calls == ["MultiHeadAttention", "MultiHeadAttention"]
    calls.clear()
    F.scaled_dot_product_attention(x, x, x, mask=nn.causal_mask(T))  # the public function checks
    assert calls == ["scaled_dot_product_attention"]


# ----- what the graph keeps: no scores, and Z already laid out as the concat ------
def _graph_of(out):
    from tinygrad_enc.tensor import topological_order
    return topological_order(out, include_constants=True)


@pytest.mark.parametrize("masked", [False, True])
def test_the_scores_are_released_once_softmax_has_them(mha, masked):
    """No backward reads the scores (softmax's reads the weights), so the
    graph keeps their node (drawn, with its shape) but not their (B, H, T, T)
    numbers; reading them is an error naming them, never stale or made-up
    numbers. Backward is unchanged (the reference test below)."""
    kwargs = dict(mask=nn.causal_mask(T), key_padding_mask=padding_mask(B, T, [T, 3])) if masked else {}
    out = mha(leaf(B, T, D), **kwargs)
    graph = _graph_of(out)
    released = [t for t in graph if isinstance(t.data, tinygrad_enc.tensor.ReleasedValues)]
    assert [t.data.what for t in released] == ["scores"] + (["masked_fill"] if masked else [])
    assert {(t.shape, t.dtype, t.ndim, t.size) for t in released} == {
        ((B, H, T, T), np.dtype(np.float64), 4, B * H * T * T)}
    big = [t for t in graph if isinstance(t.data, np.ndarray) and t.data.shape == (B, H, T, T)]
    assert [t.name for t in big] == ["attention weights"]  # the one (T, T) array per head kept
    scores = released[0]
    for read in (lambda d: np.asarray(d), lambda d: d[0], lambda d: d.mean(), lambda d: float(d),
                 lambda d: d.copy(), lambda d: list(d), lambda d: len(d)):
        with pytest.raises(RuntimeError, match=r"scores \(2, 2, 5, 5\): its values were not kept"):
            read(scores.data)
    with pytest.raises(TypeError):
        np.add(scores.data, 1.0)  # numpy's ufuncs refuse it
    with pytest.raises(RuntimeError, match="values were not kept"):
        scores.numpy().sum()
    assert "values not kept" in repr(scores.data)
    out.backward(randn(B, T, D, seed=1))  # backward never needed them
    assert all(np.isfinite(p.grad).all() for p in mha.parameters())


def test_released_scores_cannot_be_used_by_a_new_op(mha):
    """A learner who digs the scores node out of the graph and computes with
    it gets the error, not NaN or old numbers."""
    out = mha(leaf(B, T, D))
    scores = next(t for t in _graph_of(out) if t.name == "scores")
    with pytest.raises(RuntimeError, match="scores .*: its values were not kept"):
        scores.softmax(-1)
    with pytest.raises(RuntimeError, match="values were not kept"):
        scores.sum()


def test_z_is_held_as_the_concatenation_of_the_heads(mha):
    """Z (B, H, T, d_k) is made in the memory order (B, T, H, d_k), so the
    concat of the heads is a view of it, not a copy; its values are those of
    the plain product."""
    x = leaf(B, T, D)
    mha(x)
    graph = _graph_of(mha(x))
    z = next(t for t in graph if t.name == "Z")
    concat = next(t for t in graph if t.name == "concat")
    assert z.shape == (B, H, T, D // H) and concat.shape == (B, T, D)
    assert np.shares_memory(z.data, concat.data) and concat.data.flags.c_contiguous
    weights = next(t for t in graph if t.name == "attention weights")
    v = z._ctx.parents[1]
    np.testing.assert_array_equal(z.data, weights.data @ v.data)
    np.testing.assert_array_equal(concat.data, (weights.data @ v.data).transpose(0, 2, 1, 3).reshape(B, T, D))


def test_attention_values_and_gradients_match_a_composed_reference(mha):
    """The whole attention (released scores, Z in the concat layout) against
    the same function composed of plain tensor ops, in value and gradient."""
    query = randn(B, T, D, seed=3)
    blocked = nn.causal_mask(T)

    def composed(x):
        def heads(t, proj):
            return (t @ proj.weight.T + proj.bias).reshape(B, T, H, D // H).transpose(1, 2)
        q, k, v = heads(x, mha.q_proj), heads(x, mha.k_proj), heads(x, mha.v_proj)
        scores = (q @ k.transpose(-2, -1)) / np.sqrt(D // H)
        weights = scores.masked_fill(blocked, -np.inf).softmax(-1)
        z = (weights @ v).transpose(1, 2).reshape(B, T, D)
        return z @ mha.out_proj.weight.T + mha.out_proj.bias

    upstream = randn(B, T, D, seed=4)
    results = []
    for fn in (lambda x: mha(x, mask=blocked), composed):
        mha.zero_grad()
        x = Tensor(query, requires_grad=True, dtype=np.float64)
        out = fn(x)
        out.backward(upstream)
        results.append([out.data, x.grad] + [p.grad for p in mha.parameters()])
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-11, atol=1e-13)


def test_queries_and_keys_of_no_features_give_uniform_weights():
    """d_k = 0: every score is an empty sum, 0, so the weights are uniform and
    Z is the mean of the values (PyTorch gives the same), not a division by
    zero in 1/sqrt(d_k)."""
    q, v = Tensor(np.zeros((2, 3, 0))), Tensor(randn(2, 4, 5), requires_grad=True, dtype=np.float64)
    k = Tensor(np.zeros((2, 4, 0)))
    z, weights = F.scaled_dot_product_attention(q, k, v)
    np.testing.assert_array_equal(weights.data, np.full((2, 3, 4), 0.25))
    np.testing.assert_allclose(z.data, np.broadcast_to(v.data.mean(1, keepdims=True), (2, 3, 5)), rtol=1e-12)
    z.sum().backward()
    np.testing.assert_allclose(v.grad, np.full((2, 4, 5), 0.75), rtol=1e-12)  # 3 queries x 1/4
    torch = pytest.importorskip("torch")
    want = torch.nn.functional.scaled_dot_product_attention(
        torch.zeros(2, 3, 0, dtype=torch.float64), torch.zeros(2, 4, 0, dtype=torch.float64),
        torch.from_numpy(v.data))
    np.testing.assert_allclose(z.data, want.numpy(), rtol=1e-12)
