"""Optimizers without torch: the update rules by hand, in-place updates, no
graph, skipped parameters; NoamSchedule and clip_grad_norm by their formulas."""
import gc

import numpy as np
import pytest

from tinygrad_enc import Tensor, manual_seed, nn, optim

OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd_momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    "sgd_nesterov": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.01),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.1),
}


def _model_with_grads():
    manual_seed(0)
    model = nn.Linear(4, 3)
    x = Tensor(np.random.default_rng(0).standard_normal((5, 4)))
    ((model(x) - 1.0) ** 2).mean().backward()
    return model


def _live_tensors():
    gc.collect()
    return sum(issubclass(type(o), Tensor) for o in gc.get_objects())  # type(): no __class__ lookups


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_updates_in_place_without_building_graph(name, monkeypatch):
    model = _model_with_grads()
    made = []
    init, wrap = Tensor.__init__, Tensor._wrap.__func__
    monkeypatch.setattr(Tensor, "__init__", lambda self, *a, **k: (made.append(1),
                                                                   init(self, *a, **k))[1])
    monkeypatch.setattr(Tensor, "_wrap", classmethod(lambda cls, a: (made.append(1),
                                                                     wrap(cls, a))[1]))
    params = model.parameters()
    opt = OPTIMIZERS[name](params)
    arrays = [p.data for p in params]
    before = [a.copy() for a in arrays]
    grads = [p.grad.copy() for p in params]
    live = _live_tensors()
    for _ in range(3):
        opt.step()
    assert _live_tensors() == live and made == []  # not one Tensor made, not even for a moment
    assert model.parameters() == params
    for p, array, old, grad in zip(params, arrays, before, grads):
        assert p.data is array and p._ctx is None and p.requires_grad
        assert not np.array_equal(array, old)
        np.testing.assert_array_equal(p.grad, grad)  # the gradient is left alone


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_parameters_without_grad_are_skipped(name):
    model = _model_with_grads()
    model.bias.grad = None
    bias = model.bias.data.copy()
    opt = OPTIMIZERS[name](model.parameters())
    opt.step()
    np.testing.assert_array_equal(model.bias.data, bias)
    assert opt.state[1] == {}
    opt.zero_grad()
    assert model.weight.grad is None


def test_sgd_momentum_by_hand():
    w = nn.Parameter(np.array([1.0, -2.0]))
    opt = optim.SGD([w], lr=0.5, momentum=0.9, weight_decay=0.1)
    g = np.array([0.2, 0.4])
    w.grad = g.copy()
    opt.step()  # v = g + 0.1 w
    v = g + 0.1 * np.array([1.0, -2.0])
    want = np.array([1.0, -2.0]) - 0.5 * v
    np.testing.assert_allclose(w.data, want, rtol=1e-15)
    opt.step()  # v = 0.9 v + g + 0.1 w
    v = 0.9 * v + g + 0.1 * want
    np.testing.assert_allclose(w.data, want - 0.5 * v, rtol=1e-15)


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_by_hand(decoupled):
    start, g, lr, wd = np.array([1.0, -2.0]), np.array([0.2, -0.4]), 0.1, 0.5
    w = nn.Parameter(start.copy())
    opt = (optim.AdamW if decoupled else optim.Adam)([w], lr=lr, weight_decay=wd)
    want, m, v = start.copy(), 0.0, 0.0
    for t in (1, 2, 3):
        w.grad = g.copy()
        opt.step()
        if decoupled:
            want = want * (1 - lr * wd)
            grad = g
        else:
            grad = g + wd * want
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad ** 2
        want = want - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        np.testing.assert_allclose(w.data, want, rtol=1e-13)


