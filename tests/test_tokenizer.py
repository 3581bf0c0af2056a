"""The WordPiece tokenizer: its steps on known cases, its batch dict and its
errors (a tiny vocabulary, always run), then id for id against the
`tokenizers` package on the model's tokenizer.json (skipped without it or
without the model package)."""
import unicodedata

import numpy as np
import pytest

from tinygrad_enc.pretrained import WordPieceTokenizer
from tinygrad_enc.pretrained.tokenizer import SPECIAL_TOKENS

TINY = list(SPECIAL_TOKENS) + ["the", "animal", "it", "was", "too", "tired", "token", "##ization",
                               "##s", "didn", "'", "t", "cafe", "日", "本", "!", "a", "##b"]


@pytest.fixture
def tiny():
    return WordPieceTokenizer(TINY)


def test_the_three_steps(tiny):
    assert tiny.normalize("Café\u00a0NAÏVE\x00\u200b") == "cafe naive"  # accents, space, controls
    assert tiny.normalize("日本語") == " 日  本  語 "                       # CJK become words
    assert tiny.pre_tokenize("didn't stop!") == ["didn", "'", "t", "stop", "!"]
    assert tiny.wordpiece("tokenization") == ["token", "##ization"]
    assert tiny.wordpiece("tokens") == ["token", "##s"]
    assert tiny.wordpiece("tokenx") == ["[UNK]"]                          # no piece fits "x"
    assert tiny.wordpiece("a" * 101) == ["[UNK]"]                          # too long a word
    assert tiny.wordpiece("ab") == ["a", "##b"]


def test_tokenize_and_special_tokens(tiny):
    assert tiny.tokenize("The ANIMAL didn't") == ["the", "animal", "didn", "'", "t"]
    assert tiny.tokenize("it[MASK]was") == ["it", "[MASK]", "was"]
    assert tiny.tokenize("Tokenizations!") == ["token", "##ization", "##s", "!"]
    assert tiny.tokenize("") == []


def test_cased_tokenizer_keeps_case_and_accents():
    cased = WordPieceTokenizer(TINY + ["Café"], lowercase=False)
    assert cased.tokenize("Café the") == ["Café", "the"]
    assert cased.strip_accents is False


def test_batch_dict_pads_and_masks(tiny):
    batch = tiny(["it was too tired", "the animal"])
    ids = batch["input_ids"]
    assert set(batch) == {"input_ids", "token_type_ids", "key_padding_mask"}
    assert ids.dtype == np.int64 and batch["token_type_ids"].dtype == np.int64
    assert batch["key_padding_mask"].dtype == np.bool_
    cls, sep, pad = (TINY.index(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
    it, was, too, tired, the, animal = (TINY.index(t) for t in
                                        "it was too tired the animal".split())
    np.testing.assert_array_equal(ids, [[cls, it, was, too, tired, sep],
                                        [cls, the, animal, sep, pad, pad]])
    np.testing.assert_array_equal(batch["key_padding_mask"],
                                  [[False] * 6, [False] * 4 + [True] * 2])
    np.testing.assert_array_equal(batch["token_type_ids"], np.zeros((2, 6)))
    assert tiny.convert_ids_to_tokens(ids[1]) == ["[CLS]", "the", "animal", "[SEP]", "[PAD]",
                                                  "[PAD]"]


def test_pairs_get_token_type_one(tiny):
    batch = tiny(["it was"], text_pairs=["too tired"])
    assert tiny.convert_ids_to_tokens(batch["input_ids"][0]) == [
        "[CLS]", "it", "was", "[SEP]", "too", "tired", "[SEP]"]
    np.testing.assert_array_equal(batch["token_type_ids"][0], [0, 0, 0, 0, 1, 1, 1])


def test_too_long_raises_or_truncates():
    short = WordPieceTokenizer(TINY, max_length=5)
    with pytest.raises(ValueError, match="6 tokens.*max_length = 5.*truncation=True"):
        short(["it was too tired"])
    ids = short(["it was too tired"], truncation=True)["input_ids"][0]
    assert short.convert_ids_to_tokens(ids) == ["[CLS]", "it", "was", "too", "[SEP]"]
    pair = short(["it was too"], text_pairs=["tired"], truncation=True)["input_ids"][0]
    assert short.convert_ids_to_tokens(pair) == ["[CLS]", "it", "[SEP]", "tired", "[SEP]"]


@pytest.mark.parametrize("texts, error, message", [
    ("it was", TypeError, "list of texts, got one str.*tokenizer\\(\\[text\\]\\)"),
    ([], ValueError, "texts is empty"),
    (["it", 3], TypeError, "texts\\[1\\] is a int, not a str"),
    (None, TypeError, "list of texts, got NoneType"),
])
def test_misuse_is_a_clear_error(tiny, texts, error, message):
    with pytest.raises(error, match=message):
        tiny(texts)


def test_more_misuse(tiny):
    with pytest.raises(ValueError, match="2 texts but 1 text_pairs"):
        tiny(["a", "b"], text_pairs=["c"])
    with pytest.raises(TypeError, match="tokenize: takes a str"):
        tiny.tokenize(["a"])
    with pytest.raises(ValueError, match="lacks the special tokens"):
        WordPieceTokenizer(["a", "b"])
    with pytest.raises(ValueError, match=r"ids must be integers in \[0, 23\)"):
        tiny.convert_ids_to_tokens([0, 99])


def test_vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TINY) + "\n", encoding="utf-8")
    tok = WordPieceTokenizer.from_file(path)
    assert tok.ids_to_tokens == TINY and len(tok) == len(TINY)


