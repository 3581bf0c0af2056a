"""Shape, mask, cast, gather and einsum functions against PyTorch (values and
gradients in float32 and float64) and gradcheck; constructors and boolean
operators against PyTorch's."""
import numpy as np
import pytest

from tinygrad_enc import Tensor, manual_seed

from conftest import check_gradient, make_array, torch_compare as compare

torch = pytest.importorskip("torch")

# name: (ours, torch's, input shape)
MOVES = {
    "unsqueeze0": (lambda x: x.unsqueeze(0), lambda x: x.unsqueeze(0), (2, 3)),
    "unsqueeze_last": (lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1), (2, 3)),
    "unsqueeze_dim": (lambda x: x.unsqueeze(dim=1), lambda x: x.unsqueeze(dim=1), (2, 3)),
    "unsqueeze_0d": (lambda x: x.unsqueeze(0), lambda x: x.unsqueeze(0), ()),
    "squeeze_all": (lambda x: x.squeeze(), lambda x: x.squeeze(), (2, 1, 3, 1)),
    "squeeze_one": (lambda x: x.squeeze(1), lambda x: x.squeeze(1), (2, 1, 3, 1)),
    "squeeze_negative": (lambda x: x.squeeze(dim=-1), lambda x: x.squeeze(-1), (2, 1, 3, 1)),
    "squeeze_not_one_is_noop": (lambda x: x.squeeze(0), lambda x: x.squeeze(0), (2, 1, 3)),
    "squeeze_tuple": (lambda x: x.squeeze((1, 3)), lambda x: x.squeeze((1, 3)), (2, 1, 3, 1)),
    "squeeze_0d": (lambda x: x.squeeze(), lambda x: x.squeeze(), ()),
    "flatten": (lambda x: x.flatten(), lambda x: x.flatten(), (2, 3, 4)),
    "flatten_from_1": (lambda x: x.flatten(1), lambda x: x.flatten(1), (2, 3, 4)),
    "flatten_0_1": (lambda x: x.flatten(0, 1), lambda x: x.flatten(0, 1), (2, 3, 4)),
    "flatten_negative": (lambda x: x.flatten(-2, -1), lambda x: x.flatten(-2, -1), (2, 3, 4)),
    "flatten_0d": (lambda x: x.flatten(), lambda x: x.flatten(), ()),
    "unflatten": (lambda x: x.unflatten(1, (3, 4)), lambda x: x.unflatten(1, (3, 4)), (2, 12)),
    "unflatten_minus1": (lambda x: x.unflatten(-1, (2, -1)),
                         lambda x: x.unflatten(-1, (2, -1)), (2, 12)),
    "repeat": (lambda x: x.repeat(2, 3), lambda x: x.repeat(2, 3), (2, 3)),
    "repeat_new_axes": (lambda x: x.repeat(2, 1, 3), lambda x: x.repeat(2, 1, 3), (2, 3)),
    "repeat_tuple": (lambda x: x.repeat((1, 2)), lambda x: x.repeat((1, 2)), (3,)),
    "repeat_0d": (lambda x: x.repeat(3), lambda x: x.repeat(3), ()),
    "repeat_zero": (lambda x: x.repeat(0, 2), lambda x: x.repeat(0, 2), (2, 3)),
    "flip": (lambda x: x.flip(0), lambda x: x.flip(0), (2, 3, 4)),
    "flip_many": (lambda x: x.flip((-1, 0)), lambda x: x.flip((-1, 0)), (2, 3, 4)),
    "flip_varargs": (lambda x: x.flip(0, 2), lambda x: x.flip(0, 2), (2, 3, 4)),
    "chunk": (lambda x: Tensor.cat(x.chunk(3, 1), 1) * Tensor(np.arange(7.0), dtype=x.dtype),
              lambda x: torch.cat(x.chunk(3, 1), 1) * torch.arange(7.0, dtype=x.dtype), (2, 7)),
    "tril": (lambda x: x.tril(), lambda x: x.tril(), (3, 4)),
    "tril_k": (lambda x: x.tril(1), lambda x: x.tril(1), (2, 3, 4)),
    "tril_negative": (lambda x: x.tril(diagonal=-1), lambda x: x.tril(diagonal=-1), (4, 3)),
    "triu": (lambda x: x.triu(), lambda x: x.triu(), (3, 4)),
    "triu_k": (lambda x: x.triu(2), lambda x: x.triu(2), (2, 4, 3)),
    "triu_negative": (lambda x: x.triu(-1), lambda x: x.triu(-1), (4, 4)),
    "transpose_dims": (lambda x: x.transpose(dim0=0, dim1=-1),
                       lambda x: x.transpose(dim0=0, dim1=-1), (2, 3, 4)),
    "cat_dim": (lambda x: Tensor.cat([x, x * 2], dim=-1), lambda x: torch.cat([x, x * 2], dim=-1),
                (2, 3)),
    "stack_dim": (lambda x: Tensor.stack([x, x * 2], dim=1),
                  lambda x: torch.stack([x, x * 2], dim=1), (2, 3)),
    "split_dim": (lambda x: x.split(2, dim=1)[1], lambda x: x.split(2, dim=1)[1], (2, 5)),
    "gather": (lambda x: x.gather(1, Tensor([[0, 0, 2], [1, 0, 1]])),
               lambda x: x.gather(1, torch.tensor([[0, 0, 2], [1, 0, 1]])), (2, 3)),
    "gather_dim0_smaller": (lambda x: x.gather(dim=0, index=np.array([[1, 0]])),
                            lambda x: x.gather(0, torch.tensor([[1, 0]])), (2, 3)),
    "gather_int32_3d": (lambda x: x.gather(-1, np.array([[[3, 3]], [[0, 1]]], dtype=np.int32)),
                        lambda x: x.gather(-1, torch.tensor([[[3, 3]], [[0, 1]]])), (2, 3, 4)),
    "gather_empty": (lambda x: x.gather(1, np.zeros((2, 0), np.int64)),
                     lambda x: x.gather(1, torch.zeros((2, 0), dtype=torch.int64)), (2, 3)),
    "index_int_slice_array": (lambda x: x[0, :, [0, 2]], lambda x: x[0, :, [0, 2]], (2, 3, 4)),
    "index_array_slice_int": (lambda x: x[[1, 0, 1], :, 3], lambda x: x[[1, 0, 1], :, 3],
                              (2, 3, 4)),
    "index_int_array_adjacent": (lambda x: x[1, [0, 2]], lambda x: x[1, [0, 2]], (2, 3, 4)),
    "index_ellipsis_int_mask": (lambda x: x[..., 1, np.array([True, False, True])],
                                lambda x: x[..., 1, torch.tensor([True, False, True])],
                                (2, 4, 3)),
    "index_none_int_array": (lambda x: x[None, 1, :, [3, 0]], lambda x: x[None, 1, :, [3, 0]],
                             (2, 3, 4)),
    "masked_select": (lambda x: x.masked_select(x.detach() > 0.2),
                      lambda x: x.masked_select(x.detach() > 0.2), (2, 3, 4)),
    "masked_select_broadcast": (lambda x: x.masked_select(np.array([True, False, True])),
                                lambda x: x.masked_select(torch.tensor([True, False, True])),
                                (2, 3)),
    "masked_select_mask_grows_x": (lambda x: x.masked_select(np.eye(3, dtype=bool)),
                                   lambda x: x.masked_select(torch.eye(3, dtype=torch.bool)),
                                   (3,)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(MOVES))
