"""Self-attention by hand: two words, four numbers each, every step printed.

    python demos/self_attention_by_hand.py
    python demos/self_attention_by_hand.py --out /tmp/pictures

"Thinking Machines", as in The Illustrated Transformer, but with d_model = 4
and small whole-number weights, so every number below can be redone on paper.
The steps follow the article: embeddings x; q = x W^Q, k = x W^K, v = x W^V;
the scores q_i . k_j; division by sqrt(d_k); softmax; the weighted values
alpha_ij v_j and their sum z_i (the two-word table, for word A and word B).
Then the matrix form Z = softmax(Q K^T / sqrt(d_k)) V, the engine's
nn.MultiHeadAttention loaded with the same weights, and two heads: each
head's Z, their concatenation and W^O. Every "same as" is an assert.

One head has d_k = d_model = 4 (the article draws 3-wide q/k/v from 4-wide
embeddings; in nn.MultiHeadAttention, as in the paper, d_k = d_model / h).
sqrt(4) = 2 keeps the division easy.

Writes to --out: attention_by_hand.png (the one head's 2x2 weights) and
attention_two_heads.png (each head's 2x2 weights).
"""
import argparse
import math
from pathlib import Path

import numpy as np

import viz
import tinygrad_enc.functional as F
from tinygrad_enc import Tensor, nn, no_grad

TOKENS = ["Thinking", "Machines"]
LETTERS = ["A", "B"]  # the learner's notes call the two words A and B

# One row per word. The rows of each W^ below are picked so that q, k and v are
# small whole numbers; with two heads (columns 0-1 and 2-3) head 0 ends up
# looking mostly at the word itself and head 1 mostly at the other word.
X = [[1, 0, 1, 0],   # x1 "Thinking"
     [0, 1, 0, 1]]   # x2 "Machines"
W_Q = [[1, 0, 0, 0],
       [0, 1, 1, 1],
       [1, 1, 0, 1],
       [0, 1, 1, 0]]
W_K = [[1, 0, 1, 0],
       [0, 1, 0, 0],
       [1, 0, 1, 0],
       [0, 0, 1, 1]]
W_V = [[1, 0, 0, 0],
       [2, 0, 0, 0],
       [0, 2, 0, 1],
       [0, 0, 1, 3]]
# Two heads: concat (h * d_head = 4 wide) times W^O (4 x d_model) mixes the heads.
W_O = [[1, 0, 1, 0],
       [0, 1, 0, 0],
       [0, 0, 1, 1],
       [1, 0, 0, 1]]


def tensor(rows):
    """Float64, so the by-hand numbers and the engine's agree to the last digit."""
    return Tensor(np.array(rows, dtype=np.float64), dtype=np.float64)


def num(x):
    """A number as a learner would write it: 2, 2.5, 0.707 (at most 3 decimals)."""
    return f"{float(x):.3f}".rstrip("0").rstrip(".")


def vec(v, whole=None):
    """A vector as [a b c d]: whole numbers bare, others with 3 decimals, so
    the entries line up. `whole` forces one style (to match a matrix's rows)."""
    v = np.asarray(getattr(v, "data", v))
    whole = bool(np.all(v == np.round(v))) if whole is None else whole
    return "[" + " ".join(f"{x:.0f}" if whole else f"{x:.3f}" for x in v) + "]"


def matrix(name, m, indent="    "):
    """`name =` above the rows of matrix m, all rows in one style."""
    m = np.asarray(getattr(m, "data", m))
    whole = bool(np.all(m == np.round(m)))
    return f"{indent}{name} =\n" + "\n".join(f"{indent}  {vec(row, whole)}" for row in m)


def heading(text):
    print(f"\n{text}\n{'-' * len(text)}")


def attention(x, w_q, w_k, w_v):
    """The matrix form on engine tensors: Q, K, V, Q K^T / sqrt(d_k), the
    softmax weights and Z = weights V, each (T, .)."""
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    scaled = q @ k.T / math.sqrt(q.shape[-1])
    weights = F.softmax(scaled, axis=-1)
    return {"Q": q, "K": k, "V": v, "scaled": scaled, "weights": weights, "Z": weights @ v}


