"""The main demo (train_encoder.py) and the graph tour run, learn, and write
valid files; the README's Quickstart is what CI runs."""
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "demos"))

import graph_tour  # noqa: E402
import train_encoder  # noqa: E402
from tinygrad_enc import nn  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def svg_root(path):
    return ET.parse(path).getroot()


def test_train_encoder_short_run_writes_every_output(tmp_path):
    result = train_encoder.main(["--steps", "30", "--out", str(tmp_path), "--no-progress",
                                 "--eval-size", "50"])
    assert len(result["history"]["loss"]) == 30
    assert result["history"]["loss"][-1] < result["history"]["loss"][0]
    for name in ["loss_curve.png", "attention_layer0.png", "attention_layer1.png"]:
        assert (tmp_path / name).read_bytes()[:8] == PNG
    for name in ["attention_graph.svg", "encoder_layer_graph.svg"]:
        assert svg_root(tmp_path / name).tag.endswith("svg")
    assert "self_attn" in (tmp_path / "encoder_layer_graph.svg").read_text()
    state = nn.load(tmp_path / "encoder_reverse.npz")
    assert state.keys() == result["model"].state_dict().keys()
    for name, value in result["model"].state_dict().items():
        np.testing.assert_array_equal(state[name], value)


def test_train_encoder_same_seed_same_numbers():
    a = train_encoder.train("copy", steps=5, seed=3, progress=False, eval_size=20)
    b = train_encoder.train("copy", steps=5, seed=3, progress=False, eval_size=20)
    assert a["history"] == b["history"]
    c = train_encoder.train("copy", steps=5, seed=4, progress=False, eval_size=20)
    assert a["history"] != c["history"]


def test_held_out_sequences_were_never_trained_on():
    rng = np.random.default_rng(0)
    seen = train_encoder.sequence_codes(rng.integers(0, 3, (200, 4)), 3)
    x, y = train_encoder.held_out_set(rng, "sort", 20, 4, 3, seen)
    assert not np.isin(train_encoder.sequence_codes(x, 3), seen).any()
    np.testing.assert_array_equal(y, np.sort(x, axis=1))


@pytest.mark.parametrize("task, expected", [("reverse", [2, 1, 3]), ("sort", [1, 2, 3]),
                                            ("copy", [3, 1, 2])])
def test_tasks(task, expected):
    np.testing.assert_array_equal(train_encoder.TASKS[task](np.array([[3, 1, 2]]))[0], expected)


@pytest.mark.slow
@pytest.mark.parametrize("task, steps, target", [("reverse", 500, 1.0), ("sort", 1000, 0.98)])
def test_task_reaches_its_target(task, steps, target):
    result = train_encoder.train(task, steps=steps, progress=False)
    assert result["exact_match"] >= target


def test_graph_tour_writes_a_picture_per_depth(tmp_path):
    written = graph_tour.main(["--out", str(tmp_path)])
    counts = [written[f"depth{k}"]["nodes"] for k in range(5)] + [written["full"]["nodes"]]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    for name, info in written.items():
        root = svg_root(info["path"])
        titles = {t.text for t in root.iter("{http://www.w3.org/2000/svg}title")}
        assert titles, name
    backward = Path(written["backward"]["path"]).read_text()
    norms = [float(n) for n in re.findall(r"‖grad‖ ([\d.]+)", backward)]
    assert len(norms) > 20 and max(norms) > 0  # every edge of the drawn graph carries its norm


@pytest.mark.parametrize("demo", ["train_encoder.py", "graph_tour.py", "autograd_basics.py"])
def test_demo_help(demo):
    done = subprocess.run([sys.executable, str(ROOT / "demos" / demo), "--help"],
                          capture_output=True, text=True, check=True)
    assert "usage" in done.stdout


def test_ci_runs_the_readme_quickstart_exactly():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart\s+```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci or any(line.startswith(command + " ||") for line in ci), command
