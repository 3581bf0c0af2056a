"""The tensor API's new functions against PyTorch (forward values and the
gradient of every input, in float32 and float64) and against finite
differences (float64 gradcheck), over the shape sweep: 0-d and empty tensors,
broadcasting, negative axes, keepdim. Skipped without torch, except the
gradchecks at the bottom of each family, which need only numpy.
"""
import numpy as np
import pytest

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor
from tinygrad_enc.gradcheck import gradcheck

from conftest import PAIRS, SHAPES, check_gradient, make_array, torch_compare as compare

SWEEP = SHAPES + [(0,), (2, 0)]


def _torch():
    return pytest.importorskip("torch")


def _t(name):
    """torch's function of that name, looked up when a test runs."""
    return lambda *args, **kwargs: getattr(_torch(), name)(*args, **kwargs)


def _tf(name):
    return lambda *args, **kwargs: getattr(_torch().nn.functional, name)(*args, **kwargs)


# ----- elementwise, one input: name -> (ours, torch's, input kind) ---------------
UNARY = {
    "sin": (lambda x: x.sin(), _t("sin"), "any"),
    "cos": (lambda x: x.cos(), _t("cos"), "any"),
    "erf": (lambda x: x.erf(), _t("erf"), "any"),
    "rsqrt": (lambda x: x.rsqrt(), _t("rsqrt"), "positive"),
    "square": (lambda x: x.square(), _t("square"), "any"),
    "sign": (lambda x: x.sign(), _t("sign"), "nonzero"),
    "floor": (lambda x: (x * 3).floor(), lambda x: (x * 3).floor(), "any"),
    "ceil": (lambda x: (x * 3).ceil(), lambda x: (x * 3).ceil(), "any"),
    "round": (lambda x: (x * 3).round(), lambda x: (x * 3).round(), "any"),
    "round_decimals": (lambda x: x.round(decimals=1), lambda x: x.round(decimals=1), "any"),
    "silu": (lambda x: x.silu(), _tf("silu"), "any"),
    "F.silu": (lambda x: F.silu(x), _tf("silu"), "any"),
    "softplus": (lambda x: x.softplus(), _tf("softplus"), "any"),
    "softplus_beta": (lambda x: F.softplus(x * 3, beta=2, threshold=1.5),
                      lambda x: _tf("softplus")(x * 3, beta=2, threshold=1.5), "any"),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda x: _tf("leaky_relu")(x, 0.1), "nonzero"),
    "leaky_relu_default": (lambda x: x.leaky_relu(), _tf("leaky_relu"), "nonzero"),
    "elu": (lambda x: F.elu(x, 0.7), lambda x: _tf("elu")(x, 0.7), "nonzero"),
    "clamp": (lambda x: x.clamp(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5), "any"),
    "clamp_min": (lambda x: x.clamp(min=0.1), lambda x: x.clamp(min=0.1), "any"),
    "clip_max": (lambda x: x.clip(max=-0.1), lambda x: x.clip(max=-0.1), "any"),
    "pow_tensor_exponent_number_base": (lambda x: 1.7 ** x, lambda x: 1.7 ** x, "any"),
    "negative_number_base": (lambda x: (-2.0) ** (x * 3).round(),
                             lambda x: (-2.0) ** (x * 3).round(), "any"),
    "maximum_number": (lambda x: x.maximum(0.2), lambda x: x.maximum(_t("tensor")(0.2)), "any"),
    "float_cast": (lambda x: x.double().float() * x, lambda x: x.double().float() * x, "any"),
}


# (one test per function and dtype, looping over the shapes: a failure names the shape)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_matches_torch(name, dtype):
    ours, theirs, kind = UNARY[name]
    for shape in SWEEP:
        compare(ours, theirs, [make_array(shape, kind)], dtype)


@pytest.mark.parametrize("name", [n for n in UNARY if n != "float_cast"])  # float32 rounds
def test_unary_gradcheck(name):
    for shape in SHAPES:
        check_gradient(UNARY[name][0], [make_array(shape, UNARY[name][2])])


def test_round_is_half_to_even_and_steps_have_zero_gradient():
    x = Tensor([0.5, 1.5, 2.5, -0.5, -1.5, 0.49], requires_grad=True)
    np.testing.assert_array_equal(x.round().data, [0, 2, 2, -0.0, -2, 0])
    for step in (x.round(), x.floor(), x.ceil(), x.sign()):
        x.grad = None
        step.sum().backward()
        np.testing.assert_array_equal(x.grad, 0.0)
    assert x.floor().requires_grad  # as PyTorch: a gradient of zeros, not an error


