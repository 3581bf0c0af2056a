"""Fused ops and fast paths against the plain versions they stand for.

The LayerNorm op against layer norm composed from primitives (written here),
in values and gradients; erf against math.erf; Split against one getitem per
piece; the embedding-lookup backward against np.add.at; a stack of matrices
times one matrix against numpy's batched product; the one graph walk that
backward and viz share. Gradcheck and PyTorch parity of the public functions
are in test_engine_gradcheck.py and test_engine_parity_torch.py.
"""
import math

import numpy as np
import pytest

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor, names, nn, ops
from tinygrad_enc.gradcheck import gradcheck
from tinygrad_enc.special import erf
from tinygrad_enc.tensor import apply, topological_order, walk_backward

from conftest import leaf, make_array

TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-5)}


def values_and_grads(fn, arrays, dtype):
    """fn's output and the gradient of every input, from one random upstream gradient."""
    tensors = [Tensor(a, requires_grad=True, dtype=dtype) for a in arrays]
    out = fn(*tensors)
    out.backward(np.random.default_rng(0).standard_normal(out.shape))
    return [out.data] + [t.grad for t in tensors]


def assert_same(fn, reference, arrays, dtype=np.float64):
    got, want = values_and_grads(fn, arrays, dtype), values_and_grads(reference, arrays, dtype)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, err_msg=f"output 0, then input gradients: {i}", **TOL[dtype])


# ----- LayerNorm: one op against its composition ------------------------------
def composed_layer_norm(x, shape, weight=None, bias=None, eps=1e-5):
    """Layer norm from primitives, as F.layer_norm was before the fused op."""
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    centered = x - x.mean(axes, keepdims=True)
    variance = (centered * centered).mean(axes, keepdims=True)
    out = centered / (variance + eps).sqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


LAYER_NORM_CASES = [((2, 3, 4), (4,)), ((2, 3, 4), (3, 4)), ((5, 8), (8,)), ((4,), (4,)),
                    ((2, 3, 1), (1,))]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, normalized", LAYER_NORM_CASES, ids=str)
def test_layer_norm_op_equals_its_composition(shape, normalized, dtype):
    arrays = [make_array(shape, seed=1), make_array(normalized, seed=2), make_array(normalized, seed=3)]
    assert_same(lambda x, w, b: F.layer_norm(x, normalized, w, b),
                lambda x, w, b: composed_layer_norm(x, normalized, w, b), arrays, dtype)
    assert_same(lambda x: F.layer_norm(x, normalized, eps=1e-2),
                lambda x: composed_layer_norm(x, normalized, eps=1e-2), arrays[:1], dtype)
    assert_same(lambda x, w: F.layer_norm(x, normalized, w),  # weight alone: op, then times weight
                lambda x, w: composed_layer_norm(x, normalized, w), arrays[:2], dtype)
    assert_same(lambda x, b: F.layer_norm(x, normalized, bias=b),
                lambda x, b: composed_layer_norm(x, normalized, bias=b), arrays[::2], dtype)


def test_layer_norm_is_one_op_and_gradchecks():
    x = leaf((3, 5), seed=4)
    out = F.layer_norm(x, 5)
    assert out._ctx.op_name == "layer_norm" and out._ctx.parents == (x,)
    norm = nn.LayerNorm(5)  # weight and bias inside the op: one node, three inputs
    out = norm(x)
    assert out._ctx.op_name == "layer_norm" and out._ctx.parents == (x, norm.weight, norm.bias)
    assert gradcheck(lambda t: F.layer_norm(t, (2, 5), eps=1e-3), leaf((2, 2, 5), seed=5))


def test_layer_norm_of_a_constant_row_is_zero_with_finite_gradient():
    x = Tensor(np.full((2, 4), 3.0), requires_grad=True, dtype=np.float64)
    out = F.layer_norm(x, 4)
    out.backward(np.arange(8.0).reshape(2, 4))
    np.testing.assert_array_equal(out.data, 0.0)
    assert np.isfinite(x.grad).all()


# ----- erf ---------------------------------------------------------------------
ERF_POINTS = np.concatenate([
    np.linspace(-8, 8, 160001), np.geomspace(1e-300, 30, 5000), -np.geomspace(1e-300, 30, 5000),
    [0.46875, np.nextafter(0.46875, 0), np.nextafter(0.46875, 1), 4.0, 6.0, np.nextafter(6.0, 0),
     -0.46875, 1e300, -1e300]])


