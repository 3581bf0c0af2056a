"""Greedy decoding against beam search, on a next-word table small enough to check by hand.

    python demos/greedy_vs_beam.py

A decoder gives, for every prefix, a probability for each next word. Here
that "model" is a hand-written table (so every number can be redone on
paper), and the real decoding code of nn.decoding runs on it. Greedy takes
the likeliest word at each step and can walk into a dead end: its first
choice "the" (0.5) is followed by nothing convincing, so it stops. Beam
search keeps the two best prefixes at every step, so "a" (0.4) survives,
and "a student" turns out far likelier as a whole. Writes --out/search_tree.svg:
the tree of prefixes, greedy's path in orange, beam search's in blue.
"""
import argparse
from pathlib import Path

import numpy as np

import viz
from tinygrad_enc import Tensor
from tinygrad_enc.nn import decoding

WORDS = ["<start>", "<end>", "the", "a", "student", "cat"]
START, END = 0, 1
# prefix (words after <start>) -> probabilities of the next word, in WORDS order
TABLE = {
    (): {"the": 0.5, "a": 0.4, "<end>": 0.1},
    ("the",): {"<end>": 0.4, "student": 0.3, "cat": 0.3},
    ("a",): {"student": 0.9, "cat": 0.05, "<end>": 0.05},
}
AFTER_A_NOUN = {"<end>": 1.0}  # a noun ends the sentence


def next_word_probabilities(prefix):
    """The table's row for `prefix` (a tuple of words), as a vector over WORDS."""
    row = TABLE.get(prefix, AFTER_A_NOUN)
    return np.array([row.get(word, 0.0) for word in WORDS])


def table_stepper():
    """A decoding.Stepper whose "model" reads the table (log-probabilities as logits)."""
    def forward(ids, offset):
        rows = [next_word_probabilities(tuple(WORDS[i] for i in row[1:])) for row in ids]
        with np.errstate(divide="ignore"):  # log 0 = -inf: that word cannot come next
            return Tensor(np.log(np.array(rows))[:, None, :], dtype=np.float64)
    return decoding.Stepper(forward)


def probability(words):
    """The probability of a whole sentence: the product of its steps' probabilities."""
    p = 1.0
    for i, word in enumerate(words):
        p *= next_word_probabilities(tuple(words[:i]))[WORDS.index(word)]
    return p


def run(beam_size):
    ids = decoding.generate(table_stepper(), np.array([[START]]), 5, end_id=END,
                            beam_size=beam_size)[0]
    words = [WORDS[i] for i in ids]
    return words, probability(words)


def search_tree(greedy, beam):
    """The table as a tree of prefixes, edges labelled with the next word's
    probability; greedy's path in orange, beam search's in blue."""
    import graphviz

    g = graphviz.Digraph("search", graph_attr={"rankdir": "LR"},
                         node_attr={"shape": "box", "style": "rounded", "fontname": "Helvetica"},
                         edge_attr={"fontname": "Helvetica"})
    g.node("", "<&lt;start&gt;>")  # an HTML label: a plain "<start>" would be read as one
    for prefix in [()] + [key for key in TABLE if key]:
        for word, p in TABLE.get(prefix, AFTER_A_NOUN).items():
            words = prefix + (word,)
            name = " ".join(words)
            label = f"{name}\\np = {probability(list(words)):.2f}"
            if word not in ("<end>",) and words not in TABLE:
                words_end = words + ("<end>",)
                g.node(" ".join(words_end), f"{' '.join(words_end)}\\np = "
                       f"{probability(list(words_end)):.2f}")
                g.edge(name, " ".join(words_end), "1.0", **_path_style(words_end, greedy, beam))
            g.node(name, label)
            g.edge(" ".join(prefix), name, f"{p}", **_path_style(words, greedy, beam))
    return g


def _path_style(words, greedy, beam):
    for path, colour in ((beam, "#1f77b4"), (greedy, "#ff7f0e")):
        if list(words) == path[:len(words)]:
            return {"color": colour, "penwidth": "2.5", "fontcolor": colour}
    return {"color": "#999999"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beam-size", type=int, default=2)
    parser.add_argument("--out", default="out", help="folder for the search tree picture")
    args = parser.parse_args(argv)
    for prefix, row in TABLE.items():
        shown = ", ".join(f"{w} {p}" for w, p in row.items())
        print(f"after <start> {' '.join(prefix)}: {shown}")
    greedy, p_greedy = run(1)
    beam, p_beam = run(args.beam_size)
    print(f"greedy:            {' '.join(greedy)}  probability {p_greedy:.3f} "
          f"(log {np.log(p_greedy):.3f})")
    print(f"beam search ({args.beam_size}): {' '.join(beam)}  probability {p_beam:.3f} "
          f"(log {np.log(p_beam):.3f})")
    path = viz.render(search_tree(greedy, beam), Path(args.out) / "search_tree", format="svg")
    print(f"wrote {path}")
    return {"greedy": greedy, "greedy_p": p_greedy, "beam": beam, "beam_p": p_beam,
            "path": path}


if __name__ == "__main__":
    main()
