"""Whole models: the encoder-decoder Transformer of the paper, and a GPT.

Both end the same way, "the final linear and softmax": a Linear layer (the
`generator` / `head`) maps each position's d_model vector to one score
(logit) per vocabulary word, and softmax turns the scores into the
probability of each word being the next one. Training compares that
distribution with the true next token (cross-entropy); decoding picks from
it one token at a time (nn.decoding).
"""
import math

import numpy as np

from ..tensor import no_grad
from . import decoding
from .decoder import TransformerDecoder
from .layers import Dropout, Embedding, LayerNorm, Linear, causal_mask
from .module import Module, ModuleList
from .positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from .transformer import TransformerEncoder, TransformerEncoderLayer

_POSITIONAL = ("sinusoidal", "learned")


class TokenEmbedding(Module):
    """Token ids (B, T) -> token vectors * sqrt(d_model) + positions (B, T, d_model).

    `tokens` (an Embedding) starts N(0, 1 / d_model), so after the paper's
    sqrt(d_model) scale a token vector is N(0, 1) per feature, as loud as a
    position vector; the same table can then serve as the output layer
    (tie_embeddings) without huge initial logits. `offset` is the position of
    the first id (decoding with a cache feeds one token at a time).
    """

    def __init__(self, vocab, d_model, max_len=5000, positional="sinusoidal", dropout=0.0):
        super().__init__()
        if positional not in _POSITIONAL:
            raise ValueError(f"TokenEmbedding: positional must be one of {_POSITIONAL}, "
                             f"got {positional!r}")
        self.scale = math.sqrt(d_model)
        self.tokens = Embedding(vocab, d_model)
        self.tokens.weight.data *= 1.0 / self.scale
        self.positions = (SinusoidalPositionalEncoding(d_model, max_len)
                          if positional == "sinusoidal" else LearnedPositionalEmbedding(max_len, d_model))
        self.dropout = Dropout(dropout)

    def forward(self, ids, offset=0):
        x = self.tokens(ids) * self.scale          # (B, T) -> (B, T, d_model)
        return self.dropout(self.positions(x, offset))


def _start(module):
    """Put `module` in eval mode for decoding (dropout off); returns the mode to restore."""
    was_training = module.training
    module.eval()
    return was_training


