"""A tiny GPT: a character language model on text that ships with Python.

    python demos/tiny_gpt.py                     # train, report the loss, sample
    python demos/tiny_gpt.py --steps 20 --out /tmp/quick

A GPT is the encoder layer with a causal mask, trained to predict the next
token. There is no encoder output to attend to and no encoder-decoder
attention: nn.GPT is token embeddings + positions, a stack of the same
nn.TransformerEncoderLayer the encoder uses, run with nn.causal_mask so each
position sees only the characters before it, a final LayerNorm, and a linear
layer to one score per character. Every position of every training sequence
is a prediction (the logits at i are scored against character i+1), so one
sequence of T characters is T training examples at once.

The text is the help pages of the standard library's `pydoc_data.topics`
(what `help("if")` prints), about 465,000 characters: the first 90% to train,
the last 10% to validate. A model that knows nothing scores ln(vocab) nats
per character (the uniform guess); the demo prints the validation loss
against that, then samples a paragraph with the key/value cache.
Writes to --out: loss_curve.png, tiny_gpt.npz.
"""
import argparse
import math
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import viz
import tinygrad_enc.functional as F
from tinygrad_enc import manual_seed, nn, no_grad, optim


def load_text():
    """The pydoc topics text, and its characters (the vocabulary) in sorted order."""
    from pydoc_data.topics import topics
    text = "".join(topics[name] for name in sorted(topics))
    return text, sorted(set(text))


def windows(data, rng, batch, block):
    """`batch` random windows of block + 1 characters: inputs [:-1], next characters [1:]."""
    starts = rng.integers(0, len(data) - block - 1, batch)
    return data[starts[:, None] + np.arange(block + 1)]


def validation_loss(model, data, block, batch=32, batches=8):
    """Mean next-character cross-entropy on evenly spaced windows of `data`, in nats."""
    starts = np.linspace(0, len(data) - block - 1, batch * batches).astype(np.int64)
    losses = []
    with no_grad():
        for chunk in np.split(starts, batches):
            x = data[chunk[:, None] + np.arange(block + 1)]
            losses.append(F.cross_entropy(model(x[:, :-1]), x[:, 1:]).item())
    return float(np.mean(losses))


def train(steps=800, seed=0, batch=32, block=64, d_model=64, n_heads=4, layers=2, lr=3e-3,
          progress=True):
    """Train on random windows of the first 90%; return the model, history and losses."""
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    text, chars = load_text()
    index = {c: i for i, c in enumerate(chars)}
    data = np.array([index[c] for c in text], dtype=np.int64)
    split = int(0.9 * len(data))
    train_data, val_data = data[:split], data[split:]
    model = nn.GPT(len(chars), d_model, n_heads, layers, 4 * d_model, dropout=0.0,
                   activation="relu", max_len=block)
    optimizer = optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    history = {"loss": []}
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="tiny gpt", disable=not progress)
    for step in bar:
        optimizer.lr = lr * min(1.0, (step + 1) / 50) * (1 - 0.9 * step / max(steps - 1, 1))
        x = windows(train_data, rng, batch, block)
        loss = F.cross_entropy(model(x[:, :-1]), x[:, 1:])  # logits at i score character i+1
        optimizer.zero_grad()
        loss.backward()
        optim.clip_grad_norm(model.parameters(), 1.0)
        optimizer.step()
        history["loss"].append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
    seconds = time.perf_counter() - start
    model.eval()
    return {"model": model, "history": history, "chars": chars, "steps": steps,
            "seconds": seconds, "block": block, "uniform": math.log(len(chars)),
            "val_loss": validation_loss(model, val_data, block)}


def sample(model, chars, prompt, length, temperature=0.8, top_k=20, seed=0, use_cache=True):
    """`length` characters after `prompt`, drawn with temperature and top_k."""
    index = {c: i for i, c in enumerate(chars)}
    manual_seed(seed)
    ids = model.generate(np.array([[index[c] for c in prompt]]), length,
                         temperature=temperature, top_k=top_k, use_cache=use_cache)
    return "".join(chars[i] for i in ids[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--block", type=int, default=64, help="context length in characters")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--prompt", default="The ")
    parser.add_argument("--length", type=int, default=400, help="characters to sample")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--out", default="out")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.length < 1:
        parser.error("--steps and --length must be at least 1")

    result = train(args.steps, args.seed, args.batch, args.block, args.d_model, layers=args.layers,
                   lr=args.lr, progress=not args.no_progress)
    print(f"validation loss {result['val_loss']:.3f} nats per character after "
          f"{result['steps']} steps ({result['seconds']:.0f} s); the uniform guess over "
          f"{len(result['chars'])} characters scores ln({len(result['chars'])}) = "
          f"{result['uniform']:.3f}")
    result["sample"] = sample(result["model"], result["chars"], args.prompt, args.length,
                              args.temperature)
    print(f"\na sample ({args.length} characters, temperature {args.temperature}, top_k 20, "
          f"with the key/value cache):\n{args.prompt}{result['sample']}\n")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [viz.loss_curve(result["history"], out / "loss_curve.png")]
    nn.save(result["model"], out / "tiny_gpt.npz")
    paths.append(str(out / "tiny_gpt.npz"))
    for path in paths:
        print(f"wrote {path}")
    result["paths"] = paths
    return result


if __name__ == "__main__":
    main()
