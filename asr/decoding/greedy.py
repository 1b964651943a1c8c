"""CTC decoding. Torch-free (numpy), shared by evaluation and the runtime."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["greedy_alignment", "greedy_ids", "greedy_decode"]


def greedy_alignment(log_probs: np.ndarray, blank: int = 0) -> list[tuple[int, int, int]]:
    """Best path of one utterance's (frames, vocab) scores as (token, first frame, last frame):
    argmax per frame, runs of the same symbol merged, blanks dropped."""
    best = np.asarray(log_probs).argmax(axis=-1)
    if best.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, best[1:] != best[:-1]])
    ends = np.r_[starts[1:], best.size] - 1
    return [(int(best[s]), int(s), int(e)) for s, e in zip(starts, ends) if best[s] != blank]


def greedy_ids(log_probs: np.ndarray, blank: int = 0) -> list[int]:
    """The token ids of :func:`greedy_alignment`."""
    return [t for t, _, _ in greedy_alignment(log_probs, blank)]


def greedy_decode(log_probs: np.ndarray, lengths: Sequence[int], blank: int = 0) -> list[list[int]]:
    """Greedy decoding of a padded batch (B, frames, vocab) with valid lengths (B,)."""
    return [greedy_ids(log_probs[i, : int(n)], blank) for i, n in enumerate(lengths)]
