"""The decoder and the whole Transformer without torch: causality, teacher
forcing, masks (a fully masked row gives zeros), gradients, the GPT, and the
errors a learner meets."""
import numpy as np
import pytest

from nn_helpers import D_FF, D_MODEL, N_HEADS, leaf, padding_mask, randn
from tinygrad_enc import Tensor, manual_seed, nn
from tinygrad_enc.gradcheck import gradcheck

B, S, T = 2, 6, 5


def tiny_transformer(seed=0, **kwargs):
    manual_seed(seed)
    kwargs.setdefault("dropout", 0.0)
    return nn.Transformer(9, 11, D_MODEL, N_HEADS, 2, 2, D_FF, max_len=32, **kwargs).to(np.float64)


def ids(vocab, shape, seed):
    return np.random.default_rng(seed).integers(0, vocab, shape)


@pytest.mark.parametrize("norm_first", [False, True])
def test_changing_a_future_target_token_never_changes_an_earlier_position(norm_first):
    model = tiny_transformer(norm_first=norm_first)
    src, tgt = ids(9, (B, S), 1), ids(11, (B, T), 2)
    base = model(src, tgt).data
    for t in range(T):
        changed = tgt.copy()
        changed[:, t] = (changed[:, t] + 1) % 11
        out = model(src, changed).data
        np.testing.assert_array_equal(out[:, :t], base[:, :t])
        assert np.abs(out[:, t:] - base[:, t:]).max() > 1e-6  # position t itself does see it


def test_without_the_causal_mask_the_future_leaks():
    manual_seed(0)
    decoder = nn.TransformerDecoder(2, D_MODEL, N_HEADS, D_FF, dropout=0.0).to(np.float64)
    x, memory = randn(B, T, D_MODEL, seed=1), Tensor(randn(B, S, D_MODEL, seed=2))
    changed = x.copy()
    changed[:, -1] += 1.0
    masked = [decoder(Tensor(v), memory, tgt_mask=nn.causal_mask(T)).data for v in (x, changed)]
    open_ = [decoder(Tensor(v), memory).data for v in (x, changed)]
    np.testing.assert_array_equal(masked[0][:, :-1], masked[1][:, :-1])
    assert np.abs(open_[0][:, 0] - open_[1][:, 0]).max() > 1e-6


def test_teacher_forcing_the_model_cannot_see_the_token_it_predicts():
    """Trained on tgt_in = [start, y_1 .. y_{T-1}] against y, the logits at
    position i do not depend on y_{i+1} (only on tokens before it)."""
    model = tiny_transformer()
    src, y = ids(9, (B, S), 3), ids(11, (B, T), 4)
    start = 10
    tgt_in = np.concatenate([np.full((B, 1), start), y[:, :-1]], axis=1)
    base = model(src, tgt_in).data
    for i in range(T - 1):
        other = y.copy()
        other[:, i + 1] = (other[:, i + 1] + 3) % 10  # change the token predicted at i
        other_in = np.concatenate([np.full((B, 1), start), other[:, :-1]], axis=1)
        np.testing.assert_array_equal(model(src, other_in).data[:, i], base[:, i])


def test_source_padding_is_ignored_by_encoder_and_cross_attention():
    model = tiny_transformer()
    src, tgt = ids(9, (B, S), 5), ids(11, (B, T), 6)
    pad = padding_mask(B, S, [2, 0])
    base = model(src, tgt, src_key_padding_mask=pad).data
    other = src.copy()
    other[0, -2:] = (other[0, -2:] + 1) % 9
    np.testing.assert_allclose(model(other, tgt, src_key_padding_mask=pad).data, base, atol=1e-12)
    cross = model.decoder.layers[0].cross_attn.attn_weights
    assert np.all(cross[0, :, :, -2:] == 0.0) and np.all(cross[0, :, :, :-2] > 0.0)
    without = model(other, tgt).data
    assert np.abs(without[0] - base[0]).max() > 1e-6


def test_pad_id_derives_the_padding_masks():
    model = tiny_transformer(pad_id=0)
    src, tgt = ids(9, (B, S), 7) % 8 + 1, ids(11, (B, T), 8) % 10 + 1
    src[0, -2:] = 0
    tgt[1, -1] = 0
    explicit = tiny_transformer()(src, tgt, src_key_padding_mask=src == 0,
                                  tgt_key_padding_mask=tgt == 0).data
    np.testing.assert_array_equal(model(src, tgt).data, explicit)
    starts_with_pad = tgt.copy()
    starts_with_pad[0, 0] = 0
    with pytest.raises(ValueError, match="start symbol must not be the padding id"):
        model(src, starts_with_pad)


