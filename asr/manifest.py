"""JSONL manifests: one JSON object a line, the format every corpus importer writes and every
consumer (training, evaluation, LM building) reads. Torch-free.

A line holds ``audio_filepath`` (absolute, or relative to the manifest's folder),
``duration`` (seconds), ``text``, and optionally ``speaker`` and ``offset`` (seconds: the
utterance is the segment [offset, offset + duration] of the file, as in a Kaldi ``segments``
file or a NeMo manifest; without it, the whole file). Durations and offsets are at most
:data:`MAX_SECONDS`; a line that breaks a rule (bad JSON, JSON nested too deeply, a missing,
mistyped or out-of-range field) is a malformed line, named and counted, never a crash.
"""

from __future__ import annotations

import json
import logging
import os
from array import array
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional, Sequence, TypeVar, overload

import numpy as np

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["ManifestError", "Entry", "read_manifest", "ManifestIndex", "LazySequence", "write_manifest", "segment_of"]

REQUIRED = {"audio_filepath": str, "duration": (int, float), "text": str}
MAX_SECONDS = 1e7  # about 116 days: a larger duration or offset is a broken line, not a recording


class ManifestError(ValueError):
    pass


@dataclass
class Entry:
    audio_filepath: str
    duration: float
    text: str
    speaker: Optional[str] = None
    extra: dict = field(default_factory=dict)
    offset: Optional[float] = None  # seconds into the file; None: the whole file

    def to_json(self) -> dict:
        d = {"audio_filepath": self.audio_filepath, "duration": round(self.duration, 4), "text": self.text}
        if self.offset is not None:
            d["offset"] = round(self.offset, 4)
        if self.speaker is not None:
            d["speaker"] = self.speaker
        d.update(self.extra)
        return d


