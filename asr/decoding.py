"""CTC decoding. Torch-free (numpy), shared by evaluation and the runtime."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["greedy_ids", "greedy_decode"]


def greedy_ids(log_probs: np.ndarray, blank: int = 0) -> list[int]:
    """Best path of one utterance's (frames, vocab) scores: argmax per frame, merge repeats,
    drop blanks."""
    if log_probs.shape[0] == 0:
        return []
    best = np.asarray(log_probs).argmax(axis=-1)
    keep = np.ones_like(best, dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(i) for i in best[keep & (best != blank)]]


def greedy_decode(log_probs: np.ndarray, lengths: Sequence[int], blank: int = 0) -> list[list[int]]:
    """Greedy decoding of a padded batch (B, frames, vocab) with valid lengths (B,)."""
    return [greedy_ids(log_probs[i, : int(n)], blank) for i, n in enumerate(lengths)]
