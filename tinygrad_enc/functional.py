"""The functions a Transformer is made of, over `Tensor` methods.

Most are a few lines of primitive ops, so their gradient is what the
primitives' backward passes compose. Five are not: `softmax`, `log_softmax`,
`layer_norm`, `linear` and `cross_entropy` call fused ops from ops.py, whose
backward is written by hand (gradcheck and PyTorch check them, and each is
checked against a version composed from primitives: `linear_composed` and
`cross_entropy_composed` here, layer norm in test_engine_fused.py). Same
function, fewer passes over memory. Shapes follow PyTorch's functional API.
"""
import math

import numpy as np

from . import names, ops
from . import random as _random
from .checks import (broadcast_shape, check_mask, flag, integer, normalize_axes, number,
                     shape_arg, shape_str, torch_names)
from .ops import CrossEntropy, LayerNorm, Linear
from .tensor import Tensor, apply, array_of, release


def _tensor(op, x, name="x"):
    """The functions here take Tensors, as PyTorch's do (an ndarray or a list
    would otherwise fail deep inside with numpy's words)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__} (wrap it: "
                        "Tensor(x))")
    return x


@torch_names(dim="axis")
def softmax(x, axis=-1):
    """exp(x_i) / sum_j exp(x_j) along `axis`: turns scores into weights that
    are positive and sum to 1. Stable for any finite logits; a row that is all
    -inf (everything masked) becomes all zeros, not NaN."""
    return _tensor("softmax", x).softmax(axis)


@torch_names(dim="axis")
def log_softmax(x, axis=-1):
    """log(softmax(x)), computed as x - logsumexp(x) so it never overflows."""
    return _tensor("log_softmax", x).log_softmax(axis)


def relu(x):
    return _tensor("relu", x).relu()


def gelu(x, approximate="none"):
    """x * Phi(x): exact (erf) by default as in PyTorch, or approximate="tanh"."""
    return _tensor("gelu", x).gelu(approximate)


def linear(x, weight, bias=None):
    """y = x W^T + b on the last axis: (..., in) -> (..., out), weight (out, in),
    bias (out,), as torch.nn.functional.linear. One fused op (ops.Linear):
    forward and backward are 2-D matrix products over all the rows at once."""
    return _linear("linear", x, weight, bias, relu=False)


def linear_relu(x, weight, bias=None):
    """relu(linear(x, weight, bias)) = max(0, x W^T + b) in one op: the
    feed-forward network's first layer. Same function as the two ops, with
    one array fewer kept and one pass fewer over it."""
    return _linear("linear_relu", x, weight, bias, relu=True)


def _linear(name, x, weight, bias, relu):
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"{name}: input {shape_str(x.shape)} and weight "
                         f"{shape_str(weight.shape)}: need input (..., in) and weight (out, in)")
    if bias is None:
        return apply(Linear, x, weight, relu=relu)
    if bias.shape != weight.shape[:1]:
        raise ValueError(f"{name}: bias {shape_str(bias.shape)} must be (out,) = "
                         f"{shape_str(weight.shape[:1])}")
    return apply(Linear, x, weight, bias, relu=relu)


def linear_composed(x, weight, bias=None):
    """The same function as `linear`, composed from primitives (permute,
    matmul, add): what the fused op replaces, kept to check it against."""
    y = x @ weight.T
    return y if bias is None else y + bias


def cross_entropy(logits, target, ignore_index=None, label_smoothing=0.0, reduction="mean"):
    """cross_entropy(logits, target) = nll_loss(log_softmax(logits), target): the
    mean of -sum_c q_c log p_c over the positions whose target is not
    `ignore_index`, p = softmax(logits) and q the target distribution.

    target: integer class indices of shape (N,) or (B, T), q one-hot at the
    target (with label smoothing (1 - eps) one-hot + eps / C); or class
    probabilities of the logits' shape, q = target (smoothed the same way;
    a target tensor that requires grad gets its gradient).
    logits: (N, C) or (B, T, C). The classes are last, as the model's output
    comes (B, T, vocab); PyTorch's cross_entropy wants them second, (B, C, T),
    so a PyTorch call needs logits.permute(0, 2, 1). reduction "mean" (over
    the positions kept), "sum" or "none" (the loss per position, 0 where
    ignored). Its gradient with respect to the logits is (p - q) / (number of
    positions). If every target is ignored the mean is 0 (PyTorch gives NaN).
    """
    _check_reduction("cross_entropy", reduction)
    logits = _tensor("cross_entropy", logits, "logits")
    label_smoothing = number("cross_entropy", "label_smoothing", label_smoothing, 0.0, 1.0)
    if logits.ndim not in (2, 3):
        raise ValueError(f"cross_entropy: logits must be (N, C) or (B, T, C), got "
                         f"{shape_str(logits.shape)}")
    if _probability_target(target, logits.shape):
        if ignore_index is not None:
            raise ValueError("cross_entropy: ignore_index applies to class indices, not to "
                             "class-probability targets")
        log_p = log_softmax(logits, axis=-1)
        q = target if isinstance(target, Tensor) else Tensor(target, dtype=logits.dtype)
        if label_smoothing:
            q = q * (1.0 - label_smoothing) + label_smoothing / logits.shape[-1]
        return _reduce(-(log_p * q).sum(-1), reduction, log_p.size // log_p.shape[-1])
    target, kept = _class_targets("cross_entropy", logits, target, ignore_index)
    if reduction == "mean":  # the training loss: one fused op (ops.CrossEntropy)
        classes = logits.shape[-1]
        return apply(CrossEntropy, logits.reshape(-1, classes), target=target.reshape(-1),
                     kept=kept.reshape(-1), smoothing=label_smoothing)
    return _reduce(_class_losses(logits, target, kept, label_smoothing), reduction,
                   int(kept.sum()))


def cross_entropy_composed(logits, target, ignore_index=None, label_smoothing=0.0):
    """cross_entropy's mean from primitives: log_softmax, the loss picked at
    each target, the label-smoothing spread, a mean. The same function as the
    fused ops.CrossEntropy, with more passes over the logits' size; kept to
    check the fused op against (and used for reduction "sum" and "none")."""
    target, kept = _class_targets("cross_entropy", logits, target, ignore_index)
    return _reduce(_class_losses(logits, target, kept, label_smoothing), "mean",
                   int(kept.sum()))


def _class_losses(logits, target, kept, label_smoothing):
    """-sum_c q_c log p_c per position for class-index targets (0 where not kept)."""
    log_p = log_softmax(logits, axis=-1)
    losses = _picked_losses(log_p, target, kept)
    if label_smoothing:  # the eps / C part of q: the mean of -log p over the classes
        spread = (-log_p.mean(-1)).masked_fill(~kept, 0.0)
        losses = losses * (1.0 - label_smoothing) + spread * label_smoothing
    return losses


def nll_loss(log_probs, target, ignore_index=None, reduction="mean"):
    """nll_loss(log_p, target) = mean(-log_p[n, target[n]]) over the positions
    whose target is not `ignore_index`: cross_entropy for inputs that are
    already log-probabilities (log_softmax's output). Shapes, classes last, and
    reductions as cross_entropy."""
    _check_reduction("nll_loss", reduction)
    log_probs = _tensor("nll_loss", log_probs, "log_probs")
    if log_probs.ndim not in (2, 3):
        raise ValueError(f"nll_loss: log_probs must be (N, C) or (B, T, C), got "
                         f"{shape_str(log_probs.shape)}")
    target, kept = _class_targets("nll_loss", log_probs, target, ignore_index)
    return _reduce(_picked_losses(log_probs, target, kept), reduction, int(kept.sum()))


def _check_reduction(op, reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(losses, reduction, count):
    """The losses per position, their sum, or their mean over `count` positions
    (0 when there are none)."""
    if reduction == "none":
        return losses
    total = losses.sum()
    return total if reduction == "sum" else total * (1.0 / max(count, 1))


def _probability_target(target, shape):
    array = array_of(target)
    return array.dtype.kind == "f" and array.shape == tuple(shape)


def _class_targets(op, scores, target, ignore_index):
    """Integer class indices of the shape scores (..., C) has without C, as an
    int64 array, and the boolean mask of the positions that count."""
    if ignore_index is not None:  # "pad", 1.5 or True would silently ignore nothing
        ignore_index = integer(op, "ignore_index", ignore_index)
    target = array_of(target)
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"{op}: target must hold integer class indices (or, for "
                        f"cross_entropy, probabilities of the logits' shape), got dtype "
                        f"{target.dtype} and shape {shape_str(target.shape)}")
    if target.shape != scores.shape[:-1]:
        raise ValueError(f"{op}: {'logits' if op == 'cross_entropy' else 'log_probs'} "
                         f"{shape_str(scores.shape)} need target of shape "
                         f"{shape_str(scores.shape[:-1])}, got {shape_str(target.shape)}")
    classes = scores.shape[-1]
    kept = np.ones(target.shape, dtype=bool) if ignore_index is None else target != ignore_index
    bad = kept & ((target < 0) | (target >= classes))
    if bad.any():
        raise ValueError(f"{op}: target {target[bad][0]} is not a class index in "
                         f"[0, {classes})")
    return target.astype(np.int64, copy=False), kept


def _picked_losses(log_p, target, kept):
    """-log_p at each position's target class, 0 where the position is not kept:
    a where over a one-hot mask, then a sum over the classes (as fast as a
    product with the one-hot targets, and no NaN from 0 * -inf)."""
    chosen = (target[..., None] == np.arange(log_p.shape[-1])) & kept[..., None]  # (..., C)
    return -Tensor.where(chosen, log_p, 0.0).sum(-1)


def mse_loss(input, target, reduction="mean"):  # noqa: A002  (PyTorch's name)
    """mse_loss(x, y) = mean((x - y) ** 2). x and y must have one shape (PyTorch
    broadcasts them with a warning: a (N, 1) against a (N,) would silently
    compare every pair)."""
    _check_reduction("mse_loss", reduction)
    input = _tensor("mse_loss", input, "input")
    target = target if isinstance(target, Tensor) else Tensor(array_of(target), dtype=input.dtype)
    if target.shape != input.shape:
        raise ValueError(f"mse_loss: input {shape_str(input.shape)} and target "
                         f"{shape_str(target.shape)} must have the same shape")
    losses = (input - target) ** 2
    return _reduce(losses, reduction, losses.size)


def binary_cross_entropy_with_logits(logits, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """bce_with_logits(x, y) = mean((1 - y) x + (1 + (pos_weight - 1) y) softplus(-x)),
    which is -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] without taking a
    log of a sigmoid that rounds to 0 or 1: finite for logits of +-1e4. Its
    gradient is sigmoid(x) - y (at pos_weight 1). `weight` scales each element's
    loss; target has the logits' shape (0/1 labels or probabilities)."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    logits = _tensor("binary_cross_entropy_with_logits", logits, "logits")
    if not isinstance(target, Tensor):
        target = Tensor(array_of(target), dtype=logits.dtype)
    if target.shape != logits.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target {shape_str(target.shape)} "
                         f"must have the logits' shape {shape_str(logits.shape)}")
    target = target.to(logits.dtype) if target.dtype.kind != "f" else target
    push_down = softplus(-logits)  # -log sigmoid(x)
    if pos_weight is not None:
        push_down = push_down * (target * (pos_weight - 1) + 1)
    losses = (1 - target) * logits + push_down
    if weight is not None:
        losses = losses * weight
    return _reduce(losses, reduction, losses.size)


