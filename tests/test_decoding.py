"""Decoding: greedy, sampling and beam search give the sequences they promise;
the key/value cache changes the speed, never the tokens; wrong calls are
clear errors."""
import itertools

import numpy as np
import pytest

from nn_helpers import D_FF, D_MODEL, N_HEADS
from tinygrad_enc import Tensor, manual_seed, nn, no_grad
from tinygrad_enc.nn import decoding

START, END = 3, 2


def tiny_transformer(tgt_vocab=6, seed=0, dtype=np.float32, **kwargs):
    manual_seed(seed)
    model = nn.Transformer(7, tgt_vocab, D_MODEL, N_HEADS, 2, 2, D_FF, dropout=0.0,
                           max_len=24, **kwargs).to(dtype)
    for p in model.parameters():  # larger weights: peaked, varied next-token distributions
        p.data *= 3.0
    return model


def src_ids(B=3, S=5, seed=1):
    return np.random.default_rng(seed).integers(0, 7, (B, S))


class TableStepper(decoding.Stepper):
    """A stand-in model: the next-token log-probabilities are a function of
    the prefix, read from `table` (prefix tuple -> probabilities)."""

    def __init__(self, table, vocab):
        def forward(ids, offset):
            rows = [table.get(tuple(row[1:]), np.full(vocab, 1.0 / vocab)) for row in ids]
            return Tensor(np.log(np.asarray(rows))[:, None, :])
        super().__init__(forward)


def step_logits(model, src, tokens, use_cache):
    """The logits of every step of teacher-forcing `tokens` through the decode path."""
    layers = model.decoder.layers
    with decoding.kv_caches([layer.self_attn for layer in layers],
                            [layer.cross_attn for layer in layers], enabled=use_cache) as caches:
        memory = model.encode(src)
        stepper = decoding.Stepper(model._next_logits, caches, memory=memory,
                                   memory_key_padding_mask=None)
        return np.stack([stepper.logits(tokens[:, :t]) for t in range(1, tokens.shape[1] + 1)])


@pytest.mark.parametrize("beam_size", [1, 3])
def test_cache_changes_nothing_but_speed(beam_size):
    model = tiny_transformer()
    src = src_ids()
    cached = model.generate(src, 10, START, END, beam_size=beam_size)
    uncached = model.generate(src, 10, START, END, beam_size=beam_size, use_cache=False)
    np.testing.assert_array_equal(cached, uncached)
    tokens = np.concatenate([np.full((3, 1), START), model.generate(src, 10, START, None)], 1)
    a, b = step_logits(model, src, tokens, True), step_logits(model, src, tokens, False)
    assert a.dtype == np.float64 and np.abs(a - b).max() < 1e-5
    assert np.abs(a[1:] - a[:-1]).max() > 1e-3  # the steps differ: the test can fail


def test_cache_is_attached_only_during_a_decode():
    model = tiny_transformer()
    with pytest.raises(ValueError):
        model.generate(src_ids(), 5, START, END, src_key_padding_mask=np.zeros((3, 4), bool))
    model.generate(src_ids(), 5, START, END)
    assert all(m.cache is None for m in model.modules() if isinstance(m, nn.MultiHeadAttention))
    model.train()
    model.generate(src_ids(), 5, START, END)
    assert model.training


def test_greedy_output_stops_per_sequence_and_pads_with_end():
    table = {(): [0.1, 0.2, 0.3, 0.4], (3,): [0.1, 0.1, 0.7, 0.1]}  # 3 then end
    stepper = TableStepper(table, 4)
    out = decoding.generate(stepper, np.full((1, 1), 0), 6, end_id=2)
    np.testing.assert_array_equal(out, [[3, 2]])
    model = tiny_transformer()
    out = model.generate(src_ids(B=6, seed=3), 12, START, END)
    assert out.dtype == np.int64 and out.ndim == 2 and out.shape[1] <= 12
    for row in out:
        ends = np.flatnonzero(row == END)
        if len(ends):
            assert np.all(row[ends[0]:] == END)


