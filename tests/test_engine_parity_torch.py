"""PyTorch as the oracle: every op, forward values and gradients, in float64,
to 1e-7. Skipped where torch is not installed.

Each case is our function and PyTorch's, applied to the same float64 arrays;
`compare` checks the outputs, then runs backward from one random upstream
gradient through both and checks every input's gradient. Where we differ
from PyTorch on purpose, a test at the bottom says so.
"""
import math

import numpy as np
import pytest

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor, manual_seed

from conftest import (CROSS_ENTROPY_CASES, MATMUL_SHAPES, PAIRS, SDPA_MASKS, attention_inputs,
                      make_array, torch_compare)

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = dict(rtol=1e-7, atol=1e-7)


def compare(ours, theirs, arrays):
    torch_compare(ours, theirs, arrays, np.float64, TOL)


def reverse_axes(t):
    return t.permute(*reversed(range(t.ndim)))


# ----- elementwise, one input: (ours, torch's, input kind) ---------------------
UNARY = {
    "neg": (lambda x: -x, lambda x: -x, "any"),
    "exp": (lambda x: x.exp(), torch.exp, "any"),
    "log": (lambda x: x.log(), torch.log, "positive"),
    "sqrt": (lambda x: x.sqrt(), torch.sqrt, "positive"),
    "tanh": (lambda x: x.tanh(), torch.tanh, "any"),
    "sigmoid": (lambda x: x.sigmoid(), torch.sigmoid, "any"),
    "relu": (lambda x: x.relu(), torch.relu, "nonzero"),
    "gelu": (lambda x: x.gelu(), TF.gelu, "any"),
    "gelu_functional": (lambda x: F.gelu(x), TF.gelu, "any"),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda x: TF.gelu(x, approximate="tanh"), "any"),
    "abs": (lambda x: x.abs(), torch.abs, "nonzero"),
    "pow2": (lambda x: x ** 2, lambda x: x ** 2, "any"),
    "pow3": (lambda x: x ** 3, lambda x: x ** 3, "any"),
    "pow0": (lambda x: x ** 0, lambda x: x ** 0, "any"),
    "pow_half": (lambda x: x ** 0.5, lambda x: x ** 0.5, "positive"),
    "pow_neg_1.5": (lambda x: x ** -1.5, lambda x: x ** -1.5, "positive"),
    "rpow": (lambda x: 2 ** x, lambda x: 2 ** x, "any"),
    "rsub": (lambda x: 1.5 - x, lambda x: 1.5 - x, "any"),
    "rdiv": (lambda x: 1.5 / x, lambda x: 1.5 / x, "nonzero"),
    "softmax": (lambda x: F.softmax(x), lambda x: torch.softmax(x, -1), "any"),
    "softmax_axis0": (lambda x: F.softmax(x, axis=0), lambda x: torch.softmax(x, 0), "any"),
    "log_softmax": (lambda x: F.log_softmax(x), lambda x: torch.log_softmax(x, -1), "any"),
    "log_softmax_axis1": (lambda x: F.log_softmax(x, 1), lambda x: torch.log_softmax(x, 1), "any"),
    # movement
    "reshape": (lambda x: x.reshape(4, -1), lambda x: x.reshape(4, -1), "any"),
    "view": (lambda x: x.view(3, 8), lambda x: x.view(3, 8), "any"),
    "transpose": (lambda x: x.transpose(0, 2), lambda x: x.transpose(0, 2), "any"),
    "transpose_default": (lambda x: x.transpose(), lambda x: x.transpose(-2, -1), "any"),
    "permute": (lambda x: x.permute(1, 2, 0), lambda x: x.permute(1, 2, 0), "any"),
    ".T": (lambda x: x.T, reverse_axes, "any"),
    "expand": (lambda x: x[:, :1].expand(2, 3, -1), lambda x: x[:, :1].expand(2, 3, -1), "any"),
    "expand_new_axes": (lambda x: x[0, 0].expand(5, 3, 4), lambda x: x[0, 0].expand(5, 3, 4),
                        "any"),
    "getitem_int": (lambda x: x[1, -1], lambda x: x[1, -1], "any"),
    "getitem_slices": (lambda x: x[:, 1:, ::2], lambda x: x[:, 1:, ::2], "any"),
    "getitem_ellipsis_none": (lambda x: x[..., None, 2], lambda x: x[..., None, 2], "any"),
    "getitem_repeats": (lambda x: x[[0, 0, 1, 0]], lambda x: x[[0, 0, 1, 0]], "any"),
    "getitem_axis1_repeats": (lambda x: x[:, [2, 2, 0]], lambda x: x[:, [2, 2, 0]], "any"),
    "getitem_pairs": (lambda x: x[[1, 1, 0], [0, 0, 2]], lambda x: x[[1, 1, 0], [0, 0, 2]], "any"),
    "getitem_bool": (lambda x: x[x.data > 0], lambda x: x[x > 0], "any"),
    "getitem_bool_rows": (lambda x: x[np.array([True, False])],
                          lambda x: x[torch.tensor([True, False])], "any"),
    "split_int": (lambda x: x.split(3, axis=-1)[1], lambda x: x.split(3, dim=-1)[1], "any"),
    "split_list": (lambda x: x.split([2, 1], axis=1)[0] * 2.0 + x.split([2, 1], axis=1)[1],
                   lambda x: x.split([2, 1], dim=1)[0] * 2.0 + x.split([2, 1], dim=1)[1], "any"),
    "stack": (lambda x: Tensor.stack([x, 2.0 * x], axis=-1),
              lambda x: torch.stack([x, 2.0 * x], dim=-1), "any"),
    "cat": (lambda x: Tensor.cat([x, x[:, :1]], axis=1), lambda x: torch.cat([x, x[:, :1]], 1),
            "any"),
}


