"""Word and character error rates (edit distance via jiwer), with the error counts; which
hypothesis words are right, and how well a word score separates right from wrong ones (area
under the ROC curve) and how well it is calibrated (expected calibration error)."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Sequence

import jiwer
import numpy as np

__all__ = ["ErrorStats", "error_stats", "word_hits", "roc_auc", "calibration_error"]


@dataclass
class ErrorStats:
    """Error counts of a corpus and its rates in percent (``wer_percent`` 0.67 means 0.67%, not
    67%), named so: JSON keys ``wer_percent`` and ``cer_percent``."""

    wer_percent: float
    cer_percent: float
    num_utts: int
    ref_words: int
    substitutions: int
    deletions: int
    insertions: int
    ref_chars: int
    char_errors: int
    sentence_errors: int

    def to_dict(self) -> dict:
        d = asdict(self)
        d["wer_percent"], d["cer_percent"] = round(self.wer_percent, 6), round(self.cer_percent, 6)
        return d

    @property
    def wer(self) -> float:
        """Deprecated: :attr:`wer_percent` (the same number, in percent)."""
        warnings.warn("ErrorStats.wer is in percent: use ErrorStats.wer_percent", DeprecationWarning, stacklevel=2)
        return self.wer_percent

    @property
    def cer(self) -> float:
        """Deprecated: :attr:`cer_percent` (the same number, in percent)."""
        warnings.warn("ErrorStats.cer is in percent: use ErrorStats.cer_percent", DeprecationWarning, stacklevel=2)
        return self.cer_percent


def error_stats(refs: Sequence[str], hyps: Sequence[str]) -> ErrorStats:
    """WER and CER in percent over a corpus. Empty references are allowed (every hypothesis
    word then counts as an insertion); rates over zero reference words are 0 or inf."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    s = d = i = rw = ce = rc = se = 0
    for ref, hyp in zip(refs, hyps):
        rw_u = len(ref.split())
        if rw_u == 0 and not hyp.split():
            continue
        if rw_u == 0:
            i += len(hyp.split())
        else:
            w = jiwer.process_words(ref, hyp)
            s, d, i = s + w.substitutions, d + w.deletions, i + w.insertions
        rw += rw_u
        if ref:
            c = jiwer.process_characters(ref, hyp)
            ce += c.substitutions + c.deletions + c.insertions
        else:
            ce += len(hyp)
        rc += len(ref)
        se += ref.split() != hyp.split()

    def rate(err, total):
        return 100.0 * err / total if total else (0.0 if err == 0 else float("inf"))

    return ErrorStats(rate(s + d + i, rw), rate(ce, rc), len(refs), rw, s, d, i, rc, ce, se)


def word_hits(ref_words: Sequence[str], hyp_words: Sequence[str]) -> list[bool]:
    """For each hypothesis word: is it a hit of the edit-distance alignment with the reference?"""
    if not hyp_words:
        return []
    if not ref_words:
        return [False] * len(hyp_words)
    out = jiwer.process_words(" ".join(ref_words), " ".join(hyp_words))
    ok = [False] * len(hyp_words)
    for chunk in out.alignments[0]:
        if chunk.type == "equal":
            for k in range(chunk.hyp_start_idx, chunk.hyp_end_idx):
                ok[k] = True
    return ok


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` for telling True labels from False (ties count
    half; 0.5 = chance); NaN without both kinds."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return float("nan")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])  # 0-based rank where each distinct value starts
    ranks = (first + (counts - 1) / 2 + 1)[inverse]  # average rank of ties
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibration_error(scores: Sequence[float], labels: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: over equal-width bins of the score, |share right - mean
    score|, weighted by the bin's share of words (0 = calibrated)."""
    s, y = np.asarray(scores, float), np.asarray(labels, float)
    if not s.size:
        return float("nan")
    idx = np.minimum((s * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(idx):
        m = idx == b
        total += abs(y[m].mean() - s[m].mean()) * m.sum()
    return float(total / s.size)
