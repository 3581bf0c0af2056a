"""The basic layers: Linear, Embedding, LayerNorm, Dropout, and the causal mask.

Each layer here is initialised from the distribution PyTorch uses for the same
layer (the distribution, not the values: the random generators differ), so
weights start at the same scale. Modules built from these layers may differ:
MultiHeadAttention keeps Linear's init where PyTorch's attention does not (see
its docstring).

Every layer takes a Tensor, as in PyTorch (a list or an ndarray is a
TypeError naming the layer); only Embedding reads its ids from any integer
array. Sizes are integers (2.0 is refused, not truncated).
"""
import math

import numpy as np

from .. import functional as F
from .. import random as _random
from ..checks import integer, number
from ..functional import _tensor
from ..tensor import Tensor, shape_str
from .module import Module, Parameter


def _uniform(shape, bound):
    return _random.generator().uniform(-bound, bound, size=shape).astype(np.float32)


def standard_normal(shape):
    """N(0, 1) float32 weights from the library's seeded generator."""
    return _random.generator().standard_normal(shape).astype(np.float32)


class Linear(Module):
    """y = x W^T + b, applied to the last axis: (..., in_features) -> (..., out_features).

    weight: (out_features, in_features), bias: (out_features,), both drawn from
    U(-1/sqrt(in_features), 1/sqrt(in_features)) as PyTorch does.
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        in_features = integer("Linear", "in_features", in_features, minimum=0)
        out_features = integer("Linear", "out_features", out_features, minimum=0)
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features) if in_features else 0.0
        self.weight = Parameter(_uniform((out_features, in_features), bound))
        self.bias = Parameter(_uniform((out_features,), bound)) if bias else None

    def forward(self, x, relu=False):
        """x W^T + b; relu=True gives max(0, x W^T + b) in one op (F.linear_relu),
        as the feed-forward network asks of its first layer."""
        _tensor(f"Linear({self.in_features}, {self.out_features})", x, "input")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): input of shape "
                             f"{shape_str(x.shape)} must end in {self.in_features} features")
        if relu is True:
            return F.linear_relu(x, self.weight, self.bias)
        if relu is not False:
            raise TypeError(f"Linear: relu must be True or False, got {relu!r}")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class IdOutOfRange(IndexError, ValueError):
    """An id outside the table. An IndexError, as PyTorch and numpy raise for
    an index out of range, and a ValueError, as every bad argument here."""


class Embedding(Module):
    """A lookup table: token id i -> row i of `weight` (num_embeddings, embedding_dim),
    initialised N(0, 1) as in PyTorch. Input: integer ids of any shape (...)
    and any integer width (an ndarray, a list or an integer Tensor), output
    (..., embedding_dim). Floats and bools are refused, not rounded, and an
    id outside [0, num_embeddings) is an error (no negative indexing)."""

    def __init__(self, num_embeddings, embedding_dim):
        super().__init__()
        num_embeddings = integer("Embedding", "num_embeddings", num_embeddings, minimum=0)
        embedding_dim = integer("Embedding", "embedding_dim", embedding_dim, minimum=0)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(standard_normal((num_embeddings, embedding_dim)))

    def forward(self, ids):
        op = f"Embedding({self.num_embeddings}, {self.embedding_dim})"
        try:
            ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        except ValueError:  # numpy 2 refuses ragged lists
            raise TypeError(f"{op}: ids must be an array of integers, got a ragged "
                            f"{type(ids).__name__}") from None
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"{op}: ids must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise IdOutOfRange(f"{op}: ids must be in [0, {self.num_embeddings}), got min "
                               f"{ids.min()} max {ids.max()}")
        # any integer width: the engine indexes with the ids as int64
        return self.weight[ids]

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalise each token's features (the last axes, `normalized_shape`) to
    mean 0 and variance 1, then scale by `weight` (ones) and shift by `bias`
    (zeros). It keeps activations in range however deep the stack.
    eps must be > 0 (PyTorch accepts 0, which turns a constant token into 0 / 0)."""

    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__()
        if isinstance(normalized_shape, (list, tuple)):
            shape = tuple(integer("LayerNorm", "normalized_shape", n, minimum=1)
                          for n in normalized_shape)
        else:
            shape = (integer("LayerNorm", "normalized_shape", normalized_shape, minimum=1),)
        if not shape:
            raise ValueError("LayerNorm: normalized_shape must name at least one axis, got ()")
        # eps > 0: with eps = 0 a constant token would be normalised as 0 / 0
        self.normalized_shape = shape
        self.eps = number("LayerNorm", "eps", eps, low=0, low_open=True)
        self.weight = Parameter(np.ones(shape, dtype=np.float32))
        self.bias = Parameter(np.zeros(shape, dtype=np.float32))

    def forward(self, x):
        _tensor("LayerNorm", x, "input")
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"


class Dropout(Module):
    """During training zero each value with probability p and scale the rest
    by 1/(1-p); in eval() it does nothing. p is a number in [0, 1] (PyTorch
    also takes True, a likely slip for inplace=True; here it is a TypeError)."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = probability("Dropout", "p", p)

    def forward(self, x):
        _tensor("Dropout", x, "input")
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


def probability(op, name, p):
    """A dropout probability: a number in [0, 1]."""
    try:
        return number(op, name, p, low=0, high=1)
    except ValueError:
        raise ValueError(f"{op}: {name} must be a probability in [0, 1], got {p}") from None


def causal_mask(T):
    """The (T, T) boolean mask that hides the future: True above the diagonal,
    so position i may attend to positions 0..i only."""
    T = integer("causal_mask", "T", T, minimum=0)
    return np.triu(np.ones((T, T), dtype=bool), k=1)