def test_shape_function_matches_torch(name, dtype):
    ours, theirs, shape = MOVES[name]
    compare(ours, theirs, [make_array(shape)], dtype)


@pytest.mark.parametrize("name", list(MOVES))
def test_shape_function_gradcheck(name):
    ours, _, shape = MOVES[name]
    check_gradient(ours, [make_array(shape)])


@pytest.mark.parametrize("length,chunks", [(7, 3), (6, 4), (5, 5), (2, 3), (0, 3), (1, 1), (9, 2)])
def test_chunk_sizes_are_torch_chunk(length, chunks):
    ours = [p.shape for p in Tensor(np.zeros((2, length))).chunk(chunks, dim=1)]
    theirs = [tuple(p.shape) for p in torch.zeros((2, length)).chunk(chunks, dim=1)]
    assert ours == theirs


def test_dim_numel_tolist_clone_are_pytorch_s():
    x, xt = Tensor(np.zeros((2, 3, 4))), torch.zeros((2, 3, 4))
    assert x.dim() == xt.dim() == 3 and x.numel() == xt.numel() == 24
    assert Tensor([[1, 2]]).tolist() == [[1, 2]] and Tensor(1.5).tolist() == 1.5
    w = Tensor([1.0, 2.0], requires_grad=True)
    copy = w.clone()
    assert copy.data is not w.data and not np.shares_memory(copy.data, w.data)
    (copy * 3).sum().backward()
    np.testing.assert_array_equal(w.grad, [3.0, 3.0])
    ids = Tensor([1, 2])
    assert ids.clone().dtype == np.int64 and not np.shares_memory(ids.clone().data, ids.data)