def test_beam_of_one_is_greedy():
    model = tiny_transformer()
    src = src_ids(B=5, seed=4)
    greedy = model.generate(src, 10, START, END)
    with decoding.kv_caches([layer.self_attn for layer in model.decoder.layers],
                            [layer.cross_attn for layer in model.decoder.layers]) as caches:
        with no_grad():
            stepper = decoding.Stepper(model._next_logits, caches, memory=model.encode(src),
                                       memory_key_padding_mask=None)
            beam = decoding._beam_search(stepper, np.full((5, 1), START), 10, END, 1, 0.0)
    np.testing.assert_array_equal(beam, greedy)
    np.testing.assert_array_equal(model.generate(src, 10, START, END, beam_size=1), greedy)
    for seed in range(10):
        prefix = np.zeros((3, 1), np.int64)
        greedy = decoding.generate(RandomStepper(5, seed), prefix, 6, end_id=2)
        beam = decoding._beam_search(RandomStepper(5, seed), prefix, 6, 2, 1, 0.0)
        np.testing.assert_array_equal(beam, greedy)


class RandomStepper(decoding.Stepper):
    """A stand-in model whose every prefix has its own random next-token
    distribution (Dirichlet-drawn, so some are peaked and some flat)."""

    def __init__(self, vocab, seed):
        self.table, self.vocab, self.rng = {}, vocab, np.random.default_rng(seed)

        def forward(ids, offset):
            rows = [self.probabilities(tuple(row)) for row in ids]
            return Tensor(np.log(np.array(rows))[:, None, :], dtype=np.float64)
        super().__init__(forward)

    def probabilities(self, prefix):
        if prefix not in self.table:
            self.table[prefix] = self.rng.dirichlet(np.full(self.vocab, 0.5))
        return self.table[prefix]

    def log_prob(self, sequence):
        """log p of the tokens after the prefix (0,)."""
        return sum(np.log(self.probabilities((0,) + tuple(sequence[:i]))[token])
                   for i, token in enumerate(sequence))


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, -0.5])
def test_a_large_beam_finds_the_exhaustive_best(length_penalty):
    """V = 4 tokens (end = 2), at most 4 of them: all 121 sequences fit in 81
    beams, so beam search is exhaustive and must return the best of them."""
    vocab, max_len, end = 4, 4, 2
    others = [t for t in range(vocab) if t != end]
    candidates = [seq + (end,) for k in range(max_len) for seq in itertools.product(others, repeat=k)]
    candidates += list(itertools.product(others, repeat=max_len))
    greedy_was_wrong = 0
    for seed in range(30):
        stepper = RandomStepper(vocab, seed)
        found = decoding.generate(stepper, np.zeros((1, 1), np.int64), max_len, end, beam_size=81,
                                  length_penalty=length_penalty)
        scores = {seq: stepper.log_prob(seq) / len(seq) ** length_penalty for seq in candidates}
        best = max(scores, key=scores.get)
        assert tuple(found[0]) == best
        greedy = decoding.generate(stepper, np.zeros((1, 1), np.int64), max_len, end)
        assert scores[tuple(greedy[0])] <= scores[best]
        greedy_was_wrong += tuple(greedy[0]) != best
    assert greedy_was_wrong  # the search is needed: the test can fail


def test_beam_search_beats_greedy_on_a_trap():
    """Greedy takes 0 (0.5) and then ends (0.4): 0.2. Beam search also keeps 1
    (0.4), whose continuation 1 has 0.9, then ends (1.0): 0.36."""
    table = {(): [0.5, 0.4, 0.1], (0,): [0.3, 0.3, 0.4], (1,): [0.05, 0.9, 0.05],
             (1, 1): [1e-9, 1e-9, 1.0 - 2e-9]}
    prefix = np.zeros((1, 1), np.int64)
    greedy = decoding.generate(TableStepper(table, 3), prefix, 3, end_id=2)
    beam = decoding.generate(TableStepper(table, 3), prefix, 3, end_id=2, beam_size=2)
    assert list(greedy[0]) == [0, 2] and list(beam[0]) == [1, 1, 2]


