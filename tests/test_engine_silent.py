"""No silent wrong answer from the engine and functional.py: each mistake a
learner makes is a right answer or a clear error naming the op and the value;
edge cases (empty axes, length-0 sequences) give what PyTorch gives."""
import ast
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor, nn
from tinygrad_enc.gradcheck import gradcheck

ROOT = Path(__file__).resolve().parents[1]
LOGITS = Tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)
TARGET = np.array([1, 2, 3, 0])
X = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
X64 = Tensor(np.arange(3.0), requires_grad=True, dtype=np.float64)

WRONG_CALLS = {
    "ce_ignore_str": (lambda: F.cross_entropy(LOGITS, TARGET, ignore_index="pad"),
                      TypeError, ["cross_entropy", "ignore_index", "'pad'"]),
    "ce_ignore_float": (lambda: F.cross_entropy(LOGITS, TARGET, ignore_index=1.5),
                        TypeError, ["cross_entropy", "ignore_index", "1.5"]),
    "ce_ignore_bool": (lambda: F.cross_entropy(LOGITS, TARGET, ignore_index=True),
                       TypeError, ["cross_entropy", "ignore_index", "True"]),
    "ce_smoothing_str": (lambda: F.cross_entropy(LOGITS, TARGET, label_smoothing="0.1"),
                         TypeError, ["cross_entropy", "label_smoothing", "'0.1'"]),
    "ce_logits_ndarray": (lambda: F.cross_entropy(LOGITS.data, TARGET),
                          TypeError, ["cross_entropy", "logits", "ndarray"]),
    "ce_float_target": (lambda: F.cross_entropy(LOGITS, TARGET.astype(float)),
                        TypeError, ["cross_entropy", "float64"]),
    "softmax_ndarray": (lambda: F.softmax(X.data), TypeError, ["softmax", "ndarray"]),
    "log_softmax_list": (lambda: F.log_softmax([1.0, 2.0]), TypeError, ["log_softmax", "list"]),
    "relu_list": (lambda: F.relu([1.0]), TypeError, ["relu", "list"]),
    "gelu_ndarray": (lambda: F.gelu(X.data), TypeError, ["gelu", "ndarray"]),
    "layer_norm_shape_float": (lambda: F.layer_norm(X, 3.0), TypeError, ["layer_norm", "3.0"]),
    "layer_norm_eps_str": (lambda: F.layer_norm(X, 3, eps="1e-5"), TypeError,
                           ["layer_norm", "eps", "'1e-5'"]),
    "layer_norm_eps_negative": (lambda: F.layer_norm(X, 3, eps=-1.0), ValueError,
                                ["layer_norm", "eps", "-1.0"]),
    "layer_norm_weight_shape": (lambda: F.layer_norm(X, 3, weight=Tensor(np.ones(2))),
                                ValueError, ["layer_norm", "weight", "(3,)", "(2,)"]),
    "dropout_p_str": (lambda: F.dropout(X, "0.1"), TypeError, ["dropout", "p", "'0.1'"]),
    "dropout_p_bool": (lambda: F.dropout(X, True), TypeError, ["dropout", "p", "True"]),
    "dropout_p_nan": (lambda: F.dropout(X, float("nan")), ValueError, ["dropout", "nan"]),
    "dropout_training_str": (lambda: F.dropout(X, 0.1, training="no"), TypeError,
                             ["dropout", "training", "'no'"]),
    "sdpa_ndarray": (lambda: F.scaled_dot_product_attention(X.data[None], X[None], X[None]),
                     TypeError, ["scaled_dot_product_attention", "q", "ndarray"]),
    "sdpa_dropout_str": (lambda: F.scaled_dot_product_attention(X[None], X[None], X[None],
                                                                dropout_p="0.1"),
                         TypeError, ["scaled_dot_product_attention", "dropout_p"]),
    "mask_float_masked_fill": (lambda: X.masked_fill(np.ones((2, 3)), 0.0), TypeError,
                               ["masked_fill", "boolean", "float64"]),
    "mask_int_masked_fill": (lambda: X.masked_fill(Tensor(np.ones((2, 3), dtype=int)), 0.0),
                             TypeError, ["masked_fill", "boolean", "int64"]),
    "mask_float_where": (lambda: Tensor.where(np.ones((2, 3)), X, 0.0), TypeError,
                         ["where", "condition", "float64"]),
    "mask_int_sdpa": (lambda: F.scaled_dot_product_attention(
        X[None], X[None], X[None], mask=np.zeros((2, 2), dtype=np.int8)),
        TypeError, ["scaled_dot_product_attention", "mask", "int8"]),
    "getitem_float_index": (lambda: X[np.array([0.0, 1.0])], IndexError,
                            ["getitem", "(2, 3)", "integer"]),
    "slice_step_zero": (lambda: X[::0], ValueError, ["getitem", "step cannot be zero"]),
    "negative_integer_power": (lambda: Tensor([1, 2]) ** -1, ValueError,
                               ["pow", "negative integer power", "x ** -1.0"]),
    "bool_subtract": (lambda: Tensor([True]) - Tensor([False]), TypeError,
                      ["sub", "boolean", "a ^ b"]),
    "bool_negate": (lambda: -Tensor([True]), TypeError, ["neg", "boolean", "~mask"]),
    "tensor_of_none": (lambda: Tensor(None), TypeError, ["Tensor", "NoneType"]),
    "tensor_of_str": (lambda: Tensor("1.0"), TypeError, ["Tensor", "str"]),
    "tensor_of_tensors": (lambda: Tensor([X, X]), TypeError, ["Tensor", "Tensor.stack"]),
    "tensor_of_ragged": (lambda: Tensor([[1.0], [1.0, 2.0]]), TypeError, ["Tensor", "ragged"]),
    "tensor_of_complex": (lambda: Tensor(1 + 2j), TypeError, ["Tensor", "complex"]),
    "tensor_requires_grad_str": (lambda: Tensor([1.0], requires_grad="yes"), TypeError,
                                 ["requires_grad", "'yes'"]),
    "backward_grad_shape": (lambda: (X * 2).backward(np.ones(3)), ValueError,
                            ["backward", "(3,)", "(2, 3)"]),
    "backward_grad_str": (lambda: (X * 2).backward("ones"), TypeError, ["backward", "str"]),
    "backward_non_scalar": (lambda: (X * 2).backward(), RuntimeError,
                            ["backward", "(2, 3)", "scalar"]),
    "iterate_0d": (lambda: list(Tensor(1.0)), TypeError, ["0-d"]),
    "reshape_float": (lambda: X.reshape(2.9, 3), TypeError, ["reshape", "2.9"]),
    "zeros_float": (lambda: Tensor.zeros(2.7, 3), TypeError, ["zeros", "2.7"]),
    "gradcheck_eps_zero": (lambda: gradcheck(lambda t: t * 2, [X64], eps=0), ValueError,
                           ["gradcheck", "eps", "0.0"]),
    "gradcheck_inputs_ndarray": (lambda: gradcheck(lambda t: t * 2, X64.data), TypeError,
                                 ["gradcheck", "ndarray"]),
    "getitem_ragged_list": (lambda: X[[[0], [0, 1]]], IndexError, ["getitem", "[[0], [0, 1]]"]),
    "ipow_string": (lambda: X.detach().__ipow__("2"), TypeError, ["**=", "'2'"]),
    "max_empty": (lambda: Tensor(np.zeros((2, 0))).max(1), ValueError, ["max", "(2, 0)"]),
}


