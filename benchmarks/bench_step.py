"""One training step of a Transformer encoder: tinygrad_enc next to PyTorch eager, on the CPU.

    python benchmarks/bench_step.py                        # small and medium
    python benchmarks/bench_step.py --config medium --threads 2
    python benchmarks/bench_step.py --scaling              # also T = 32 ... 512 at medium width
    python benchmarks/bench_step.py --quick --json         # CI: a tiny model, no verdict

The step: Embedding(V, D) + a fixed sinusoidal position table ->
TransformerEncoder(L, D, H, F, dropout=0) (post-LN, relu) -> Linear(D, V) ->
cross_entropy over all B*T positions -> zero_grad, backward, Adam step.

Reported per configuration:
- ms per step: the median over the timed steps, after warm-up. Ours and
  PyTorch's (eager, float32, the same thread count) each run in a process
  of its own, interleaved, a few steps each in turn, so a neighbour's load
  falls on both alike and neither library's memory use changes the other's
  (see timing_worker).
- the GEMM floor: the step's matrix-product FLOPs (forward, and the two
  products of each backward) over numpy's float32 GEMM rate, measured now on
  exactly those products. No numpy engine can take less than this.
- peak memory: resident memory (VmHWM) above the process's memory at rest
  before the first step (imports, model, data), so it counts activations,
  gradients and Adam's state. Each library runs in a process of its own.

Threads: numpy's BLAS is limited with threadpoolctl, PyTorch with
torch.set_num_threads. On a machine whose cores are busy with other work,
BLAS threads that wait for a core make every product slow; the default here
(`DEFAULT_THREADS`) was chosen by measuring (README, "Performance").
OPENBLAS_CORETYPE, if set, picks an older, slower kernel: benchmark with
`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_step.py`.
"""
import argparse
import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

CONFIGS = {
    "small": dict(B=32, T=32, D=64, H=4, F=256, L=2, V=32),
    "medium": dict(B=32, T=128, D=256, H=8, F=1024, L=4, V=1000),
}
TINY = dict(B=2, T=8, D=16, H=2, F=32, L=1, V=11)  # --quick: checks the code runs, times nothing
SCALING_LENGTHS = (32, 64, 128, 256, 512)  # at the medium width, B=8
DEFAULT_THREADS = 1
# (warm-up steps, timed steps, steps per turn, steps in the memory process)
FULL, QUICK = (3, 30, 5, 3), (1, 2, 1, 1)


def torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


# ----- the step, in each library ------------------------------------------------
def data(cfg):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, cfg["V"], (cfg["B"], cfg["T"]))
    target = rng.integers(0, cfg["V"], (cfg["B"], cfg["T"]))
    return ids, target


def position_table(cfg):
    from tinygrad_enc.nn.positional import sinusoidal_table
    return sinusoidal_table(cfg["T"], cfg["D"]).astype(np.float32)


def ours_step(cfg):
    """A function that runs one training step of our model."""
    import tinygrad_enc.functional as F
    from tinygrad_enc import Tensor, manual_seed, nn, optim

    manual_seed(0)
    embedding = nn.Embedding(cfg["V"], cfg["D"])
    encoder = nn.TransformerEncoder(cfg["L"], cfg["D"], cfg["H"], cfg["F"], dropout=0.0)
    head = nn.Linear(cfg["D"], cfg["V"])
    optimizer = optim.Adam(embedding.parameters() + encoder.parameters() + head.parameters())
    positions = Tensor(position_table(cfg))
    ids, target = data(cfg)

    def step():
        loss = F.cross_entropy(head(encoder(embedding(ids) + positions)), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def torch_step(cfg):
    """The same step in PyTorch eager."""
    import torch

    torch.manual_seed(0)
    embedding = torch.nn.Embedding(cfg["V"], cfg["D"])
    layer = torch.nn.TransformerEncoderLayer(cfg["D"], cfg["H"], cfg["F"], dropout=0.0,
                                             activation="relu", batch_first=True)
    encoder = torch.nn.TransformerEncoder(layer, cfg["L"], enable_nested_tensor=False)
    head = torch.nn.Linear(cfg["D"], cfg["V"])
    optimizer = torch.optim.Adam([*embedding.parameters(), *encoder.parameters(),
                                  *head.parameters()])
    positions = torch.from_numpy(position_table(cfg))
    ids, target = (torch.from_numpy(a) for a in data(cfg))

    def step():
        logits = head(encoder(embedding(ids) + positions))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg["V"]), target.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


STEPS = {"ours": ours_step, "torch": torch_step}


def thread_limits(library, threads):
    """A block in which numpy's BLAS uses `threads` threads; for torch also
    torch.set_num_threads (for the rest of the process: it runs one library)."""
    if library == "torch":
        import torch
        torch.set_num_threads(threads)
    return threadpool_limits(limits=threads, user_api="blas")