def _parse_line(line: str, base: str) -> Entry:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:  # thousands of nested [ or {: json's decoder recurses once per level
        raise ManifestError("not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ManifestError(f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ManifestError(f"expected a JSON object, got {type(obj).__name__}")
    for key, typ in REQUIRED.items():
        if key not in obj:
            raise ManifestError(f"missing field {key!r}")
        if not isinstance(obj[key], typ) or isinstance(obj[key], bool):
            raise ManifestError(f"field {key!r} has type {type(obj[key]).__name__}")
    if not 0 < obj["duration"] <= MAX_SECONDS:
        raise ManifestError(f"duration must be positive and at most {MAX_SECONDS:g} s, got {obj['duration']}")
    offset = obj.pop("offset", None)
    if offset is not None and (not isinstance(offset, (int, float)) or isinstance(offset, bool)
                               or not 0 <= offset <= MAX_SECONDS):
        raise ManifestError(f"field 'offset' must be a number of seconds >= 0 (at most {MAX_SECONDS:g}), got {offset!r}")
    path = obj.pop("audio_filepath")
    if not os.path.isabs(path):
        path = os.path.normpath(os.path.join(base, path))
    speaker = obj.pop("speaker", None)
    return Entry(path, float(obj.pop("duration")), obj.pop("text"), None if speaker is None else str(speaker), obj,
                 None if offset is None else float(offset))


def _scan(path: str | os.PathLike, strict: bool, problems: Optional[list]) -> Iterator[tuple[int, int, Entry]]:
    """``(byte offset, byte length, entry)`` of each valid line of a manifest, in order; what
    :func:`read_manifest` says of malformed lines holds here (reported, counted, skipped, or
    raised with ``strict``); a missing file, or one with no valid line, raises."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ManifestError(f"{path}: manifest not found")
    base = os.path.dirname(os.path.abspath(path))
    kept, bad, pos = 0, 0, 0
    try:
        f = open(path, "rb")
    except PermissionError:
        raise ManifestError(f"{path}: permission denied") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            start, pos = pos, pos + len(raw)
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
                if not line.strip():
                    continue
                entry = _parse_line(line, base)
            except (ManifestError, UnicodeDecodeError) as exc:
                reason = (f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                          if isinstance(exc, UnicodeDecodeError) else str(exc))
                if strict:
                    raise ManifestError(f"{path}:{lineno}: {reason}") from None
                bad += 1
                if problems is not None:
                    problems.append((lineno, reason))
                log.warning("%s:%d: skipping malformed line: %s", path, lineno, reason)
                continue
            kept += 1
            yield start, len(raw), entry
    if bad:
        log.warning("%s: skipped %d malformed line(s), kept %d", path, bad, kept)
    if not kept:
        raise ManifestError(f"{path}: no valid entries" + (f" ({bad} malformed line(s))" if bad else ""))


def read_manifest(path: str | os.PathLike, strict: bool = False,
                  problems: Optional[list] = None) -> list[Entry]:
    """Read a JSONL manifest (UTF-8, a byte-order mark allowed). A malformed line (bad JSON,
    a missing or mistyped field, bytes that are not UTF-8) is reported with its file and line
    number and skipped, and appended to ``problems`` as ``(line number, reason)`` when a list
    is given; with ``strict=True`` it raises. A missing file, or one with no valid line, raises."""
    return [e for _, _, e in _scan(path, strict, problems)]


class LazySequence(Sequence[T]):
    """Items made when asked: a subclass gives ``__len__`` and ``_item(i)`` for ``0 <= i <
    len``; indexing (negative too) and slices (as lists) are the same for all."""

    def _item(self, i: int) -> T:
        raise NotImplementedError

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i):
        n = len(self)
        if isinstance(i, slice):
            return [self._item(j) for j in range(*i.indices(n))]
        if not -n <= i < n:
            raise IndexError(f"item {i} of {n}")
        return self._item(int(i) % n)


class ManifestIndex(LazySequence[Entry]):
    """A manifest that stays on disk: the byte offset and length of each valid line and its
    duration, 20 bytes an utterance, where :func:`read_manifest`'s entries take 1.5-2 KB each
    (a Python object per field). ``index[i]`` reads line ``i`` again and parses it into an
    :class:`Entry`; iterating reads the file in order. For training on corpora of millions of
    utterances. Lines are validated once, when the index is made (:meth:`read`, with
    :func:`read_manifest`'s rules); a file changed since then is an error, not other data."""

    def __init__(self, path: str | os.PathLike, starts: np.ndarray, sizes: np.ndarray, durations: np.ndarray,
                 stamp: tuple[int, int]):
        self.path = os.path.abspath(os.fspath(path))
        self.base = os.path.dirname(self.path)
        self.starts, self.sizes, self.durations = starts, sizes, durations
        self._stamp = stamp  # (size, mtime in ns) when indexed
        self._fd: Optional[int] = None

    @classmethod
    def read(cls, path: str | os.PathLike, strict: bool = False, problems: Optional[list] = None) -> "ManifestIndex":
        """Index a manifest (each line parsed and checked once, as :func:`read_manifest` does)."""
        st = os.stat(path) if os.path.isfile(path) else None
        starts, sizes, durations = array("q"), array("I"), array("d")  # compact while growing
        for start, size, e in _scan(path, strict, problems):
            starts.append(start)
            sizes.append(size)
            durations.append(e.duration)
        return cls(path, np.frombuffer(starts, np.int64), np.frombuffer(sizes, np.uint32),
                   np.frombuffer(durations, np.float64), (st.st_size, st.st_mtime_ns))

    def __len__(self) -> int:
        return len(self.starts)

    def _check(self, fd: int) -> None:
        st = os.fstat(fd)
        if (st.st_size, st.st_mtime_ns) != self._stamp:
            raise ManifestError(f"{self.path}: changed since it was read; start again to read it anew")

    def _file(self) -> int:
        if self._fd is None:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                self._check(fd)
            except ManifestError:
                os.close(fd)
                raise
            self._fd = fd
        return self._fd

    def _item(self, i: int) -> Entry:
        raw = os.pread(self._file(), int(self.sizes[i]), int(self.starts[i]))
        return _parse_line(raw.decode("utf-8-sig" if self.starts[i] == 0 else "utf-8"), self.base)

    def __iter__(self) -> Iterator[Entry]:
        with open(self.path, "rb") as f:  # in order: one sequential read, not a seek a line
            self._check(f.fileno())
            for start, size in zip(self.starts.tolist(), self.sizes.tolist()):
                f.seek(start)
                yield _parse_line(f.read(size).decode("utf-8-sig" if start == 0 else "utf-8"), self.base)

    def __getstate__(self) -> dict:  # a worker process opens the file itself
        return {**self.__dict__, "_fd": None}

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


def write_manifest(path: str | os.PathLike, entries: Iterable[Entry]) -> int:
    """Write entries as JSONL (atomically); returns the number written."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for e in entries:
            f.write(json.dumps(e.to_json(), ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


def segment_of(e: Entry) -> tuple[float, Optional[float]]:
    """(offset, duration) arguments of :func:`asr.audio.load_audio` for an entry: its segment
    when it has an ``offset``, else the whole file."""
    return (0.0, None) if e.offset is None else (e.offset, e.duration)
