"""tinygrad_enc.profile: what it records, only inside its block, and its table.
No assertion on how long anything takes."""
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import tinygrad_enc
import tinygrad_enc.functional as F
from tinygrad_enc import Tensor, manual_seed, nn
from tinygrad_enc import tensor as engine

ROOT = Path(__file__).resolve().parents[1]


def _encoder_step():
    manual_seed(0)
    model = nn.TransformerEncoder(2, 8, 2, 16, dropout=0.0)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3, 8)))

    def step():
        model(x).sum().backward()
    return step


def test_records_every_op_forward_and_backward_with_its_modules():
    step = _encoder_step()
    with tinygrad_enc.profile() as p:
        step()
    # per layer: q, k, v, out projections and the second feed-forward linear (the
    # first is linear_relu); Q K^T, weights @ V
    assert p.ops["linear"].calls == {"forward": 10, "backward": 10}
    assert p.ops["linear_relu"].calls == {"forward": 2, "backward": 2}
    assert p.ops["matmul"].calls == {"forward": 4, "backward": 4}
    assert p.ops["softmax"].calls == {"forward": 2, "backward": 2}
    assert p.ops["layer_norm"].calls["forward"] == 4
    root = p.modules["(TransformerEncoder)"]
    attention = p.modules["layers.0.self_attn (MultiHeadAttention)"]
    q_proj = p.modules["layers.0.self_attn.q_proj (Linear)"]
    outside = p.modules["(no module)"]  # the .sum() after the model
    assert outside.calls == {"forward": 1, "backward": 1}
    assert root.calls["forward"] + 1 == sum(r.calls["forward"] for r in p.ops.values())
    assert 0 < q_proj.calls["forward"] < attention.calls["forward"] < root.calls["forward"]
    assert root.total + outside.total == pytest.approx(p.op_seconds)
    assert 0 < p.op_seconds <= p.seconds


def test_nothing_is_recorded_outside_the_block():
    step = _encoder_step()
    with tinygrad_enc.profile() as p:
        step()
    assert engine._state.observers == ()
    calls = {name: dict(row.calls) for name, row in p.ops.items()}
    step()
    assert {name: dict(row.calls) for name, row in p.ops.items()} == calls


def test_an_error_in_the_block_still_ends_the_profile():
    with pytest.raises(ValueError):
        with tinygrad_enc.profile():
            Tensor(np.ones(3)) @ Tensor(np.ones(4))
    assert engine._state.observers == ()


def test_another_thread_is_not_recorded():
    with tinygrad_enc.profile() as p:
        worker = threading.Thread(target=lambda: (Tensor(np.ones(3), requires_grad=True) * 2).sum())
        worker.start()
        worker.join()
    assert p.ops == {}


def test_table_lists_the_top_rows():
    step = _encoder_step()
    with tinygrad_enc.profile() as p:
        step()
    text = p.table(top=3)
    lines = text.splitlines()
    assert lines[0].startswith("profile: ")
    op_header = lines.index(next(l for l in lines if l.startswith("op ")))
    op_rows = lines[op_header + 1:lines.index("", op_header)]
    assert len(op_rows) == 3 and op_rows[0].split()[0] in p.ops
    totals = [float(row.split()[-2]) for row in op_rows]
    assert totals == sorted(totals, reverse=True)
    assert "(TransformerEncoder)" in text and "forward ms" in text


def test_where_time_goes_demo_runs(capsys):
    sys.path.insert(0, str(ROOT / "demos"))
    import where_time_goes
    p = where_time_goes.main(["--steps", "1", "--top", "5"])
    out = capsys.readouterr().out
    assert "linear" in out and "% of the time inside ops" in out
    assert p.ops["linear"].calls["forward"] == 11  # 2 layers x 5, and the head
    assert p.ops["linear_relu"].calls["forward"] == 2  # each layer's first feed-forward linear