def test_softplus_and_elu_are_finite_for_huge_inputs():
    x = Tensor([-1e4, -100.0, 0.0, 100.0, 1e4], requires_grad=True, dtype=np.float64)
    (x.softplus() + x.elu()).sum().backward()
    assert np.all(np.isfinite(x.grad))
    np.testing.assert_allclose(x.softplus().data, [0, 0, np.log(2), 100, 1e4], atol=1e-40)
    np.testing.assert_allclose(x.grad, [0, 3.7e-44, 1.5, 2, 2], atol=1e-40)


def test_clamp_gradient_at_the_bounds_goes_to_x_as_in_pytorch():
    torch = _torch()
    data = [-1.0, -0.5, 0.0, 0.5, 1.0]
    x, xt = Tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    x.clamp(-0.5, 0.5).sum().backward()
    xt.clamp(-0.5, 0.5).sum().backward()
    np.testing.assert_array_equal(x.grad, xt.grad.numpy())


# ----- elementwise, two inputs: over the broadcasting pairs -------------------------
BINARY = {
    "maximum": (lambda a, b: a.maximum(b), _t("maximum"), "any", "any"),
    "minimum": (lambda a, b: a.minimum(b), _t("minimum"), "any", "any"),
    "max_other": (lambda a, b: a.max(b), _t("max"), "any", "any"),
    "min_other": (lambda a, b: a.min(b), _t("min"), "any", "any"),
    "pow_tensor": (lambda a, b: a ** b, lambda a, b: a ** b, "positive", "any"),
    "clamp_tensors": (lambda a, b: a.clamp(-b.abs() - 0.1, b.abs() * 0.5 + 0.1),
                      lambda a, b: a.clamp(-b.abs() - 0.1, b.abs() * 0.5 + 0.1),
                      "any", "nonzero"),
    "mse_none": (lambda a, b: F.mse_loss(a, b, reduction="none"),
                 lambda a, b: _tf("mse_loss")(a, b, reduction="none"), "any", "any"),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_matches_torch(name, dtype):
    ours, theirs, kind_a, kind_b = BINARY[name]
    for shapes in PAIRS:
        if name == "mse_none" and shapes[0] != shapes[1]:
            continue  # mse_loss takes one shape (a documented difference)
        arrays = [make_array(shapes[0], kind_a, seed=1), make_array(shapes[1], kind_b, seed=2)]
        compare(ours, theirs, arrays, dtype)


@pytest.mark.parametrize("name", [n for n in BINARY if n != "mse_none"])
def test_binary_gradcheck(name):
    ours, _, kind_a, kind_b = BINARY[name]
    for shapes in PAIRS:
        check_gradient(ours, [make_array(shapes[0], kind_a, seed=1),
                              make_array(shapes[1], kind_b, seed=2)])


def test_maximum_splits_a_tie_like_pytorch():
    torch = _torch()
    a, b = Tensor([1.0, 2.0, 3.0], requires_grad=True), Tensor([1.0, 5.0, 0.0], requires_grad=True)
    at, bt = (torch.tensor(v.data, requires_grad=True) for v in (a, b))
    (a.maximum(b) + a.minimum(b) * 2).sum().backward()
    (torch.maximum(at, bt) + torch.minimum(at, bt) * 2).sum().backward()
    np.testing.assert_array_equal(a.grad, at.grad.numpy())
    np.testing.assert_array_equal(b.grad, bt.grad.numpy())


def test_pow_at_zero_base_matches_pytorch():
    torch = _torch()
    base, exponent = [0.0, 0.0, 2.0, -2.0], [0.0, 2.0, 0.0, 3.0]
    a, b = Tensor(base, requires_grad=True), Tensor(exponent, requires_grad=True)
    at, bt = torch.tensor(base, requires_grad=True), torch.tensor(exponent, requires_grad=True)
    (a ** b).sum().backward()
    (at ** bt).sum().backward()
    np.testing.assert_allclose((a ** b).data, (at ** bt).detach().numpy())
    np.testing.assert_allclose(a.grad, at.grad.numpy())
    np.testing.assert_allclose(b.grad[:3], bt.grad.numpy()[:3])  # ln(-2) is NaN in both
    assert np.isnan(b.grad[3]) and np.isnan(bt.grad.numpy()[3])


# ----- reductions: (ours(x, axis, keepdims), torch's, input kind) -------------------
def _dims(x, axis):
    """torch's spelling of our axis: None -> every axis."""
    return tuple(range(x.ndim)) if axis is None else axis


REDUCTIONS = {
    "min": (lambda x, a, k: x.min(a, k), lambda x, a, k: x.amin(_dims(x, a), keepdim=k),
            "distinct"),
    "min_dim_keepdim": (lambda x, a, k: x.min(dim=a, keepdim=k),
                        lambda x, a, k: x.amin(_dims(x, a), keepdim=k), "distinct"),
    "std": (lambda x, a, k: x.std(a, k), lambda x, a, k: x.std(_dims(x, a), keepdim=k), "any"),
    "std_correction0": (lambda x, a, k: x.std(dim=a, keepdim=k, correction=0),
                        lambda x, a, k: x.std(_dims(x, a), keepdim=k, correction=0), "any"),
    "var_unbiased": (lambda x, a, k: x.var(a, k, unbiased=True),
                     lambda x, a, k: x.var(_dims(x, a), keepdim=k, unbiased=True), "any"),
    "var_correction2": (lambda x, a, k: x.var(a, k, correction=2),
                        lambda x, a, k: x.var(_dims(x, a), keepdim=k, correction=2), "any"),
    "var_default_population": (lambda x, a, k: x.var(dim=a, keepdim=k),
                               lambda x, a, k: x.var(_dims(x, a), keepdim=k, correction=0),
                               "any"),
    "logsumexp": (lambda x, a, k: x.logsumexp(a, k),
                  lambda x, a, k: x.logsumexp(_dims(x, a), keepdim=k), "any"),
    "sum_dim": (lambda x, a, k: x.sum(dim=a, keepdim=k),
                lambda x, a, k: x.sum(_dims(x, a), keepdim=k), "any"),
    "mean_dim": (lambda x, a, k: x.mean(dim=a, keepdim=k),
                 lambda x, a, k: x.mean(_dims(x, a), keepdim=k), "any"),
    "max_dim": (lambda x, a, k: x.max(dim=a, keepdim=k),
                lambda x, a, k: x.amax(_dims(x, a), keepdim=k), "distinct"),
    "softmax_dim": (lambda x, a, k: F.softmax(x, dim=a if a is not None else -1),
                    lambda x, a, k: x.softmax(a if a is not None else -1), "any"),
    "log_softmax_dim": (lambda x, a, k: F.log_softmax(x, dim=a if a is not None else -1),
                        lambda x, a, k: x.log_softmax(a if a is not None else -1), "any"),
}
# prod and cumsum take one axis in PyTorch
ONE_AXIS = {
    "prod": (lambda x, a, k: x.prod(a, k),
             lambda x, a, k: x.prod().reshape((1,) * x.ndim if k else ()) if a is None
             else x.prod(a, keepdim=k), "any"),
    "cumsum": (lambda x, a, k: x.cumsum(dim=0 if a is None else a),
               lambda x, a, k: x.cumsum(0 if a is None else a), "any"),
}
AXES = [(None, False), (None, True), (0, False), (-1, True), ((0, -1), False), ((-1, 0), True)]
REDUCE_SHAPES = [(), (3,), (2, 3), (2, 3, 4)]


def _reduction_cases(table, axes):
    for name in table:
        for shape in REDUCE_SHAPES:
            for axis, keep in axes:
                if isinstance(axis, tuple) and len(shape) < 2 or axis is not None and not shape:
                    continue
                if name.startswith(("softmax", "log_softmax")) and (keep or isinstance(axis,
                                                                                       tuple)):
                    continue
                yield name, shape, axis, keep


REDUCE_CASES = list(_reduction_cases(REDUCTIONS, AXES))
ONE_AXIS_CASES = list(_reduction_cases(ONE_AXIS, [a for a in AXES if not isinstance(a[0], tuple)]))


def _reduction_inputs(name):
    """(ours, theirs, axis, keepdims, x) for each shape and axis of the sweep,
    leaving out a variance of n <= correction elements (inf or NaN: tested
    below)."""
    table = REDUCTIONS if name in REDUCTIONS else ONE_AXIS
    ours, theirs, kind = table[name]
    for case, shape, axis, keep in REDUCE_CASES + ONE_AXIS_CASES:
        if case != name:
            continue
        axes = (axis,) if isinstance(axis, int) else range(len(shape)) if axis is None else axis
        count = np.prod([shape[a] for a in axes])
        if name.startswith(("std", "var")) and count <= (2 if name == "var_correction2" else 1):
            continue
        yield (lambda t, a=axis, k=keep: ours(t, a, k)), \
            (lambda t, a=axis, k=keep: theirs(t, a, k)), make_array(shape, kind)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(REDUCTIONS) + list(ONE_AXIS))
