"""Layers and the Transformer encoder, built on the engine.

    from tinygrad_enc import nn
    encoder = nn.TransformerEncoder(num_layers=2, d_model=32, n_heads=4, d_ff=64)
"""
from .attention import MultiHeadAttention
from .checkpoint import load, save
from .layers import Dropout, Embedding, LayerNorm, Linear, causal_mask
from .module import Module, ModuleList, Parameter, StateDictError
from .pooling import cls_pool, mean_pool
from .positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from .transformer import FeedForward, TransformerEncoder, TransformerEncoderLayer

__all__ = ["Module", "Parameter", "ModuleList", "StateDictError", "Linear", "Embedding",
           "LayerNorm", "Dropout", "causal_mask", "SinusoidalPositionalEncoding",
           "LearnedPositionalEmbedding", "MultiHeadAttention", "FeedForward",
           "TransformerEncoderLayer", "TransformerEncoder", "mean_pool", "cls_pool", "save", "load"]
