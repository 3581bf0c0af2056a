"""SVG text that survives the font it gets: measured in a real browser (headless Chromium).

Each drawing is loaded into a page that forces one font on every text, the
way a viewer without Helvetica substitutes its own; every label must then
lie inside its node's box (or ellipse), and every text inside the picture.
DejaVu Sans is the widest sans-serif a Linux viewer is likely to fall back
to; Liberation Sans has Helvetica's metrics. Skips where no browser is installed.
"""

import html
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import viz
from tinygrad_enc import Tensor, manual_seed, nn

ROOT = Path(__file__).resolve().parents[1]
BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome",
                                                "google-chrome-stable"))), None)
pytestmark = [pytest.mark.skipif(BROWSER is None, reason="no headless Chromium installed"),
              pytest.mark.skipif(viz.rendering.find_renderer() is None, reason="no Graphviz renderer")]
TOLERANCE = 0.5  # px: anti-aliasing, rounding in the svg's coordinates

# For every text: the smallest box (polygon / rounded path) or ellipse of its own node or
# cluster around its anchor, and how far the text's box pokes out of it; and how far
# it pokes out of the whole picture.
MEASURE = r"""
const results = [];
for (const svg of document.querySelectorAll('svg')) {
const out = [];
results.push(out);
const page = svg.querySelector('g.graph > polygon').getBBox();
function outside(tb, b) {
  return Math.max(0, b.x - tb.x, tb.x + tb.width - (b.x + b.width), b.y - tb.y, tb.y + tb.height - (b.y + b.height));
}
for (const t of svg.querySelectorAll('text')) {
  const tb = t.getBBox(), group = t.closest('g.node, g.cluster');
  const row = {text: t.textContent, owner: group ? group.querySelector('title').textContent : 'graph',
               page: outside(tb, page), box: null};
  if (group) {
    const x = +t.getAttribute('x'), y = +t.getAttribute('y');
    const shapes = [...group.querySelectorAll('polygon, ellipse, path')].map(s => ({s, b: s.getBBox()}))
      .filter(({b}) => b.x - 1 <= tb.x + tb.width / 2 && tb.x + tb.width / 2 <= b.x + b.width + 1
                       && b.y - 1 <= y && y <= b.y + b.height + 1)
      .sort((a, c) => a.b.width * a.b.height - c.b.width * c.b.height);
    if (shapes.length) {
      const {s, b} = shapes[0];
      if (s.tagName === 'ellipse') {  // the text's box, cut to its letters' body, inside the ellipse
        const cx = +s.getAttribute('cx'), cy = +s.getAttribute('cy');
        const rx = +s.getAttribute('rx'), ry = +s.getAttribute('ry');
        const size = parseFloat(getComputedStyle(t).fontSize), mid = tb.y + tb.height / 2;
        let worst = 0;
        for (const px of [tb.x, tb.x + tb.width]) for (const py of [mid - 0.3 * size, mid + 0.3 * size]) {
          const r = Math.hypot((px - cx) / rx, (py - cy) / ry);
          worst = Math.max(worst, (r - 1) * rx);  // px beyond the rim, measured along x
        }
        row.box = worst;
      } else {
        row.box = Math.max(0, b.x - tb.x, tb.x + tb.width - (b.x + b.width));
      }
    }
  }
  out.push(row);
}
}
document.getElementById('result').textContent = JSON.stringify(results);
"""


def measure(drawings, tmp_path):
    """For each (svg path, font): [{text, owner, page, box}] for every text of the svg drawn
    with that font forced on every text. One page, one browser start, for all of them."""
    styles, bodies = [], []
    for k, (svg_path, font) in enumerate(drawings):
        svg = Path(svg_path).read_text(encoding="utf-8")
        styles.append(f".f{k} text {{ font-family: '{font}' !important; }}")
        bodies.append(f"<div class='f{k}'>{svg[svg.index('<svg'):]}</div>")
    page = tmp_path / "measure.html"
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{' '.join(styles)}</style></head>"
                    f"<body>{''.join(bodies)}<pre id='result'></pre><script>{MEASURE}</script></body></html>",
                    encoding="utf-8")
    proc = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                           "--virtual-time-budget=5000", page.as_uri()], capture_output=True, text=True, timeout=120)
    marker = '<pre id="result">'
    if marker not in proc.stdout:
        pytest.fail(f"the browser gave no result: {proc.stderr[-2000:]}")
    start = proc.stdout.index(marker) + len(marker)
    return json.loads(html.unescape(proc.stdout[start:proc.stdout.index("</pre>", start)]))


def overflowing(rows):
    return [r for r in rows if r["page"] > TOLERANCE or (r["box"] or 0) > TOLERANCE]


def pictures(tmp_path):
    """The README's picture as committed, and fresh drawings with long labels: every op of
    a pre-LN layer in training mode, and a backward graph with its norms and Σ nodes."""
    sys.path.insert(0, str(ROOT / "docs"))
    import make_encoder_layer_picture

    manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, norm_first=True)
    x = Tensor(np.random.default_rng(0).standard_normal((1, 3, 8)), requires_grad=True)
    x.name = "x: 3 token vectors"
    full = viz.render(viz.draw_graph(layer(x).sum(), model=layer, max_nodes=None), tmp_path / "full.svg")
    back = viz.render(viz.draw_graph(layer(x).sum(), model=layer, depth=1, backward=True), tmp_path / "back.svg")
    readme = viz.render(make_encoder_layer_picture.encoder_layer_graph(), tmp_path / "readme.svg")
    return [ROOT / "docs" / "img" / "encoder_layer.svg", Path(readme), Path(full), Path(back)]


def test_labels_fit_their_boxes_in_a_substitute_font(tmp_path):
    """Also checks that the check can fail: a label sized by graphviz alone, in a narrower font, spills."""
    import viz.style as style

    longest = "layers.0.self_attn.out_proj · Linear = W^O (1, 3, 8) → (1, 3, 8)"
    plain = tmp_path / "plain.svg"
    plain.write_bytes(viz.rendering._run(viz.rendering.find_renderer(),
                                         f'digraph {{ wide [label=<<b>{longest}</b>> shape=box '
                                         f'fontname="{style.FONT}"] }}', "svg"))
    drawings = [(svg, font) for svg in pictures(tmp_path) for font in ("DejaVu Sans", "Liberation Sans")]
    *results, control = measure(drawings + [(plain, "DejaVu Sans")], tmp_path)
    for (svg, font), rows in zip(drawings, results):
        assert len(rows) > 20 and sum(r["box"] is not None for r in rows) > 15
        assert not overflowing(rows), f"{svg.name} in {font}: {overflowing(rows)}"
    assert [r["text"] for r in overflowing(control)] == [longest]
