"""The fused ops of the training step against the composed versions they
replace, in value and gradient (float64 and float32), by finite differences
(float64 gradcheck) and against PyTorch; and one whole training step in
float32 end to end: no float64 array anywhere in its graph or gradients."""
import numpy as np
import pytest

import tinygrad_enc.functional as F
from tinygrad_enc import AnomalyError, Tensor, detect_anomaly, manual_seed, nn, ops, optim
from tinygrad_enc.gradcheck import gradcheck
from tinygrad_enc.tensor import apply, topological_order

from conftest import CROSS_ENTROPY_CASES, leaf, make_array

TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}
DTYPES = [np.float64, np.float32]
LINEAR_SHAPES = [((5, 4), True), ((2, 3, 4), True), ((2, 3, 4), False), ((4,), True),
                 ((0, 4), True)]


def values_and_grads(fn, arrays, dtype):
    tensors = [Tensor(a, requires_grad=True, dtype=dtype) for a in arrays]
    out = fn(*tensors)
    upstream = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(upstream if out.ndim else None)
    return [out.data] + [t.grad for t in tensors]


def assert_same(fn, reference, arrays, dtype):
    got, want = values_and_grads(fn, arrays, dtype), values_and_grads(reference, arrays, dtype)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, err_msg=f"output, then input gradients: {i}", **TOL[dtype])


def linear_inputs(shape, bias):
    arrays = [make_array(shape, seed=1), make_array((3, shape[-1]), seed=2)]
    return arrays + [make_array((3,), seed=3)] if bias else arrays


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, bias", LINEAR_SHAPES)
def test_linear_matches_composed(shape, bias, dtype):
    assert_same(F.linear, F.linear_composed, linear_inputs(shape, bias), dtype)


@pytest.mark.parametrize("shape, bias", LINEAR_SHAPES[:4])
def test_linear_gradcheck(shape, bias):
    tensors = [Tensor(a, requires_grad=True, dtype=np.float64) for a in linear_inputs(shape, bias)]
    assert gradcheck(F.linear, tensors)


