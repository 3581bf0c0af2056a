"""The engine's promises at their edges: shared subgraphs, deep graphs, memory,
repeated backward, dtypes, grad mode, randomness, masking, numerical range."""
import gc
import time
import tracemalloc
import weakref

import numpy as np
import pytest

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor, manual_seed, no_grad
from tinygrad_enc.tensor import is_grad_enabled, walk_backward

from conftest import leaf, make_array


# ----- shared subgraphs and depth ---------------------------------------------------
def test_doubling_30_times_visits_each_node_once():
    x = Tensor(1.0, requires_grad=True, dtype=np.float64)
    y = x
    for _ in range(30):
        y = y + y
    start = time.perf_counter()
    y.backward()
    assert time.perf_counter() - start < 0.5  # 2**30 paths, but only 30 nodes
    assert x.grad == 2.0 ** 30
    assert y.item() == 2.0 ** 30


def test_diamond_counts_both_paths():
    a = Tensor(1.0, requires_grad=True)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad == 4.0


def test_backward_through_a_100000_op_chain():
    x = Tensor(1.5, requires_grad=True, dtype=np.float64)
    y = x
    for _ in range(100_000):
        y = -y
    y.backward()  # iterative: no recursion limit (speed is benchmarks/' business)
    assert x.grad == 1.0  # an even number of negations
    del y  # freeing the chain must not recurse either


# ----- gradients of particular ops ---------------------------------------------------
def test_repeated_rows_accumulate():
    w = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    w[[0, 0, 2]].sum().backward()
    np.testing.assert_array_equal(w.grad, np.array([[2.0] * 4, [0.0] * 4, [1.0] * 4]))


def test_relu_keeps_nan_and_dtype_at_any_shape():
    x = np.array([[np.nan, -np.inf, -0.0, 0.0, 3.0]], np.float32)
    np.testing.assert_array_equal(Tensor(x).relu().data, [[np.nan, 0.0, 0.0, 0.0, 3.0]])
    assert Tensor(np.float32(-2.0)).relu().data.shape == ()
    assert Tensor(np.float32(-2.0)).relu().item() == 0.0
    ints = Tensor(np.array([-2, 5])).relu().data
    assert ints.dtype == np.int64 and ints.tolist() == [0, 5]
    assert Tensor(np.zeros((3, 0), np.float32)).relu().shape == (3, 0)


def test_relu_gradient_at_zero_is_zero():
    x = Tensor([-1.0, 0.0, 2.0], requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax_of_huge_logits(dtype):
    x = Tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4 - 1, 3.0]], requires_grad=True,
               dtype=dtype)
    s = F.softmax(x)
    assert np.isfinite(s.data).all()
    np.testing.assert_allclose(s.data.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(s.data[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(s.data[1], [1 / 3] * 3, rtol=1e-6)
    log_s = F.log_softmax(x)
    assert np.isfinite(log_s.data).all()
    np.testing.assert_allclose(log_s.data[0], [0.0, -2e4, -1e4], rtol=1e-6)
    (s * Tensor(np.arange(9.0).reshape(3, 3), dtype=dtype)).sum().backward()
    log_s.sum().backward()
    assert np.isfinite(x.grad).all()


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)], ids=str)
def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n(shape):
    logits = leaf(shape)
    target = np.random.default_rng(0).integers(0, shape[-1], shape[:-1])
    F.cross_entropy(logits, target).backward()
    onehot = np.eye(shape[-1])[target]
    n = target.size
    np.testing.assert_allclose(logits.grad, (F.softmax(logits).data - onehot) / n, atol=1e-12)


def test_cross_entropy_ignored_positions_get_no_gradient():
    logits = leaf((4, 3))
    target = np.array([0, -100, 2, -100])
    loss = F.cross_entropy(logits, target, ignore_index=-100)
    loss.backward()
    np.testing.assert_array_equal(logits.grad[[1, 3]], 0.0)
    p = F.softmax(logits).data[[0, 2]]
    np.testing.assert_allclose(logits.grad[[0, 2]], (p - np.eye(3)[[0, 2]]) / 2, atol=1e-12)


