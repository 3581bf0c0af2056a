"""In-place operators and version counters: an in-place change is either
right or refused, and a graph whose saved values changed refuses backward."""
import numpy as np
import pytest

from tinygrad_enc import Tensor, nn, no_grad, optim


def leaf(values=(1.0, 2.0, 3.0)):
    return Tensor(np.array(values), requires_grad=True)


# ----- in-place operators ----------------------------------------------------
@pytest.mark.parametrize("op, expected", [("+=", [3, 4, 5]), ("-=", [-1, 0, 1]),
                                          ("*=", [2, 4, 6]), ("/=", [0.5, 1, 1.5]),
                                          ("**=", [1, 4, 9])])
def test_in_place_keeps_identity_and_changes_values(op, expected):
    x = Tensor(np.array([1.0, 2.0, 3.0]))
    before_id, version = id(x), x._version
    y = x
    exec(f"y {op} 2.0")
    assert id(y) == before_id
    np.testing.assert_allclose(x.data, expected)
    assert x._version == version + 1


def test_in_place_update_keeps_the_parameter_registered():
    model = nn.Linear(2, 1)
    weight = model.weight
    with no_grad():
        model.weight -= 1.0
    assert model.weight is weight
    assert dict(model.named_parameters())["weight"] is weight
    assert not weight._ctx and weight.requires_grad and weight.is_leaf


def test_hand_written_sgd_over_model_parameters_trains():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((32, 3)))
    y = Tensor(x.data @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.25)
    model = nn.Linear(3, 1)
    params = model.parameters()
    losses = []
    for _ in range(200):
        loss = ((model(x) - y) ** 2).mean()
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    assert losses[-1] < 1e-4 < losses[0]
    assert all(a is b for a, b in zip(params, model.parameters()))
    np.testing.assert_allclose(model.weight.data, [[1.0, -2.0, 0.5]], atol=1e-2)


def test_in_place_on_a_leaf_that_requires_grad_is_refused_with_pytorchs_reason():
    w = leaf()
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w += 1.0
    np.testing.assert_array_equal(w.data, [1, 2, 3])  # untouched
    with no_grad():
        w += 1.0  # the update is fine without a graph
    np.testing.assert_array_equal(w.data, [2, 3, 4])


def test_in_place_in_a_graph_becomes_part_of_it():
    w = leaf()
    h = w * 2.0        # a non-leaf
    h += w             # h = 3w
    h *= h             # h = 9 w^2
    h.sum().backward()
    np.testing.assert_allclose(w.grad, 18 * w.data)  # d(9 w^2)/dw
    assert h._ctx.op_name == "mul"


def test_power_in_place_in_a_graph_and_refused_on_integers():
    w = leaf()
    h = w * 1.0
    h **= 3
    h.sum().backward()
    np.testing.assert_allclose(w.grad, 3 * w.data ** 2)
    i = Tensor([2, 3])
    with pytest.raises(ValueError, match=r"\*\*=: .*negative integer power"):
        i **= -1
    with pytest.raises(TypeError, match="exponent"):
        i **= "2"
    i **= 2
    assert i.data.tolist() == [4, 9]


def test_in_place_with_a_tensor_that_requires_grad_joins_the_graph():
    w = leaf()
    acc = Tensor(np.zeros(3))
    acc += w * w
    acc.sum().backward()
    np.testing.assert_allclose(w.grad, 2 * w.data)


@pytest.mark.parametrize("make, op, words", [
    (lambda: Tensor([1, 2]), "+= 1.5", "int64 tensor cannot hold"),
    (lambda: Tensor([1, 2]), "/= 2", "int64 tensor cannot hold"),
    (lambda: Tensor([True, False]), "+= 1", "bool tensor cannot hold"),
    (lambda: Tensor([True, False]), "-= Tensor([True, True])", r"use a \^ b"),
    (lambda: Tensor([1.0]), "+= Tensor([1.0, 2.0])", "is not the tensor's shape"),
    (lambda: Tensor([1.0]).expand(3), "+= 1.0", "read-only"),
    (lambda: Tensor([1.0]), "+= 'a'", "cannot combine"),
    (lambda: Tensor([1.0]), "+= None", "cannot combine"),
])
def test_in_place_mistakes_are_clear_errors(make, op, words):
    x = make()
    before = x.data.copy()
    with pytest.raises((TypeError, ValueError), match=words):
        exec(f"x {op}", {"Tensor": Tensor, "x": x})
    np.testing.assert_array_equal(x.data, before)


def test_in_place_dtype_rules_follow_pytorch():
    i = Tensor([1, 2])
    i += 3
    i *= Tensor([True, False])
    assert i.dtype == np.int64 and i.data.tolist() == [4, 0]
    f = Tensor([1.0, 2.0])
    f += Tensor([1.0, 1.0], dtype=np.float64)  # same kind: the tensor keeps float32
    f += Tensor([1, 1])
    assert f.dtype == np.float32 and f.data.tolist() == [3.0, 4.0]


