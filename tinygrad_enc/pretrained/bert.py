"""BERT: the encoder of the tour, with weights learned from a lot of text.

A BERT model is our `nn.TransformerEncoder`, post-LN as in the paper, with
other sizes and three small changes: GELU instead of ReLU in the feed-forward
network, LayerNorm eps 1e-12 instead of 1e-5, and an input side of its own:

    x = word_embeddings[ids] + token_type_embeddings[types] + position_embeddings[0:T]
    x = dropout(LayerNorm(x))                                  # (B, T) ids -> (B, T, d_model)
    hidden = encoder(x, key_padding_mask)                      # (B, T, d_model)

The positions are learned, one vector per position (512 of them), not the
sinusoids. The token type (0 or 1) tells the first text of a pair from the
second. all-MiniLM-L6-v2 is such a model: 6 layers, d_model 384, 12 heads of
d_k 32, d_ff 1536, a vocabulary of 30,522 word pieces.

Hugging Face's BertModel names the same weights differently;
`huggingface_name` gives, for each of our parameter names, theirs, and
`load_huggingface_weights` copies a checkpoint in, checking every tensor.
"""
import re

import numpy as np

from .. import nn
from ..nn.pooling import cls_pool
from ..checks import shape_str
from ..tensor import array_of


class BertEmbeddings(nn.Module):
    """Token ids (B, T) and token types (B, T) -> vectors (B, T, d_model):
    the sum of the word, token-type and position embeddings, layer-normed."""

    def __init__(self, vocab_size, d_model, max_len, type_vocab_size, layer_norm_eps, dropout):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, d_model)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, d_model)
        self.position_embeddings = nn.LearnedPositionalEmbedding(max_len, d_model)
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids, token_type_ids):
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = self.position_embeddings(x)  # adds position_embeddings.weight[0:T]
        return self.dropout(self.norm(x))


class BertPooler(nn.Module):
    """tanh(W h_[CLS] + b): (B, T, d_model) -> (B, d_model). BERT's
    pre-training trained it to tell whether two sentences follow each other;
    sentence-transformers models mean-pool instead and leave it unused."""

    def __init__(self, d_model):
        super().__init__()
        self.dense = nn.Linear(d_model, d_model)

    def forward(self, hidden):
        return self.dense(cls_pool(hidden)).tanh()


