"""WordPiece: how BERT turns text into token ids.

    tokenizer = WordPieceTokenizer.from_file("vocab.txt")
    tokenizer.tokenize("The animal didn't cross")   # ['the', 'animal', 'didn', "'", 't', 'cross']
    tokenizer(["it was too tired", "it was wide"])  # {"input_ids": (2, T), ...}

Three steps, as in BERT's original tokenizer (and in the `tokenizers`
package's BertNormalizer, BertPreTokenizer and WordPiece, which the tests
compare with id for id):

1. normalise: drop control characters, turn every kind of white space into a
   space, put spaces around CJK ideographs (each Chinese character is a word),
   strip accents (split each letter from its accents, Unicode NFD, and drop the
   accents: "café" -> "cafe") and lower-case;
2. pre-tokenise: split at spaces, and make each punctuation character a word of
   its own ("didn't" -> "didn", "'", "t");
3. WordPiece: cut each word, from the left, into the longest pieces that are in
   the vocabulary; a piece that does not start the word is looked up with "##"
   in front ("tokenization" -> "token", "##ization"). A word that cannot be cut
   so, or longer than 100 characters, becomes [UNK].

A sequence is then [CLS] pieces [SEP]; a pair of texts is [CLS] a [SEP] b [SEP],
with token type 0 for the first text and 1 for the second. Literal special
tokens in the text ("[MASK]") are kept whole, as the `tokenizers` package does.
The vocabulary is tiny next to the words of English (30,522 entries here) and
yet no word is out of vocabulary unless a character is: rare words become
several common pieces.

Character classes (control, punctuation, accent, lower case) come from
Python's `unicodedata`. About 560 of Unicode's 1.1 million code points, all of
them recent additions, are classified differently by the `tokenizers`
package, whose tables follow other Unicode versions; everything else agrees.
"""
import re
import unicodedata
from pathlib import Path

import numpy as np

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class _CharTable(dict):
    """A `str.translate` table filled on demand: `rule(char)` gives the
    replacement (a string, or None to drop the character), computed once per
    character. Translating with it runs the per-character rule at C speed."""

    def __init__(self, rule):
        super().__init__()
        self.rule = rule

    def __missing__(self, code):
        value = self[code] = self.rule(chr(code))
        return value


def _is_control(char):
    # control, format, surrogate and private-use characters (Cc Cf Cs Co), except the
    # white space \t \n \r; unassigned code points (Cn) are kept, as `tokenizers` does
    return char not in "\t\n\r" and unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co")


def _clean(char):
    """Control characters, NUL and the replacement character are dropped; every
    white space (tab, newline, no-break space, ...) becomes a plain space."""
    if char in "\0\ufffd" or _is_control(char):
        return None
    return " " if char.isspace() else char


# The CJK Unified Ideographs blocks (BERT's definition of a Chinese character;
# Hangul and kana are not in it: they are written with spaces between words).
# The fifth block starts at 0x2B920 in the `tokenizers` package, which the
# model's tokenizer.json is made for; BERT's first tokenizer started it at 0x2B820.
_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _space_cjk(char):
    code = ord(char)
    return f" {char} " if any(lo <= code <= hi for lo, hi in _CJK) else char


def _drop_accent(char):
    """After NFD an accent is a separate "nonspacing mark" (category Mn): drop it."""
    return None if unicodedata.category(char) == "Mn" else char


def _is_punctuation(char):
    # every ASCII non-letter, non-digit symbol ($, +, ^, ` count too), and Unicode's P* categories
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


_CLEAN = _CharTable(_clean)
_SPACE_CJK = _CharTable(_space_cjk)
_DROP_ACCENTS = _CharTable(_drop_accent)
# one character at a time, as the `tokenizers` package does: "Σ" is always "σ",
# where str.lower() would write a word-final "ς"
_LOWER = _CharTable(str.lower)
_SPLIT_PUNCTUATION = _CharTable(lambda c: f" {c} " if _is_punctuation(c) else c)


