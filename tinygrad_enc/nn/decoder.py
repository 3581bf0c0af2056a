"""The decoder: the encoder layer with a second attention in the middle.

Each decoder layer has three sub-layers, each inside a residual connection
with layer norm, as in "The Illustrated Transformer":

1. masked self-attention: each output position attends to the positions
   before it (and itself), never to later ones: the causal mask;
2. encoder-decoder attention (`cross_attn`): queries from the layer below,
   keys and values from the encoder's output (`memory`), so every output
   position can look at every source token;
3. the feed-forward network, as in the encoder.
"""
from ..checks import integer
from .attention import MultiHeadAttention
from .layers import Dropout, LayerNorm
from .module import Module, ModuleList
from .transformer import FeedForward, _residual


class TransformerDecoderLayer(Module):
    """One decoder layer: masked self-attention, encoder-decoder attention,
    feed-forward, each inside a residual connection with layer norm.

    post-LN (norm_first=False, the paper):
        x = norm1(x + self_attn(x)); x = norm2(x + cross_attn(x, memory)); x = norm3(x + ffn(x))
    pre-LN (norm_first=True):
        x = x + self_attn(norm1(x)); x = x + cross_attn(norm2(x), memory); x = x + ffn(norm3(x))

    forward(x, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None): x (B, T, d_model), memory (B, S, d_model),
    output (B, T, d_model). As in PyTorch no mask is implied: pass
    tgt_mask=nn.causal_mask(T) for masked self-attention (nn.Transformer
    does). tgt_mask (T, T) and tgt_key_padding_mask (B, T) act on
    self-attention; memory_mask (T, S) and memory_key_padding_mask (B, S) on
    encoder-decoder attention. All boolean, True = may not attend.

    While decoding, nn.decoding.kv_caches gives self_attn and cross_attn a
    key/value cache each, so a step feeds only the newest token.
    """

    def __init__(self, d_model, n_heads, d_ff, dropout=0.1, activation="relu", norm_first=False,
                 layer_norm_eps=1e-5):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)

    def forward(self, x, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None):
        if self.norm_first:  # pre-LN: x = x + sublayer(norm(x))
            h = self.norm1(x)
            h = self.self_attn(h, mask=tgt_mask, key_padding_mask=tgt_key_padding_mask)
            x = _residual(x, self.dropout1(h))
            h = self.norm2(x)
            h = self.cross_attn(h, memory, mask=memory_mask,
                                key_padding_mask=memory_key_padding_mask)
            x = _residual(x, self.dropout2(h))
            h = self.norm3(x)
            h = self.ffn(h)
            return _residual(x, self.dropout3(h))
        # post-LN, the paper: x = norm(x + sublayer(x))
        h = self.self_attn(x, mask=tgt_mask, key_padding_mask=tgt_key_padding_mask)
        x = self.norm1(_residual(x, self.dropout1(h)))
        h = self.cross_attn(x, memory, mask=memory_mask,
                            key_padding_mask=memory_key_padding_mask)
        x = self.norm2(_residual(x, self.dropout2(h)))
        h = self.ffn(x)
        return self.norm3(_residual(x, self.dropout3(h)))

    def extra_repr(self):
        return f"norm_first={self.norm_first}"


class TransformerDecoder(Module):
    """A stack of `num_layers` decoder layers, each with its own weights, then
    an optional final LayerNorm (`final_norm`; torch.nn.Transformer always has
    one). Every layer reads the same `memory`, the encoder's output: the
    encoder-decoder attention of each layer can look at the whole source.
    forward takes the layer's arguments."""

    def __init__(self, num_layers, d_model, n_heads, d_ff, dropout=0.1, activation="relu",
                 norm_first=False, final_norm=False, layer_norm_eps=1e-5):
        super().__init__()
        num_layers = integer("TransformerDecoder", "num_layers", num_layers, minimum=1)
        self.layers = ModuleList(
            TransformerDecoderLayer(d_model, n_heads, d_ff, dropout, activation, norm_first,
                                    layer_norm_eps)
            for _ in range(num_layers))
        self.norm = LayerNorm(d_model, eps=layer_norm_eps) if final_norm else None

    def forward(self, x, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None):
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask)
        return self.norm(x) if self.norm is not None else x
