"""Property tests: for random broadcastable shapes and values, arithmetic and
reductions agree with numpy's own forward results, and their gradients agree
with finite differences (gradcheck) and with the closed form (the upstream
gradient summed back to each input's shape)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor
from tinygrad_enc.gradcheck import gradcheck

SETTINGS = settings(max_examples=40, deadline=None)
# name: (our operator, numpy's, local derivatives d/da and d/db)
OPS = {
    "add": (lambda a, b: a + b, np.add, lambda a, b: (1.0, 1.0)),
    "sub": (lambda a, b: a - b, np.subtract, lambda a, b: (1.0, -1.0)),
    "mul": (lambda a, b: a * b, np.multiply, lambda a, b: (b, a)),
    "div": (lambda a, b: a / b, np.divide, lambda a, b: (1 / b, -a / b ** 2)),
}


def values(shape, low, high):
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high))


@st.composite
def broadcast_pair(draw, positive_b=False):
    """Two arrays of mutually broadcastable shapes (up to 3-D, sides up to 3);
    b in [0.5, 2] when it will be divided by."""
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    a = draw(values(shapes.input_shapes[0], -3, 3))
    low, high = (0.5, 2) if positive_b else (-3, 3)
    b = draw(values(shapes.input_shapes[1], low, high))
    return a, b


def sum_to(grad, shape):
    """The closed form of the broadcast gradient, written independently of the
    engine: sum over leading axes, then over axes that were stretched from 1."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1)
    return grad.sum(axis=stretched, keepdims=True).reshape(shape)


@SETTINGS
@given(op=st.sampled_from(sorted(OPS)), data=st.data())
def test_broadcast_arithmetic(op, data):
    a, b = data.draw(broadcast_pair(positive_b=op == "div"))
    ta = Tensor(a, requires_grad=True, dtype=np.float64)
    tb = Tensor(b, requires_grad=True, dtype=np.float64)
    ours, reference, local = OPS[op]
    out = ours(ta, tb)
    expected = reference(a, b)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.data, expected)

    upstream = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(upstream)
    local_a, local_b = local(a, b)
    np.testing.assert_allclose(ta.grad, sum_to(upstream * local_a, a.shape), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tb.grad, sum_to(upstream * local_b, b.shape), rtol=1e-12, atol=1e-12)
    assert gradcheck(ours, [ta, tb])


@SETTINGS
@given(data=st.data())
def test_broadcast_chain(data):
    """A small expression mixing every operator and a number, against numpy
    forward and finite differences."""
    a, b = data.draw(broadcast_pair(positive_b=True))
    fn = lambda a, b: (a * b - a / b + 2.0) * (1.5 - b) + (-a) ** 2  # noqa: E731
    ta = Tensor(a, requires_grad=True, dtype=np.float64)
    tb = Tensor(b, requires_grad=True, dtype=np.float64)
    np.testing.assert_allclose(fn(ta, tb).data, fn(a, b), rtol=1e-12, atol=1e-12)
    assert gradcheck(fn, [ta, tb])


