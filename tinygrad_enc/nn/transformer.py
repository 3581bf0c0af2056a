"""The encoder: layers of self-attention and a feed-forward network, each
wrapped in a residual connection and layer norm, stacked N times."""
from .. import names
from ..checks import integer
from .attention import MultiHeadAttention
from .layers import Dropout, LayerNorm, Linear
from .module import Module, ModuleList

_ACTIVATIONS = ("relu", "gelu")


class FeedForward(Module):
    """The same two-layer MLP applied to every token on its own:
    linear2(dropout(activation(linear1(x)))), d_model -> d_ff -> d_model.
    Tokens do not talk to each other here; only attention mixes them."""

    def __init__(self, d_model, d_ff, dropout=0.0, activation="relu"):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"FeedForward: activation must be one of {_ACTIVATIONS}, "
                             f"got {activation!r}")
        self.activation = activation
        self.linear1 = Linear(d_model, d_ff)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(d_ff, d_model)

    def forward(self, x):
        if self.activation == "relu":  # max(0, x W_1 + b_1): the linear layer and relu in one op
            hidden = self.linear1(x, relu=True)
        else:
            hidden = self.linear1(x).gelu()
        return self.linear2(self.dropout(hidden))

    def extra_repr(self):
        return f"activation={self.activation!r}"


class TransformerEncoderLayer(Module):
    """One encoder layer: self-attention, then the feed-forward network, each
    inside a residual connection with layer norm.

    post-LN (norm_first=False, the paper):  x = norm1(x + attn(x)); x = norm2(x + ffn(x))
    pre-LN  (norm_first=True):              x = x + attn(norm1(x)); x = x + ffn(norm2(x))

    The residual `x + sublayer(x)` lets the gradient reach earlier layers
    directly; dropout is applied to each sub-layer's output before the add.
    Input and output: (B, T, d_model). `layer_norm_eps` is both norms' eps
    (1e-5 as PyTorch; BERT-family models use 1e-12).
    """

    def __init__(self, d_model, n_heads, d_ff, dropout=0.1, activation="relu", norm_first=False,
                 layer_norm_eps=1e-5):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def forward(self, x, mask=None, key_padding_mask=None):
        if self.norm_first:  # pre-LN: x = x + sublayer(norm(x))
            h = self.norm1(x)
            h = self.self_attn(h, mask=mask, key_padding_mask=key_padding_mask)
            x = _residual(x, self.dropout1(h))
            h = self.norm2(x)
            h = self.ffn(h)
            return _residual(x, self.dropout2(h))
        # post-LN, the paper: x = norm(x + sublayer(x))
        h = self.self_attn(x, mask=mask, key_padding_mask=key_padding_mask)
        x = self.norm1(_residual(x, self.dropout1(h)))
        h = self.ffn(x)
        return self.norm2(_residual(x, self.dropout2(h)))

    def extra_repr(self):
        return f"norm_first={self.norm_first}"


def _residual(x, sublayer_out):
    """x + sublayer(x), tagged so the graph drawing shows the skip edge."""
    out = x + sublayer_out
    out.name = names.RESIDUAL
    return out


class TransformerEncoder(Module):
    """A stack of `num_layers` encoder layers of the same structure, each with
    its own weights (initialised independently), then an optional final
    LayerNorm (`final_norm`, usual with pre-LN). Input (B, T, d_model).
    num_layers is at least 1 (PyTorch's encoder also fails with none)."""

    def __init__(self, num_layers, d_model, n_heads, d_ff, dropout=0.1, activation="relu",
                 norm_first=False, final_norm=False, layer_norm_eps=1e-5):
        super().__init__()
        num_layers = integer("TransformerEncoder", "num_layers", num_layers, minimum=1)
        self.layers = ModuleList(
            TransformerEncoderLayer(d_model, n_heads, d_ff, dropout, activation, norm_first,
                                    layer_norm_eps)
            for _ in range(num_layers))
        self.norm = LayerNorm(d_model, eps=layer_norm_eps) if final_norm else None

    def forward(self, x, mask=None, key_padding_mask=None):
        for layer in self.layers:
            x = layer(x, mask=mask, key_padding_mask=key_padding_mask)
        return self.norm(x) if self.norm is not None else x