def one_hot(ids, num_classes=-1):
    """An int64 tensor of shape ids.shape + (num_classes,), 1 at each id, 0
    elsewhere (num_classes=-1: one more than the largest id), as PyTorch."""
    ids = array_of(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"one_hot: ids must be integers, got dtype {ids.dtype}")
    num_classes = integer("one_hot", "num_classes", num_classes, minimum=-1)
    if num_classes == -1:
        if ids.size == 0:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor; pass it")
        num_classes = int(ids.max()) + 1
    if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
        raise ValueError(f"one_hot: ids must be in [0, {num_classes}), got values from "
                         f"{ids.min()} to {ids.max()}")
    return Tensor._wrap((ids[..., None] == np.arange(num_classes)).astype(np.int64))


def silu(x):
    return x.silu()


def softplus(x, beta=1.0, threshold=20.0):
    return x.softplus(beta, threshold)


def leaky_relu(x, negative_slope=0.01):
    return x.leaky_relu(negative_slope)


def elu(x, alpha=1.0):
    return x.elu(alpha)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize each token's features to mean 0 and variance 1, then scale by
    `weight` and shift by `bias`: (x - mean) / sqrt(var + eps) * w + b, over
    the last len(normalized_shape) axes. The variance is the biased one
    (divide by n), as in the paper and in PyTorch's LayerNorm."""
    x = _tensor("layer_norm", x)
    shape = shape_arg("layer_norm", (normalized_shape,) if not isinstance(
        normalized_shape, (tuple, list)) else tuple(normalized_shape))
    eps = number("layer_norm", "eps", eps, low=0.0)
    if x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: input {shape_str(x.shape)} does not end in the "
                         f"normalized shape {shape_str(shape)}")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and (not isinstance(p, Tensor) or p.shape != shape):
            raise ValueError(f"layer_norm: {name} must be a Tensor of the normalized shape "
                             f"{shape_str(shape)}, got "
                             + (shape_str(p.shape) if isinstance(p, Tensor) else type(p).__name__))
    if weight is not None and bias is not None:  # nn.LayerNorm's case: all in one op
        return apply(LayerNorm, x, weight, bias, axes=axes, eps=eps)
    out = apply(LayerNorm, x, axes=axes, eps=eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def dropout(x, p=0.5, training=True):
    """dropout(x, p) = x * keep / (1 - p), keep 0 with probability p, else 1:
    zero each element with probability p and scale the survivors by
    1 / (1 - p) ("inverted" dropout), so the expected value is unchanged and
    evaluation needs no rescaling. Identity when not training or p == 0."""
    x = _tensor("dropout", x)
    p = number("dropout", "p (a probability)", p, 0.0, 1.0)
    if not flag("dropout", "training", training) or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    scale = (_random.generator().random(x.shape) >= p).astype(x.dtype)
    scale *= 1.0 / (1.0 - p)  # in place: one array, already in x's dtype
    mask = Tensor._wrap(scale)
    mask.name = names.dropout_mask(p)
    return x * mask


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0):
    """scaled_dot_product_attention(q, k, v) = softmax(q k^T / sqrt(d_k)) v: attention, Z.

    q: (..., T_q, d_k), k: (..., T_k, d_k), v: (..., T_k, d_v). The score of
    query i for key j is q_i . k_j / sqrt(d_k) (dividing keeps the scores'
    spread independent of d_k, so softmax does not saturate); softmax over j
    turns a row of scores into weights alpha_ij; z_i = sum_j alpha_ij v_j.
    `mask` is boolean, True = "may not attend", broadcasting to
    (..., T_q, T_k): the convention of torch.nn.MultiheadAttention's masks,
    and the OPPOSITE of torch.nn.functional.scaled_dot_product_attention,
    whose boolean attn_mask means True = attend (pass it ~mask). A query
    whose keys are all masked gets zero weights and a zero output, never NaN.
    `dropout_p` drops attention weights (as PyTorch, whenever it is > 0).
    Returns (Z, weights), weights before dropout. A length-0 sequence gives
    the empty result, as in PyTorch.
    """
    q, k, v = (_tensor("scaled_dot_product_attention", t, n) for t, n in ((q, "q"), (k, "k"),
                                                                           (v, "v")))
    dropout_p = number("scaled_dot_product_attention", "dropout_p", dropout_p, 0.0, 1.0)
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2 or q.shape[-1] != k.shape[-1] \
            or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: q {shape_str(q.shape)}, k "
                         f"{shape_str(k.shape)}, v {shape_str(v.shape)}: need q (..., T_q, d_k), "
                         "k (..., T_k, d_k), v (..., T_k, d_v)")
    if mask is not None:
        op = "scaled_dot_product_attention"
        scores_shape = broadcast_shape(op, q.shape[:-2], k.shape[:-2]) + (q.shape[-2], k.shape[-2])
        mask = check_mask(op, array_of(mask), scores_shape,
                          target="the scores' shape (..., T_q, T_k)")
    return _attention(q, k, v, mask, dropout_p)


