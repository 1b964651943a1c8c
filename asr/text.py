"""Text: transcript normalization and tokenizers (ids <-> text) for CTC.

Four kinds: ``char`` (characters, ``" "`` separates words), ``word`` (whole words),
``bpe`` (SentencePiece word pieces, unigram or BPE; a piece starting with ``"▁"`` starts a
word) and ``phone`` (phones of a pronunciation lexicon, ``"|"`` separates words).
Torch-free: the runtime rebuilds the tokenizer from the model file's metadata with
:func:`tokenizer_from_dict`. Id 0 is always the CTC blank.
"""

from __future__ import annotations

import base64
import io
import re
import unicodedata
from collections import Counter
from typing import Iterable, Protocol, Sequence

__all__ = ["normalize_text", "strip_control", "Tokenizer", "CharTokenizer", "WordTokenizer", "PhoneTokenizer", "SentencePieceTokenizer",
           "build_tokenizer", "tokenizer_from_dict", "read_lexicon", "BLANK", "UNKNOWN_WORD", "WORD_BOUNDARY", "WORD_START"]

BLANK = "<blank>"
UNKNOWN_WORD = "<unk>"  # a closed word vocabulary's unit for every other word (WordTokenizer)
WORD_BOUNDARY = "|"  # a phone model's unit between words (its space)
WORD_START = "\u2581"  # SentencePiece's word-start mark ("▁"), the first character of a word's first piece
_KEEP = re.compile(r"[^a-z0-9' ]+")
_SPACES = re.compile(r"\s+")
# terminal control: ESC [ ... final (CSI: colours, cursor moves), ESC ] ... BEL or ESC \ (OSC:
# window titles, links), other two-byte ESC sequences, then any control character left
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
                      r"|\x1b[@-Z\\-_]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def strip_control(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (tab and line breaks
    stay): ``"\\x1b[31mfour\\x1b[0m"`` -> ``"four"``, not ``"31mfour 0m"``."""
    return _CONTROL.sub("", text)


def normalize_text(text: str) -> str:
    """Lower-case, strip accents and punctuation (apostrophes inside words stay), and collapse
    whitespace: ``"Hello, World!"`` -> ``"hello world"``. Terminal escape sequences and control
    characters are dropped first (:func:`strip_control`)."""
    text = unicodedata.normalize("NFKD", strip_control(text))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("-", " ")
    text = _KEEP.sub(" ", text)
    text = " ".join(w.strip("'") for w in text.split())
    return _SPACES.sub(" ", text).strip()


_VARIANT = re.compile(r"\(\d+\)$")


def read_lexicon(path: str) -> dict[str, list[tuple[str, ...]]]:
    """All pronunciations of a lexicon file (:mod:`asr.lexicon`): word -> its pronunciations
    (tuples of phones, stress digits dropped), in file order. Raises ``ValueError`` naming the
    file and line of a malformed line, or when the file holds none."""
    lexicon: dict[str, list[tuple[str, ...]]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split("#", 1)[0].split() if not line.startswith("#") else []
            if not parts:
                continue
            if len(parts) < 2:
                raise ValueError(f"{path}:{lineno}: expected a word and its phones, got {line.strip()!r}")
            word = normalize_text(_VARIANT.sub("", parts[0]))
            if not word or " " in word:
                continue
            pron = tuple(p.rstrip("012") for p in parts[1:])
            prons = lexicon.setdefault(word, [])
            if pron not in prons:
                prons.append(pron)
    if not lexicon:
        raise ValueError(f"{path}: no pronunciations")
    return lexicon


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



class PhoneTokenizer(_Vocabulary):
    """Phones of a pronunciation lexicon (:mod:`asr.lexicon`): a text becomes the phones of
    its words, in order (each word's first pronunciation; stress digits dropped, ``AH0`` ->
    ``AH``). A word missing from the lexicon raises ``ValueError``.

    Two uses. Targets of an auxiliary CTC head (:meth:`from_lexicon`, no word boundary), and
    the units of a phone model (``data.tokenizer: phone``, :meth:`build`): there the vocabulary
    holds :data:`WORD_BOUNDARY` between words, as a character model has the space, and the
    lexicon travels in the model file, so that a decoder can turn phones back into words
    (:class:`asr.decoding.grammar.Grammar` spells every word of its vocabulary with
    :meth:`pronunciations`). :meth:`decode` writes phones (``"HH AH L OW | W ER L D"``)."""

    kind = "phone"

    def __init__(self, symbols: Sequence[str], lexicon: dict):
        super().__init__(symbols)
        # word -> its pronunciations, each a tuple of phones (a bare list of phones: one)
        self._prons = {w: ([tuple(p)] if p and isinstance(p[0], str) else [tuple(x) for x in p]) for w, p in lexicon.items()}
        self.lexicon = {w: list(prons[0]) for w, prons in self._prons.items()}
        self.boundary = self._index.get(WORD_BOUNDARY)

    @classmethod
    def from_lexicon(cls, path: str, boundary: bool = False, words: Iterable[str] | None = None) -> "PhoneTokenizer":
        """The phones of a lexicon file (``boundary``: with the word-boundary unit; ``words``:
        keep only these words' pronunciations)."""
        lexicon = read_lexicon(path)
        if words is not None:
            keep = set(words)
            lexicon = {w: p for w, p in lexicon.items() if w in keep}
            if not lexicon:
                raise ValueError(f"{path}: none of the words has a pronunciation")
        # an auxiliary head's phones are those of first pronunciations (the targets); a phone model's, all
        phones = sorted({p for prons in lexicon.values() for pron in (prons if boundary else prons[:1]) for p in pron})
        return cls([BLANK] + ([WORD_BOUNDARY] if boundary else []) + phones, lexicon)

    @classmethod
    def build(cls, texts: Iterable[str], lexicon: str | None = None) -> "PhoneTokenizer":
        """A phone model's tokenizer: the phones of ``lexicon`` and the word boundary, with the
        pronunciations of the words of ``texts`` (the model file carries those)."""
        if not lexicon:
            raise ValueError("a phone tokenizer needs a pronunciation lexicon (data.lexicon)")
        words = {w for t in texts for w in normalize_text(t).split()}
        return cls.from_lexicon(lexicon, boundary=True, words=words)

    def pronunciations(self, word: str) -> list[tuple[str, ...]]:
        """Every pronunciation of ``word`` the lexicon holds ([] for none)."""
        return list(self._prons.get(word, ()))

    def spell(self, pron: Sequence[str]) -> list[int] | None:
        """The ids of a pronunciation's phones, or None when one is not a unit of this model."""
        ids = [self._index.get(p) for p in pron]
        return None if any(i is None for i in ids) else ids

    def encode(self, text: str) -> list[int]:
        words = normalize_text(text).split()
        unknown = sorted({w for w in words if w not in self.lexicon})
        if unknown:
            raise ValueError(f"words not in the lexicon: {unknown!r}")
        ids: list[int] = []
        for i, w in enumerate(words):
            if i and self.boundary is not None:
                ids.append(self.boundary)
            ids.extend(self._index[p] for p in self.lexicon[w])
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self._vocab[i] for i in ids if i != 0)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "vocab": self.vocab,
                "lexicon": {w: [" ".join(p) for p in prons] for w, prons in sorted(self._prons.items())}}