def test_tril_triu_on_masks_and_integers():
    ones = np.ones((4, 5), dtype=bool)
    for k in (-2, 0, 1):
        np.testing.assert_array_equal(Tensor(ones).triu(k).data,
                                      torch.tensor(ones).triu(k).numpy())
        np.testing.assert_array_equal(Tensor(np.arange(20).reshape(4, 5)).tril(k).data,
                                      torch.arange(20).reshape(4, 5).tril(k).numpy())


# ----- einsum: each equation against torch.einsum ----------------------------------
EINSUM = {
    "attention_scores": ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    "attention_values": ("bhqk,bhkd->bhqd", [(2, 2, 3, 5), (2, 2, 5, 4)]),
    "batched_matmul": ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    "matmul_implicit": ("ij,jk", [(3, 4), (4, 2)]),
    "outer": ("i,j->ij", [(3,), (4,)]),
    "dot_implicit": ("i,i", [(4,), (4,)]),
    "trace": ("ii->", [(3, 3)]),
    "trace_implicit": ("ii", [(4, 4)]),
    "diagonal": ("ii->i", [(3, 3)]),
    "batched_diagonal": ("bii->bi", [(2, 3, 3)]),
    "transpose": ("ij->ji", [(3, 4)]),
    "transpose_implicit": ("ba", [(3, 4)]),
    "sum_all": ("ij->", [(3, 4)]),
    "sum_axis": ("ijk->j", [(2, 3, 4)]),
    "hadamard": ("ij,ij->ij", [(2, 3), (2, 3)]),
    "ellipsis_broadcast": ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    "ellipsis_sum": ("...i->...", [(2, 3, 4)]),
    "ellipsis_summed_away": ("...ij->ij", [(2, 3, 4)]),
    "size_one_broadcast": ("ij,j->i", [(2, 3), (1,)]),
    "three_operands": ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    "bilinear": ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    "only_in_one_operand": ("ij,k->i", [(2, 3), (4,)]),
    "spaces_and_capitals": ("Ab, bC -> AC", [(2, 3), (3, 4)]),
    "zero_d": (",i->i", [(), (3,)]),
    "empty": ("ij,jk->ik", [(2, 0), (0, 3)]),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(EINSUM))
def test_einsum_matches_torch(name, dtype):
    equation, shapes = EINSUM[name]
    arrays = [make_array(s, seed=i) for i, s in enumerate(shapes)]
    compare(lambda *ts: Tensor.einsum(equation, *ts),
            lambda *ts: torch.einsum(equation, *ts), arrays, dtype)


@pytest.mark.parametrize("name", list(EINSUM))
def test_einsum_gradcheck(name):
    equation, shapes = EINSUM[name]
    check_gradient(lambda *ts: Tensor.einsum(equation, *ts),
                   [make_array(s, seed=i) for i, s in enumerate(shapes)])


def test_einsum_takes_a_list_and_equals_matmul():
    a, b = Tensor(make_array((2, 3, 4))), Tensor(make_array((4, 5), seed=1))
    np.testing.assert_allclose(Tensor.einsum("bij,jk->bik", [a, b]).data, (a @ b).data,
                               rtol=1e-6)


