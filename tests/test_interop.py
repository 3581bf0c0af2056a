"""PyTorch <-> ours state dicts: exact key sets, the q/k/v split, bit-exact round
trips, fresh copies; and, when torch is installed, against real torch modules."""
import numpy as np
import pytest

from tinygrad_enc.interop import (from_torch_attention, from_torch_encoder,
                                  to_torch_attention, to_torch_encoder)

D, D_FF, LAYERS = 8, 16, 2


def _torch_layer_shapes(d, d_ff):
    """Parameter shapes of one torch.nn.TransformerEncoderLayer, in torch's order."""
    return {
        "self_attn.in_proj_weight": (3 * d, d), "self_attn.in_proj_bias": (3 * d,),
        "self_attn.out_proj.weight": (d, d), "self_attn.out_proj.bias": (d,),
        "linear1.weight": (d_ff, d), "linear1.bias": (d_ff,),
        "linear2.weight": (d, d_ff), "linear2.bias": (d,),
        "norm1.weight": (d,), "norm1.bias": (d,), "norm2.weight": (d,), "norm2.bias": (d,),
    }


def _torch_encoder_sd(dtype=np.float32, num_layers=LAYERS, final_norm=True):
    """A random state dict shaped like torch.nn.TransformerEncoder's, built with numpy."""
    rng = np.random.default_rng(0)
    shapes = {f"layers.{i}.{name}": shape for i in range(num_layers)
              for name, shape in _torch_layer_shapes(D, D_FF).items()}
    if final_norm:
        shapes.update({"norm.weight": (D,), "norm.bias": (D,)})
    return {name: rng.standard_normal(shape).astype(dtype) for name, shape in shapes.items()}


def _our_encoder_keys(num_layers, final_norm=True):
    per_layer = [f"self_attn.{p}.{w}" for p in ("q_proj", "k_proj", "v_proj", "out_proj")
                 for w in ("weight", "bias")]
    per_layer += [f"{m}.{w}" for m in ("ffn.linear1", "ffn.linear2", "norm1", "norm2")
                  for w in ("weight", "bias")]
    keys = {f"layers.{i}.{name}" for i in range(num_layers) for name in per_layer}
    return keys | ({"norm.weight", "norm.bias"} if final_norm else set())


def _assert_bit_exact(got, want):
    assert list(got) == list(want)
    for key, value in want.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
        assert got[key].tobytes() == value.tobytes(), key


def _assert_fresh(result, source):
    for key, value in result.items():
        assert not any(np.shares_memory(value, s) for s in source.values()), key


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_encoder_round_trip_is_bit_exact(dtype):
    torch_sd = _torch_encoder_sd(dtype)
    ours = from_torch_encoder(torch_sd)
    assert set(ours) == _our_encoder_keys(LAYERS)
    assert all(v.dtype == dtype for v in ours.values())
    _assert_bit_exact(to_torch_encoder(ours), torch_sd)
    _assert_bit_exact(from_torch_encoder(to_torch_encoder(ours)), ours)


def test_in_proj_splits_into_query_key_value_rows():
    torch_sd = _torch_encoder_sd()
    ours = from_torch_encoder(torch_sd)
    for i in range(LAYERS):
        w = torch_sd[f"layers.{i}.self_attn.in_proj_weight"]
        b = torch_sd[f"layers.{i}.self_attn.in_proj_bias"]
        for j, proj in enumerate(("q_proj", "k_proj", "v_proj")):
            rows = slice(j * D, (j + 1) * D)
            np.testing.assert_array_equal(ours[f"layers.{i}.self_attn.{proj}.weight"], w[rows])
            np.testing.assert_array_equal(ours[f"layers.{i}.self_attn.{proj}.bias"], b[rows])
        assert ours[f"layers.{i}.self_attn.q_proj.weight"].shape == (D, D)
        np.testing.assert_array_equal(ours[f"layers.{i}.ffn.linear1.weight"],
                                      torch_sd[f"layers.{i}.linear1.weight"])
    np.testing.assert_array_equal(ours["norm.bias"], torch_sd["norm.bias"])


def test_results_are_fresh_copies():
    torch_sd = _torch_encoder_sd()
    saved = {k: v.copy() for k, v in torch_sd.items()}
    ours = from_torch_encoder(torch_sd)
    _assert_fresh(ours, torch_sd)
    back = to_torch_encoder(ours)
    _assert_fresh(back, ours)
    for value in ours.values():
        value += 1.0
    _assert_bit_exact(torch_sd, saved)


def test_without_biases_or_final_norm():
    torch_sd = {k: v for k, v in _torch_encoder_sd(final_norm=False).items()
                if not k.endswith("bias")}
    ours = from_torch_encoder(torch_sd)
    assert set(ours) == {k for k in _our_encoder_keys(LAYERS, final_norm=False)
                         if not k.endswith("bias")}
    _assert_bit_exact(to_torch_encoder(ours), torch_sd)


