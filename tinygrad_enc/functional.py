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

from . import random as _random
from .checks import check_mask, normalize_axes, shape_str
from .ops import CrossEntropy, LayerNorm, Linear, LogSoftmax, Softmax
from .tensor import Tensor, apply, array_of


def softmax(x, axis=-1):
    """exp(x_i) / sum_j exp(x_j) along `axis`: turns scores into weights that
    are positive and sum to 1. Stable for any finite logits; a row that is all
    -inf (everything masked) becomes all zeros, not NaN."""
    return apply(Softmax, x, axis=normalize_axes("softmax", axis, x.ndim))


def log_softmax(x, axis=-1):
    """log(softmax(x)), computed as x - logsumexp(x) so it never overflows."""
    return apply(LogSoftmax, x, axis=normalize_axes("log_softmax", axis, x.ndim))


def relu(x):
    return x.relu()


def gelu(x, approximate="none"):
    """x * Phi(x): exact (erf) by default as in PyTorch, or approximate="tanh"."""
    return x.gelu(approximate)


def linear(x, weight, bias=None):
    """y = x W^T + b on the last axis: (..., in) -> (..., out), weight (out, in),
    bias (out,), as torch.nn.functional.linear. One fused op (ops.Linear):
    forward and backward are 2-D matrix products over all the rows at once."""
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input {shape_str(x.shape)} and weight "
                         f"{shape_str(weight.shape)}: need input (..., in) and weight (out, in)")
    if bias is None:
        return apply(Linear, x, weight)
    if bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias {shape_str(bias.shape)} must be (out,) = "
                         f"{shape_str(weight.shape[:1])}")
    return apply(Linear, x, weight, bias)


def linear_composed(x, weight, bias=None):
    """The same function as `linear`, composed from primitives (permute,
    matmul, add): what the fused op replaces, kept to check it against."""
    y = x @ weight.T
    return y if bias is None else y + bias


def cross_entropy(logits, target, ignore_index=None, label_smoothing=0.0):
    """Mean of -sum_c q_c log p_c over the positions whose target is not
    `ignore_index`, p = softmax(logits) and q the target distribution: one-hot
    at the target, or with label smoothing (1 - eps) one-hot + eps / C.

    logits: (N, C) or (B, T, C); target: integers of shape (N,) or (B, T).
    The classes are last, as the model's output comes (B, T, vocab); PyTorch's
    cross_entropy wants them second, (B, C, T), so a PyTorch call needs
    logits.permute(0, 2, 1). Its gradient with respect to the logits is
    (p - q) / (number of positions). If every target is ignored the loss is 0
    (PyTorch gives NaN). One fused op (ops.CrossEntropy) computes what
    `cross_entropy_composed` builds from log_softmax, a product and a sum.
    """
    target, kept = _class_targets(logits, target, ignore_index, label_smoothing)
    return apply(CrossEntropy, logits.reshape(-1, logits.shape[-1]), Tensor._wrap(target),
                 kept=kept, smoothing=float(label_smoothing))


def cross_entropy_composed(logits, target, ignore_index=None, label_smoothing=0.0):
    """cross_entropy from primitives: log_softmax, times the target
    distribution q (an (N, C) array), summed and scaled. The same function
    as `cross_entropy`, with three more passes over the logits' size; kept
    to check the fused op against."""
    target, kept = _class_targets(logits, target, ignore_index, label_smoothing)
    classes = logits.shape[-1]
    q = np.zeros((target.size, classes), dtype=logits.dtype)
    q[np.flatnonzero(kept), target[kept]] = 1.0
    if label_smoothing:
        q = (1.0 - label_smoothing) * q + kept[:, None] * (label_smoothing / classes)
    log_p = log_softmax(logits.reshape(-1, classes), axis=-1)
    return -(log_p * q).sum() * (1.0 / max(int(kept.sum()), 1))


def _class_targets(logits, target, ignore_index, label_smoothing):
    """Check cross_entropy's arguments; return the targets as one row of class
    indices and the mask of the rows that count (target != ignore_index)."""
    target = np.asarray(target.data if isinstance(target, Tensor) else target)
    if logits.ndim not in (2, 3):
        raise ValueError(f"cross_entropy: logits must be (N, C) or (B, T, C), got "
                         f"{shape_str(logits.shape)}")
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"cross_entropy: target must hold integer class indices, got dtype "
                        f"{target.dtype}")
    if target.shape != logits.shape[:-1]:
        raise ValueError(f"cross_entropy: logits {shape_str(logits.shape)} need target of shape "
                         f"{shape_str(logits.shape[:-1])}, got {shape_str(target.shape)}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    classes = logits.shape[-1]
    target = target.reshape(-1)
    kept = np.ones(target.shape, dtype=bool) if ignore_index is None else target != ignore_index
    bad = kept & ((target < 0) | (target >= classes))
    if bad.any():
        raise ValueError(f"cross_entropy: target {target[bad][0]} is not a class index in "
                         f"[0, {classes})")
    return target, kept


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize each token's features to mean 0 and variance 1, then scale by
    `weight` and shift by `bias`: (x - mean) / sqrt(var + eps) * w + b, over
    the last len(normalized_shape) axes. The variance is the biased one
    (divide by n), as in the paper and in PyTorch's LayerNorm."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: input {shape_str(x.shape)} does not end in the "
                         f"normalized shape {shape_str(shape)}")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    out = apply(LayerNorm, x, axes=axes, eps=eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p and scale the survivors by
    1 / (1 - p) ("inverted" dropout), so the expected value is unchanged and
    evaluation needs no rescaling. Identity when not training or p == 0."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    scale = (_random.generator().random(x.shape) >= p).astype(x.dtype)
    scale *= 1.0 / (1.0 - p)  # in place: one array, already in x's dtype
    return x * Tensor._wrap(scale)


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0):
    """Attention: Z = softmax(Q K^T / sqrt(d_k)) V.

    q: (..., T_q, d_k), k: (..., T_k, d_k), v: (..., T_k, d_v). The score of
    query i for key j is q_i . k_j / sqrt(d_k) (dividing keeps the scores'
    spread independent of d_k, so softmax does not saturate); softmax over j
    turns a row of scores into weights alpha_ij; z_i = sum_j alpha_ij v_j.
    `mask` is boolean, True = "may not attend", broadcasting to
    (..., T_q, T_k): the convention of torch.nn.MultiheadAttention's masks,
    and the OPPOSITE of torch.nn.functional.scaled_dot_product_attention,
    whose boolean attn_mask means True = attend (pass it ~mask). A query
    whose keys are all masked gets zero weights and a zero output, never NaN. `dropout_p` drops attention weights (as PyTorch,
    whenever it is > 0). Returns (Z, weights), weights before dropout.
    """
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2 or q.shape[-1] != k.shape[-1] \
            or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: q {shape_str(q.shape)}, k "
                         f"{shape_str(k.shape)}, v {shape_str(v.shape)}: need q (..., T_q, d_k), "
                         "k (..., T_k, d_k), v (..., T_k, d_v)")
    # Q K^T / sqrt(d_k), scaling q: (T_q, d_k) numbers instead of the scores' (T_q, T_k)
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    scores.name = "scores"
    if mask is not None:
        mask = check_mask("scaled_dot_product_attention", array_of(mask), scores.shape,
                          target="the scores' shape (..., T_q, T_k)")
        scores = scores.masked_fill(mask, -np.inf)
    weights = softmax(scores, axis=-1)
    weights.name = "attention weights"
    attended = dropout(weights, dropout_p, training=dropout_p > 0)
    out = attended @ v
    out.name = "Z"
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
