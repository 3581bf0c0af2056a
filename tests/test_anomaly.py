"""detect_anomaly: the first NaN or unexpected infinity raises, naming the op,
the module path, the input shapes and the user's line; off, nothing changes."""
import threading

import numpy as np
import pytest

import tinygrad_enc
import tinygrad_enc.functional as F
from tinygrad_enc import AnomalyError, Tensor, detect_anomaly, nn
from tinygrad_enc.tensor import _state


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(3, 3)
        self.block = Block()

    def forward(self, x):
        return self.block(self.inner(x))


class Block(nn.Module):
    def forward(self, x):
        return (x - 100.0).log()  # the line a learner should be sent to


def test_exported_from_the_package():
    assert tinygrad_enc.detect_anomaly is detect_anomaly
    assert issubclass(AnomalyError, RuntimeError)


def test_forward_nan_names_op_module_shapes_and_user_line():
    net = Net()
    with pytest.raises(AnomalyError) as info:
        with detect_anomaly():
            net(Tensor(np.ones((2, 3))))
    message = str(info.value)
    assert "forward of log" in message and "NaN" in message
    assert "module:     'block' (Block)" in message
    assert "inputs:     (2, 3)\n" in message
    assert "test_anomaly.py" in message and "(x - 100.0).log()" in message


def test_forward_inf_from_finite_inputs():
    with pytest.raises(AnomalyError, match=r"forward of log .*produced inf"):
        with detect_anomaly():
            Tensor([0.0, 1.0]).log()


def test_backward_nan_names_the_op_and_the_line_that_created_it():
    x = Tensor(np.array([0.0, 4.0]), requires_grad=True)
    with pytest.raises(AnomalyError) as info:
        with detect_anomaly():
            y = x.sqrt()  # d sqrt(x)/dx at 0 is inf, and 0 * inf is NaN below
            (y * 0.0).sum().backward()
    message = str(info.value)
    assert "backward of sqrt" in message and "gradient of its input 0 (2,)" in message
    assert "y = x.sqrt()" in message


def test_nan_already_in_the_data_is_said_to_come_from_the_input():
    with pytest.raises(AnomalyError, match=r"forward of mul .*input 0 already held NaN"):
        with detect_anomaly():
            Tensor([np.nan, 1.0]) * 2.0


def test_attention_masks_with_minus_inf_are_not_anomalies():
    rng = np.random.default_rng(0)
    q = Tensor(rng.standard_normal((1, 3, 4)), requires_grad=True)
    mask = nn.causal_mask(3)
    with detect_anomaly():
        out, weights = F.scaled_dot_product_attention(q, q, q, mask=mask)
        out.sum().backward()
    assert np.isfinite(q.grad).all()


def test_a_clean_training_step_passes_and_gives_the_same_numbers():
    def step(anomaly):
        tinygrad_enc.manual_seed(0)
        model = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
        x = Tensor(np.random.default_rng(1).standard_normal((2, 5, 8)))
        if anomaly:
            with detect_anomaly():
                loss = model(x).sum()
                loss.backward()
        else:
            loss = model(x).sum()
            loss.backward()
        return loss.item(), model.self_attn.q_proj.weight.grad.copy()

    (a, ga), (b, gb) = step(True), step(False)
    assert a == b
    np.testing.assert_array_equal(ga, gb)


def test_off_by_default_and_removed_after_the_block():
    assert _state.observers == ()
    with detect_anomaly():
        assert len(_state.observers) == 1
    assert _state.observers == ()
    assert np.isnan(Tensor([-1.0]).log().item())  # no error outside the block
    with pytest.raises(AnomalyError):
        with detect_anomaly():
            Tensor([-1.0]).log()
    assert _state.observers == ()  # removed on the way out of an error too


def test_per_thread():
    inside, done = threading.Event(), threading.Event()
    seen = {}

    def other():
        assert inside.wait(10)
        seen["nan"] = np.isnan(Tensor([-1.0]).log().item())  # not watched in this thread
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    with detect_anomaly():
        inside.set()
        assert done.wait(10)
    thread.join(10)
    assert seen == {"nan": True}