def timing_worker(library, cfg, threads, conn):
    """Run in a process of its own: build the library's step, then for each
    number n received run n steps and send back their times in seconds;
    None ends it. A process per library, so that neither sees the other's
    memory: glibc's malloc sets its trim threshold from the largest block a
    process has freed, so one library's warm-up would decide how often the
    other's steps hand pages back to the system and fault them in again."""
    with thread_limits(library, threads):
        step = STEPS[library](cfg)
        for n in iter(conn.recv, None):
            times = []
            for _ in range(n):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            conn.send(times)


def interleaved_medians(libraries, cfg, threads, warmup, timed, turn):
    """Median seconds per step of each library, after `warmup` steps each;
    each runs in a process of its own (timing_worker) and they take turns,
    `turn` steps at a time, so that a neighbour's load falls on both alike
    (the process not in its turn waits, taking no CPU)."""
    context = multiprocessing.get_context("spawn")  # fresh processes, whatever the parent imported
    workers = {}
    try:
        for library in libraries:
            ours, theirs = context.Pipe()
            process = context.Process(target=timing_worker, args=(library, cfg, threads, theirs),
                                      daemon=True)
            process.start()
            workers[library] = process, ours
        times = {library: [] for library in libraries}

        def run(library, n):
            process, conn = workers[library]
            conn.send(n)
            try:
                return conn.recv()
            except EOFError:
                raise RuntimeError(f"the {library} timing process ended (exit code "
                                   f"{process.exitcode}); its error is above") from None

        for library in libraries:
            run(library, warmup)
        while len(times[libraries[0]]) < timed:
            for library in libraries:
                times[library] += run(library, min(turn, timed - len(times[library])))
    finally:
        for process, conn in workers.values():
            if process.is_alive():
                conn.send(None)
            process.join(timeout=30)
    return {library: statistics.median(t) for library, t in times.items()}


# ----- the GEMM floor -------------------------------------------------------------
def step_products(cfg):
    """Every matrix product of the forward pass as (batch, M, K, N): an
    (M, K) @ (K, N) product, repeated over `batch` (attention's B*H heads)."""
    B, T, D, H, F_, L, V = (cfg[k] for k in "BTDHFLV")
    tokens, d_k = B * T, D // H
    layer = [(1, tokens, D, D)] * 4  # W^Q, W^K, W^V, W^O
    layer += [(B * H, T, d_k, T), (B * H, T, T, d_k)]  # Q K^T, weights @ V
    layer += [(1, tokens, D, F_), (1, tokens, F_, D)]  # the feed-forward network
    return layer * L + [(1, tokens, D, V)]  # the head


def gemm_floor(cfg, repeats):
    """(seconds, FLOPs): numpy's time for the step's products, forward and
    backward (dA = dC B^T, dB = A^T dC: the same FLOPs twice more), float32."""
    rng = np.random.default_rng(0)
    work, flops = [], 0
    for batch, M, K, N in step_products(cfg):
        shape = (batch,) if batch > 1 else ()
        a, b, c = (rng.standard_normal(shape + s, dtype=np.float32)
                   for s in ((M, K), (K, N), (M, N)))
        work += [(a, b), (c, np.swapaxes(b, -1, -2)), (np.swapaxes(a, -1, -2), c)]
        flops += 3 * 2 * batch * M * K * N
    seconds = []
    for _ in range(repeats + 1):  # the first one warms the BLAS threads and caches
        start = time.perf_counter()
        for x, y in work:
            np.matmul(x, y)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds[1:]), flops


# ----- peak memory, in a process of its own -----------------------------------------
def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_worker(library, cfg, steps, threads):
    """Run in the child process: the step's peak resident memory above the
    memory at rest, in MiB."""
    with thread_limits(library, threads):
        step = STEPS[library](cfg)
        at_rest = _status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the high-water mark VmHWM to the current RSS
        for _ in range(steps):
            step()
        peak = _status_kib("VmHWM")
    return {"at_rest_mib": at_rest / 1024, "peak_mib": (peak - at_rest) / 1024}


