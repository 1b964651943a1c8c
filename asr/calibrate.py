"""Word-confidence calibration: fit, check on held-out speakers, store in the model file.

A word's raw confidence (:mod:`asr.decoding.confidence`) ranks words well but overstates how
often a weak model is right. :func:`calibrate` decodes a manifest of held-out speech with the
evaluation loop (:func:`asr.evaluate.evaluate`, the recognizer's own decoding options), labels
every hypothesis word right or wrong by the edit-distance alignment with the reference, and fits
:class:`ConfidenceCalibration` (Platt scaling) on all of them. To say how well the map does on
speakers it was not fitted on, the speakers are also split into ``folds`` groups: each group's
words are scored by a map fitted on the others (the report's ``ece_heldout``).
:func:`write_calibration` stores a map in a checkpoint or an exported ONNX file; every recognizer
that loads the file then reports calibrated confidence (Python API, ``asr transcribe``,
``asr-stream``, ``asr serve``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from asr.decoding.confidence import CalibrationDataError, ConfidenceCalibration
from asr.evaluate import evaluate
from asr.metrics import calibration_error, roc_auc, word_hits
from asr.runtime.offline import OfflineRecognizer

__all__ = ["CalibrationReport", "calibrate", "write_calibration"]


@dataclass
class CalibrationReport:
    model: str
    manifest: str
    decoding: str
    utterances: int
    words: int
    wrong: int
    speakers: int
    folds: int
    auc: float  # raw and calibrated alike (the map is increasing)
    ece_raw: float  # the raw scores' expected calibration error (10 bins)
    ece_fitted: float  # the map fitted on all words, on those words
    ece_heldout: float  # each fold's words through the map fitted on the other folds
    calibration: ConfidenceCalibration

    def to_dict(self) -> dict:
        d = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items() if k != "calibration"}
        d["calibration"] = self.calibration.to_dict()
        return d

    def summary(self) -> str:
        c = self.calibration
        return (f"{self.model} on {self.manifest} ({self.decoding}): {self.utterances} utterances, {self.words} words, "
                f"{self.wrong} wrong ({100 * self.wrong / max(1, self.words):.1f}%), {self.speakers} speakers\n"
                f"  AUC {self.auc:.3f} (right vs wrong words; unchanged by the map)\n"
                f"  calibration error (ECE, 10 bins): raw {self.ece_raw:.3f} -> calibrated {self.ece_fitted:.3f} "
                f"on the words it was fitted on, {self.ece_heldout:.3f} on held-out speakers ({self.folds} folds)\n"
                f"  map: sigmoid({c.scale:.4f} * logit(raw) + {c.bias:.4f})")


def _folds(speakers: list[Optional[str]], folds: int) -> np.ndarray:
    """A fold number per utterance: whole speakers go to one fold (round robin over the sorted
    speaker names); utterances without a speaker are dealt out one by one."""
    names = sorted({s for s in speakers if s is not None})
    where = {s: i % folds for i, s in enumerate(names)}
    return np.array([where[s] if s is not None else i % folds for i, s in enumerate(speakers)])


def calibrate(recognizer: OfflineRecognizer, manifest: str, folds: int = 2, progress: bool = True) -> CalibrationReport:
    """Fit ``recognizer``'s word-confidence map on ``manifest`` (held-out speech: the recipe's
    dev set) and measure it (see the module). Raises :class:`CalibrationDataError` when the
    manifest gives too few right or wrong words to fit, ValueError when ``folds`` < 2."""
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    report = evaluate(recognizer, manifest, progress=progress, keep_words=True)
    run = report.runs[0]
    raw, right, utt = [], [], []
    for i, (ref, words) in enumerate(zip(report.refs, run.words)):
        raw += [w.confidence for w in words]
        right += word_hits(ref.split(), [w.word for w in words])
        utt += [i] * len(words)
    raw_a, right_a = np.asarray(raw, float), np.asarray(right, bool)
    cal = ConfidenceCalibration.fit(raw_a, right_a, source=os.path.basename(manifest))
    fold_of_utt = _folds(report.speakers, folds)
    fold = fold_of_utt[np.asarray(utt, int)] if utt else np.zeros(0, int)
    heldout = np.empty_like(raw_a)
    for k in range(folds):
        test = fold == k
        if not test.any():
            continue
        train = ~test
        try:
            m = ConfidenceCalibration.fit(raw_a[train], right_a[train])
        except CalibrationDataError:  # a fold too small to fit on: fall back to the map of all words
            m = cal
        heldout[test] = m(raw_a[test])
    n_speakers = len({s for s in report.speakers if s is not None})
    return CalibrationReport(
        model=report.model, manifest=manifest, decoding=recognizer.decoding.label(), utterances=len(report.refs),
        words=int(raw_a.size), wrong=int((~right_a).sum()), speakers=n_speakers, folds=folds,
        auc=roc_auc(raw_a, right_a), ece_raw=calibration_error(raw_a, right_a),
        ece_fitted=calibration_error(cal(raw_a), right_a), ece_heldout=calibration_error(heldout, right_a),
        calibration=cal)


def write_calibration(path: str, calibration: Optional[ConfidenceCalibration]) -> None:
    """Store ``calibration`` in an exported ONNX file (None removes it), rewritten atomically;
    needs the ``onnx`` package. A checkpoint's is written by
    :func:`asr.train.checkpoint.set_checkpoint_calibration`."""
    from asr.runtime.model import OnnxModel
    from asr.runtime.schema import confidence_metadata, write_metadata

    OnnxModel(path)  # one of ours: raises ModelError naming what is wrong
    write_metadata(path, confidence_metadata(calibration))
