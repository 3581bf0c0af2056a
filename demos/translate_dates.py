"""Translate dates written many ways into ISO 8601: a whole Transformer, encoder and decoder.

    python demos/translate_dates.py                       # train, evaluate, draw
    python demos/translate_dates.py "Nov 28, 2026" "tuesday, 3 march 1998"
    python demos/translate_dates.py --steps 50 --out /tmp/quick

A small real translation task, made on the fly from Python's datetime and
read character by character: "28 November 2026", "Nov 28, 2026",
"28/11/2026", "Saturday, 28 November 2026", "SAT 28 NOV 2026", ... all mean
2026-11-28. The encoder reads the source characters; the decoder writes the
ISO date one character at a time, each step attending (encoder-decoder
attention) to the source characters it needs: the month digits look at the
month's name, the day digits at the day.

Training is teacher forcing: the decoder input is the target shifted right
([start] 2 0 2 6 - 1 1 - 2), scored against the target (2 0 2 6 - 1 1 - 2 8
[end]). Testing decodes greedily from [start] alone, on 1,000 dates never
seen in training. Writes to --out: loss_curve.png, self_attention_layer{L}.png
and cross_attention_layer{L}.png (one panel per head), output_distribution.png
(the softmax at every step), transformer_graph.svg (the graph at depth 2),
translate_dates.npz.
"""
import argparse
import datetime
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import viz
import tinygrad_enc.functional as F
from tinygrad_enc import manual_seed, nn, no_grad, optim

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
FIRST, LAST = datetime.date(1900, 1, 1).toordinal(), datetime.date(2099, 12, 31).toordinal()


def _ordinal(day):
    return f"{day}{'th' if 10 <= day % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


