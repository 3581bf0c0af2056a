"""docs/tour.md tells the truth: every number it quotes is what the demos
compute, every code excerpt is in the file it names, every picture exists."""
import ast
import contextlib
import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOUR = (ROOT / "docs" / "tour.md").read_text()
PROSE = " ".join(TOUR.split())  # line breaks in the markdown do not matter
sys.path.insert(0, str(ROOT / "demos"))

import graph_tour  # noqa: E402
import greedy_vs_beam  # noqa: E402
import positional_encoding  # noqa: E402
import self_attention_by_hand  # noqa: E402
import tiny_gpt  # noqa: E402
import train_encoder  # noqa: E402
import translate_dates  # noqa: E402
import viz  # noqa: E402
from tinygrad_enc import Tensor, nn  # noqa: E402
import tinygrad_enc.functional as F  # noqa: E402


def quiet(demo, tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):
        return demo.main(["--out", str(tmp_path)])


def vector(values, digits=None):
    """[2 1 0 1] for whole numbers, [1.269 1.462 ...] with `digits` decimals."""
    return "[" + " ".join(f"{v:.{digits}f}" if digits else f"{v:g}" for v in values) + "]"


def assert_quoted(*phrases):
    for phrase in phrases:
        assert " ".join(phrase.split()) in PROSE, f"docs/tour.md should say {phrase!r}"


def test_by_hand_numbers(tmp_path):
    r = quiet(self_attention_by_hand, tmp_path)
    (q1, q2), (k1, k2), (v1, v2) = r["Q"], r["K"], r["V"]
    assert_quoted(f"x1 = {vector(r['x'][0])}", f"x2 = {vector(r['x'][1])}",
                  f"q1 = {vector(q1)}", f"k1 = {vector(k1)}", f"v1 = {vector(v1)}",
                  f"q2 = {vector(q2)}", f"k2 = {vector(k2)}", f"v2 = {vector(v2)}",
                  f"sqrt(d_k)** = sqrt({r['d_k']}) = {np.sqrt(r['d_k']):g}")
    s = r["scores"]
    assert_quoted(f"q1 · k1 = {s[0, 0]:g}, q1 · k2 = {s[0, 1]:g}, q2 · k1 = {s[1, 0]:g}, "
                  f"q2 · k2 = {s[1, 1]:g}")
    c = r["scaled"]
    assert_quoted(f"Thinking's row becomes {c[0, 0]:g}, {c[0, 1]:g}",
                  f"Machines' row becomes {c[1, 0]:g}, {c[1, 1]:g}")
    w = r["weights"]
    assert_quoted(f"Thinking {w[0, 0]:.3f}, {w[0, 1]:.3f}; Machines {w[1, 0]:.3f}, {w[1, 1]:.3f}",
                  f"({w[0, 0]:.3f} and {w[1, 1]:.3f})")
    for row, (a, b) in enumerate(["AA AB".split(), "BA BB".split()]):
        assert_quoted(f"α_{a} = {w[row, 0]:.3f}", f"α_{b} = {w[row, 1]:.3f}",
                      f"α_{a} · V_A = {vector(w[row, 0] * v1, 3)}",
                      f"α_{b} · V_B = {vector(w[row, 1] * v2, 3)}",
                      f"z{row + 1} = {vector(r['Z'][row], 3)}")
    heads = r["two_heads"]
    assert_quoted(f"head 0 puts {heads['heads'][0]['weights'][0, 0]:.3f}",
                  f"head 1 puts {heads['heads'][1]['weights'][0, 1]:.3f} on the other word",
                  f"Thinking's output {vector(heads['Z'][0], 3)}")


def test_positional_numbers(tmp_path):
    r = quiet(positional_encoding, tmp_path)
    row = ", ".join(f"{v:.4f}" for v in r["pe_d4"][1])
    by_offset = r["similarity_by_offset"]
    assert r["equivariance"]["without positions"] < 1e-15
    assert_quoted(f"position 1 is [{row}]", f"{by_offset[1][0]:.3f} for neighbours",
                  f"{by_offset[10][0]:.3f} ten apart",
                  "difference is below 1e-15",
                  f"difference becomes {r['equivariance']['with sinusoidal positions']:.1e}")