# ----- casts -------------------------------------------------------------------------
def test_casts_match_torch_and_float_casts_carry_the_gradient():
    data = np.array([[-1.7, 0.0, 2.5], [3.9, -0.2, 1.0]])
    x, xt = Tensor(data), torch.tensor(data, dtype=torch.float32)
    for name in ("float", "double", "long", "int", "bool"):
        got, want = getattr(x, name)(), getattr(xt, name)()
        assert got.dtype == np.dtype(str(want.dtype).replace("torch.", "")), name
        np.testing.assert_array_equal(got.data, want.numpy())
    assert x.float() is x and x.to(np.float32) is x and x.to("cpu") is x
    w = Tensor(data, requires_grad=True)
    y = w.double()
    assert y.dtype == np.float64 and y.requires_grad
    (y * y).sum().backward()
    assert w.grad.dtype == np.float32
    np.testing.assert_allclose(w.grad, 2 * data, rtol=1e-6)
    assert not w.long().requires_grad and w.long().dtype == np.int64
    assert w.type_as(Tensor([1], dtype=np.int32)).dtype == np.int32
    assert w.to(Tensor([1.0], dtype=np.float64)).dtype == np.float64
    assert w.to("float64").dtype == w.to(dtype=np.float64).dtype == np.float64
    assert w.to("cpu", np.float64).dtype == np.float64


# ----- type promotion for several tensors, as PyTorch ------------------------------------
PROMOTION = [
    (np.float32, (3,), np.int32, (3,)), (np.float32, (3,), np.int64, (3,)),
    (np.int32, (3,), np.float64, (3,)), (np.float32, (3,), np.float64, ()),
    (np.float64, (), np.float32, (3,)), (np.int64, (3,), np.float64, ()),
    (np.int32, (3,), np.int64, ()), (np.int32, (3,), np.int64, (3,)),
    (np.bool_, (3,), np.int32, ()), (np.bool_, (3,), np.float64, ()),
    (np.uint8, (3,), np.int8, (3,)), (np.float32, (), np.int64, ()),
]


@pytest.mark.parametrize("a_dtype,a_shape,b_dtype,b_shape", PROMOTION, ids=str)
def test_tensor_tensor_ops_promote_as_pytorch(a_dtype, a_shape, b_dtype, b_shape):
    a = (np.ones(a_shape) * 3).astype(a_dtype)
    b = (np.ones(b_shape) * 2).astype(b_dtype)
    ta, tb = Tensor(a, dtype=a_dtype), Tensor(b, dtype=b_dtype)
    pa, pb = torch.from_numpy(np.asarray(a)), torch.from_numpy(np.asarray(b))
    for ours, theirs in [(ta * tb, pa * pb), (ta / tb, pa / pb), (ta - tb, pa - pb) if
                         a_dtype != np.bool_ else (ta + tb, pa + pb),
                         (Tensor.where(np.array(True), ta, tb),
                          torch.where(torch.tensor(True), pa, pb)),
                         (ta.maximum(tb), torch.maximum(pa, pb))]:
        assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", "")), (ours.dtype,
                                                                                 theirs.dtype)
        np.testing.assert_allclose(ours.data, theirs.numpy())


def test_float32_divided_by_int32_is_float32_with_its_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x / Tensor(np.array([2, 4], dtype=np.int32))
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [0.5, 0.25])


# ----- boolean operators -----------------------------------------------------------------
def test_boolean_operators_match_torch():
    causal = np.triu(np.ones((3, 3), dtype=bool), 1)
    padding = np.array([False, False, True])
    a, b = Tensor(causal), Tensor(padding)
    pa, pb = torch.tensor(causal), torch.tensor(padding)
    for ours, theirs in [(a | b, pa | pb), (a & b, pa & pb), (a ^ b, pa ^ pb), (~a, ~pa),
                         (a | padding, pa | pb), (padding & a, pb & pa), (True ^ a, True ^ pa),
                         (a | (Tensor(np.eye(3)) > 0), pa | (torch.eye(3) > 0))]:
        assert ours.dtype == np.bool_
        np.testing.assert_array_equal(ours.data, theirs.numpy())
    ints = np.array([5, 3, 12])
    np.testing.assert_array_equal((Tensor(ints) & 6).data, (torch.tensor(ints) & 6).numpy())
    np.testing.assert_array_equal((~Tensor(ints)).data, (~torch.tensor(ints)).numpy())