@st.composite
def reduction_case(draw, unique=False):
    """A 1- to 3-D array and an axis argument: None, an int (maybe negative)
    or a tuple of distinct axes."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3), unique=unique))
    ndim = len(shape)
    axis = draw(st.none()
                | st.integers(-ndim, ndim - 1)
                | st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)
                .map(tuple))
    return x, axis, draw(st.booleans())


@SETTINGS
@given(name=st.sampled_from(["sum", "mean", "var", "max"]), data=st.data())
def test_reductions(name, data):
    x, axis, keepdims = data.draw(reduction_case(unique=name == "max"))
    if name == "max":  # unique values can still sit closer than the finite-difference step
        x = np.argsort(np.argsort(x.ravel())).reshape(x.shape) * 0.1
    tx = Tensor(x, requires_grad=True, dtype=np.float64)
    out = getattr(tx, name)(axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [tx])


@SETTINGS
@given(data=st.data())
def test_sum_gradient_is_upstream_spread_back(data):
    """d(sum x)/dx: the upstream gradient copied along the reduced axes."""
    x, axis, keepdims = data.draw(reduction_case())
    tx = Tensor(x, requires_grad=True, dtype=np.float64)
    out = tx.sum(axis=axis, keepdims=keepdims)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(upstream)
    axes = tuple(range(x.ndim)) if axis is None else np.atleast_1d(axis) % x.ndim
    spread = upstream if keepdims else np.expand_dims(upstream, tuple(axes))
    np.testing.assert_array_equal(tx.grad, np.broadcast_to(spread, x.shape))


@SETTINGS
@given(data=st.data())
def test_reshape_and_transpose_move_gradients_back(data):
    """Movement ops are permutations of values: their gradient is the same
    permutation undone."""
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=4, max_side=3))
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    tx = Tensor(x, requires_grad=True, dtype=np.float64)
    out = tx.permute(*perm).reshape(-1)
    np.testing.assert_array_equal(out.data, x.transpose(perm).ravel())
    upstream = np.arange(out.size, dtype=np.float64) * 3.0
    out.backward(upstream)
    np.testing.assert_array_equal(tx.grad, upstream.reshape(x.transpose(perm).shape)
                                  .transpose(np.argsort(perm)))


# ----- no op mutates its inputs; no gradient aliases another array ---------------
# every op family, each on a (2, 3) tensor a and a (3,) tensor b (b > 0 where it divides)
CATALOGUE = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "neg": lambda a, b: -a, "pow": lambda a, b: b ** 3,
    "exp": lambda a, b: a.exp(), "log": lambda a, b: b.log(), "sqrt": lambda a, b: b.sqrt(),
    "tanh": lambda a, b: a.tanh(), "sigmoid": lambda a, b: a.sigmoid(),
    "relu": lambda a, b: a.relu(), "abs": lambda a, b: a.abs(), "gelu": lambda a, b: a.gelu(),
    "gelu_tanh": lambda a, b: a.gelu("tanh"), "matmul": lambda a, b: a @ b,
    "sum": lambda a, b: a.sum(0), "max": lambda a, b: a.max(1), "mean": lambda a, b: a.mean(),
    "var": lambda a, b: a.var(1), "reshape": lambda a, b: a.reshape(3, 2),
    "transpose": lambda a, b: a.T, "expand": lambda a, b: b.expand(2, 3),
    "getitem": lambda a, b: a[:, 1:], "gather": lambda a, b: a[np.array([1, 1, 0])],
    "masked_fill": lambda a, b: a.masked_fill(np.array([True, False, True]), 0.0),
    "where": lambda a, b: Tensor.where(np.array([True, False, True]), a, b),
    "cat": lambda a, b: Tensor.cat([a, b.reshape(1, 3)]),
    "stack": lambda a, b: Tensor.stack([a[0], b]), "split": lambda a, b: a.split(2, 1)[0],
    "softmax": lambda a, b: F.softmax(a), "log_softmax": lambda a, b: F.log_softmax(a, 0),
    "layer_norm": lambda a, b: F.layer_norm(a, 3, weight=b, bias=b),
    "cross_entropy": lambda a, b: F.cross_entropy(a, np.array([2, 0])),
    "attention": lambda a, b: F.scaled_dot_product_attention(a, a, a)[0],
}


@SETTINGS
@given(name=st.sampled_from(sorted(CATALOGUE)), a=values((2, 3), -2, 2), b=values((3,), 0.5, 2))
def test_no_op_mutates_its_inputs_and_no_gradient_aliases(name, a, b):
    ta = Tensor(a, requires_grad=True, dtype=np.float64)
    tb = Tensor(b, requires_grad=True, dtype=np.float64)
    kept_a, kept_b = ta.data.copy(), tb.data.copy()
    out = CATALOGUE[name](ta, tb)
    upstream = np.random.default_rng(0).standard_normal(out.shape)
    kept_upstream = upstream.copy()
    out.backward(upstream)
    np.testing.assert_array_equal(ta.data, kept_a)
    np.testing.assert_array_equal(tb.data, kept_b)
    np.testing.assert_array_equal(upstream, kept_upstream)
    arrays = [ta.data, tb.data, out.data, upstream]
    grads = [t.grad for t in (ta, tb) if t.grad is not None]
    assert grads
    for i, g in enumerate(grads):
        assert g.flags.writeable and g.flags.owndata
        for other in arrays + grads[:i]:
            assert not np.shares_memory(g, other), name
    # a second backward adds into the gradients without touching anything else
    out.backward(upstream)
    np.testing.assert_array_equal(ta.data, kept_a)


INDEX_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


@SETTINGS
@given(dtype=st.sampled_from(INDEX_DTYPES),
       index=hnp.arrays(np.int64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5),
                        elements=st.integers(0, 99)),
       columns=st.booleans())
def test_index_dtypes_of_every_width_give_the_same_gradients_as_int64(dtype, index, columns):
    data = np.arange(100.0 * 3).reshape(100, 3)
    if columns:  # an index array after a slice, into the other axis of a (3, 100) tensor
        data = data.T.copy()
    grads = []
    for kind in (np.int64, dtype):
        x = Tensor(data, requires_grad=True, dtype=np.float64)
        picked = x[:, index.astype(kind)] if columns else x[index.astype(kind)]
        picked.backward(np.arange(picked.size, dtype=np.float64).reshape(picked.shape))
        grads.append((picked.data, x.grad))
    np.testing.assert_array_equal(grads[0][0], grads[1][0])
    np.testing.assert_array_equal(grads[0][1], grads[1][1])
