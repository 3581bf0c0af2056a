"""A graphviz.Digraph that Jupyter can show without the system `dot`.

graphviz's own `_repr_mimebundle_` runs the system `dot` and fails without it;
this subclass renders with whatever `viz.render` would use (system `dot`, or
graphviz-pure from pip), so a notebook on a fresh machine shows the graph.
"""

from __future__ import annotations

import graphviz

from .rendering import INSTALL_HINT, draw, find_renderer

SVG_MIME = "image/svg+xml"


class Graph(graphviz.Digraph):
    """A `graphviz.Digraph` (use it as one) that displays inline in Jupyter
    through viz.render's renderer."""

    centred_labels = True  # every node label is one centred cell (style.fitted)

    def _repr_svg_(self) -> str | None:
        """The drawing as an SVG string, or None when no renderer is installed."""
        exe = find_renderer()
        return None if exe is None else draw(exe, self, "svg").decode("utf-8")

    def _repr_mimebundle_(self, include=None, exclude=None, **_) -> dict:
        if (include is not None and SVG_MIME not in include) or (exclude is not None and SVG_MIME in exclude):
            return {}
        svg = self._repr_svg_()
        if svg is None:
            return {"text/plain": f"(no Graphviz renderer to draw this graph: {INSTALL_HINT})"}
        return {SVG_MIME: svg}
