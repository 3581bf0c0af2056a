"""Pictures of the computation: graphs, attention weights, positional encodings, training curves.

`import viz` is light: graphviz and matplotlib are imported only by the
functions that draw with them.
"""

from .graph import draw_graph
from .plots import (attention_digraph, attention_graph, attention_heatmap, loss_curve,
                    positional_encoding, save_figure)
from .rendering import render
