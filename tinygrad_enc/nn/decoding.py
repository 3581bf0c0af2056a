"""Decoding: turning a model's next-token scores into a sequence, one token at a time.

A decoder predicts the next token from the tokens so far, so an output is
built by a loop: feed the prefix, score the vocabulary, choose a token, append
it, repeat until the end token (or `max_len` tokens). The ways of choosing:

- greedy (temperature=0): the most likely token at every step;
- sampling (temperature > 0): a draw from softmax(logits / temperature),
  limited to the `top_k` most likely tokens, seeded by manual_seed;
- beam search (beam_size > 1): keep the `beam_size` most likely prefixes
  instead of one, so a token that looks worse now but leads to a better
  whole sequence survives. A finished sequence is ranked by its summed
  log-probability divided by n ** length_penalty (n: its tokens, the end
  token included); length_penalty = 0 ranks by the plain sum, > 0 favours
  longer sequences.

The loops only ask a `Stepper` for the next token's logits. With a key/value
cache the stepper feeds the model just the tokens it has not seen yet (one
per step); without, it feeds the whole prefix again at every step, which
costs t token passes at step t instead of one (same numbers, slower).
"""
import contextlib
import numbers

import numpy as np

from .. import random as _random
from ..checks import check_mask, shape_str
from ..tensor import array_of
from .attention import KVCache


class Stepper:
    """The next-token logits of every row of a growing prefix.

    forward(ids (N, t), offset, **state) -> logits (N, t, vocab) runs the
    model's decoder on the tokens at positions offset .. offset+t-1. With
    `caches` (the list kv_caches yields) each call gets only the tokens the
    caches have not seen; without (None) it gets the whole prefix, offset 0.
    `state` holds per-row arrays or Tensors (the encoder's output, its
    padding mask) that beam search reorders together with the caches.

    `window` (a GPT's max_len) bounds the context. Without a cache the model
    then sees the last `window` tokens; with one, when the cache is full it
    is emptied and refilled from the last window // 2 tokens, so the cached
    and uncached contexts differ once a sequence outgrows the window.
    """

    def __init__(self, forward, caches=None, window=None, **state):
        self.forward, self.caches, self.window, self.state = forward, caches, window, state
        self.first = 0  # the first token inside the context
        self.fed = 0    # prefix tokens already inside the caches

    def logits(self, tokens):
        """tokens (N, t) int64 -> the logits for the token after them, (N, vocab) float64."""
        if self.caches is None:
            context = tokens if self.window is None else tokens[:, -self.window:]
            out = self.forward(context, 0, **self.state)
        else:
            if self.window is not None and tokens.shape[1] - self.first > self.window:
                self.first = self.fed = tokens.shape[1] - self.window // 2
                for cache in self.caches:
                    cache.k = cache.v = None
            out = self.forward(tokens[:, self.fed:], self.fed - self.first, **self.state)
            self.fed = tokens.shape[1]
        return out.data[:, -1].astype(np.float64)

    def select(self, rows):
        """Keep rows `rows` (an integer array, repeats allowed) of the state and the caches."""
        self.state = {name: None if value is None else value[rows]
                      for name, value in self.state.items()}
        for cache in self.caches or ():
            cache.select(rows)


@contextlib.contextmanager
def kv_caches(self_attention, cross_attention=(), enabled=True):
    """For the length of one decode, give every MultiHeadAttention in
    `self_attention` a KVCache that grows by the new positions' keys and values,
    and every one in `cross_attention` a static KVCache (the encoder output's
    keys and values, projected once); yields the list of caches (None when not
    `enabled`) and takes them all away afterwards."""
    modules = [(m, KVCache()) for m in self_attention] + \
              [(m, KVCache(static=True)) for m in cross_attention]
    if not enabled:
        yield None
        return
    try:
        for module, cache in modules:
            module.cache = cache
        yield [cache for _, cache in modules]
    finally:
        for module, _ in modules:
            module.cache = None


def causal_block_mask(T_new, offset):
    """(T_new, offset + T_new) boolean, True = blocked: new token i, at
    position offset + i, may attend to positions 0 .. offset + i. With
    offset 0 it is nn.causal_mask(T_new)."""
    return np.triu(np.ones((T_new, offset + T_new), dtype=bool), k=offset + 1)