def test_erf_float64_is_right_to_the_last_bits():
    want = np.array([math.erf(v) for v in ERF_POINTS])
    got = erf(ERF_POINTS)
    assert got.dtype == np.float64
    assert np.abs(got - want).max() <= 1e-15
    assert (np.abs(got - want) <= 3e-15 * np.abs(want)).all()  # also relative, near 0


def test_erf_float32_is_computed_in_float32_to_a_few_ulps():
    with np.errstate(over="ignore"):  # +-1e300 become +-inf
        x = ERF_POINTS.astype(np.float32)
    want = np.array([math.erf(float(v)) for v in x])
    got = erf(x)
    assert got.dtype == np.float32
    ulps = np.abs(got - want) / np.spacing(np.abs(want).astype(np.float32))
    assert ulps.max() <= 5


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_erf_special_values_and_dtypes(dtype):
    got = erf(np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0], dtype=dtype))
    assert got.dtype == dtype
    np.testing.assert_array_equal(got[:5], [1.0, -1.0, np.nan, 0.0, -0.0])
    assert np.signbit(got[4]) and abs(float(got[5]) - math.erf(1.0)) < 1e-3
    assert erf(np.asarray(0.5, dtype=dtype)).shape == ()


# ----- split: the pieces are slices ---------------------------------------------
def split_by_getitem(x, sizes, axis):
    """The pieces as one getitem each, written out by hand."""
    starts = np.cumsum([0] + sizes[:-1])
    lead = (slice(None),) * axis
    return [x[lead + (slice(int(s), int(s) + n),)] for s, n in zip(starts, sizes)]


SPLIT_USES = {  # which pieces reach the output, and how
    "all": lambda p: Tensor.cat([p[2], p[0] * 2.0, p[1]], axis=-1),
    "some": lambda p: p[0] * 3.0 + p[2],
    "one_twice": lambda p: p[1] * p[1],
}


@pytest.mark.parametrize("use", list(SPLIT_USES))
@pytest.mark.parametrize("axis", [0, 2])
def test_split_equals_one_getitem_per_piece(use, axis):
    x = make_array((6, 2, 6), seed=6)
    assert_same(lambda t: SPLIT_USES[use](t.split(2, axis)),
                lambda t: SPLIT_USES[use](split_by_getitem(t, [2, 2, 2], axis)), [x])
    assert gradcheck(lambda t: SPLIT_USES[use](t.split(2, axis)),
                     Tensor(x, requires_grad=True, dtype=np.float64))


def test_split_pieces_are_views_and_unused_pieces_get_nothing():
    x = leaf((4, 6), seed=7)
    pieces = x.split([1, 3, 2], axis=1)
    assert all(np.shares_memory(p.data, x.data) for p in pieces)
    assert [p._ctx.op_name for p in pieces] == ["getitem"] * 3
    (pieces[0] * 2.0 + pieces[2].sum(1, keepdims=True)).sum().backward()
    np.testing.assert_array_equal(x.grad, np.repeat([[2.0, 0, 0, 0, 1, 1]], 4, axis=0))


def test_one_pieces_own_backward_puts_its_gradient_in_place():
    """What viz draws on the edge from x to one piece."""
    x = leaf((2, 5))
    piece = x.split([2, 3], axis=1)[1]
    sent = piece._ctx.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(sent, [[0, 0, 1, 1, 1]] * 2)


def test_split_twice_backward_adds_twice():
    x = leaf((3, 4))
    out = (x.split(2, axis=1)[1] * 5.0).sum()
    out.backward()
    out.backward()
    np.testing.assert_array_equal(x.grad, [[0, 0, 10, 10]] * 3)


# ----- getitem of whole rows (embedding lookup) --------------------------------
@pytest.mark.parametrize("shape", [(7,), (7, 3), (7, 2, 3)])
def test_row_lookup_backward_sums_repeats_like_add_at(shape):
    index = np.array([[0, 6, 6, -1], [3, 0, -7, 2]])  # repeats and negative rows
    x = leaf(shape)
    upstream = make_array(index.shape + shape[1:], seed=8)
    x[index].backward(upstream)
    want = np.zeros(shape)
    np.add.at(want, index, upstream)
    np.testing.assert_allclose(x.grad, want, rtol=1e-15, atol=1e-15)