def test_reduction_matches_torch(name, dtype):
    for ours, theirs, x in _reduction_inputs(name):
        compare(ours, theirs, [x], dtype)


@pytest.mark.parametrize("name", list(REDUCTIONS) + list(ONE_AXIS))
def test_reduction_gradcheck(name):
    for ours, _, x in _reduction_inputs(name):
        check_gradient(ours, [x])


@pytest.mark.parametrize("data", [[2.0, 0.0, 3.0, 4.0], [0.0, 5.0, 0.0, 1.0], [[1.0, 0.0], [2.0, 3.0]]])
def test_prod_gradient_with_zeros_matches_torch(data):
    compare(lambda x: x.prod(-1), lambda x: x.prod(-1), [np.array(data)], np.float64)
    compare(lambda x: x.prod(), lambda x: x.prod(), [np.array(data)], np.float64)


def test_reductions_of_empty_and_one_element_tensors_match_torch():
    torch = _torch()
    empty = np.zeros((2, 0))
    for ours, theirs in [(lambda x: x.prod(1), lambda x: x.prod(1)),
                         (lambda x: x.logsumexp(1), lambda x: x.logsumexp(1)),
                         (lambda x: x.cumsum(1), lambda x: x.cumsum(1)),
                         (lambda x: x.std(1), lambda x: x.std(1)),
                         (lambda x: x.any(1), lambda x: x.any(1)),
                         (lambda x: x.all(1), lambda x: x.all(1))]:
        np.testing.assert_array_equal(ours(Tensor(empty)).data, theirs(torch.tensor(empty)).numpy())
    one = Tensor(1.5, dtype=np.float64)
    assert np.isnan(one.std().item()) and np.isnan(one.var(correction=1).item())
    assert one.var().item() == 0.0  # the population variance
    assert np.isinf(Tensor([1.0, 2.0]).var(correction=2).item())  # as torch: n - correction = 0


