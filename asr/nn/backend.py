"""Transcription with a trained checkpoint (PyTorch): ``asr.load_model(path).transcribe(file)``.

The ONNX runtime (``asr.runtime``) offers the same for exported models without torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, asdict, field
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np
import torch

from asr.audio import load_audio
from asr.nn.checkpoint import build_model, load_checkpoint
from asr.nn.data import collate
from asr.decoding.greedy import greedy_alignment
from asr.nn.features import LogMel
from asr.decoding.result import Word, words_from_tokens

__all__ = ["Recognizer", "Transcription"]


@dataclass
class Transcription:
    text: str
    duration: float  # seconds of audio
    path: Optional[str] = None
    words: list[Word] = field(default_factory=list)  # with start/end seconds from the alignment

    def to_dict(self) -> dict:
        return asdict(self)


class Recognizer:
    """``aligner``: how log-probs become tokens with frames; None = greedy, or e.g.
    ``asr.beam_search.build_aligner(rec.tokenizer, 16, lm="lm.arpa", hotwords=["john"])``."""

    def __init__(self, model, cfg, tokenizer, num_threads: int = 1,
                 aligner: Optional[Callable[[np.ndarray], list]] = None):
        self.model, self.cfg, self.tokenizer = model.eval(), cfg, tokenizer
        self.aligner = aligner
        self.frontend = cfg.frontend
        self.logmel = LogMel(cfg.frontend)
        self.num_threads = num_threads

    @classmethod
    def from_checkpoint(cls, path: str, num_threads: int = 1) -> "Recognizer":
        model, cfg, tokenizer = build_model(load_checkpoint(path))
        return cls(model, cfg, tokenizer, num_threads)

    @property
    def sample_rate(self) -> int:
        return self.frontend.sample_rate

    def transcribe(self, audio: Union[str, os.PathLike, np.ndarray], sample_rate: Optional[int] = None) -> Transcription:
        """Transcribe one file (any format soundfile reads) or a mono float array at
        ``sample_rate`` (default: the model's)."""
        return self.transcribe_batch([audio], sample_rate)[0]

    @torch.no_grad()
    def transcribe_batch(self, items: Sequence[Union[str, os.PathLike, np.ndarray]], sample_rate: Optional[int] = None) -> list[Transcription]:
        from asr.audio import resample

        torch.set_num_threads(self.num_threads)
        waves, paths = [], []
        for item in items:
            if isinstance(item, (str, os.PathLike)):
                waves.append(load_audio(item, self.sample_rate))
                paths.append(os.fspath(item))
            else:
                w = np.asarray(item, dtype=np.float32).reshape(-1)
                if sample_rate and sample_rate != self.sample_rate:
                    w = resample(w, sample_rate, self.sample_rate)
                waves.append(w)
                paths.append(None)
        feats = []
        for w in waves:
            if self.frontend.num_frames(w.shape[0]) < self.cfg.model.subsampling:
                w = np.pad(w, (0, self.frontend.n_fft + self.cfg.model.subsampling * self.frontend.hop_length))
            feats.append(self.logmel(torch.from_numpy(w)))
        batch = collate(feats)
        logp, out_len = self.model(batch["feats"], batch["lengths"])
        align = self.aligner or greedy_alignment
        shift = self.frontend.hop_length * self.cfg.model.subsampling / self.sample_rate
        out = []
        for row, (w, p) in enumerate(zip(waves, paths)):
            lp = logp[row, : int(out_len[row])].numpy()
            text, words = words_from_tokens(self.tokenizer, align(lp) if lp.shape[0] else [], shift)
            out.append(Transcription(text, round(w.shape[0] / self.sample_rate, 3), p, words))
        return out