def generate(stepper, prefix, max_len, end_id=None, beam_size=1, length_penalty=0.0,
             temperature=0.0, top_k=None):
    """Continue `prefix` (N, P) int64 by at most `max_len` tokens.

    Returns an int64 array (N, L), L <= max_len, of the new tokens only. A row
    that produced `end_id` is filled with `end_id` after it; the loop stops
    when every row has (or after max_len tokens).
    """
    if beam_size == 1:
        return _greedy_or_sample(stepper, prefix, max_len, end_id, temperature, top_k)
    return _beam_search(stepper, prefix, max_len, end_id, beam_size, length_penalty)


def _greedy_or_sample(stepper, prefix, max_len, end_id, temperature, top_k):
    tokens = prefix
    finished = np.zeros(len(prefix), dtype=bool)
    for _ in range(max_len):
        choice = _choose(stepper.logits(tokens), temperature, top_k)
        if end_id is not None:
            choice = np.where(finished, end_id, choice)  # finished rows are padded with end_id
            finished |= choice == end_id
        tokens = np.concatenate([tokens, choice[:, None]], axis=1)
        if finished.all():
            break
    return tokens[:, prefix.shape[1]:]


def _choose(logits, temperature, top_k):
    """(N, V) logits -> (N,) token ids: the argmax, or a draw from
    softmax(logits / temperature) over the top_k best."""
    if temperature == 0:
        return logits.argmax(axis=-1)
    z = logits / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kept = np.argpartition(-z, top_k - 1, axis=-1)[:, :top_k]
        z = _keep(z, kept)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    cdf = np.cumsum(p, axis=-1)
    u = _random.generator().random((len(z), 1)) * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=-1), z.shape[-1] - 1)


def _keep(z, kept):
    """z with every entry outside the column indices `kept` set to -inf."""
    out = np.full_like(z, -np.inf)
    np.put_along_axis(out, kept, np.take_along_axis(z, kept, axis=-1), axis=-1)
    return out


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _beam_search(stepper, prefix, max_len, end_id, K, length_penalty):
    """Beam search with K beams per row, vectorized over rows and beams.

    Each step scores all K * V one-token extensions of the K live prefixes
    (summed log-probabilities) and sorts them. An extension by end_id ranked
    among the first K becomes a finished hypothesis (ranked by score / n **
    length_penalty, the best K kept per row); the first K others are the
    next live prefixes. A row is done when no live prefix can still beat its
    worst kept hypothesis (log-probabilities only fall as a prefix grows), so
    stopping early never changes the result. At max_len the live prefixes
    count as hypotheses too. With K = 1 this is exactly greedy decoding.
    """
    N, P = prefix.shape
    pad = 0 if end_id is None else end_id
    stepper.select(np.repeat(np.arange(N), K))  # one copy of every row per beam
    tokens = np.repeat(prefix, K, axis=0)       # (N * K, P + t)
    scores = np.full((N, K), -np.inf)
    scores[:, 0] = 0.0                          # at first only beam 0 is real
    kept_scores = np.full((N, K), -np.inf)      # finished hypotheses, best K per row
    kept_tokens = np.full((N, K, max_len), pad, dtype=np.int64)
    kept_lengths = np.zeros((N, K), dtype=np.int64)
    rows = np.arange(N)[:, None]
    for t in range(max_len):
        log_p = _log_softmax(stepper.logits(tokens))                    # (N * K, V)
        V = log_p.shape[-1]
        extended = (scores[:, :, None] + log_p.reshape(N, K, V)).reshape(N, K * V)
        n = min(2 * K, K * V)  # at most K of them end, so >= K live ones stay
        order = np.argsort(-extended, axis=1, kind="stable")[:, :n]   # (N, n), best first
        best = np.take_along_axis(extended, order, axis=1)
        beam, token = order // V, order % V
        ends = np.zeros_like(order, dtype=bool) if end_id is None else token == end_id
        past = tokens.reshape(N, K, -1)[rows, beam, P:]                 # (N, n, t)

        finished = ends & (np.arange(n) < K) & np.isfinite(best)
        new_scores = np.where(finished, best / (t + 1) ** length_penalty, -np.inf)
        new_tokens = np.full((N, n, max_len), pad, dtype=np.int64)
        new_tokens[:, :, :t], new_tokens[:, :, t] = past, token
        kept_scores, kept_tokens, kept_lengths = _best_k(
            K, (kept_scores, new_scores), (kept_tokens, new_tokens),
            (kept_lengths, np.full((N, n), t + 1)))

        live = np.argsort(ends, axis=1, kind="stable")[:, :K]  # the first K that did not end
        scores = np.where(np.take_along_axis(ends, live, 1), -np.inf,
                          np.take_along_axis(best, live, 1))
        parents = (rows * K + np.take_along_axis(beam, live, 1)).reshape(-1)
        tokens = np.concatenate([tokens[parents],
                                 np.take_along_axis(token, live, 1).reshape(-1, 1)], axis=1)
        stepper.select(parents)
        if t + 1 < max_len:
            # the best any live prefix can reach: its score (it only falls) over the
            # length that divides it most favourably
            longest = max_len if length_penalty > 0 else t + 2
            reachable = scores.max(axis=1) / longest ** length_penalty
            if (kept_scores.min(axis=1) >= reachable).all():
                break
    else:  # max_len reached: the live prefixes compete as they are
        kept_scores, kept_tokens, kept_lengths = _best_k(
            K, (kept_scores, scores / max_len ** length_penalty),
            (kept_tokens, tokens[:, P:].reshape(N, K, max_len)),
            (kept_lengths, np.full((N, K), max_len)))
    winner = kept_scores.argmax(axis=1)
    length = int(kept_lengths[np.arange(N), winner].max(initial=0))
    return kept_tokens[np.arange(N), winner, :length]


