"""Result types (words with times, utterances, results), words from a best path, and the
incremental greedy decoder of streams.

A token is emitted at the first frame of a run of the same non-blank best symbol and spans
that run; times are frame indices times the model frame shift (feature hop x subsampling). A
word is the run of tokens between word separators (``" "``), each token of a word vocabulary,
or, over word pieces, a piece starting with ``"▁"`` and the pieces that follow it up to the
next such piece; it starts at its first token's first frame and ends one frame after its last
token's last frame. A word's ``confidence`` (0-1) is that of :mod:`asr.decoding.confidence`:
the product of its tokens' peak posteriors, through the model's calibration where it has one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from asr.decoding.confidence import ConfidenceCalibration, token_confidences, word_confidence
from asr.text import WORD_START, Tokenizer

__all__ = ["Word", "Utterance", "Result", "CtcStreamDecoder", "words_from_tokens"]


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


class CtcStreamDecoder:
    """Greedy CTC over model frames arriving chunk by chunk; one utterance at a time, frames
    counted from the start of the stream.

    ``final_decoder`` (e.g. an :class:`asr.decoding.options.Decoder` with a language model or
    hotwords): partial results stay greedy, and when an utterance finishes its whole score
    matrix is decoded again with it, which gives the final text and word times.
    ``calibration``: the model's word-confidence map, if it has one."""

    def __init__(self, tokenizer: Tokenizer, frame_shift_s: float, blank: int = 0,
                 final_decoder: Optional[Callable[[np.ndarray], list]] = None,
                 calibration: Optional[ConfidenceCalibration] = None):
        self.tokenizer, self.frame_shift_s, self.blank = tokenizer, frame_shift_s, blank
        self.final_decoder = final_decoder
        self.calibration = calibration
        self.num_frames = 0  # model frames decoded in the whole stream
        self.utterance_start = 0  # model frame where the current utterance began
        self.tokens: list[tuple[int, int, int]] = []  # (token, first frame, last frame)
        self.token_scores: list[float] = []  # each token's peak posterior so far (its confidence)
        self._prev = blank
        self._scores: list[np.ndarray] = []  # the utterance's frames, kept for final_decoder

    def accept(self, log_probs: np.ndarray) -> np.ndarray:
        """Decode (frames, V) scores; returns the best symbol of each frame."""
        log_probs = np.asarray(log_probs)
        best = log_probs.argmax(axis=-1)
        if self.final_decoder is not None:
            self._scores.append(np.array(log_probs, dtype=np.float32))
        symbols = np.flatnonzero(best != self.blank)  # most frames are blank: only these need a look
        if symbols.size:
            peak = np.exp(log_probs[symbols].max(axis=-1).astype(np.float64)).tolist()
            best_l = best.tolist()
            for i, p in zip(symbols.tolist(), peak):
                b, frame = best_l[i], self.num_frames + i
                if b != (best_l[i - 1] if i else self._prev):
                    self.tokens.append((b, frame, frame))
                    self.token_scores.append(p)
                else:  # the run of the last token goes on
                    self.tokens[-1] = (b, self.tokens[-1][1], frame)
                    self.token_scores[-1] = max(self.token_scores[-1], p)
        if best.size:
            self._prev = int(best[-1])
        self.num_frames += best.size
        return best

    def utterance(self, final: bool) -> Utterance:
        text, words = words_from_tokens(self.tokenizer, self.tokens, self.frame_shift_s, self.token_scores,
                                        self.calibration)
        return Utterance(text, round(self.utterance_start * self.frame_shift_s, 3),
                         round(self.num_frames * self.frame_shift_s, 3), words, final)

    def finish_utterance(self) -> Utterance:
        """Close the current utterance and start the next one here."""
        if self.final_decoder is not None and self._scores:
            start = self.utterance_start
            scores = np.concatenate(self._scores)
            aligned = self.final_decoder(scores)
            self.tokens = [(t, a + start, b + start) for t, a, b in aligned]
            self.token_scores = token_confidences(scores, aligned)
        utt = self.utterance(final=True)
        self.utterance_start = self.num_frames
        self.tokens = []
        self.token_scores = []
        self._scores = []
        self._prev = self.blank
        return utt


def make_result(name: str, utterances: list[Utterance], final: bool, duration: float, partial: Optional[Utterance] = None) -> Result:
    utts = list(utterances) + ([partial] if partial is not None else [])
    text = " ".join(u.text for u in utts if u.text)
    words = [w for u in utts for w in u.words]
    return Result(name, text, words, utts, final, round(duration, 3))
