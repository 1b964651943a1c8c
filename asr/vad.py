"""Voice activity detection: the speech segments of a recording fed in pieces, in bounded memory.

A *detector* gives each short frame a speech probability; the :class:`Segmenter` turns those
into speech segments with hysteresis and padding, and cuts speech longer than
``max_segment_s`` at its quietest point (lowest smoothed frame energy in the second half of
the window). Detectors (``VadOptions.method``): ``"silero"`` (default; :class:`SileroVad`, the
ONNX file of the ``silero-vad`` package 6.2.3, MIT licence, shipped as
``asr/assets/silero_vad.onnx`` since that package depends on PyTorch), ``"webrtc"``
(:class:`WebRtcVad`, ``pip install webrtcvad-wheels``, the ``vad`` extra), ``"energy"``
(:class:`EnergyVad`, numpy only; also accepts tones and music) and ``"none"`` (every frame is
speech: the recording is only cut into bounded segments). docs/long_recordings.md
measures them on a recording with known pauses.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Optional, Protocol

import numpy as np

__all__ = ["VadOptions", "Segment", "Segmenter", "speech_span", "SileroVad", "WebRtcVad", "EnergyVad", "make_detector", "SILERO_MODEL",
           "METHODS"]

SILERO_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "silero_vad.onnx")
METHODS = ("silero", "webrtc", "energy", "none")


@dataclass(frozen=True)
class VadOptions:
    method: str = "silero"
    threshold: float = 0.5  # a frame with probability >= threshold starts speech ...
    neg_threshold: Optional[float] = None  # ... and speech goes on while >= this (default threshold - 0.15)
    min_speech_s: float = 0.1  # shorter speech is dropped
    min_silence_s: float = 0.15  # a pause this long ends a segment
    pad_s: float = 0.1  # audio kept before and after speech (at most min_silence_s after)
    max_segment_s: float = 20.0  # longer speech is cut at its quietest point
    aggressiveness: int = 2  # webrtc: 0 (keeps most) - 3 (keeps least)
    model: Optional[str] = None  # silero: another ONNX file

    def __post_init__(self):
        problems = []
        if self.method not in METHODS:
            problems.append(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not 0.0 < self.threshold <= 1.0:
            problems.append(f"threshold must be in (0, 1], got {self.threshold}")
        if self.neg_threshold is not None and not 0.0 <= self.neg_threshold <= self.threshold:
            problems.append(f"neg_threshold must be in [0, threshold], got {self.neg_threshold}")
        for name in ("min_speech_s", "min_silence_s", "pad_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                problems.append(f"{name} must be a number >= 0, got {v!r}")
        if not (isinstance(self.max_segment_s, (int, float)) and math.isfinite(self.max_segment_s)
                and self.max_segment_s >= 1.0 + 2 * self.pad_s):
            problems.append(f"max_segment_s must be at least 1 s + 2 * pad_s, got {self.max_segment_s!r}")
        if self.aggressiveness not in (0, 1, 2, 3):
            problems.append(f"aggressiveness must be 0, 1, 2 or 3, got {self.aggressiveness!r}")
        if problems:
            raise ValueError("invalid VadOptions: " + "; ".join(problems))

    def replace(self, **changes) -> "VadOptions":
        return dataclasses.replace(self, **changes)

    @property
    def stop_threshold(self) -> float:
        return self.neg_threshold if self.neg_threshold is not None else max(0.0, self.threshold - 0.15)


@dataclass
class Segment:
    start: int  # first sample, counted from the start of the recording
    samples: np.ndarray  # mono float32
    speech_start: Optional[int] = None  # where the detector heard speech begin and end (samples, without
    speech_end: Optional[int] = None  # the padding); None: not known

    @property
    def end(self) -> int:
        return self.start + self.samples.size


class Detector(Protocol):
    frame_samples: int  # samples per frame at the recording's rate

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(n, frame_samples) consecutive frames -> (n,) speech probabilities in [0, 1]."""


