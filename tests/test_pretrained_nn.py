"""What the pretrained encoders need from the engine: F.normalize and the
padding-aware poolings nn.mean_pool and nn.cls_pool, each gradient-checked in
float64 and compared with PyTorch where it is installed."""
import numpy as np
import pytest

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor, nn
from tinygrad_enc.gradcheck import gradcheck

INF = float("inf")


def data(shape, seed=0, zero_slice=False):
    x = np.random.default_rng(seed).standard_normal(shape)
    if zero_slice:
        x[0, :, 1] = 0.0  # an all-zero slice along axis 1 and single zeros elsewhere
    return x


def leaf(x):
    return Tensor(x, requires_grad=True, dtype=np.float64)


@pytest.mark.parametrize("p", [1, 2, 3, 1.5, INF])
@pytest.mark.parametrize("dim", [1, -1, 0, (1, 2)])
def test_normalize_gradcheck(p, dim):
    assert gradcheck(lambda t: F.normalize(t, p=p, dim=dim), [leaf(data((2, 3, 4)))])


def test_normalize_gives_unit_norm_rows_and_accepts_axis():
    x = leaf(data((4, 5)))
    y = F.normalize(x, axis=1).data
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(y, x.data / np.linalg.norm(x.data, axis=1, keepdims=True))
    np.testing.assert_array_equal(F.normalize(x, axis=0).data, F.normalize(x, dim=0).data)
    z = F.normalize(Tensor(np.ones((2, 3), np.float32)))
    assert z.dtype == np.float32


def test_normalize_all_zero_slice_gives_zero_and_a_finite_gradient():
    x = leaf(np.zeros((2, 3)))
    y = F.normalize(x, dim=1)
    np.testing.assert_array_equal(y.data, 0.0)
    y.backward(np.ones((2, 3)))
    np.testing.assert_allclose(x.grad, 1e12)  # 1 / eps, as PyTorch


@pytest.mark.parametrize("bad, error, message", [
    ({"input": np.ones((2, 3))}, TypeError, "input must be a Tensor"),
    ({"input": Tensor(np.ones((2, 3), dtype=np.int64))}, TypeError, "floating-point"),
    ({"p": 0}, ValueError, "p must be a positive number"),
    ({"p": -2}, ValueError, "p must be a positive number"),
    ({"p": "fro"}, ValueError, "p must be a positive number"),
    ({"eps": -1.0}, ValueError, "eps must be >= 0"),
    ({"dim": 2}, ValueError, "normalize: axis 2 is out of range"),
    ({"dim": 0, "axis": 1}, TypeError, "give one of them"),
])
def test_normalize_misuse(bad, error, message):
    kwargs = {"input": Tensor(np.ones((2, 3)))} | bad
    with pytest.raises(error, match=message):
        F.normalize(**kwargs)


@pytest.mark.parametrize("p", [1, 2, 3, 0.5, INF])
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_normalize_matches_torch(p, dim):
    torch = pytest.importorskip("torch")
    x = data((3, 4, 5), seed=1, zero_slice=True)
    g = data((3, 4, 5), seed=2)
    t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.normalize(t, p=p, dim=dim).backward(torch.tensor(g))
    ours = leaf(x)
    out = F.normalize(ours, p=p, dim=dim)
    out.backward(g)
    np.testing.assert_allclose(out.data, torch.nn.functional.normalize(
        torch.tensor(x), p=p, dim=dim).numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours.grad, t.grad.numpy(), rtol=1e-10, atol=1e-3)  # grads ~1e12


PADDING = np.array([[False, False, False, True], [False, True, True, True],
                    [False, False, False, False]])


def test_mean_pool_ignores_padding_and_checks_its_gradient():
    h = leaf(data((3, 4, 5)))
    pooled = nn.mean_pool(h, PADDING).data
    for b, mask in enumerate(PADDING):
        np.testing.assert_allclose(pooled[b], h.data[b][~mask].mean(axis=0), rtol=1e-12)
    assert gradcheck(lambda t: nn.mean_pool(t, PADDING), [h])
    np.testing.assert_allclose(nn.mean_pool(h).data, h.data.mean(axis=1))


def test_mean_pool_all_padding_gives_zeros():
    pooled = nn.mean_pool(leaf(data((2, 3, 4))), np.array([[True] * 3, [False] * 3]))
    np.testing.assert_array_equal(pooled.data[0], 0.0)
    assert np.isfinite(pooled.data).all()


def test_mean_pool_matches_sentence_transformers_recipe_in_torch():
    torch = pytest.importorskip("torch")
    x = data((3, 4, 5), seed=3)
    keep = torch.tensor(~PADDING)[..., None].double()
    t = torch.tensor(x, requires_grad=True)
    ref = (t * keep).sum(1) / keep.sum(1).clamp(min=1e-9)
    g = data((3, 5), seed=4)
    ref.backward(torch.tensor(g))
    ours = leaf(x)
    out = nn.mean_pool(ours, PADDING)
    out.backward(g)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad, t.grad.numpy(), rtol=1e-12)


def test_cls_pool_takes_the_first_token():
    h = leaf(data((3, 4, 5)))
    np.testing.assert_array_equal(nn.cls_pool(h).data, h.data[:, 0])
    assert gradcheck(nn.cls_pool, [h])


@pytest.mark.parametrize("call, error, message", [
    (lambda: nn.mean_pool(Tensor(np.ones((2, 3)))), ValueError, r"must be \(B, T, d\)"),
    (lambda: nn.mean_pool(Tensor(np.ones((2, 3, 4))), np.zeros((2, 3))), TypeError,
     "key_padding_mask must be boolean"),
    (lambda: nn.mean_pool(Tensor(np.ones((2, 3, 4))), np.zeros((3, 2), bool)), ValueError,
     r"key_padding_mask must be \(B, T\) = \(2, 3\), got \(3, 2\)"),
    (lambda: nn.cls_pool(Tensor(np.ones((2, 0, 4)))), ValueError, "T >= 1"),
])
def test_pooling_misuse(call, error, message):
    with pytest.raises(error, match=message):
        call()
