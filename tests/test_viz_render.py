"""viz.render: every format, every renderer lookup, and the no-renderer fallback."""

import importlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import graphviz
import pytest

import viz

render_mod = importlib.import_module("viz.rendering")
needs_renderer = pytest.mark.skipif(render_mod.find_renderer() is None, reason="no Graphviz renderer")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def graph():
    """Two nested clusters, like a module inside a module."""
    g = graphviz.Digraph("g")
    with g.subgraph(name="cluster_encoder", graph_attr={"label": "encoder"}) as enc:
        with enc.subgraph(name="cluster_layer0", graph_attr={"label": "layers.0"}) as layer:
            layer.edge("x", "matmul")
        enc.edge("matmul", "relu")
    return g


@needs_renderer
def test_svg_has_nested_cluster_titles(graph, tmp_path):
    out = viz.render(graph, tmp_path / "sub" / "enc", format="svg")
    assert out == str(tmp_path / "sub" / "enc.svg")
    root = ET.parse(out).getroot()
    groups = {g.findtext(f"{SVG}title"): g for g in root.iter(f"{SVG}g") if g.get("class") == "cluster"}
    assert set(groups) == {"cluster_encoder", "cluster_layer0"}
    labels = {t.text for t in root.iter(f"{SVG}text")}
    assert {"encoder", "layers.0", "x", "matmul", "relu"} <= labels


@needs_renderer
@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF")])
def test_binary_formats_have_magic_bytes(graph, tmp_path, fmt, magic):
    out = viz.render(graph, tmp_path / "enc", format=fmt)
    assert out.endswith(f"enc.{fmt}")
    data = Path(out).read_bytes()
    assert data.startswith(magic) and len(data) > 500
    assert list(tmp_path.iterdir()) == [Path(out)]  # no temp file left behind


def test_dot_format_writes_source_without_a_renderer(graph, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    out = viz.render(graph, tmp_path / "enc.dot", format="DOT")
    assert out == str(tmp_path / "enc.dot")  # extension not doubled
    assert Path(out).read_text() == graph.source


def test_extension_is_appended_unless_present(graph, tmp_path):
    assert viz.render(graph, tmp_path / "a.v1", format="dot").endswith("a.v1.dot")
    assert viz.render(graph, str(tmp_path / "b.dot"), format="dot").endswith("b.dot")


def test_no_renderer_writes_dot_and_says_how_to_install(graph, tmp_path, monkeypatch):
    # shutil.which is the only lookup: on PATH and in the interpreter's script dirs
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(RuntimeError) as info:
        viz.render(graph, tmp_path / "out" / "enc", format="svg")
    dot = tmp_path / "out" / "enc.dot"
    assert dot.read_text() == graph.source
    assert not (tmp_path / "out" / "enc.svg").exists()
    msg = str(info.value)
    assert str(dot) in msg and "pip install graphviz-pure" in msg and "apt-get install graphviz" in msg


@pytest.mark.skipif(not (Path(sys.executable).parent / "graphviz-pure").exists(),
                    reason="graphviz-pure not installed beside this interpreter")
def test_renderer_found_beside_interpreter_without_path(graph, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # like running venv/bin/python without activating
    assert render_mod.find_renderer() == str(Path(sys.executable).parent / "graphviz-pure")
    assert Path(viz.render(graph, tmp_path / "enc", format="svg")).read_text().lstrip().startswith("<?xml")


@needs_renderer
def test_renderer_failure_raises_with_stderr(tmp_path):
    broken = type("Broken", (), {"source": "digraph { a -> }"})()
    with pytest.raises(RuntimeError, match=r"render: .* failed \(exit \d+\): .*syntax error"):
        viz.render(broken, tmp_path / "bad", format="svg")
    assert not (tmp_path / "bad.svg").exists()


def test_unknown_format_names_the_allowed_ones(graph, tmp_path):
    with pytest.raises(ValueError, match="'jpg'.*svg, png, pdf, dot"):
        viz.render(graph, tmp_path / "enc", format="jpg")


def test_import_viz_does_not_import_matplotlib():
    code = "import sys, viz; assert 'matplotlib' not in sys.modules and 'graphviz' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(viz.__file__).parent.parent)


@pytest.mark.parametrize("name, fmt, written", [
    ("x.png", None, "x.png"), ("x.PNG", None, "x.PNG"), ("x.dot", None, "x.dot"), ("x.svg", "SVG", "x.svg"),
    ("x", None, "x.svg"), ("x", "dot", "x.dot"), ("x.v1", None, "x.v1.svg"),
])
def test_format_comes_from_the_extension(graph, tmp_path, monkeypatch, name, fmt, written):
    calls = []
    monkeypatch.setattr(render_mod, "find_renderer", lambda: "dot")
    monkeypatch.setattr(render_mod, "_run", lambda exe, source, f, *o: calls.append(f) or b"data")
    out = viz.render(graph, tmp_path / name, format=fmt)
    assert out == str(tmp_path / written)
    assert [p.name for p in tmp_path.iterdir()] == [written]
    assert calls == ([] if written.endswith(".dot") else [written.rsplit(".", 1)[1].lower()])


def test_extension_contradicting_format_is_refused(graph, tmp_path):
    with pytest.raises(ValueError, match=r"render: path .*x\.png' ends in \.png but format='svg'"):
        viz.render(graph, tmp_path / "x.png", format="svg")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("g, path, fmt, error, match", [
    ("not a graph", "x.svg", None, TypeError, "render: g must be a graph.*str"),
    (None, 3, None, TypeError, "render: path must be a str or Path, got int"),
    (None, "x", 1, TypeError, "render: format must be a string.*int"),
])
def test_bad_arguments(graph, g, path, fmt, error, match):
    with pytest.raises(error, match=match):
        viz.render(graph if g is None else g, path, format=fmt)