def test_sampling_is_seeded_and_follows_the_probabilities():
    table = {(): [0.6, 0.3, 0.1]}
    draws = []
    for seed in (0, 0, 1):
        manual_seed(seed)
        draws.append(decoding.generate(TableStepper(table, 3), np.zeros((4000, 1), np.int64), 1,
                                       temperature=1.0)[:, 0])
    np.testing.assert_array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0], draws[2])
    np.testing.assert_allclose(np.bincount(draws[0], minlength=3) / 4000, [0.6, 0.3, 0.1], atol=0.03)
    manual_seed(0)
    top2 = decoding.generate(TableStepper(table, 3), np.zeros((4000, 1), np.int64), 1,
                             temperature=1.0, top_k=2)[:, 0]
    np.testing.assert_allclose(np.bincount(top2, minlength=3) / 4000, [2 / 3, 1 / 3, 0], atol=0.03)
    manual_seed(0)
    hot = decoding.generate(TableStepper(table, 3), np.zeros((4000, 1), np.int64), 1,
                            temperature=2.0)[:, 0]
    expected = np.sqrt([0.6, 0.3, 0.1]) / np.sqrt([0.6, 0.3, 0.1]).sum()
    np.testing.assert_allclose(np.bincount(hot, minlength=3) / 4000, expected, atol=0.03)


def test_top_k_of_one_is_greedy():
    model = tiny_transformer()
    src = src_ids()
    manual_seed(0)
    np.testing.assert_array_equal(model.generate(src, 8, START, END, temperature=1.0, top_k=1),
                                  model.generate(src, 8, START, END))


def test_gpt_generate_cached_equals_uncached():
    manual_seed(0)
    gpt = nn.GPT(11, D_MODEL, N_HEADS, 2, D_FF, dropout=0.0, max_len=20)
    for p in gpt.parameters():
        p.data *= 3.0
    prompt = np.random.default_rng(0).integers(0, 11, (2, 4))
    for beam in (1, 3):
        a = gpt.generate(prompt, 12, beam_size=beam)
        np.testing.assert_array_equal(a, gpt.generate(prompt, 12, beam_size=beam, use_cache=False))
    assert a.shape == (2, 12) and len(set(a.ravel())) > 1
    long = gpt.generate(prompt, 50)  # past the 20 positions: the context slides
    assert long.shape == (2, 50)
    np.testing.assert_array_equal(long[:, :16], gpt.generate(prompt, 16))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(beam_size=0), ValueError, "beam_size must be at least 1"),
    (dict(temperature=-0.5), ValueError, "temperature must be >= 0"),
    (dict(top_k=0, temperature=1.0), ValueError, "top_k must be at least 1"),
    (dict(max_len=0), ValueError, "max_len must be at least 1"),
    (dict(max_len=2.5), TypeError, "max_len must be an integer"),
    (dict(beam_size=3, temperature=1.0), ValueError, "beam search"),
    (dict(src_key_padding_mask=np.zeros((3, 5))), TypeError, "boolean"),
    (dict(src=src_ids().astype(float)), TypeError, "integer token ids"),
    (dict(src=src_ids()[0]), ValueError, r"\(B, T\)"),
    (dict(start_id=6), ValueError, r"start_id = 6 is not a token id in \[0, 6\)"),
    (dict(end_id=1.0), TypeError, "end_id must be an integer"),
    (dict(max_len=30), ValueError, "exceeds the model's max_len"),
])
def test_generate_errors(kwargs, error, match):
    model = tiny_transformer()
    call = dict(src=src_ids(), max_len=5, start_id=START, end_id=END)
    call.update(kwargs)
    with pytest.raises(error, match=match):
        model.generate(**call)


def test_start_symbol_must_not_be_padding():
    model = tiny_transformer(pad_id=0)
    with pytest.raises(ValueError, match="padding id"):
        model.generate(src_ids(), 5, 0, END)


def test_empty_batch():
    out = tiny_transformer().generate(np.zeros((0, 5), np.int64), 5, START, END)
    assert out.shape == (0, 0) and out.dtype == np.int64