def by_hand(x, w_q, w_k, w_v):
    """Steps 1-6 of the article, one vector at a time, printed as they go."""
    d_k = w_q.shape[1]
    rows = range(x.shape[0])
    heading("Step 1. Queries, keys and values: q = x W^Q, k = x W^K, v = x W^V")
    print("  query q: what this word is looking for (the question)")
    print("  key   k: what this word can be found by (the label)")
    print("  value v: what this word hands over when it is found (the content)")
    for name, w in (("W^Q", w_q), ("W^K", w_k), ("W^V", w_v)):
        print(matrix(name, w))
    q = [x[i] @ w_q for i in rows]
    k = [x[i] @ w_k for i in rows]
    v = [x[i] @ w_v for i in rows]
    for i in rows:
        n = i + 1
        print(f"  {TOKENS[i]:<9} q{n} = x{n} W^Q = {vec(q[i])}   k{n} = x{n} W^K = {vec(k[i])}"
              f"   v{n} = x{n} W^V = {vec(v[i])}")

    heading("Step 2. Scores: how well query i matches key j, q_i . k_j")
    scores = [[(q[i] * k[j]).sum() for j in rows] for i in rows]
    for i in rows:
        for j in rows:
            terms = " + ".join(f"{num(a)}*{num(b)}" for a, b in zip(q[i].data, k[j].data))
            print(f"  {TOKENS[i]:<9} q{i + 1} . k{j + 1} = {terms} = {num(scores[i][j].item())}")

    heading(f"Step 3. Divide by sqrt(d_k) = sqrt({d_k}) = {num(math.sqrt(d_k))}")
    scaled = [Tensor.stack(row) / math.sqrt(d_k) for row in scores]
    for i in rows:
        print(f"  {TOKENS[i]:<9} " + "   ".join(
            f"{num(scores[i][j].item())} / {num(math.sqrt(d_k))} = {num(scaled[i].data[j])}"
            for j in rows))

    heading("Step 4. Softmax over each word's row: positive weights that sum to 1")
    weights = [F.softmax(row, axis=-1) for row in scaled]
    for i in rows:
        exps = np.exp(scaled[i].data)
        print(f"  {TOKENS[i]:<9} " + ",  ".join(f"e^{num(s)} = {e:.3f}" for s, e in
                                                zip(scaled[i].data, exps))
              + f",  sum = {exps.sum():.3f}")
        print(f"  {'':<9} weights " + ",  ".join(
            f"{e:.3f} / {exps.sum():.3f} = {a:.3f}" for e, a in zip(exps, weights[i].data)))

    heading("Steps 5 and 6. Weigh each value vector by its weight, then add them up")
    z = []
    for i in rows:
        a = LETTERS[i]
        weighted = [weights[i][j] * v[j] for j in rows]
        z.append(Tensor.stack(weighted).sum(axis=0))
        total = " + ".join(f"α_{a}{LETTERS[j]} * V_{LETTERS[j]}" for j in rows)
        print(f"\n  For word {a} (\"{TOKENS[i]}\", z{i + 1}):")
        print(f"    {'Attention Weight':<18}| {'Value Vector':<18}| Weighted Value")
        for j in rows:
            b = LETTERS[j]
            print(f"    {f'α_{a}{b} = {weights[i].data[j]:.3f}':<18}| {f'V_{b} = {vec(v[j])}':<18}| "
                  f"α_{a}{b} * V_{b} = {vec(weighted[j])}")
        print(f"    {'Sum':<18}| {'':<18}| Output_{a} = {total}")
        print(f"    {'':<18}| {'':<18}|          = {vec(z[i])}")
    return {"scores": np.array([[s.item() for s in row] for row in scores]),
            "scaled": np.stack([s.data for s in scaled]),
            "weights": np.stack([w.data for w in weights]),
            "Z": np.stack([zi.data for zi in z])}


def engine(x, w_q, w_k, w_v, w_o, n_heads):
    """Run nn.MultiHeadAttention(d_model, n_heads) loaded with these matrices
    (biases zero) on the two words; return (Z, attn_weights (H, T, T)).

    nn.Linear keeps weight (out, in) and computes x W^T, as PyTorch does, so
    each paper-style W (in, out) is loaded transposed."""
    d_model = x.shape[-1]
    mha = nn.MultiHeadAttention(d_model, n_heads).to(np.float64)
    zeros = np.zeros(d_model)
    mha.load_state_dict({
        "q_proj.weight": w_q.data.T, "q_proj.bias": zeros,
        "k_proj.weight": w_k.data.T, "k_proj.bias": zeros,
        "v_proj.weight": w_v.data.T, "v_proj.bias": zeros,
        "out_proj.weight": w_o.data.T, "out_proj.bias": zeros,
    })
    with no_grad():
        out = mha(x.reshape(1, *x.shape))  # a batch of one sentence: (1, T, d_model)
    return out.data[0], mha.attn_weights[0]


def same(name, a, b):
    a, b = np.asarray(getattr(a, "data", a)), np.asarray(getattr(b, "data", b))
    assert np.allclose(a, b, atol=1e-12), f"{name}: {a} != {b}"
    print(f"  same as {name}: yes (largest difference {np.abs(a - b).max():.1e})")


