"""The losses and one_hot against PyTorch (values and gradients, float32 and
float64, every reduction) and gradcheck; cross_entropy also against its
definition, nll_loss of log_softmax."""
import numpy as np
import pytest

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor

from conftest import check_gradient, make_array, torch_compare as compare

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TARGET_N = np.array([0, 3, 1, 3, 2])
TARGET_BT = np.array([[1, 0, 2], [2, 2, 0]])
PROBS_N = np.abs(make_array((5, 4), seed=7))
PROBS_N /= PROBS_N.sum(-1, keepdims=True)
PROBS_BTC = F.softmax(Tensor(make_array((2, 3, 4), seed=8), dtype=np.float64)).data
REDUCTIONS = ["mean", "sum", "none"]


def _classes_second(x):
    """Our (B, T, C) as torch's (B, C, T)."""
    return x.permute(0, 2, 1) if x.ndim == 3 else x


# name: (ours(logits, reduction), torch's(logits, reduction), logits shape)
LOSSES = {
    "nll_NC": (lambda x, r: F.nll_loss(F.log_softmax(x), TARGET_N, reduction=r),
               lambda x, r: TF.nll_loss(x.log_softmax(-1), torch.tensor(TARGET_N), reduction=r),
               (5, 4)),
    "nll_BTC": (lambda x, r: F.nll_loss(x, TARGET_BT, reduction=r),
                lambda x, r: TF.nll_loss(_classes_second(x), torch.tensor(TARGET_BT),
                                         reduction=r), (2, 3, 4)),
    "nll_ignore": (lambda x, r: F.nll_loss(x, TARGET_N, ignore_index=3, reduction=r),
                   lambda x, r: TF.nll_loss(x, torch.tensor(TARGET_N), ignore_index=3,
                                            reduction=r), (5, 4)),
    "ce_NC": (lambda x, r: F.cross_entropy(x, TARGET_N, reduction=r),
              lambda x, r: TF.cross_entropy(x, torch.tensor(TARGET_N), reduction=r), (5, 4)),
    "ce_BTC_smoothing_ignore": (
        lambda x, r: F.cross_entropy(x, TARGET_BT, ignore_index=0, label_smoothing=0.2,
                                     reduction=r),
        lambda x, r: TF.cross_entropy(_classes_second(x), torch.tensor(TARGET_BT), ignore_index=0,
                                      label_smoothing=0.2, reduction=r), (2, 3, 4)),
    "ce_probabilities": (lambda x, r: F.cross_entropy(x, PROBS_N, reduction=r),
                         lambda x, r: TF.cross_entropy(x, torch.tensor(PROBS_N, dtype=x.dtype),
                                                       reduction=r), (5, 4)),
    "ce_probabilities_smoothing": (
        lambda x, r: F.cross_entropy(x, PROBS_N, label_smoothing=0.3, reduction=r),
        lambda x, r: TF.cross_entropy(x, torch.tensor(PROBS_N, dtype=x.dtype),
                                      label_smoothing=0.3, reduction=r), (5, 4)),
    "ce_probabilities_BTC": (
        lambda x, r: F.cross_entropy(x, PROBS_BTC, reduction=r),
        lambda x, r: TF.cross_entropy(_classes_second(x),
                                      _classes_second(torch.tensor(PROBS_BTC, dtype=x.dtype)),
                                      reduction=r),
        (2, 3, 4)),
    "mse": (lambda x, r: F.mse_loss(x, PROBS_N, reduction=r),
            lambda x, r: TF.mse_loss(x, torch.tensor(PROBS_N, dtype=x.dtype), reduction=r),
            (5, 4)),
    "bce_logits": (lambda x, r: F.binary_cross_entropy_with_logits(x, PROBS_N, reduction=r),
                   lambda x, r: TF.binary_cross_entropy_with_logits(
                       x, torch.tensor(PROBS_N, dtype=x.dtype), reduction=r), (5, 4)),
    "bce_logits_weights": (
        lambda x, r: F.binary_cross_entropy_with_logits(
            x, PROBS_N > 0.3, weight=Tensor(np.arange(4.0), dtype=x.dtype),
            pos_weight=Tensor([1.0, 2.0, 0.5, 3.0], dtype=x.dtype), reduction=r),
        lambda x, r: TF.binary_cross_entropy_with_logits(
            x, torch.tensor(PROBS_N > 0.3, dtype=x.dtype), weight=torch.arange(4.0, dtype=x.dtype),
            pos_weight=torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=x.dtype), reduction=r), (5, 4)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_matches_torch(name, reduction, dtype):
    ours, theirs, shape = LOSSES[name]
    compare(lambda x: ours(x, reduction), lambda x: theirs(x, reduction),
            [make_array(shape, seed=3) * 2], dtype)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_gradcheck(name, reduction):
    ours, _, shape = LOSSES[name]
    check_gradient(lambda x: ours(x, reduction), [make_array(shape, seed=3) * 2])


def test_cross_entropy_is_nll_of_log_softmax_and_probability_targets_get_gradients():
    x = Tensor(make_array((2, 3, 4)), requires_grad=True, dtype=np.float64)
    np.testing.assert_allclose(F.cross_entropy(x, TARGET_BT).data,
                               F.nll_loss(F.log_softmax(x), TARGET_BT).data, rtol=1e-14)
    one_hot = F.one_hot(Tensor(TARGET_BT), 4).double()
    np.testing.assert_allclose(F.cross_entropy(x, one_hot).data,
                               F.cross_entropy(x, TARGET_BT).data, rtol=1e-14)
    check_gradient(lambda x, q: F.cross_entropy(x, q), [x.data, np.full((2, 3, 4), 0.25)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_with_logits_is_stable_for_huge_logits(dtype):
    logits = np.array([-1e4, -50.0, 0.0, 50.0, 1e4])
    target = np.array([1.0, 0.0, 0.5, 1.0, 0.0])
    compare(lambda x: F.binary_cross_entropy_with_logits(x, target, reduction="none"),
            lambda x: TF.binary_cross_entropy_with_logits(x, torch.tensor(target, dtype=x.dtype),
                                                          reduction="none"), [logits], dtype)


def test_nll_loss_ignores_positions_and_gives_zeros_there():
    x = Tensor(make_array((5, 4)), requires_grad=True)
    losses = F.nll_loss(x, TARGET_N, ignore_index=3, reduction="none")
    np.testing.assert_array_equal(losses.data[[1, 3]], 0.0)
    F.nll_loss(x, TARGET_N, ignore_index=3).backward()
    np.testing.assert_array_equal(x.grad[[1, 3]], 0.0)
    np.testing.assert_allclose(x.grad[0, 0], -1 / 3)


def test_cross_entropy_with_minus_inf_logits_stays_finite_where_target_is_finite():
    logits = Tensor(np.array([[0.0, -np.inf, 1.0]]), requires_grad=True, dtype=np.float64)
    loss = F.cross_entropy(logits, [2])
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(logits.grad))


@pytest.mark.parametrize("ids,classes", [([0, 2, 1], 3), ([[1, 0], [3, 3]], -1), ([], 4),
                                         (2, 5), ([1, 1], 2)])
def test_one_hot_matches_torch(ids, classes):
    ours = F.one_hot(Tensor(np.array(ids, dtype=np.int64)), classes)
    theirs = TF.one_hot(torch.tensor(ids, dtype=torch.int64), classes)
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours.data, theirs.numpy())
