"""Word and character error rates (edit distance via jiwer), with the error counts."""

from __future__ import annotations

from dataclasses import dataclass, asdict
from typing import Sequence

import jiwer

__all__ = ["ErrorStats", "error_stats"]


@dataclass
class ErrorStats:
    wer: float
    cer: float
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
        d["wer"], d["cer"] = round(self.wer, 6), round(self.cer, 6)
        return d


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
