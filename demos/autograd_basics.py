"""The engine in one screen: build a small graph, run backward, read the gradients.

    python demos/autograd_basics.py            # writes out/autograd_basics/neuron.svg and .png

A neuron y = tanh(w . x + b) and a squared error; every gradient printed here
is d(loss)/d(that tensor), computed by walking the graph backwards once. The
picture is that graph, each node with its value (data) and its gradient (grad),
as micrograd draws its scalars.
"""
import argparse
from pathlib import Path

import numpy as np

import viz
from tinygrad_enc import Tensor


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/autograd_basics", help="folder for the picture")
    args = parser.parse_args(argv)

    x = Tensor([1.0, -2.0, 0.5])                         # an input: no gradient wanted
    w = Tensor([0.3, 0.1, -0.4], requires_grad=True)    # weights we want to learn
    b = Tensor(0.2, requires_grad=True)
    x.name, w.name, b.name = "x", "w", "b"               # names for the picture
    target = 0.5

    y = (w * x).sum() + b          # w . x + b
    out = y.tanh()
    loss = (out - target) ** 2
    print(f"y = w.x + b = {y.item():.4f},  tanh(y) = {out.item():.4f},  loss = {loss.item():.4f}")

    loss.backward()
    # chain rule by hand: dloss/dy = 2 (tanh y - t) (1 - tanh^2 y); dy/dw = x; dy/db = 1
    dloss_dy = 2 * (out.item() - target) * (1 - out.item() ** 2)
    print(f"dloss/dw = {np.round(w.grad, 4)}   (by hand: {np.round(dloss_dy * x.data, 4)})")
    print(f"dloss/db = {b.grad.item():.4f}            (by hand: {dloss_dy:.4f})")
    assert np.allclose(w.grad, dloss_dy * x.data, atol=1e-6)
    assert np.isclose(b.grad.item(), dloss_dy, atol=1e-6)

    # the graph from the leaves (top) to the loss (bottom), each node with data and grad
    graph = viz.draw_graph(loss, values=True)
    paths = [viz.render(graph, Path(args.out) / f"neuron.{fmt}") for fmt in ("svg", "png")]
    for path in paths:
        print(f"wrote {path}")
    return {"graph": graph, "paths": paths, "w_grad": w.grad, "b_grad": b.grad}


if __name__ == "__main__":
    main()
