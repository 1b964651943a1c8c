"""Result types (words with times, utterances, results) and the words of a best path.

A token (``(token, first frame, last frame)``, :mod:`asr.decoding.greedy`) is timed by its frame
indices times the model frame shift (feature hop x subsampling). A word is the run of tokens
between word separators (``" "``), each token of a word vocabulary, or, over word pieces, a
piece starting with ``"▁"`` and the pieces that follow it up to the next such piece; it starts
at its first token's first frame and ends one frame after its last token's last frame. Its
``confidence`` (0-1) is that of :mod:`asr.decoding.confidence`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

from asr.decoding.confidence import ConfidenceCalibration, word_confidence
from asr.text import WORD_START, Tokenizer

__all__ = ["Word", "Utterance", "Result", "words_from_tokens", "make_result"]


@dataclass
class Word:
    word: str
    start: float  # seconds from the start of the stream
    end: float
    confidence: Optional[float] = None  # 0-1 from the CTC posteriors (asr.decoding.confidence); None: not computed


@dataclass
class Utterance:
    text: str
    start: float  # seconds from the start of the stream
    end: float
    words: list[Word] = field(default_factory=list)
    final: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Result:
    """Everything recognized in one stream (or file) so far."""

    name: str  # the stream's name or the file's path
    text: str  # all utterances, the current partial one included
    words: list[Word]
    utterances: list[Utterance]  # finished ones; while the stream runs, then the partial one (final=False)
    final: bool  # input finished and every frame decoded
    duration: float  # seconds of audio received (at the model's sample rate)
    error: Optional[str] = None  # why this input could not be transcribed (transcribe_batch); text is empty then

    def to_dict(self) -> dict:
        return asdict(self)


def words_from_tokens(tokenizer: Tokenizer, tokens: Sequence[tuple[int, int, int]], frame_shift_s: float,
                      confidences: Optional[Sequence[float]] = None,
                      calibration: Optional[ConfidenceCalibration] = None) -> tuple[str, list[Word]]:
    """(token id, first frame, last frame) triples -> (text, words with times). ``confidences``:
    one per token (:func:`asr.decoding.confidence.token_confidences`), giving each word's
    (mapped by ``calibration``, the model's, where it has one)."""
    vocab = tokenizer.vocab
    text = tokenizer.decode([t[0] for t in tokens])
    words: list[Word] = []
    current: list[int] = []  # indices into tokens

    def close():
        if current:
            w = tokenizer.decode([tokens[i][0] for i in current]).strip()
            if w:
                conf = None if confidences is None else word_confidence([confidences[i] for i in current], calibration)
                words.append(Word(w, round(tokens[current[0]][1] * frame_shift_s, 3),
                                  round((tokens[current[-1]][2] + 1) * frame_shift_s, 3), conf))
            current.clear()

    kind = getattr(tokenizer, "kind", "char")
    if kind == "word":  # every token is a word; the unknown-word unit is left out
        unk = getattr(tokenizer, "unknown_id", None)
        return text, [Word(vocab[t], round(a * frame_shift_s, 3), round((b + 1) * frame_shift_s, 3),
                           None if confidences is None else word_confidence([confidences[i]], calibration))
                      for i, (t, a, b) in enumerate(tokens) if t != unk]
    if kind == "bpe":  # a piece starting with WORD_START starts a word
        for i, token in enumerate(tokens):
            if vocab[token[0]].startswith(WORD_START):
                close()
            current.append(i)
        close()
        return text, words
    for i, token in enumerate(tokens):
        if vocab[token[0]] == " ":
            close()
        else:
            current.append(i)
    close()
    return text, words


def make_result(name: str, utterances: list[Utterance], final: bool, duration: float, partial: Optional[Utterance] = None) -> Result:
    utts = list(utterances) + ([partial] if partial is not None else [])
    text = " ".join(u.text for u in utts if u.text)
    words = [w for u in utts for w in u.words]
    return Result(name, text, words, utts, final, round(duration, 3))