def test_training_numbers():
    result = train_encoder.train("reverse", progress=False)
    assert_quoted(f"After {result['steps']} steps it gets {result['exact_match']:.1%}",
                  f"final training loss {result['history']['loss'][-1]:.4f}",
                  f"{result['model'].num_parameters()} parameters in all")


def test_graph_numbers(tmp_path):
    model, ids, loss = graph_tour.build()
    counts = [viz.draw_graph(loss, model, depth=k).node_count for k in range(5)]
    full = viz.draw_graph(loss, model, max_nodes=None).node_count
    assert_quoted(f"{counts[0]} at depth 0", f"{counts[1]} at depth 1", f"{counts[2]} at depth 2",
                  f"{counts[3]} at depth 3", f"{counts[4]} at depth 4", f"{full} for every single op",
                  f"its own {len(model.encoder.layers[0].parameters())} parameters")
    source = viz.draw_graph(loss, model, depth=3, backward=True).source
    skip, through_attention = re.findall(r"skip delivers a gradient of norm ([\d.]+) .*? "
                                         r"attention delivers ([\d.]+)\.", PROSE)[0]
    attention_box = re.search(r"(\w+) \[label=<<b>encoder\.layers\.0\.self_attn ", source).group(1)
    # the gradient leaving layer 0's attention box, and the one on the skip beside it
    into_input = re.search(rf"(\w+) -> {attention_box} \[label=\"[^\"]*‖grad‖ ([\d.]+)\"", source)
    assert into_input.group(2) == through_attention
    skip_edges = re.findall(rf"{into_input.group(1)} -> \w+ \[label=\"[^\"]*‖grad‖ ([\d.]+)\"[^\]]*"
                            r"style=dashed", source)
    assert skip_edges == [skip]


def test_decoder_numbers(tmp_path):
    model = translate_dates.build_model()
    vocab = len(translate_dates.TGT_NAMES)
    assert_quoted(f"d_ff 128: {model.num_parameters()} parameters",
                  f"For T = 4 it is `{str(nn.causal_mask(4).astype(int).tolist()).replace(',', '')}`",
                  f"target vocabulary is {vocab} symbols", f"a (64 -> {vocab}) matrix",
                  f"scores ln({vocab}) = {np.log(vocab):.3f} nats")
    eps, right = 0.1, 5
    q = np.full(vocab, eps / vocab)
    q[right] += 1 - eps
    floor = F.cross_entropy(Tensor(np.log(q)[None], dtype=np.float64), np.array([right]),
                            label_smoothing=eps).item()
    assert_quoted(f"with eps = {eps} and {vocab} classes the right character gets {q[right]:.4f} "
                  f"and every other {q[0]:.4f}", f"p equals q, is {floor:.4f} nats")

    r = quiet(greedy_vs_beam, tmp_path)
    assert_quoted(f'"{" ".join(r["greedy"])}", probability {r["greedy_p"]:.3f}',
                  f'"{" ".join(r["beam"])}" has probability {r["beam_p"]:.3f}',
                  "Beam search with 2 beams")

    fed = {}
    for use_cache in (True, False):  # count the decoder positions each way computes
        counted = []
        forward = model._next_logits
        model._next_logits = lambda tgt, *args, **kw: counted.append(tgt.shape[1]) or \
            forward(tgt, *args, **kw)
        out = model.generate(translate_dates.encode_sources(["28 Nov 2026"]), 11, 1, None,
                             use_cache=use_cache)
        del model._next_logits
        fed[use_cache] = sum(counted)
    steps = out.shape[1]
    assert fed[True] == steps and fed[False] == steps * (steps + 1) // 2
    assert_quoted(f"the {steps} characters of a date cost {fed[True]} token passes",
                  f"1 + 2 + ... + {steps} = {fed[False]}", f"once instead of {steps} times")

    text, chars = tiny_gpt.load_text()
    assert_quoted(f"against ln({len(chars)}) = {np.log(len(chars)):.3f} for the uniform guess over "
                  f"its {len(chars)} characters")


