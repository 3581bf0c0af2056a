"""The public names resolve exactly as DESIGN.md writes them, attribute by
attribute (a submodule shadowed by a function of the same name would break
`tinygrad_enc.gradcheck.gradcheck`)."""
import numpy as np

import tinygrad_enc
import viz


def test_gradcheck_is_reached_through_its_module():
    x = tinygrad_enc.Tensor([0.5, 1.5], dtype=np.float64, requires_grad=True)
    assert tinygrad_enc.gradcheck.gradcheck(lambda t: t.tanh(), [x]) is True


def test_contract_paths_resolve_by_attribute():
    assert callable(tinygrad_enc.interop.from_torch_encoder)
    assert callable(tinygrad_enc.nn.save) and callable(tinygrad_enc.nn.load)
    assert callable(tinygrad_enc.functional.scaled_dot_product_attention)
    assert callable(tinygrad_enc.optim.clip_grad_norm)
    for name in ["draw_graph", "render", "attention_heatmap", "attention_graph",
                 "positional_encoding", "loss_curve"]:
        assert callable(getattr(viz, name)), name