class WordTokenizer(_Vocabulary):
    """Whole words of normalized text as units, for closed vocabularies (digits, commands):
    a blank at id 0, then one id per word. Decoding joins words with spaces.

    Without :data:`UNKNOWN_WORD` in the vocabulary, words outside it cannot be encoded (use
    :class:`CharTokenizer` for open vocabularies). With it (``build(texts, vocabulary=...)``),
    every other word encodes as ``<unk>``: the model learns a unit for "some other word", and
    decoding leaves it out, so text, word lists and subtitles hold vocabulary words only."""

    kind = "word"

    @classmethod
    def build(cls, texts: Iterable[str], vocabulary: Sequence[str] | None = None) -> "WordTokenizer":
        """Every word of ``texts``; or, with ``vocabulary``, those words and ``<unk>``."""
        if vocabulary is not None:
            words = {normalize_text(w) for w in vocabulary} - {""}
            return cls([BLANK] + sorted(words) + [UNKNOWN_WORD])
        words = set()
        for t in texts:
            words.update(normalize_text(t).split())
        return cls([BLANK] + sorted(words))

    @property
    def unknown_id(self) -> int | None:
        """The id of ``<unk>``, or None for a vocabulary without one."""
        return self._index.get(UNKNOWN_WORD)

    def encode(self, text: str) -> list[int]:
        words = normalize_text(text).split()
        unk = self.unknown_id
        if unk is not None:
            return [self._index.get(w, unk) for w in words]
        unknown = sorted({w for w in words if w not in self._index})
        if unknown:
            raise ValueError(f"words not in the vocabulary: {unknown!r}")
        return [self._index[w] for w in words]

    def decode(self, ids: Sequence[int]) -> str:
        unk = self.unknown_id
        return " ".join(self._vocab[i] for i in ids if i != 0 and i != unk)



