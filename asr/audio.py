"""Audio loading: any file soundfile reads -> mono float32 at the model's sample rate.

This module imports numpy, soundfile and soxr only, so the torch-free runtime uses it too
(:func:`decode_with_ffmpeg` imports PyAV, the ``ffmpeg`` extra, when it is called).
Resampling is libsoxr (python-soxr) at :data:`RESAMPLE_QUALITY`: its memory and time do not
depend on how the two rates divide (a prime rate such as 44,101 Hz costs what 44,100 Hz does),
and the streaming runtime (:class:`StreamingResampler`, below) runs the same libsoxr
resampler, so training and serving resample to the same samples.
"""

from __future__ import annotations

import itertools
import os
import re
import stat
import sys
import warnings
from typing import Optional, Union

import numpy as np
import soundfile as sf
import soxr

__all__ = ["StreamingResampler", "join_audio", "AudioError", "AudioWarning", "AudioInput", "STDIN", "MAX_SAMPLE_RATE", "MAX_STDIN_BYTES",
           "load_audio", "read_audio", "read_input", "as_samples", "check_rate", "check_level", "resample", "to_mono", "check_finite",
           "RESAMPLE_QUALITY", "AudioBlocks", "audio_blocks", "FFMPEG_EXTRA", "has_ffmpeg", "AudioTooLong", "decode_with_ffmpeg"]

AudioInput = Union[str, os.PathLike, np.ndarray]
STDIN = "-"  # the path that means standard input
MAX_SAMPLE_RATE = 384_000  # Hz: the highest rate an array or a stream may claim (the server's bound too)
MAX_STDIN_BYTES = 2 << 30  # standard input is kept (on disk past 32 MiB) to be read like a file; more is refused
_STDIN_MEMORY_BYTES = 32 << 20
LEVEL_WARN_PEAK = 2.0  # a peak above this (nominal full scale: 1) is a scaling mistake, not loud speech
CLIPPED_WARN_SHARE = 0.01  # warn when more than this share of the samples sit at full scale

# libsoxr's "high quality" recipe (20-bit precision, linear phase); the offline resample() and the
# streaming resampler both use it, so they give the same samples.
RESAMPLE_QUALITY = "HQ"


class AudioError(ValueError):
    """A file (or stream) that cannot be turned into audio, with the reason."""

    def __init__(self, source: str | os.PathLike, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class AudioWarning(UserWarning):
    """Audio that was read but is probably not what was meant (a file cut short, absurd or
    clipped levels, an array of unstated rate); the message names the input. The command line
    prints these as ``warning: ...``."""


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # the asr package's parent


def _warn(source: str, reason: str) -> None:
    """An :class:`AudioWarning` attributed to the first caller outside this package."""
    level, frame = 1, sys._getframe(0)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR + "asr" + os.sep):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"{source}: {reason}", AudioWarning, stacklevel=level)


def check_level(samples: np.ndarray, source: str) -> None:
    """Warn (:class:`AudioWarning`) when the samples cannot be sound at the nominal scale of
    [-1, 1]: a peak above :data:`LEVEL_WARN_PEAK` (float data scaled wrongly, e.g. integer PCM
    stored as float), or more than :data:`CLIPPED_WARN_SHARE` of them at full scale (clipped)."""
    if samples.size:
        a = np.abs(samples)
        _level_warning(float(np.max(a)), int(np.count_nonzero(a >= 0.999)), a.size, source)


def _level_warning(peak: float, clipped: int, total: int, source: str) -> None:
    if peak > LEVEL_WARN_PEAK:
        _warn(source, f"peak level {peak:.3g} is far outside the nominal [-1, 1]: the samples look scaled wrongly "
                      "(integer PCM stored as float, or a gain mistake); the text may be empty or wrong")
    elif total and clipped / total > CLIPPED_WARN_SHARE:
        _warn(source, f"{100 * clipped / total:.1f}% of the samples are at full scale (clipped): the text may be wrong")


_DATA_SIZE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