def test_logsumexp_is_stable_and_handles_infinities():
    torch = _torch()
    data = np.array([[1e4, 1e4 - 1, 0.0], [-np.inf, -np.inf, -np.inf], [np.inf, 0.0, 1.0]])
    np.testing.assert_allclose(Tensor(data, dtype=np.float64).logsumexp(-1).data,
                               torch.tensor(data).logsumexp(-1).numpy())
    compare(lambda x: x.logsumexp(-1), lambda x: x.logsumexp(-1),
            [np.array([[1e4, 1e4 - 1, 0.0], [-1e4, 3.0, 2.0]])], np.float64)


ARG = [(np.argmax, "argmax"), (np.argmin, "argmin")]


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin_match_torch(name, shape):
    torch = _torch()
    data = np.round(make_array(shape) * 2)  # ties on purpose: the first index wins
    x, xt = Tensor(data), torch.tensor(data)
    cases = [dict()] + [dict(dim=d, keepdim=k) for d in range(-len(shape), len(shape) or 1)
                        for k in (False, True)] + [dict(dim=None, keepdim=True)]
    for kwargs in cases:
        got, want = getattr(x, name)(**kwargs), getattr(xt, name)(**kwargs)
        assert got.dtype == np.int64 and got.shape == tuple(want.shape), kwargs
        np.testing.assert_array_equal(got.data, want.numpy(), err_msg=str(kwargs))


def test_argmax_ties_and_nan_as_torch():
    torch = _torch()
    data = np.array([[1.0, 3.0, 3.0], [np.nan, 2.0, np.nan], [0.0, 0.0, 0.0]])
    for axis in (None, 0, 1):
        for fn in ("argmax", "argmin"):
            np.testing.assert_array_equal(getattr(Tensor(data), fn)(axis).data,
                                          getattr(torch.tensor(data), fn)(axis).numpy())


@pytest.mark.parametrize("shape", [(), (0,), (4,), (2, 3), (2, 0, 3)], ids=str)
def test_any_all_match_torch(shape):
    torch = _torch()
    data = make_array(shape) > 0.5
    for fn in ("any", "all"):
        x, xt = Tensor(data), torch.tensor(data)
        got, want = getattr(x, fn)(), getattr(xt, fn)()
        assert got.dtype == np.bool_ and got.shape == tuple(want.shape)
        np.testing.assert_array_equal(got.data, want.numpy())
        for d in range(-len(shape), len(shape)):
            np.testing.assert_array_equal(getattr(x, fn)(dim=d, keepdim=True).data,
                                          getattr(xt, fn)(dim=d, keepdim=True).numpy())
