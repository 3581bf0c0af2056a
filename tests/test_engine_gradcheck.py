"""Every op, forward against numpy and backward against finite differences,
in float64, over the shape sweep of the engine issue.

Each case is a function of float64 leaf tensors plus the same function
written in plain numpy; `check` asserts the forward values agree and that
`gradcheck` (central differences, random upstream gradient) passes for every
input.
"""
import math

import numpy as np
import pytest

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor, manual_seed
from tinygrad_enc.gradcheck import gradcheck

from conftest import (CROSS_ENTROPY_CASES, MATMUL_SHAPES, PAIRS, SDPA_MASKS, SHAPES,
                      attention_inputs, make_array)

_erf = np.vectorize(math.erf, otypes=[float])


def check(fn, ref, arrays):
    """fn(*tensors) equals ref(*arrays), and its gradients pass gradcheck."""
    tensors = [Tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    out = fn(*tensors)
    assert out.dtype == np.float64
    if ref is not None:
        expected = np.asarray(ref(*arrays))
        assert out.shape == expected.shape
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(fn, tensors)


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    return np.log(np_softmax(x, axis))


# ----- unary ops over the whole shape sweep ------------------------------------
# name: (ours, numpy, input kind)
UNARY = {
    "neg": (lambda x: -x, np.negative, "any"),
    "exp": (lambda x: x.exp(), np.exp, "any"),
    "log": (lambda x: x.log(), np.log, "positive"),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, "positive"),
    "tanh": (lambda x: x.tanh(), np.tanh, "any"),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), "any"),
    "relu": (lambda x: x.relu(), lambda x: np.maximum(x, 0), "nonzero"),
    "gelu": (lambda x: x.gelu(), lambda x: x * 0.5 * (1 + _erf(x / math.sqrt(2))), "any"),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                   * (x + 0.044715 * x ** 3))), "any"),
    "abs": (lambda x: x.abs(), np.abs, "nonzero"),
    "pow2": (lambda x: x ** 2, lambda x: x ** 2, "any"),
    "pow3": (lambda x: x ** 3, lambda x: x ** 3, "any"),
    "pow0": (lambda x: x ** 0, lambda x: x ** 0, "any"),
    "pow_half": (lambda x: x ** 0.5, np.sqrt, "positive"),
    "pow_neg_1.5": (lambda x: x ** -1.5, lambda x: x ** -1.5, "positive"),
    "pow_neg1": (lambda x: x ** -1, lambda x: 1 / x, "nonzero"),
    "rpow": (lambda x: 2 ** x, lambda x: 2 ** x, "any"),
    "radd": (lambda x: 1.5 + x, lambda x: 1.5 + x, "any"),
    "rsub": (lambda x: 1.5 - x, lambda x: 1.5 - x, "any"),
    "rmul": (lambda x: 1.5 * x, lambda x: 1.5 * x, "any"),
    "rdiv": (lambda x: 1.5 / x, lambda x: 1.5 / x, "nonzero"),
    "sub_scalar": (lambda x: x - 1.5, lambda x: x - 1.5, "any"),
    "div_scalar": (lambda x: x / 1.5, lambda x: x / 1.5, "any"),
    "sum": (lambda x: x.sum(), np.sum, "any"),
    "mean": (lambda x: x.mean(), np.mean, "any"),
    "var": (lambda x: x.var(), np.var, "any"),
    "max": (lambda x: x.max(), np.max, "distinct"),
    "softmax": (lambda x: F.softmax(x), lambda x: np_softmax(x), "any"),
    "log_softmax": (lambda x: F.log_softmax(x), lambda x: np_log_softmax(x), "any"),
    "reshape": (lambda x: x.reshape(-1), np.ravel, "any"),
    ".T": (lambda x: x.T, np.transpose, "any"),
    "expand": (lambda x: x.expand((2,) + x.shape), lambda x: np.broadcast_to(x, (2,) + x.shape),
               "any"),
    "getitem_ellipsis": (lambda x: x[...] * 1.0, lambda x: x[...], "any"),
    "getitem_none": (lambda x: x[None], lambda x: x[None], "any"),
    "stack": (lambda x: Tensor.stack([x, x * 2.0], axis=-1),
              lambda x: np.stack([x, x * 2.0], axis=-1), "any"),
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name, shape):
    fn, ref, kind = UNARY[name]
    check(fn, ref, [make_array(shape, kind)])


# ----- binary ops with broadcasting ---------------------------------------------
BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
}


@pytest.mark.parametrize("shapes", PAIRS, ids=str)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary(name, shapes):
    fn, ref = BINARY[name]
    a = make_array(shapes[0], "any", seed=1)
    b = make_array(shapes[1], "nonzero" if name == "div" else "any", seed=2)
    check(fn, ref, [a, b])


