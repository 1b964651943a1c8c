"""A trained checkpoint as a recognizer backend (PyTorch): ``asr.train.load_model("best.pt")``."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
import torch

from asr.train.checkpoint import build_model, checkpoint_calibration, load_checkpoint
from asr.train.data import collate
from asr.train.features import LogMel

__all__ = ["TorchBackend"]


class TorchBackend:
    """Log-probs from a checkpoint with PyTorch: the torchaudio front end, one padded batch.
    ``chunk_size`` / ``right_context`` (model frames) override the model's latency condition
    (``chunk_size=0``: full context)."""

    def __init__(self, path: str | os.PathLike, num_threads: int = 1, chunk_size: Optional[int] = None,
                 right_context: Optional[int] = None):
        self.path = os.fspath(path)
        state = load_checkpoint(self.path)
        self.model, self.cfg, self.tokenizer = build_model(state)
        self.calibration = checkpoint_calibration(state, self.path)
        self.streaming_model = None
        self.frontend = self.cfg.frontend
        self.subsampling = self.cfg.model.subsampling
        self.num_threads = num_threads
        self.chunk_size, self.right_context = self.cfg.model.serving(chunk_size, right_context)
        self.logmel = LogMel(self.frontend)
        self.description = "PyTorch checkpoint, " + (
            "full context" if self.chunk_size <= 0
            else f"chunks of {self.chunk_size} + {self.right_context} right-context model frames")
        self.details = {"chunk_size": self.chunk_size, "right_context": self.right_context}

    @torch.no_grad()
    def log_probs(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        torch.set_num_threads(self.num_threads)
        batch = collate([self.logmel(torch.from_numpy(np.ascontiguousarray(w))) for w in waves])
        logp, out_len = self.model(batch["feats"], batch["lengths"], chunk_size=self.chunk_size,
                                   right_context=self.right_context)
        logp = logp.float().numpy()
        return [logp[row, : int(n)] for row, n in enumerate(out_len)]
