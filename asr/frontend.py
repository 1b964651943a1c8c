"""The front end: one definition of the log-mel features, shared by training and runtime.

:class:`FrontendConfig` holds every parameter explicitly and travels inside each model file.
This module is the numpy implementation (used by the torch-free runtime); ``asr.train.features``
builds the torchaudio implementation from the same config, and ``tests/test_frontend.py``
holds the two equal.

The time grid: frame ``t`` covers samples ``[t * hop_length, t * hop_length + n_fft)``, with a
periodic Hann window of ``win_length`` samples centred in it (no centre padding, no dither).
A signal of ``n`` samples gives ``1 + (n - n_fft) // hop_length`` frames, so a stream can emit
each frame as soon as its last sample has arrived.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["FrontendConfig", "mel_filterbank", "hann_window", "logmel", "OnlineLogMel"]


@dataclass(frozen=True)
class FrontendConfig:
    sample_rate: int = 16000
    n_fft: int = 512  # FFT size; a frame spans n_fft samples
    win_length: int = 400  # 25 ms at 16 kHz
    hop_length: int = 160  # 10 ms at 16 kHz
    n_mels: int = 80
    f_min: float = 0.0
    f_max: Optional[float] = None  # None: sample_rate / 2
    mel_scale: str = "slaney"  # "slaney" or "htk"
    mel_norm: Optional[str] = "slaney"  # "slaney" (area normalised) or None
    log_floor: float = 1e-6  # log(max(mel_power, log_floor))

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        problems = []
        ints = {k: getattr(self, k) for k in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels")}
        floats = {k: getattr(self, k) for k in ("f_min", "f_max", "log_floor") if getattr(self, k) is not None}
        wrong = [f"{k} must be an integer, got {v!r}" for k, v in ints.items()
                 if isinstance(v, bool) or not isinstance(v, (int, np.integer))]
        wrong += [f"{k} must be a finite number, got {v!r}" for k, v in floats.items()
                  if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v)]
        if wrong:  # the range checks below need numbers
            raise ValueError("invalid FrontendConfig: " + "; ".join(wrong))
        if self.sample_rate <= 0:
            problems.append(f"sample_rate must be positive, got {self.sample_rate}")
        if not 0 < self.win_length <= self.n_fft:
            problems.append(f"win_length must be in (0, n_fft={self.n_fft}], got {self.win_length}")
        if self.hop_length <= 0:
            problems.append(f"hop_length must be positive, got {self.hop_length}")
        if self.n_mels <= 0:
            problems.append(f"n_mels must be positive, got {self.n_mels}")
        if self.mel_scale not in ("slaney", "htk"):
            problems.append(f"mel_scale must be 'slaney' or 'htk', got {self.mel_scale!r}")
        if self.mel_norm not in (None, "slaney"):
            problems.append(f"mel_norm must be 'slaney' or None, got {self.mel_norm!r}")
        if not 0 <= self.f_min < self.top_frequency <= self.sample_rate / 2:
            problems.append(
                f"need 0 <= f_min < f_max <= sample_rate/2, got f_min={self.f_min}, "
                f"f_max={self.top_frequency}, sample_rate={self.sample_rate}"
            )
        if self.log_floor <= 0:
            problems.append(f"log_floor must be positive, got {self.log_floor}")
        if problems:
            raise ValueError("invalid FrontendConfig: " + "; ".join(problems))

    @property
    def top_frequency(self) -> float:
        return float(self.sample_rate) / 2 if self.f_max is None else float(self.f_max)

    @property
    def frame_shift_s(self) -> float:
        return self.hop_length / self.sample_rate

    def output_frame_shift_s(self, subsampling: int) -> float:
        """Seconds per model output frame: the feature hop times the model's subsampling."""
        return self.hop_length * subsampling / self.sample_rate

    def num_frames(self, num_samples: int) -> int:
        return 0 if num_samples < self.n_fft else 1 + (num_samples - self.n_fft) // self.hop_length

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FrontendConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown front-end setting(s): {sorted(unknown)}")
        return cls(**d)