class SileroVad:
    """Silero VAD (ONNX) on consecutive 32 ms frames, its recurrent state carried across calls.
    It runs at 16 kHz: 8 kHz audio is upsampled (linear interpolation; Silero's own 8 kHz mode
    lost 8% of the FSDD digits that it finds at 16 kHz), a multiple of 16 kHz decimated."""

    def __init__(self, rate: int, path: Optional[str] = None, num_threads: int = 1):
        import onnxruntime as ort

        path = path or SILERO_MODEL
        if rate == 8000:
            self.frame_samples = 256
        elif rate % 16000 == 0:
            self.frame_samples = 512 * (rate // 16000)
        else:
            raise ValueError(f"the silero VAD runs at 8 kHz or a multiple of 16 kHz, not {rate} Hz: "
                             "use the webrtc or energy VAD")
        self.rate = rate
        if not os.path.isfile(path):
            raise ValueError(f"{path}: silero VAD model file not found")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        self._sr = np.array(16000, np.int64)
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(64, np.float32)
        self._last = 0.0  # the previous frame's last sample (8 kHz interpolation)

    def _to_16k(self, frame: np.ndarray) -> np.ndarray:
        if self.rate == 8000:
            x = np.empty(512, np.float32)
            x[1::2] = frame
            x[0::2] = 0.5 * (np.concatenate([[self._last], frame[:-1]]) + frame)
            self._last = float(frame[-1])
            return x
        return np.ascontiguousarray(frame[:: self.rate // 16000], np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        out = np.empty(len(frames), np.float32)
        run = self.session.run
        for i, frame in enumerate(frames):
            x = self._to_16k(frame)
            p, self._state = run(None, {"input": np.concatenate([self._context, x])[None], "state": self._state, "sr": self._sr})
            self._context = x[-64:]
            out[i] = p[0, 0]
        return out


class WebRtcVad:
    """WebRTC's GMM detector on 30 ms frames at 8, 16, 32 or 48 kHz: probability 1 (speech) or
    0; ``aggressiveness`` 0-3."""

    def __init__(self, rate: int, aggressiveness: int = 2):
        try:
            import webrtcvad
        except ImportError:
            raise ValueError("the webrtc VAD needs the webrtcvad-wheels package: pip install webrtcvad-wheels") from None
        if rate not in (8000, 16000, 32000, 48000):
            raise ValueError(f"the webrtc VAD runs at 8, 16, 32 or 48 kHz, not {rate} Hz: use the silero or energy VAD")
        self.rate = rate
        self.vad = webrtcvad.Vad(aggressiveness)
        self.frame_samples = rate * 30 // 1000

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        pcm = (np.clip(frames, -1.0, 1.0) * 32767).astype("<i2")
        return np.array([float(self.vad.is_speech(f.tobytes(), self.rate)) for f in pcm], np.float32)


class EnergyVad:
    """Speech where a 20 ms frame's energy is ``margin_db`` above the noise floor (the lowest
    frame energy in the last ``floor_s`` seconds) and above ``min_db`` dBFS; the probability
    rises smoothly over a few dB around that line."""

    def __init__(self, rate: int, margin_db: float = 12.0, min_db: float = -55.0, floor_s: float = 10.0):
        self.frame_samples = max(1, rate // 50)
        self.margin_db, self.min_db = margin_db, min_db
        self._per_second = max(1, rate // self.frame_samples)
        self._minima: collections.deque = collections.deque(maxlen=int(floor_s))  # lowest energy of each past second
        self._current, self._count = math.inf, 0

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        energy = 10 * np.log10(np.mean(np.asarray(frames, np.float64) ** 2, axis=1) + 1e-10)
        out = np.empty(len(frames), np.float32)
        for i, e in enumerate(energy.tolist()):
            self._current = min(self._current, e)
            self._count += 1
            if self._count == self._per_second:
                self._minima.append(self._current)
                self._current, self._count = math.inf, 0
            floor = min(min(self._minima, default=math.inf), self._current)
            line = max(floor + self.margin_db, self.min_db)
            out[i] = 1.0 / (1.0 + math.exp(-(e - line) / 1.5))
        return out


class _Everything:
    """Every frame is speech (``method="none"``)."""

    def __init__(self, rate: int):
        self.frame_samples = max(1, rate // 50)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return np.ones(len(frames), np.float32)


def make_detector(rate: int, options: VadOptions) -> Detector:
    if options.method == "silero":
        return SileroVad(rate, options.model)
    if options.method == "webrtc":
        return WebRtcVad(rate, options.aggressiveness)
    if options.method == "energy":
        return EnergyVad(rate)
    return _Everything(rate)


class Segmenter:
    """Speech segments of a signal fed in pieces (:meth:`accept`, then :meth:`flush`). Holds at
    most ``max_segment_s`` seconds of speech plus one piece; segments never overlap and come
    in order."""

    def __init__(self, rate: int, options: Optional[VadOptions] = None, detector: Optional[Detector] = None):
        self.rate = int(rate)
        self.options = o = options if options is not None else VadOptions()
        self.detector = detector if detector is not None else make_detector(self.rate, o)
        L = self.frame = self.detector.frame_samples
        fs = L / self.rate
        self.pad = int(round(min(o.pad_s, o.min_silence_s) * self.rate))
        self.min_speech = max(1, int(math.ceil(o.min_speech_s / fs)))
        self.min_silence = max(1, int(math.ceil(o.min_silence_s / fs)))
        self.max_frames = max(2, int((o.max_segment_s * self.rate - 2 * self.pad) // L))
        self._tail = np.zeros(0, np.float32)  # samples short of a whole frame
        self._buf = np.zeros(0, np.float32)  # samples [_buf_start, _frame * L)
        self._buf_start = 0
        self._frame = 0  # next frame
        self._in_speech = False
        self._seg_start = 0  # first frame of the current speech
        self._last_speech = 0
        self._energy: list[float] = []  # log energy of each frame of the current speech
        self._padded = True  # the current speech starts with padding (not the rest of a cut segment)
        self._prev_end = 0  # where the last segment ended (sample)
        self.speech_frames = 0  # frames judged speech (for reports)
        self.num_frames = 0

    def _emit(self, first: int, end: int, pad_after: bool, total: Optional[int] = None) -> Segment:
        L = self.frame
        a = first * L - (self.pad if self._padded else 0)
        a = max(a, self._prev_end, self._buf_start)
        limit = self._buf_start + self._buf.size if total is None else total
        b = min(end * L + (self.pad if pad_after else 0), limit)
        seg = Segment(a, self._buf[a - self._buf_start : b - self._buf_start].copy(),
                      max(a, first * L), min(b, end * L))
        self._prev_end = b
        return seg

    def accept(self, samples: np.ndarray) -> list[Segment]:
        x = np.asarray(samples, np.float32).reshape(-1)
        if self._tail.size:
            x = np.concatenate([self._tail, x])
        L = self.frame
        n = x.size // L
        self._tail = x[n * L:].copy()
        if n == 0:
            return []
        whole = x[: n * L]
        self._buf = np.concatenate([self._buf, whole]) if self._buf.size else whole.copy()
        frames = whole.reshape(n, L)
        probs = self.detector(frames)
        energy = np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-10).tolist()
        out = self._frames(probs.tolist(), energy)
        self._trim()
        return out

    def _frames(self, probs: list, energy: list) -> list[Segment]:
        o, out = self.options, []
        start_t, stop_t = o.threshold, o.stop_threshold
        for p, e in zip(probs, energy):
            f = self._frame
            self._frame += 1
            self.num_frames += 1
            if not self._in_speech:
                if p >= start_t:
                    self._in_speech, self._seg_start, self._last_speech = True, f, f
                    self._energy, self._padded = [e], True
                    self.speech_frames += 1
                continue
            self._energy.append(e)
            if p >= stop_t:
                self._last_speech = f
                self.speech_frames += 1
            elif f - self._last_speech >= self.min_silence:
                end = self._last_speech + 1
                if end - self._seg_start >= self.min_speech or not self._padded:
                    out.append(self._emit(self._seg_start, end, pad_after=True))
                self._in_speech = False
                continue
            if f + 1 - self._seg_start >= self.max_frames:
                cut = self._quietest()
                out.append(self._emit(self._seg_start, cut, pad_after=False))
                self._energy = self._energy[cut - self._seg_start:]
                self._seg_start, self._padded = cut, False
                self._last_speech = max(self._last_speech, cut)
        return out

    def _quietest(self) -> int:
        """The frame (absolute) where the current speech is quietest, in the second half of it
        (energies smoothed over about 100 ms)."""
        e = np.asarray(self._energy)
        k = max(1, int(round(0.1 * self.rate / self.frame)))
        smooth = np.convolve(e, np.ones(k) / k, mode="same")
        half = len(e) // 2
        return self._seg_start + half + int(np.argmin(smooth[half:]))

    def _trim(self) -> None:
        L = self.frame
        keep = (self._seg_start * L - self.pad) if self._in_speech else (self._frame * L - self.pad)
        keep = max(keep, self._buf_start)
        if keep > self._buf_start:
            self._buf = self._buf[keep - self._buf_start:]
            self._buf_start = keep

    def flush(self) -> list[Segment]:
        """End of input: the speech still open becomes the last segment."""
        out = []
        if self._in_speech:
            total = self._buf_start + self._buf.size + self._tail.size
            if self._tail.size:
                self._buf = np.concatenate([self._buf, self._tail])
            end = self._last_speech + 1
            if end - self._seg_start >= self.min_speech or not self._padded:
                out.append(self._emit(self._seg_start, end, pad_after=True, total=total))
            self._in_speech = False
        self._tail = np.zeros(0, np.float32)
        self._buf = np.zeros(0, np.float32)
        return out


def speech_span(samples: np.ndarray, rate: int, options: Optional[VadOptions] = None) -> Optional[tuple[int, int]]:
    """(first, last) sample of the speech the detector hears in a whole signal (from the start of
    its first speech segment to the end of its last, padding left out), or None if it hears none."""
    seg = Segmenter(rate, options)
    found = seg.accept(samples) + seg.flush()
    if not found:
        return None
    return found[0].speech_start, found[-1].speech_end