def _check_complete(f: "sf.SoundFile", source: str) -> None:
    """Warn when a WAV's data chunk holds fewer bytes than its header declares (the file was
    cut short: a copy or download interrupted). The sizes of a stream written before its length
    was known (0xFFFFFFFF, 0x7FFFFFFF) are not a truncation."""
    m = _DATA_SIZE.search(f.extra_info or "")
    if m is None:
        return
    declared, present = int(m.group(1)), int(m.group(2))
    if present < declared < 0x7FFFFFFF:
        _warn(source, f"the WAV header declares {declared} bytes of audio but the file holds {present} "
                      f"({100 * present / declared:.0f}%): the file looks cut short; only the "
                      f"{f.frames / f.samplerate:.3g} s present are transcribed")


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array; 1-D input is returned as is."""
    if samples.ndim == 1:
        return samples
    return samples.mean(axis=1)


def check_finite(samples: np.ndarray, source: str) -> None:
    if not np.all(np.isfinite(samples)):
        bad = int(np.size(samples) - np.count_nonzero(np.isfinite(samples)))
        raise AudioError(source, f"{bad} sample(s) are NaN or infinite")


def as_samples(samples, source: str, allow_empty: bool = False) -> np.ndarray:
    """The input rules for arrays, the same for every recognizer and stream: a 1-D array of
    mono samples, float (float16/32/64, taken as they are, nominally in [-1, 1]) or 16/32-bit
    integer PCM (scaled by 1/32768 and 1/2**31). Anything else (other dtypes, 2-D arrays,
    NaN or infinite values, no samples unless ``allow_empty``) raises :class:`AudioError`
    naming ``source``. Returns contiguous float32."""
    a = np.asarray(samples)
    if a.dtype == np.int16:
        a = a.astype(np.float32) / 32768.0
    elif a.dtype == np.int32:
        a = (a.astype(np.float64) / 2147483648.0).astype(np.float32)
    elif a.dtype.kind == "f":
        a = a.astype(np.float32, copy=False)
    else:
        raise AudioError(source, f"samples of type {a.dtype} are not accepted: give float32/float64 values in "
                                 "[-1, 1], or int16/int32 PCM")
    if a.ndim != 1:
        raise AudioError(source, f"expected a 1-D array of mono samples, got shape {a.shape} "
                                 "(mix channels down first, e.g. samples.mean(axis=1))")
    if a.size == 0 and not allow_empty:
        raise AudioError(source, "no samples")
    check_finite(a, source)
    return np.ascontiguousarray(a)


def check_rate(sample_rate, source: str) -> int:
    """A sample rate as a whole number of Hz in 1..:data:`MAX_SAMPLE_RATE`, else
    :class:`AudioError` naming ``source``."""
    if isinstance(sample_rate, (bool, np.bool_)) or not isinstance(sample_rate, (int, np.integer, float)) \
            or (isinstance(sample_rate, float) and not np.isfinite(sample_rate)) \
            or sample_rate != int(sample_rate) or not 0 < sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(source, f"sample rate must be a whole number of Hz in 1..{MAX_SAMPLE_RATE}, got {sample_rate!r}")
    return int(sample_rate)


def _read_stdin():
    """Standard input, read in blocks into a temporary file (in memory up to 32 MiB, then on
    disk) that soundfile reads like any file; more than :data:`MAX_STDIN_BYTES` is refused."""
    import tempfile

    class StdinCopy(tempfile.SpooledTemporaryFile):
        def __repr__(self):  # how libsndfile's errors name it
            return "<stdin>"

    stream = sys.stdin.buffer
    spool = StdinCopy(max_size=_STDIN_MEMORY_BYTES)
    total = 0
    try:
        while True:
            block = stream.read(1 << 20)
            if not block:
                break
            total += len(block)
            if total > MAX_STDIN_BYTES:
                raise AudioError("<stdin>", f"standard input is longer than {MAX_STDIN_BYTES} bytes "
                                            f"({MAX_STDIN_BYTES / 2**30:g} GiB): save it to a file and give the file's "
                                            "path (files of any length are read in blocks)")
            spool.write(block)
    except BaseException:
        spool.close()
        raise
    if not total:
        spool.close()
        raise AudioError("<stdin>", "standard input is empty")
    spool.seek(0)
    return spool


def _open_source(path: str) -> tuple[object, str]:
    """An open binary file for ``path`` (standard input: a temporary copy, :func:`_read_stdin`),
    and the name errors give; raises :class:`AudioError` for what is not a readable file. The
    caller closes it."""
    if path == STDIN:
        return _read_stdin(), "<stdin>"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AudioError(path, "file not found") from None
    except PermissionError:
        raise AudioError(path, "permission denied") from None
    except OSError as exc:
        raise AudioError(path, f"cannot access ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(path, "is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        kind = "a pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        raise AudioError(path, f"is {kind}: to read a stream, give '-' and redirect it to standard input")
    if st.st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    try:  # opened here, so a refused open says why (libsndfile would say "System error.")
        return open(path, "rb"), path
    except PermissionError:
        raise AudioError(path, "permission denied") from None
    except OSError as exc:
        raise AudioError(path, f"cannot open ({exc.strerror or exc})") from None


def read_audio(path: str | os.PathLike, offset: float = 0.0, duration: Optional[float] = None) -> tuple[np.ndarray, int]:
    """Read ``path`` (wav, flac, ogg, mp3, ... any channel count; ``-`` = standard input) as
    mono float32 samples at the file's own rate: ``(samples, rate)``. With ``offset`` and/or
    ``duration`` (seconds), only that segment. Raises :class:`AudioError` naming the file and
    why (pipes and devices are refused rather than waited on: read them as ``-``)."""
    path = os.fspath(path)
    segment = offset > 0 or duration is not None
    if path == STDIN and segment:
        raise AudioError(path, "a segment (offset/duration) cannot be read from standard input")
    source, path = _open_source(path)
    try:
        with sf.SoundFile(source) as f:
            file_rate = f.samplerate
            _check_complete(f, path)
            if not segment:
                samples = f.read(dtype="float32", always_2d=True)
            else:
                if not (0 <= offset < float("inf") and (duration is None or 0 <= duration < float("inf"))):
                    raise AudioError(path, f"segment offset {offset!r} s, duration {duration!r} s: expected finite "
                                           "numbers >= 0")
                if offset * file_rate >= f.frames > 0:
                    raise AudioError(path, f"segment starts at {offset:g} s, after the end of the file ({f.frames / file_rate:g} s)")
                start = int(round(offset * file_rate))
                if start >= f.frames > 0:
                    raise AudioError(path, f"segment starts at {offset:g} s, after the end of the file ({f.frames / file_rate:g} s)")
                f.seek(start)
                frames = -1 if duration is None else int(round(min(duration * file_rate, 2.0**62)))  # soundfile stops at the end
                samples = f.read(frames, dtype="float32", always_2d=True)
    except PermissionError:
        raise AudioError(path, "permission denied") from None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as exc:
        if isinstance(exc, AudioError):
            raise
        raise AudioError(path, f"cannot decode audio ({exc})") from None
    finally:
        source.close()
    if samples.shape[0] == 0:
        raise AudioError(path, "contains no audio samples" + (f" from {offset:g} s" if segment else ""))
    samples = to_mono(samples)
    check_finite(samples, path)
    return np.ascontiguousarray(samples, dtype=np.float32), int(file_rate)


def load_audio(
    path: str | os.PathLike, sample_rate: int, offset: float = 0.0, duration: Optional[float] = None
) -> np.ndarray:
    """:func:`read_audio`, resampled to ``sample_rate``: mono float32 samples in [-1, 1]."""
    samples, file_rate = read_audio(path, offset, duration)
    if file_rate != sample_rate:
        samples = resample(samples, file_rate, sample_rate)
    return np.ascontiguousarray(samples, dtype=np.float32)


def _implicit_rate(name: str, model_rate: int) -> None:
    _warn(name, f"an array without sample_rate is taken to be at the model's rate, {model_rate} Hz: pass "
                "sample_rate= to say so (an array at another rate, e.g. 44100 Hz, gives wrong or empty text)")


def read_input(item: AudioInput, sample_rate: Optional[int], model_rate: int, name: str) -> tuple[np.ndarray, str]:
    """A path (any format soundfile reads, ``-`` for standard input) or an array (see
    :func:`as_samples`) at ``sample_rate`` (default: the model's, with an
    :class:`AudioWarning`: say the rate) -> (samples at ``model_rate``, name). Raises
    :class:`AudioError` naming the input; warns of a file cut short and of absurd or clipped
    levels (:func:`check_level`)."""
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)  # a file's own rate is read from the file; sample_rate is for arrays
        samples, file_rate = read_audio(path)
        check_level(samples, path)
        if file_rate != model_rate:
            samples = resample(samples, file_rate, model_rate)
        return np.ascontiguousarray(samples, dtype=np.float32), path
    samples = as_samples(item, name)
    if sample_rate is None:
        _implicit_rate(name, model_rate)
    rate = model_rate if sample_rate is None else check_rate(sample_rate, name)
    check_level(samples, name)
    if rate != model_rate:
        samples = resample(samples, rate, model_rate)
    return np.ascontiguousarray(samples, dtype=np.float32), name


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




class StreamingResampler:
    """Streaming resampling with the same libsoxr resampler as :func:`resample`.

    :class:`StreamingResampler` feeds each piece to a ``soxr.ResampleStream`` at
    :data:`asr.audio.RESAMPLE_QUALITY` and flushes it at :meth:`~StreamingResampler.flush`; libsoxr
    works in its own blocks whatever the piece sizes, so pieces in give the same samples out as
    :func:`~asr.audio.resample` on the whole signal, and the same number of them. Memory and time per
    piece are bounded for any pair of rates.

    The price of libsoxr's long linear-phase filters is latency: output lags input by about 40 ms
    at 44.1 or 48 kHz -> 16 kHz, about 115 ms at 8 <-> 16 kHz (10 ms pieces). Audio already at the
    model's rate passes through untouched, with none.
    """

    def __init__(self, orig_rate: int, new_rate: int):
        if orig_rate <= 0 or new_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
        self.orig_rate, self.new_rate = int(orig_rate), int(new_rate)
        self.passthrough = self.orig_rate == self.new_rate
        self.num_in = 0
        self.num_out = 0
        self.flushed = False
        self._stream = None if self.passthrough else soxr.ResampleStream(
            self.orig_rate, self.new_rate, 1, dtype="float32", quality=RESAMPLE_QUALITY
        )

    def accept(self, samples: np.ndarray) -> np.ndarray:
        """Resample the next piece; returns the output samples that are complete so far."""
        if self.flushed:
            raise ValueError("resampler already flushed")
        samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        self.num_in += samples.size
        out = samples if self.passthrough else self._stream.resample_chunk(samples)
        self.num_out += out.size
        return out

    def flush(self) -> np.ndarray:
        """End of input: the remaining output samples."""
        if self.flushed:
            return np.zeros(0, np.float32)
        self.flushed = True
        if self.passthrough:
            return np.zeros(0, np.float32)
        out = self._stream.resample_chunk(np.zeros(0, np.float32), last=True)
        self.num_out += out.size
        return out


class AudioBlocks:
    """A file (any format soundfile reads; ``-`` = standard input, kept in a temporary file) or a 1-D
    array, as consecutive blocks of about ``block_s`` seconds of mono float32 samples at ``rate``
    (default: the input's own), resampled in a stream: a file of any length is read in bounded
    memory. ``duration`` (seconds) and ``rate`` are known before the first block; iterate once
    or many times (each pass reads the file again). Raises :class:`AudioError` naming the input;
    warns (:class:`AudioWarning`, unless ``warn=False``) of a file cut short, of absurd or clipped
    levels (once, on the first pass) and of an array without ``sample_rate``."""

    def __init__(self, item: AudioInput, rate: Optional[int] = None, block_s: float = 10.0,
                 sample_rate: Optional[int] = None, name: str = "input 0", warn: bool = True):
        if not block_s > 0:
            raise ValueError(f"block_s must be positive, got {block_s}")
        self._array: Optional[np.ndarray] = None
        self._path: Optional[str] = None
        self._stdin = None  # standard input's temporary copy
        self._level_checked = not warn  # warn=False: no AudioWarning (a probe of the duration only)
        if isinstance(item, (str, os.PathLike)):
            source, self.name = _open_source(os.fspath(item))
            try:
                with self._guard(lambda: sf.SoundFile(source)) as f:
                    self.input_rate, frames = int(f.samplerate), int(f.frames)
                    if warn:
                        _check_complete(f, self.name)
            finally:
                if os.fspath(item) == STDIN:
                    self._stdin = source
                else:
                    source.close()
                    self._path = os.fspath(item)
            if frames <= 0:
                raise AudioError(self.name, "contains no audio samples")
        else:
            self.name = name
            self._array = as_samples(item, name)
            self.input_rate = check_rate(sample_rate, name) if sample_rate is not None else (rate or 0)
            if not self.input_rate:
                raise AudioError(name, "an array needs its sample rate")
            if sample_rate is None and warn:
                _implicit_rate(name, self.input_rate)
            frames = self._array.size
        self.rate = int(rate or self.input_rate)
        self.duration = frames / self.input_rate
        self.block_frames = max(1, int(round(block_s * self.input_rate)))

    def _guard(self, fn):
        try:
            return fn()
        except AudioError:
            raise
        except PermissionError:
            raise AudioError(self.name, "permission denied") from None
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as exc:
            raise AudioError(self.name, f"cannot decode audio ({exc})") from None

    def _input_blocks(self):
        if self._array is not None:
            for i in range(0, self._array.size, self.block_frames):
                yield self._array[i : i + self.block_frames]
            return
        if self._stdin is not None:
            self._stdin.seek(0)
            source = self._stdin
        else:
            source, _ = _open_source(self._path)
        try:
            with self._guard(lambda: sf.SoundFile(source)) as f:
                while True:
                    block = self._guard(lambda: f.read(self.block_frames, dtype="float32", always_2d=True))
                    if block.shape[0] == 0:
                        return
                    block = to_mono(block)
                    check_finite(block, self.name)
                    yield block
        finally:
            if self._stdin is None:
                source.close()

    def __iter__(self):
        resampler = StreamingResampler(self.input_rate, self.rate)
        peak, clipped, total = 0.0, 0, 0
        for block in self._input_blocks():
            if not self._level_checked and block.size:
                peak = max(peak, float(np.max(np.abs(block))))
                clipped += int(np.count_nonzero(np.abs(block) >= 0.999))
                total += block.size
            if not self._level_checked and peak > LEVEL_WARN_PEAK:
                self._check_level(peak, clipped, total)  # at once; clipping when the whole input is read
            out = resampler.accept(block)
            if out.size:
                yield np.ascontiguousarray(out, dtype=np.float32)
        if not self._level_checked:
            self._check_level(peak, clipped, total)
        out = resampler.flush()
        if out.size:
            yield out

    def _check_level(self, peak: float, clipped: int, total: int) -> None:
        """:func:`check_level` on what was read (once per input, not once per pass)."""
        self._level_checked = True
        _level_warning(peak, clipped, total, self.name)


def audio_blocks(item: AudioInput, rate: Optional[int] = None, block_s: float = 10.0,
                 sample_rate: Optional[int] = None, name: str = "input 0") -> AudioBlocks:
    """:class:`AudioBlocks`: ``item`` in blocks of ``block_s`` seconds at ``rate``."""
    return AudioBlocks(item, rate, block_s, sample_rate, name)


def join_audio(paths: list, sample_rate: int, gap: float = 0.0) -> "np.ndarray | str":
    """Several audio files as one input, ``gap`` seconds of digital silence apart, at
    ``sample_rate``; one path is given back as it is (its name then names the input)."""
    if len(paths) == 1:
        return paths[0]
    silence = np.zeros(int(gap * sample_rate), np.float32)
    parts = []
    for i, p in enumerate(paths):
        parts += ([silence] if i else []) + [load_audio(p, sample_rate)]
    return np.concatenate(parts)


# Containers libsndfile does not read (m4a/mp4 with AAC, webm/mkv with Opus or Vorbis, ...): PyAV,
# whose wheels bundle FFmpeg, is an optional extra (about 100 MB installed), never the base.
FFMPEG_EXTRA = "ffmpeg"  # pip install 'asr-toolkit[ffmpeg]'


def has_ffmpeg() -> bool:
    """Whether PyAV (the ``ffmpeg`` extra) is installed."""
    import importlib.util

    return importlib.util.find_spec("av") is not None


class AudioTooLong(AudioError):
    """Decoded audio longer than the bound it was given."""


def decode_with_ffmpeg(path: str, out: str, rate: int, max_s: float) -> float:
    """The first audio stream of ``path`` (any container and codec FFmpeg reads) decoded to
    ``out``, a 16-bit mono WAV at ``rate`` Hz, frame by frame (bounded memory); returns its
    seconds. Raises :class:`AudioError` naming ``path`` when PyAV is missing (naming the extra)
    or FFmpeg cannot decode it, :class:`AudioTooLong` past ``max_s`` seconds (a small compressed
    file can hold hours)."""
    try:
        import av
    except ImportError:
        raise AudioError(path, f"decoding this format needs FFmpeg: pip install 'asr-toolkit[{FFMPEG_EXTRA}]' "
                               "(PyAV, whose wheels bundle it)") from None
    rate = check_rate(rate, path)
    written, limit = 0, int(max_s * rate)
    try:
        with av.open(path) as container, sf.SoundFile(out, "w", samplerate=rate, channels=1, subtype="PCM_16",
                                                       format="WAV") as f:
            stream = next((st for st in container.streams if st.type == "audio"), None)
            if stream is None:
                raise AudioError(path, "has no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            frames = itertools.chain(container.decode(stream), [None])  # None flushes the resampler
            for frame in frames:
                for piece in resampler.resample(frame):
                    samples = piece.to_ndarray().reshape(-1)
                    written += samples.size
                    if written > limit:
                        raise AudioTooLong(path, f"decodes to more than {max_s:g} s of audio")
                    f.write(samples)
    except av.FFmpegError as exc:
        raise AudioError(path, f"FFmpeg cannot decode it ({exc})") from None
    if written == 0:
        raise AudioError(path, "contains no audio samples")
    return written / rate