def test_float32_parameters_stay_float32():
    model = _model_with_grads()
    for make in OPTIMIZERS.values():
        make(model.parameters()).step()
    assert all(p.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize("name", ["sgd_momentum", "adam", "adamw"])
def test_state_follows_the_weights_after_model_to_float64(name):
    model = _model_with_grads()
    opt = OPTIMIZERS[name](model.parameters())
    opt.step()
    model.to(np.float64)
    x = Tensor(np.random.default_rng(1).standard_normal((5, 4)), dtype=np.float64)
    ((model(x) - 1.0) ** 2).mean().backward()
    opt.step()
    states = [a for state in opt.state for a in state.values() if isinstance(a, np.ndarray)]
    assert states and all(a.dtype == np.float64 for a in states)
    assert all(p.dtype == np.float64 for p in model.parameters())


@pytest.mark.parametrize("make, message", [
    (lambda: optim.SGD([], lr=0.1), "SGD: got an empty parameter list"),
    (lambda: optim.Adam([nn.Parameter(np.zeros(2))], lr=-1), "learning rate must be >= 0, got -1"),
    (lambda: optim.Adam([nn.Parameter(np.zeros(2))], betas=(0.9, 1.0)),
     r"betas\[1\] must be in \[0, 1\), got 1.0"),
    (lambda: optim.NoamSchedule(optim.SGD([nn.Parameter(np.zeros(2))], lr=1), 8, 0),
     "warmup must be >= 1, got 0"),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_noam_schedule_values():
    opt = optim.Adam([nn.Parameter(np.zeros(2))])
    d_model, warmup = 512, 4000
    schedule = optim.NoamSchedule(opt, d_model, warmup, factor=2.0)

    def formula(step):
        return 2.0 * d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)

    assert opt.lr == formula(1)
    for step in range(2, 10_001):
        assert schedule.step() == opt.lr
        assert opt.lr == pytest.approx(formula(step), rel=1e-15)
    peak = 2.0 * (d_model * warmup) ** -0.5
    assert schedule.rate(warmup) == pytest.approx(peak, rel=1e-15)
    assert schedule.rate(warmup - 1) < peak and schedule.rate(warmup + 1) < peak


def test_clip_grad_norm():
    a, b, c = (nn.Parameter(np.zeros(s)) for s in (2, 3, 1))
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([0.0, 4.0, 0.0])
    total = optim.clip_grad_norm([a, b, c], max_norm=1.0)  # c has no grad: skipped
    assert total == 5.0 and c.grad is None
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(a.grad, [3.0 * scale, 0.0], rtol=1e-15)
    np.testing.assert_allclose(b.grad, [0.0, 4.0 * scale, 0.0], rtol=1e-15)
    small = a.grad.copy()
    assert optim.clip_grad_norm([a], max_norm=10.0) == pytest.approx(np.linalg.norm(small))
    np.testing.assert_array_equal(a.grad, small)  # under the limit: untouched


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_step_makes_no_weight_sized_array(name):
    """The update writes into its state and one shared scratch array: after the
    first step (which makes them), a step allocates nothing of a weight's size."""
    import tracemalloc
    weight = nn.Parameter(np.ones((100, 1000), dtype=np.float32))
    weight.grad = np.full(weight.shape, 0.5, dtype=np.float32)
    opt = OPTIMIZERS[name]([weight])
    opt.step()
    tracemalloc.start()
    try:
        opt.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < weight.data.nbytes / 10


def test_clip_grad_norm_of_one_tensor_matches_torch():
    torch = pytest.importorskip("torch")
    grad = np.random.default_rng(0).standard_normal((3, 4)) * 5
    w = nn.Parameter(np.zeros((3, 4)))
    w.grad = grad.copy()
    t = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    t.grad = torch.from_numpy(grad.copy())
    total = optim.clip_grad_norm(w, 1.5)
    want = torch.nn.utils.clip_grad_norm_(t, 1.5)
    assert total == pytest.approx(float(want), rel=1e-12)
    np.testing.assert_allclose(w.grad, t.grad.numpy(), rtol=1e-12)


# ----- many small parameters: one flat update ---------------------------------------
def _small_model_and_grads(steps, rng_seed=0):
    """A model of many small parameters (the flat update's case) and a
    gradient per parameter per step."""
    manual_seed(0)
    model = nn.TransformerEncoderLayer(8, 2, 16)
    rng = np.random.default_rng(rng_seed)
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in model.parameters()]
             for _ in range(steps)]
    return model, grads


