"""docs/primitives.md is what docs/make_primitives_table.py makes of the code
now, and it lists every function of the tensor API; composed functions agree
with the fused ops that compute the same thing."""
import importlib.util
from pathlib import Path

import numpy as np

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor, ops

from conftest import make_array

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_primitives_table",
                                               ROOT / "docs" / "make_primitives_table.py")
make_primitives_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_primitives_table)

API = ["unsqueeze", "squeeze", "flatten", "unflatten", "repeat", "flip", "chunk", "view",
       "reshape", "min", "argmax", "argmin", "std", "var", "logsumexp", "prod", "any", "all",
       "cumsum", "clamp", "clip", "maximum", "minimum", "sin", "cos", "erf", "rsqrt", "square",
       "sign", "floor", "ceil", "round", "silu", "softplus", "leaky_relu", "elu", "tril", "triu",
       "arange", "eye", "full", "zeros_like", "ones_like", "full_like", "linspace", "rand",
       "randint", "float", "double", "long", "int", "bool", "to", "type_as", "gather",
       "masked_select", "einsum", "sum", "mean", "max", "exp", "log", "sqrt", "tanh", "sigmoid",
       "relu", "gelu", "abs", "transpose", "permute", "expand", "masked_fill", "split", "cat",
       "stack", "where"]
FUNCTIONAL = ["one_hot", "nll_loss", "cross_entropy", "mse_loss",
              "binary_cross_entropy_with_logits", "softmax", "log_softmax", "layer_norm",
              "dropout", "gelu", "scaled_dot_product_attention"]
OPERATORS = ["+", "-", "*", "/", "**", "n ** x", "@", "x[i]", "&", "|", "^", "~"]


def test_the_table_is_up_to_date():
    written = (ROOT / "docs" / "primitives.md").read_text()
    assert written == make_primitives_table.table(), \
        "docs/primitives.md is stale: run python docs/make_primitives_table.py"


def test_the_table_lists_every_primitive_and_every_function_of_the_api():
    table = make_primitives_table.table()
    for cls in [c for c in vars(ops).values()
                if isinstance(c, type) and issubclass(c, ops.Op) and c is not ops.Op]:
        assert f"| `{cls.__name__}` |" in table, cls
    for name in API:
        assert f"`x.{name}`" in table or f"`Tensor.{name}`" in table, name
    for name in FUNCTIONAL:
        assert f"`F.{name}`" in table, name
    for symbol in OPERATORS:
        assert f"`{symbol}`" in table, symbol


def test_the_counts_in_the_table_are_the_code_s():
    table = make_primitives_table.table()
    primitives = len(make_primitives_table.primitives())
    assert f"**{primitives} primitives**" in table
    composed = table.split("## Composed functions")[1].split("## Without")[0]
    rows = [line for line in composed.splitlines() if line.startswith("| `")]
    assert f"**{len(rows)} composed functions**" in table


def test_composed_functions_agree_with_the_fused_ops():
    x = Tensor(make_array((2, 3, 4)), dtype=np.float64)
    np.testing.assert_allclose(x.logsumexp(-1, keepdims=True).data,
                               (x - F.log_softmax(x)).data[..., :1], rtol=1e-12)
    np.testing.assert_allclose(x.softplus().data, -F.log_softmax(
        Tensor.stack([x * 0, x], -1)).data[..., 0], rtol=1e-12)
    np.testing.assert_allclose(((x - x.mean(-1, keepdims=True))
                                / (x.var(-1, keepdims=True) + 1e-5).sqrt()).data,
                               F.layer_norm(x, 4).data, rtol=1e-10)
    np.testing.assert_allclose(x.std(-1, correction=0).data, np.std(x.data, -1), rtol=1e-12)
    np.testing.assert_allclose(Tensor.einsum("bqd,bkd->bqk", x, x).data,
                               (x @ x.transpose(-2, -1)).data, rtol=1e-12)
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(x, x.sigmoid()).data,
                               np.mean(-(x.sigmoid().data * np.log(x.sigmoid().data)
                                         + (1 - x.sigmoid().data)
                                         * np.log(1 - x.sigmoid().data))), rtol=1e-12)