def test_fully_masked_rows_give_zeros_not_nan():
    manual_seed(0)
    layer = nn.TransformerDecoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0)
    x, memory = Tensor(randn(B, T, D_MODEL), requires_grad=True), Tensor(randn(B, S, D_MODEL))
    every_source_key = np.ones((B, S), dtype=bool)
    out = layer(x, memory, tgt_mask=nn.causal_mask(T), memory_key_padding_mask=every_source_key)
    assert np.isfinite(out.data).all()
    np.testing.assert_array_equal(layer.cross_attn.attn_weights, 0.0)
    out.sum().backward()
    assert np.isfinite(x.grad).all()


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_gradcheck(norm_first):
    manual_seed(0)
    layer = nn.TransformerDecoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.0,
                                       norm_first=norm_first, activation="gelu").to(np.float64)
    pad = padding_mask(B, S, [1, 3])
    assert gradcheck(lambda x, m: layer(x, m, tgt_mask=nn.causal_mask(3),
                                        memory_key_padding_mask=pad),
                     [leaf(B, 3, D_MODEL, seed=1), leaf(B, S, D_MODEL, seed=2)])


def test_layers_do_not_share_weights_and_shapes_hold():
    model = tiny_transformer()
    a, b = model.decoder.layers
    assert a.cross_attn.q_proj.weight is not b.cross_attn.q_proj.weight
    assert not np.array_equal(a.cross_attn.q_proj.weight.data, b.cross_attn.q_proj.weight.data)
    assert model.encoder.norm is not None and model.decoder.norm is not None
    memory = model.encode(ids(9, (B, S), 1))
    assert memory.shape == (B, S, D_MODEL)
    assert model.decode(ids(11, (B, T), 2), memory).shape == (B, T, D_MODEL)
    names = {name for name, _ in model.named_modules()}
    assert {"src_embed", "tgt_embed", "encoder", "decoder", "generator",
            "decoder.layers.0.cross_attn", "decoder.layers.1.norm3"} <= names


def test_dropout_and_eps_reach_every_sub_layer():
    layer = nn.TransformerDecoderLayer(D_MODEL, N_HEADS, D_FF, dropout=0.3, layer_norm_eps=1e-9)
    assert layer.self_attn.dropout == layer.cross_attn.dropout == 0.3
    assert {layer.norm1.eps, layer.norm2.eps, layer.norm3.eps} == {1e-9}


def test_decoder_errors_name_the_problem():
    model = tiny_transformer()
    src, tgt = ids(9, (B, S), 1), ids(11, (B, T), 2)
    with pytest.raises(TypeError, match="integer token ids"):
        model(src.astype(np.float32), tgt)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(src[0], tgt)
    with pytest.raises(ValueError, match=r"in \[0, 11\)"):
        model(src, tgt + 11)
    with pytest.raises(TypeError, match="boolean"):
        model(src, tgt, src_key_padding_mask=np.zeros((B, S)))
    with pytest.raises(ValueError, match="shape"):
        model(src, tgt, tgt_key_padding_mask=np.zeros((B, T + 1), dtype=bool))
    layer = model.decoder.layers[0]
    with pytest.raises(ValueError, match="MultiHeadAttention"):
        layer(Tensor(randn(B, T, D_MODEL)), Tensor(randn(B + 1, S, D_MODEL)))
    with pytest.raises(ValueError, match="positional"):
        nn.Transformer(5, 5, D_MODEL, N_HEADS, 1, 1, D_FF, positional="rotary")


def test_gpt_is_causal_and_learns_its_shapes():
    manual_seed(0)
    gpt = nn.GPT(13, D_MODEL, N_HEADS, 2, D_FF, dropout=0.0, max_len=16).to(np.float64)
    x = ids(13, (B, 8), 1)
    base = gpt(x).data
    assert base.shape == (B, 8, 13)
    changed = x.copy()
    changed[:, 5] = (changed[:, 5] + 1) % 13
    np.testing.assert_array_equal(gpt(changed).data[:, :5], base[:, :5])
    assert gpt.head.weight is gpt.embed.tokens.weight
    assert all(isinstance(layer, nn.TransformerEncoderLayer) for layer in gpt.layers)
