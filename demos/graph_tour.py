"""Zoom into the computation graph of an encoder, one level at a time.

    python demos/graph_tour.py              # pictures into out/graph_tour/
    python demos/graph_tour.py --format png

The same training loss of a small DigitEncoder (the model of
train_encoder.py: embedding -> positions -> 2 encoder layers -> linear head)
is drawn at every depth:

    depth 0  the whole model as one box
    depth 1  embedding -> positions -> encoder -> head
    depth 2  the encoder opened: layer 0 -> layer 1 (same structure, own weights)
    depth 3  a layer opened: self-attention, feed-forward, the two norms, the residual adds
    depth 4  attention opened: Q, K, V, the split into heads, scores, softmax, Z, concat, W^O
    full     every single op

plus one encoder layer with each Linear and LayerNorm as a box (the picture
of the Illustrated Transformer), and the backward view: the gradient that
flows along each edge, with the residual skip carrying it past each sub-layer.
"""
import argparse
from pathlib import Path

import numpy as np

import viz
import tinygrad_enc.functional as F
from tinygrad_enc import Tensor, manual_seed, nn

from train_encoder import DigitEncoder

LAYER_BOXES = ("Linear", "LayerNorm")


def build(seed=0, length=5, vocab=10, d_model=8, n_heads=2, d_ff=16, num_layers=2):
    """A small DigitEncoder and the loss of one sequence (sizes chosen so
    every axis has its own size: T=5, d_model=8, d_k=4, d_ff=16)."""
    manual_seed(seed)
    model = DigitEncoder(vocab, d_model, n_heads, d_ff, num_layers, max_len=length)
    ids = np.random.default_rng(seed).integers(0, vocab, (1, length))
    loss = F.cross_entropy(model(ids), ids[:, ::-1])
    return model, ids, loss


def pictures(model, ids, loss):
    """(file name, what it shows, Digraph) for every picture of the tour."""
    out = [(f"depth{k}", f"depth={k}", viz.draw_graph(loss, model, depth=k)) for k in range(5)]
    out.append(("full", "every op", viz.draw_graph(loss, model, max_nodes=None)))
    layer = model.encoder.layers[0]
    x = Tensor(model.positions(model.embedding(ids)).data, requires_grad=True)
    x.name = "x: token vectors + positions"
    out.append(("one_layer", "one encoder layer, Linear and LayerNorm as boxes",
                viz.draw_graph(layer(x), model=layer, collapse=LAYER_BOXES)))
    out.append(("backward", "gradient flow of the loss, layers opened (depth=3)",
                viz.draw_graph(loss, model, depth=3, backward=True)))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out", help="pictures go to OUT/graph_tour/")
    parser.add_argument("--format", default="svg", choices=["svg", "png", "pdf", "dot"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    model, ids, loss = build(args.seed)
    folder = Path(args.out) / "graph_tour"
    written = {}
    for name, what, graph in pictures(model, ids, loss):
        path = viz.render(graph, folder / name, format=args.format)
        print(f"{what:<52} {graph.node_count:4d} nodes  -> {path}")
        written[name] = {"path": path, "nodes": graph.node_count}
    return written


if __name__ == "__main__":
    main()