def test_attention_round_trip():
    rng = np.random.default_rng(1)
    torch_sd = {"in_proj_weight": rng.standard_normal((3 * D, D)),
                "in_proj_bias": rng.standard_normal(3 * D),
                "out_proj.weight": rng.standard_normal((D, D)),
                "out_proj.bias": rng.standard_normal(D)}
    ours = from_torch_attention(torch_sd)
    assert set(ours) == {f"{p}.{w}" for p in ("q_proj", "k_proj", "v_proj", "out_proj")
                         for w in ("weight", "bias")}
    np.testing.assert_array_equal(ours["v_proj.weight"], torch_sd["in_proj_weight"][2 * D:])
    _assert_bit_exact(to_torch_attention(ours), torch_sd)


def test_unexpected_keys_are_listed():
    torch_sd = _torch_encoder_sd()
    torch_sd["layers.0.extra.weight"] = np.ones(2)
    torch_sd["pos_embedding"] = np.ones(2)
    with pytest.raises(ValueError, match=r"unexpected keys \['layers.0.extra.weight', "
                                         r"'pos_embedding'\]"):
        from_torch_encoder(torch_sd)
    with pytest.raises(ValueError, match="to_torch_encoder: unexpected keys "
                                         r"\['layers.0.self_attn.in_proj_weight'"):
        to_torch_encoder(_torch_encoder_sd())


def test_separate_projection_weights_unsupported():
    sd = {"q_proj_weight": np.ones((D, D)), "k_proj_weight": np.ones((D, 4)),
          "v_proj_weight": np.ones((D, 4)), "in_proj_bias": np.ones(3 * D)}
    with pytest.raises(ValueError, match="q_proj_weight.*kdim or vdim != embed_dim"):
        from_torch_attention(sd)


def test_in_proj_of_wrong_shape_refused():
    with pytest.raises(ValueError, match=r"in_proj_weight has shape \(7, 8\)"):
        from_torch_attention({"in_proj_weight": np.ones((7, D))})


def test_partial_or_mismatched_qkv_refused():
    ours = from_torch_attention({"in_proj_weight": np.ones((3 * D, D)),
                                 "in_proj_bias": np.ones(3 * D)})
    del ours["k_proj.bias"]
    with pytest.raises(ValueError, match=r"\['k_proj.bias'\] missing"):
        to_torch_attention(ours)
    ours["k_proj.bias"] = np.ones(D, dtype=np.float32)  # the others are float64
    with pytest.raises(ValueError, match="cannot stack q_proj.bias"):
        to_torch_attention(ours)


# ----- against real torch modules --------------------------------------------------

def _torch_encoder(torch):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=D, nhead=2, dim_feedforward=D_FF,
                                             batch_first=True)
    return torch.nn.TransformerEncoder(layer, num_layers=LAYERS, norm=torch.nn.LayerNorm(D),
                                       enable_nested_tensor=False)


def test_real_torch_encoder_round_trip():
    torch = pytest.importorskip("torch")
    encoder = _torch_encoder(torch)
    torch_sd = {k: v.numpy() for k, v in encoder.state_dict().items()}
    ours = from_torch_encoder(torch_sd)
    assert set(ours) == _our_encoder_keys(LAYERS)
    back = to_torch_encoder(ours)
    _assert_bit_exact(back, torch_sd)

    reloaded = _torch_encoder(torch)
    with torch.no_grad():
        for p in reloaded.parameters():
            p.zero_()
    reloaded.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()}, strict=True)
    for key, value in reloaded.state_dict().items():
        assert value.numpy().tobytes() == torch_sd[key].tobytes(), key


def test_accepts_torch_tensors_that_require_grad():
    torch = pytest.importorskip("torch")
    encoder = _torch_encoder(torch)
    ours = from_torch_encoder(dict(encoder.named_parameters()))
    assert set(ours) == _our_encoder_keys(LAYERS)
    assert all(type(v) is np.ndarray for v in ours.values())


def test_split_weights_reproduce_torch_attention():
    """The q/k/v split means what the names say: multi-head attention computed in
    numpy from our q_proj/k_proj/v_proj/out_proj matches torch's output."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    heads, d_k = 2, D // 2
    mha = torch.nn.MultiheadAttention(D, heads, batch_first=True).double()
    x = torch.randn(2, 5, D, dtype=torch.float64)
    want = mha(x, x, x, need_weights=False)[0].detach().numpy()

    w = from_torch_attention({k: v.numpy() for k, v in mha.state_dict().items()})
    x = x.numpy()

    def project(name):  # (B, T, d) -> (B, H, T, d_k)
        y = x @ w[f"{name}.weight"].T + w[f"{name}.bias"]
        return y.reshape(2, 5, heads, d_k).transpose(0, 2, 1, 3)

    q, k, v = project("q_proj"), project("k_proj"), project("v_proj")
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d_k)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads_out = (weights @ v).transpose(0, 2, 1, 3).reshape(2, 5, D)  # (B, T, d)
    got = heads_out @ w["out_proj.weight"].T + w["out_proj.bias"]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