class SentencePieceTokenizer(_Vocabulary):
    """SentencePiece word pieces (kind ``"bpe"``; model type ``unigram`` or ``bpe``) trained on
    normalized transcripts. Pieces never cross words; a word's first piece starts with
    :data:`WORD_START`, which decoding turns into a space.

    Ids are SentencePiece's own: the model is trained with ``<unk>`` at id 0 and no ``<s>``,
    ``</s>`` or ``<pad>``, so the vocabulary is ``[<blank>] + pieces 1..N-1`` -- the blank takes
    ``<unk>``'s place, our id i is SentencePiece id i, and ``len(vocab)`` is SentencePiece's
    vocabulary size. Text with characters never seen in training (which would need ``<unk>``)
    cannot be encoded, like :class:`CharTokenizer`. Training is deterministic: one thread, no
    sampling or shuffling of sentences, identity normalization (the text is normalized already)."""

    kind = "bpe"
    MODEL_TYPES = ("unigram", "bpe")

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm  # imported here: char and word models do not need it

        self._proto = bytes(model_proto)
        try:
            self._sp = spm.SentencePieceProcessor(model_proto=self._proto)
        except (RuntimeError, OSError) as exc:
            raise ValueError(f"not a SentencePiece model ({exc})") from None
        n = self._sp.get_piece_size()
        if n < 2 or self._sp.unk_id() != 0 or any(self._sp.is_control(i) for i in range(1, n)):
            raise ValueError("the SentencePiece model must have <unk> at id 0 and no control symbols "
                             "(train it with SentencePieceTokenizer.build)")
        super().__init__([BLANK] + [self._sp.id_to_piece(i) for i in range(1, n)])
        self._chars = set("".join(self._vocab[1:]).replace(WORD_START, ""))

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int = 256, model_type: str = "unigram") -> "SentencePieceTokenizer":
        """Train on normalized ``texts``. ``vocab_size``: the most ids (blank included); a small
        corpus may give fewer (SentencePiece's soft limit). It must cover every character + 1."""
        import sentencepiece as spm

        if model_type not in cls.MODEL_TYPES:
            raise ValueError(f"SentencePiece model type must be one of {list(cls.MODEL_TYPES)}, got {model_type!r}")
        lines = [t for t in (normalize_text(t) for t in texts) if t]
        if not lines:
            raise ValueError("no training text to learn word pieces from")
        need = len(set("".join(lines)) | {" "}) + 1  # every character (" " as "▁") and <unk>
        if not isinstance(vocab_size, int) or vocab_size < need:
            raise ValueError(f"vocabulary size {vocab_size!r} is too small: the training text has {need - 1} "
                             f"characters (the word start included), so at least {need} are needed")
        out = io.BytesIO()
        spm.set_random_generator_seed(1234)
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines), model_writer=out, vocab_size=vocab_size, model_type=model_type,
                hard_vocab_limit=False, character_coverage=1.0, normalization_rule_name="identity",
                unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, split_by_whitespace=True,
                treat_whitespace_as_suffix=False, byte_fallback=False, input_sentence_size=0,
                shuffle_input_sentence=False, num_threads=1, minloglevel=2)
        except RuntimeError as exc:
            raise ValueError(f"SentencePiece training failed: {exc}") from None
        return cls(out.getvalue())

    def encode(self, text: str) -> list[int]:
        text = normalize_text(text)
        ids = self._sp.encode(text, out_type=int)
        if 0 in ids:
            unknown = sorted({c for c in text if c != " " and c not in self._chars})
            raise ValueError(f"characters not in the vocabulary: {unknown!r} (in {text!r})")
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self._sp.decode([int(i) for i in ids if i != 0]).split())

    def to_dict(self) -> dict:
        return {"kind": self.kind, "vocab": self.vocab, "model": base64.b64encode(self._proto).decode("ascii")}

    @classmethod
    def from_dict(cls, d: dict) -> "SentencePieceTokenizer":
        if "model" not in d:
            raise ValueError("a 'bpe' tokenizer needs its SentencePiece 'model' (base64)")
        try:
            proto = base64.b64decode(d["model"], validate=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"'model' is not base64 ({exc})") from None
        tok = cls(proto)
        if "vocab" in d and list(d["vocab"]) != tok.vocab:
            raise ValueError("'vocab' does not match the pieces of the SentencePiece model")
        return tok

    def __reduce__(self):  # picklable (beam search in worker processes): the model bytes
        return (type(self), (self._proto,))


_KINDS = {"char": CharTokenizer, "word": WordTokenizer, "bpe": SentencePieceTokenizer, "phone": PhoneTokenizer}


def build_tokenizer(kind: str, texts: Iterable[str], **options) -> Tokenizer:
    """A tokenizer of ``kind`` ("char", "word", "bpe" or "phone") built from training
    transcripts; ``options`` go to ``build`` (for "bpe": ``vocab_size``, ``model_type``; for
    "phone": ``lexicon``, a lexicon file)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown tokenizer {kind!r} (known: {sorted(_KINDS)})")
    return _KINDS[kind].build(texts, **options)


def tokenizer_from_dict(d: dict) -> Tokenizer:
    kind = d.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}")
    if kind == "bpe":
        return SentencePieceTokenizer.from_dict(d)
    if kind == "phone":
        return PhoneTokenizer(d["vocab"], {w: [tuple(p.split()) for p in prons] for w, prons in d.get("lexicon", {}).items()})
    return _KINDS[kind](d["vocab"])
