"""CTC forced alignment: where in time does a known transcript sit? Numpy only (no torch).

The transcript's tokens ``y_1..y_L`` are interleaved with blanks, ``b y_1 b y_2 ... y_L b``
(``S = 2L + 1`` states); Viterbi finds the single best path through them, one state per frame,
that may stay in a state, move to the next, or skip a blank between two different tokens --
the paths CTC sums over, here maximized. A token's frames are those its state holds on that
path. The best path's score is ``sum_t log p(state_t | frame t)``, the same as
``torchaudio.functional.forced_align`` (``tests/decoding/test_align.py`` holds them equal).

Memory: the back-pointers take ``frames x S`` bytes (a minute of audio at 25 model frames per
second against 1,000 characters: 3 MB).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["ctc_viterbi", "forced_align", "AlignmentError"]

NEG_INF = -np.inf
MAX_CELLS = 400_000_000  # frames x states: back-pointers of at most 400 MB


class AlignmentError(ValueError):
    """The transcript cannot be aligned to these frames (too short, or no path)."""


def ctc_viterbi(log_probs: np.ndarray, targets: Sequence[int], blank: int = 0) -> tuple[np.ndarray, float]:
    """The best CTC path of ``targets`` through (frames, V) ``log_probs``: each frame's label
    (a token, or ``blank``) and the path's total log-probability."""
    lp = np.asarray(log_probs, dtype=np.float64)
    y = np.asarray(list(targets), dtype=np.int64)
    T, V = lp.shape if lp.ndim == 2 else (0, 0)
    if lp.ndim != 2:
        raise AlignmentError(f"expected (frames, vocabulary) log-probabilities, got shape {np.shape(log_probs)}")
    if y.size and (y.min() < 0 or y.max() >= V or np.any(y == blank)):
        raise AlignmentError(f"targets must be token ids in 1..{V - 1} other than the blank ({blank})")
    L = y.size
    repeats = int(np.sum(y[1:] == y[:-1])) if L > 1 else 0
    if T < L + repeats:
        raise AlignmentError(f"{T} frames cannot hold {L} tokens ({repeats} repeated ones need a blank between): "
                             "the audio is too short for this transcript")
    if L == 0:  # nothing to place: blank throughout
        return np.full(T, blank, np.int64), float(lp[:, blank].sum())
    S = 2 * L + 1
    if T * S > MAX_CELLS:
        raise AlignmentError(f"{T} frames x {S} states is too large to align at once: split the audio and the transcript")
    ext = np.full(S, blank, np.int64)
    ext[1::2] = y
    skip = np.zeros(S, bool)  # a state reachable from two back (a token after a blank after another token)
    if L > 1:
        skip[3::2] = y[1:] != y[:-1]
    emit = lp[:, ext]  # (T, S)
    alpha = np.full(S, NEG_INF)
    alpha[0], alpha[1] = emit[0, 0], emit[0, 1]
    back = np.zeros((T, S), np.int8)  # 0: stayed, 1: came from s-1, 2: from s-2
    for t in range(1, T):
        one = np.concatenate([[NEG_INF], alpha[:-1]])
        two = np.where(skip, np.concatenate([[NEG_INF, NEG_INF], alpha[:-2]]), NEG_INF)
        stacked = np.stack([alpha, one, two])
        choice = stacked.argmax(axis=0)
        alpha = stacked[choice, np.arange(S)] + emit[t]
        back[t] = choice
    s = S - 1 if alpha[S - 1] >= alpha[S - 2] else S - 2
    score = float(alpha[s])
    if score == NEG_INF:
        raise AlignmentError("no path: the frames cannot produce this transcript")
    states = np.empty(T, np.int64)
    for t in range(T - 1, -1, -1):
        states[t] = s
        s -= int(back[t, s])
    return ext[states], score


def forced_align(log_probs: np.ndarray, targets: Sequence[int], blank: int = 0) -> list[tuple[int, int, int]]:
    """Each target token with its first and last frame on the best path: the input of
    :func:`asr.decoding.result.words_from_tokens`, like a decoder's best path."""
    labels, _ = ctc_viterbi(log_probs, targets, blank)
    out: list[tuple[int, int, int]] = []
    prev = blank
    for t, lab in enumerate(labels.tolist()):
        if lab != blank:
            if lab == prev:
                out[-1] = (lab, out[-1][1], t)
            else:
                out.append((lab, t, t))
        prev = lab
    return out
