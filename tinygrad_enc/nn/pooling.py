"""Pooling: one vector per sequence from the encoder's (B, T, d_model) output.

An encoder gives one vector per token; a sentence embedding, or the input of
a classifier, needs one per sentence. Two usual ways, both ignoring padding:

- mean pooling: the average of the token vectors, padding left out
  (sentence-transformers models, all-MiniLM-L6-v2 among them);
- CLS pooling: the vector of the first token, [CLS], which BERT's
  pre-training taught to summarise the sentence.
"""
import numpy as np

from ..checks import check_mask, shape_str
from ..tensor import Tensor, array_of


def mean_pool(hidden, key_padding_mask=None):
    """Average of each sequence's token vectors over the tokens that are not
    padding: (B, T, d) -> (B, d).

    key_padding_mask (B, T) is boolean, True at padding (the mask the encoder
    took). A sequence made only of padding gives zeros, not NaN. The gradient
    reaches the kept tokens only, each with 1 / (number kept).
    """
    if hidden.ndim != 3:
        raise ValueError(f"mean_pool: hidden must be (B, T, d), got {shape_str(hidden.shape)}")
    if key_padding_mask is None:
        return hidden.mean(axis=1)
    padding = check_mask("mean_pool", array_of(key_padding_mask), None,
                         name="key_padding_mask")
    if padding.shape != hidden.shape[:2]:
        raise ValueError(f"mean_pool: key_padding_mask must be (B, T) = "
                         f"{shape_str(hidden.shape[:2])}, got {shape_str(padding.shape)}")
    keep = ~padding
    count = np.maximum(keep.sum(axis=1, keepdims=True), 1)              # (B, 1)
    weight = (keep / count).astype(hidden.dtype)[:, :, None]            # (B, T, 1): 1/n or 0
    return (hidden * Tensor._wrap(weight)).sum(axis=1)                  # (B, T, d) -> (B, d)


def cls_pool(hidden):
    """The first token's vector of each sequence, [CLS]: (B, T, d) -> (B, d).
    Padding is always at the end, so the first token is never padding."""
    if hidden.ndim != 3 or hidden.shape[1] == 0:
        raise ValueError(f"cls_pool: hidden must be (B, T, d) with T >= 1, got "
                         f"{shape_str(hidden.shape)}")
    return hidden[:, 0]