@pytest.mark.parametrize("shapes", PAIRS, ids=str)
def test_where(shapes):
    cond = make_array(np.broadcast_shapes(*shapes), seed=3) > 0
    check(lambda a, b: Tensor.where(cond, a, b), lambda a, b: np.where(cond, a, b),
          [make_array(shapes[0], seed=1), make_array(shapes[1], seed=2)])


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_same_tensor_twice(shape):
    check(lambda x: x * x + x / (x * x + 1.0), lambda x: x * x + x / (x * x + 1.0),
          [make_array(shape)])


# ----- matmul: vectors, matrices, batches, broadcast batch dims ---------------
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
    check(lambda a, b: a @ b, np.matmul,
          [make_array(shapes[0], seed=1), make_array(shapes[1], seed=2)])


# ----- reductions: axis x keepdims on a 3-D input --------------------------------
REDUCTIONS = {
    "sum": (np.sum, "any"),
    "mean": (np.mean, "any"),
    "max": (np.max, "distinct"),
    "var": (np.var, "any"),
}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_reduction(name, axis, keepdims):
    ref, kind = REDUCTIONS[name]
    check(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims),
          lambda x: ref(x, axis=axis, keepdims=keepdims), [make_array((2, 3, 4), kind)])


# ----- shape and movement ops on one (2, 3, 4) input -----------------------------
MASK_34 = make_array((3, 4), seed=5) > 0
MASK_234 = make_array((2, 3, 4), seed=6) > 0
MASK_214 = make_array((2, 1, 4), seed=7) > 0

MOVEMENT = {
    "reshape": (lambda x: x.reshape(4, 6), lambda x: x.reshape(4, 6)),
    "reshape_tuple": (lambda x: x.reshape((6, -1)), lambda x: x.reshape(6, -1)),
    "view": (lambda x: x.view(3, -1, 2), lambda x: x.reshape(3, -1, 2)),
    "transpose": (lambda x: x.transpose(0, 2), lambda x: x.swapaxes(0, 2)),
    "transpose_default": (lambda x: x.transpose(), lambda x: x.swapaxes(-2, -1)),
    "permute": (lambda x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1)),
    "permute_negative": (lambda x: x.permute(-1, 0, -2), lambda x: x.transpose(2, 0, 1)),
    ".T": (lambda x: x.T, lambda x: x.T),
    "expand": (lambda x: x[:, :1].expand(2, 3, 4), lambda x: np.repeat(x[:, :1], 3, 1)),
    "expand_-1": (lambda x: x[:, :1].expand(5, -1, 3, -1),
                  lambda x: np.broadcast_to(x[:, :1], (5, 2, 3, 4))),
    "getitem_int": (lambda x: x[1], lambda x: x[1]),
    "getitem_negative_int": (lambda x: x[-1, 2], lambda x: x[-1, 2]),
    "getitem_slices": (lambda x: x[:, 1:3, ::2], lambda x: x[:, 1:3, ::2]),
    "getitem_reverse": (lambda x: x[..., ::-1], lambda x: x[..., ::-1]),
    "getitem_ellipsis_none": (lambda x: x[..., None, 1:3], lambda x: x[..., None, 1:3]),
    "getitem_int_array_repeats": (lambda x: x[[0, 0, 1]], lambda x: x[[0, 0, 1]]),
    "getitem_int_array_axis1": (lambda x: x[:, [2, 0, 2, 2]], lambda x: x[:, [2, 0, 2, 2]]),
    "getitem_two_arrays": (lambda x: x[[0, 1, 1], [2, 2, 0]], lambda x: x[[0, 1, 1], [2, 2, 0]]),
    "getitem_int_tensor": (lambda x: x[Tensor(np.array([1, 1, 0]))], lambda x: x[[1, 1, 0]]),
    "getitem_2d_array": (lambda x: x[np.array([[0, 1], [1, 1]])],
                         lambda x: x[np.array([[0, 1], [1, 1]])]),
    "getitem_bool_full": (lambda x: x[MASK_234], lambda x: x[MASK_234]),
    "getitem_bool_last_axis": (lambda x: x[:, :, MASK_34[0]], lambda x: x[:, :, MASK_34[0]]),
    "getitem_bool_tensor": (lambda x: x[Tensor(MASK_234[..., 0])], lambda x: x[MASK_234[..., 0]]),
    "masked_fill": (lambda x: x.masked_fill(MASK_34, -2.0), lambda x: np.where(MASK_34, -2.0, x)),
    "masked_fill_full": (lambda x: x.masked_fill(Tensor(MASK_234), 0.0),
                         lambda x: np.where(MASK_234, 0.0, x)),
    "masked_fill_214": (lambda x: x.masked_fill(MASK_214, 7.0),
                        lambda x: np.where(MASK_214, 7.0, x)),
    "where_scalar_b": (lambda x: Tensor.where(MASK_234, x, 0.5),
                       lambda x: np.where(MASK_234, x, 0.5)),
    "where_scalar_a": (lambda x: Tensor.where(MASK_34, -1.0, x),
                       lambda x: np.where(MASK_34, -1.0, x)),
    "where_wide_condition": (lambda x: Tensor.where(MASK_234, x[0, 0], x[1, :, :1]),
                             lambda x: np.where(MASK_234, x[0, 0], x[1, :, :1])),
    "stack_0": (lambda x: Tensor.stack([x, x * 3.0, x[0:1].expand(2, 3, 4)]),
                lambda x: np.stack([x, x * 3.0, np.broadcast_to(x[0:1], (2, 3, 4))])),
    "stack_-1": (lambda x: Tensor.stack([x, -x], axis=-1), lambda x: np.stack([x, -x], axis=-1)),
    "stack_1": (lambda x: Tensor.stack([x[0], x[1]], axis=1), lambda x: np.stack([x[0], x[1]], 1)),
    "cat_self": (lambda x: Tensor.cat([x, x * 2.0], axis=1),
                 lambda x: np.concatenate([x, x * 2], 1)),
    "split_int": (lambda x: Tensor.cat(x.split(3, axis=-1)[::-1], axis=-1),
                  lambda x: np.concatenate([x[..., 3:], x[..., :3]], -1)),
    "split_list": (lambda x: Tensor.cat([p * (i + 1.0) for i, p in enumerate(x.split([1, 2], 1))],
                                        1),
                   lambda x: np.concatenate([x[:, :1], 2 * x[:, 1:]], 1)),
    "split_pieces": (lambda x: Tensor.stack(x.split(1, axis=0)), lambda x: x[:, None]),
}


