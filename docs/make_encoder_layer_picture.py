"""Draw the README's picture of one encoder layer: docs/img/encoder_layer.svg and .png,
and every op of a pre-LN layer in training mode: docs/img/encoder_layer_pre_ln_training.png.

    python docs/make_encoder_layer_picture.py

A one-layer encoder (d_model=8, 2 heads of d_k=4, d_ff=16) reads 3 tokens;
the sizes are all different so every shape on the picture says which axis is
which: (B=1, T=3, d_model=8), per head (B, H=2, T, d_k=4), scores (B, H, T, T).
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import viz  # noqa: E402
from tinygrad_enc import Tensor, manual_seed, nn  # noqa: E402


# Every op of the layer, except that each Linear (W^Q, W^K, W^V, W^O, W_1, W_2) and each
# LayerNorm is one box: what is left is what the Illustrated Transformer draws.
COLLAPSE = ("Linear", "LayerNorm")


def encoder_layer_graph():
    """The graph of one encoder layer (post-LN, as in the paper) run on 3 tokens."""
    manual_seed(0)
    encoder = nn.TransformerEncoder(1, d_model=8, n_heads=2, d_ff=16, dropout=0.0)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 3, 8)))
    x.name = "x: 3 token vectors"
    return viz.draw_graph(encoder(x), model=encoder, collapse=COLLAPSE)


def pre_ln_training_graph():
    """Every op of a pre-LN layer (norm_first=True) in training mode, on an input that does not
    require grad: both layer norms, each dropout mask, the input once."""
    manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, norm_first=True).train()
    x = Tensor(np.random.default_rng(0).standard_normal((1, 3, 8)))
    x.name = "x: 3 token vectors"
    return viz.draw_graph(layer(x), model=layer, max_nodes=None)


def main(out_dir=ROOT / "docs" / "img"):
    g = encoder_layer_graph()
    for fmt in ("svg", "png"):
        print(viz.render(g, Path(out_dir) / f"encoder_layer.{fmt}"))
    print(viz.render(pre_ln_training_graph(), Path(out_dir) / "encoder_layer_pre_ln_training.png"))


if __name__ == "__main__":
    main(*sys.argv[1:])