@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name):
    ours, theirs, kind = UNARY[name]
    compare(ours, theirs, [make_array((2, 3, 4), kind)])


# derivative conventions at the kinks and at 0: relu'(0) = |x|'(0) = 0,
# d(x^n)/dx at 0 is 0 for n = 0 and n >= 1, inf for 0 < n < 1
AT_ZERO = {
    "relu": (lambda x: x.relu(), torch.relu),
    "abs": (lambda x: x.abs(), torch.abs),
    "pow0": (lambda x: x ** 0, lambda x: x ** 0),
    "pow1": (lambda x: x ** 1, lambda x: x ** 1),
    "pow2": (lambda x: x ** 2, lambda x: x ** 2),
    "pow_half": (lambda x: x ** 0.5, lambda x: x ** 0.5),
    "sqrt": (lambda x: x.sqrt(), torch.sqrt),
    "gelu": (lambda x: x.gelu(), TF.gelu),
    "max_ties": (lambda x: x.max(), torch.amax),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy on 1/0 = inf, as intended
@pytest.mark.parametrize("name", list(AT_ZERO))
def test_at_zero(name):
    ours, theirs = AT_ZERO[name]
    compare(ours, theirs, [np.array([0.0, 2.0, 0.0, 1.5, 2.0])])


@pytest.mark.parametrize("shapes", PAIRS, ids=str)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary(op, shapes):
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[op]
    compare(fn, fn, [make_array(shapes[0], seed=1),
                     make_array(shapes[1], "nonzero" if op == "div" else "any", seed=2)])


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
    compare(lambda a, b: a @ b, torch.matmul,
            [make_array(shapes[0], seed=1), make_array(shapes[1], seed=2)])


# ----- reductions ----------------------------------------------------------------
def torch_reduction(name, axis, keepdims):
    dim = tuple(range(3)) if axis is None else axis
    return {
        "sum": lambda x: x.sum(dim=dim, keepdim=keepdims),
        "mean": lambda x: x.mean(dim=dim, keepdim=keepdims),
        "max": lambda x: torch.amax(x, dim=dim, keepdim=keepdims),
        "var": lambda x: x.var(dim=dim, keepdim=keepdims, unbiased=False),
    }[name]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("name", ["sum", "mean", "max", "var"])
def test_reduction(name, axis, keepdims):
    compare(lambda x: getattr(x, name)(axis=axis, keepdims=keepdims),
            torch_reduction(name, axis, keepdims),
            [make_array((2, 3, 4), "distinct" if name == "max" else "any")])


@pytest.mark.parametrize("axis", [None, 0, -1])
def test_max_shares_gradient_among_ties_like_amax(axis):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0], [3.0, -1.0, 3.0]])
    compare(lambda t: t.max(axis=axis), lambda t: torch.amax(t, dim=() if axis is None else axis),
            [x])


# ----- masks, joins, conditionals ---------------------------------------------------
MASK = make_array((3, 4), seed=4) > 0


@pytest.mark.parametrize("mask", [MASK, MASK[:1], MASK[:, :1], make_array((2, 3, 4), seed=5) > 0],
                         ids=["(3,4)", "(1,4)", "(3,1)", "(2,3,4)"])
def test_masked_fill(mask):
    compare(lambda x: x.masked_fill(mask, -7.5),
            lambda x: x.masked_fill(torch.from_numpy(mask), -7.5), [make_array((2, 3, 4))])


