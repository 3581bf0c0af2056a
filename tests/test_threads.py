"""Grad mode and the running module are per thread, as in PyTorch; training
in two threads at once keeps each one's backward and optimizer state apart.

Each test interleaves two threads step by step with threading.Events (never
sleeps), in the order that broke a process-wide state: one thread's no_grad
block or module call opening and closing inside the other's.
"""
import threading

import numpy as np

from tinygrad_enc import Tensor, is_grad_enabled, nn, no_grad
from tinygrad_enc.tensor import current_scope

TIMEOUT = 10  # seconds; only reached if a thread is stuck


def run_threads(*targets):
    """Run each target in its own thread; re-raise the first failure here."""
    errors = []

    def guarded(target):
        try:
            target()
        except BaseException as e:  # noqa: BLE001  (re-raised in the main thread)
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive(), "a thread did not finish"
    if errors:
        raise errors[0]


def wait(event):
    assert event.wait(TIMEOUT), "the other thread never got there"


def test_interleaved_no_grad_blocks_leave_grad_on_everywhere():
    """A enters, B enters, A leaves, B leaves: a process-wide flag would be
    left off (B saved A's "off" and restores it)."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with no_grad():
            a_in.set()
            wait(b_in)
        seen["a after"] = is_grad_enabled()
        a_out.set()

    def b():
        wait(a_in)
        with no_grad():
            b_in.set()
            wait(a_out)
        seen["b after"] = is_grad_enabled()
        w = Tensor(np.ones(2), requires_grad=True)
        seen["b records"] = (w * 2).requires_grad

    run_threads(a, b)
    assert seen == {"a after": True, "b after": True, "b records": True}
    assert is_grad_enabled()
    assert (Tensor(np.ones(2), requires_grad=True) * 2).requires_grad


def test_no_grad_in_one_thread_does_not_turn_off_another():
    inside, checked = threading.Event(), threading.Event()
    seen = {}

    def a():
        with no_grad():
            inside.set()
            wait(checked)
            seen["a inside"] = is_grad_enabled()

    def b():
        wait(inside)
        w = Tensor(np.ones(2), requires_grad=True)
        seen["b enabled"] = is_grad_enabled()
        seen["b records"] = (w * 3).requires_grad
        checked.set()

    run_threads(a, b)
    assert seen == {"a inside": False, "b enabled": True, "b records": True}


class Probe(nn.Module):
    """A module whose forward stops in the middle, so that another thread's
    module call can begin and end while it is running."""

    def __init__(self, entered, resume):
        super().__init__()
        self.w = nn.Parameter(np.ones(2))
        self.entered, self.resume = entered, resume

    def forward(self, x):
        self.entered.set()
        wait(self.resume)
        return x * self.w  # made after the other thread's call began (and maybe ended)


class ProbeA(Probe):
    pass


class ProbeB(Probe):
    pass


def test_module_calls_in_two_threads_keep_their_own_scope():
    """A enters its module, B enters another, A leaves, B makes an op and
    leaves: with one process-wide scope, B's op would land outside B's module
    (A's exit reset the scope) and A's scope would be left current."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    model_a, model_b = ProbeA(a_in, b_in), ProbeB(b_in, a_out)
    out, after = {}, {}

    def a():
        out["a"] = model_a(Tensor(np.ones(2)))  # waits inside until B is inside
        after["a"] = current_scope()
        a_out.set()

    def b():
        wait(a_in)
        out["b"] = model_b(Tensor(np.ones(2)))
        after["b"] = current_scope()
        z = Tensor(np.ones(2), requires_grad=True) * 2  # outside every module
        out["b outside"] = z

    run_threads(a, b)
    assert out["a"]._ctx.scope.kind == "ProbeA"
    assert out["b"]._ctx.scope.kind == "ProbeB"
    assert out["b"]._ctx.scope.parent is None  # not nested in A's call
    assert out["b outside"]._ctx.scope is None  # no stale scope left behind
    assert after == {"a": None, "b": None}
    assert current_scope() is None
    made_here = Tensor(np.ones(2), requires_grad=True) * 2
    assert made_here._ctx.scope is None


def test_no_grad_on_a_generator_function_covers_its_body_only():
    w = Tensor(np.ones(2), requires_grad=True)

    @no_grad
    def batches(n):
        for i in range(n):
            yield w * i, is_grad_enabled()

    seen = []
    for product, enabled in batches(3):
        seen.append((product.requires_grad, enabled, is_grad_enabled()))
        assert (w * 2).requires_grad  # the caller's loop body records
    assert seen == [(False, False, True)] * 3
    assert is_grad_enabled()


def test_no_grad_generator_gets_sent_values_and_returns():
    @no_grad()
    def echo():
        total = 0
        while True:
            value = yield is_grad_enabled()
            if value is None:
                return total
            total += value

    gen = echo()
    assert next(gen) is False
    assert gen.send(2) is False
    assert is_grad_enabled()
    try:
        gen.send(None)
    except StopIteration as stop:
        assert stop.value == 2
    else:
        raise AssertionError("the generator should have returned")
    assert is_grad_enabled()


def _train(seed, steps, before_step=None):
    """A small encoder trained a few steps with Adam (the flat update) and
    backward's reused arrays; its weights at the end."""
    import tinygrad_enc.functional as F
    from tinygrad_enc import optim
    rng = np.random.default_rng(seed)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    for p in layer.parameters():  # the same start in every thread, whatever the global seed
        p.data[...] = rng.standard_normal(p.shape) * 0.3
    opt = optim.Adam(layer.parameters(), lr=0.01)
    assert opt._flat is not None
    x = Tensor(rng.standard_normal((2, 5, 8)), dtype=np.float32)
    target = rng.integers(0, 8, 10)
    for step in range(steps):
        if before_step is not None:
            before_step(step)
        loss = F.cross_entropy(layer(x).reshape(10, 8), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.data.copy() for p in layer.parameters()]


def test_two_threads_training_at_once_get_what_each_gets_alone():
    """Each thread's backward and optimizer step keep their state to
    themselves: two models trained at once, each step of one starting while
    the other's runs, end with exactly the weights each gets alone."""
    alone = {seed: _train(seed, 4) for seed in (1, 2)}
    turns = [threading.Event() for _ in range(9)]  # A's step 0, B's step 0, A's step 1, ...
    turns[0].set()
    got = {}

    def runner(seed, offset):
        def before_step(step):  # wait for this thread's turn, then let the other one start
            wait(turns[2 * step + offset])
            turns[2 * step + offset + 1].set()
        return lambda: got.__setitem__(seed, _train(seed, 4, before_step))

    run_threads(runner(1, 0), runner(2, 1))
    for seed in (1, 2):
        for a, b in zip(got[seed], alone[seed]):
            np.testing.assert_array_equal(a, b)
