"""Word confidence from CTC posteriors.

A token on a best path (greedy or beam search, or a forced alignment) spans a run of frames
``[first, last]``; its confidence is the highest posterior the model gives that token within the
run, ``max_t P(token | frame t)`` (the CTC "spike"). A word's raw confidence is the product of
its tokens' (every letter must be right). Both are in [0, 1]; docs/long_recordings.md
compares this with other scores (``tools/measure_confidence.py``).

The raw score ranks words well but is not a probability: :class:`ConfidenceCalibration` maps
it to the chance that the word is right (Platt scaling, fitted by ``asr calibrate``, stored in
the model file: checkpoint key ``confidence``, ONNX metadata ``asr.confidence``). The map is
increasing, so it changes no ranking.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

__all__ = ["CalibrationDataError", "ConfidenceCalibration", "token_confidences", "word_confidence", "frame_posteriors"]

_EPS = 1e-6  # raw scores are clipped to [EPS, 1 - EPS] before the logit


def _logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


class CalibrationDataError(ValueError):
    """The words given cannot be calibrated on: too few right or wrong ones, or scores that rank
    wrong words above right ones."""


def _sigmoid(z) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))  # no overflow either way


@dataclass(frozen=True)
class ConfidenceCalibration:
    """``p(word correct) = sigmoid(scale * logit(raw) + bias)``; ``words``/``wrong``: how many
    words (and how many of them wrong) it was fitted on, ``source``: on what (informational)."""

    scale: float
    bias: float
    words: int = 0
    wrong: int = 0
    source: str = ""

    def __post_init__(self):
        problems = []
        for name in ("scale", "bias"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                problems.append(f"{name} must be a finite number, got {v!r}")
        if not problems and not self.scale > 0:
            problems.append(f"scale must be > 0 (a calibration may not reverse the ranking), got {self.scale!r}")
        for name in ("words", "wrong"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                problems.append(f"{name} must be an integer >= 0, got {v!r}")
        if problems:
            raise ValueError("confidence calibration: " + "; ".join(problems))

    def __call__(self, raw):
        """The calibrated confidence of a raw score (a float, or an array of them)."""
        out = _sigmoid(self.scale * _logit(raw) + self.bias)
        return float(out) if np.ndim(out) == 0 else out

    def to_dict(self) -> dict:
        return {"method": "platt", **asdict(self)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "ConfidenceCalibration":
        if not isinstance(d, Mapping):
            raise ValueError(f"confidence calibration: expected a mapping, got {type(d).__name__}")
        if d.get("method", "platt") != "platt":
            raise ValueError(f"confidence calibration: unknown method {d.get('method')!r} (this toolkit knows 'platt')")
        unknown = set(d) - {"method", "scale", "bias", "words", "wrong", "source"}
        if unknown:
            raise ValueError(f"confidence calibration: unknown keys {sorted(unknown)}")
        if "scale" not in d or "bias" not in d:
            raise ValueError("confidence calibration: needs 'scale' and 'bias'")
        return cls(**{k: v for k, v in d.items() if k != "method"})

    @classmethod
    def fit(cls, raw: Sequence[float], correct: Sequence[bool], source: str = "") -> "ConfidenceCalibration":
        """Maximum-likelihood Platt scaling of raw word scores against whether each word was
        right (Newton's method on the two parameters, with a tiny ridge so that perfectly
        separated data still give finite values). Raises :class:`CalibrationDataError` with
        fewer than 2 right and 2 wrong words, or when the scores rank wrong words above right
        ones; ValueError when scores and labels do not match."""
        x, y = _logit(raw), np.asarray(correct, dtype=np.float64)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"confidence calibration: {x.size} scores but {y.size} labels")
        n_right = int(y.sum())
        if n_right < 2 or x.size - n_right < 2:
            raise CalibrationDataError(f"confidence calibration needs at least 2 right and 2 wrong words, got "
                                       f"{n_right} right and {x.size - n_right} wrong of {x.size}")
        X = np.stack([x, np.ones_like(x)], axis=1)
        ridge = 1e-6 * x.size

        def loss(w):  # negative log-likelihood (stable form) plus the ridge
            z = X @ w
            return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * ridge * (w @ w))

        w = np.array([1.0, 0.0])
        current = loss(w)
        for _ in range(100):  # Newton's method, each step halved until the loss goes down
            p = _sigmoid(X @ w)
            grad = X.T @ (p - y) + ridge * w
            hess = (X * (p * (1 - p))[:, None]).T @ X + ridge * np.eye(2)
            step = np.linalg.solve(hess, grad)
            for _ in range(40):
                new = loss(w - step)
                if new <= current:
                    break
                step = step / 2
            else:
                break  # no step lowers the loss: at the minimum
            w, current = w - step, new
            if np.max(np.abs(step)) < 1e-10:
                break
        if not w[0] > 1e-6:
            raise CalibrationDataError(f"confidence calibration: the raw scores do not rank right words above wrong ones "
                                       f"(fitted scale {w[0]:.3g}); nothing to calibrate")
        return cls(float(f"{w[0]:.6g}"), float(f"{w[1]:.6g}"), int(x.size), int(x.size - n_right), source)


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


def word_confidence(token_scores: Sequence[float], calibration: Optional[ConfidenceCalibration] = None) -> float:
    """One word's confidence from its tokens': their product, through ``calibration`` where the
    model has one (rounded to 4 digits)."""
    if not len(token_scores):
        return 0.0
    raw = float(np.prod(token_scores))
    return round(calibration(raw) if calibration is not None else raw, 4)