def _hz_to_mel(f: np.ndarray, scale: str) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: np.ndarray, scale: str) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(cfg: FrontendConfig) -> np.ndarray:
    """Triangular mel filters, shape (n_fft // 2 + 1, n_mels). Raises if a filter is empty."""
    n_freqs = cfg.n_fft // 2 + 1
    all_freqs = np.linspace(0, cfg.sample_rate // 2, n_freqs)
    m_pts = np.linspace(_hz_to_mel(cfg.f_min, cfg.mel_scale), _hz_to_mel(cfg.top_frequency, cfg.mel_scale), cfg.n_mels + 2)
    f_pts = _mel_to_hz(m_pts, cfg.mel_scale)
    f_diff = np.diff(f_pts)
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = np.maximum(0.0, np.minimum(down, up))
    if cfg.mel_norm == "slaney":
        fb *= (2.0 / (f_pts[2 : cfg.n_mels + 2] - f_pts[: cfg.n_mels]))[None, :]
    empty = np.flatnonzero(fb.max(axis=0) == 0.0)
    if empty.size:
        raise ValueError(
            f"mel filter(s) {empty.tolist()} cover no FFT bin: lower n_mels ({cfg.n_mels}) "
            f"or raise n_fft ({cfg.n_fft})"
        )
    return fb


def hann_window(cfg: FrontendConfig) -> np.ndarray:
    """Periodic Hann window of win_length, zero-padded (centred) to n_fft, like torch.stft."""
    n = np.arange(cfg.win_length, dtype=np.float64)
    win = 0.5 - 0.5 * np.cos(2.0 * math.pi * n / cfg.win_length)
    left = (cfg.n_fft - cfg.win_length) // 2
    return np.pad(win, (left, cfg.n_fft - cfg.win_length - left))


class _Kernel:
    """Precomputed window and filterbank for one config."""

    _cache: dict = {}

    def __init__(self, cfg: FrontendConfig):
        self.window = hann_window(cfg)
        self.fb = mel_filterbank(cfg)

    @classmethod
    def get(cls, cfg: FrontendConfig) -> "_Kernel":
        k = cls._cache.get(cfg)
        if k is None:
            k = cls._cache[cfg] = cls(cfg)
        return k


def _frames(samples: np.ndarray, t: int, cfg: FrontendConfig) -> np.ndarray:
    """The first ``t`` frames of a contiguous float64 signal, as a read-only strided view."""
    step = samples.strides[0]
    frames = np.ndarray((t, cfg.n_fft), samples.dtype, buffer=samples, strides=(cfg.hop_length * step, step))
    frames.flags.writeable = False
    return frames


def _frames_to_logmel(frames: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    k = _Kernel.get(cfg)
    spec = np.fft.rfft(frames * k.window, n=cfg.n_fft, axis=-1)
    power = np.square(spec.real)
    power += np.square(spec.imag)
    mel = power @ k.fb
    np.maximum(mel, cfg.log_floor, out=mel)
    return np.log(mel, out=mel).astype(np.float32)


def logmel(samples: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """Log-mel features of a whole 1-D signal: shape (num_frames, n_mels), float32."""
    samples = np.ascontiguousarray(samples, dtype=np.float64).reshape(-1)
    t = cfg.num_frames(samples.shape[0])
    if t == 0:
        return np.zeros((0, cfg.n_mels), dtype=np.float32)
    return _frames_to_logmel(_frames(samples, t, cfg), cfg)


class OnlineLogMel:
    """Streaming log-mel: accepts samples in pieces of any size and returns each frame once
    its last sample has arrived. The concatenation of all outputs equals ``logmel`` of the
    concatenated input."""

    def __init__(self, cfg: FrontendConfig):
        self.cfg = cfg
        self._buffer = np.zeros(0, dtype=np.float64)
        self.frames_emitted = 0

    def accept(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float64).reshape(-1)
        buf = np.concatenate([self._buffer, samples]) if self._buffer.size else np.ascontiguousarray(samples)
        t = self.cfg.num_frames(buf.shape[0])
        if t == 0:
            self._buffer = buf.copy() if buf is samples else buf
            return np.zeros((0, self.cfg.n_mels), dtype=np.float32)
        out = _frames_to_logmel(_frames(buf, t, self.cfg), self.cfg)
        self._buffer = buf[t * self.cfg.hop_length :].copy()
        self.frames_emitted += t
        return out
