"""Import a NeMo-style JSONL manifest: one object a line with ``audio_filepath`` (absolute or
relative to the manifest's folder), ``duration`` (seconds), ``text`` and optionally ``offset``
(seconds into the file) and ``speaker``; other fields are kept as they are.

Every line is checked -- valid JSON, the fields and their types, the audio file readable, the
segment inside it, a transcript with words -- and bad lines are reported as ``file:line`` with
the reason and left out. The result is written as our manifest (absolute paths).
"""

from __future__ import annotations

import logging
import os

from asr.corpora import audio_problem
from asr.corpora.kaldi import TOLERANCE, output_path
from asr.manifest import Entry, ManifestError, _parse_line, write_manifest
from asr.text import normalize_text

log = logging.getLogger(__name__)


def read_checked(path: str) -> tuple[list[Entry], int]:
    """The usable entries of manifest ``path`` and how many lines were skipped."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: manifest not found")
    base = os.path.dirname(os.path.abspath(path))
    files: dict[str, tuple[str | None, float]] = {}
    entries: list[Entry] = []
    skipped = 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = _parse_line(line, base)
            except ManifestError as exc:
                why = str(exc)
            else:
                if e.audio_filepath not in files:
                    files[e.audio_filepath] = audio_problem(e.audio_filepath)
                why, file_duration = files[e.audio_filepath]
                end = (e.offset or 0.0) + e.duration
                if why:
                    why = f"{why}: {e.audio_filepath}"
                elif not normalize_text(e.text):
                    why = "empty transcript"
                elif end > file_duration + TOLERANCE:
                    why = (f"{'segment ends' if e.offset else 'duration is'} {end:g} s, "
                           f"past the end of {e.audio_filepath} ({file_duration:g} s)")
            if why:
                log.warning("%s:%d: skipping: %s", path, lineno, why)
                skipped += 1
                continue
            entries.append(e)
    return entries, skipped


def prepare(path: str, out: str) -> dict[str, int]:
    """Check manifest ``path`` and write its usable lines to ``out`` (a ``.jsonl`` path) or
    ``out/<same name>.jsonl``. Returns the count and ``skipped``."""
    entries, skipped = read_checked(path)
    if not entries:
        raise ValueError(f"{path}: no usable entries (see the warnings above)")
    dest = output_path(out, os.path.splitext(os.path.basename(path))[0])
    counts = {os.path.splitext(os.path.basename(dest))[0]: write_manifest(dest, entries)}
    if skipped:
        log.warning("%s: skipped %d line(s)", path, skipped)
    counts["skipped"] = skipped
    return counts
