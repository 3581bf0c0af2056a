"""Where the time of one training step goes: the profiler on the demo's model.

    python demos/where_time_goes.py                      # the main demo's model
    python demos/where_time_goes.py --d-model 256 --d-ff 1024 --heads 8 --length 128 --batch 32

Steps of train_encoder.py's model (embedding + positions -> encoder ->
linear head -> cross-entropy, backward, Adam) runs inside
`tinygrad_enc.profile()`, which times every op's forward and backward and
adds each to the module that ran it. The table answers two questions: which
ops take the time, and how much of the step is Python around the ops rather
than numpy's work inside them.
"""
import argparse

import numpy as np
from threadpoolctl import threadpool_limits

import tinygrad_enc
import tinygrad_enc.functional as F
from tinygrad_enc import manual_seed, optim
from train_encoder import THREADS, DigitEncoder


def profile_steps(batch=64, length=8, vocab=10, d_model=32, n_heads=4, d_ff=64, num_layers=2,
                  steps=5, warmup=2):
    """Profile `steps` training steps (after `warmup` unprofiled ones); return the profile."""
    manual_seed(0)
    rng = np.random.default_rng(0)
    model = DigitEncoder(vocab, d_model, n_heads, d_ff, num_layers, length)
    optimizer = optim.Adam(model.parameters())
    x = rng.integers(0, vocab, (batch, length))
    y = x[:, ::-1]  # the reverse task

    def step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    with tinygrad_enc.profile() as p:
        for _ in range(steps):
            step()
    return p


def summary(p):
    """What the table shows, in two sentences, from its own numbers."""
    ops = sorted(p.ops.items(), key=lambda kv: -kv[1].total)
    inside = p.op_seconds
    (first, row), python = ops[0], 1 - inside / p.seconds
    text = (f"{first} takes {row.total / inside:.0%} of the time inside ops "
            f"(the next: {', '.join(name for name, _ in ops[1:4])}). ")
    if python > 0.3:
        return text + (f"{python:.0%} of the step is Python around the ops: at this size each op's "
                       "numpy work is tiny, so the fixed cost per op (making tensors, recording "
                       "the graph, the walk) is what a step pays for; larger matrices shift the "
                       "time into matmul.")
    return text + (f"Only {python:.0%} is Python around the ops: the matrices are large enough "
                   "that numpy's work dominates, and most of it is matrix products (the "
                   "projections, the feed-forward network, Q K^T and the weights times V).")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=8)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--d-ff", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="steps profiled (the table adds them up)")
    parser.add_argument("--top", type=int, default=12, help="rows per table")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help="BLAS threads for numpy during this run (0: numpy's default)")
    args = parser.parse_args(argv)
    with threadpool_limits(limits=args.threads or None, user_api="blas"):
        p = profile_steps(args.batch, args.length, 10, args.d_model, args.heads, args.d_ff,
                          args.layers, args.steps)
    print(p.table(top=args.top))
    print(summary(p))
    return p


if __name__ == "__main__":
    main()