def single_head(x, w_q, w_k, w_v):
    d_k = w_q.shape[1]
    result = by_hand(x, w_q, w_k, w_v)

    heading("The matrix form: Z = softmax(Q K^T / sqrt(d_k)) V, all words at once")
    m = attention(x, w_q, w_k, w_v)
    print("  X stacks the words as rows (2 x 4); Q = X W^Q, K = X W^K, V = X W^V.")
    for name in ("Q", "K", "V"):
        print(matrix(name, m[name]))
    print(matrix(f"Q K^T / sqrt({d_k})", m["scaled"]))
    print(matrix("softmax(Q K^T / sqrt(d_k))", m["weights"]))
    print(matrix("Z", m["Z"]))
    same("the rows z1, z2 worked out step by step", m["Z"], result["Z"])

    heading("The engine: nn.MultiHeadAttention(d_model=4, n_heads=1)")
    print("  q_proj.weight = (W^Q)^T, k_proj.weight = (W^K)^T, v_proj.weight = (W^V)^T")
    print("  (nn.Linear stores weight as (out, in) and computes x W^T, like PyTorch);")
    print("  every bias 0, out_proj.weight = identity, so the layer's output is Z itself.")
    identity = tensor(np.eye(x.shape[1]))
    z_engine, w_engine = engine(x, w_q, w_k, w_v, identity, n_heads=1)
    print(matrix("mha(X)", z_engine))
    same("Z", z_engine, m["Z"])
    same("the softmax weights (mha.attn_weights[0, 0])", w_engine[0], m["weights"])
    result.update({key: m[key].data for key in ("Q", "K", "V")},
                  Z_matrix=m["Z"].data, Z_engine=z_engine, weights_engine=w_engine[0])
    return result


def two_heads(x, w_q, w_k, w_v, w_o, n_heads=2):
    d_model = x.shape[1]
    d_head = d_model // n_heads
    heading(f"Multi-head attention: h = {n_heads} heads, d_head = d_model / h = {d_head}")
    print(f"  The same W^Q, W^K, W^V, cut into {n_heads} slices of {d_head} columns: head h uses")
    print(f"  columns {d_head}h .. {d_head}h+{d_head - 1}, written W^Q_h (that is how nn.MultiHeadAttention"
          " splits d_model).")
    print(f"  Each head divides by sqrt(d_head) = sqrt({d_head}) = {math.sqrt(d_head):.3f}.")
    heads = []
    for h in range(n_heads):
        cols = slice(h * d_head, (h + 1) * d_head)
        m = attention(x, w_q[:, cols], w_k[:, cols], w_v[:, cols])
        heads.append({key: t.data for key, t in m.items()})
        print(f"\n  head {h}:")
        for name in ("Q", "K", "V"):
            print(matrix(f"{name}_{h} = X W^{name}_{h}", m[name]))
        print(matrix(f"Q_{h} K_{h}^T / sqrt({d_head})", m["scaled"]))
        print(matrix("weights", m["weights"]))
        print(matrix(f"Z_{h}", m["Z"]))
        looks = ["itself" if np.argmax(row) == i else "the other word"
                 for i, row in enumerate(m["weights"].data)]
        print("    " + "; ".join(f"{TOKENS[i]} looks most at {w}" for i, w in enumerate(looks)))

    heading("Concatenate the heads, then project back with W^O")
    concat = Tensor.cat([tensor(hd["Z"]) for hd in heads], axis=-1)
    print(f"  concat(Z_0, Z_1): one row per word, h * d_head = {n_heads} * {d_head} = "
          f"{concat.shape[1]} wide")
    print(matrix("concat", concat))
    print(matrix(f"W^O ({concat.shape[1]} x d_model = {concat.shape[1]} x {d_model})", w_o))
    z = concat @ w_o
    print(matrix("Z = concat W^O", z))
    print(f"\n  nn.MultiHeadAttention(d_model={d_model}, n_heads={n_heads}), same W^Q, W^K, W^V, "
          f"out_proj.weight = (W^O)^T:")
    z_engine, w_engine = engine(x, w_q, w_k, w_v, w_o, n_heads)
    print(matrix("mha(X)", z_engine))
    same("concat W^O", z_engine, z)
    same("each head's weights (mha.attn_weights[0])", w_engine, np.stack([hd["weights"] for hd in heads]))
    return {"heads": heads, "concat": concat.data, "Z": z.data, "Z_engine": z_engine,
            "weights": np.stack([hd["weights"] for hd in heads]), "weights_engine": w_engine}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", default="out", help="folder for the pictures")
    args = parser.parse_args(argv)

    x, w_q, w_k, w_v, w_o = (tensor(m) for m in (X, W_Q, W_K, W_V, W_O))
    print(f'Self-attention by hand: "{" ".join(TOKENS)}", d_model = {x.shape[1]}, '
          f"one head with d_k = {w_q.shape[1]}")
    heading("Step 0. The embeddings, one row per word")
    for i, token in enumerate(TOKENS):
        print(f"  x{i + 1} = {vec(x[i])}   word {LETTERS[i]}, \"{token}\"")

    result = single_head(x, w_q, w_k, w_v)
    result["two_heads"] = two_heads(x, w_q, w_k, w_v, w_o)
    result.update(tokens=TOKENS, d_k=w_q.shape[1], x=x.data, W_Q=w_q.data, W_K=w_k.data,
                  W_V=w_v.data, W_O=w_o.data)

    out = Path(args.out)
    result["paths"] = [
        viz.attention_heatmap(result["weights"], TOKENS, TOKENS, out / "attention_by_hand.png"),
        viz.attention_heatmap(result["two_heads"]["weights"], TOKENS, TOKENS,
                              out / "attention_two_heads.png"),
    ]
    print()
    for path in result["paths"]:
        print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
