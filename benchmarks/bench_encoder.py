"""Speed and memory of tinygrad_enc next to PyTorch, in one run, on the CPU.

    python benchmarks/bench_encoder.py            # all cases
    python benchmarks/bench_encoder.py --quick    # fewer repeats

    python benchmarks/bench_encoder.py --threads 1  # one BLAS thread in both

For each case it times the same computation in both libraries (median of
repeats, after warm-up): single ops forward+backward, multi-head attention,
an encoder training step (forward, backward, Adam) at the demo's size and a
larger one. It also reports the peak memory numpy allocates for one training
step (tracemalloc). Both libraries use all cores unless --threads pins both;
on a small machine, run with nothing else busy: BLAS threads that wait for a
busy core make every matrix product many times slower.

Where the time goes besides the matrix products: per-op Python work at the
small sizes, and at the large size fresh arrays. glibc hands freed memory back
to the system, so a new array of a few hundred KiB page-faults again; set
MALLOC_MMAP_THRESHOLD_=67108864 MALLOC_TRIM_THRESHOLD_=268435456 to see the
step without that cost (it helps PyTorch less: it makes fewer temporaries).
"""
import argparse
import os
import statistics
import sys
import time
import tracemalloc

import numpy as np

import tinygrad_enc.functional as F
from tinygrad_enc import Tensor, manual_seed, nn, optim

try:
    import torch
except ImportError:  # the comparison column is left empty
    torch = None


def median_seconds(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ----- cases: each returns (ours, theirs-or-None) step functions -----------------
def op_case(name, make_ours, make_theirs, shape):
    """One op, forward and backward of its sum."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)

    def ours():
        t = Tensor(x, requires_grad=True)
        make_ours(t).sum().backward()

    def theirs():
        t = torch.tensor(x, requires_grad=True)
        make_theirs(t).sum().backward()

    return name, ours, theirs if torch else None


def encoder_case(batch, length, d_model, heads, d_ff, layers):
    """One training step of an encoder with a linear head and cross-entropy."""
    name = f"encoder step B={batch} T={length} d={d_model} h={heads} L={layers}"
    manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, length, d_model)).astype(np.float32)
    y = rng.integers(0, 10, (batch, length))
    model = nn.TransformerEncoder(layers, d_model, heads, d_ff, dropout=0.0)
    head = nn.Linear(d_model, 10)
    params = model.parameters() + head.parameters()
    opt = optim.Adam(params)

    def ours():
        loss = F.cross_entropy(head(model(Tensor(x))), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    if torch is None:
        return name, ours, None
    layer = torch.nn.TransformerEncoderLayer(d_model, heads, d_ff, dropout=0.0, batch_first=True)
    t_model = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
    t_head = torch.nn.Linear(d_model, 10)
    t_opt = torch.optim.Adam(list(t_model.parameters()) + list(t_head.parameters()))
    tx, ty = torch.tensor(x), torch.tensor(y)

    def theirs():
        loss = torch.nn.functional.cross_entropy(t_head(t_model(tx)).reshape(-1, 10),
                                                 ty.reshape(-1))
        t_opt.zero_grad()
        loss.backward()
        t_opt.step()

    return name, ours, theirs


def attention_case(batch, length, d_model, heads):
    name = f"multi-head attention fwd+bwd B={batch} T={length} d={d_model} h={heads}"
    manual_seed(0)
    x = np.random.default_rng(0).standard_normal((batch, length, d_model)).astype(np.float32)
    mha = nn.MultiHeadAttention(d_model, heads)

    def ours():
        mha(Tensor(x, requires_grad=True)).sum().backward()

    if torch is None:
        return name, ours, None
    t_mha = torch.nn.MultiheadAttention(d_model, heads, batch_first=True)

    def theirs():
        t = torch.tensor(x, requires_grad=True)
        t_mha(t, t, t, need_weights=True, average_attn_weights=False)[0].sum().backward()

    return name, ours, theirs


def embedding_case(vocabulary, d_model, batch, length):
    """An embedding lookup with repeated ids, forward and backward."""
    name = f"embedding ({vocabulary},{d_model}) ids ({batch},{length}) fwd+bwd"
    manual_seed(0)
    ids = np.random.default_rng(0).integers(0, vocabulary, (batch, length))
    embed = nn.Embedding(vocabulary, d_model)

    def ours():
        embed.weight.grad = None
        embed(ids).sum().backward()

    if torch is None:
        return name, ours, None
    t_embed = torch.nn.Embedding(vocabulary, d_model)
    t_ids = torch.tensor(ids)

    def theirs():
        t_embed.weight.grad = None
        t_embed(t_ids).sum().backward()

    return name, ours, theirs


def cases():
    weight = np.ones((128, 128), np.float32)
    yield op_case("matmul (64,128)@(128,128) fwd+bwd", lambda t: t @ Tensor(weight),
                  lambda t: t @ torch.tensor(weight), (64, 128))
    yield op_case("softmax (64,8,8,8) fwd+bwd", lambda t: F.softmax(t), lambda t: t.softmax(-1),
                  (64, 8, 8, 8))
    yield op_case("layer_norm (64,8,32) fwd+bwd", lambda t: F.layer_norm(t, 32),
                  lambda t: torch.nn.functional.layer_norm(t, (32,)), (64, 8, 32))
    yield op_case("gelu (64,8,64) fwd+bwd", lambda t: t.gelu(), lambda t: torch.nn.functional.gelu(t),
                  (64, 8, 64))
    yield embedding_case(1000, 128, 32, 64)
    yield attention_case(64, 8, 32, 4)
    yield encoder_case(64, 8, 32, 4, 64, 2)
    yield encoder_case(32, 64, 128, 8, 512, 2)


def peak_step_memory():
    """Peak bytes numpy allocates during one demo-sized training step."""
    _, step, _ = encoder_case(64, 8, 32, 4, 64, 2)
    step()
    tracemalloc.start()
    step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def pin_threads(n, restart):
    """n BLAS threads in numpy and in PyTorch. numpy's BLAS reads its thread
    count once, when it loads: from the command line (`restart`) the script
    runs itself again with it set; called from Python, set the variables first."""
    if any(os.environ.get(name) != str(n) for name in _THREAD_VARIABLES):
        if not restart:
            raise RuntimeError(f"--threads {n}: set {', '.join(_THREAD_VARIABLES)} to {n} "
                               "before numpy is imported")
        os.environ.update({name: str(n) for name in _THREAD_VARIABLES})
        os.execv(sys.executable, [sys.executable] + sys.argv)
    if torch is not None:
        torch.set_num_threads(n)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads for numpy and PyTorch (default: all cores)")
    args = parser.parse_args(argv)
    if args.threads:
        pin_threads(args.threads, restart=argv is None)
    repeats = 5 if args.quick else 30
    rows = []
    threads = f"{args.threads} thread{'s' if args.threads != 1 else ''}" if args.threads else "default threads"
    print(f"{'case (' + threads + ')':<62} {'tinygrad_enc':>13} {'PyTorch':>10} {'ratio':>7}")
    for name, ours, theirs in cases():
        a = median_seconds(ours, repeats)
        b = median_seconds(theirs, repeats) if theirs else None
        ratio = f"{a / b:6.2f}x" if b else "   -"
        b_text = f"{b * 1e3:8.2f}ms" if b else "      -"
        print(f"{name:<62} {a * 1e3:11.2f}ms {b_text} {ratio}")
        rows.append((name, a, b))
    print(f"peak numpy memory in one demo training step: {peak_step_memory() / 2**20:.2f} MiB")
    return rows


if __name__ == "__main__":
    main()
