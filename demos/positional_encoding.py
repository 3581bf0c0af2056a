"""Positional encoding: how a model that sees a set of tokens learns their order.

    python demos/positional_encoding.py
    python demos/positional_encoding.py --max-len 100 --d-model 128 --out /tmp/pe

Attention and the feed-forward network treat every token alike wherever it
sits, so the encoder is blind to word order until we add to each token's
embedding a vector that depends on its position. The paper's vector is a
set of sine and cosine waves:

    pe[pos, 2i]   = sin(pos / 10000^(2i / d_model))
    pe[pos, 2i+1] = cos(pos / 10000^(2i / d_model))

This demo prints the d_model = 4 table for positions 0-3, shows that the dot
product of two positions' vectors depends only on their distance, compares
the fixed table with a learned one at initialisation, and proves the point
of it all: an encoder layer without positions is permutation-equivariant
(shuffle the tokens and the outputs shuffle the same way), with them it is not.

Writes to --out: positional_encoding.png (the table as a heatmap),
position_similarity.png (pe . pe^T), sinusoidal_vs_learned.png,
position_waves.png (a few dimensions against the position).
"""
import argparse
from pathlib import Path

import numpy as np

import viz
from tinygrad_enc import Tensor, manual_seed, nn, no_grad

WAVE_DIMS = (0, 4, 10, 20)      # even dimensions (sines), from fast to slow
SIMILARITY_ROWS = (10, 25, 40)  # positions whose similarity rows are drawn as lines
OFFSETS = (1, 2, 5, 10)         # distances k for the printed pe[p] . pe[p + k]


def sinusoidal(d_model, max_len):
    """The library's table, (max_len, d_model), as float64 for printing."""
    return nn.SinusoidalPositionalEncoding(d_model, max_len).pe.astype(np.float64)


def similarity(pe):
    """pe @ pe^T: entry (i, j) is the dot product of positions i and j."""
    table = Tensor(pe, dtype=np.float64)
    return (table @ table.T).data


def heading(text):
    print(f"\n{text}\n{'-' * len(text)}")


def frequency(d_model):
    """omega_i = 1 / 10000^(2i / d_model), one per pair of dimensions (2i, 2i+1)."""
    return 10000.0 ** (-np.arange(0, d_model, 2) / d_model)


def print_small_table(d_model=4, positions=4):
    """The formula worked out in float64 for a tiny table, checked against the
    library's buffer (float32, so cos(0.01) = 0.99995 is stored as 0.9999499)."""
    heading(f"The table for d_model = {d_model}, positions 0-{positions - 1}")
    omega = frequency(d_model)
    angle = np.arange(positions)[:, None] * omega  # (positions, d_model / 2)
    pe = np.stack([np.sin(angle), np.cos(angle)], axis=-1).reshape(positions, d_model)
    assert np.allclose(pe, sinusoidal(d_model, positions), atol=1e-6)
    print("  pe[pos, 2i] = sin(pos * w_i),  pe[pos, 2i+1] = cos(pos * w_i),  w_i = 1 / 10000^(2i / d_model)")
    print("  here " + ", ".join(f"w_{i} = {w:g}" for i, w in enumerate(omega))
          + ": dims 0-1 turn fast, dims 2-3 slowly")
    header = "".join(f"  dim {d} ({'sin' if d % 2 == 0 else 'cos'})" for d in range(d_model))
    print(f"  position{header}")
    for pos, row in enumerate(pe):
        print(f"  {pos:>8}" + "".join(f"{v:>13.4f}" for v in row))
    print("  (the same numbers as nn.SinusoidalPositionalEncoding(4, 4).pe, to 1e-6)")
    return pe