class BertModel(nn.Module):
    """BERT's encoder: `embeddings` (BertEmbeddings), `encoder` (our
    nn.TransformerEncoder, GELU, post-LN), `pooler` (BertPooler).

    forward(input_ids, token_type_ids=None, key_padding_mask=None):
    input_ids (B, T) integers in [0, vocab_size); token_type_ids (B, T),
    default all 0; key_padding_mask (B, T) boolean, True at padding. Returns
    the last layer's hidden states, a Tensor (B, T, d_model). After a call,
    `encoder.layers[i].self_attn.attn_weights` holds layer i's attention,
    (B, n_heads, T, T).
    """

    def __init__(self, vocab_size=30522, d_model=768, n_heads=12, num_layers=12, d_ff=3072,
                 max_len=512, type_vocab_size=2, layer_norm_eps=1e-12, dropout=0.1):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab_size, d_model, max_len, type_vocab_size,
                                         layer_norm_eps, dropout)
        self.encoder = nn.TransformerEncoder(num_layers, d_model, n_heads, d_ff, dropout,
                                             activation="gelu", norm_first=False,
                                             layer_norm_eps=layer_norm_eps)
        self.pooler = BertPooler(d_model)

    @classmethod
    def from_config(cls, config):
        """A BertModel of the sizes in a Hugging Face config.json (a dict)."""
        return cls(vocab_size=config["vocab_size"], d_model=config["hidden_size"],
                   n_heads=config["num_attention_heads"], num_layers=config["num_hidden_layers"],
                   d_ff=config["intermediate_size"], max_len=config["max_position_embeddings"],
                   type_vocab_size=config["type_vocab_size"],
                   layer_norm_eps=config["layer_norm_eps"],
                   dropout=config.get("hidden_dropout_prob", 0.1))

    def forward(self, input_ids, token_type_ids=None, key_padding_mask=None):
        ids = self._ids("input_ids", input_ids, None, self.embeddings.word_embeddings)
        types = np.zeros_like(ids) if token_type_ids is None else self._ids(
            "token_type_ids", token_type_ids, ids.shape, self.embeddings.token_type_embeddings)
        max_len = self.embeddings.position_embeddings.max_len
        if ids.shape[1] > max_len:
            raise ValueError(f"BertModel: {ids.shape[1]} tokens, but the model has positions for "
                             f"{max_len}; shorten the text (tokenizer(texts, truncation=True))")
        if key_padding_mask is not None:
            key_padding_mask = self._padding_mask(key_padding_mask, ids.shape)
        x = self.embeddings(ids, types)                                  # (B, T, d_model)
        return self.encoder(x, key_padding_mask=key_padding_mask)         # (B, T, d_model)

    @staticmethod
    def _ids(name, ids, shape, table):
        """ids as an integer (B, T) ndarray inside `table`'s range, or a clear error."""
        ids = array_of(ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"BertModel: {name} must be integers, got dtype {ids.dtype}")
        if ids.ndim != 2 or (shape is not None and ids.shape != shape):
            want = "(B, T)" if shape is None else f"input_ids' shape {shape_str(shape)}"
            raise ValueError(f"BertModel: {name} must be {want}, got {shape_str(ids.shape)}"
                             + ("; for one sequence pass ids[None]" if ids.ndim == 1 else ""))
        n = table.num_embeddings
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            bad = ids[(ids < 0) | (ids >= n)][0]
            raise ValueError(f"BertModel: {name} must be in [0, {n}), got {bad}")
        return ids

    @staticmethod
    def _padding_mask(mask, shape):
        mask = array_of(mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"BertModel: key_padding_mask must be boolean, True at padding, got "
                            f"dtype {mask.dtype} (Hugging Face's attention_mask is the opposite, "
                            "1 at tokens: pass attention_mask == 0)")
        if mask.shape != shape:
            raise ValueError(f"BertModel: key_padding_mask must have input_ids' shape "
                             f"{shape_str(shape)}, got {shape_str(mask.shape)}")
        return mask

    # ----- Hugging Face checkpoints -------------------------------------------
    def load_huggingface_weights(self, tensors, source="the checkpoint"):
        """Copy a Hugging Face BertModel's tensors (name -> ndarray) into this
        model. Every tensor must be used and every parameter filled, each with
        its shape: otherwise one StateDictError names every missing, unexpected
        and mis-shaped tensor (by its Hugging Face name)."""
        ours = {huggingface_name(name): (name, p.shape) for name, p in self.named_parameters()}
        problems = [f"missing: {hf}" for hf in ours if hf not in tensors]
        for hf in sorted(tensors):
            if hf == _POSITION_IDS:  # a buffer holding 0, 1, 2, ...: not a weight
                if not np.array_equal(np.ravel(tensors[hf]), np.arange(np.size(tensors[hf]))):
                    problems.append(f"{hf} is not 0, 1, 2, ... (only absolute positions are "
                                    "supported)")
            elif hf not in ours:
                problems.append(f"unexpected: {hf}")
            elif tuple(np.shape(tensors[hf])) != ours[hf][1]:
                problems.append(f"mis-shaped: {hf}: {source} {shape_str(np.shape(tensors[hf]))}, "
                                f"model {shape_str(ours[hf][1])}")
        if problems:
            raise nn.StateDictError(f"BertModel: {source} does not fit this model: "
                                    + "; ".join(problems))
        self.load_state_dict({name: tensors[hf] for hf, (name, _) in ours.items()})
        return self


_POSITION_IDS = "embeddings.position_ids"
# Inside encoder layer i: our module path -> Hugging Face BertLayer's.
_LAYER_NAMES = {
    "self_attn.q_proj": "attention.self.query",       # W^Q
    "self_attn.k_proj": "attention.self.key",         # W^K
    "self_attn.v_proj": "attention.self.value",       # W^V
    "self_attn.out_proj": "attention.output.dense",   # W^O
    "norm1": "attention.output.LayerNorm",
    "ffn.linear1": "intermediate.dense",
    "ffn.linear2": "output.dense",
    "norm2": "output.LayerNorm",
}
_LAYER = re.compile(r"encoder\.layers\.(\d+)\.(.+)")


def huggingface_name(name):
    """Our parameter name -> Hugging Face BertModel's for the same weight (the
    shapes are the same: both keep Linear weights as (out, in)).
    `encoder.layers.0.self_attn.q_proj.weight` -> `encoder.layer.0.attention.self.query.weight`."""
    module, leaf = name.rsplit(".", 1)
    layer = _LAYER.fullmatch(module)
    if layer:
        return f"encoder.layer.{layer[1]}.{_LAYER_NAMES[layer[2]]}.{leaf}"
    return f"{'embeddings.LayerNorm' if module == 'embeddings.norm' else module}.{leaf}"
