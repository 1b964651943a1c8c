"""Streaming resampling with the same windowed-sinc kernels as :func:`asr.audio.resample`.

The whole-signal resampler pads ``pad`` zeros before and ``pad + orig`` zeros after the
signal and computes one block of ``new`` outputs per ``orig`` input samples from a window of
``taps`` samples. :class:`StreamingResampler` computes the same blocks as soon as their window
has arrived, keeps the ``taps - orig`` samples of history the next block needs, and at
:meth:`~StreamingResampler.flush` appends the trailing zeros and cuts the output to the same
length, so pieces in give the same samples out as the whole signal (up to float32 rounding).
"""

from __future__ import annotations

import math

import numpy as np

from asr.audio import sinc_kernel

__all__ = ["StreamingResampler"]


class StreamingResampler:
    def __init__(self, orig_rate: int, new_rate: int):
        if orig_rate <= 0 or new_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
        g = math.gcd(int(orig_rate), int(new_rate))
        self.orig_rate, self.new_rate = int(orig_rate), int(new_rate)
        self.orig, self.new = self.orig_rate // g, self.new_rate // g
        self.passthrough = self.orig == self.new
        self.num_in = 0
        self.num_out = 0
        self.flushed = False
        if not self.passthrough:
            self.kernels, self.pad = sinc_kernel(self.orig, self.new)
            self.taps = self.kernels.shape[1]
            self._buf = np.zeros(self.pad, np.float32)  # the left zero padding of resample()

    def accept(self, samples: np.ndarray) -> np.ndarray:
        """Resample the next piece; returns the output samples that are complete so far."""
        if self.flushed:
            raise ValueError("resampler already flushed")
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.num_in += samples.size
        if self.passthrough:
            self.num_out += samples.size
            return samples
        self._buf = np.concatenate([self._buf, samples])
        return self._run()

    def flush(self) -> np.ndarray:
        """End of input: the remaining output samples."""
        if self.flushed:
            return np.zeros(0, np.float32)
        self.flushed = True
        if self.passthrough:
            return np.zeros(0, np.float32)
        self._buf = np.concatenate([self._buf, np.zeros(self.pad + self.orig, np.float32)])
        out = self._run()
        target = int(math.ceil(self.new * self.num_in / self.orig))
        keep = max(0, target - (self.num_out - out.size))
        self.num_out -= out.size - keep
        return out[:keep]

    def _run(self) -> np.ndarray:
        n_blocks = (self._buf.size - self.taps) // self.orig + 1 if self._buf.size >= self.taps else 0
        if n_blocks <= 0:
            return np.zeros(0, np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(self._buf, self.taps)[:: self.orig][:n_blocks]
        out = (windows @ self.kernels.T).reshape(-1)
        self._buf = self._buf[n_blocks * self.orig :].copy()
        self.num_out += out.size
        return out
