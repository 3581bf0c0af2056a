"""Wrong calls to the tensor API's new functions: each a clear error that
names the op and the offending value, never a numpy traceback or a silent
wrong answer."""
import numpy as np
import pytest

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor

from conftest import assert_raises_naming

X = Tensor(np.arange(6.0).reshape(2, 3))
IDX = np.array([[0, 1], [2, 0]])

# name: (call, error type, fragments the message must contain)
CASES = {
    # gather and masked_select
    "gather_int8_index": (lambda: X.gather(1, IDX.astype(np.int8)), TypeError,
                          ["gather", "int8", "int64"]),
    "gather_float_index": (lambda: X.gather(1, IDX.astype(float)), TypeError,
                           ["gather", "float64"]),
    "gather_bool_index": (lambda: X.gather(1, IDX > 0), TypeError, ["gather", "bool"]),
    "gather_out_of_range": (lambda: X.gather(1, np.array([[0, 3]])), IndexError,
                            ["gather", "3", "size 3"]),
    "gather_negative": (lambda: X.gather(1, np.array([[-1, 0]])), IndexError, ["gather", "-1"]),
    "gather_ndim": (lambda: X.gather(1, np.array([0, 1])), ValueError,
                    ["gather", "(2,)", "(2, 3)"]),
    "gather_too_big": (lambda: X.gather(1, np.zeros((3, 1), np.int64)), ValueError,
                       ["gather", "(3, 1)", "(2, 3)"]),
    "masked_select_int_mask": (lambda: X.masked_select(np.ones((2, 3), int)), TypeError,
                               ["masked_select", "boolean", "int64"]),
    "masked_select_shape": (lambda: X.masked_select(np.ones((4,), bool)), ValueError,
                            ["masked_select", "(2, 3)", "(4,)"]),
    # einsum
    "einsum_operand_count": (lambda: Tensor.einsum("ij,jk->ik", X), ValueError,
                             ["einsum", "2 operands", "1 tensors"]),
    "einsum_unknown_output": (lambda: Tensor.einsum("ij->k", X), ValueError,
                              ["einsum", "'ij->k'", "output letter"]),
    "einsum_output_repeats": (lambda: Tensor.einsum("ij->ii", X), ValueError, ["einsum"]),
    "einsum_axes_count": (lambda: Tensor.einsum("ijk->i", X), ValueError,
                          ["einsum", "'ijk'", "(2, 3)"]),
    "einsum_sizes": (lambda: Tensor.einsum("ij,jk->ik", X, X), ValueError,
                     ["einsum", "'j'", "3 and 2"]),
    "einsum_bad_character": (lambda: Tensor.einsum("i$,j->i", X, X), ValueError,
                             ["einsum", "'i$'"]),
    "einsum_not_a_tensor": (lambda: Tensor.einsum("ij->ji", X.data), TypeError,
                            ["einsum", "operand 0", "ndarray"]),
    "einsum_list_operand": (lambda: Tensor.einsum("i,i->", [X, [1, 2]]), TypeError,
                            ["einsum", "operand 1", "list"]),
    "einsum_equation_type": (lambda: Tensor.einsum(3, X), TypeError, ["einsum", "string"]),
    # elementwise
    "clamp_min_above_max": (lambda: X.clamp(2, 1), ValueError, ["clamp", "min 2", "max 1"]),
    "clamp_tensor_bounds_cross": (lambda: X.clamp(Tensor([0.0, 5.0, 0.0]), 4.0), ValueError,
                                  ["clamp", "greater than max"]),
    "clamp_nothing": (lambda: X.clamp(), ValueError, ["clamp", "min, max"]),
    "clamp_string": (lambda: X.clamp(min="0"), TypeError, ["clamp", "min", "str"]),
    "maximum_string": (lambda: X.maximum("a"), TypeError, ["maximum", "str"]),
    "maximum_shapes": (lambda: X.maximum(Tensor([1.0, 2.0])), ValueError,
                       ["maximum", "(2, 3)", "(2,)"]),
    "pow_tensor_shapes": (lambda: X ** Tensor([1.0, 2.0]), ValueError, ["pow", "(2, 3)", "(2,)"]),
    "round_float_decimals": (lambda: X.round(1.5), TypeError, ["round", "decimals", "1.5"]),
    "and_on_floats": (lambda: X & X, TypeError, ["and", "boolean", "float32"]),
    "or_with_string": (lambda: (X > 1) | "a", TypeError, ["or", "str"]),
    "invert_float": (lambda: ~X, TypeError, ["invert", "float32"]),
    "xor_shapes": (lambda: (X > 1) ^ np.ones(4, bool), ValueError, ["xor", "(2, 3)", "(4,)"]),
    # shapes
    "unsqueeze_range": (lambda: X.unsqueeze(3), ValueError, ["unsqueeze", "3"]),
    "unsqueeze_float": (lambda: X.unsqueeze(1.0), TypeError, ["unsqueeze", "1.0"]),
    "squeeze_range": (lambda: X.squeeze(2), ValueError, ["squeeze", "2"]),
    "flatten_order": (lambda: X.flatten(1, 0), ValueError, ["flatten", "1", "0"]),
    "unflatten_sizes": (lambda: X.unflatten(1, (2, 2)), ValueError,
                        ["unflatten", "(2, 2)", "3"]),
    "repeat_too_few": (lambda: X.repeat(2), ValueError, ["repeat", "(2, 3)", "(2,)"]),
    "repeat_negative": (lambda: X.repeat(2, -1), ValueError, ["repeat", "-1"]),
    "flip_repeat_axis": (lambda: X.flip(0, 0), ValueError, ["flip", "repeats"]),
    "chunk_zero": (lambda: X.chunk(0), ValueError, ["chunk", "chunks", "0"]),
    "chunk_0d": (lambda: Tensor(1.0).chunk(2), ValueError, ["chunk", "0-d"]),
    "tril_1d": (lambda: Tensor([1.0, 2.0]).tril(), ValueError, ["tril", "(2,)"]),
    "triu_float_diagonal": (lambda: X.triu(0.5), TypeError, ["triu", "diagonal", "0.5"]),
    # reductions
    "argmax_empty": (lambda: Tensor(np.zeros(0)).argmax(), ValueError, ["argmax", "(0,)"]),
    "argmin_axis": (lambda: X.argmin(2), ValueError, ["argmin", "axis 2"]),
    "min_empty": (lambda: Tensor(np.zeros((0, 2))).min(), ValueError, ["max", "(0, 2)"]),
    "cumsum_axis": (lambda: X.cumsum(2), ValueError, ["cumsum", "axis 2"]),
    "cumsum_no_axis": (lambda: X.cumsum(), TypeError, ["cumsum", "axis"]),
    "prod_axis": (lambda: X.prod(-3), ValueError, ["prod", "-3"]),
    "logsumexp_axis_type": (lambda: X.logsumexp("0"), TypeError, ["logsumexp", "'0'"]),
    "var_both_corrections": (lambda: X.var(correction=1, unbiased=True), TypeError,
                             ["var", "correction", "unbiased"]),
    "var_string_correction": (lambda: X.var(correction="1"), TypeError, ["var", "correction"]),
    "dim_and_axis": (lambda: X.sum(axis=0, dim=0), TypeError, ["sum", "dim=", "axis="]),
    "keepdim_and_keepdims": (lambda: X.std(keepdims=True, keepdim=True), TypeError,
                             ["std", "keepdim=", "keepdims="]),
    # casts
    "to_cuda": (lambda: X.to("cuda"), ValueError, ["to", "cuda"]),
    "to_nonsense": (lambda: X.to("floaty"), TypeError, ["to", "floaty"]),
    "to_complex": (lambda: X.to(np.complex64), TypeError, ["to", "complex64"]),
    "to_two_dtypes": (lambda: X.to(np.float64, np.int32), TypeError, ["to", "more than one"]),
    "type_as_array": (lambda: X.type_as(np.zeros(2)), TypeError, ["type_as", "ndarray"]),
    # constructors
    "arange_step_zero": (lambda: Tensor.arange(0, 3, 0), ValueError, ["arange", "step"]),
    "arange_string": (lambda: Tensor.arange("3"), TypeError, ["arange", "'3'"]),
    "linspace_negative": (lambda: Tensor.linspace(0, 1, -1), ValueError, ["linspace", "-1"]),
    "linspace_float_steps": (lambda: Tensor.linspace(0, 1, 2.5), TypeError, ["linspace", "2.5"]),
    "eye_negative": (lambda: Tensor.eye(-2), ValueError, ["eye", "-2"]),
    "full_string": (lambda: Tensor.full((2,), "a"), TypeError, ["full", "'a'"]),
    "full_negative": (lambda: Tensor.full((2, -1), 0.0), ValueError, ["full", "(2, -1)"]),
    "randint_empty_range": (lambda: Tensor.randint(3, 3, (2,)), ValueError, ["randint", "3"]),
    "randint_no_size": (lambda: Tensor.randint(3), TypeError, ["randint", "size"]),
    "randint_float_dtype": (lambda: Tensor.randint(3, (2,), dtype=np.float32), TypeError,
                            ["randint", "float32"]),
    "rand_int_dtype": (lambda: Tensor.rand(2, dtype=np.int64), TypeError, ["rand", "int64"]),
    # losses
    "nll_list_input": (lambda: F.nll_loss([[0.0, 1.0]], [0]), TypeError,
                       ["nll_loss", "log_probs", "list"]),
    "nll_target_range": (lambda: F.nll_loss(X, [0, 3]), ValueError, ["nll_loss", "3", "[0, 3)"]),
    "nll_target_float": (lambda: F.nll_loss(X, [0.0, 1.0]), TypeError,
                         ["nll_loss", "integer", "float64"]),
    "nll_target_shape": (lambda: F.nll_loss(X, [0, 1, 2]), ValueError,
                         ["nll_loss", "(2, 3)", "(3,)"]),
    "loss_reduction": (lambda: F.cross_entropy(X, [0, 1], reduction="avg"), ValueError,
                       ["cross_entropy", "reduction", "'avg'"]),
    "ce_probabilities_ignore": (lambda: F.cross_entropy(X, np.full((2, 3), 1 / 3),
                                                        ignore_index=0), ValueError,
                                ["cross_entropy", "ignore_index", "probability"]),
    "ce_probabilities_shape": (lambda: F.cross_entropy(X, np.full((2, 4), 0.25)), TypeError,
                               ["cross_entropy", "(2, 4)"]),
    "mse_shapes": (lambda: F.mse_loss(X, np.zeros((2, 1))), ValueError,
                   ["mse_loss", "(2, 3)", "(2, 1)"]),
    "mse_reduction": (lambda: F.mse_loss(X, X, reduction=None), ValueError,
                      ["mse_loss", "reduction", "None"]),
    "mse_list_input": (lambda: F.mse_loss([1.0], [1.0]), TypeError, ["mse_loss", "input"]),
    "bce_shapes": (lambda: F.binary_cross_entropy_with_logits(X, np.zeros(3)), ValueError,
                   ["binary_cross_entropy_with_logits", "(3,)", "(2, 3)"]),
    "one_hot_float": (lambda: F.one_hot(np.array([0.0, 1.0]), 2), TypeError,
                      ["one_hot", "float64"]),
    "one_hot_range": (lambda: F.one_hot(np.array([0, 3]), 3), ValueError,
                      ["one_hot", "[0, 3)", "3"]),
    "one_hot_negative": (lambda: F.one_hot(np.array([-1, 0]), 3), ValueError,
                         ["one_hot", "-1"]),
    "one_hot_empty_infer": (lambda: F.one_hot(np.zeros(0, np.int64)), ValueError,
                            ["one_hot", "num_classes"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_wrong_call_names_the_op(name):
    assert_raises_naming(*CASES[name])


def test_masked_select_refuses_a_float_mask():
    with pytest.raises(TypeError, match="masked_select: mask must be boolean"):
        X.masked_select(X.data * 1.0)