class Transformer(Module):
    """The encoder-decoder Transformer: source ids -> target logits.

    src_embed, tgt_embed (TokenEmbedding) -> encoder (TransformerEncoder with a
    final norm) and decoder (TransformerDecoder with a final norm, as
    torch.nn.Transformer) -> generator (Linear d_model -> tgt_vocab). With
    tie_embeddings the generator's weight is the target embedding table.

    encode(src, src_key_padding_mask=None) -> memory (B, S, d_model)
    decode(tgt, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None)
        -> (B, T, d_model), the causal mask applied inside
    forward(src, tgt, src_key_padding_mask=None, tgt_key_padding_mask=None)
        -> logits (B, T, tgt_vocab); the source padding mask also masks
        encoder-decoder attention.

    Teacher forcing: `tgt` is the target shifted right, [start, y_1, ..., y_{T-1}],
    and logits[:, i] is scored against y_{i+1}; the causal mask keeps position
    i from seeing the token it predicts.

    `pad_id` (optional, not in torch): where a padding mask is not given, it
    is taken as `ids == pad_id`, for the source, the target, and (in forward
    and generate) the encoder output. Then a decoder input starting with
    pad_id is refused: the start symbol must not be the padding id, or the
    first position would attend to nothing.
    """

    def __init__(self, src_vocab, tgt_vocab, d_model=512, n_heads=8, num_encoder_layers=6,
                 num_decoder_layers=6, d_ff=2048, dropout=0.1, activation="relu",
                 norm_first=False, max_len=5000, positional="sinusoidal", tie_embeddings=False,
                 layer_norm_eps=1e-5, pad_id=None):
        super().__init__()
        self.src_vocab, self.tgt_vocab, self.max_len, self.pad_id = src_vocab, tgt_vocab, max_len, pad_id
        self.src_embed = TokenEmbedding(src_vocab, d_model, max_len, positional, dropout)
        self.tgt_embed = TokenEmbedding(tgt_vocab, d_model, max_len, positional, dropout)
        self.encoder = TransformerEncoder(num_encoder_layers, d_model, n_heads, d_ff, dropout,
                                          activation, norm_first, final_norm=True,
                                          layer_norm_eps=layer_norm_eps)
        self.decoder = TransformerDecoder(num_decoder_layers, d_model, n_heads, d_ff, dropout,
                                          activation, norm_first, final_norm=True,
                                          layer_norm_eps=layer_norm_eps)
        self.generator = Linear(d_model, tgt_vocab)
        if tie_embeddings:
            self.generator.weight = self.tgt_embed.tokens.weight  # (tgt_vocab, d_model) both

    def _padding(self, op, ids, mask, name):
        mask = decoding.check_padding_mask(op, mask, name, ids)
        if mask is None and self.pad_id is not None:
            mask = ids == self.pad_id
        return mask

    def encode(self, src, src_key_padding_mask=None):
        src = decoding.check_ids("Transformer.encode", src, "src", self.src_vocab)
        mask = self._padding("Transformer.encode", src, src_key_padding_mask,
                             "src_key_padding_mask")
        return self.encoder(self.src_embed(src), key_padding_mask=mask)

    def decode(self, tgt, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None):
        tgt = decoding.check_ids("Transformer.decode", tgt, "tgt", self.tgt_vocab)
        if self.pad_id is not None and tgt.size and (tgt[:, 0] == self.pad_id).any():
            raise ValueError(f"Transformer.decode: tgt starts with pad_id {self.pad_id}; the "
                             "start symbol must not be the padding id")
        mask = self._padding("Transformer.decode", tgt, tgt_key_padding_mask,
                             "tgt_key_padding_mask")
        return self.decoder(self.tgt_embed(tgt), memory, tgt_mask=causal_mask(tgt.shape[1]),
                            tgt_key_padding_mask=mask,
                            memory_key_padding_mask=memory_key_padding_mask)

    def forward(self, src, tgt, src_key_padding_mask=None, tgt_key_padding_mask=None):
        src = decoding.check_ids("Transformer", src, "src", self.src_vocab)
        src_mask = self._padding("Transformer", src, src_key_padding_mask, "src_key_padding_mask")
        memory = self.encode(src, src_mask)
        return self.generator(self.decode(tgt, memory, tgt_key_padding_mask, src_mask))

    def _next_logits(self, tgt, offset, memory, memory_key_padding_mask):
        """Logits (B, T, tgt_vocab) of the decoder input `tgt` at positions
        offset .. offset+T-1 (offset > 0: the earlier ones are in the caches)."""
        x = self.tgt_embed(tgt, offset)
        h = self.decoder(x, memory, tgt_mask=decoding.causal_block_mask(tgt.shape[1], offset),
                         memory_key_padding_mask=memory_key_padding_mask)
        return self.generator(h)

    def generate(self, src, max_len, start_id, end_id, src_key_padding_mask=None, beam_size=1,
                 length_penalty=0.0, temperature=0.0, top_k=None, use_cache=True):
        """Translate `src` (B, S): int64 array (B, L), L <= max_len, of the
        tokens after `start_id`; a row that produced `end_id` is filled with
        end_id after it, and decoding stops when every row has.

        temperature=0 is greedy, > 0 samples (with top_k, seeded by
        manual_seed); beam_size > 1 is beam search (see nn.decoding). The
        encoder runs once. use_cache=True keeps each decoder layer's keys and
        values (and the encoder output's, projected once), so each step feeds
        one token; use_cache=False recomputes the whole prefix at every step
        (the same tokens, slower). Runs in eval mode (dropout off) without
        building a graph, then restores the mode.
        """
        op = "Transformer.generate"
        src = decoding.check_ids(op, src, "src", self.src_vocab)
        decoding.check_options(op, max_len, beam_size, length_penalty, temperature, top_k)
        start_id = decoding.check_token(op, "start_id", start_id, self.tgt_vocab)
        end_id = decoding.check_token(op, "end_id", end_id, self.tgt_vocab, optional=True)
        if start_id == self.pad_id:
            raise ValueError(f"{op}: start_id {start_id} is the padding id; the start symbol "
                             "must be a token of its own")
        if max_len > self.max_len:
            raise ValueError(f"{op}: max_len {max_len} exceeds the model's max_len "
                             f"{self.max_len} positions")
        mask = self._padding(op, src, src_key_padding_mask, "src_key_padding_mask")
        if len(src) == 0:
            return np.zeros((0, 0), dtype=np.int64)
        was_training = _start(self)
        try:
            layers = self.decoder.layers
            with no_grad(), decoding.kv_caches([layer.self_attn for layer in layers],
                                               [layer.cross_attn for layer in layers],
                                               enabled=use_cache) as caches:
                memory = self.encode(src, mask)
                stepper = decoding.Stepper(self._next_logits, caches, memory=memory,
                                           memory_key_padding_mask=mask)
                start = np.full((len(src), 1), start_id, dtype=np.int64)
                return decoding.generate(stepper, start, max_len, end_id, beam_size,
                                         length_penalty, temperature, top_k)
        finally:
            self.train(was_training)


