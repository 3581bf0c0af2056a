"""Multi-head attention, as in "The Illustrated Transformer".

Each token's vector x is projected three ways: a query q = x W^Q (what this
token is looking for), a key k = x W^K (the label it can be found by) and a
value v = x W^V (the content it hands over). The score of token i for token j
is q_i . k_j / sqrt(d_k); softmax over j turns the scores into weights
alpha_ij; token i's output is z_i = sum_j alpha_ij v_j.

With h heads, d_model is cut into h slices of d_k = d_model / h, each head
attends on its own, and the h outputs are concatenated back to d_model and
mixed by W^O (`out_proj`).
"""
import numpy as np

from .. import names
from ..checks import check_mask, integer, shape_str
from ..functional import _attention, _tensor
from ..tensor import Tensor, array_of
from .layers import Linear, probability
from .module import Module


class MultiHeadAttention(Module):
    """Multi-head scaled dot-product attention.

    forward(query, key=None, value=None, mask=None, key_padding_mask=None):
    query (B, T_q, d_model); key and value (B, T_k, d_model), default: the
    query (self-attention). `mask` is boolean, True = may not attend, and
    broadcasts to (B, H, T_q, T_k): (T_q, T_k) for one mask for all, e.g.
    nn.causal_mask(T), or 4-D. A 3-D mask is refused: PyTorch reads it as
    (B*H, T_q, T_k), broadcasting would read it as (H, T_q, T_k), and with
    B == H a per-sequence (B, T_q, T_k) mask would silently apply per head;
    write (B, 1, T_q, T_k) or (1, H, T_q, T_k). `key_padding_mask` (B, T_k) is True at padding keys.
    Returns (B, T_q, d_model); `attn_weights` (B, H, T_q, T_k) holds the last
    call's attention weights as a read-only ndarray, taken before attention
    dropout so each row sums to 1 (PyTorch returns them after dropout).
    While a decode runs, `cache` (a KVCache) keeps K and V between calls; T_k
    then counts the cached keys too, and masks must cover all of them.

    Initialisation differs from torch.nn.MultiheadAttention's. Here each of
    q_proj, k_proj, v_proj and out_proj is a Linear with Linear's init: weight
    and bias ~ U(-1/sqrt(d_model), 1/sqrt(d_model)). PyTorch draws its packed
    in_proj_weight (3 d_model, d_model), that is W^Q, W^K and W^V, from
    xavier_uniform_, U(-sqrt(3 / (2 d_model)), sqrt(3 / (2 d_model))), a bound
    1.22 times ours; it sets in_proj_bias and out_proj.bias to zero, and draws
    out_proj.weight as we do. We keep Linear's init because the demos and the
    tour's numbers were made with it; to start from PyTorch's weights, load
    them (tinygrad_enc.interop).
    """

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        d_model = integer("MultiHeadAttention", "d_model", d_model, minimum=1)
        n_heads = integer("MultiHeadAttention", "n_heads", n_heads, minimum=1)
        if d_model % n_heads:
            raise ValueError(f"MultiHeadAttention: d_model {d_model} is not divisible by "
                             f"n_heads {n_heads}")
        dropout = probability("MultiHeadAttention", "dropout", dropout)
        self.d_model, self.n_heads, self.d_k, self.dropout = d_model, n_heads, d_model // n_heads, dropout
        self.q_proj = Linear(d_model, d_model, bias)    # W^Q
        self.k_proj = Linear(d_model, d_model, bias)    # W^K
        self.v_proj = Linear(d_model, d_model, bias)    # W^V
        self.out_proj = Linear(d_model, d_model, bias)  # W^O
        self.attn_weights = None
        self.cache = None  # a KVCache only while a decode runs (nn.decoding.kv_caches)

    def forward(self, query, key=None, value=None, mask=None, key_padding_mask=None):
        key = query if key is None else key
        value = key if value is None else value
        self._check_inputs(query, key, value)
        B, T_q, T_k, H = query.shape[0], query.shape[1], key.shape[1], self.n_heads

        q = self.q_proj(query)
        q.name = names.Q
        # split d_model into H heads of d_k: (B, T, d_model) -> (B, H, T, d_k)
        q = q.reshape(B, T_q, H, self.d_k).transpose(1, 2)
        if self.cache is not None and self.cache.static and self.cache.k is not None:
            k, v = self.cache.k, self.cache.v  # decoding: the encoder output's K, V, projected once
        else:
            k = self.k_proj(key)
            v = self.v_proj(value)
            k.name, v.name = names.K, names.V
            k = k.reshape(B, T_k, H, self.d_k).transpose(1, 2)
            v = v.reshape(B, T_k, H, self.d_k).transpose(1, 2)
            if self.cache is not None:
                k, v = self.cache.update(k, v)  # decoding: with the earlier positions' K, V
        T_k = k.shape[2]

        blocked = self._combine_masks(mask, key_padding_mask, (B, H, T_q, T_k))
        dropout_p = self.dropout if self.training else 0.0
        # the shapes and masks are checked already: attend without checking again
        z, weights = _attention(q, k, v, blocked, dropout_p)  # z: (B, H, T_q, d_k)
        self.attn_weights = weights.data.view()
        self.attn_weights.flags.writeable = False

        # concatenate the heads: (B, H, T_q, d_k) -> (B, T_q, H * d_k = d_model)
        concat = z.transpose(1, 2).reshape(B, T_q, self.d_model)
        concat.name = names.CONCAT
        return self.out_proj(concat)

    def _check_inputs(self, query, key, value):
        for name, t in (("query", query), ("key", key), ("value", value)):
            _tensor("MultiHeadAttention", t, name)

        def shapes():
            return f"query {shape_str(query.shape)}, key {shape_str(key.shape)}, " \
                   f"value {shape_str(value.shape)}"

        for t in (query, key, value):
            if t.ndim != 3 or t.shape[-1] != self.d_model:
                raise ValueError(f"MultiHeadAttention: {shapes()}: each must be "
                                 f"(B, T, d_model={self.d_model})")
        if not query.shape[0] == key.shape[0] == value.shape[0] or key.shape[1] != value.shape[1]:
            raise ValueError(f"MultiHeadAttention: {shapes()}: batch sizes must agree and key "
                             "and value need the same length")

    @staticmethod
    def _combine_masks(mask, key_padding_mask, scores_shape):
        """One boolean mask (True = blocked) that broadcasts to (B, H, T_q, T_k)."""
        blocked = None
        if mask is not None:
            blocked = check_mask("MultiHeadAttention", array_of(mask), scores_shape,
                                 target="(B, H, T_q, T_k) =")
            if blocked.ndim == 3:
                raise ValueError(f"MultiHeadAttention: a 3-D mask {shape_str(blocked.shape)} is "
                                 "ambiguous (PyTorch reads it as (B*H, T_q, T_k), broadcasting as "
                                 "(H, T_q, T_k)): pass (T_q, T_k), (B, 1, T_q, T_k) or "
                                 "(1, H, T_q, T_k)")
        if key_padding_mask is not None:
            B, _, _, T_k = scores_shape
            padding = check_mask("MultiHeadAttention", array_of(key_padding_mask), None,
                                 name="key_padding_mask")
            if padding.shape != (B, T_k):
                raise ValueError(f"MultiHeadAttention: key_padding_mask must be (B, T_k) = "
                                 f"{shape_str((B, T_k))}, got {shape_str(padding.shape)}")
            padding = padding[:, None, None, :]
            blocked = padding if blocked is None else np.logical_or(blocked, padding)
        return blocked

    def extra_repr(self):
        return f"d_model={self.d_model}, n_heads={self.n_heads}, d_k={self.d_k}, dropout={self.dropout}"


class KVCache:
    """The keys and values one attention module has computed, kept between the
    steps of a decode. nn.decoding.kv_caches puts one in `MultiHeadAttention.cache`
    for the length of a decode and takes it away after: training never sees one.

    static=False, masked self-attention: each step appends the new tokens' K
      and V to those of the earlier positions, so step t projects one token
      instead of all t (its query still needs the mask of its own position).
    static=True, encoder-decoder attention: K and V of the encoder's output are
      projected at the first step and reused at every later one.
    `k` and `v` are (B, H, T_k, d_k) Tensors, or None before the first step.
    """

    def __init__(self, static=False):
        self.static = static
        self.k = self.v = None

    def update(self, k, v):
        """Keep (self-attention: append) the new K and V; return all of them."""
        if self.k is not None:  # (B, H, T_past, d_k) + (B, H, T_new, d_k) along the time axis
            k, v = Tensor.cat([self.k, k], axis=2), Tensor.cat([self.v, v], axis=2)
        self.k, self.v = k, v
        return k, v

    def select(self, rows):
        """Keep batch rows `rows` (an integer array), in that order: beam search
        continues some hypotheses twice and drops others."""
        if self.k is not None:
            self.k, self.v = self.k[rows], self.v[rows]