def test_fully_masked_attention_row_gives_zeros_and_zero_grads():
    q, k, v = leaf((2, 3, 4), seed=1), leaf((2, 5, 4), seed=2), leaf((2, 5, 3), seed=3)
    mask = np.zeros((3, 5), bool)
    mask[1] = True  # query 1 may attend to nothing
    out, weights = F.scaled_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_array_equal(weights.data[:, 1], 0.0)
    np.testing.assert_array_equal(out.data[:, 1], 0.0)
    np.testing.assert_allclose(weights.data.sum(-1)[:, [0, 2]], 1.0)
    (out.sum() + (weights * weights).sum()).backward()
    for t in (q, k, v):
        assert np.isfinite(t.grad).all()
    np.testing.assert_array_equal(q.grad[:, 1], 0.0)


# ----- the graph's lifetime, repeated backward ------------------------------------------
def test_dropping_the_loss_frees_the_graph_without_gc():
    gc.disable()
    try:
        x = leaf((3, 4))
        hidden = (x * 2.0).tanh()
        alive = weakref.ref(hidden)
        loss = (hidden * hidden).sum()
        del hidden
        assert alive() is not None  # the loss's graph holds it
        loss.backward()
        del loss
        assert alive() is None  # refcounting alone freed it: no cycles
    finally:
        gc.enable()


def test_second_backward_adds_exactly_the_same_again():
    w, x = leaf((3, 4), seed=1), leaf((4,), seed=2)
    loss = ((w @ x).tanh() * (w @ x)).sum() + (w * w).mean()
    loss.backward()
    first = (w.grad.copy(), x.grad.copy())
    loss.backward()
    np.testing.assert_allclose(w.grad, 2 * first[0], rtol=1e-14)
    np.testing.assert_allclose(x.grad, 2 * first[1], rtol=1e-14)


def test_only_leaves_keep_a_gradient():
    x = leaf((2, 3))
    hidden = x.exp()
    out = (hidden * 3.0).sum()
    out.backward()
    assert x.grad is not None
    assert hidden.grad is None and out.grad is None


def test_leaf_gradient_is_not_aliased_with_upstream():
    x = leaf((3,))
    upstream = np.ones(3)
    x.backward(upstream)
    x.backward(upstream)
    np.testing.assert_array_equal(upstream, 1.0)
    np.testing.assert_array_equal(x.grad, 2.0)


# ----- dtypes ------------------------------------------------------------------------
def _mask(shape):
    return make_array(shape, seed=8) > 0


DTYPE_CASES = {
    "arithmetic": lambda x: ((x + 1) * 2.0 - x / 3 + (1 - x) * x) ** 2,
    "unary": lambda x: x.exp() + x.tanh() + x.sigmoid() + x.relu() + x.abs().sqrt() + x.abs().log(),
    "gelu": lambda x: x.gelu() + F.gelu(x, approximate="tanh"),
    "rpow": lambda x: 2 ** x,
    "reductions": lambda x: x.sum(0) + x.mean(0) + x.max(0) + x.var(0),
    "movement": lambda x: x.T.reshape(3, 2).transpose(0, 1)[:, [0, 0, 2]].expand(4, 2, 3),
    "masks": lambda x: x.masked_fill(_mask((2, 3)), 0.0) + Tensor.where(_mask((2, 3)), x, 1.0),
    "joins": lambda x: Tensor.cat(x.split([1, 2], 1), 1) + Tensor.stack([x, x]).sum(0),
    "matmul": lambda x: x @ x.T + x[0] @ x[1],
    "softmax": lambda x: F.softmax(x) + F.log_softmax(x, 0),
    "layer_norm": lambda x: F.layer_norm(x, 3, Tensor.ones(3, dtype=x.dtype),
                                         Tensor.zeros(3, dtype=x.dtype)),
    "dropout": lambda x: F.dropout(x, 0.5),
    "cross_entropy": lambda x: F.cross_entropy(x, [0, 2], label_smoothing=0.1),
    "attention": lambda x: F.scaled_dot_product_attention(x, x, x, mask=np.eye(2, dtype=bool))[0],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(DTYPE_CASES))
def test_dtype_flows_through_ops_and_gradients(name, dtype):
    x = Tensor(make_array((2, 3)), requires_grad=True, dtype=dtype)
    out = DTYPE_CASES[name](x)
    assert out.dtype == dtype
    for tensor, grad in walk_backward(out.sum()):
        assert tensor.dtype == dtype
        assert grad.dtype == dtype, (tensor, grad.dtype)
    out.sum().backward()
    assert x.grad.dtype == dtype and x.grad.shape == x.shape


