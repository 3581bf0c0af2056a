"""PyTorch's other spellings of ops we have (x.matmul, x.softmax, x.t(), ...):
the same values and gradients as torch's methods of those names, and clear
errors where torch refuses."""
import numpy as np
import pytest

from tinygrad_enc import Tensor
from tinygrad_enc.gradcheck import gradcheck

from conftest import make_array

A23, B32 = make_array((2, 3), seed=1), make_array((3, 2), seed=2)
V3, W3 = make_array((3,), seed=3), make_array((3,), kind="nonzero", seed=4)
BATCH = make_array((2, 2, 3), seed=5), make_array((2, 3, 4), seed=6)

# name: (our call, torch's call, inputs)
CASES = {
    "softmax": (lambda x: x.softmax(dim=-1), lambda x: x.softmax(dim=-1), [A23]),
    "log_softmax": (lambda x: x.log_softmax(0), lambda x: x.log_softmax(0), [A23]),
    "matmul": (lambda a, b: a.matmul(b), lambda a, b: a.matmul(b), [A23, B32]),
    "mm": (lambda a, b: a.mm(b), lambda a, b: a.mm(b), [A23, B32]),
    "bmm": (lambda a, b: a.bmm(b), lambda a, b: a.bmm(b), list(BATCH)),
    "dot": (lambda a, b: a.dot(b), lambda a, b: a.dot(b), [V3, W3]),
    "outer": (lambda a, b: a.outer(b), lambda a, b: a.outer(b), [V3, W3]),
    "add": (lambda a, b: a.add(b), lambda a, b: a.add(b), [V3, W3]),
    "sub": (lambda a, b: a.sub(b), lambda a, b: a.sub(b), [V3, W3]),
    "mul": (lambda a, b: a.mul(b), lambda a, b: a.mul(b), [V3, W3]),
    "div": (lambda a, b: a.div(b), lambda a, b: a.div(b), [V3, W3]),
    "pow": (lambda a: a.pow(3), lambda a: a.pow(3), [V3]),
    "neg": (lambda a: a.neg(), lambda a: a.neg(), [V3]),
    "reciprocal": (lambda a: a.reciprocal(), lambda a: a.reciprocal(), [W3]),
    "t": (lambda a: a.t(), lambda a: a.t(), [A23]),
    "view_as": (lambda a, b: a.view_as(b), lambda a, b: a.view_as(b), [A23, B32]),
    "expand_as": (lambda a: a.expand_as(Tensor(np.zeros((4, 3)))),
                  lambda a: a.expand_as(__import__("torch").zeros(4, 3, dtype=a.dtype)), [V3]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_gradients_match_finite_differences(name):
    ours, _, inputs = CASES[name]
    assert gradcheck(ours, [Tensor(x, dtype=np.float64, requires_grad=True) for x in inputs])


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs, inputs = CASES[name]
    mine = [Tensor(x, dtype=np.float64, requires_grad=True) for x in inputs]
    refs = [torch.tensor(x, requires_grad=True) for x in inputs]
    out, ref = ours(*mine), theirs(*refs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    upstream = make_array(out.shape, seed=9)
    out.backward(upstream)
    ref.backward(torch.tensor(upstream))
    for m, r in zip(mine, refs):
        if r.grad is None:  # only its shape was read (view_as)
            assert m.grad is None
        else:
            np.testing.assert_allclose(m.grad, r.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_masks_and_flags():
    x = Tensor([1.0, np.nan, np.inf, -2.0])
    np.testing.assert_array_equal(x.isnan().data, [False, True, False, False])
    np.testing.assert_array_equal(x.isinf().data, [False, False, True, False])
    assert x.is_floating_point() and not Tensor([1, 2]).is_floating_point()
    assert x.contiguous() is x
    y = Tensor([1.0, 2.0]).requires_grad_()
    assert y.requires_grad and y.requires_grad_(False) is y and not y.requires_grad
    with pytest.raises(TypeError, match="requires_grad"):
        Tensor([1, 2]).requires_grad_()


@pytest.mark.parametrize("call, match", [
    (lambda: Tensor(A23).mm(Tensor(V3)), r"mm: needs two 2-D tensors, got \(2, 3\) and \(3,\)"),
    (lambda: Tensor(A23).bmm(Tensor(B32)), r"bmm: needs two 3-D tensors"),
    (lambda: Tensor(A23).dot(Tensor(A23)), r"dot: needs two 1-D tensors"),
    (lambda: Tensor(V3).dot([1.0, 2.0, 3.0]), r"dot: needs two 1-D tensors, got \(3,\) and list"),
    (lambda: Tensor(A23).outer(Tensor(V3)), r"outer: needs two 1-D tensors"),
    (lambda: Tensor(np.zeros((2, 2, 2))).t(), r"t: needs a tensor of at most 2 dimensions"),
])
def test_wrong_calls_name_the_op(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_view_as_needs_a_tensor():
    with pytest.raises(TypeError, match="view_as: needs a Tensor, got tuple"):
        Tensor(A23).view_as((3, 2))