# ----- against the `tokenizers` package ------------------------------------------

@pytest.fixture(scope="module")
def both():
    tokenizers = pytest.importorskip("tokenizers")
    from tinygrad_enc import pretrained
    try:
        directory = pretrained.installed_model_dir()
    except ModuleNotFoundError:
        pytest.skip(f"model package not installed ({pretrained.INSTALL})")
    reference = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
    reference.no_truncation()
    reference.no_padding()
    ours = WordPieceTokenizer.from_file(directory / "vocab.txt")
    return ours, reference


def assert_same_ids(ours, reference, lines):
    expected = [e.ids for e in reference.encode_batch(lines)]
    got = [ours.encode(line)[0] for line in lines]
    wrong = [(line, ours.tokenize(line)) for line, a, b in zip(lines, got, expected) if a != b]
    assert not wrong, f"{len(wrong)} of {len(lines)} lines differ, e.g. {wrong[:3]}"


def test_same_ids_on_the_python_documentation(both):
    from pydoc_data.topics import topics
    lines = [line for text in topics.values() for line in text.split("\n") if line.strip()]
    assert len(lines) > 5000
    assert_same_ids(*both, lines)


def test_same_ids_on_many_scripts_and_odd_characters(both):
    # characters Unicode has had since 3.2 with the same category: the `tokenizers`
    # package's character tables are older than Python's, and newer ones can differ
    rng = np.random.default_rng(0)
    chars = [chr(c) for c in range(0x30000) if not 0xD800 <= c < 0xE000
             and unicodedata.ucd_3_2_0.category(chr(c)) not in ("Cn",)
             and unicodedata.ucd_3_2_0.category(chr(c)) == unicodedata.category(chr(c))]
    words = [t for t in both[0].ids_to_tokens if t.isalpha()]
    lines = ["ΟΔΟΣ Σίσυφος", "İstanbul ǅ ﬁ Straße", "café naïve résumé", "a[MASK]b [CLS] x",
             "x" * 150, "\x0bline\x0cfeed\x85next\u2028sep\ttab", "don't stop—ever…",
             "日本語のテキスト", "한국어 텍스트", "Москва́ — столица"]
    for _ in range(2000):
        parts = [words[rng.integers(len(words))] if rng.random() < 0.5 else
                 "".join(chars[i] for i in rng.integers(len(chars), size=rng.integers(1, 6)))
                 for _ in range(rng.integers(1, 10))]
        lines.append(" ".join(p.upper() if rng.random() < 0.3 else p for p in parts))
    assert_same_ids(*both, lines)


def test_same_ids_for_pairs(both):
    ours, reference = both
    pairs = [("The animal didn't cross the street", "because it was too tired"),
             ("A man plays a guitar.", "Someone is playing music!")]
    for a, b in pairs:
        ids, types = ours.encode(a, b)
        expected = reference.encode(a, b)
        assert ids == expected.ids and types == expected.type_ids
