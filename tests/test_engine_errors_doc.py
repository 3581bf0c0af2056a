"""docs/errors.md quotes the engine's messages as the engine prints them."""
from pathlib import Path

import numpy as np
import pytest

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor, nn, optim

DOC = " ".join((Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text().split())


def _stale_graph():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss = model(Tensor(np.ones((1, 3)))).sum()
    loss.backward()
    opt.step()
    loss.backward()


def _leaf_update():
    w = Tensor([1.0], requires_grad=True)
    w -= 1.0


def _setitem():
    x = Tensor([1.0, 2.0], requires_grad=True)
    x[0] = 0.0


A = Tensor(np.ones((2, 3)), requires_grad=True)
CALLS = [
    lambda: A @ Tensor(np.ones((4, 5))),
    lambda: A + Tensor(np.ones(4)),
    lambda: A.reshape(4, 2),
    lambda: A.reshape(2.0, 3),
    lambda: A.sum(2),
    lambda: F.layer_norm(A, 4),
    lambda: F.cross_entropy(Tensor(np.ones((2, 5, 3))), np.full((2, 3), 1)),
    lambda: A[5],
    lambda: A[::0],
    lambda: A.masked_fill(np.ones((2, 3)), 0.0),
    lambda: Tensor([1, 2], requires_grad=True),
    lambda: F.cross_entropy(Tensor(np.ones((2, 3))), np.array([0.0, 1.0])),
    lambda: F.cross_entropy(Tensor(np.ones((2, 3))), np.array([0, 1]), ignore_index="pad"),
    lambda: Tensor([1, 2]).__itruediv__(2),
    lambda: Tensor([True]) - Tensor([True]),
    lambda: Tensor([2]) ** -1,
    lambda: F.softmax(np.ones(3)),
    lambda: Tensor([1.0]).sum().backward(),
    lambda: A.backward(),
    _leaf_update,
    _stale_graph,
    _setitem,
]


@pytest.mark.parametrize("call", CALLS)
def test_the_message_is_quoted_as_printed(call):
    with pytest.raises(Exception) as info:
        call()
    assert " ".join(str(info.value).split()) in DOC, str(info.value)