def print_distance_only(pe):
    heading("Similarity of two positions depends only on their distance")
    print("  pe[p] . pe[p + k] = sum_i sin(w_i p) sin(w_i (p + k)) + cos(w_i p) cos(w_i (p + k))")
    print("                    = sum_i cos(w_i k): no p in it.")
    print(f"  pe[p] . pe[p + k] for d_model = {pe.shape[1]}:")
    sim = similarity(pe)
    starts = (0, 10, 30)
    print(f"  {'distance k':>10}" + "".join(f"{f'p = {p}':>10}" for p in starts))
    by_offset = {}
    for k in OFFSETS:
        by_offset[k] = [float(sim[p, p + k]) for p in starts]
        print(f"  {k:>10}" + "".join(f"{v:>10.3f}" for v in by_offset[k]))
        assert np.allclose(by_offset[k], by_offset[k][0], atol=1e-4)
    print(f"  (and pe[p] . pe[p] = d_model / 2 = {sim[0, 0]:.1f} for every p: each sin^2 + cos^2 is 1)")
    return sim, by_offset


def equivariance(d_model=16, n_heads=2, d_ff=32, length=5, seed=0):
    """max |layer(x[perm]) - layer(x)[perm]|, without and with sinusoidal positions added."""
    manual_seed(seed)
    layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0).to(np.float64).eval()
    positions = nn.SinusoidalPositionalEncoding(d_model, length).to(np.float64)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, length, d_model))
    perm = rng.permutation(length)
    if np.array_equal(perm, np.arange(length)):
        perm = np.roll(perm, 1)  # a permutation that actually moves tokens
    diffs = {}
    with no_grad():
        for name, prepare in (("without positions", lambda t: t),
                              ("with sinusoidal positions", positions)):
            out = layer(prepare(Tensor(x, dtype=np.float64))).data
            out_perm = layer(prepare(Tensor(x[:, perm], dtype=np.float64))).data
            diffs[name] = float(np.abs(out_perm - out[:, perm]).max())
    return perm, diffs


def print_equivariance(seed):
    heading("Why positions are needed: shuffle the tokens, compare the outputs")
    perm, diffs = equivariance(seed=seed)
    print("  nn.TransformerEncoderLayer(d_model=16, n_heads=2, d_ff=32, dropout=0.0)")
    print(f"  {len(perm)} random token vectors x, then the same vectors in the order {perm.tolist()}")
    print("  max |layer(x permuted) - (layer(x)) permuted|:")
    for name, d in diffs.items():
        print(f"    {name:<26} {d:.1e}")
    print("  Without positions the outputs are the same vectors, only shuffled: the layer")
    print("  cannot tell one word order from another. With positions added, moving a token")
    print("  changes what it computes.")
    assert diffs["without positions"] < 1e-5 and diffs["with sinusoidal positions"] > 1e-3
    return perm, diffs


def print_sinusoidal_vs_learned(pe, learned):
    heading("Sinusoidal vs learned (nn.LearnedPositionalEmbedding at initialisation)")
    print("  mean of pe[p] . pe[p + k] over p:")
    print(f"  {'distance k':>10}{'sinusoidal':>12}{'learned':>12}")
    means = {}
    for k in OFFSETS:
        means[k] = [float(np.mean(np.sum(t[:-k] * t[k:], axis=1))) for t in (pe, learned)]
        print(f"  {k:>10}" + "".join(f"{m:>12.3f}" for m in means[k]))
    print("  The sinusoidal table knows which positions are near each other; the learned table")
    print("  starts as noise (no trend with distance) and must learn any such order in training.")
    return means


def draw_similarity(sim, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1, 1.3))
    image = left.imshow(sim, cmap="viridis", interpolation="nearest")
    left.set_title("pe[i] . pe[j]: bright near the diagonal")
    left.set_xlabel("position j")
    left.set_ylabel("position i")
    fig.colorbar(image, ax=left, label="dot product", shrink=0.85)
    for p in SIMILARITY_ROWS:
        right.plot(np.arange(len(sim)), sim[p], marker=".", label=f"position i = {p}")
        right.axvline(p, color="grey", lw=0.5, ls=":")
    right.set_title("rows of the left picture: one shape, shifted to each position")
    right.set_xlabel("position j")
    right.set_ylabel("pe[i] . pe[j]")
    right.grid(alpha=0.3)
    right.legend()
    fig.suptitle(f"Similarity between positions (sinusoidal, d_model = {sim[0, 0] * 2:.0f}): "
                 "it depends only on the distance |i - j|")
    return viz.save_figure(fig, path)


