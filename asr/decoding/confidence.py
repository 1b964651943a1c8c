"""Word confidence from CTC posteriors.

A token on a best path (greedy or beam search, or a forced alignment) spans a run of frames
``[first, last]``; its confidence is the highest posterior the model gives that token within the
run, ``max_t P(token | frame t)`` (the CTC "spike"). A word's confidence is the lowest of its
tokens' (a word is as doubtful as its weakest letter). Both are in [0, 1].

``tools/measure_confidence.py`` compares this with the mean posterior over the run, the
frame-entropy score and other ways of combining tokens, on held-out data: the peak posterior
and the minimum over tokens separated correct from wrong words best (area under the ROC curve
and calibration error in README.md, "Long recordings").
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["token_confidences", "word_confidence", "frame_posteriors"]


def frame_posteriors(log_probs: np.ndarray) -> np.ndarray:
    """(frames, V) log-probabilities -> posteriors, in float32."""
    return np.exp(np.asarray(log_probs, dtype=np.float32))


def token_confidences(log_probs: np.ndarray, path: Sequence[tuple[int, int, int]], offset: int = 0) -> list[float]:
    """The confidence of each (token, first frame, last frame) of ``path``: the peak posterior of
    the token over its frames. ``offset``: the frame of ``log_probs[0]`` in the path's frame
    numbering (a stream numbers frames from its start)."""
    lp = np.asarray(log_probs)
    out = []
    for token, first, last in path:
        a, b = max(0, first - offset), min(lp.shape[0], last - offset + 1)
        out.append(float(np.exp(lp[a:b, token].max())) if b > a else 0.0)
    return out


def word_confidence(token_scores: Sequence[float]) -> float:
    """One word's confidence from its tokens': their product (rounded to 4 digits)."""
    return round(float(np.prod(token_scores)), 4) if len(token_scores) else 0.0