def test_in_place_on_a_0d_tensor():
    s = Tensor(2.0)
    s *= 3
    assert s.shape == () and s.item() == 6.0


def test_in_place_through_a_view_changes_the_base_and_its_version():
    p = Tensor(np.zeros((2, 3)))
    for view in (p[0], p.reshape(6), p.T, p.detach()):
        version = p._version
        with no_grad():
            view += 1.0
        assert p._version == version + 1
    np.testing.assert_array_equal(p.data, [[4, 4, 4], [3, 3, 3]])


def test_setitem_writes_outside_a_graph_and_is_refused_in_one():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match="view"):
        x[0] += 1.0
    with pytest.raises(RuntimeError, match="setitem: .*masked_fill"):
        x[0] = 1.0
    with no_grad():
        x[0] += 1.0
        x[1, [0, 2]] = 5.0
    np.testing.assert_array_equal(x.data, [[1, 1, 1], [5, 0, 5]])
    assert x._version == 3
    with pytest.raises(IndexError, match="setitem: .*out of bounds"):
        with no_grad():
            x[5] = 1.0


def test_in_place_on_a_view_in_a_graph_is_refused():
    h = leaf() * 1.0
    row = h[0:2]
    with pytest.raises(RuntimeError, match="view"):
        row += leaf()[0:2]


def test_a_view_of_a_parameter_changed_in_place_stops_a_kept_graph():
    w = leaf()
    loss = (w * w).sum()
    with no_grad():
        w.detach()[0] += 5.0  # numpy-style write through a view
    with pytest.raises(RuntimeError, match="mul"):
        loss.backward()


# ----- version counters -----------------------------------------------------------
def test_backward_after_an_optimizer_step_on_a_kept_graph_names_the_op():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss = (model(Tensor(np.ones((4, 3)))) ** 2).sum()
    loss.backward()
    opt.step()
    with pytest.raises(RuntimeError,
                       match=r"of (add|matmul|linear) \(in module Linear\) was changed"):
        loss.backward()


def test_backward_after_load_state_dict_names_the_op():
    model = nn.Linear(3, 2)
    new = {k: v + 1.0 for k, v in model.state_dict().items()}
    loss = (model(Tensor(np.ones((4, 3)))) ** 2).sum()
    model.load_state_dict(new)
    with pytest.raises(RuntimeError, match="changed in place"):
        loss.backward()


def test_backward_after_an_in_place_op_on_a_saved_input_names_the_op():
    w = leaf()
    h = w * 2.0
    loss = (h * h).sum()   # mul saved h
    h += 1.0
    with pytest.raises(RuntimeError, match="input 0 .* of mul"):
        loss.backward()


def test_backward_after_changing_a_saved_output_names_the_op():
    w = leaf()
    e = w.exp()            # exp saved its output
    with no_grad():
        e *= 2.0
    with pytest.raises(RuntimeError, match="output .* of exp"):
        e.backward(np.ones(3))


def test_a_fresh_forward_after_the_step_is_fine():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    x = Tensor(np.ones((4, 3)))
    for _ in range(2):
        opt.zero_grad()
        loss = (model(x) ** 2).sum()
        loss.backward()
        opt.step()
    assert model.weight.grad is not None


# ----- requires_grad and grad assignment ---------------------------------------------
@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint8, np.bool_])
def test_requires_grad_on_an_integer_tensor_is_refused(dtype):
    t = Tensor(np.zeros(3, dtype=dtype))
    with pytest.raises(TypeError, match="only floating-point tensors can require grad"):
        t.requires_grad = True
    assert t.requires_grad is False


def test_requires_grad_must_be_a_bool():
    with pytest.raises(TypeError, match="requires_grad"):
        Tensor([1.0]).requires_grad = "yes"
    with pytest.raises(TypeError, match="requires_grad"):
        Tensor([1.0], requires_grad="yes")


@pytest.mark.parametrize("value, error, words", [
    (np.zeros(2), ValueError, r"shape \(2,\)"),
    (np.zeros(3, dtype=np.float64), TypeError, "float64 gradient to a float32"),
    (np.zeros(3, dtype=np.int64), TypeError, "int64 gradient"),
    ([0.0, 0.0, 0.0], TypeError, "list"),
])
def test_assigning_grad_checks_shape_and_dtype(value, error, words):
    w = Tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
    with pytest.raises(error, match=words):
        w.grad = value
    assert w.grad is None
    w.grad = np.ones(3, dtype=np.float32)
    assert w.grad.tolist() == [1, 1, 1]
