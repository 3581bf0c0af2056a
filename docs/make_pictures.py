"""Regenerate every picture of the tour (docs/img/) from the demos.

    python docs/make_pictures.py                    # all of them
    python docs/make_pictures.py translate_dates    # one demo's

Runs each demo with its defaults into a scratch folder and copies the
pictures the tour shows into docs/img/ under stable names, then draws the
README's picture of one encoder layer. Rerun it whenever a demo changes what
its pictures show.
"""
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
sys.path.insert(0, str(ROOT / "demos"))
sys.path.insert(0, str(ROOT / "docs"))

import graph_tour  # noqa: E402
import greedy_vs_beam  # noqa: E402
import make_encoder_layer_picture  # noqa: E402
import positional_encoding  # noqa: E402
import self_attention_by_hand  # noqa: E402
import tiny_gpt  # noqa: E402
import train_encoder  # noqa: E402
import translate_dates  # noqa: E402

# demo -> (its arguments, {file it writes (under --out): name in docs/img})
PICTURES = {
    self_attention_by_hand: ([], {"attention_by_hand.png": "attention_by_hand.png",
                                  "attention_two_heads.png": "attention_two_heads.png"}),
    positional_encoding: ([], {"positional_encoding.png": "positional_encoding.png",
                               "position_similarity.png": "position_similarity.png",
                               "sinusoidal_vs_learned.png": "sinusoidal_vs_learned.png",
                               "position_waves.png": "position_waves.png"}),
    train_encoder: (["--no-progress"], {"loss_curve.png": "reverse_loss_curve.png",
                                        "attention_layer0.png": "reverse_attention_layer0.png",
                                        "attention_layer1.png": "reverse_attention_layer1.png",
                                        "attention_graph.svg": "reverse_attention_graph.svg"}),
    graph_tour: ([], {f"graph_tour/{name}.svg": f"graph_{name}.svg"
                      for name in ["depth0", "depth1", "depth2", "depth3", "depth4", "backward"]}),
    translate_dates: (["--no-progress"], {
        "loss_curve.png": "dates_loss_curve.png",
        "self_attention_layer0.png": "dates_self_attention_layer0.png",
        "cross_attention_layer1.png": "dates_cross_attention_layer1.png",
        "output_distribution.png": "dates_output_distribution.png",
        "transformer_graph.svg": "transformer_graph.svg"}),
    greedy_vs_beam: ([], {"search_tree.svg": "search_tree.svg"}),
    tiny_gpt: (["--no-progress"], {"loss_curve.png": "gpt_loss_curve.png"}),
}


def main(only=None):
    """Redraw every picture, or only those of the demos named in `only`
    (e.g. ["translate_dates"]; then the README's picture is left as it is)."""
    IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for demo, (args, files) in PICTURES.items():
            if only and demo.__name__ not in only:
                continue
            out = Path(scratch) / demo.__name__
            demo.main(args + ["--out", str(out)])
            for written, name in files.items():
                shutil.copyfile(out / written, IMG / name)
                print(f"docs/img/{name}")
    if not only:
        make_encoder_layer_picture.main(IMG)


if __name__ == "__main__":
    main(sys.argv[1:])
