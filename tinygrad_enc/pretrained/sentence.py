"""Sentence embeddings: one vector per text, so that texts of similar meaning
lie close together.

The encoder gives one vector per token; all-MiniLM-L6-v2 was trained so that
the mean of a text's token vectors (padding left out), scaled to length 1,
places paraphrases near each other. With length-1 vectors the dot product of
two embeddings is their cosine similarity.
"""
import numpy as np

from .. import functional as F
from ..nn.pooling import mean_pool
from ..tensor import no_grad


def sentence_embeddings(model, tokenizer, texts, batch_size=32, truncation=False):
    """(N, d_model) float ndarray: for each of the N texts, the mean of its
    token vectors over its non-padding tokens, L2-normalised.

    Runs without building a graph and with dropout off (a model in training
    mode is put in eval mode for the call and back afterwards). Texts are
    encoded `batch_size` at a time, sorted by length so that little padding is
    computed; the rows come back in the order of `texts`. `truncation` is the
    tokenizer's (an over-long text raises unless it is True).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"sentence_embeddings: batch_size must be a positive int, got "
                         f"{batch_size!r}")
    batch = tokenizer(texts, truncation=truncation)  # checks texts; one call: one padding
    lengths = (~batch["key_padding_mask"]).sum(axis=1)
    order = np.argsort(-lengths, kind="stable")
    out = None  # (N, d_model), allocated when d_model and the dtype are known
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                T = int(lengths[rows].max())
                inputs = {name: array[rows, :T] for name, array in batch.items()}
                hidden = model(inputs["input_ids"], token_type_ids=inputs["token_type_ids"],
                               key_padding_mask=inputs["key_padding_mask"])
                pooled = F.normalize(mean_pool(hidden, inputs["key_padding_mask"]), dim=1)
                if out is None:
                    out = np.empty((len(order), pooled.shape[1]), dtype=pooled.dtype)
                out[rows] = pooled.data                                # back in text order
    finally:
        model.train(was_training)
    return out