# ----- constructors ------------------------------------------------------------------------
CONSTRUCTORS = [
    (lambda: Tensor.arange(5), lambda: torch.arange(5)),
    (lambda: Tensor.arange(2, 9, 3), lambda: torch.arange(2, 9, 3)),
    (lambda: Tensor.arange(0.0, 1.0, 0.25), lambda: torch.arange(0.0, 1.0, 0.25)),
    (lambda: Tensor.arange(5, 0, -2), lambda: torch.arange(5, 0, -2)),
    (lambda: Tensor.arange(1, 2.5), lambda: torch.arange(1, 2.5)),
    (lambda: Tensor.arange(4, dtype=np.float64), lambda: torch.arange(4, dtype=torch.float64)),
    (lambda: Tensor.eye(3), lambda: torch.eye(3)),
    (lambda: Tensor.eye(2, 4), lambda: torch.eye(2, 4)),
    (lambda: Tensor.full((2, 3), 1.5), lambda: torch.full((2, 3), 1.5)),
    (lambda: Tensor.full((2,), 7), lambda: torch.full((2,), 7)),
    (lambda: Tensor.full((2,), True), lambda: torch.full((2,), True)),
    (lambda: Tensor.full((), 2.0), lambda: torch.full((), 2.0)),
    (lambda: Tensor.zeros_like(Tensor(np.ones((2, 3), np.int32))),
     lambda: torch.zeros_like(torch.ones((2, 3), dtype=torch.int32))),
    (lambda: Tensor.ones_like(Tensor(np.zeros(3))), lambda: torch.ones_like(torch.zeros(3))),
    (lambda: Tensor.full_like(Tensor(np.zeros((2, 2))), 4.5),
     lambda: torch.full_like(torch.zeros((2, 2)), 4.5)),
    (lambda: Tensor.linspace(0, 1, 5), lambda: torch.linspace(0, 1, 5)),
    (lambda: Tensor.linspace(-2, 2, 1), lambda: torch.linspace(-2, 2, 1)),
    (lambda: Tensor.linspace(0, 1, 0), lambda: torch.linspace(0, 1, 0)),
]


@pytest.mark.parametrize("index", range(len(CONSTRUCTORS)))
def test_constructors_match_torch(index):
    ours, theirs = CONSTRUCTORS[index]
    got, want = ours(), theirs()
    assert got.dtype == np.dtype(str(want.dtype).replace("torch.", ""))
    np.testing.assert_allclose(got.data, want.numpy(), rtol=1e-6)


def test_random_constructors_are_seeded_and_in_range():
    manual_seed(3)
    a, r = Tensor.rand(2, 3), Tensor.randint(2, 5, (4, 5))
    manual_seed(3)
    b, s = Tensor.rand((2, 3)), Tensor.randint(2, 5, size=(4, 5))
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(r.data, s.data)
    assert a.dtype == np.float32 and np.all((a.data >= 0) & (a.data < 1))
    assert r.dtype == np.int64 and r.data.min() >= 2 and r.data.max() < 5
    assert Tensor.randint(10, (3,)).data.max() < 10
    assert Tensor.rand(2, dtype=np.float64, requires_grad=True).requires_grad


def test_constructors_can_require_grad():
    for t in (Tensor.full((2,), 1.0, requires_grad=True), Tensor.eye(2, requires_grad=True),
              Tensor.zeros_like(Tensor([1.0]), requires_grad=True),
              Tensor.linspace(0, 1, 3, requires_grad=True),
              Tensor.arange(0.0, 3.0, requires_grad=True)):
        assert t.requires_grad and t.is_leaf
