"""Text: transcript normalization and tokenizers (ids <-> text) for CTC.

Torch-free: the runtime rebuilds the tokenizer from the model file's metadata with
:func:`tokenizer_from_dict`. Id 0 is always the CTC blank.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Iterable, Protocol, Sequence

__all__ = ["normalize_text", "Tokenizer", "CharTokenizer", "WordTokenizer", "build_tokenizer", "tokenizer_from_dict", "BLANK"]

BLANK = "<blank>"
_KEEP = re.compile(r"[^a-z0-9' ]+")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower-case, strip accents and punctuation (apostrophes inside words stay), and collapse
    whitespace: ``"Hello, World!"`` -> ``"hello world"``."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("-", " ")
    text = _KEEP.sub(" ", text)
    text = " ".join(w.strip("'") for w in text.split())
    return _SPACES.sub(" ", text).strip()


class Tokenizer(Protocol):
    """What the model, decoder and runtime need from a tokenizer."""

    @property
    def vocab(self) -> list[str]: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def to_dict(self) -> dict: ...


class _Vocabulary:
    """A symbol list with the CTC blank at id 0; subclasses say what a symbol is."""

    kind = ""

    def __init__(self, symbols: Sequence[str]):
        symbols = list(symbols)
        if not symbols or symbols[0] != BLANK:
            raise ValueError(f"a vocabulary must start with the blank {BLANK!r}")
        if len(set(symbols)) != len(symbols):
            raise ValueError("vocabulary has duplicate symbols")
        self._vocab = symbols
        self._index = {s: i for i, s in enumerate(symbols)}

    @property
    def vocab(self) -> list[str]:
        return list(self._vocab)

    def __len__(self) -> int:
        return len(self._vocab)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "vocab": self.vocab}


class CharTokenizer(_Vocabulary):
    """Characters of normalized text, with a blank at id 0 and ``" "`` as the word separator."""

    kind = "char"

    @classmethod
    def build(cls, texts: Iterable[str]) -> "CharTokenizer":
        counts = Counter()
        for t in texts:
            counts.update(normalize_text(t))
        return cls([BLANK] + sorted(counts))

    def encode(self, text: str) -> list[int]:
        text = normalize_text(text)
        unknown = sorted({c for c in text if c not in self._index})
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {unknown!r} (in {text!r})")
        return [self._index[c] for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        text = "".join(self._vocab[i] for i in ids if i != 0)
        return " ".join(text.split())



class WordTokenizer(_Vocabulary):
    """Whole words of normalized text as units, for closed vocabularies (digits, commands):
    a blank at id 0, then one id per word seen in training. Decoding joins words with spaces.
    Words outside the vocabulary cannot be encoded (use :class:`CharTokenizer` for open ones)."""

    kind = "word"

    @classmethod
    def build(cls, texts: Iterable[str]) -> "WordTokenizer":
        words = set()
        for t in texts:
            words.update(normalize_text(t).split())
        return cls([BLANK] + sorted(words))

    def encode(self, text: str) -> list[int]:
        words = normalize_text(text).split()
        unknown = sorted({w for w in words if w not in self._index})
        if unknown:
            raise ValueError(f"words not in the vocabulary: {unknown!r}")
        return [self._index[w] for w in words]

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self._vocab[i] for i in ids if i != 0)



_KINDS = {"char": CharTokenizer, "word": WordTokenizer}


def build_tokenizer(kind: str, texts: Iterable[str]) -> Tokenizer:
    """A tokenizer of ``kind`` ("char" or "word") built from training transcripts."""
    if kind not in _KINDS:
        raise ValueError(f"unknown tokenizer {kind!r} (known: {sorted(_KINDS)})")
    return _KINDS[kind].build(texts)


def tokenizer_from_dict(d: dict) -> Tokenizer:
    kind = d.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}")
    return _KINDS[kind](d["vocab"])