def test_masked_fill_with_a_0d_tensor_value_that_requires_grad():
    compare(lambda x, v: x.masked_fill(MASK, v), lambda x, v: x.masked_fill(torch.from_numpy(MASK), v),
            [make_array((2, 3, 4)), np.array(-7.5)])


def test_masked_fill_with_a_constant_0d_tensor_value():
    compare(lambda x: x.masked_fill(MASK, Tensor(-7.5, dtype=np.float64)),
            lambda x: x.masked_fill(torch.from_numpy(MASK), torch.tensor(-7.5, dtype=torch.float64)),
            [make_array((2, 3, 4))])


WHERE = {
    "tensors": (lambda a, b: Tensor.where(MASK, a, b),
                lambda a, b: torch.where(torch.from_numpy(MASK), a, b)),
    "scalar_b": (lambda a, b: Tensor.where(MASK, a, 0.25) * b,
                 lambda a, b: torch.where(torch.from_numpy(MASK), a, 0.25) * b),
    "scalar_a": (lambda a, b: Tensor.where(MASK, -1.0, a) * b,
                 lambda a, b: torch.where(torch.from_numpy(MASK), -1.0, a) * b),
}


@pytest.mark.parametrize("name", list(WHERE))
def test_where(name):
    ours, theirs = WHERE[name]
    compare(ours, theirs, [make_array((2, 1, 4), seed=1), make_array((3, 1), seed=2)])


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("join", ["cat", "stack"])
def test_joins(join, axis):
    arrays = [make_array((2, 3, 4), seed=i) for i in range(3)]
    compare(lambda *ts: getattr(Tensor, join)(ts, axis=axis),
            lambda *ts: getattr(torch, join)(ts, dim=axis), arrays)


def test_comparisons_match_and_carry_no_grad():
    a, b = make_array((2, 3), seed=1), make_array((3,), seed=2)
    b[1] = a[0, 1]  # one tie, so == and <= have something to find
    ta, tb = Tensor(a, requires_grad=True, dtype=np.float64), Tensor(b, dtype=np.float64)
    for op in ["__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"]:
        ours = getattr(ta, op)(tb)
        assert ours.dtype == np.bool_ and not ours.requires_grad
        theirs = getattr(torch.tensor(a), op)(torch.tensor(b))
        np.testing.assert_array_equal(ours.data, theirs.numpy())


# ----- composite functions ---------------------------------------------------------
def torch_cross_entropy(logits, target, **kwargs):
    target = torch.from_numpy(target)
    if logits.ndim == 3:  # torch wants the classes second: (B, C, T)
        logits = logits.permute(0, 2, 1)
    return TF.cross_entropy(logits, target, **kwargs)


@pytest.mark.parametrize("name", list(CROSS_ENTROPY_CASES))
def test_cross_entropy(name):
    shape, target, kwargs = CROSS_ENTROPY_CASES[name]
    compare(lambda x: F.cross_entropy(x, target, **kwargs),
            lambda x: torch_cross_entropy(x, target, **kwargs), [make_array(shape)])


@pytest.mark.parametrize("shape, normalized",
                         [((2, 3, 4), (4,)), ((2, 3, 4), (3, 4)), ((5,), (5,))], ids=str)
def test_layer_norm(shape, normalized):
    arrays = [make_array(shape), make_array(normalized, seed=1) + 1.0,
              make_array(normalized, seed=2)]
    compare(lambda x, w, b: F.layer_norm(x, normalized, w, b),
            lambda x, w, b: TF.layer_norm(x, normalized, w, b), arrays)


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (0, 4)], ids=str)
def test_linear_relu(shape):
    arrays = [make_array(shape), make_array((3, 4), seed=1), make_array((3,), seed=2)]
    compare(F.linear_relu, lambda x, w, b: TF.relu(TF.linear(x, w, b)), arrays)


def test_layer_norm_without_affine_and_custom_eps():
    compare(lambda x: F.layer_norm(x, 4, eps=1e-2), lambda x: TF.layer_norm(x, (4,), eps=1e-2),
            [make_array((3, 4)) * 0.1])


@pytest.mark.parametrize("p, training", [(0.0, True), (0.7, False)])
def test_dropout_identity(p, training):
    compare(lambda x: F.dropout(x, p, training), lambda x: TF.dropout(x, p, training),
            [make_array((2, 3, 4))])


def test_dropout_matches_torch_given_the_same_mask():
    """Random masks differ between libraries; with ours read off a seeded
    run, the scaling and the gradient must match PyTorch's x * m / (1 - p)."""
    x = make_array((4, 50), "positive")

    def ours(t):
        manual_seed(3)
        return F.dropout(t, 0.3)

    mask = ours(Tensor(x, dtype=np.float64)).data != 0
    assert 0.5 < mask.mean() < 0.9
    compare(ours, lambda t: t * torch.from_numpy(mask) / 0.7, [x])