def test_python_numbers_do_not_change_the_dtype():
    x = Tensor([1.0, 2.0])
    assert x.dtype == np.float32
    for y in (x + 1, 1 + x, x * 0.1, 0.1 * x, x / 3, 3 / x, x - np.float64(1), x ** 2, 2 ** x,
              x ** np.float64(0.5), np.float64(2) * x, x.masked_fill(x.data > 1, np.float64(3)),
              Tensor.where(x.data > 1, x, np.float64(3))):
        assert y.dtype == np.float32


# an integer or boolean tensor whose result is a float: float32, PyTorch's default dtype
FLOAT_RESULTS = {
    "mul_float": lambda t: t * 0.5,
    "rmul_float": lambda t: 0.5 * t,
    "add_numpy_float": lambda t: t + np.float64(0.5),
    "radd_float_list": lambda t: [0.5, 1.5, 2.5] + t,
    "rsub_float": lambda t: 1.5 - t,
    "div_int": lambda t: t / 2,
    "rdiv_int": lambda t: 1 / t,
    "div_int_tensor": lambda t: t / Tensor([2, 4, 8]),
    "matmul_float_list": lambda t: t @ [0.5, 1.5, 2.5],
    "pow_float": lambda t: t ** 0.5,
    "rpow_float": lambda t: 2.5 ** t,
    "mean": lambda t: t.mean(),
    "where_float": lambda t: Tensor.where(np.array([True, False, True]), t, 0.5),
    "where_float_first": lambda t: Tensor.where(np.array([True, False, True]), 0.5, t),
    "exp": lambda t: t.exp(),
    "log": lambda t: t.log(),
    "sqrt": lambda t: t.sqrt(),
    "tanh": lambda t: t.tanh(),
    "sigmoid": lambda t: t.sigmoid(),
    "gelu": lambda t: t.gelu(),
    "softmax": lambda t: F.softmax(t),
    "log_softmax": lambda t: F.log_softmax(t),
    "layer_norm": lambda t: F.layer_norm(t, 3),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # 1 / False and log(False): inf, as in float
@pytest.mark.parametrize("data", [[1, 2, 3], [True, False, True]], ids=["int", "bool"])
@pytest.mark.parametrize("name", list(FLOAT_RESULTS))
def test_integer_tensors_give_float32_where_the_result_is_a_float(name, data):
    out = FLOAT_RESULTS[name](Tensor(data))
    assert out.dtype == np.float32
    expected = FLOAT_RESULTS[name](Tensor(np.array(data, dtype=np.float64), dtype=np.float64))
    np.testing.assert_allclose(out.data, expected.data, rtol=1e-6)


def test_integer_results_stay_integers():
    t = Tensor([1, 2, 3])
    for y in (t + 1, 2 * t, t - np.int64(1), t ** 2, 2 ** t, t.sum(), t @ [1, 2, 3],
              Tensor.where(np.array([True, False, True]), t, 0), t.max()):
        assert y.dtype == np.int64


@pytest.mark.parametrize("data", [[1, 2, 3], np.arange(3), True, np.array([True, False])])
def test_integer_and_boolean_tensors_cannot_require_grad(data):
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(data, requires_grad=True)
    assert Tensor(data).dtype == np.asarray(data).dtype  # indices and masks keep their type


def test_float_data_defaults_to_float32():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor(np.zeros(2)).dtype == np.float32
    assert Tensor(np.zeros(2), dtype=np.float64).dtype == np.float64
    assert Tensor.zeros((2, 3), dtype=np.float64).dtype == np.float64


def _peak_bytes(make):
    """The most memory numpy held at once while `make()` ran, above what it
    held before (tracemalloc sees numpy's array buffers)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = make()
        return tracemalloc.get_traced_memory()[1] - before, out
    finally:
        tracemalloc.stop()


BIG = np.ones((500, 500))  # float64, 2 MB
CONSTRUCTORS = {
    "float64_array_to_float32": lambda: Tensor(BIG),
    "float64_array_kept": lambda: Tensor(BIG, dtype=np.float64),
    "float32_array": lambda: Tensor(BIG.astype(np.float32)),
    "zeros": lambda: Tensor.zeros(500, 500),
    "ones": lambda: Tensor.ones((500, 500)),
    "ones_float64": lambda: Tensor.ones(500, 500, dtype=np.float64),
    "randn": lambda: Tensor.randn(500, 500),
    "randn_float64": lambda: Tensor.randn(500, 500, dtype=np.float64),
}


@pytest.mark.parametrize("name", list(CONSTRUCTORS))
def test_constructors_build_their_array_once(name):
    peak, out = _peak_bytes(CONSTRUCTORS[name])
    extra = BIG.nbytes // 2 if name == "float32_array" else 0  # the test's own astype
    assert peak < out.data.nbytes * 1.2 + extra, (peak, out.data.nbytes)


def test_a_tensor_owns_its_array():
    for array in (np.ones(3, np.float32), np.ones(3)):
        for dtype in (None, array.dtype):
            t = Tensor(array, dtype=dtype)
            assert not np.shares_memory(t.data, array)
    t = Tensor.ones(3)
    assert not np.shares_memory(Tensor(t).data, t.data)


def test_randn_draws_in_the_requested_dtype():
    from tinygrad_enc import random as tg_random
    for dtype in (np.float32, np.float64):
        manual_seed(7)
        ours = Tensor.randn(3, 4, dtype=dtype).data
        manual_seed(7)
        np.testing.assert_array_equal(ours, tg_random.generator().standard_normal((3, 4), dtype=dtype))
        assert ours.dtype == dtype
    with pytest.raises(TypeError, match="randn: dtype must be float32 or float64"):
        Tensor.randn(2, dtype=np.int64)


# ----- what the module docstrings claim ---------------------------------------------------
def test_module_docstrings_name_the_fused_ops_that_functional_uses():
    from tinygrad_enc import ops
    fused = [v.op_name if isinstance(v.op_name, str) else v.__name__.lower()
             for v in vars(F).values() if isinstance(v, type) and issubclass(v, ops.Op)]
    assert sorted(fused) == ["cross_entropy", "layer_norm", "linear"]
    fused += ["softmax", "log_softmax"]  # through x.softmax() and x.log_softmax()
    assert type(F.softmax(leaf((2,)))._ctx) is ops.Softmax
    assert type(F.log_softmax(leaf((2,)))._ctx) is ops.LogSoftmax
    for name in fused:  # functional calls them; ops defines them
        assert f"`{name}`" in F.__doc__ and f"`{name}`" in ops.__doc__, name
    assert "for free" not in F.__doc__  # fused ops have hand-written backward passes
    assert "mean` and `var` are composed" in ops.__doc__ and "tensor.py" in ops.__doc__


# ----- grad mode, randomness ------------------------------------------------------------
def test_no_grad_nests_and_restores():
    x = leaf((2,))
    with no_grad():
        with no_grad():
            assert not (x * 2).requires_grad
        assert not is_grad_enabled()
        assert not (x * 2).requires_grad
    assert is_grad_enabled()
    assert (x * 2).requires_grad


def test_no_grad_restores_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()


@pytest.mark.parametrize("decorate", [no_grad(), no_grad], ids=["no_grad()", "no_grad"])
def test_no_grad_as_decorator(decorate):
    @decorate
    def double(t):
        assert not is_grad_enabled()
        return t * 2

    y = double(leaf((2,)))
    assert not y.requires_grad and y._ctx is None
    assert is_grad_enabled()


def test_one_no_grad_instance_can_be_reentered():
    guard = no_grad()
    with guard:
        with guard:
            assert not is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_manual_seed_repeats_dropout_and_randn():
    def draw():
        manual_seed(42)
        return (F.dropout(Tensor.ones(100, 10), 0.5).data, Tensor.randn(3, 4).data,
                Tensor.randn(5, dtype=np.float64).data)

    first, second = draw(), draw()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    manual_seed(43)
    assert not np.array_equal(F.dropout(Tensor.ones(100, 10), 0.5).data, first[0])


def test_dropout_keeps_the_expected_value():
    manual_seed(0)
    out = F.dropout(Tensor.ones(200, 100, dtype=np.float64), 0.25).data
    assert set(np.unique(out)) == {0.0, 1 / 0.75}
    assert abs(out.mean() - 1.0) < 0.02


@pytest.mark.parametrize("p, training", [(0.0, True), (0.5, False)])
def test_dropout_identity_cases(p, training):
    x = leaf((3, 4))
    np.testing.assert_array_equal(F.dropout(x, p, training).data, x.data)


def test_dropout_gradient_is_the_mask_over_keep_probability():
    x = leaf((20, 20))
    manual_seed(5)
    out = F.dropout(x, 0.4)
    out.sum().backward()
    kept = out.data != 0
    np.testing.assert_allclose(x.grad, kept / 0.6)


# ----- comparisons, detach, repr ---------------------------------------------------------
def test_comparisons_are_boolean_without_grad():
    x = leaf((3,))
    for result in (x > 0, x < x * 2, x == x, x != 0.5, x >= 0, x <= 0, Tensor(1.0) > 0):
        assert isinstance(result.data, np.ndarray) and result.dtype == np.bool_
        assert not result.requires_grad and result._ctx is None
    np.testing.assert_array_equal((x > 0).data, x.data > 0)


def test_equality_with_a_non_number_is_plain_false_as_in_pytorch():
    x = Tensor([1.0, 2.0])
    assert (x == None) is False and (x != None) is True  # noqa: E711
    assert x not in [None, "a"]


def test_detach_cuts_the_graph_and_shares_memory():
    x = leaf((3,))
    d = (x * 2).detach()
    assert not d.requires_grad and d._ctx is None
    y = (d * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad, d.data)  # d counted as a constant
    assert x.detach().data is x.data


def test_repr_shows_shape_dtype_and_op():
    x = leaf((2, 3))
    text = repr((x @ x.T).relu())
    assert "shape=(2, 2)" in text and "float64" in text and "op=relu" in text
    assert "requires_grad=True" in text
    assert "op=" not in repr(x) and "shape=(2, 3)" in repr(x)
    assert "op=masked_fill" in repr(x.masked_fill(x.data > 0, 0.0))


# ----- 0-d tensors and shape corners ---------------------------------------------------------
def test_zero_dimensional_reductions_accept_axis_0_and_minus_1():
    x = Tensor(3.0, requires_grad=True, dtype=np.float64)
    for y in (x.sum(0), x.mean(-1), x.max(0, keepdims=True), x.var(0), F.softmax(x) * x):
        assert y.shape == ()
    (x.sum(0) + x.max(-1) + F.softmax(x)).backward()
    assert x.grad == 2.0


def test_getitem_with_a_list_of_booleans_is_a_mask():
    x = leaf((3, 2))
    y = x[[True, False, True]]
    np.testing.assert_array_equal(y.data, x.data[[0, 2]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [[1, 1], [0, 0], [1, 1]])


def test_split_pieces_cover_the_axis():
    x = leaf((7, 2))
    pieces = x.split(3)
    assert [p.shape[0] for p in pieces] == [3, 3, 1]
    assert [p.shape[1] for p in x.split([1, 0, 1], axis=1)] == [1, 0, 1]
    sum(((p * (i + 1.0)).sum() for i, p in enumerate(pieces)), Tensor(0.0)).backward()
    np.testing.assert_array_equal(x.grad[:, 0], [1, 1, 1, 2, 2, 2, 3])


def test_expand_checks_the_shapes_with_one_broadcast(monkeypatch):
    calls = []
    broadcast_shapes = np.broadcast_shapes
    monkeypatch.setattr(np, "broadcast_shapes", lambda *s: calls.append(s) or broadcast_shapes(*s))
    assert Tensor.ones(1, 3).expand(4, -1).shape == (4, 3)
    assert len(calls) == 1


def test_expand_and_getitem_outputs_are_views_but_gradients_are_fresh():
    x = leaf((1, 3))
    y = x.expand(4, 3)
    assert np.shares_memory(y.data, x.data)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [[4.0, 4.0, 4.0]])
    assert x.grad.flags.writeable and not np.shares_memory(x.grad, y.data)


def test_a_gradient_summed_in_place_never_reaches_a_tensor_that_shares_its_array():
    # the walk adds a tensor's third and later gradients in place into the sum it made;
    # Add hands one array to both its inputs, so p and q start from the same array
    w, v = np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0])
    x = Tensor(np.ones(3), requires_grad=True, dtype=np.float64)
    p, q = x * 1.0, x * 1.0
    t = p + q
    u = t + t + t  # t: three gradients
    a = x * 1.0
    s = a + a + a + a  # a: four gradients, the last three summed in place
    loss = (u * Tensor(w)).sum() + (p * Tensor(v)).sum() + (s * Tensor(w)).sum()
    grads = {}
    for tensor, g in walk_backward(loss):
        grads[id(tensor)] = g.copy()
    np.testing.assert_array_equal(grads[id(p)], 3 * w + v)
    np.testing.assert_array_equal(grads[id(q)], 3 * w)  # none of p's v
    np.testing.assert_array_equal(grads[id(a)], 4 * w)
    loss.backward()
    np.testing.assert_array_equal(x.grad, 6 * w + v + 4 * w)