_SCORES_RELEASED = ("attention keeps the weights softmax made of the scores, not the scores "
                    "(no backward reads them); MultiHeadAttention.attn_weights holds the weights")


def _attention(q, k, v, mask, dropout_p):
    """scaled_dot_product_attention on arguments its caller has checked (q, k
    and v fit, mask is None or a boolean ndarray that broadcasts to the
    scores), so that MultiHeadAttention's masks are checked once, where the
    learner passed them."""
    # Q K^T / sqrt(d_k) in one op, the product scaled in place: (..., T_q, T_k).
    # d_k = 0: every score is an empty sum, 0, whatever the scale (PyTorch's uniform weights too)
    d_k = q.shape[-1]
    scores = apply(ops.MatMul, q, k.transpose(-2, -1), scale=1.0 / math.sqrt(d_k) if d_k else 1.0)
    scores.name = names.SCORES
    # no backward reads the scores' (T_q, T_k) numbers per head, so they go
    # once used: masked_fill's backward reads only the mask, softmax's its
    # output, which it writes over the scores' array
    if mask is not None:
        unmasked = scores
        scores = apply(ops.MaskedFill, scores, mask=mask, value=-np.inf)
        release(unmasked, _SCORES_RELEASED)
    weights = apply(ops.Softmax, scores, axis=-1, overwrite=True)
    release(scores, _SCORES_RELEASED)
    weights.name = names.WEIGHTS
    attended = dropout(weights, dropout_p, training=dropout_p > 0)
    if attended.ndim == 4:  # (B, H, T_q, d_k) held as (B, T_q, H, d_k): concatenating the heads is free
        out = apply(ops.MatMul, attended, v, layout=(0, 2, 1, 3))
    else:
        out = attended @ v
    out.name = names.Z
    return out, weights


