"""The mistakes a learner makes, one row each: every public layer, loss,
optimizer, checkpoint and drawing function, called wrongly.

RAISES: each wrong call must raise the exception type given, with a message
that contains every fragment given: the op's name and the offending value or
shape, so the learner can find the mistake from the message alone. Some rows
also check what the failed call left behind (`then`): a failed load that
changed nothing, a failed save that left no file.

ANSWERS: calls that used to return a silently wrong result and now return
the right one (the empty result for an empty input, the same gradients for
every integer width of ids, one tensor clipped as PyTorch clips it).
"""
import os

import numpy as np
import pytest

import tinygrad_enc.functional as F
import viz
from tinygrad_enc import Tensor, interop, manual_seed, nn, optim

D, H, T = 8, 2, 3


def x3(B=2, T_=T, d=D):
    return Tensor(np.zeros((B, T_, d), dtype=np.float32))


def linear():
    manual_seed(0)
    return nn.Linear(4, 3)


def with_grads(model):
    for p in model.parameters():
        p.grad = np.ones(p.shape, dtype=p.dtype)
    return model


def sgd(**kwargs):
    return optim.SGD(linear().parameters(), **{"lr": 0.1, **kwargs})


def adam(cls=optim.Adam, **kwargs):
    return cls(linear().parameters(), **kwargs)


def mha():
    return nn.MultiHeadAttention(D, H)


def encoder():
    manual_seed(0)
    return nn.TransformerEncoder(2, D, H, 16, dropout=0.0)


def graph_output():
    lin = linear()
    return lin(Tensor(np.ones((2, 4)))).sum(), lin


WEIGHTS = np.full((2, 2), 0.5)


class NoSuperInit(nn.Module):
    def __init__(self):
        self.proj = nn.Linear(2, 2)  # forgot super().__init__()


