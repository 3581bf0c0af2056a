"""The tour as notebooks (docs/notebooks/): stored without outputs, and each runs top to bottom
in a real Jupyter kernel with its pictures shown inline. Also the command-line prediction
from a saved checkpoint that docs/first_model.md teaches."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))
PARTS = ["your_first_model", "self_attention_by_hand", "positions", "encoder_trained", "graph_at_every_depth",
         "decoder"]


def test_one_notebook_per_part_stored_without_outputs():
    assert [p.stem.split("_", 1)[1] for p in NOTEBOOKS][:len(PARTS)] == PARTS
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code), path.name
        assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_with_pictures_inline(path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    kinds = {kind for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs
             for kind in output.get("data", {})}
    assert kinds & {"image/png", "image/svg+xml"}, f"{path.name} shows no picture"
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
              if o.output_type == "error"]
    assert not errors


def test_predict_from_a_saved_checkpoint_on_the_command_line(tmp_path):
    sys.path.insert(0, str(ROOT / "demos"))
    import train_encoder
    from tinygrad_enc import nn

    result = train_encoder.train("reverse", steps=5, progress=False, eval_size=10)
    checkpoint = tmp_path / "encoder_reverse.npz"
    nn.save(result["model"], checkpoint)
    run = [sys.executable, str(ROOT / "demos" / "train_encoder.py"), "--load", str(checkpoint)]
    done = subprocess.run(run + ["--predict", "31415926"], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 0, done.stderr
    answer = train_encoder.predict(result["model"], train_encoder.parse_digits("31415926", 8, 10))[0]
    assert done.stdout.splitlines() == [f"loaded {checkpoint}",
                                        f"31415926 -> {''.join(map(str, answer))}   " +
                                        ("(reverse: correct)" if "".join(map(str, answer)) == "62951413"
                                         else "(reverse: wrong: the reverse is 62951413)")]
    for bad, message in (("3141", "needs exactly 8 digits 0-9"), ("3141592a", "needs exactly 8 digits")):
        done = subprocess.run(run + ["--predict", bad], capture_output=True, text=True, cwd=ROOT,
                              env={"PYTHONPATH": str(ROOT), "PATH": ""})
        assert done.returncode == 2 and message in done.stderr
    done = subprocess.run(run + ["--d-model", "16"], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 2 and "pass the sizes it was trained with" in done.stderr
