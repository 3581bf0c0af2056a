"""Layers, the Transformer encoder and decoder, and whole models, built on the engine.

    from tinygrad_enc import nn
    encoder = nn.TransformerEncoder(num_layers=2, d_model=32, n_heads=4, d_ff=64)
    model = nn.Transformer(src_vocab=40, tgt_vocab=14, d_model=64, n_heads=4)
    gpt = nn.GPT(vocab=100)
"""
from . import decoding
from .attention import KVCache, MultiHeadAttention
from .checkpoint import load, save
from .decoder import TransformerDecoder, TransformerDecoderLayer
from .layers import Dropout, Embedding, LayerNorm, Linear, causal_mask
from .models import GPT, TokenEmbedding, Transformer
from .module import Module, ModuleList, Parameter, StateDictError
from .pooling import cls_pool, mean_pool
from .positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from .transformer import FeedForward, TransformerEncoder, TransformerEncoderLayer

__all__ = ["Module", "Parameter", "ModuleList", "StateDictError", "Linear", "Embedding",
           "LayerNorm", "Dropout", "causal_mask", "SinusoidalPositionalEncoding",
           "LearnedPositionalEmbedding", "MultiHeadAttention", "FeedForward",
           "TransformerEncoderLayer", "TransformerEncoder", "TransformerDecoderLayer",
           "TransformerDecoder", "Transformer", "GPT", "TokenEmbedding", "KVCache", "decoding",
           "mean_pool", "cls_pool", "save", "load"]