class WithBuffer(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.register_buffer("table", value)


# ----- rows whose failure must leave nothing behind -----------------------------
class LoadTarget:
    """A Linear loaded with a state dict whose second value is bad: the first
    (the bias, sorted first) must not have been written."""

    def __init__(self):
        self.model = linear()
        self.before = {k: v.copy() for k, v in self.model.state_dict().items()}

    def load(self, bad_weight):
        return self.model.load_state_dict({"bias": np.full(3, 7.0), "weight": bad_weight})

    def unchanged(self):
        after = self.model.state_dict()
        return all(np.array_equal(after[k], v) for k, v in self.before.items())


def failed_load(bad_weight):
    target = LoadTarget()
    return (lambda: target.load(bad_weight)), target.unchanged


class SaveTarget:
    """A save into tmp that fails: no file may be left in the directory."""

    def __init__(self, tmp, make_path=lambda tmp: os.path.join(tmp, "model.npz")):
        self.tmp, self.path = tmp, make_path(tmp)

    def nothing_left(self):
        return os.listdir(self.tmp) == [] or os.listdir(self.tmp) == ["a_directory"]


def row(name, call, error, *fragments, then=None):
    return pytest.param(call, error, fragments, then, id=name)


def rows():
    # load_state_dict: all or nothing
    load_str, load_str_ok = failed_load(np.full((3, 4), "a"))
    load_obj, load_obj_ok = failed_load(np.array([[None] * 4] * 3))
    load_complex, load_complex_ok = failed_load(np.zeros((3, 4), complex))
    load_shape, load_shape_ok = failed_load(np.zeros((4, 3)))
    load_ragged, load_ragged_ok = failed_load([[0.0] * 4, [0.0] * 3, [0.0]])
    return [
        # ---- engine (the examples of the issue) --------------------------------
        row("reshape_float_size", lambda: Tensor(np.zeros((2, 3))).reshape(2.9, 3), TypeError,
            "reshape", "2.9"),
        row("zeros_float_size", lambda: Tensor.zeros(2.7, 3), TypeError, "zeros", "2.7"),
        row("getitem_step_zero", lambda: Tensor(np.zeros(3))[::0], ValueError, "getitem", "(3,)",
            "step"),
        row("int_negative_power", lambda: Tensor(np.array([1, 2])) ** -1, ValueError, "pow",
            "negative"),
        row("bool_subtraction", lambda: Tensor(np.array([True])) - Tensor(np.array([False])),
            TypeError, "sub", "boolean"),
        row("bool_negation", lambda: -Tensor(np.array([True])), TypeError, "neg", "boolean"),
        row("requires_grad_int", lambda: Tensor(np.array([1, 2]), requires_grad=True), TypeError,
            "int64", "require grad"),
        row("backward_not_scalar", lambda: Tensor(np.zeros(3), requires_grad=True).exp().backward(),
            RuntimeError, "backward", "(3,)"),
        row("grad_wrong_shape",
            lambda: setattr(Tensor(np.zeros(3), requires_grad=True), "grad", np.zeros(4)),
            ValueError, "grad", "(4,)", "(3,)"),
        row("masked_fill_float_mask", lambda: Tensor(np.zeros(3)).masked_fill(np.zeros(3), 0.0),
            TypeError, "masked_fill", "float64"),
        row("where_float_condition", lambda: Tensor.where(np.zeros(2), Tensor(np.zeros(2)), 1.0),
            TypeError, "where", "float64"),
        # ---- functional: losses and the Transformer's functions -------------------
        row("cross_entropy_ignore_index_str",
            lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1]), ignore_index="pad"),
            TypeError, "cross_entropy", "ignore_index", "'pad'"),
        row("cross_entropy_float_target",
            lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0])), TypeError,
            "cross_entropy", "float64"),
        row("cross_entropy_target_range",
            lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 3])), ValueError,
            "cross_entropy", "3", "[0, 3)"),
        row("cross_entropy_target_shape",
            lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1, 2])), ValueError,
            "cross_entropy", "(2, 3)", "(3,)"),
        row("cross_entropy_1d_logits", lambda: F.cross_entropy(Tensor(np.zeros(3)), np.array(1)),
            ValueError, "cross_entropy", "(3,)"),
        row("cross_entropy_label_smoothing_range",
            lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1]), label_smoothing=2),
            ValueError, "cross_entropy", "label_smoothing", "2"),
        row("cross_entropy_label_smoothing_str",
            lambda: F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 1]),
                                    label_smoothing="0.1"),
            TypeError, "cross_entropy", "label_smoothing", "'0.1'"),
        row("cross_entropy_list_logits",
            lambda: F.cross_entropy([[0.0] * 3] * 2, np.array([0, 1])), TypeError,
            "cross_entropy", "list"),
        row("softmax_axis_range", lambda: F.softmax(Tensor(np.zeros((2, 3))), axis=2), ValueError,
            "softmax", "axis 2"),
        row("softmax_axis_str", lambda: F.softmax(Tensor(np.zeros((2, 3))), axis="last"),
            TypeError, "softmax", "'last'"),
        row("log_softmax_axis_range", lambda: F.log_softmax(Tensor(np.zeros((2, 3))), axis=3),
            ValueError, "log_softmax", "axis 3"),
        row("layer_norm_shape", lambda: F.layer_norm(Tensor(np.zeros((2, 3))), 4), ValueError,
            "layer_norm", "(2, 3)", "(4,)"),
        row("dropout_p_range", lambda: F.dropout(Tensor(np.zeros(3)), 2.0), ValueError, "dropout",
            "2.0"),
        row("gelu_mode", lambda: F.gelu(Tensor(np.zeros(3)), "fast"), ValueError, "gelu",
            "'fast'"),
        row("sdpa_float_mask",
            lambda: F.scaled_dot_product_attention(x3(), x3(), x3(), mask=np.zeros((T, T))),
            TypeError, "scaled_dot_product_attention", "float64"),
        row("sdpa_mask_shape",
            lambda: F.scaled_dot_product_attention(x3(), x3(), x3(), mask=np.zeros((4, 4), bool)),
            ValueError, "scaled_dot_product_attention", "(4, 4)", "(2, 3, 3)"),
        row("sdpa_shapes",
            lambda: F.scaled_dot_product_attention(x3(), x3(d=5), x3()), ValueError,
            "scaled_dot_product_attention", "(2, 3, 5)"),
        # ---- Linear ---------------------------------------------------------------
        row("linear_list_input", lambda: linear()([1.0, 2.0, 3.0, 4.0]), TypeError, "Linear(4, 3)",
            "list"),
        row("linear_ndarray_input", lambda: linear()(np.zeros(4)), TypeError, "Linear(4, 3)",
            "ndarray"),
        row("linear_wrong_features", lambda: linear()(Tensor(np.zeros((2, 5)))), ValueError,
            "Linear(4, 3)", "(2, 5)"),
        row("linear_scalar_input", lambda: linear()(Tensor(1.0)), ValueError, "Linear(4, 3)", "()"),
        row("linear_negative_in", lambda: nn.Linear(-1, 3), ValueError, "Linear", "in_features",
            "-1"),
        row("linear_negative_out", lambda: nn.Linear(3, -2), ValueError, "Linear", "out_features",
            "-2"),
        row("linear_float_in", lambda: nn.Linear(2.5, 3), TypeError, "Linear", "in_features",
            "2.5"),
        row("linear_float_out", lambda: nn.Linear(3, 2.0), TypeError, "Linear", "out_features",
            "2.0"),
        row("linear_bool_size", lambda: nn.Linear(True, 3), TypeError, "Linear", "in_features",
            "True"),
        row("linear_str_size", lambda: nn.Linear("4", 3), TypeError, "Linear", "in_features",
            "'4'"),
        # ---- Embedding ------------------------------------------------------------
        row("embedding_float_ids", lambda: nn.Embedding(5, 3)(np.array([1.0, 2.0])), TypeError,
            "Embedding(5, 3)", "float64"),
        row("embedding_float_tensor_ids", lambda: nn.Embedding(5, 3)(Tensor([1.0, 2.0])),
            TypeError, "Embedding(5, 3)", "float32"),
        row("embedding_bool_ids", lambda: nn.Embedding(5, 3)(np.array([True, False])), TypeError,
            "Embedding(5, 3)", "bool"),
        row("embedding_str_ids", lambda: nn.Embedding(5, 3)("hello"), TypeError,
            "Embedding(5, 3)", "<U5"),
        row("embedding_ragged_ids", lambda: nn.Embedding(5, 3)([[1, 2], [3]]), TypeError,
            "Embedding(5, 3)", "ragged"),
        row("embedding_id_too_large", lambda: nn.Embedding(5, 3)(np.array([0, 5])), IndexError,
            "Embedding(5, 3)", "[0, 5)", "max 5"),
        row("embedding_id_too_large_valueerror", lambda: nn.Embedding(5, 3)(np.array([7])),
            ValueError, "Embedding(5, 3)", "max 7"),
        row("embedding_negative_id", lambda: nn.Embedding(5, 3)(np.array([-1, 2])), IndexError,
            "Embedding(5, 3)", "min -1"),
        row("embedding_uint64_huge_id",
            lambda: nn.Embedding(5, 3)(np.array([2 ** 63], dtype=np.uint64)), ValueError,
            "Embedding(5, 3)", str(2 ** 63)),
        row("embedding_negative_size", lambda: nn.Embedding(-1, 3), ValueError, "Embedding",
            "num_embeddings", "-1"),
        row("embedding_float_size", lambda: nn.Embedding(5, 2.5), TypeError, "Embedding",
            "embedding_dim", "2.5"),
        # ---- LayerNorm ------------------------------------------------------------
        row("layernorm_eps_zero", lambda: nn.LayerNorm(4, eps=0), ValueError, "LayerNorm", "eps",
            "0"),
        row("layernorm_eps_negative", lambda: nn.LayerNorm(4, eps=-1e-5), ValueError, "LayerNorm",
            "eps", "-1e-05"),
        row("layernorm_eps_str", lambda: nn.LayerNorm(4, eps="1e-5"), TypeError, "LayerNorm",
            "eps", "'1e-5'"),
        row("layernorm_eps_nan", lambda: nn.LayerNorm(4, eps=float("nan")), ValueError,
            "LayerNorm", "eps", "nan"),
        row("layernorm_negative_shape", lambda: nn.LayerNorm(-4), ValueError, "LayerNorm",
            "normalized_shape", "-4"),
        row("layernorm_float_shape", lambda: nn.LayerNorm(4.0), TypeError, "LayerNorm",
            "normalized_shape", "4.0"),
        row("layernorm_empty_shape", lambda: nn.LayerNorm(()), ValueError, "LayerNorm",
            "normalized_shape", "()"),
        row("layernorm_shape_mismatch", lambda: nn.LayerNorm(4)(Tensor(np.zeros((2, 5)))),
            ValueError, "layer_norm", "(2, 5)", "(4,)"),
        row("layernorm_list_input", lambda: nn.LayerNorm(4)([1.0, 2.0, 3.0, 4.0]), TypeError,
            "LayerNorm", "list"),
        # ---- Dropout --------------------------------------------------------------
        row("dropout_p_above_one", lambda: nn.Dropout(1.5), ValueError, "Dropout", "1.5"),
        row("dropout_p_negative", lambda: nn.Dropout(-0.1), ValueError, "Dropout", "-0.1"),
        row("dropout_p_str", lambda: nn.Dropout("0.1"), TypeError, "Dropout", "'0.1'"),
        row("dropout_p_none", lambda: nn.Dropout(None), TypeError, "Dropout", "None"),
        row("dropout_p_bool", lambda: nn.Dropout(True), TypeError, "Dropout", "True"),
        row("dropout_p_nan", lambda: nn.Dropout(float("nan")), ValueError, "Dropout", "nan"),
        row("dropout_ndarray_input", lambda: nn.Dropout(0.1)(np.zeros(3)), TypeError, "Dropout",
            "ndarray"),
        # ---- positional encodings ---------------------------------------------------
        row("sinusoidal_too_long", lambda: nn.SinusoidalPositionalEncoding(D, 2)(x3()), ValueError,
            "SinusoidalPositionalEncoding", "(2, 3, 8)", "max_len = 2"),
        row("sinusoidal_wrong_d", lambda: nn.SinusoidalPositionalEncoding(4, 10)(x3()), ValueError,
            "SinusoidalPositionalEncoding", "(2, 3, 8)", "d_model = 4"),
        row("sinusoidal_max_len_zero", lambda: nn.SinusoidalPositionalEncoding(4, 0), ValueError,
            "SinusoidalPositionalEncoding", "max_len", "0"),
        row("sinusoidal_max_len_negative", lambda: nn.SinusoidalPositionalEncoding(4, -5),
            ValueError, "SinusoidalPositionalEncoding", "max_len", "-5"),
        row("sinusoidal_max_len_float", lambda: nn.SinusoidalPositionalEncoding(4, 10.5),
            TypeError, "SinusoidalPositionalEncoding", "max_len", "10.5"),
        row("sinusoidal_d_model_zero", lambda: nn.SinusoidalPositionalEncoding(0), ValueError,
            "SinusoidalPositionalEncoding", "d_model", "0"),
        row("sinusoidal_ndarray_input",
            lambda: nn.SinusoidalPositionalEncoding(4, 10)(np.zeros((1, 2, 4))), TypeError,
            "SinusoidalPositionalEncoding", "ndarray"),
        row("sinusoidal_1d_input",
            lambda: nn.SinusoidalPositionalEncoding(4, 10)(Tensor(np.zeros(4))), ValueError,
            "SinusoidalPositionalEncoding", "(4,)"),
        row("sinusoidal_negative_offset",
            lambda: nn.SinusoidalPositionalEncoding(4, 10)(Tensor(np.zeros((1, 2, 4))), offset=-1),
            ValueError, "SinusoidalPositionalEncoding", "offset", "-1"),
        row("learned_too_long", lambda: nn.LearnedPositionalEmbedding(2, D)(x3()), ValueError,
            "LearnedPositionalEmbedding", "(2, 3, 8)", "max_len = 2"),
        row("learned_wrong_d", lambda: nn.LearnedPositionalEmbedding(10, 4)(x3()), ValueError,
            "LearnedPositionalEmbedding", "(2, 3, 8)", "d_model = 4"),
        row("learned_max_len_zero", lambda: nn.LearnedPositionalEmbedding(0, 4), ValueError,
            "LearnedPositionalEmbedding", "max_len", "0"),
        row("learned_d_model_float", lambda: nn.LearnedPositionalEmbedding(10, 4.0), TypeError,
            "LearnedPositionalEmbedding", "d_model", "4.0"),
        # ---- MultiHeadAttention -----------------------------------------------------
        row("mha_zero_heads", lambda: nn.MultiHeadAttention(8, 0), ValueError,
            "MultiHeadAttention", "n_heads", "0"),
        row("mha_negative_heads", lambda: nn.MultiHeadAttention(8, -2), ValueError,
            "MultiHeadAttention", "n_heads", "-2"),
        row("mha_float_d_model", lambda: nn.MultiHeadAttention(8.0, 2), TypeError,
            "MultiHeadAttention", "d_model", "8.0"),
        row("mha_float_heads", lambda: nn.MultiHeadAttention(8, 2.0), TypeError,
            "MultiHeadAttention", "n_heads", "2.0"),
        row("mha_zero_d_model", lambda: nn.MultiHeadAttention(0, 1), ValueError,
            "MultiHeadAttention", "d_model", "0"),
        row("mha_not_divisible", lambda: nn.MultiHeadAttention(8, 3), ValueError,
            "MultiHeadAttention", "8", "3"),
        row("mha_dropout_range", lambda: nn.MultiHeadAttention(8, 2, dropout=2), ValueError,
            "MultiHeadAttention", "dropout", "2"),
        row("mha_list_input", lambda: mha()([[[0.0] * D]]), TypeError, "MultiHeadAttention",
            "query", "list"),
        row("mha_ndarray_key", lambda: mha()(x3(), np.zeros((2, 3, D))), TypeError,
            "MultiHeadAttention", "key", "ndarray"),
        row("mha_2d_input", lambda: mha()(Tensor(np.zeros((3, D)))), ValueError,
            "MultiHeadAttention", "(3, 8)"),
        row("mha_wrong_d", lambda: mha()(x3(d=4)), ValueError, "MultiHeadAttention", "(2, 3, 4)",
            "d_model=8"),
        row("mha_batch_mismatch", lambda: mha()(x3(), x3(B=3)), ValueError, "MultiHeadAttention",
            "(2, 3, 8)", "(3, 3, 8)"),
        row("mha_float_mask", lambda: mha()(x3(), mask=np.zeros((T, T))), TypeError,
            "MultiHeadAttention", "mask", "float64"),
        row("mha_int_mask", lambda: mha()(x3(), mask=np.zeros((T, T), dtype=int)), TypeError,
            "MultiHeadAttention", "mask", "int64"),
        row("mha_mask_shape", lambda: mha()(x3(), mask=np.zeros((4, 4), bool)), ValueError,
            "MultiHeadAttention", "(4, 4)", "(2, 2, 3, 3)"),
        row("mha_mask_3d_batch_equals_heads", lambda: mha()(x3(), mask=np.zeros((2, T, T), bool)),
            ValueError, "MultiHeadAttention", "3-D mask", "(2, 3, 3)", "ambiguous"),
        row("mha_float_padding_mask", lambda: mha()(x3(), key_padding_mask=np.zeros((2, T))),
            TypeError, "MultiHeadAttention", "key_padding_mask", "float64"),
        row("mha_padding_mask_shape",
            lambda: mha()(x3(), key_padding_mask=np.zeros((T, 2), bool)), ValueError,
            "MultiHeadAttention", "key_padding_mask", "(3, 2)", "(2, 3)"),
        row("mha_torch_keyword", lambda: mha()(x3(), attn_mask=None), TypeError,
            "MultiHeadAttention.forward", "attn_mask"),
        # ---- feed-forward and the encoder -------------------------------------------
        row("feedforward_activation_typo", lambda: nn.FeedForward(D, 16, activation="Relu"),
            ValueError, "FeedForward", "'Relu'"),
        row("encoder_activation_typo",
            lambda: nn.TransformerEncoder(1, D, H, 16, activation="gleu"),
            ValueError, "activation", "'gleu'"),
        row("encoder_zero_layers", lambda: nn.TransformerEncoder(0, D, H, 16), ValueError,
            "TransformerEncoder", "num_layers", "0"),
        row("encoder_negative_layers", lambda: nn.TransformerEncoder(-1, D, H, 16), ValueError,
            "TransformerEncoder", "num_layers", "-1"),
        row("encoder_float_layers", lambda: nn.TransformerEncoder(2.0, D, H, 16), TypeError,
            "TransformerEncoder", "num_layers", "2.0"),
        row("decoder_zero_layers", lambda: nn.TransformerDecoder(0, D, H, 16), ValueError,
            "TransformerDecoder", "num_layers", "0"),
        row("decoder_negative_layers", lambda: nn.TransformerDecoder(-2, D, H, 16), ValueError,
            "TransformerDecoder", "num_layers", "-2"),
        row("encoder_negative_d_ff", lambda: nn.TransformerEncoder(1, D, H, -1), ValueError,
            "Linear", "-1"),
        row("encoder_layer_eps_zero",
            lambda: nn.TransformerEncoderLayer(D, H, 16, layer_norm_eps=0),
            ValueError, "LayerNorm", "eps", "0"),
        row("encoder_layer_dropout_range",
            lambda: nn.TransformerEncoderLayer(D, H, 16, dropout=1.5),
            ValueError, "1.5"),
        row("encoder_torch_keyword", lambda: encoder()(x3(), src_mask=None), TypeError,
            "TransformerEncoder.forward", "src_mask"),
        row("encoder_float_mask", lambda: encoder()(x3(), mask=np.zeros((T, T))), TypeError,
            "MultiHeadAttention", "mask", "float64"),
        row("encoder_list_input", lambda: encoder()([[[0.0] * D] * T]), TypeError,
            "MultiHeadAttention", "list"),
        row("causal_mask_float", lambda: nn.causal_mask(2.5), TypeError, "causal_mask", "2.5"),
        row("causal_mask_negative", lambda: nn.causal_mask(-1), ValueError, "causal_mask", "-1"),
        # ---- Module, Parameter, ModuleList ------------------------------------------------
        row("train_mode_str", lambda: linear().train("eval"), TypeError, "train", "'eval'"),
        row("to_int_dtype", lambda: linear().to(np.int32), TypeError, "to", "int32"),
        row("to_bool_dtype", lambda: linear().to(bool), TypeError, "to", "bool"),
        row("to_not_a_dtype", lambda: linear().to("banana"), TypeError, "to", "'banana'"),
        row("parameter_int", lambda: nn.Parameter(np.array([1, 2])), TypeError, "int64"),
        row("parameter_str", lambda: nn.Parameter("abc"), TypeError, "str"),
        row("module_without_super_init", NoSuperInit, AttributeError, "NoSuperInit", "proj",
            "super().__init__()"),
        row("buffer_of_strings", lambda: WithBuffer(["a", "b"]), TypeError, "WithBuffer",
            "'table'", "<U1"),
        row("buffer_assigned_none", lambda: setattr(WithBuffer(np.zeros(2)), "table", None),
            TypeError, "WithBuffer", "'table'", "object"),
        row("modulelist_non_module", lambda: nn.ModuleList([nn.Linear(2, 2), 5]), TypeError,
            "ModuleList", "int"),
        row("modulelist_one_module", lambda: nn.ModuleList(nn.Linear(2, 2)), TypeError,
            "ModuleList", "Linear"),
        row("modulelist_str_index", lambda: nn.ModuleList([nn.Linear(2, 2)])["0"], TypeError,
            "ModuleList", "'0'"),
        row("modulelist_float_index", lambda: nn.ModuleList([nn.Linear(2, 2)])[0.0], TypeError,
            "ModuleList", "0.0"),
        row("modulelist_index_range", lambda: nn.ModuleList([nn.Linear(2, 2)])[3], IndexError,
            "ModuleList", "3"),
        row("modulelist_called", lambda: nn.ModuleList([nn.Linear(2, 2)])(x3()), TypeError,
            "ModuleList"),
        # ---- load_state_dict: every value checked before any is written -------------------
        row("load_string_values", load_str, TypeError, "load_state_dict", "'weight'", "<U1",
            then=load_str_ok),
        row("load_object_values", load_obj, TypeError, "load_state_dict", "'weight'", "object",
            then=load_obj_ok),
        row("load_complex_values", load_complex, TypeError, "load_state_dict", "'weight'",
            "complex128", then=load_complex_ok),
        row("load_misshaped", load_shape, ValueError, "load_state_dict", "weight", "(4, 3)",
            "(3, 4)", then=load_shape_ok),
        row("load_ragged_list", load_ragged, TypeError, "load_state_dict", "'weight'", "list",
            then=load_ragged_ok),
        row("load_missing_key", lambda: linear().load_state_dict({"weight": np.zeros((3, 4))}),
            ValueError, "load_state_dict", "missing: bias"),
        row("load_unexpected_key",
            lambda: linear().load_state_dict({**linear().state_dict(), "extra": np.zeros(1)}),
            ValueError, "load_state_dict", "unexpected: extra"),
        row("load_a_list", lambda: linear().load_state_dict([np.zeros((3, 4)), np.zeros(3)]),
            TypeError, "load_state_dict", "list"),
        row("load_a_module", lambda: linear().load_state_dict(linear()), TypeError,
            "load_state_dict", "Linear", "state_dict()"),
        # ---- optimizers --------------------------------------------------------------
        row("sgd_one_tensor", lambda: optim.SGD(linear().weight, 0.1), TypeError, "SGD",
            "iterable of Tensors", "(3, 4)"),
        row("adam_one_tensor", lambda: optim.Adam(linear().weight), TypeError, "Adam",
            "iterable of Tensors"),
        row("sgd_module", lambda: optim.SGD(linear(), 0.1), TypeError, "SGD", "Linear",
            "model.parameters()"),
        row("adamw_module", lambda: optim.AdamW(encoder()), TypeError, "AdamW",
            "TransformerEncoder", "model.parameters()"),
        row("sgd_state_dict", lambda: optim.SGD(linear().state_dict(), 0.1), TypeError, "SGD",
            "dict", "model.parameters()"),
        row("sgd_named_parameters", lambda: optim.SGD(linear().named_parameters(), 0.1),
            TypeError, "SGD", "params[0]", "tuple", "parameters()"),
        row("sgd_duplicate", lambda: optim.SGD([linear().weight] * 2, 0.1), ValueError, "SGD",
            "params[1]", "params[0]"),
        row("sgd_ndarray_param", lambda: optim.SGD([np.zeros(3)], 0.1), TypeError, "SGD",
            "params[0]", "ndarray"),
        row("sgd_int_param", lambda: optim.SGD([Tensor(np.array([1, 2]))], 0.1), TypeError, "SGD",
            "params[0]", "int64"),
        row("sgd_non_leaf_param",
            lambda: optim.SGD([Tensor(np.zeros(2), requires_grad=True) * 2.0], 0.1), ValueError,
            "SGD", "params[0]", "leaf"),
        row("sgd_empty", lambda: optim.SGD([], 0.1), ValueError, "SGD", "empty"),
        row("sgd_not_iterable", lambda: optim.SGD(3, 0.1), TypeError, "SGD", "int"),
        row("sgd_negative_lr", lambda: sgd(lr=-0.1), ValueError, "SGD", "learning rate", "-0.1"),
        row("sgd_nan_lr", lambda: sgd(lr=float("nan")), ValueError, "SGD", "learning rate", "nan"),
        row("sgd_str_lr", lambda: sgd(lr="0.1"), TypeError, "SGD", "learning rate", "'0.1'"),
        row("sgd_none_lr", lambda: sgd(lr=None), TypeError, "SGD", "learning rate", "None"),
        row("sgd_negative_momentum", lambda: sgd(momentum=-0.9), ValueError, "SGD", "momentum",
            "-0.9"),
        row("sgd_negative_weight_decay", lambda: sgd(weight_decay=-1e-4), ValueError, "SGD",
            "weight_decay", "-0.0001"),
        row("sgd_nesterov_without_momentum", lambda: sgd(nesterov=True), ValueError, "SGD",
            "nesterov", "momentum=0"),
        row("adam_negative_eps", lambda: adam(eps=-1e-8), ValueError, "Adam", "eps", "-1e-08"),
        row("adam_beta1_one", lambda: adam(betas=(1.0, 0.999)), ValueError, "Adam", "betas[0]",
            "1.0"),
        row("adam_beta2_negative", lambda: adam(betas=(0.9, -0.1)), ValueError, "Adam", "betas[1]",
            "-0.1"),
        row("adam_betas_number", lambda: adam(betas=0.9), TypeError, "Adam", "betas", "0.9"),
        row("adam_betas_three", lambda: adam(betas=(0.9, 0.99, 0.999)), TypeError, "Adam",
            "betas", "(0.9, 0.99, 0.999)"),
        row("adam_negative_weight_decay", lambda: adam(weight_decay=-0.01), ValueError, "Adam",
            "weight_decay", "-0.01"),
        row("adamw_negative_weight_decay", lambda: adam(optim.AdamW, weight_decay=-0.01),
            ValueError, "AdamW", "weight_decay", "-0.01"),
        row("adamw_str_lr", lambda: adam(optim.AdamW, lr="1e-3"), TypeError, "AdamW",
            "learning rate", "'1e-3'"),
        row("noam_warmup_zero", lambda: optim.NoamSchedule(sgd(), 16, 0), ValueError,
            "NoamSchedule", "warmup", "0"),
        row("noam_warmup_float", lambda: optim.NoamSchedule(sgd(), 16, 2.5), TypeError,
            "NoamSchedule", "warmup", "2.5"),
        row("noam_d_model_zero", lambda: optim.NoamSchedule(sgd(), 0, 10), ValueError,
            "NoamSchedule", "d_model", "0"),
        row("noam_d_model_negative", lambda: optim.NoamSchedule(sgd(), -4, 10), ValueError,
            "NoamSchedule", "d_model", "-4"),
        row("noam_factor_negative", lambda: optim.NoamSchedule(sgd(), 16, 10, factor=-1),
            ValueError, "NoamSchedule", "factor", "-1"),
        row("noam_not_an_optimizer", lambda: optim.NoamSchedule(linear(), 16, 10), TypeError,
            "NoamSchedule", "Linear"),
        row("clip_max_norm_zero",
            lambda: optim.clip_grad_norm(with_grads(linear()).parameters(), 0),
            ValueError, "clip_grad_norm", "max_norm", "0"),
        row("clip_max_norm_negative",
            lambda: optim.clip_grad_norm(with_grads(linear()).parameters(), -1.0), ValueError,
            "clip_grad_norm", "max_norm", "-1.0"),
        row("clip_max_norm_nan",
            lambda: optim.clip_grad_norm(with_grads(linear()).parameters(), float("nan")),
            ValueError, "clip_grad_norm", "max_norm", "nan"),
        row("clip_max_norm_str", lambda: optim.clip_grad_norm(linear().parameters(), "1"),
            TypeError, "clip_grad_norm", "max_norm", "'1'"),
        row("clip_module", lambda: optim.clip_grad_norm(linear(), 1.0), TypeError,
            "clip_grad_norm", "Linear", "model.parameters()"),
        row("clip_duplicate", lambda: optim.clip_grad_norm([linear().weight] * 2, 1.0), ValueError,
            "clip_grad_norm", "params[1]", "params[0]"),
        # ---- interop -----------------------------------------------------------------
        row("from_torch_encoder_list", lambda: interop.from_torch_encoder([np.zeros(3)]),
            TypeError, "from_torch_encoder", "list"),
        row("from_torch_encoder_module", lambda: interop.from_torch_encoder(encoder()), TypeError,
            "from_torch_encoder", "TransformerEncoder", "state_dict()"),
        row("from_torch_encoder_int_key", lambda: interop.from_torch_encoder({0: np.zeros(3)}),
            TypeError, "from_torch_encoder", "0"),
        row("from_torch_encoder_unknown_key",
            lambda: interop.from_torch_encoder({"layers.0.bogus": np.zeros(3)}), ValueError,
            "from_torch_encoder", "layers.0.bogus"),
        row("from_torch_attention_str_value",
            lambda: interop.from_torch_attention({"in_proj_weight": "weights"}), TypeError,
            "from_torch_attention", "in_proj_weight"),
        row("from_torch_attention_split",
            lambda: interop.from_torch_attention({"in_proj_weight": np.zeros((4, 2))}), ValueError,
            "from_torch_attention", "in_proj_weight", "(4, 2)"),
        row("to_torch_encoder_partial_qkv",
            lambda: interop.to_torch_encoder({"layers.0.self_attn.q_proj.weight":
                                              np.zeros((2, 2))}),
            ValueError, "to_torch_encoder", "k_proj"),
        row("to_torch_attention_none", lambda: interop.to_torch_attention(None), TypeError,
            "to_torch_attention", "NoneType"),
        # ---- viz -------------------------------------------------------------------
        row("draw_graph_ndarray", lambda: viz.draw_graph(np.zeros(3)), TypeError, "draw_graph",
            "ndarray"),
        row("draw_graph_leaf", lambda: viz.draw_graph(Tensor(np.zeros(3))), ValueError,
            "draw_graph", "leaf"),
        row("draw_graph_depth_negative", lambda: viz.draw_graph(graph_output()[0], depth=-1),
            ValueError, "draw_graph", "depth", "-1"),
        row("draw_graph_depth_float", lambda: viz.draw_graph(graph_output()[0], depth=1.5),
            TypeError, "draw_graph", "depth", "1.5"),
        row("draw_graph_model_type", lambda: viz.draw_graph(graph_output()[0], model="encoder"),
            TypeError, "draw_graph", "model", "str"),
        row("draw_graph_backward_not_scalar",
            lambda: viz.draw_graph(linear()(Tensor(np.ones((2, 4)))), backward=True), ValueError,
            "draw_graph", "(2, 3)"),
        row("render_not_a_graph", lambda: viz.render("digraph {}", "out/g.svg"), TypeError,
            "render", "str"),
        row("render_unknown_format", lambda: viz.render(viz.draw_graph(graph_output()[0]), "out/g",
                                                        format="jpg"),
            ValueError, "render", "'jpg'"),
        row("render_format_type", lambda: viz.render(viz.draw_graph(graph_output()[0]), "out/g",
                                                     format=1),
            TypeError, "render", "format", "int"),
        row("render_path_type", lambda: viz.render(viz.draw_graph(graph_output()[0]), 42),
            TypeError, "render", "path", "int"),
        row("heatmap_nan", lambda: viz.attention_heatmap(np.array([[np.nan, 1.0], [0.5, 0.5]]),
                                                         ["a", "b"], ["a", "b"], "out/h.png"),
            ValueError, "attention_heatmap", "NaN", "(0, 0)"),
        row("heatmap_token_count",
            lambda: viz.attention_heatmap(WEIGHTS, ["a"], ["a", "b"], "out/h.png"), ValueError,
            "attention_heatmap", "1 q_tokens", "(2, 2)"),
        row("heatmap_tokens_str",
            lambda: viz.attention_heatmap(WEIGHTS, "ab", ["a", "b"], "out/h.png"), TypeError,
            "attention_heatmap", "q_tokens", "'ab'"),
        row("heatmap_batch", lambda: viz.attention_heatmap(np.full((2, 1, 2, 2), 0.5), ["a", "b"],
                                                           ["a", "b"], "out/h.png"),
            ValueError, "attention_heatmap", "(2, 1, 2, 2)"),
        row("heatmap_scores", lambda: viz.attention_heatmap(np.array([[3.0, -1.0], [0.5, 0.5]]),
                                                            ["a", "b"], ["a", "b"], "out/h.png"),
            ValueError, "attention_heatmap", "-1", "3"),
        row("attention_graph_nan",
            lambda: viz.attention_graph(np.array([[np.inf, 0.0], [0.5, 0.5]]), ["a", "b"],
                                        "out/g.svg"),
            ValueError, "attention_graph", "inf"),
        row("attention_graph_not_square",
            lambda: viz.attention_graph(np.full((2, 3), 0.3), ["a", "b"], "out/g.svg"), ValueError,
            "attention_graph", "(2, 3)"),
        row("attention_graph_scale", lambda: viz.attention_graph(WEIGHTS, ["a", "b"], "out/g.svg",
                                                                 scale="max"),
            ValueError, "attention_graph", "'max'"),
        row("positional_encoding_1d", lambda: viz.positional_encoding(np.zeros(5), "out/pe.png"),
            ValueError, "positional_encoding", "(5,)"),
        row("positional_encoding_nan",
            lambda: viz.positional_encoding(np.array([[0.5, np.nan], [0.1, 0.2]]), "out/pe.png"),
            ValueError, "positional_encoding", "NaN"),
        row("loss_curve_empty", lambda: viz.loss_curve([], "out/loss.png"), ValueError,
            "loss_curve", "empty"),
    ]