# Each surface form: a function of the date -> text. Day-first numeric forms only, so
# "03/04/2026" has one reading.
FORMS = [
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
    lambda d: f"{d.day}.{d.month}.{d.year}",
    lambda d: f"{d.day:02d}-{MONTHS[d.month - 1][:3]}-{d.year}",
    lambda d: f"{WEEKDAYS[d.weekday()]}, {d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{WEEKDAYS[d.weekday()][:3]} {d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    lambda d: f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"the {_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {_ordinal(d.day)}, {d.year}",
    lambda d: f"{d.year}/{d.month}/{d.day}",
]
CASES = [str, str.lower, str.upper]

PAD, START, END = 0, 1, 2  # the start symbol is not the padding id: it must be attended to
SRC_CHARS = sorted(set("".join(MONTHS + WEEKDAYS).lower() + "".join(MONTHS + WEEKDAYS).upper()
                       + "0123456789 ,./-"))
SRC_VOCAB = {c: i + 1 for i, c in enumerate(SRC_CHARS)}  # 0 is padding
TGT_CHARS = "0123456789-"
TGT_VOCAB = {c: i + 3 for i, c in enumerate(TGT_CHARS)}  # 0 pad, 1 start, 2 end
TGT_NAMES = ["<pad>", "<start>", "<end>"] + list(TGT_CHARS)
MAX_SRC = 40


def surface(date, rng):
    """One way of writing `date`, in a random form and case."""
    return CASES[rng.integers(len(CASES))](FORMS[rng.integers(len(FORMS))](date))


def encode_sources(texts):
    """Texts -> (B, S) int64 character ids, padded with PAD."""
    out = np.zeros((len(texts), max(len(t) for t in texts)), dtype=np.int64)
    for i, text in enumerate(texts):
        unknown = sorted(set(text) - set(SRC_VOCAB))
        if unknown or len(text) > MAX_SRC:
            raise ValueError(f"cannot read {text!r}: characters {unknown} are unknown"
                             if unknown else f"{text!r} is longer than {MAX_SRC} characters")
        out[i, :len(text)] = [SRC_VOCAB[c] for c in text]
    return out


def encode_targets(dates):
    """Dates -> (B, 11) ids: the 10 ISO characters, then END."""
    return np.array([[TGT_VOCAB[c] for c in d.isoformat()] + [END] for d in dates])


def decode_target(ids):
    """Generated ids -> text, up to the first END."""
    chars = []
    for i in ids:
        if i == END:
            break
        chars.append(TGT_NAMES[i] if i < 3 else TGT_CHARS[i - 3])
    return "".join(chars)


def batch(rng, size, held_out):
    """`size` random training dates (none of them held out), written at random."""
    days = rng.integers(FIRST, LAST + 1, size)
    days = days[~np.isin(days, held_out)]
    dates = [datetime.date.fromordinal(int(d)) for d in days]
    return encode_sources([surface(d, rng) for d in dates]), encode_targets(dates)


def build_model(d_model=64, n_heads=4, layers=2, d_ff=128, dropout=0.0):
    return nn.Transformer(len(SRC_VOCAB) + 1, len(TGT_NAMES), d_model, n_heads, layers, layers,
                          d_ff, dropout, max_len=64, pad_id=PAD)


def translate(model, texts, beam_size=1):
    """Texts -> ISO strings, decoded greedily (or with beam search)."""
    ids = model.generate(encode_sources(texts), 11, START, END, beam_size=beam_size)
    return [decode_target(row) for row in ids]


def train(steps=1500, seed=0, batch_size=64, lr=1e-3, eval_size=1000, label_smoothing=0.0,
          progress=True, **model_args):
    """Train on fresh random batches (teacher forcing), then measure exact match on
    `eval_size` held-out dates. Returns the model, the history and the figures."""
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    held_out = rng.choice(np.arange(FIRST, LAST + 1), eval_size, replace=False)
    model = build_model(**model_args)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    history = {"loss": [], "token accuracy": []}
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="dates", disable=not progress)
    for step in bar:
        optimizer.lr = lr * min(1.0, (step + 1) / 100) * (1 - 0.9 * step / max(steps - 1, 1))
        src, tgt = batch(rng, batch_size, held_out)
        tgt_in = np.concatenate([np.full((len(tgt), 1), START), tgt[:, :-1]], axis=1)  # shift right
        logits = model(src, tgt_in)
        loss = F.cross_entropy(logits, tgt, label_smoothing=label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        optim.clip_grad_norm(model.parameters(), 1.0)
        optimizer.step()
        accuracy = float((logits.data.argmax(-1) == tgt).mean())
        history["loss"].append(loss.item())
        history["token accuracy"].append(accuracy)
        bar.set_postfix(loss=f"{loss.item():.4f}", acc=f"{accuracy:.3f}")
    seconds = time.perf_counter() - start
    model.eval()
    dates = [datetime.date.fromordinal(int(d)) for d in held_out]
    texts = [surface(d, rng) for d in dates]
    predicted = translate(model, texts)
    right = [p == d.isoformat() for p, d in zip(predicted, dates)]
    return {"model": model, "history": history, "exact_match": float(np.mean(right)),
            "steps": steps, "seconds": seconds, "held_out": len(dates),
            "examples": list(zip(texts, predicted, [d.isoformat() for d in dates]))}


def decode_step_by_step(model, text, top=3):
    """Greedy decoding of one text, step by step: at each step the `top` most
    likely next characters with their probabilities, and the one chosen (the
    whole prefix is fed again at every step here, to keep the loop plain)."""
    src = encode_sources([text])
    tokens = [START]
    steps = []
    with no_grad():
        for _ in range(11):
            logits = model(src, np.array([tokens]))
            p = F.softmax(logits, axis=-1).data[0, -1]
            best = np.argsort(-p)[:top]
            steps.append([(TGT_NAMES[i], float(p[i])) for i in best])
            tokens.append(int(best[0]))
            if best[0] == END:
                break
    return steps


def decoder_pictures(model, text, out):
    """For `text` decoded greedily, heatmaps per decoder layer of its masked
    self-attention (the triangle: output characters attend to earlier ones)
    and of its encoder-decoder attention (output characters x source
    characters), and the output distribution at every step (the softmax over
    the target vocabulary). Returns the paths written."""
    out = Path(out)
    src = encode_sources([text])
    out_ids = model.generate(src, 11, START, END)[0]
    tgt_in = np.concatenate([[START], out_ids[:-1]])[None, :]  # what the decoder was fed
    with no_grad():
        probabilities = F.softmax(model(src, tgt_in), axis=-1).data[0]
    fed = [TGT_NAMES[i] for i in tgt_in[0]]
    produced = [TGT_NAMES[i] for i in out_ids]
    paths = []
    for i, layer in enumerate(model.decoder.layers):
        paths.append(viz.attention_heatmap(layer.self_attn.attn_weights[0], fed, fed,
                                           out / f"self_attention_layer{i}.png"))
        paths.append(viz.attention_heatmap(layer.cross_attn.attn_weights[0], produced, list(text),
                                           out / f"cross_attention_layer{i}.png"))
    paths.append(output_distribution(probabilities, produced, out / "output_distribution.png"))
    return paths


def output_distribution(probabilities, produced, path):
    """The softmax over the target vocabulary at every step, (steps, vocab), on
    a log scale so that the runner-ups show beside the near-certain choice."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(np.log10(np.maximum(probabilities, 1e-6)), cmap="viridis", vmin=-6, vmax=0)
    ax.set_xticks(range(len(TGT_NAMES)), TGT_NAMES, rotation=45, ha="right",
                  rotation_mode="anchor")
    ax.set_yticks(range(len(produced)), [f"step {i + 1}: {c}" for i, c in enumerate(produced)])
    ax.set_xlabel("next character (the target vocabulary)")
    ax.set_ylabel("decoding step: the character chosen")
    ax.set_title("softmax(generator(decoder output)) at every step")
    fig.colorbar(image, ax=ax, label="log10 probability (below 1e-6 shown as 1e-6)")
    return viz.save_figure(fig, path)


def month_attention(model, text, month):
    """How much of the month digits' encoder-decoder attention falls on the
    letters of the month's name in `text`: (layer, head) -> share, for the
    greedy translation of `text` (the month digits are output characters 5 and 6)."""
    src = encode_sources([text])
    out_ids = model.generate(src, 10, START, None)[0]  # ten characters, whatever they are
    with no_grad():
        model(src, np.concatenate([[START], out_ids[:-1]])[None, :])
    start = text.lower().index(month.lower())
    shares = {}
    for i, layer in enumerate(model.decoder.layers):
        weights = layer.cross_attn.attn_weights[0]           # (H, T_out, S)
        on_name = weights[:, 5:7, start:start + len(month)].sum(axis=-1).mean(axis=-1)
        shares.update({(i, h): float(share) for h, share in enumerate(on_name)})
    return shares


def transformer_graph(model, out):
    """The computation graph of one training loss, drawn at depth 2 (the
    embeddings, the encoder and decoder with their layers, the generator)."""
    src, tgt = encode_sources(["28 Nov 2026"]), encode_targets([datetime.date(2026, 11, 28)])
    tgt_in = np.concatenate([np.full((1, 1), START), tgt[:, :-1]], axis=1)
    loss = F.cross_entropy(model(src, tgt_in), tgt)
    return viz.render(viz.draw_graph(loss, model, depth=2), Path(out) / "transformer_graph",
                      format="svg")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("dates", nargs="*", help="dates to translate after training")
    parser.add_argument("--steps", type=int, default=1500, help="training steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2, help="encoder layers = decoder layers")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--eval-size", type=int, default=1000, help="held-out dates")
    parser.add_argument("--out", default="out", help="folder for the pictures and checkpoint")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.eval_size < 1:
        parser.error("--steps and --eval-size must be at least 1")

    result = train(args.steps, args.seed, args.batch, args.lr, args.eval_size,
                   args.label_smoothing, progress=not args.no_progress, d_model=args.d_model,
                   n_heads=args.heads, layers=args.layers)
    model = result["model"]
    print(f"exact match on {result['held_out']:,} held-out dates: {result['exact_match']:.1%} "
          f"after {result['steps']} steps ({result['seconds']:.0f} s), final loss "
          f"{result['history']['loss'][-1]:.4f}")
    wrong = [e for e in result["examples"] if e[1] != e[2]]
    for text, got, want in wrong[:5]:
        print(f"  wrong: {text!r} -> {got} (should be {want})")

    example = "Saturday, 28 November 2026"
    print(f"\ngreedy decoding of {example!r}, step by step (top 3 candidates):")
    result["steps_shown"] = decode_step_by_step(model, example)
    for t, candidates in enumerate(result["steps_shown"]):
        shown = "  ".join(f"{c!r} {p:.3f}" for c, p in candidates)
        print(f"  step {t + 1:2d}: {shown}")

    for text in args.dates:
        try:
            print(f"{text!r} -> {translate(model, [text])[0]}")
        except ValueError as error:  # a character the model has never seen, or too long
            print(f"{text!r}: {error}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [viz.loss_curve(result["history"], out / "loss_curve.png")]
    paths += decoder_pictures(model, example, out)
    paths.append(transformer_graph(model, out))
    result["month_attention"] = month_attention(model, example, "November")
    (layer, head), share = max(result["month_attention"].items(), key=lambda item: item[1])
    print(f"the month digits of {example!r}: layer {layer}, head {head} puts {share:.2f} of "
          "their encoder-decoder attention on the letters of 'November'")
    nn.save(model, out / "translate_dates.npz")
    paths.append(str(out / "translate_dates.npz"))
    for path in paths:
        print(f"wrote {path}")
    result["paths"] = paths
    return result


if __name__ == "__main__":
    main()