@pytest.mark.parametrize("name", list(MOVEMENT))
def test_movement(name):
    fn, ref = MOVEMENT[name]
    check(fn, ref, [make_array((2, 3, 4))])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cat_of_different_sizes(axis):
    a = axis % 3
    arrays = [make_array((2, 3, 4)[:a] + (n,) + (2, 3, 4)[a + 1:], seed=n) for n in (1, 2, 3)]
    check(lambda *ts: Tensor.cat(ts, axis=axis), lambda *xs: np.concatenate(xs, axis), arrays)


# ----- composite functions ------------------------------------------------------
def np_cross_entropy(logits, target, ignore_index=None, label_smoothing=0.0):
    c = logits.shape[-1]
    logp = np_log_softmax(logits.reshape(-1, c))
    target = np.asarray(target).reshape(-1)
    kept = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    nll = -logp[np.arange(len(target))[kept], target[kept]]
    smooth = -logp[kept].mean(axis=-1)
    return ((1 - label_smoothing) * nll + label_smoothing * smooth).mean()


@pytest.mark.parametrize("name", list(CROSS_ENTROPY_CASES))
def test_cross_entropy(name):
    shape, target, kwargs = CROSS_ENTROPY_CASES[name]
    check(lambda x: F.cross_entropy(x, target, **kwargs),
          lambda x: np_cross_entropy(x, target, **kwargs), [make_array(shape)])


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_axes(name, axis):
    ref = np_softmax if name == "softmax" else np_log_softmax
    check(lambda x: getattr(F, name)(x, axis=axis), lambda x: ref(x, axis), [make_array((2, 3, 4))])


def np_layer_norm(x, n_axes, weight=None, bias=None, eps=1e-5):
    axes = tuple(range(x.ndim - n_axes, x.ndim))
    out = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)
    return out * (1 if weight is None else weight) + (0 if bias is None else bias)


@pytest.mark.parametrize("normalized_shape", [4, (3, 4)], ids=str)
def test_layer_norm_affine(normalized_shape):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
    check(lambda x, w, b: F.layer_norm(x, normalized_shape, w, b),
          lambda x, w, b: np_layer_norm(x, len(shape), w, b),
          [make_array((2, 3, 4)), make_array(shape, seed=1) + 1.0, make_array(shape, seed=2)])


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4)], ids=str)
def test_layer_norm_plain(shape):
    check(lambda x: F.layer_norm(x, 4, eps=1e-3), lambda x: np_layer_norm(x, 1, eps=1e-3),
          [make_array(shape)])


@pytest.mark.parametrize("p, training", [(0.5, True), (0.0, True), (0.5, False), (1.0, True)])
def test_dropout(p, training):
    def dropped(x):
        manual_seed(7)  # the same mask at every finite-difference evaluation
        return F.dropout(x, p, training)
    check(dropped, None, [make_array((2, 3, 4))])


def np_attention(q, k, v, mask):
    scores = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, -np.inf, scores)
    finite_max = np.max(np.where(np.isinf(scores), -1e300, scores), -1, keepdims=True)
    e = np.exp(scores - finite_max)
    total = e.sum(-1, keepdims=True)
    weights = e / np.where(total == 0, 1, total)
    return weights @ v, weights


@pytest.mark.parametrize("output", [0, 1], ids=["out", "weights"])
@pytest.mark.parametrize("mask", list(SDPA_MASKS))
def test_scaled_dot_product_attention(mask, output):
    m = SDPA_MASKS[mask]
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=m)[output],
          lambda q, k, v: np_attention(q, k, v, m)[output], attention_inputs())
