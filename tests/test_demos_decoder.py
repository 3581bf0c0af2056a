"""The decoder demos (translate_dates.py, tiny_gpt.py) run with few steps and
write their files. Their default runs (>= 99% on held-out dates, the GPT
below half of ln(vocab)) are checked by the slow test_tour.py
test_decoder_training_numbers, which trains each once."""
import contextlib
import datetime
import io
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "demos"))

import tiny_gpt  # noqa: E402
import translate_dates  # noqa: E402
from tinygrad_enc import nn  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def quiet(main, argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = main(argv)
    return result, out.getvalue()


def test_translate_dates_short_run_writes_every_output(tmp_path):
    result, printed = quiet(translate_dates.main, [
        "--steps", "10", "--eval-size", "10", "--layers", "1", "--heads", "1", "--d-model", "16",
        "--out", str(tmp_path), "--no-progress", "Nov 28, 2026", "28 Nov 2026!"])
    loss = result["history"]["loss"]
    assert len(loss) == 10 and np.isfinite(loss).all()  # learning: the slow tour test
    assert "held-out dates" in printed and "step  1:" in printed and "'Nov 28, 2026' -> " in printed
    assert "'28 Nov 2026!': cannot read" in printed and "['!'] are unknown" in printed
    for name in ["loss_curve.png", "self_attention_layer0.png", "cross_attention_layer0.png",
                 "output_distribution.png"]:
        assert (tmp_path / name).read_bytes()[:8] == PNG
    assert "decoder.layers.0" in (tmp_path / "transformer_graph.svg").read_text()
    assert set(result["month_attention"]) == {(0, 0)}
    state = nn.load(tmp_path / "translate_dates.npz")
    assert state.keys() == result["model"].state_dict().keys()
    top = result["steps_shown"][0]
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]


def test_every_surface_form_is_readable_and_means_its_date():
    rng = np.random.default_rng(0)
    date = datetime.date(2026, 11, 28)
    texts = {form(date) for form in translate_dates.FORMS}
    assert {"28 November 2026", "Nov 28, 2026", "28/11/2026", "Saturday, 28 November 2026",
            "the 28th of November 2026"} <= texts
    for _ in range(300):
        d = datetime.date.fromordinal(int(rng.integers(translate_dates.FIRST, translate_dates.LAST)))
        ids = translate_dates.encode_sources([translate_dates.surface(d, rng)])
        assert ids.shape[1] <= translate_dates.MAX_SRC
    target = translate_dates.encode_targets([date])[0]
    assert translate_dates.decode_target(target) == "2026-11-28" and target[-1] == translate_dates.END
    assert translate_dates.START != translate_dates.PAD
    with pytest.raises(ValueError, match="unknown"):
        translate_dates.encode_sources(["28 Nov 2026!"])


def test_held_out_dates_never_reach_training():
    rng = np.random.default_rng(0)
    held_out = np.arange(translate_dates.FIRST, translate_dates.FIRST + 60000)
    _, tgt = translate_dates.batch(rng, 200, held_out)
    days = [datetime.date.fromisoformat(translate_dates.decode_target(row)).toordinal()
            for row in tgt]
    assert len(days) > 20 and not np.isin(days, held_out).any()


def test_tiny_gpt_short_run_writes_every_output(tmp_path):
    result, printed = quiet(tiny_gpt.main, ["--steps", "5", "--length", "30", "--block", "32",
                                            "--d-model", "32", "--layers", "1", "--out",
                                            str(tmp_path), "--no-progress"])
    assert len(result["sample"]) == 30
    assert "validation loss" in printed and f"ln({len(result['chars'])})" in printed
    assert result["val_loss"] < result["uniform"] + 1.0
    assert (tmp_path / "loss_curve.png").read_bytes()[:8] == PNG
    assert nn.load(tmp_path / "tiny_gpt.npz").keys() == result["model"].state_dict().keys()
