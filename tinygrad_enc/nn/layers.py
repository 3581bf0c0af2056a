"""The basic layers: Linear, Embedding, LayerNorm, Dropout, and the causal mask.

Each layer here is initialised from the distribution PyTorch uses for the same
layer (the distribution, not the values: the random generators differ), so
weights start at the same scale. Modules built from these layers may differ:
MultiHeadAttention keeps Linear's init where PyTorch's attention does not (see
its docstring).
"""
import math

import numpy as np

from .. import functional as F
from .. import random as _random
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
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features) if in_features else 0.0
        self.weight = Parameter(_uniform((out_features, in_features), bound))
        self.bias = Parameter(_uniform((out_features,), bound)) if bias else None

    def forward(self, x):
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): input of shape "
                             f"{shape_str(x.shape)} must end in {self.in_features} features")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: token id i -> row i of `weight` (num_embeddings, embedding_dim),
    initialised N(0, 1) as in PyTorch. Input: integer ids of any shape (...),
    output (..., embedding_dim)."""

    def __init__(self, num_embeddings, embedding_dim):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(standard_normal((num_embeddings, embedding_dim)))

    def forward(self, ids):
        ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"Embedding: ids must be integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise ValueError(f"Embedding({self.num_embeddings}, {self.embedding_dim}): ids must be "
                             f"in [0, {self.num_embeddings}), got min {ids.min()} max {ids.max()}")
        return self.weight[ids]

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalise each token's features (the last axes, `normalized_shape`) to
    mean 0 and variance 1, then scale by `weight` (ones) and shift by `bias`
    (zeros). It keeps activations in range however deep the stack."""

    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = Parameter(np.ones(shape, dtype=np.float32))
        self.bias = Parameter(np.zeros(shape, dtype=np.float32))

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"


class Dropout(Module):
    """During training zero each value with probability p and scale the rest
    by 1/(1-p); in eval() it does nothing."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


def causal_mask(T):
    """The (T, T) boolean mask that hides the future: True above the diagonal,
    so position i may attend to positions 0..i only."""
    return np.triu(np.ones((T, T), dtype=bool), k=1)