def checkpoint_rows():
    """Rows that need a directory of their own (made per row by the test)."""
    return [
        pytest.param("missing_dir", lambda tmp: nn.save(linear(), os.path.join(tmp, "no", "m.npz")),
                     FileNotFoundError, ["save", os.path.join("no", "m.npz"), "does not exist"],
                     id="save_missing_directory"),
        pytest.param("a_directory", lambda tmp: nn.save(linear(), os.path.join(tmp, "a_directory")),
                     IsADirectoryError, ["save", "a_directory"], id="save_onto_a_directory"),
        pytest.param("str_value", lambda tmp: nn.save({"w": "hello"}, os.path.join(tmp, "m.npz")),
                     TypeError, ["save", "'w'", "<U5"], id="save_string_value"),
        pytest.param("none_value", lambda tmp: nn.save({"w": None}, os.path.join(tmp, "m.npz")),
                     TypeError, ["save", "'w'", "object"], id="save_none_value"),
        pytest.param("ragged_value", lambda tmp: nn.save({"w": [[1.0], [1.0, 2.0]]},
                                                         os.path.join(tmp, "m.npz")),
                     TypeError, ["save", "'w'", "ragged"], id="save_ragged_value"),
        pytest.param("int_key", lambda tmp: nn.save({1: np.zeros(2)}, os.path.join(tmp, "m.npz")),
                     TypeError, ["save", "1"], id="save_int_key"),
        pytest.param("list", lambda tmp: nn.save([np.zeros(2)], os.path.join(tmp, "m.npz")),
                     TypeError, ["save", "list"], id="save_a_list"),
        pytest.param("path_none", lambda tmp: nn.save(linear(), None), TypeError,
                     ["save", "path", "NoneType"], id="save_path_none"),
        pytest.param("load_path_none", lambda tmp: nn.load(None), TypeError,
                     ["load", "path", "NoneType"], id="load_path_none"),
        pytest.param("load_missing", lambda tmp: nn.load(os.path.join(tmp, "nothing.npz")),
                     FileNotFoundError, ["nothing.npz"], id="load_missing_file"),
        pytest.param("load_not_npz", lambda tmp: (open(os.path.join(tmp, "x.npz"), "w").write("hi"),
                                                  nn.load(os.path.join(tmp, "x.npz"))),
                     ValueError, ["x.npz", "not a valid .npz"], id="load_text_file"),
    ]