def _run(name, flat, steps=4, missing=None, between=None):
    """Weights and states after `steps` steps, the update flat or one by one.
    `missing` = (step, index): that parameter has no gradient at that step;
    `between(step, opt)` runs before each step."""
    model, grads = _small_model_and_grads(steps)
    opt = OPTIMIZERS[name](model.parameters())
    assert (opt._flat is not None) is True  # many small parameters: the flat update is chosen
    if not flat:
        opt._flat = None
    for step, step_grads in enumerate(grads):
        for i, (p, g) in enumerate(zip(model.parameters(), step_grads)):
            p.grad = None if missing == (step, i) else g.astype(p.dtype)  # a copy
        if between is not None:
            between(step, opt)
        opt.step()
    return [p.data.copy() for p in model.parameters()], opt


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_the_flat_update_is_the_one_by_one_update(name):
    flat, flat_opt = _run(name, flat=True)
    one, one_opt = _run(name, flat=False)
    assert flat_opt._flat is not None  # it stayed flat all the way
    for a, b in zip(flat, one):
        np.testing.assert_array_equal(a, b)  # the same arithmetic, number for number
    for s, t in zip(flat_opt.state, one_opt.state):  # each parameter's state reads the same
        assert s.keys() == t.keys()
        for key in s:
            np.testing.assert_array_equal(s[key], t[key])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_missing_gradient_ends_the_flat_update_and_the_state_carries_on(name):
    flat, flat_opt = _run(name, flat=True, missing=(2, 1))
    one, one_opt = _run(name, flat=False, missing=(2, 1))
    assert flat_opt._flat is None  # one by one from the missing gradient on
    for a, b in zip(flat, one):
        np.testing.assert_array_equal(a, b)
    if "t" in one_opt.state[0]:  # Adam's step counts: the skipped parameter is one behind
        assert [s["t"] for s in flat_opt.state] == [s["t"] for s in one_opt.state]
        assert flat_opt.state[1]["t"] == flat_opt.state[0]["t"] - 1


def test_a_state_replaced_by_the_user_is_used():
    def reset_m(step, opt):
        if step == 2:
            opt.state[0]["m"] = np.zeros_like(opt.state[0]["m"])  # a new array, not the view

    flat, flat_opt = _run("adam", flat=True, between=reset_m)
    one, _ = _run("adam", flat=False, between=reset_m)
    assert flat_opt._flat is None
    for a, b in zip(flat, one):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("change", ["cast", "step count", "shared weights"])
def test_a_cast_a_step_count_or_shared_weights_end_the_flat_update(change):
    def between(step, opt):
        if step == 2 and change == "shared weights":  # two weights in one array: both updates land
            a, b = opt.params[0], opt.params[1]
            b.data = a.data.reshape(-1)[:b.size].reshape(b.shape)
        if step == 2 and change == "cast":
            for p in opt.params:
                grad = p.grad
                p.data = p.data.astype(np.float64)
                p.grad = grad.astype(np.float64)
        if step == 2 and change == "step count":
            opt.state[1]["t"] = 10  # that parameter's bias correction changes

    flat, flat_opt = _run("adam", flat=True, between=between)
    one, _ = _run("adam", flat=False, between=between)
    assert flat_opt._flat is None
    for a, b in zip(flat, one):
        np.testing.assert_array_equal(a, b)


def test_large_parameters_are_updated_one_by_one():
    """The flat copies pay only for small parameters; a weight of a
    million numbers is updated where it is."""
    assert optim.Adam(nn.Linear(1000, 1000).parameters())._flat is None
    assert optim.Adam([nn.Parameter(np.zeros(3))])._flat is None  # one parameter: nothing to join
