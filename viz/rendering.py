"""Turn a graphviz graph into a file: svg, png, pdf or the DOT source itself.

Renderer order: the system Graphviz `dot` when it is on PATH, otherwise the pip
package `graphviz-pure` (a dot-compatible executable, a runtime dependency),
looked up on PATH and then in the running interpreter's script directories, so
that `/path/to/venv/bin/python demo.py` renders without activating the venv.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

FORMATS = ("svg", "png", "pdf", "dot")
PURE = "graphviz-pure"
PDF_DPI = 150  # graphviz-pure has no pdf output: pdf is a png at this dpi, wrapped
INSTALL_HINT = (
    "install a renderer: `pip install graphviz-pure` (no system packages needed) "
    "or `apt-get install graphviz` (the system `dot`)"
)


def _append_ext(path, fmt: str) -> Path:
    """`path` with ".{fmt}" appended unless it already ends with it ("out/enc" -> "out/enc.svg")."""
    path = Path(path)
    return path if path.name.lower().endswith(f".{fmt}") else path.with_name(f"{path.name}.{fmt}")


def _path_and_format(path, format) -> tuple[Path, str]:
    """render()'s (path, format): see its docstring."""
    if format is not None and not isinstance(format, str):
        raise TypeError(f"render: format must be a string such as 'svg', got {type(format).__name__}")
    wanted = format.lower() if format is not None else None
    if wanted is not None and wanted not in FORMATS:
        raise ValueError(f"render: unknown format {format!r}; use one of {', '.join(FORMATS)}")
    ext = Path(path).suffix[1:].lower()
    if ext in FORMATS:
        if wanted is not None and wanted != ext:
            raise ValueError(f"render: path {str(path)!r} ends in .{ext} but format={format!r}; "
                             f"drop format= or make them agree")
        return Path(path), ext
    fmt = wanted or "svg"
    return _append_ext(path, fmt), fmt


def output_path(path, formats, default: str) -> tuple[Path, str]:
    """(path, format) for a plot: the format is path's extension if it is one of `formats`, else `default`, appended."""
    ext = Path(path).suffix[1:].lower()
    fmt = ext if ext in formats else default
    return _append_ext(path, fmt), fmt


def _script_dirs() -> list[str]:
    """Where pip puts executables for this interpreter: beside it (a venv's bin/), and the scheme's scripts dirs."""
    dirs = [str(Path(sys.executable).parent) if sys.executable else None, sysconfig.get_path("scripts"),
            sysconfig.get_path("scripts", sysconfig.get_preferred_scheme("user"))]
    return list(dict.fromkeys(d for d in dirs if d))


def find_renderer() -> str | None:
    """Path of the executable render() will use, or None when there is none."""
    return (shutil.which("dot") or shutil.which(PURE)
            or shutil.which(PURE, path=os.pathsep.join(_script_dirs())))


def _run(exe: str, source: str, fmt: str, *options: str) -> bytes:
    """Run a dot-compatible renderer on `source` (stdin) and return its output (stdout)."""
    cmd = [exe, f"-T{fmt}", *options]
    proc = subprocess.run(cmd, input=source.encode("utf-8"), capture_output=True)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"render: `{' '.join(cmd)}` failed (exit {proc.returncode}): {err}")
    return proc.stdout


def draw(exe: str, g, fmt: str) -> bytes:
    """`g` drawn by `exe` in `fmt`. A graph whose labels are centred (`g.centred_labels`,
    as draw_graph's are) gets each svg line anchored at its middle: see fonts.centre_lines."""
    data = _run(exe, g.source, fmt)
    if fmt == "svg" and getattr(g, "centred_labels", False):
        from .fonts import centre_lines

        data = centre_lines(data.decode("utf-8")).encode("utf-8")
    return data


def _png_to_pdf(png: bytes, dpi: int) -> bytes:
    """Wrap a png in a one-page pdf whose page has the drawing's size in points."""
    from PIL import Image  # Pillow comes with matplotlib; imported only for this fallback

    image = Image.open(io.BytesIO(png))
    page = Image.new("RGB", image.size, "white")
    page.paste(image, mask=image.getchannel("A") if "A" in image.getbands() else None)
    out = io.BytesIO()
    page.save(out, format="PDF", resolution=dpi)
    return out.getvalue()


def _write(path: Path, data: bytes) -> None:
    """Write via a temp file and rename, so a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def render(g, path, format: str | None = None) -> str:
    """Render graph `g` to a file and return the path written.

    g: a `graphviz.Digraph` (anything with a DOT `.source`). The format (svg,
    png, pdf or dot; "dot" writes the source, no renderer needed) comes from
    path's extension when it has one of these ("out/enc.png" -> png), else from
    `format`, appended to the path ("out/enc", format="pdf" -> out/enc.pdf;
    svg when neither says). A path whose extension contradicts `format`
    ("x.png", format="svg") is refused. Parent directories are created.
    Without the system `dot`, pdf is a 150-dpi image in a pdf page
    (graphviz-pure cannot write pdf); use svg for vector output. With no
    renderer at all the DOT source is written beside `path` and a RuntimeError
    says where, and how to install a renderer.
    """
    if not hasattr(g, "source"):
        raise TypeError(f"render: g must be a graph such as viz.draw_graph returns, got {type(g).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"render: path must be a str or Path, got {type(path).__name__}")
    out, fmt = _path_and_format(path, format)
    source = g.source
    if fmt == "dot":
        _write(out, source.encode("utf-8"))
        return str(out)
    exe = find_renderer()
    if exe is None:
        dot_path = out.with_suffix(".dot")
        _write(dot_path, source.encode("utf-8"))
        raise RuntimeError(f"render: no Graphviz renderer found, so no {fmt} was made; "
                           f"wrote the DOT source to {dot_path}. To render, {INSTALL_HINT}.")
    if fmt == "pdf" and Path(exe).stem == PURE:
        data = _png_to_pdf(_run(exe, source, "png", f"-Gdpi={PDF_DPI}"), PDF_DPI)
    else:
        data = draw(exe, g, fmt)
    _write(out, data)
    return str(out)