@pytest.mark.parametrize("call, error, fragments, then", rows())
def test_wrong_call_raises_a_clear_error(call, error, fragments, then, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # viz rows that get as far as writing write here
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    if then is not None:
        assert then(), "the failed call changed something"


@pytest.mark.parametrize("kind, call, error, fragments", checkpoint_rows())
def test_wrong_checkpoint_call_raises_and_leaves_nothing(kind, call, error, fragments, tmp_path):
    if kind == "a_directory":
        (tmp_path / "a_directory").mkdir()
    with pytest.raises(error) as info:
        call(str(tmp_path))
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert ".tmp" not in message  # the error names the user's file, never the temporary one
    leftovers = [f for f in os.listdir(tmp_path) if f not in ("a_directory", "x.npz")]
    assert leftovers == []


def test_a_save_that_fails_midway_removes_its_temp_file(tmp_path, monkeypatch):
    """A crash (here: the disk fills up, then Ctrl-C) while the archive is
    written: no hidden temp file stays, the old checkpoint is intact, and the
    error names the file the user asked for."""
    path = tmp_path / "model.npz"
    nn.save({"w": np.arange(3.0)}, path)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / ".model.npz.0000.tmp"))

    monkeypatch.setattr(np.lib.format, "write_array", disk_full)
    with pytest.raises(OSError) as info:
        nn.save({"w": np.zeros(3)}, path)
    assert str(path) in str(info.value) and "No space left" in str(info.value)
    assert ".tmp" not in str(info.value)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nn.save({"w": np.zeros(3)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.npz"]
    np.testing.assert_array_equal(nn.load(path)["w"], np.arange(3.0))


def test_a_failed_rename_removes_its_temp_file(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", src, dst)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError) as info:
        nn.save({"w": np.zeros(3)}, tmp_path / "m.npz")
    assert str(tmp_path / "m.npz") in str(info.value) and ".tmp" not in str(info.value)
    assert os.listdir(tmp_path) == []


# ----- answers that were silently wrong and are now right ------------------------
INT_WIDTHS = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


@pytest.mark.parametrize("dtype", INT_WIDTHS, ids=lambda d: np.dtype(d).name)
def test_embedding_gradients_are_the_same_for_every_integer_width(dtype):
    ids = np.array([[1, 4, 1], [0, 4, 4]])
    grads = {}
    for width in (np.int64, dtype):
        manual_seed(0)
        emb = nn.Embedding(5, 3)
        out = emb(ids.astype(width))
        (out * Tensor(np.arange(18.0).reshape(2, 3, 3))).sum().backward()
        grads[width] = emb.weight.grad
    want = np.zeros((5, 3))
    np.add.at(want, ids.ravel(), np.arange(18.0).reshape(6, 3))
    np.testing.assert_array_equal(grads[np.int64], want)
    np.testing.assert_array_equal(grads[dtype], want)


def test_embedding_of_an_empty_batch_is_empty():
    emb = nn.Embedding(5, 3)
    out = emb(np.zeros((0, 4), dtype=np.int64))
    assert out.shape == (0, 4, 3)
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad, np.zeros((5, 3)))


def test_empty_sequences_give_empty_results():
    """T = 0 through softmax, attention and the encoder: the empty result, as PyTorch."""
    assert F.softmax(Tensor(np.zeros((2, 0))), axis=-1).shape == (2, 0)
    attention = mha()
    assert attention(x3(T_=0)).shape == (2, 0, D)
    assert attention.attn_weights.shape == (2, H, 0, 0)
    assert encoder()(x3(T_=0)).shape == (2, 0, D)
    # no keys at all: every query gets zero weights, so the output is out_proj's bias
    out = attention(x3(), x3(T_=0))
    np.testing.assert_allclose(out.data, np.broadcast_to(attention.out_proj.bias.data, (2, T, D)))


def test_empty_batches_give_empty_results():
    assert mha()(x3(B=0)).shape == (0, T, D)
    assert encoder()(x3(B=0)).shape == (0, T, D)
    assert linear()(Tensor(np.zeros((0, 4)))).shape == (0, 3)


def test_linear_with_no_inputs_is_its_bias():
    lin = nn.Linear(0, 3)
    np.testing.assert_array_equal(lin(Tensor(np.zeros((2, 0)))).data,
                                  np.broadcast_to(lin.bias.data, (2, 3)))


def test_clip_grad_norm_clips_one_tensor():
    w = nn.Parameter(np.zeros(3))
    w.grad = np.full(3, 10.0)
    total = optim.clip_grad_norm(w, 1.0)
    assert total == pytest.approx(np.sqrt(300.0))
    np.testing.assert_allclose(np.linalg.norm(w.grad), 1.0, rtol=1e-5)


def test_a_generator_of_parameters_trains():
    model = with_grads(linear())
    before = model.weight.data.copy()
    optim.SGD((p for p in model.parameters()), lr=0.5).step()
    np.testing.assert_allclose(model.weight.data, before - 0.5)


def test_a_frozen_parameter_is_accepted_and_left_alone():
    model = with_grads(linear())
    model.bias.requires_grad = False
    model.bias.grad = None
    bias = model.bias.data.copy()
    optim.Adam(model.parameters(), lr=0.1).step()
    np.testing.assert_array_equal(model.bias.data, bias)


def test_load_state_dict_takes_tensors_lists_and_nan():
    model = linear()
    model.load_state_dict({"weight": Tensor(np.full((3, 4), np.nan)), "bias": [1, 2, 3]})
    assert np.isnan(model.weight.data).all() and model.weight.dtype == np.float32
    np.testing.assert_array_equal(model.bias.data, [1.0, 2.0, 3.0])


def test_odd_d_model_sinusoidal_follows_the_formula():
    """d_model = 5: sines on dimensions 0, 2, 4 and cosines on 1, 3, each pair
    at the frequency 10000^(-2i/d) of its even dimension."""
    pe = nn.SinusoidalPositionalEncoding(5, max_len=4).to(np.float64).pe
    pos, dim = np.arange(4)[:, None], np.arange(5)[None, :]
    angle = pos / 10000.0 ** ((dim - dim % 2) / 5)
    np.testing.assert_allclose(pe, np.where(dim % 2 == 0, np.sin(angle), np.cos(angle)),
                               rtol=0, atol=1e-15)


def test_mean_and_var_over_an_empty_axis_are_nan():
    assert np.isnan(Tensor(np.zeros((2, 0))).mean(axis=1).data).all()
    assert np.isnan(Tensor(np.zeros((2, 0))).var(axis=1).data).all()


def test_max_sends_its_gradient_to_the_nan():
    a = Tensor(np.array([1.0, np.nan, 3.0]), requires_grad=True)
    a.max().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 1.0, 0.0])


def test_matmul_backward_with_a_zero_size():
    w = Tensor(np.zeros((0, 3)), requires_grad=True)
    v = Tensor(np.ones((3, 2)), requires_grad=True)
    (w @ v).sum().backward()
    assert w.grad.shape == (0, 3)
    np.testing.assert_array_equal(v.grad, np.zeros((3, 2)))


def test_mixed_integer_and_array_indices_follow_pytorch():
    """x[0, :, [1, 2]]: an integer and an index array separated by a slice.
    numpy puts the broadcast axis first, (2, 3, 5); PyTorch takes the integer
    first, x[0][:, [1, 2]], (3, 2, 5). The engine follows PyTorch."""
    x = np.arange(120.0).reshape(2, 3, 4, 5)
    got = Tensor(x)[0, :, [1, 2]]
    assert got.shape == (3, 2, 5)
    np.testing.assert_array_equal(got.data, x[0][:, [1, 2]])


def test_the_table_has_at_least_a_hundred_rows():
    assert len(rows()) + len(checkpoint_rows()) >= 100
