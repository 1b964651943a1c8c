"""Greedy CTC decoding, the one rule for whole utterances and for streams: the best symbol of
each frame, runs of the same symbol merged into one token, blanks dropped. A token spans its
run, ``(token, first frame, last frame)``, and its confidence is its peak posterior over the
run (:func:`asr.decoding.confidence.token_confidences`). Torch-free (numpy)."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from asr.decoding.confidence import ConfidenceCalibration, token_confidences
from asr.decoding.result import Utterance, utterance_from_hypotheses, words_from_tokens
from asr.text import Tokenizer

__all__ = ["greedy_alignment", "greedy_ids", "greedy_decode", "CtcStreamDecoder"]


def _alignment(best: np.ndarray, blank: int) -> list[tuple[int, int, int]]:
    """The tokens of a best path (one symbol per frame): runs of the same symbol merged, blanks
    dropped."""
    if best.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, best[1:] != best[:-1]])
    ends = np.r_[starts[1:], best.size] - 1
    return [(int(best[s]), int(s), int(e)) for s, e in zip(starts, ends) if best[s] != blank]


def greedy_alignment(log_probs: np.ndarray, blank: int = 0) -> list[tuple[int, int, int]]:
    """Best path of one utterance's (frames, vocab) scores as (token, first frame, last frame)."""
    return _alignment(np.asarray(log_probs).argmax(axis=-1), blank)


def greedy_ids(log_probs: np.ndarray, blank: int = 0) -> list[int]:
    """The token ids of :func:`greedy_alignment`."""
    return [t for t, _, _ in greedy_alignment(log_probs, blank)]


def greedy_decode(log_probs: np.ndarray, lengths: Sequence[int], blank: int = 0) -> list[list[int]]:
    """Greedy decoding of a padded batch (B, frames, vocab) with valid lengths (B,)."""
    return [greedy_ids(log_probs[i, : int(n)], blank) for i, n in enumerate(lengths)]


class CtcStreamDecoder:
    """:func:`greedy_alignment` and its confidences over model frames arriving chunk by chunk:
    whatever the chunks, the same tokens, frames and confidences as the whole. One utterance at
    a time; frames count from the start of the stream.

    ``final_decoder`` (e.g. :meth:`asr.decoding.options.Decoder.search` with a language model,
    hotwords or a grammar): partial results stay greedy, and when an utterance finishes its
    whole score matrix is decoded again with it: it returns hypotheses (best first, [] for
    none: :class:`asr.decoding.beam_search.Hypothesis`), the best gives the final text and word
    times, and the first ``alternatives`` become the utterance's n-best list.
    ``calibration``: the model's word-confidence map, if it has one."""

    def __init__(self, tokenizer: Tokenizer, frame_shift_s: float, blank: int = 0,
                 final_decoder: Optional[Callable[[np.ndarray], list]] = None,
                 calibration: Optional[ConfidenceCalibration] = None, alternatives: int = 0):
        self.tokenizer, self.frame_shift_s, self.blank = tokenizer, frame_shift_s, blank
        self.final_decoder = final_decoder
        self.calibration = calibration
        self.alternatives = alternatives
        self.num_frames = 0  # model frames decoded in the whole stream
        self.utterance_start = 0  # model frame where the current utterance began
        self.tokens: list[tuple[int, int, int]] = []  # (token, first frame, last frame)
        self.token_scores: list[float] = []  # each token's peak posterior so far (its confidence)
        self._prev = blank  # the best symbol of the last frame decoded
        self._scores: list[np.ndarray] = []  # the utterance's frames, kept for final_decoder

    def accept(self, log_probs: np.ndarray) -> np.ndarray:
        """Decode (frames, V) scores; returns the best symbol of each frame."""
        log_probs = np.asarray(log_probs)
        best = log_probs.argmax(axis=-1)
        if self.final_decoder is not None:
            self._scores.append(np.array(log_probs, dtype=np.float32))
        start = self.num_frames  # the chunk's first frame in the stream
        new = [(t, a + start, b + start) for t, a, b in _alignment(best, self.blank)]
        scores = token_confidences(log_probs, new, offset=start)
        if new and new[0][1] == start and new[0][0] == self._prev:  # the run of the last token goes on
            (t, _, last), score = new.pop(0), scores.pop(0)
            self.tokens[-1] = (t, self.tokens[-1][1], last)
            self.token_scores[-1] = max(self.token_scores[-1], score)
        self.tokens += new
        self.token_scores += scores
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
            scores = np.concatenate(self._scores)
            utt = utterance_from_hypotheses(self.tokenizer, self.final_decoder(scores), scores, self.frame_shift_s,
                                            self.utterance_start, self.calibration, self.alternatives)
        else:
            utt = self.utterance(final=True)
        self.utterance_start = self.num_frames
        self.tokens = []
        self.token_scores = []
        self._scores = []
        self._prev = self.blank
        return utt