class GPT(Module):
    """A decoder-only language model: the encoder layer with a causal mask,
    trained to predict the next token.

    embed (TokenEmbedding) -> layers (TransformerEncoderLayer each, run with
    nn.causal_mask, so position i sees positions 0..i only) -> norm (final
    LayerNorm) -> head (Linear d_model -> vocab, tied to the embedding table
    by default). There is no encoder and so no encoder-decoder attention: the
    prefix itself is the only context. Pre-LN by default, as GPT-2.

    forward(ids (B, T), key_padding_mask=None) -> logits (B, T, vocab);
    logits[:, i] scores token i+1 (train with cross_entropy(logits[:, :-1],
    ids[:, 1:])).
    generate(prompt (B, P), max_len, end_id=None, ...) -> int64 (B, L) of the
    tokens after the prompt, with the options of Transformer.generate. The
    model sees at most its max_len positions: a longer text is continued from
    its last tokens (see nn.decoding.Stepper's `window`).
    """

    def __init__(self, vocab, d_model=128, n_heads=4, num_layers=4, d_ff=512, dropout=0.1,
                 activation="gelu", norm_first=True, max_len=256, positional="learned",
                 tie_embeddings=True, layer_norm_eps=1e-5):
        super().__init__()
        self.vocab, self.max_len = vocab, max_len
        self.embed = TokenEmbedding(vocab, d_model, max_len, positional, dropout)
        self.layers = ModuleList(
            TransformerEncoderLayer(d_model, n_heads, d_ff, dropout, activation, norm_first,
                                    layer_norm_eps)
            for _ in range(num_layers))
        self.norm = LayerNorm(d_model, eps=layer_norm_eps)
        self.head = Linear(d_model, vocab)
        if tie_embeddings:
            self.head.weight = self.embed.tokens.weight

    def _logits(self, ids, offset=0, key_padding_mask=None):
        """Logits of `ids` at positions offset .. offset+T-1 (offset > 0: the
        earlier ones are in the caches)."""
        x = self.embed(ids, offset)
        mask = decoding.causal_block_mask(ids.shape[1], offset)
        for layer in self.layers:
            x = layer(x, mask=mask, key_padding_mask=key_padding_mask)
        return self.head(self.norm(x))

    def forward(self, ids, key_padding_mask=None):
        ids = decoding.check_ids("GPT", ids, "ids", self.vocab)
        mask = decoding.check_padding_mask("GPT", key_padding_mask, "key_padding_mask", ids)
        return self._logits(ids, key_padding_mask=mask)

    def generate(self, prompt, max_len, end_id=None, beam_size=1, length_penalty=0.0,
                 temperature=0.0, top_k=None, use_cache=True):
        """Continue `prompt` (B, P) by at most max_len tokens (see the class
        docstring and Transformer.generate). With the cache the prompt is fed
        once, then one token per step."""
        op = "GPT.generate"
        prompt = decoding.check_ids(op, prompt, "prompt", self.vocab)
        decoding.check_options(op, max_len, beam_size, length_penalty, temperature, top_k)
        end_id = decoding.check_token(op, "end_id", end_id, self.vocab, optional=True)
        if prompt.shape[1] == 0:
            raise ValueError(f"{op}: the prompt needs at least one token")
        if len(prompt) == 0:
            return np.zeros((0, 0), dtype=np.int64)
        was_training = _start(self)
        try:
            with no_grad(), decoding.kv_caches([layer.self_attn for layer in self.layers],
                                               enabled=use_cache) as caches:
                stepper = decoding.Stepper(self._logits, caches, window=self.max_len)
                return decoding.generate(stepper, prompt, max_len, end_id, beam_size,
                                         length_penalty, temperature, top_k)
        finally:
            self.train(was_training)
