"""Shared helpers for the engine tests: float64 inputs built so that the
function under test is smooth around them (no kinks, no ties, no log of a
negative), which is what finite differences need."""
import numpy as np
import pytest

from tinygrad_enc import Tensor
from tinygrad_enc.gradcheck import gradcheck

# The shape sweep of the engine issue; (B, T, D) = (2, 3, 4).
SHAPES = [(), (1,), (3,), (2, 3), (1, 3), (2, 1, 3), (2, 3, 4)]
# Operand shapes for binary ops: equal shapes, then broadcasting ones.
PAIRS = [(s, s) for s in SHAPES] + [
    ((2, 3, 4), (4,)), ((4,), (2, 3, 4)), ((2, 3), ()), ((), (2, 3)), ((1, 3), (2, 1)),
    ((2, 1, 3), (4, 3)), ((2, 1, 3), (3,)), ((2, 3, 1), (1, 1, 4))]
# matmul: vectors on either side, matrices, batches, broadcast batch dims.
MATMUL_SHAPES = [
    ((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((1, 3), (3, 1)),
    ((2, 2, 3), (3, 4)), ((2, 3), (2, 3, 4)), ((2, 2, 3), (2, 3, 4)),
    ((2, 1, 2, 3), (3, 3, 2)), ((3,), (2, 3, 4)), ((2, 2, 3), (3,)), ((1, 2, 3), (2, 3, 2)),
]


def make_array(shape, kind="any", seed=0):
    """A float64 array of `shape`:
    any       standard normal
    positive  in [0.5, 2] (log, sqrt, fractional powers)
    nonzero   |x| in [0.2, 1.5], random sign (relu, abs, division: no kink or pole)
    distinct  values at least 0.1 apart (max: no ties)
    """
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    if kind == "any":
        values = rng.standard_normal(size)
    elif kind == "positive":
        values = rng.uniform(0.5, 2.0, size)
    elif kind == "nonzero":
        values = rng.uniform(0.2, 1.5, size) * rng.choice([-1.0, 1.0], size)
    elif kind == "distinct":
        values = rng.permutation(size) * 0.1 - 0.05 * size + rng.uniform(0, 0.01)
    else:
        raise ValueError(kind)
    return values.reshape(shape)


def leaf(shape, kind="any", seed=0, dtype=np.float64):
    """A leaf tensor that requires grad, with values from `make_array`."""
    return Tensor(make_array(shape, kind, seed), requires_grad=True, dtype=dtype)


# Cross-entropy cases: logits shape, integer targets, keyword arguments.
_TARGET_N = np.array([0, 3, 1, 3, 2])
_TARGET_BT = np.array([[1, 0, 2], [2, 2, 0]])
CROSS_ENTROPY_CASES = {
    "NC": ((5, 4), _TARGET_N, {}),
    "BTC": ((2, 3, 4), _TARGET_BT, {}),
    "ignore_index": ((5, 4), _TARGET_N, {"ignore_index": 3}),
    "ignore_index_BTC": ((2, 3, 4), np.where(_TARGET_BT == 2, -100, _TARGET_BT),
                         {"ignore_index": -100}),
    "label_smoothing": ((5, 4), _TARGET_N, {"label_smoothing": 0.1}),
    "label_smoothing_BTC": ((2, 3, 4), _TARGET_BT, {"label_smoothing": 0.3}),
    "both": ((5, 4), _TARGET_N, {"ignore_index": 3, "label_smoothing": 0.2}),
    "both_BTC": ((2, 3, 4), _TARGET_BT, {"ignore_index": 0, "label_smoothing": 0.25}),
}

# Attention: q (2, 3, 4), k (2, 5, 4), v (2, 5, 3) and boolean masks (True =
# may not attend) that broadcast to the scores (2, 3, 5).
SDPA_MASKS = {
    "none": None,
    "causal": np.triu(np.ones((3, 5), bool), k=1),
    "per_batch": make_array((2, 1, 5), seed=9) > 0.3,
    "fully_masked_row": np.array([[False, True, False, True, True]] * 2 + [[True] * 5]),
}


def attention_inputs():
    return [make_array((2, 3, 4), seed=1), make_array((2, 5, 4), seed=2),
            make_array((2, 5, 3), seed=3)]


# ----- PyTorch as the oracle, finite differences, error messages ------------------
TOL = {np.float64: dict(rtol=1e-7, atol=1e-9), np.float32: dict(rtol=2e-5, atol=2e-6)}


def torch_compare(ours, theirs, arrays, dtype, tol=None):
    """ours(*tensors) equals theirs(*torch tensors) in `dtype`, and so does
    the gradient of every input for one random upstream gradient."""
    import torch  # only the tests that compare with PyTorch need it
    tol = tol or TOL[dtype]
    ts = [Tensor(a, requires_grad=True, dtype=dtype) for a in arrays]
    tt = [torch.tensor(np.asarray(a, dtype=dtype), requires_grad=True) for a in arrays]
    out, expected = ours(*ts), theirs(*tt)
    assert out.dtype == dtype, out.dtype
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), **tol)
    if not expected.requires_grad:
        return
    upstream = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    if out.requires_grad:
        out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    for i, (t, tt_) in enumerate(zip(ts, tt)):
        want = np.zeros(t.shape) if tt_.grad is None else tt_.grad.numpy()
        got = np.zeros(t.shape) if t.grad is None else t.grad
        np.testing.assert_allclose(got, want, err_msg=f"gradient of input {i}", **tol)


def check_gradient(fn, arrays):
    tensors = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    assert gradcheck(fn, tensors)


def assert_raises_naming(call, error, fragments):
    """call() raises `error` whose message holds every fragment (the op, the
    offending value, the shapes)."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