def draw_sinusoidal_vs_learned(pe, learned, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 8), layout="constrained")
    axes = fig.subplots(2, 2)
    for col, (name, table) in enumerate((("sinusoidal: fixed, by formula", pe),
                                         ("learned: at initialisation, N(0, 1)", learned))):
        limit = np.abs(table).max()
        image = axes[0, col].imshow(table, cmap="RdBu_r", vmin=-limit, vmax=limit,
                                    aspect="auto", interpolation="nearest")
        axes[0, col].set_title(f"{name}\nthe table")
        axes[0, col].set_xlabel("dimension")
        axes[0, col].set_ylabel("position")
        fig.colorbar(image, ax=axes[0, col], label="value")
        image = axes[1, col].imshow(similarity(table), cmap="viridis", interpolation="nearest")
        axes[1, col].set_title("similarity pe[i] . pe[j]")
        axes[1, col].set_xlabel("position j")
        axes[1, col].set_ylabel("position i")
        fig.colorbar(image, ax=axes[1, col], label="dot product")
    fig.suptitle("Sinusoidal vs learned positions: the learned table starts as noise, with no notion "
                 "of distance;\ntraining must discover one, and it has nothing for positions beyond "
                 "max_len. The sinusoidal table has it built in.")
    return viz.save_figure(fig, path)


def draw_waves(pe, path):
    from matplotlib.figure import Figure

    d_model = pe.shape[1]
    fine = np.linspace(0, len(pe) - 1, 20 * len(pe))
    fig = Figure(figsize=(9, 1.7 * len(WAVE_DIMS) + 0.6), layout="constrained")
    axes = fig.subplots(len(WAVE_DIMS), 1, sharex=True)
    for ax, dim in zip(axes, WAVE_DIMS):
        omega = frequency(d_model)[dim // 2]
        ax.plot(fine, np.sin(fine * omega), color="lightgrey", lw=1)
        ax.plot(np.arange(len(pe)), pe[:, dim], ".", color="C0")
        ax.set_ylim(-1.15, 1.15)
        ax.set_ylabel(f"dim {dim}")
        ax.set_title(f"dimension {dim}: sin(pos / 10000^({dim}/{d_model})), wavelength "
                     f"{2 * np.pi / omega:.1f} positions", fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("position")
    fig.suptitle("Each dimension is a wave of its own frequency (dots: the values each position gets)")
    return viz.save_figure(fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--max-len", type=int, default=50, help="positions drawn")
    parser.add_argument("--d-model", type=int, default=64, help="dimensions drawn (even)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the learned table and the permutation test")
    parser.add_argument("--out", default="out", help="folder for the pictures")
    args = parser.parse_args(argv)
    if args.d_model % 2 or args.d_model <= max(WAVE_DIMS) or args.max_len <= max(SIMILARITY_ROWS):
        parser.error(f"--d-model must be even and > {max(WAVE_DIMS)}, "
                     f"--max-len > {max(SIMILARITY_ROWS)}")

    pe4 = print_small_table()
    pe = sinusoidal(args.d_model, args.max_len)
    sim, by_offset = print_distance_only(pe)

    manual_seed(args.seed)
    learned = nn.LearnedPositionalEmbedding(args.max_len, args.d_model).weight.data.astype(np.float64)
    learned_vs = print_sinusoidal_vs_learned(pe, learned)
    perm, diffs = print_equivariance(args.seed)

    out = Path(args.out)
    paths = [viz.positional_encoding(pe, out / "positional_encoding.png"),
             draw_similarity(sim, out / "position_similarity.png"),
             draw_sinusoidal_vs_learned(pe, learned, out / "sinusoidal_vs_learned.png"),
             draw_waves(pe, out / "position_waves.png")]
    print()
    for path in paths:
        print(f"wrote {path}")
    return {"pe_d4": pe4, "pe": pe, "similarity": sim, "similarity_by_offset": by_offset,
            "learned": learned, "sinusoidal_vs_learned": learned_vs, "permutation": perm,
            "equivariance": diffs, "paths": paths}


if __name__ == "__main__":
    main()
