"""How wide a label is in the widest sans-serif font a viewer is likely to substitute.

Graphviz sizes every box from its own metrics for the font it is told
(Helvetica). A viewer without Helvetica substitutes what it has: on Linux
often DejaVu Sans, which is about 15% wider, and a label sized for Helvetica
then spills out of its box. So the labels here ask for a minimum width
measured in DejaVu Sans (regular or bold, from the copy matplotlib ships),
plus a little slack: the box fits the text in Helvetica, Arial, Liberation
Sans and DejaVu Sans alike.
"""

from __future__ import annotations

import re
from functools import lru_cache

SLACK = 1.04  # font versions and hinting differ by a few per cent
REFERENCE_SIZE = 100  # points: advances are measured once at this size and scaled


@lru_cache(maxsize=2)
def _font(bold: bool):
    from matplotlib import ft2font
    from matplotlib import font_manager

    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans",
                                                             weight="bold" if bold else "normal"))
    font = ft2font.FT2Font(path)
    font.set_size(REFERENCE_SIZE, 72)
    return font


@lru_cache(maxsize=4096)
def _advance(char: str, bold: bool) -> float:
    """Advance width of one character at REFERENCE_SIZE points."""
    return _font(bold).load_char(ord(char)).linearHoriAdvance / 65536  # unhinted: independent of size


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Width in points of one line of `text` at `size` points, as DejaVu Sans sets it, with slack."""
    return SLACK * size / REFERENCE_SIZE * sum(_advance(c, bold) for c in text)


_NODE = re.compile(r'(<g id="[^"]*" class="node">)(.*?)(</g>)', re.S)
_TITLE = re.compile(r'(<g id="graph0" class="graph"[^>]*>)(.*?)(?=<g id=)', re.S)
_START = re.compile(r'text-anchor="start" x="[-\d.]+"')
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _centre(block: str) -> float | None:
    """x of the middle of the one shape (box, ellipse, rounded box) a node block draws, else None."""
    shapes = re.findall(r'<(polygon|ellipse|path)\b([^>]*)>', block)
    if len(shapes) != 1:
        return None  # a table of cells (the legend): its lines are placed cell by cell
    kind, attrs = shapes[0]
    if kind == "ellipse":
        return float(re.search(r'cx="([-\d.]+)"', attrs).group(1))
    numbers = [float(v) for v in _NUMBER.findall(re.search(r'(?:points|d)="([^"]*)"', attrs).group(1))]
    xs = numbers[0::2]
    return (min(xs) + max(xs)) / 2


def centre_lines(svg: str) -> str:
    """Anchor each centred line of a node's label, and of the graph's title, at
    its middle instead of its start.

    Graphviz writes the lines of an HTML-like label as text starting where the
    line would start in the font it measured. A wider substitute font then
    grows to the right only, and spills out of the box on one side; anchored
    at the middle it grows evenly and stays inside the width `text_width` asked for.
    """
    def node(match):
        x = _centre(match.group(2))
        if x is None:
            return match.group(0)
        return match.group(1) + _START.sub(f'text-anchor="middle" x="{x:.2f}"', match.group(2)) + match.group(3)

    def title(match):
        x = _centre(match.group(2))
        body = match.group(2) if x is None else _START.sub(f'text-anchor="middle" x="{x:.2f}"', match.group(2))
        return match.group(1) + body

    return _TITLE.sub(title, _NODE.sub(node, svg), count=1)