def test_linear_gradient_only_where_asked():
    x, w = leaf((2, 4)), Tensor(make_array((3, 4)), dtype=np.float64)
    F.linear(x, w).sum().backward()
    assert w.grad is None and x.grad.shape == (2, 4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, bias", LINEAR_SHAPES)
def test_linear_relu_matches_linear_then_relu(shape, bias, dtype):
    assert_same(F.linear_relu, lambda *t: F.linear_composed(*t).relu(), linear_inputs(shape, bias),
                dtype)


@pytest.mark.parametrize("shape, bias", LINEAR_SHAPES[:4])
def test_linear_relu_gradcheck(shape, bias):
    tensors = [Tensor(a, requires_grad=True, dtype=np.float64) for a in linear_inputs(shape, bias)]
    assert gradcheck(F.linear_relu, tensors)


def test_linear_relu_at_zero_and_nan_follows_relu():
    # exactly 0 before the relu: gradient 0 (as ReLU, and PyTorch); NaN stays NaN
    x = Tensor([[1.0, -1.0], [np.nan, 0.0]], requires_grad=True, dtype=np.float64)
    w = Tensor([[1.0, 1.0], [1.0, -1.0]], requires_grad=True, dtype=np.float64)
    b = Tensor([0.0, 0.0], requires_grad=True, dtype=np.float64)
    fused, composed = F.linear_relu(x, w, b), F.linear_composed(x, w, b).relu()
    np.testing.assert_array_equal(fused.data, composed.data)
    assert fused.data[0, 0] == 0.0 and np.isnan(fused.data[1]).all()
    fused.sum().backward()
    fused_grads = [t.grad.copy() for t in (x, w, b)]
    for t in (x, w, b):
        t.grad = None
    composed.sum().backward()
    for got, (t, name) in zip(fused_grads, ((x, "x"), (w, "w"), (b, "b"))):
        np.testing.assert_array_equal(got, t.grad, err_msg=name)


def test_feed_forward_with_relu_is_one_linear_relu_op_and_matches_composed():
    manual_seed(0)
    ffn = nn.FeedForward(8, 16)
    x = Tensor(make_array((2, 3, 8)), requires_grad=True)
    out = ffn(x)
    assert out._ctx.parents[0]._ctx.op_name == "linear_relu"
    want = F.linear(F.linear(x, ffn.linear1.weight, ffn.linear1.bias).relu(),
                    ffn.linear2.weight, ffn.linear2.bias)
    np.testing.assert_allclose(out.data, want.data, rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match="Linear: relu must be True or False"):
        ffn.linear1(x, relu="yes")


@pytest.mark.parametrize("args, message", [
    (((2, 5), (3, 4), None), r"linear: input \(2, 5\) and weight \(3, 4\)"),
    (((2, 4), (4,), None), r"weight \(4,\)"),
    (((2, 4), (3, 4), (4,)), r"linear: bias \(4,\) must be \(out,\) = \(3,\)"),
])
def test_linear_bad_shapes(args, message):
    x, w, b = (None if s is None else Tensor(np.ones(s)) for s in args)
    with pytest.raises(ValueError, match=message):
        F.linear(x, w, b)
    with pytest.raises(ValueError, match=message.replace("linear:", "linear_relu:")):
        F.linear_relu(x, w, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CROSS_ENTROPY_CASES)
def test_cross_entropy_matches_composed(case, dtype):
    shape, target, kwargs = CROSS_ENTROPY_CASES[case]
    assert_same(lambda x: F.cross_entropy(x, target, **kwargs),
                lambda x: F.cross_entropy_composed(x, target, **kwargs), [make_array(shape)], dtype)


@pytest.mark.parametrize("case", CROSS_ENTROPY_CASES)
def test_cross_entropy_gradcheck(case):
    shape, target, kwargs = CROSS_ENTROPY_CASES[case]
    assert gradcheck(lambda x: F.cross_entropy(x, target, **kwargs), [leaf(shape)])


def test_cross_entropy_huge_logits_and_all_ignored():
    logits = Tensor(np.array([[1e4, -1e4, 0.0], [0.0, 1e4, 1e4]]), requires_grad=True,
                    dtype=np.float64)
    loss = F.cross_entropy(logits, np.array([1, 0]))
    loss.backward()
    assert np.isfinite(loss.item()) and np.isfinite(logits.grad).all()
    np.testing.assert_allclose(loss.item(), (2e4 + 1e4 + np.log(2)) / 2)
    ignored = Tensor(np.ones((2, 3)), requires_grad=True)
    everything_ignored = F.cross_entropy(ignored, np.array([-1, -1]), ignore_index=-1)
    everything_ignored.backward()
    assert everything_ignored.item() == 0.0 and not ignored.grad.any()


@pytest.mark.parametrize("case", CROSS_ENTROPY_CASES)
def test_cross_entropy_matches_torch(case):
    torch = pytest.importorskip("torch")
    shape, target, kwargs = CROSS_ENTROPY_CASES[case]
    x = make_array(shape, seed=4)
    ours = Tensor(x, requires_grad=True, dtype=np.float64)
    F.cross_entropy(ours, target, **kwargs).backward()
    theirs = torch.tensor(x, requires_grad=True)
    moved = theirs.permute(0, 2, 1) if theirs.ndim == 3 else theirs
    t_kwargs = dict(label_smoothing=kwargs.get("label_smoothing", 0.0))
    if "ignore_index" in kwargs:
        t_kwargs["ignore_index"] = kwargs["ignore_index"]
    loss = torch.nn.functional.cross_entropy(moved, torch.from_numpy(target), **t_kwargs)
    loss.backward()
    np.testing.assert_allclose(F.cross_entropy(Tensor(x, dtype=np.float64), target,
                                               **kwargs).item(), loss.item(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_linear_matches_torch():
    torch = pytest.importorskip("torch")
    x, w, b = linear_inputs((2, 3, 4), bias=True)
    ours = [Tensor(a, requires_grad=True, dtype=np.float64) for a in (x, w, b)]
    out = F.linear(*ours)
    out.backward(np.ones(out.shape))
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    t_out = torch.nn.functional.linear(*theirs)
    t_out.sum().backward()
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), rtol=1e-12)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad, t.grad.numpy(), rtol=1e-12)


