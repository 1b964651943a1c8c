"""Offline (full-context) graphs as a recognizer backend: whole inputs in one padded batch."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from asr.frontend import logmel
from asr.runtime.model import OnnxModel
from asr.runtime.schema import ModelError

__all__ = ["OnnxBackend"]


class OnnxBackend:
    """Log-probs from an offline graph (``asr export`` without ``--streaming``) through
    onnxruntime: the numpy front end, one padded batch, one call."""

    def __init__(self, model: "str | os.PathLike | OnnxModel", num_threads: int = 1):
        self.model = model if isinstance(model, OnnxModel) else OnnxModel(model, num_threads=num_threads)
        info = self.info = self.model.info
        if info.streaming:
            raise ModelError(info.path, "is a streaming graph; this backend needs an offline graph (use StreamingBackend)")
        self.path, self.frontend, self.tokenizer, self.subsampling = info.path, info.frontend, info.tokenizer, info.subsampling
        self.calibration = info.confidence
        self.description = "onnxruntime, offline graph"
        self.details: dict = {}

    def log_probs(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        feats = [logmel(w, self.frontend) for w in waves]
        lengths = np.array([f.shape[0] for f in feats], np.int64)
        batch = np.zeros((len(feats), int(lengths.max()), self.frontend.n_mels), np.float32)
        for row, f in enumerate(feats):
            batch[row, : f.shape[0]] = f
        logp, out_len = self.model.forward(batch, lengths)
        return [logp[row, : int(n)] for row, n in enumerate(out_len)]
