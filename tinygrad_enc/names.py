"""The names the library gives the tensors a reader looks for: declared here, once.

When the nn code makes something "The Illustrated Transformer" names, it
names the tensor (`q.name = names.Q`); a learner may name their own tensors
the same way (`x.name = "x: 3 token vectors"`). viz reads these names, and
only these, to write the paper's terms on a picture (scores = Q·Kᵀ/√d_k), to
find the skip input of a residual add, the heads of an attention call and
the dropout masks. Nothing is guessed from the shape of the ops: a
hand-written `(d * d).mean()` is drawn as a mul and a mean, never as a variance.
"""

Q, K, V = "Q", "K", "V"              # the projections x·W^Q, x·W^K, x·W^V, before the split into heads
SCORES = "scores"                    # Q·Kᵀ/√d_k, (B, H, T_q, T_k)
WEIGHTS = "attention weights"        # softmax(scores)
Z = "Z"                              # weights·V, per head
CONCAT = "concat"                    # the heads side by side again, (B, T, d_model), before W^O
RESIDUAL = "residual"                # x + sublayer(x)
DROPOUT_MASK = "dropout mask"        # the keep-mask / (1 - p) that dropout multiplies by

SPLIT_INTO_HEADS = (Q, K, V)         # the tensors MultiHeadAttention reshapes into (B, H, T, d_k)


def dropout_mask(p: float) -> str:
    """The name of the mask of a dropout with drop probability p: "dropout mask, p=0.1"."""
    return f"{DROPOUT_MASK}, p={p:g}"


def is_dropout_mask(name) -> bool:
    return isinstance(name, str) and name.startswith(DROPOUT_MASK)
