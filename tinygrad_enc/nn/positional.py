"""Positional encodings: how a model that sees a *set* of tokens learns their order.

Attention and the feed-forward network treat tokens alike wherever they sit:
permute the input tokens and the outputs permute the same way. Adding a
vector that depends on the position breaks that symmetry.
"""
import numpy as np

from ..checks import integer
from ..functional import _tensor
from ..tensor import shape_str
from .layers import standard_normal
from .module import Module, Parameter


def _sizes(name, d_model, max_len):
    return (integer(name, "d_model", d_model, minimum=1),
            integer(name, "max_len", max_len, minimum=1))


def _check_input(name, x, max_len, d_model, offset):
    _tensor(name, x, "input")
    offset = integer(name, "offset", offset, minimum=0)
    if x.ndim < 2 or offset + x.shape[-2] > max_len:
        at = f"offset + T = {offset} + T" if offset else "T"
        raise ValueError(f"{name}: input {shape_str(x.shape)} must be (..., T, d_model) with "
                         f"{at} <= max_len = {max_len}")
    if x.shape[-1] != d_model:
        raise ValueError(f"{name}: input {shape_str(x.shape)} must end in d_model = {d_model}")
    return offset


def sinusoidal_table(max_len, d_model):
    """The paper's table, (max_len, d_model), in float64 (the formula is in
    SinusoidalPositionalEncoding's docstring)."""
    position = np.arange(max_len, dtype=np.float64)[:, None]
    frequency = 10000.0 ** (-np.arange(0, d_model, 2, dtype=np.float64) / d_model)
    pe = np.zeros((max_len, d_model))
    pe[:, 0::2] = np.sin(position * frequency)
    pe[:, 1::2] = np.cos(position * frequency[: d_model // 2])
    return pe


class SinusoidalPositionalEncoding(Module):
    """The paper's fixed encoding, added to the input (B, T, d_model):

        pe[pos, 2i]   = sin(pos / 10000^(2i / d_model))
        pe[pos, 2i+1] = cos(pos / 10000^(2i / d_model))

    (An odd d_model has one sine more than cosines: the last dimension is a
    sine, as the formula says.)

    Each pair of dimensions is a clock turning at its own speed, so every
    position gets a distinct pattern and pe[pos + k] is a fixed rotation of
    pe[pos]. For d_model = 4, position 1 is [0.8415, 0.5403, 0.0100, 1.0000].
    `pe` (max_len, d_model) is a buffer, not a parameter, and not saved.

    The table is computed in float64 and stored float32, like the weights.
    `to(dtype)` computes it again and rounds once to `dtype` (a cast would
    keep float32's rounding), so a float64 model adds the exact positions.
    A table assigned by hand (`enc.pe = ...`) is cast like any buffer.
    `offset` is the position of the first of the T tokens (decoding one token
    at a time with a cache feeds token t alone, at offset t).
    """

    def __init__(self, d_model, max_len=5000):
        super().__init__()
        self.d_model, self.max_len = _sizes("SinusoidalPositionalEncoding", d_model, max_len)
        self.register_buffer("pe", sinusoidal_table(self.max_len, self.d_model).astype(np.float32),
                             persistent=False)

    def to(self, dtype):
        exact = sinusoidal_table(self.max_len, self.d_model)
        from_formula = np.array_equal(self.pe, exact.astype(self.pe.dtype))
        super().to(dtype)
        if from_formula:  # computed again, rounded once
            self.pe = exact.astype(self.pe.dtype)
        return self

    def forward(self, x, offset=0):
        offset = _check_input("SinusoidalPositionalEncoding", x, self.max_len, self.d_model, offset)
        return x + self.pe[offset: offset + x.shape[-2]]

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEmbedding(Module):
    """One learned vector per position, `weight` (max_len, d_model), added to
    the input (B, T, d_model). Initialised N(0, 1) like an Embedding.
    `offset` is the position of the first of the T tokens."""

    def __init__(self, max_len, d_model):
        super().__init__()
        self.d_model, self.max_len = _sizes("LearnedPositionalEmbedding", d_model, max_len)
        self.weight = Parameter(standard_normal((self.max_len, self.d_model)))

    def forward(self, x, offset=0):
        offset = _check_input("LearnedPositionalEmbedding", x, self.max_len, self.d_model, offset)
        return x + self.weight[offset: offset + x.shape[-2]]

    def extra_repr(self):
        return f"max_len={self.max_len}, d_model={self.d_model}"