# ----- matmul: a stack of matrices times one matrix ----------------------------
@pytest.mark.parametrize("transposed", [False, True])
def test_stack_times_matrix_is_one_product(transposed):
    a = make_array((3, 4, 5), seed=9)
    a = a.transpose(1, 0, 2) if transposed else a  # a non-contiguous stack too
    b = make_array((5, 2), seed=10)
    assert_same(lambda x, w: x @ w, lambda x, w: (x.reshape(-1, 5) @ w).reshape(a.shape[:2] + (2,)),
                [a, b])
    np.testing.assert_allclose((Tensor(a, dtype=np.float64) @ Tensor(b, dtype=np.float64)).data,
                               np.matmul(a, b), rtol=1e-14)


# ----- the one graph walk --------------------------------------------------------
def test_topological_order_with_and_without_constants():
    x = leaf((2, 3))
    c = Tensor(np.ones((2, 3)))
    out = ((x * c) + x.exp()).sum()
    with_constants = topological_order(out, include_constants=True)
    without = topological_order(out)
    assert [t for t in with_constants if t.requires_grad] == without
    assert any(t is c for t in with_constants) and not any(t is c for t in without)
    for order in (with_constants, without):
        position = {id(t): i for i, t in enumerate(order)}
        assert order[-1] is out and len(position) == len(order)
        for t in order:
            if t._ctx is not None:
                assert all(position[id(p)] < position[id(t)] for p in t._ctx.parents
                           if id(p) in position)
    assert [t for t, _ in walk_backward(out)] == without[::-1]


# ----- backward reusing the gradient arrays only the walk holds ---------------------------
def _encoder_and_loss(seed=0, causal=False):
    from tinygrad_enc import manual_seed
    manual_seed(seed)
    layer = nn.TransformerEncoderLayer(16, 4, 32)
    x = Tensor(np.random.default_rng(seed).standard_normal((3, 5, 16)), dtype=np.float32)
    mask = nn.causal_mask(5) if causal else None
    out = layer(x, mask=mask)
    return layer, F.cross_entropy(out.reshape(15, 16), np.arange(15) % 16)


@pytest.mark.parametrize("causal", [False, True])
def test_backward_reusing_arrays_gives_the_same_numbers_as_the_walk_without(causal):
    """backward() lets linear_relu and softmax overwrite the gradient they get
    (and adds into a sum in place) when only the walk holds it: the same
    arithmetic, so the same numbers, bit for bit, as a walk that never reuses."""
    layer, loss = _encoder_and_loss(causal=causal)
    loss.backward()
    reused = {name: p.grad.copy() for name, p in layer.named_parameters()}
    kept = {}
    for tensor, g in walk_backward(loss):  # reuse=False: every gradient is left as it was made
        kept[id(tensor)] = (g, g.copy())
    for name, p in layer.named_parameters():
        g, copy = kept[id(p)]
        np.testing.assert_array_equal(reused[name], g, err_msg=name)
    assert all(np.array_equal(g, copy) for g, copy in kept.values())  # none was overwritten later


def test_the_ops_that_may_overwrite_are_told_so_only_by_backward(monkeypatch):
    told = []
    for op in (ops.Linear, ops.Softmax, ops.LayerNorm):
        original = op.backward

        def spy(self, g, owned=False, original=original):
            told.append((self.op_name, owned))
            return original(self, g, owned)
        monkeypatch.setattr(op, "backward", spy)
    layer, loss = _encoder_and_loss()
    list(walk_backward(loss))
    assert told and not any(owned for _, owned in told)  # a plain walk: never
    told.clear()
    loss.backward()
    assert {name for name, owned in told if owned} == {"linear_relu", "softmax", "layer_norm",
                                                       "linear"}


@pytest.mark.parametrize("relu", [False, True])
def test_linear_backward_writes_into_g_only_when_it_owns_it(relu):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)
    g = rng.standard_normal((4, 5))
    results = []
    for owns in (False, True):
        op = ops.Linear()
        op.needs_grad = (True, True, True)
        op.forward(x, w, b, relu=relu)
        given = g.copy()
        results.append(op.backward(given, owns))
        assert np.array_equal(given, g) == (not owns or not relu)  # relu's mask lands in g
    for a, b_ in zip(*results):
        np.testing.assert_array_equal(a, b_)