class WordPieceTokenizer:
    """BERT's tokenizer over a vocabulary (a list of tokens; a token's id is
    its position), with the options of Hugging Face's BertTokenizer.

    lowercase      lower-case the text (an "uncased" model)
    strip_accents  None: do it when lower-casing, as BERT does
    split_cjk      put spaces around CJK ideographs
    max_length     the longest sequence, special tokens included (the model's
                   number of positions)
    """

    def __init__(self, vocab, lowercase=True, strip_accents=None, split_cjk=True,
                 max_length=512, max_input_chars_per_word=100):
        if isinstance(vocab, (str, bytes)) or len(vocab) == 0:
            raise ValueError("WordPieceTokenizer: vocab must be a non-empty list of tokens")
        self.ids_to_tokens = list(vocab)
        # a token listed twice keeps its last id, as in Hugging Face's load_vocab
        self.vocab = {token: i for i, token in enumerate(self.ids_to_tokens)}
        absent = [t for t in SPECIAL_TOKENS if t not in self.vocab]
        if absent:
            raise ValueError(f"WordPieceTokenizer: the vocabulary lacks the special tokens "
                             f"{absent}")
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.split_cjk = split_cjk
        self.max_length = max_length
        self.max_input_chars_per_word = max_input_chars_per_word
        self.pad_id, self.unk_id, self.cls_id, self.sep_id = (
            self.vocab[t] for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]"))
        self._special = re.compile("(" + "|".join(map(re.escape, SPECIAL_TOKENS)) + ")")

    @classmethod
    def from_file(cls, vocab_path, **options):
        """Read `vocab.txt` (one token a line, the id is the line number)."""
        text = Path(vocab_path).read_text(encoding="utf-8")
        tokens = text.split("\n")
        if tokens and tokens[-1] == "":  # the newline that ends the last line
            tokens.pop()
        return cls(tokens, **options)

    def __len__(self):
        return len(self.ids_to_tokens)

    # ----- text -> word pieces ----------------------------------------------
    def normalize(self, text):
        """Step 1: clean, space CJK, strip accents, lower-case."""
        text = text.translate(_CLEAN)
        if self.split_cjk:
            text = text.translate(_SPACE_CJK)
        if self.strip_accents:
            text = unicodedata.normalize("NFD", text).translate(_DROP_ACCENTS)
        if self.lowercase:
            text = text.translate(_LOWER)
        return text

    @staticmethod
    def pre_tokenize(text):
        """Step 2: words split at white space, each punctuation character alone."""
        return text.translate(_SPLIT_PUNCTUATION).split()

    def wordpiece(self, word):
        """Step 3: greedy longest match from the left, "##" on continuing pieces."""
        if len(word) > self.max_input_chars_per_word:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
            else:  # no piece of the vocabulary starts here
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text):
        """A text as word pieces, without [CLS] and [SEP]:
        "it was too tired" -> ['it', 'was', 'too', 'tired']."""
        if not isinstance(text, str):
            raise TypeError(f"tokenize: takes a str, got {type(text).__name__}")
        pieces = []
        for i, part in enumerate(self._special.split(text)):
            if i % 2:  # a literal special token, e.g. "[MASK]"
                pieces.append(part)
                continue
            for word in self.pre_tokenize(self.normalize(part)):
                pieces.extend(self.wordpiece(word))
        return pieces

    # ----- word pieces <-> ids -----------------------------------------------
    def convert_tokens_to_ids(self, tokens):
        return [self.vocab.get(t, self.unk_id) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0
                         or ids.max() >= len(self)):
            raise ValueError(f"convert_ids_to_tokens: ids must be integers in [0, {len(self)})")
        return [self.ids_to_tokens[i] for i in ids.tolist()]

    def encode(self, text, pair=None, truncation=False):
        """The ids of [CLS] text [SEP] (or [CLS] text [SEP] pair [SEP]) and their
        token types (0 for the first text's tokens, 1 for the pair's).

        A sequence longer than `max_length` raises ValueError, or with
        truncation=True loses tokens from its end (from the longer text of a
        pair first); the special tokens stay."""
        a = self.convert_tokens_to_ids(self.tokenize(text))
        b = None if pair is None else self.convert_tokens_to_ids(self.tokenize(pair))
        specials = 2 if b is None else 3
        budget = self.max_length - specials
        length = len(a) + (len(b) if b else 0)
        if length > budget:
            if not truncation:
                raise ValueError(f"tokenizer: {length + specials} tokens (special ones included), "
                                 f"more than max_length = {self.max_length}; shorten the text "
                                 "or pass truncation=True")
            while len(a) + (len(b) if b else 0) > budget:
                (a if b is None or len(a) > len(b) else b).pop()
        ids = [self.cls_id] + a + [self.sep_id]
        types = [0] * len(ids)
        if b is not None:
            ids += b + [self.sep_id]
            types += [1] * (len(b) + 1)
        return ids, types

    # ----- a batch ------------------------------------------------------------
    def __call__(self, texts, text_pairs=None, truncation=False):
        """A batch of texts (a list of str; with `text_pairs`, a second list of
        the same length) -> dict of (B, T) arrays, T the longest sequence:

        "input_ids"        int64, [CLS] ... [SEP] then [PAD]
        "token_type_ids"   int64, 0 for the first text, 1 for the pair
        "key_padding_mask" bool, True at padding (Hugging Face's attention_mask
                           is the opposite: 1 where there is a token)
        """
        texts = _text_list(texts, "texts")
        pairs = [None] * len(texts) if text_pairs is None else _text_list(text_pairs, "text_pairs")
        if len(pairs) != len(texts):
            raise ValueError(f"tokenizer: {len(texts)} texts but {len(pairs)} text_pairs")
        encoded = [self.encode(a, b, truncation) for a, b in zip(texts, pairs)]
        T = max(len(ids) for ids, _ in encoded)
        input_ids = np.full((len(texts), T), self.pad_id, dtype=np.int64)
        token_type_ids = np.zeros((len(texts), T), dtype=np.int64)
        key_padding_mask = np.ones((len(texts), T), dtype=bool)
        for row, (ids, types) in enumerate(encoded):
            input_ids[row, :len(ids)] = ids
            token_type_ids[row, :len(ids)] = types
            key_padding_mask[row, :len(ids)] = False
        return {"input_ids": input_ids, "token_type_ids": token_type_ids,
                "key_padding_mask": key_padding_mask}

    def __repr__(self):
        return (f"WordPieceTokenizer(vocab_size={len(self)}, lowercase={self.lowercase}, "
                f"strip_accents={self.strip_accents}, max_length={self.max_length})")


def _text_list(texts, name):
    """`texts` as a non-empty list of str, or a clear error."""
    if isinstance(texts, str):
        raise TypeError(f"tokenizer: {name} must be a list of texts, got one str; for one text "
                        f"write tokenizer([text])")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"tokenizer: {name} must be a list of texts, got "
                        f"{type(texts).__name__}") from None
    if not texts:
        raise ValueError(f"tokenizer: {name} is empty; give at least one text")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"tokenizer: {name}[{i}] is a {type(text).__name__}, not a str")
    return texts