@pytest.mark.slow
def test_decoder_training_numbers(tmp_path):
    r = translate_dates.main(["--out", str(tmp_path / "dates"), "--no-progress"])
    assert r["exact_match"] >= 0.99 and r["held_out"] == 1000
    history = r["history"]["loss"]
    assert_quoted(f"the first training step scores {history[0]:.3f}",
                  f"after {r['steps']} steps the loss is {history[-1]:.4f} and the model gets "
                  f"{r['exact_match']:.1%} of {r['held_out']:,} held-out dates",
                  f"After training ({r['steps']} steps)")
    (layer, head), share = max(r["month_attention"].items(), key=lambda item: item[1])
    assert_quoted(f"layer {layer}, head {head} puts {share:.2f} of their encoder-decoder attention "
                  'on the letters of "November"')
    for t in (1, 3, 10, 11):
        shown = "  ".join(f"{c!r} {p:.3f}" for c, p in r["steps_shown"][t - 1])
        assert_quoted(f"step {t:2d}: {shown}")
    g = tiny_gpt.train(progress=False)
    assert g["val_loss"] < 0.5 * g["uniform"]
    assert_quoted(f"After {g['steps']} steps the validation loss",
                  f"is {g['val_loss']:.3f} nats per character")


def definition_lines(path, dotted):
    """The stripped source lines of `Class`, `function` or `Class.method` in `path`."""
    source = (ROOT / path).read_text()
    scope = ast.parse(source)
    for name in dotted.split("."):
        scope = next(node for node in ast.walk(scope) if getattr(node, "name", None) == name)
    lines = source.splitlines()[scope.lineno - 1:scope.end_lineno]
    return {line.strip() for line in lines}


def test_code_excerpts_are_in_the_definitions_they_name():
    blocks = re.findall(r"```python\n# (\S+) — (\S+)\n(.*?)```", TOUR, re.S)
    assert len(blocks) >= 12
    for path, where, body in blocks:
        defined = definition_lines(path, where)
        for line in body.splitlines():
            if line.strip():
                assert line.strip() in defined, f"{path} {where} lacks: {line.strip()}"


def test_pictures_exist():
    pictures = re.findall(r"!\[[^\]]*\]\((img/[^)]+)\)", TOUR)
    assert len(pictures) >= 15
    for picture in pictures:
        assert (ROOT / "docs" / picture).stat().st_size > 1000, picture


def test_pretrained_numbers():
    """The section "A real Transformer": the demo's findings on all-MiniLM-L6-v2."""
    from tinygrad_enc import pretrained
    import pretrained_attention
    try:
        model, tokenizer = pretrained.load_bert()
    except ModuleNotFoundError as missing:
        import pytest
        pytest.skip(str(missing))
    with contextlib.redirect_stdout(io.StringIO()):
        r = pretrained_attention.analyse(model, tokenizer)
        similarity = pretrained_attention.similarity(model, tokenizer)
    tired, wide = r["tables"]["tired"], r["tables"]["wide"]
    head = pretrained_attention.CHOSEN_HEAD
    assert r["it_heads"][0] == r["street_heads"][0] == head == (3, 1)
    assert r["animal_heads"][:2] == [(5, 11), head]
    assert_quoted(
        f"In **layer {head[0]} head {head[1]}**, \"it\" gives {tired['animal'][head]:.2f} of its "
        f"attention to \"animal\" and {tired['street'][head]:.2f} to \"street\"",
        f"give \"animal\" only {r['others'][head]:.2f} on average there",
        f"gives \"animal\" {wide['animal'][head]:.2f} and \"street\" {wide['street'][head]:.2f}",
        f"most toward \"street\" (+{r['shift'][head]:.2f})",
        f"Layer 5 head 11 gives \"animal\" even more ({tired['animal'][5, 11]:.2f})",
        f"every token looks at \"animal\" ({r['others'][5, 11]:.2f} on average)",
        f"In {r['tired']['special'][0]} of the 72 heads",
        f"{r['tired']['special'][1]:.0%} of its attention goes there on average",
        f"with either ending, {r['prefers_street']['tired']} of the 72 heads")
    assert r["prefers_street"]["tired"] == r["prefers_street"]["wide"]
    assert_quoted(f"Paraphrases score {similarity[0, 1]:.2f}", f"{similarity[2, 3]:.2f} (a cat",
                  f"and {similarity[4, 5]:.2f} (stock prices")
    assert abs(similarity[6, :6]).max() < 0.1 and abs(similarity[0, 2:6]).max() < 0.1
    assert_quoted(f"{model.num_parameters():,}: MiniLM",
                  " ".join(tokenizer.tokenize("Tokenization is unbelievably easy")),
                  " ".join(tokenizer.convert_ids_to_tokens(
                      tokenizer([pretrained_attention.SENTENCE.format("tired")])["input_ids"][0])))