def normalize(input, p=2.0, dim=None, eps=1e-12, axis=None):
    """input / max(||input||_p, eps) along `dim` (or `axis`, its numpy name;
    default 1, as PyTorch): every slice along that axis scaled to length 1 in
    the p-norm (p = float("inf"): the largest |x|). Sentence embeddings are
    L2-normalised this way, so their dot product is their cosine similarity.

    `eps` keeps an all-zero slice at zero instead of 0/0. The norm's gradient
    goes through only where the norm exceeds eps (elsewhere the divisor is the
    constant eps), and the norm is computed from a stand-in 1 there, so an
    all-zero slice has a finite gradient, 1/eps, and a zero element adds
    nothing to the norm's gradient, as in PyTorch.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"normalize: input must be a Tensor, got {type(input).__name__}")
    if not np.issubdtype(input.dtype, np.floating):
        raise TypeError(f"normalize: input must be floating-point (as in PyTorch), got dtype "
                        f"{input.dtype}")
    if dim is not None and axis is not None and dim != axis:
        raise TypeError(f"normalize: got dim={dim!r} and axis={axis!r}; give one of them")
    chosen = dim if dim is not None else axis
    axes = normalize_axes("normalize", 1 if chosen is None else chosen, input.ndim)
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not p > 0:
        raise ValueError(f"normalize: p must be a positive number or float('inf'), got {p!r}")
    if not eps >= 0:
        raise ValueError(f"normalize: eps must be >= 0, got {eps!r}")
    x = input  # the usual name from here on (`input` is PyTorch's keyword)
    if math.isinf(p):
        norm = x.abs().max(axes, keepdims=True)
        big = norm.data > eps
    else:
        p = float(p)
        if p == 2.0:
            powered = x * x
        else:  # |x|^p from a stand-in 1 at zeros: d|x|^p/dx is infinite at 0 for p < 1
            nonzero = x.data != 0
            powered = Tensor.where(nonzero, Tensor.where(nonzero, x.abs(), 1.0) ** p, 0.0)
        total = powered.sum(axes, keepdims=True)            # sum |x|^p, keeps the reduced axes
        big = total.data ** (1.0 / p) > eps
        norm = Tensor.where(big, total, 1.0) ** (1.0 / p)  # the p-th root of 1 where it is not used
    return x / Tensor.where(big, norm, eps)