def peak_memory(library, cfg, steps, threads):
    """The step's peak memory in MiB, measured in a fresh Python process."""
    command = [sys.executable, os.path.abspath(__file__), "--memory-worker", library,
               "--spec", json.dumps(cfg), "--steps", str(steps), "--threads", str(threads)]
    import tinygrad_enc  # the child imports the same copy of the library as this process
    root = os.path.dirname(os.path.dirname(os.path.abspath(tinygrad_enc.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode:
        raise RuntimeError(f"memory worker for {library} failed:\n{done.stderr}")
    return json.loads(done.stdout)["peak_mib"]


# ----- one configuration: every figure ---------------------------------------------------
def measure(name, cfg, threads, plan, with_torch, torch_memory=True):
    warmup, timed, turn, memory_steps = plan
    steps = ["ours", "torch"] if with_torch else ["ours"]
    ms = {lib: s * 1e3 for lib, s in interleaved_medians(steps, cfg, threads, warmup, timed, turn).items()}
    floor_s, flops = gemm_floor(cfg, repeats=max(3, timed // 4))
    memory = {lib: peak_memory(lib, cfg, memory_steps, threads) for lib in steps
              if lib == "ours" or torch_memory}
    row = {"config": name, **cfg, "timed_steps": timed, "ours_ms": ms["ours"], "torch_ms": ms.get("torch"),
           "ratio": ms["ours"] / ms["torch"] if with_torch else None,
           "gemm_gflop": flops / 1e9, "gemm_floor_ms": floor_s * 1e3,
           "gemm_gflops_per_s": flops / floor_s / 1e9, "ours_over_floor": ms["ours"] / 1e3 / floor_s,
           "ours_peak_mib": memory["ours"], "torch_peak_mib": memory.get("torch"),
           "memory_ratio": memory["ours"] / memory["torch"] if "torch" in memory else None}
    return row


def environment(threads):
    import tinygrad_enc
    blas = [f"{i['internal_api']} {i['version']} {i.get('architecture', '')}".strip()
            for i in threadpool_info() if i["user_api"] == "blas"]
    torch = torch_or_none()
    return {"threads": threads, "numpy": np.__version__, "blas": blas,
            "torch": torch.__version__ if torch else None,
            "tinygrad_enc": os.path.dirname(tinygrad_enc.__file__),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE")}


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


HEADER = (f"{'config':<10}{'steps':>6}{'ours ms':>9}{'torch ms':>10}{'ours/torch':>12}{'GEMM floor ms':>15}"
          f"{'ours/floor':>12}{'ours MiB':>10}{'torch MiB':>11}{'ours/torch':>12}")


def table_row(r):
    return (f"{r['config']:<10}{r['timed_steps']:>6}{r['ours_ms']:>9.1f}{_fmt(r['torch_ms'], '.1f'):>10}"
            f"{_fmt(r['ratio'], '.2f'):>12}{r['gemm_floor_ms']:>15.1f}{r['ours_over_floor']:>12.2f}"
            f"{r['ours_peak_mib']:>10.1f}{_fmt(r['torch_peak_mib'], '.1f'):>11}"
            f"{_fmt(r['memory_ratio'], '.2f'):>12}")


def title(result):
    env = result["environment"]
    return (f"one training step: the median of `steps` timed steps after {result['warmup_steps']} "
            f"warm-up; {env['threads']} thread(s); numpy {env['numpy']} ({', '.join(env['blas'])}); "
            f"torch {env['torch'] or 'not installed'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help="BLAS threads for numpy, and torch.set_num_threads")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per library")
    parser.add_argument("--scaling", action="store_true",
                        help=f"also T in {SCALING_LENGTHS} at the medium width, B=8")
    parser.add_argument("--quick", action="store_true",
                        help="CI: a tiny model, two steps, PyTorch's memory not measured "
                        "(with --scaling: T=8 at the tiny width); the figures mean nothing")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    parser.add_argument("--memory-worker", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.memory_worker:
        print(json.dumps(memory_worker(args.memory_worker, json.loads(args.spec),
                                       args.steps, args.threads)))
        return None

    with_torch = not args.no_torch and torch_or_none() is not None
    configs = {"tiny": TINY} if args.quick else CONFIGS if args.config == "all" else \
        {args.config: CONFIGS[args.config]}
    warmup, timed, turn, memory_steps = QUICK if args.quick else FULL
    timed = args.steps or timed
    result = {"environment": environment(args.threads), "warmup_steps": warmup, "configs": [], "scaling": []}
    say = (lambda *lines: None) if args.json else (lambda *lines: print(*lines, sep="\n", flush=True))
    say(title(result), HEADER)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name, cfg in configs.items():
            steps = timed if name in ("small", "tiny") else max(timed // 3, 2)  # long steps: fewer
            row = measure(name, cfg, args.threads, (warmup, steps, turn, memory_steps),
                          with_torch, torch_memory=not args.quick)
            result["configs"].append(row)
            say(table_row(row))
        if args.scaling:
            width, lengths = (TINY, (8,)) if args.quick else (CONFIGS["medium"], SCALING_LENGTHS)
            say("", f"scaling: D={width['D']}, B=8", HEADER)
            for T in lengths:
                cfg = dict(width, B=8, T=T)
                plan = (warmup, max(timed // 3, 2), turn, memory_steps)  # long steps: fewer
                row = measure(f"T={T}", cfg, args.threads, plan, with_torch,
                              torch_memory=not args.quick)
                result["scaling"].append(row)
                say(table_row(row))
    if args.json:
        print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