def _arrays_of(op):
    """Every ndarray an op object holds (saved inputs, outputs, masks)."""
    for value in vars(op).values():
        items = value if isinstance(value, (tuple, list)) else (value,)
        yield from (v for v in items if isinstance(v, np.ndarray))


def test_a_training_step_is_float32_end_to_end():
    """Embedding + positions -> encoder -> head -> cross-entropy, backward,
    Adam: every tensor, every array an op saved, every gradient and every
    optimizer state is float32 (an integer or boolean index or mask aside)."""
    manual_seed(0)
    embedding, positions = nn.Embedding(11, 16), nn.SinusoidalPositionalEncoding(16, 8)
    encoder = nn.TransformerEncoder(2, 16, 4, 32, dropout=0.1)
    head = nn.Linear(16, 11)
    params = embedding.parameters() + encoder.parameters() + head.parameters()
    opt = optim.Adam(params)
    ids = np.random.default_rng(0).integers(0, 11, (3, 8))
    mask = nn.causal_mask(8)
    loss = F.cross_entropy(head(encoder(positions(embedding(ids)), mask=mask)), ids,
                           label_smoothing=0.1)
    graph = topological_order(loss, include_constants=True)
    assert len(graph) > 100
    floats = [t.data for t in graph] + [a for t in graph if t._ctx is not None
                                        for a in _arrays_of(t._ctx)]
    opt.zero_grad()
    loss.backward()
    opt.step()
    floats += [p.grad for p in params]
    floats += [a for state in opt.state for a in state.values() if isinstance(a, np.ndarray)]
    wrong = {str(a.dtype) for a in floats if a.dtype.kind not in "biu" and a.dtype != np.float32}
    assert not wrong, f"arrays of dtype {wrong} in a float32 training step"


