"""Result types (words with times, utterances, results) and the words of a best path.

A token (``(token, first frame, last frame)``, :mod:`asr.decoding.greedy`) is timed by its frame
indices times the model frame shift (feature hop x subsampling). A word is the run of tokens
between word separators (``" "``), each token of a word vocabulary, or, over word pieces, a
piece starting with ``"▁"`` and the pieces that follow it up to the next such piece; it starts
at its first token's first frame and ends one frame after its last token's last frame. Its
``confidence`` (0-1) is that of :mod:`asr.decoding.confidence`. With a grammar the words are the
grammar's (:attr:`asr.decoding.beam_search.Hypothesis.labels`, ``[unk]`` for what lies outside
it), each timed by its tokens the same way (:func:`hypothesis_words`).

An utterance decoded with ``alternatives`` (n-best) keeps its best hypotheses in
:attr:`Utterance.alternatives`, best first, each with its text, words and scores
(:class:`Alternative`); the first is the utterance's own text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np

from asr.decoding.confidence import ConfidenceCalibration, token_confidences, word_confidence
from asr.text import WORD_START, Tokenizer

__all__ = ["Word", "Alternative", "Utterance", "Result", "MIN_WORD_REPEAT_S", "words_from_tokens", "hypothesis_words",
           "utterance_from_hypotheses", "make_result"]


@dataclass
class Word:
    word: str
    start: float  # seconds from the start of the stream
    end: float
    confidence: Optional[float] = None  # 0-1 from the CTC posteriors (asr.decoding.confidence); None: not computed


@dataclass
class Alternative:
    """One hypothesis of an n-best list. Scores are natural logs: ``score`` is what the search
    ranks by (``acoustic`` + LM weight x ``lm`` + bonuses), ``acoustic`` ln P_ctc of its tokens,
    ``lm`` ln P of its words under the word LM (0 without one)."""

    text: str
    score: float
    acoustic: float
    lm: float
    words: list[Word] = field(default_factory=list)


@dataclass
class Utterance:
    text: str
    start: float  # seconds from the start of the stream
    end: float
    words: list[Word] = field(default_factory=list)
    final: bool = True
    alternatives: list[Alternative] = field(default_factory=list)  # n-best, best first (decoding with alternatives)

    def to_dict(self) -> dict:
        """As a dict (JSON-able); ``alternatives`` only when there are some."""
        return _without_empty_alternatives(asdict(self))


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
    # n-best of a one-utterance result (decoding with alternatives); per utterance in utterances[i].alternatives
    alternatives: list[Alternative] = field(default_factory=list)

    def to_dict(self) -> dict:
        """As a dict (JSON-able); ``alternatives`` only where there are some."""
        d = _without_empty_alternatives(asdict(self))
        d["utterances"] = [_without_empty_alternatives(u) for u in d["utterances"]]
        return d


def _without_empty_alternatives(d: dict) -> dict:
    if not d.get("alternatives"):
        d.pop("alternatives", None)
    return d


MIN_WORD_REPEAT_S = 0.1  # a word unit emitted again less than this after it ends is the same word


def _merge_split_words(tokens: Sequence[tuple[int, int, int]], confidences: Optional[Sequence[float]],
                       frame_shift_s: float) -> list[tuple[int, int, int, Optional[float]]]:
    """Word-unit tokens with a split spike joined: the same word emitted again less than
    :data:`MIN_WORD_REPEAT_S` after its last frame (only blanks between, as greedy decoding
    leaves them) is one word, not two: a word said twice has the whole second word's sound
    between its two tokens, while a CTC model's spike for one word sometimes breaks on a blank
    frame or two (two tokens 40-100 ms apart). The joined word spans both and keeps the higher
    confidence."""
    gap = int(round(MIN_WORD_REPEAT_S / frame_shift_s))
    out: list[tuple[int, int, int, Optional[float]]] = []
    for i, (t, a, b) in enumerate(tokens):
        c = None if confidences is None else confidences[i]
        if out and out[-1][0] == t and a - out[-1][2] - 1 < gap:
            pt, pa, _, pc = out[-1]
            out[-1] = (t, pa, b, None if c is None or pc is None else max(pc, c))
        else:
            out.append((t, a, b, c))
    return out


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
        spans = _merge_split_words(tokens, confidences, frame_shift_s)
        text = tokenizer.decode([t for t, _, _, _ in spans])
        return text, [Word(vocab[t], round(a * frame_shift_s, 3), round((b + 1) * frame_shift_s, 3),
                           None if c is None else word_confidence([c], calibration))
                      for t, a, b, c in spans if t != unk]
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


def hypothesis_words(tokenizer: Tokenizer, hyp, frame_shift_s: float, confidences: Optional[Sequence[float]] = None,
                     calibration: Optional[ConfidenceCalibration] = None, first_frame: int = 0) -> tuple[str, list[Word]]:
    """A hypothesis's (:class:`asr.decoding.beam_search.Hypothesis`) text and timed words:
    :func:`words_from_tokens` of its alignment, or with a grammar its labelled words, each
    spanning its tokens (first token's first frame to one frame after the last token's last).
    ``first_frame``: where the hypothesis's frame 0 lies in the stream."""
    tokens = [(t, a + first_frame, b + first_frame) for t, a, b in hyp.alignment] if first_frame else hyp.alignment
    if getattr(hyp, "labels", None) is None:
        return words_from_tokens(tokenizer, tokens, frame_shift_s, confidences, calibration)
    words = []
    for label, a, b in hyp.labels:
        conf = None if confidences is None else word_confidence(list(confidences[a : b + 1]), calibration)
        words.append(Word(label, round(tokens[a][1] * frame_shift_s, 3), round((tokens[b][2] + 1) * frame_shift_s, 3), conf))
    return hyp.text, words


def utterance_from_hypotheses(tokenizer: Tokenizer, hyps: Sequence, log_probs: np.ndarray, frame_shift_s: float,
                              first_frame: int = 0, calibration: Optional[ConfidenceCalibration] = None,
                              alternatives: int = 0, final: bool = True) -> Utterance:
    """The utterance of n-best hypotheses (best first; [] gives empty text) of ``log_probs``,
    which start at model frame ``first_frame`` of the stream: the best one's text and words,
    and with ``alternatives`` the first that many as :class:`Alternative` s."""
    def timed(h):
        return hypothesis_words(tokenizer, h, frame_shift_s, token_confidences(log_probs, h.alignment), calibration, first_frame)

    start = round(first_frame * frame_shift_s, 3)
    end = round((first_frame + log_probs.shape[0]) * frame_shift_s, 3)
    if not hyps:
        return Utterance("", start, end, [], final, [])
    text, words = timed(hyps[0])
    alts = []
    for i, h in enumerate(hyps[:alternatives]):
        t, ws = (text, words) if i == 0 else timed(h)
        alts.append(Alternative(t, round(float(h.score), 4), round(float(h.acoustic), 4), round(float(h.lm), 4), ws))
    return Utterance(text, start, end, words, final, alts)


def make_result(name: str, utterances: list[Utterance], final: bool, duration: float, partial: Optional[Utterance] = None) -> Result:
    utts = list(utterances) + ([partial] if partial is not None else [])
    text = " ".join(u.text for u in utts if u.text)
    words = [w for u in utts for w in u.words]
    alternatives = list(utts[0].alternatives) if len(utts) == 1 else []
    return Result(name, text, words, utts, final, round(duration, 3), alternatives=alternatives)
