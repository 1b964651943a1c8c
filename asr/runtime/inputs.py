"""Whole inputs (a file path or an array) -> mono float32 samples, for the transcribe calls."""

from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np

from asr.audio import AudioError, check_finite, load_audio, resample

__all__ = ["AudioInput", "read_input"]

AudioInput = Union[str, os.PathLike, np.ndarray]


def read_input(item: AudioInput, sample_rate: Optional[int], model_rate: int, index: int = 0) -> tuple[np.ndarray, str]:
    """A path (any format soundfile reads) or a 1-D array at ``sample_rate`` (default: the
    model's) -> (samples at ``model_rate``, name). Raises :class:`AudioError` naming the input."""
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        return load_audio(path, model_rate), path
    name = f"input {index}"
    samples = np.asarray(item, dtype=np.float32)
    if samples.ndim != 1:
        raise AudioError(name, f"expected a 1-D array of mono samples, got shape {samples.shape}")
    check_finite(samples, name)
    rate = model_rate if sample_rate is None else int(sample_rate)
    if rate != model_rate:
        samples = resample(samples, rate, model_rate)
    return np.ascontiguousarray(samples, dtype=np.float32), name