# ----- the softmax family's exp: with the rows' max as shift, or without --------
def reference_log_softmax(x):
    """log softmax in float64, shifted by each row's max."""
    x = np.asarray(x, np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


# rows and which way _exp_rows takes them: unshifted where nothing over- or underflows
EXP_CASES = {
    "moderate": (0.0, False),
    "near exp's overflow": (85.0, True),    # exp(x) overflows float32: shifted by the max
    "far below zero": (-120.0, True),      # exp(x) underflows to 0: shifted by the max
    "moderately negative": (-30.0, False),  # exp(-30) is a normal float32: kept unshifted
}


@pytest.mark.parametrize("case", EXP_CASES)
def test_softmax_family_is_right_with_or_without_the_shift(case):
    offset, shifted = EXP_CASES[case]
    x = (make_array((6, 32), seed=7) * 3 + offset).astype(np.float32)
    assert (ops._exp_rows(x, -1)[2] is not None) == shifted
    want = reference_log_softmax(x)
    np.testing.assert_allclose(F.softmax(Tensor(x), axis=-1).data, np.exp(want), rtol=2e-6, atol=1e-9)
    np.testing.assert_allclose(F.log_softmax(Tensor(x), axis=-1).data, want, rtol=2e-6, atol=2e-5)
    target = np.arange(6) % 32
    for smoothing in (0.0, 0.1):
        q = np.full((6, 32), smoothing / 32)
        q[np.arange(6), target] += 1 - smoothing
        loss = F.cross_entropy(Tensor(x), target, label_smoothing=smoothing).item()
        np.testing.assert_allclose(loss, -(q * want).sum(-1).mean(), rtol=2e-6)


def test_softmax_rows_of_one_call_take_one_way():
    """One row that would overflow shifts every row; each row is still right,
    and a row far below zero next to normal rows is right too."""
    x = make_array((4, 16), seed=8).astype(np.float32)
    x[1] += 95.0    # overflows unshifted
    x[2] -= 200.0   # underflows unshifted
    x[3, :] = -1e9  # a row masked with a large finite number: uniform, as in PyTorch
    got = F.softmax(Tensor(x), axis=-1).data
    np.testing.assert_allclose(got, np.exp(reference_log_softmax(x)), rtol=2e-6, atol=1e-9)
    np.testing.assert_allclose(got[3], 1 / 16, rtol=1e-6)
    got_log = F.log_softmax(Tensor(x), axis=-1).data
    np.testing.assert_allclose(got_log, reference_log_softmax(x), rtol=2e-6, atol=2e-5)


@pytest.mark.parametrize("offset, shifted", [(0.0, False), (720.0, True)])
def test_softmax_family_gradchecks_with_and_without_the_shift(offset, shifted):
    """float64: exp(x) overflows past 709, so offset 720 takes the shifted way."""
    x = make_array((3, 5), seed=9) + offset
    assert (ops._exp_rows(x, -1)[2] is not None) == shifted
    target = np.array([0, 4, 2])
    for fn in (lambda t: F.softmax(t, axis=-1), lambda t: F.log_softmax(t, axis=-1),
               lambda t: F.cross_entropy(t, target, label_smoothing=0.1)):
        assert gradcheck(fn, [Tensor(x, requires_grad=True, dtype=np.float64)])


# ----- softmax over its own input (overwrite=True, as attention calls it) ----------
def _overwritten_softmax(x, axis=-1):
    """Softmax written into its input's array: the input here is x * 1, an
    intermediate that nothing else reads, as attention's scores are."""
    return apply(ops.Softmax, x * 1.0, axis=axis, overwrite=True)


@pytest.mark.parametrize("case", EXP_CASES)
def test_softmax_over_its_input_is_the_same_softmax(case):
    """overwrite=True decides on the shift before exp (x is then gone), from
    x's extremes; in every case it is the softmax of the separate array."""
    offset, _ = EXP_CASES[case]
    x = (make_array((6, 32), seed=7) * 3 + offset).astype(np.float32)
    array = x.copy()
    e, total, _ = ops._exp_rows(array, -1, overwrite=True)
    assert e is array  # written into x's own array, no new one
    got = _overwritten_softmax(Tensor(x)).data
    np.testing.assert_allclose(got, np.exp(reference_log_softmax(x)), rtol=2e-6, atol=1e-9)
    np.testing.assert_allclose(got, F.softmax(Tensor(x), axis=-1).data, rtol=2e-6, atol=1e-12)


def test_softmax_over_its_input_with_masked_rows_nan_and_other_axes():
    x = make_array((4, 3, 8), seed=10).astype(np.float32)
    x[0, 1, :5] = -np.inf   # masked keys
    x[1, 2] = -np.inf       # every key masked: zeros, not NaN
    x[2, 0, 3] += 95.0      # would overflow unshifted
    x[3, 1, 2] = np.nan     # NaN stays in its row only, as without overwrite
    for axis in (-1, (2,), 1):
        want = F.softmax(Tensor(x), axis=axis).data
        got = _overwritten_softmax(Tensor(x), axis=axis).data
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-12, equal_nan=True)
    assert np.all(_overwritten_softmax(Tensor(x)).data[1, 2] == 0)


@pytest.mark.parametrize("offset", [0.0, 720.0])
def test_softmax_over_its_input_gradchecks(offset):
    x = make_array((3, 5), seed=9) + offset
    assert gradcheck(_overwritten_softmax, [Tensor(x, requires_grad=True, dtype=np.float64)])


def test_detect_anomaly_sees_the_input_softmax_wrote_over():
    """An observer is shown the input as it was, not the softmax written
    over it: a +inf score makes NaN, and the report must not say the input
    already held NaN."""
    x = Tensor(np.array([[0.0, np.inf, 1.0]], np.float32), requires_grad=True)
    with pytest.raises(AnomalyError) as caught, detect_anomaly():
        _overwritten_softmax(x)
    message = str(caught.value)
    assert "the forward of softmax produced NaN" in message and "already held" not in message


def test_softmax_over_its_input_matches_torch():
    """Value and gradient against torch.softmax, with a masked key and a row near overflow."""
    torch = pytest.importorskip("torch")
    x0 = make_array((3, 4, 6), seed=17)
    x0[0, 1, :2] = -np.inf
    x0[1, 2] += 700.0  # float64 exp overflows unshifted
    upstream = make_array((3, 4, 6), seed=18)
    x = Tensor(x0, requires_grad=True, dtype=np.float64)
    out = _overwritten_softmax(x)
    out.backward(upstream)
    tx = torch.tensor(x0, requires_grad=True)
    want = torch.softmax(tx, -1)
    want.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(out.data, want.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-14)
