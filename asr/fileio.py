"""Writing files so that a crash never leaves a truncated one behind (torch-free).

A writer fills a temporary file in the target's own folder (so the rename stays on one file
system), flushes and fsyncs it, then renames it over the target with ``os.replace``: a reader
sees either the old file or the complete new one, never a part of it.
"""

from __future__ import annotations

import contextlib
import os
from typing import IO, Callable, Iterator

__all__ = ["atomic_open", "atomic_write", "fsync_file", "temporary_path"]


def temporary_path(path: str) -> str:
    """A temporary name beside ``path`` (same folder, so the final rename is atomic), unique
    to this process."""
    return f"{path}.tmp{os.getpid()}"


def fsync_file(path: str) -> None:
    """Flush ``path``'s data to the disk (for files written by other code, e.g. torch.save)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, encoding: str = "utf-8", newline: str | None = None) -> Iterator[IO[str]]:
    """``with atomic_open(path) as f: f.write(...)``: a text file that appears at ``path``
    complete or not at all. An exception inside the block leaves ``path`` as it was."""
    path = os.fspath(path)
    tmp = temporary_path(path)
    try:
        with open(tmp, "w", encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """``write(tmp)`` fills a temporary file by name (``torch.save``, ``onnx.save``, ...); it
    is fsynced and renamed to ``path``. An exception leaves ``path`` as it was."""
    path = os.fspath(path)
    tmp = temporary_path(path)
    try:
        write(tmp)
        fsync_file(tmp)  # the data reaches the disk before the rename can
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