@pytest.mark.parametrize("mask", [m for m in SDPA_MASKS if m != "fully_masked_row"])  # torch: NaN
def test_scaled_dot_product_attention(mask):
    m = SDPA_MASKS[mask]
    torch_mask = None if m is None else ~torch.from_numpy(m)  # torch: True = may attend

    def ours(q, k, v):
        out, weights = F.scaled_dot_product_attention(q, k, v, mask=m)
        return out.sum(-1, keepdims=True) * 0.5 + weights  # both outputs feed the gradient

    def theirs(q, k, v):
        out = TF.scaled_dot_product_attention(q, k, v, attn_mask=torch_mask)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if m is not None:
            scores = scores.masked_fill(torch.from_numpy(m), -math.inf)
        return out.sum(-1, keepdim=True) * 0.5 + torch.softmax(scores, -1)

    compare(ours, theirs, attention_inputs())


# ----- where we differ from PyTorch on purpose ---------------------------------------
def test_softmax_of_an_all_masked_row_is_zero_where_torch_gives_nan():
    x = np.array([[1.0, -np.inf, 2.0], [-np.inf, -np.inf, -np.inf]])
    ours = F.softmax(Tensor(x, dtype=np.float64)).data
    theirs = torch.softmax(torch.tensor(x), -1).numpy()
    np.testing.assert_allclose(ours[0], theirs[0], **TOL)
    assert np.isnan(theirs[1]).all()
    np.testing.assert_array_equal(ours[1], 0.0)


def test_var_is_the_population_variance_not_torchs_default():
    x = make_array((2, 3, 4))
    ours = Tensor(x, dtype=np.float64).var(axis=-1).data
    np.testing.assert_allclose(ours, torch.tensor(x).var(-1, unbiased=False).numpy(), **TOL)
    assert not np.allclose(ours, torch.tensor(x).var(-1).numpy())


def test_attention_mask_true_blocks_as_in_multihead_attention_not_as_in_torch_sdpa():
    q, k, _ = attention_inputs()
    v = make_array((2, 5, 4), seed=3)
    mask = SDPA_MASKS["causal"]
    ours, _ = F.scaled_dot_product_attention(*(Tensor(a, dtype=np.float64) for a in (q, k, v)),
                                             mask=mask)
    tq, tk, tv = map(torch.tensor, (q, k, v))
    # torch's functional scaled_dot_product_attention: a boolean attn_mask is True = attend
    flipped = TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.from_numpy(~mask))
    np.testing.assert_allclose(ours.data, flipped.numpy(), **TOL)
    same = TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.from_numpy(mask))
    assert not np.allclose(ours.data, same.numpy())
    # nn.MultiheadAttention (one head, identity projections): True = blocked, as ours
    mha = torch.nn.MultiheadAttention(4, 1, bias=False, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.eye(4, dtype=torch.float64).repeat(3, 1))
        mha.out_proj.weight.copy_(torch.eye(4, dtype=torch.float64))
        theirs, _ = mha(tq, tk, tv, attn_mask=torch.from_numpy(mask))
    np.testing.assert_allclose(ours.data, theirs.numpy(), **TOL)
    doc = " ".join(F.scaled_dot_product_attention.__doc__.split())
    assert "torch.nn.functional.scaled_dot_product_attention" in doc and "True = attend" in doc
    assert "nn.MultiheadAttention" in doc


def test_cross_entropy_takes_classes_last_where_torch_takes_them_second():
    logits, target = make_array((2, 3, 4)), np.array([[0, 3, 1], [2, 2, 0]])
    ours = F.cross_entropy(Tensor(logits, dtype=np.float64), target).item()
    theirs = TF.cross_entropy(torch.tensor(logits).permute(0, 2, 1), torch.from_numpy(target))
    assert math.isclose(ours, theirs.item(), rel_tol=1e-12)
    doc = " ".join(F.cross_entropy.__doc__.split())
    assert "(B, C, T)" in doc and "PyTorch" in doc


def test_cross_entropy_with_every_target_ignored_is_zero_where_torch_gives_nan():
    logits, target = make_array((3, 4)), np.array([1, 1, 1])
    ours = F.cross_entropy(Tensor(logits, dtype=np.float64), target, ignore_index=1)
    assert ours.item() == 0.0
    assert math.isnan(TF.cross_entropy(torch.tensor(logits), torch.tensor(target), ignore_index=1))
