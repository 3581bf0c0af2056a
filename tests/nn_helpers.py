"""Helpers shared by the nn and optim tests: random inputs, a walk over the
graph an output was made by, masks, and a numpy reference for attention."""
import numpy as np

from tinygrad_enc import Tensor, manual_seed, nn

D_MODEL, N_HEADS, D_FF, T = 8, 2, 16, 5


def randn(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def leaf(*shape, seed=0, dtype=np.float64):
    """A random tensor that requires grad."""
    return Tensor(randn(*shape, seed=seed, dtype=dtype), requires_grad=True, dtype=dtype)


def tiny_encoder(seed=0, num_layers=2, dtype=np.float64, **kwargs):
    """TransformerEncoder(num_layers, d=8, 2 heads, d_ff=16, dropout=0), seeded."""
    manual_seed(seed)
    kwargs.setdefault("dropout", 0.0)
    return nn.TransformerEncoder(num_layers, D_MODEL, N_HEADS, D_FF, **kwargs).to(dtype)


def graph_functions(out):
    """Every op (Function) of the graph behind `out`, each once."""
    found, seen, stack = [], set(), [out]
    while stack:
        ctx = stack.pop()._ctx
        if ctx is None or id(ctx) in seen:
            continue
        seen.add(id(ctx))
        found.append(ctx)
        stack.extend(ctx.parents)
    return found


def scope_chain(scope):
    """The paths from `scope` out to the root scope: ['a.b', 'a', '']."""
    chain = []
    while scope is not None:
        chain.append(scope.path)
        scope = scope.parent
    return chain


def padding_mask(B, T_k, pads):
    """(B, T_k) boolean, True on the last pads[b] keys of batch element b."""
    mask = np.zeros((B, T_k), dtype=bool)
    for b, n in enumerate(pads):
        mask[b, T_k - n:] = True
    return mask


def reference_attention(mha, query, key, value, blocked=None):
    """Multi-head attention in plain numpy from `mha`'s weights: returns the
    output (B, T_q, d) and the weights (B, H, T_q, T_k). `blocked` broadcasts
    to (B, H, T_q, T_k), True = may not attend."""
    def heads(x, proj):  # (B, T, d) -> (B, H, T, d_k)
        y = x @ proj.weight.data.T + proj.bias.data
        return y.reshape(x.shape[0], x.shape[1], mha.n_heads, mha.d_k).transpose(0, 2, 1, 3)

    q, k, v = heads(query, mha.q_proj), heads(key, mha.k_proj), heads(value, mha.v_proj)
    scores = np.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(mha.d_k)
    if blocked is not None:
        scores = np.where(blocked, -np.inf, scores)
    top = scores.max(-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(top), top, 0.0))
    total = e.sum(-1, keepdims=True)
    weights = e / np.where(total == 0, 1.0, total)
    z = np.einsum("bhqk,bhkd->bqhd", weights, v).reshape(query.shape[0], query.shape[1], -1)
    return z @ mha.out_proj.weight.data.T + mha.out_proj.bias.data, weights