@pytest.mark.parametrize("name", sorted(WRONG_CALLS))
def test_wrong_call_is_a_clear_error(name):
    call, error, words = WRONG_CALLS[name]
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{name}: {word!r} not in {info.value}"


# ----- edge cases with PyTorch's answers -------------------------------------------
@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("shape", [(2, 0), (0, 3), (2, 0, 0)])
def test_softmax_of_an_empty_axis_is_empty(fn, shape):
    x = Tensor(np.zeros(shape), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fn(x, axis=-1)
        out.sum().backward()
    assert out.shape == shape and x.grad.shape == shape


def test_a_length_0_sequence_through_attention_and_layer_norm():
    q = Tensor(np.zeros((2, 0, 4)), requires_grad=True)
    out, weights = F.scaled_dot_product_attention(q, q, q)
    assert out.shape == (2, 0, 4) and weights.shape == (2, 0, 0)
    (out.sum() + F.layer_norm(q, 4).sum()).backward()
    assert q.grad.shape == (2, 0, 4) and not q.grad.any()


@pytest.mark.parametrize("name", ["mean", "var"])
def test_mean_and_var_over_an_empty_axis_are_nan(name):
    x = Tensor(np.zeros((2, 0)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(getattr(x, name)(1).data).all()
        assert np.isnan(getattr(x, name)().item())
        assert getattr(x, name)(0).shape == (0,)


def test_backward_casts_an_integer_grad_as_pytorch():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (w * 2.0).backward(np.array([3, 1]))
    assert w.grad.dtype == np.float32 and w.grad.tolist() == [6.0, 2.0]


def test_accumulating_never_writes_into_an_assigned_gradient():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    mine = np.ones(2, dtype=np.float32)
    w.grad = mine
    (w * 2.0).sum().backward()
    assert mine.tolist() == [1.0, 1.0] and w.grad.tolist() == [3.0, 3.0]


def test_a_second_backward_adds_the_same_gradient_again():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (w * w).sum()
    loss.backward()
    first = w.grad.copy()
    loss.backward()
    np.testing.assert_array_equal(w.grad, 2 * first)


@pytest.mark.parametrize("index, torch_shape", [
    ((0, slice(None), [0, 1]), (3, 2, 5)),
    ((slice(None), 0, slice(None), [0, 1]), (2, 4, 2)),
    (([0, 1], 0, [0, 1]), (2, 5)),
    ((None, 0, [0, 1]), (1, 2, 4, 5)),
    ((Ellipsis, 0, [1, 0]), (2, 3, 2)),
    ((0, [[0], [1]], slice(None), [0, 1, 2]), (2, 3, 4)),
])
def test_integers_mixed_with_index_arrays_follow_pytorchs_axis_order(index, torch_shape):
    data = np.arange(120.0).reshape(2, 3, 4, 5)
    x = Tensor(data, requires_grad=True, dtype=np.float64)
    out = x[index]
    assert out.shape == torch_shape
    # the same values as selecting the integers first, then the arrays
    first = tuple(i if isinstance(i, int) else (slice(None) if i is not None and i is not Ellipsis
                                                else i) for i in index)
    rest = tuple(slice(None) if i is None else i for i in index if not isinstance(i, int))
    np.testing.assert_array_equal(out.data, data[first][rest])
    out.backward(np.ones(out.shape))
    expected = np.zeros_like(data)
    np.add.at(expected[first], rest, 1.0)
    np.testing.assert_array_equal(x.grad, expected)


def test_mixed_indexing_matches_torch():
    torch = pytest.importorskip("torch")
    data = np.arange(120.0).reshape(2, 3, 4, 5)
    for index in [(0, slice(None), [0, 1]), (slice(None), 0, slice(None), [0, 1])]:
        np.testing.assert_array_equal(Tensor(data, dtype=np.float64)[index].data,
                                      torch.tensor(data)[index].numpy())


def test_embedding_rows_with_narrow_integer_ids_get_the_right_gradient():
    emb = nn.Embedding(300, 2)
    for dtype in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint64):
        ids = np.array([[1, 2, 2], [127, 0, 1]], dtype=dtype)
        emb.zero_grad()
        emb(ids).sum().backward()
        expected = np.zeros((300, 2), dtype=np.float32)
        np.add.at(expected, ids.astype(np.int64), 1.0)
        np.testing.assert_array_equal(emb.weight.grad, expected, err_msg=str(dtype))


NO_CYCLE = """
import sys, types
package = types.ModuleType("tinygrad_enc")      # the package without its __init__,
package.__path__ = ["tinygrad_enc"]              # which imports everything
sys.modules["tinygrad_enc"] = package
import tinygrad_enc.ops, tinygrad_enc.checks
assert "tinygrad_enc.tensor" not in sys.modules, sorted(sys.modules)
"""


def test_ops_and_checks_do_not_import_tensor():
    subprocess.run([sys.executable, "-c", NO_CYCLE], check=True, cwd=ROOT)


def test_no_import_cycle_between_the_package_modules():
    """The package's modules, each pointing at those it imports at its top
    level, form no cycle (the package __init__ aside)."""
    imports = {}
    for path in (ROOT / "tinygrad_enc").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if module.endswith("__init__"):
            continue
        package = module.rsplit(".", 1)[0]
        targets = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
                targets.update({name} | {f"{name}.{a.name}" for a in node.names})
        imports[module] = targets
    state = {}

    def visit(module, trail):
        if state.get(module) == "done" or module not in imports:
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join(trail + [module])}"
        state[module] = "open"
        for target in imports[module]:
            visit(target, trail + [module])
        state[module] = "done"

    for module in imports:
        visit(module, [])
