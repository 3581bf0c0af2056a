"""Bad input raises a ValueError or TypeError that names the op and the
shapes involved, never a bare numpy traceback from deep inside."""
import re

import numpy as np
import pytest

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor
from tinygrad_enc.gradcheck import GradcheckError, gradcheck
from tinygrad_enc.ops import Op
from tinygrad_enc.tensor import apply

X23 = Tensor(np.zeros((2, 3)))
Q = Tensor(np.zeros((2, 3, 4)))
FLOAT_MASK = np.zeros((2, 3))

# name: (call, exception, every fragment the message must contain)
CASES = {
    "matmul_inner": (lambda: X23 @ Tensor(np.zeros((4, 5))), ValueError,
                     ["matmul: (2, 3) @ (4, 5): inner sizes 3 and 4 differ"]),
    "matmul_vector": (lambda: Tensor(np.zeros(3)) @ Tensor(np.zeros(4)), ValueError,
                      ["matmul", "(3,) @ (4,)", "3 and 4"]),
    "matmul_batch": (lambda: Tensor(np.zeros((2, 2, 3))) @ Tensor(np.zeros((3, 3, 2))), ValueError,
                     ["matmul", "(2, 2, 3) @ (3, 3, 2)", "batch"]),
    "matmul_scalar": (lambda: X23 @ Tensor(2.0), ValueError, ["matmul", "(2, 3) @ ()"]),
    "add_broadcast": (lambda: X23 + Tensor(np.zeros(4)), ValueError, ["add", "(2, 3)", "(4,)"]),
    "mul_broadcast": (lambda: X23 * np.zeros((3, 2)), ValueError, ["mul", "(2, 3)", "(3, 2)"]),
    "div_broadcast": (lambda: Tensor(np.zeros(5)) / X23, ValueError, ["div", "(5,)", "(2, 3)"]),
    "reshape_size": (lambda: X23.reshape(4, 2), ValueError, ["reshape", "(2, 3)", "(4, 2)"]),
    "reshape_minus_one": (lambda: X23.reshape(-1, 4), ValueError, ["reshape", "(2, 3)", "(-1, 4)"]),
    "reshape_two_minus_ones": (lambda: X23.view(-1, -1), ValueError, ["reshape", "-1"]),
    "sum_axis": (lambda: X23.sum(axis=2), ValueError, ["sum", "axis 2", "2 dimensions"]),
    "mean_axis": (lambda: X23.mean(axis=-3), ValueError, ["mean", "axis -3"]),
    "max_axis": (lambda: Q.max(axis=(0, 3)), ValueError, ["max", "axis 3", "3 dimensions"]),
    "var_repeat": (lambda: Q.var(axis=(1, -2)), ValueError, ["var", "repeats"]),
    "axis_type": (lambda: X23.mean(axis=1.5), TypeError, ["mean", "axis", "1.5"]),
    "softmax_axis": (lambda: F.softmax(X23, axis=2), ValueError, ["softmax", "axis 2"]),
    "transpose_axis": (lambda: X23.transpose(0, 5), ValueError, ["transpose", "axis 5"]),
    "permute_short": (lambda: Q.permute(0, 1), ValueError, ["permute", "(0, 1)", "(2, 3, 4)"]),
    "permute_range": (lambda: Q.permute(3, 1, 2), ValueError, ["permute", "axis 3"]),
    "expand_grow": (lambda: X23.expand(3, 3), ValueError, ["expand", "(2, 3)", "(3, 3)"]),
    "expand_fewer": (lambda: X23.expand(3), ValueError, ["expand", "(2, 3)", "(3,)"]),
    "cat_shapes": (lambda: Tensor.cat([X23, Tensor(np.zeros((3, 3)))], axis=1), ValueError,
                   ["cat", "(2, 3)", "(3, 3)"]),
    "cat_empty": (lambda: Tensor.cat([]), ValueError, ["cat"]),
    "cat_ndarray": (lambda: Tensor.cat([X23, np.zeros((2, 3))]), TypeError,
                    ["cat", "element 1", "ndarray"]),
    "cat_one_tensor": (lambda: Tensor.cat(X23), TypeError, ["cat", "list", "Tensor"]),
    "stack_list": (lambda: Tensor.stack([[1.0, 2.0], X23]), TypeError, ["stack", "element 0", "list"]),
    "stack_shapes": (lambda: Tensor.stack([X23, Tensor(np.zeros((3, 2)))]), ValueError,
                     ["stack", "(2, 3)", "(3, 2)"]),
    "split_sizes": (lambda: X23.split([1, 1], axis=1), ValueError, ["split", "[1, 1]", "(2, 3)"]),
    "split_negative": (lambda: Tensor(np.zeros(3)).split([5, -2]), ValueError,
                       ["split", "[5, -2]", "negative"]),
    "split_zero": (lambda: X23.split(0), ValueError, ["split", "0"]),
    "getitem_range": (lambda: X23[:, [0, 7]], IndexError, ["getitem", "(2, 3)", "7"]),
    "pow_string": (lambda: X23 ** "2", TypeError, ["pow", "exponent", "str"]),
    "rpow_string_base": (lambda: "2" ** X23, TypeError, ["pow", "str"]),
    "gelu_mode": (lambda: X23.gelu("fast"), ValueError, ["gelu", "'fast'"]),
    "item": (lambda: X23.item(), ValueError, ["item", "(2, 3)"]),
    "len_0d": (lambda: len(Tensor(1.0)), TypeError, ["len() of a 0-d tensor"]),
    "bool": (lambda: bool(X23), ValueError, ["(2, 3)", "ambiguous"]),
    "ragged": (lambda: Tensor([[1.0, 2.0], [3.0]]), TypeError, ["Tensor", "ragged"]),
    "string": (lambda: Tensor("abc"), TypeError, ["Tensor", "str"]),
    "integer_requires_grad": (lambda: Tensor([1, 2], requires_grad=True), TypeError,
                              ["floating-point", "int64"]),
    "backward_non_scalar": (lambda: Tensor(np.zeros((2, 3)), requires_grad=True).exp().backward(),
                            RuntimeError, ["backward", "(2, 3)", "scalar"]),
    "backward_no_grad": (lambda: X23.sum().backward(), RuntimeError, ["backward", "require grad"]),
    "backward_grad_shape": (lambda: Tensor(np.zeros((2, 3)), requires_grad=True)
                            .backward(np.ones(3)), ValueError, ["backward", "(3,)", "(2, 3)"]),
    # masks
    "masked_fill_dtype": (lambda: X23.masked_fill(FLOAT_MASK, 1.0), TypeError,
                          ["masked_fill", "boolean", "float64"]),
    "masked_fill_shape": (lambda: X23.masked_fill(np.zeros((2, 3, 3), bool), 1.0), ValueError,
                          ["masked_fill", "(2, 3, 3)", "(2, 3)"]),
    "masked_fill_small": (lambda: X23.masked_fill(np.zeros(2, bool), 1.0), ValueError,
                          ["masked_fill", "(2,)", "(2, 3)"]),
    "masked_fill_vector_value": (lambda: X23.masked_fill(np.ones((2, 3), bool), Tensor([1.0, 2.0])),
                                 ValueError, ["masked_fill", "value", "0-d", "(2,)"]),
    "masked_fill_none": (lambda: X23.masked_fill(np.ones((2, 3), bool), None), TypeError,
                         ["masked_fill", "NoneType"]),
    "where_dtype": (lambda: Tensor.where(FLOAT_MASK, X23, 0.0), TypeError,
                    ["where", "condition", "boolean", "float64"]),
    "where_shapes": (lambda: Tensor.where(np.zeros((2, 3), bool), X23, Tensor(np.zeros(4))),
                     ValueError, ["where", "(2, 3)", "(4,)"]),
    "sdpa_mask_dtype": (lambda: F.scaled_dot_product_attention(Q, Q, Q, mask=np.zeros((3, 3), int)),
                        TypeError, ["scaled_dot_product_attention", "boolean", "int64"]),
    "sdpa_mask_shape": (lambda: F.scaled_dot_product_attention(Q, Q, Q,
                                                               mask=np.zeros((4, 3), bool)),
                        ValueError, ["scaled_dot_product_attention", "(4, 3)", "(2, 3, 3)"]),
    "sdpa_shapes": (lambda: F.scaled_dot_product_attention(Q, Tensor(np.zeros((2, 3, 5))), Q),
                    ValueError, ["scaled_dot_product_attention", "(2, 3, 4)", "(2, 3, 5)"]),
    # functional arguments
    "ce_target_shape": (lambda: F.cross_entropy(X23, [0, 1, 2]), ValueError,
                        ["cross_entropy", "(2, 3)", "(2,)", "(3,)"]),
    "ce_target_shape_BTC": (lambda: F.cross_entropy(Q, np.zeros((3, 2), int)), ValueError,
                            ["cross_entropy", "(2, 3, 4)", "(2, 3)", "(3, 2)"]),
    "ce_target_dtype": (lambda: F.cross_entropy(X23, np.array([0.0, 1.0])), TypeError,
                        ["cross_entropy", "integer", "float64"]),
    "ce_target_range": (lambda: F.cross_entropy(X23, [0, 3]), ValueError,
                        ["cross_entropy", "3", "[0, 3)"]),
    "ce_logits_ndim": (lambda: F.cross_entropy(Tensor(np.zeros(3)), [0]), ValueError,
                       ["cross_entropy", "(3,)"]),
    "ce_smoothing": (lambda: F.cross_entropy(X23, [0, 1], label_smoothing=2), ValueError,
                     ["cross_entropy", "label_smoothing"]),
    "layer_norm_shape": (lambda: F.layer_norm(Q, (3,)), ValueError,
                         ["layer_norm", "(2, 3, 4)", "(3,)"]),
    "dropout_p": (lambda: F.dropout(Q, 1.5), ValueError, ["dropout", "1.5"]),
    "lt_broadcast": (lambda: X23 < Tensor(np.ones(4)), ValueError,
                     ["lt: shapes (2, 3) and (4,) do not broadcast together"]),
    "eq_broadcast": (lambda: X23 == np.ones(4), ValueError, ["eq", "(2, 3)", "(4,)"]),
    "ge_none": (lambda: X23 >= None, TypeError, ["ge", "float32", "NoneType"]),
    # operands that are not numbers (numpy would make NaN of None, parse strings)
    "mul_none": (lambda: X23 * None, TypeError,
                 ["mul: cannot combine a float32 tensor with NoneType"]),
    "radd_string": (lambda: "1.5" + X23, TypeError, ["add", "float32", "str"]),
    "add_string": (lambda: X23 + "1.5", TypeError, ["add", "float32", "str"]),
    "sub_string_list": (lambda: X23 - ["a", "b", "c"], TypeError, ["sub", "list"]),
    "div_object": (lambda: X23 / object(), TypeError, ["div", "object"]),
    "matmul_none": (lambda: X23 @ None, TypeError, ["matmul", "NoneType"]),
    "int_mul_none": (lambda: Tensor([1, 2]) * None, TypeError, ["mul", "int64", "NoneType"]),
    "where_none": (lambda: Tensor.where(np.zeros((2, 3), bool), X23, None), TypeError,
                   ["where", "NoneType"]),
    "where_none_first": (lambda: Tensor.where(np.zeros((2, 3), bool), None, 1.0), TypeError,
                         ["where", "NoneType"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_error_names_the_op_and_shapes(name):
    call, error, fragments = CASES[name]
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# ----- gradcheck's own errors -------------------------------------------------------
def test_gradcheck_refuses_float32():
    with pytest.raises(TypeError, match="gradcheck: input 0 is float32.*float64"):
        gradcheck(lambda x: x * 2, [Tensor([1.0, 2.0], requires_grad=True)])


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="gradcheck: no input has requires_grad"):
        gradcheck(lambda x: x * 2, [Tensor([1.0], dtype=np.float64)])


class WrongSquare(Op):
    """x^2 with a backward that is wrong at one element only: (1, 2)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, g):
        grad = 2 * self.x * g
        grad[1, 2] += 0.5
        return grad


class NaNBackward(Op):
    """The identity, with a NaN gradient."""

    def forward(self, x):
        return x * 1.0

    def backward(self, g):
        return g * np.nan


class NaNNearby(Op):
    """The identity at x = 0.5 exactly, NaN a step away: the numeric gradient
    is NaN while the analytic one looks fine."""

    def forward(self, x):
        return x + np.where(x == 0.5, 0.0, np.nan)

    def backward(self, g):
        return g


def test_gradcheck_names_the_worst_element():
    x = Tensor(np.arange(6.0).reshape(2, 3) / 6, dtype=np.float64, requires_grad=True)
    y = Tensor(np.ones(3), dtype=np.float64, requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda a, b: apply(WrongSquare, a) + b, [x, y])
    message = str(info.value)
    assert "input 0 of shape (2, 3), element (1, 2)" in message
    analytic, numeric = map(float, re.search(r"analytic (\S+) vs numeric (\S+)", message).groups())
    assert abs(analytic - numeric) > 0.1


@pytest.mark.parametrize("op", [NaNBackward, NaNNearby], ids=["analytic", "numeric"])
def test_gradcheck_fails_on_a_nan_gradient(op):
    with pytest.raises(GradcheckError, match=r"element \(\).*nan"):
        gradcheck(lambda t: apply(op, t), [Tensor(0.5, dtype=np.float64, requires_grad=True)])


def test_gradcheck_leaves_existing_gradients_alone():
    x = Tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    x.grad = np.array([5.0, 5.0])
    assert gradcheck(lambda t: (t * t).sum(), [x])
    np.testing.assert_array_equal(x.grad, [5.0, 5.0])
