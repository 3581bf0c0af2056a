"""PyTorch as the oracle for the decoder side: torch.nn.TransformerDecoder and
torch.nn.Transformer, loaded through tinygrad_enc.interop, give the same
outputs, input gradients and every parameter gradient, post-LN and pre-LN,
relu and gelu, with causal and padding masks on both sides; and our whole
nn.Transformer (embeddings, positions, generator) matches the same model
assembled from torch parts."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nn_helpers import D_FF, D_MODEL, N_HEADS, padding_mask, randn  # noqa: E402
from test_nn_parity_torch import (DTYPES, _assert_within, _compare, _max_diff,  # noqa: E402
                                  _numpy_state, _ours_from, _randomize, _torch_dtype)
from tinygrad_enc import nn  # noqa: E402
from tinygrad_enc.interop import (from_torch_decoder, from_torch_transformer,  # noqa: E402
                                  to_torch_decoder, to_torch_transformer)

B, S, T = 3, 7, 5
SRC_PADS, TGT_PADS = [2, 0, 4], [1, 3, 0]
# which masks: the target's causal mask, the padding masks, a memory_mask
MASKS = {"causal": dict(causal=True), "causal_padding": dict(causal=True, padding=True),
         "all": dict(causal=True, padding=True, memory=True), "none": dict()}


def _masks(case):
    spec = MASKS[case]
    return dict(
        tgt_mask=nn.causal_mask(T) if spec.get("causal") else None,
        memory_mask=(np.arange(S) % 3 == 1)[None, :].repeat(T, 0) if spec.get("memory") else None,
        tgt_key_padding_mask=padding_mask(B, T, TGT_PADS) if spec.get("padding") else None,
        memory_key_padding_mask=padding_mask(B, S, SRC_PADS) if spec.get("padding") else None)


def _as_torch(masks):
    return {k: None if v is None else torch.from_numpy(v) for k, v in masks.items()}


def decoder_diffs(norm_first, activation, case, final_norm, dtype):
    layer = torch.nn.TransformerDecoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0,
                                             batch_first=True, norm_first=norm_first,
                                             activation=activation)
    final = torch.nn.LayerNorm(D_MODEL) if final_norm else None
    theirs = torch.nn.TransformerDecoder(layer, 2, norm=final)
    theirs = _randomize(theirs, seed=0).to(_torch_dtype(dtype)).train()
    ours = _ours_from(theirs, nn.TransformerDecoder(2, D_MODEL, N_HEADS, D_FF, dropout=0.0,
                                                    activation=activation,
                                                    norm_first=norm_first,
                                                    final_norm=final_norm),
                      from_torch_decoder, dtype)
    masks = _masks(case)
    t_out, o_out, diffs = _compare(
        theirs, ours, to_torch_decoder,
        lambda x, memory: theirs(x, memory, **_as_torch(masks)),
        lambda x, memory: ours(x, memory, **masks),
        [randn(B, T, D_MODEL, seed=2), randn(B, S, D_MODEL, seed=3)], dtype)
    diffs["output"] = _max_diff(t_out.detach().numpy(), o_out.data)
    return diffs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MASKS)
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_matches_torch(norm_first, activation, case, dtype):
    diffs = decoder_diffs(norm_first, activation, case, False, dtype)
    assert any("multihead_attn" in name for name in diffs) and "input 1 grad" in diffs
    _assert_within(diffs, dtype)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_with_final_norm_matches_torch(norm_first):
    diffs = decoder_diffs(norm_first, "gelu", "all", True, np.float64)
    assert "norm.weight" in diffs
    _assert_within(diffs, np.float64)


def _torch_transformer(norm_first, activation, dtype, layers=(2, 2)):
    theirs = torch.nn.Transformer(D_MODEL, N_HEADS, layers[0], layers[1], D_FF, dropout=0.0,
                                  activation=activation, batch_first=True,
                                  norm_first=norm_first)
    return _randomize(theirs, seed=4).to(_torch_dtype(dtype)).train()


def _padded_masks():
    return padding_mask(B, S, SRC_PADS), padding_mask(B, T, TGT_PADS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_stacks_match_torch(norm_first, activation, dtype):
    """torch.nn.Transformer on vectors against our nn.Transformer's encoder and
    decoder, with the masks nn.Transformer.forward builds (causal target, source
    padding on both the encoder and encoder-decoder attention, target padding)."""
    theirs = _torch_transformer(norm_first, activation, dtype)
    model = nn.Transformer(11, 13, D_MODEL, N_HEADS, 2, 2, D_FF, dropout=0.0,
                           activation=activation, norm_first=norm_first)
    model.to(dtype)
    missing, unexpected = model.load_state_dict(from_torch_transformer(_numpy_state(theirs)),
                                                strict=False)
    assert not unexpected and all(not k.startswith(("encoder.", "decoder.")) for k in missing)
    src_pad, tgt_pad = _padded_masks()
    causal = nn.causal_mask(T)

    class Stacks(nn.Module):  # our two stacks under torch.nn.Transformer's names
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = model.encoder, model.decoder

    def ours(src, tgt):
        memory = model.encoder(src, key_padding_mask=src_pad)
        return model.decoder(tgt, memory, tgt_mask=causal, tgt_key_padding_mask=tgt_pad,
                             memory_key_padding_mask=src_pad)

    def torch_fn(src, tgt):
        return theirs(src, tgt, tgt_mask=torch.from_numpy(causal),
                      src_key_padding_mask=torch.from_numpy(src_pad),
                      tgt_key_padding_mask=torch.from_numpy(tgt_pad),
                      memory_key_padding_mask=torch.from_numpy(src_pad))

    t_out, o_out, diffs = _compare(theirs, Stacks(), to_torch_transformer, torch_fn, ours,
                                   [randn(B, S, D_MODEL, seed=5), randn(B, T, D_MODEL, seed=6)],
                                   dtype)
    diffs["output"] = _max_diff(t_out.detach().numpy(), o_out.data)
    assert {"encoder.norm.weight", "decoder.norm.weight",
            "decoder.layers.1.multihead_attn.in_proj_weight"} <= set(diffs)
    _assert_within(diffs, dtype)


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_whole_transformer_matches_torch_parts(norm_first, tie):
    """ids -> logits: our nn.Transformer against torch Embedding * sqrt(d) + the
    same sinusoidal table -> torch.nn.Transformer -> torch Linear, in float64:
    logits and the gradient of every parameter, embeddings and generator included."""
    src_vocab, tgt_vocab = 11, 13
    theirs = _torch_transformer(norm_first, "relu", np.float64)
    model = nn.Transformer(src_vocab, tgt_vocab, D_MODEL, N_HEADS, 2, 2, D_FF, dropout=0.0,
                           norm_first=norm_first, tie_embeddings=tie, max_len=16).to(np.float64)
    model.load_state_dict(from_torch_transformer(_numpy_state(theirs)), strict=False)
    t = {name: torch.tensor(model.state_dict()[name], requires_grad=True)
         for name in ("src_embed.tokens.weight", "tgt_embed.tokens.weight",
                      "generator.weight", "generator.bias") if name in model.state_dict()}
    out_weight = t["tgt_embed.tokens.weight"] if tie else t["generator.weight"]
    pe = torch.from_numpy(model.src_embed.positions.pe)
    rng = np.random.default_rng(7)
    src, tgt = rng.integers(0, src_vocab, (B, S)), rng.integers(0, tgt_vocab, (B, T))
    src_pad, tgt_pad = _padded_masks()

    scale = math.sqrt(D_MODEL)
    h = theirs(t["src_embed.tokens.weight"][torch.from_numpy(src)] * scale + pe[:S],
               t["tgt_embed.tokens.weight"][torch.from_numpy(tgt)] * scale + pe[:T],
               tgt_mask=torch.from_numpy(nn.causal_mask(T)),
               src_key_padding_mask=torch.from_numpy(src_pad),
               tgt_key_padding_mask=torch.from_numpy(tgt_pad),
               memory_key_padding_mask=torch.from_numpy(src_pad))
    t_logits = h @ out_weight.T + t["generator.bias"]
    o_logits = model(src, tgt, src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad)
    upstream = randn(B, T, tgt_vocab, seed=8)
    (t_logits * torch.from_numpy(upstream)).sum().backward()
    o_logits.backward(upstream)

    grads = dict(model.named_parameters())
    diffs = {"logits": _max_diff(t_logits.detach().numpy(), o_logits.data)}
    diffs.update({name: _max_diff(p.grad.numpy(), grads[name].grad) for name, p in t.items()})
    stacks = to_torch_transformer({n: p.grad for n, p in grads.items()
                                   if n.startswith(("encoder.", "decoder."))})
    diffs.update({name: _max_diff(p.grad.numpy(), stacks[name])
                  for name, p in theirs.named_parameters()})
    assert len(diffs) == 1 + len(t) + len(list(theirs.parameters()))
    _assert_within(diffs, np.float64)


def test_generator_is_tied_to_the_target_embedding():
    model = nn.Transformer(5, 7, D_MODEL, N_HEADS, 1, 1, D_FF, tie_embeddings=True)
    assert model.generator.weight is model.tgt_embed.tokens.weight
    assert "generator.weight" not in model.state_dict()
    untied = nn.Transformer(5, 7, D_MODEL, N_HEADS, 1, 1, D_FF)
    assert untied.num_parameters() - model.num_parameters() == 7 * D_MODEL


def test_decoder_round_trip_through_real_torch_is_bit_exact():
    layer = torch.nn.TransformerDecoderLayer(D_MODEL, N_HEADS, D_FF, batch_first=True)
    theirs = _randomize(torch.nn.TransformerDecoder(layer, 2, norm=torch.nn.LayerNorm(D_MODEL)), 9)
    sd = _numpy_state(theirs)
    back = to_torch_decoder(from_torch_decoder(sd))
    assert list(back) == list(sd)
    for key in sd:
        np.testing.assert_array_equal(back[key], sd[key])
    theirs = _torch_transformer(False, "relu", np.float64)
    sd = _numpy_state(theirs)
    back = to_torch_transformer(from_torch_transformer(sd))
    assert sorted(back) == sorted(sd)
    for key in sd:
        np.testing.assert_array_equal(back[key], sd[key])
    assert all(k.startswith(("encoder.", "decoder.")) for k in from_torch_transformer(sd))
    assert "decoder.layers.0.cross_attn.q_proj.weight" in from_torch_transformer(sd)