def test_viz_edges_keep_the_gradients_they_were_told():
    """A walk with on_edge never reuses: the gradients a drawing labels edges
    with stay as they were sent, even when backward() would have reused them."""
    layer, loss = _encoder_and_loss()
    edges = []
    for _ in walk_backward(loss, on_edge=lambda parent, consumer, g: edges.append((g, g.copy())),
                           reuse=True):
        pass
    assert edges and all(np.array_equal(g, copy) for g, copy in edges)


def test_backward_reusing_arrays_leaves_the_graph_as_it_was():
    """What backward overwrites is only gradients it made: the saved arrays,
    every tensor's value and the caller's upstream gradient are untouched, so
    a second backward adds exactly the same gradients again."""
    layer, loss = _encoder_and_loss(causal=True)
    graph = topological_order(loss, include_constants=True)
    values = [(t, t.data.copy()) for t in graph if isinstance(t.data, np.ndarray)]
    assert {t.data.what for t in graph if not isinstance(t.data, np.ndarray)} == {names.SCORES, "masked_fill"}
    loss.backward()
    first = {name: p.grad.copy() for name, p in layer.named_parameters()}
    loss.backward()
    for name, p in layer.named_parameters():
        np.testing.assert_array_equal(p.grad, 2 * first[name], err_msg=name)
    for t, value in values:
        np.testing.assert_array_equal(t.data, value)
    out = layer(Tensor(np.ones((2, 5, 16), np.float32)))
    upstream = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    kept = upstream.copy()
    out.backward(upstream)
    np.testing.assert_array_equal(upstream, kept)


# ----- matmul's settings for attention: scale (Q·Kᵀ/√d_k) and layout (Z) -----------
@pytest.mark.parametrize("settings", [dict(scale=0.25), dict(layout=(0, 2, 1, 3)),
                                      dict(scale=0.5, layout=(0, 2, 1, 3))])
def test_matmul_settings_are_the_composed_product(settings):
    """apply(MatMul, a, b, scale=s, layout=...) is (a @ b) * s, in value and
    gradient, whatever the memory order of the result."""
    a0, b0 = make_array((2, 3, 4, 5), seed=11), make_array((2, 3, 5, 6), seed=12)
    upstream = make_array((2, 3, 4, 6), seed=13)
    scale = settings.get("scale", 1.0)
    results = []
    for fn in (lambda a, b: apply(ops.MatMul, a, b, **settings), lambda a, b: (a @ b) * scale):
        a, b = Tensor(a0, requires_grad=True, dtype=np.float64), Tensor(b0, requires_grad=True, dtype=np.float64)
        out = fn(a, b)
        out.backward(upstream)
        results.append((out.data, a.grad, b.grad))
    for ours, composed in zip(*results):
        np.testing.assert_allclose(ours, composed, rtol=1e-13, atol=1e-15)
    held = results[0][0]
    order = settings.get("layout", (0, 1, 2, 3))  # the result's axes in memory
    assert held.transpose(order).flags.c_contiguous
    inputs = [Tensor(x, requires_grad=True, dtype=np.float64) for x in (a0, b0)]
    assert gradcheck(lambda a, b: apply(ops.MatMul, a, b, **settings), inputs)


def test_matmul_settings_match_torch():
    """The scaled product and its gradients against PyTorch's (a @ b) * s."""
    torch = pytest.importorskip("torch")
    a0, b0 = make_array((2, 3, 4, 5), seed=14), make_array((2, 3, 5, 6), seed=15)
    upstream = make_array((2, 3, 4, 6), seed=16)
    a, b = (Tensor(x, requires_grad=True, dtype=np.float64) for x in (a0, b0))
    out = apply(ops.MatMul, a, b, scale=0.125, layout=(0, 2, 1, 3))
    out.backward(upstream)
    ta, tb = (torch.tensor(x, requires_grad=True) for x in (a0, b0))
    want = (ta @ tb) * 0.125
    want.backward(torch.from_numpy(upstream))
    for ours, theirs in ((out.data, want), (a.grad, ta.grad), (b.grad, tb.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