def _best_k(K, scores, tokens, lengths):
    """The K best (by score, earlier entries first on ties) of the hypotheses
    given as pairs of (kept, new) arrays, joined along axis 1."""
    scores, tokens, lengths = (np.concatenate(pair, axis=1) for pair in (scores, tokens, lengths))
    top = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return (np.take_along_axis(scores, top, 1), np.take_along_axis(tokens, top[:, :, None], 1),
            np.take_along_axis(lengths, top, 1))


def check_ids(op, ids, name, vocab):
    """Token ids as an int64 (B, T) array, or a clear error."""
    array = array_of(ids)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{op}: {name} must hold integer token ids, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{op}: {name} must be (B, T) token ids, got shape "
                         f"{shape_str(array.shape)} (one sequence: {name}[None])")
    if array.size and (array.min() < 0 or array.max() >= vocab):
        raise ValueError(f"{op}: {name} ids must be in [0, {vocab}), got min {array.min()} "
                         f"max {array.max()}")
    return array.astype(np.int64, copy=False)


def check_padding_mask(op, mask, name, ids):
    """A (B, T) boolean padding mask matching `ids`, or None."""
    if mask is None:
        return None
    array = check_mask(op, array_of(mask), None, name=name)
    if array.shape != ids.shape:
        raise ValueError(f"{op}: {name} must have the ids' shape {shape_str(ids.shape)}, got "
                         f"{shape_str(array.shape)}")
    return array


def check_token(op, name, value, vocab, optional=False):
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an integer token id, got {value!r}")
    if not 0 <= value < vocab:
        raise ValueError(f"{op}: {name} = {value} is not a token id in [0, {vocab})")
    return int(value)


def check_options(op, max_len, beam_size, length_penalty, temperature, top_k):
    """The decoding options, each checked, with the error naming it."""
    for name, value in (("max_len", max_len), ("beam_size", beam_size), ("top_k", top_k)):
        if value is None and name == "top_k":
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{op}: {name} must be an integer, got {value!r}")
        if value < 1:
            raise ValueError(f"{op}: {name} must be at least 1, got {value}")
    for name, value in (("temperature", temperature), ("length_penalty", length_penalty)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) \
                or not np.isfinite(value):
            raise TypeError(f"{op}: {name} must be a finite number, got {value!r}")
    if temperature < 0:
        raise ValueError(f"{op}: temperature must be >= 0 (0 = greedy), got {temperature}")
    if beam_size > 1 and (temperature > 0 or top_k is not None):
        raise ValueError(f"{op}: beam search (beam_size={beam_size}) is deterministic; "
                         "temperature and top_k are for sampling (beam_size=1)")
