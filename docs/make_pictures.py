"""Regenerate every picture of the tour (docs/img/) from the demos.

    python docs/make_pictures.py

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
import make_encoder_layer_picture  # noqa: E402
import positional_encoding  # noqa: E402
import self_attention_by_hand  # noqa: E402
import train_encoder  # noqa: E402

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
}


def main():
    IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for demo, (args, files) in PICTURES.items():
            out = Path(scratch) / demo.__name__
            demo.main(args + ["--out", str(out)])
            for written, name in files.items():
                shutil.copyfile(out / written, IMG / name)
                print(f"docs/img/{name}")
    make_encoder_layer_picture.main(IMG)


if __name__ == "__main__":
    main()
