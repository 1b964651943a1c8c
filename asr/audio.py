"""Audio loading: any file soundfile reads -> mono float32 at the model's sample rate.

This module imports numpy, soundfile and soxr only, so the torch-free runtime uses it too.
Resampling is libsoxr (python-soxr) at :data:`RESAMPLE_QUALITY`: its memory and time do not
depend on how the two rates divide (a prime rate such as 44,101 Hz costs what 44,100 Hz does),
and the streaming runtime (:class:`asr.runtime.StreamingResampler`) runs the same libsoxr
resampler, so training and serving resample to the same samples.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import soundfile as sf
import soxr

__all__ = ["AudioError", "load_audio", "resample", "to_mono", "check_finite", "RESAMPLE_QUALITY"]

# libsoxr's "high quality" recipe (20-bit precision, linear phase); the offline resample() and the
# streaming resampler both use it, so they give the same samples.
RESAMPLE_QUALITY = "HQ"


class AudioError(ValueError):
    """A file (or stream) that cannot be turned into audio, with the reason."""

    def __init__(self, source: str | os.PathLike, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array; 1-D input is returned as is."""
    if samples.ndim == 1:
        return samples
    return samples.mean(axis=1)


def check_finite(samples: np.ndarray, source: str) -> None:
    if not np.all(np.isfinite(samples)):
        bad = int(np.size(samples) - np.count_nonzero(np.isfinite(samples)))
        raise AudioError(source, f"{bad} sample(s) are NaN or infinite")


def load_audio(
    path: str | os.PathLike, sample_rate: int, offset: float = 0.0, duration: Optional[float] = None
) -> np.ndarray:
    """Read ``path`` (wav, flac, ogg, mp3, ... any rate, any channel count) as mono float32
    samples in [-1, 1] at ``sample_rate``; with ``offset`` and/or ``duration`` (seconds), only
    that segment of the file (a Kaldi ``segments`` entry). Raises :class:`AudioError` naming the
    file and why."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(path, "file not found")
    if os.path.isdir(path):
        raise AudioError(path, "is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    segment = offset > 0 or duration is not None
    try:
        if not segment:
            samples, file_rate = sf.read(path, dtype="float32", always_2d=True)
        else:
            with sf.SoundFile(path) as f:
                file_rate = f.samplerate
                start = int(round(offset * file_rate))
                if start >= f.frames > 0:
                    raise AudioError(path, f"segment starts at {offset:g} s, after the end of the file ({f.frames / file_rate:g} s)")
                f.seek(start)
                samples = f.read(-1 if duration is None else int(round(duration * file_rate)), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        if isinstance(exc, AudioError):
            raise
        raise AudioError(path, f"cannot decode audio ({exc})") from None
    if samples.shape[0] == 0:
        raise AudioError(path, "contains no audio samples" + (f" from {offset:g} s" if segment else ""))
    samples = to_mono(samples)
    check_finite(samples, path)
    if file_rate != sample_rate:
        samples = resample(samples, file_rate, sample_rate)
    return np.ascontiguousarray(samples, dtype=np.float32)


def resample(samples: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a 1-D signal from ``orig_rate`` to ``new_rate`` Hz (libsoxr, linear phase).

    Returns float32 samples, ``round(len(samples) * new_rate / orig_rate)`` of them (halves round
    up), in bounded memory and time for any pair of rates."""
    if orig_rate <= 0 or new_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
    if orig_rate == new_rate:
        return samples
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"resample() takes a 1-D signal, got shape {samples.shape}")
    return soxr.resample(samples, orig_rate, new_rate, quality=RESAMPLE_QUALITY)
