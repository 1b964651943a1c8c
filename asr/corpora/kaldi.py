"""Import a Kaldi data folder (``data/train`` of any Kaldi, ESPnet or k2 recipe) as a manifest.

Files read (Kaldi's formats, one ``key value`` line each):
- ``wav.scp``: recording id, then an audio file path (absolute, or relative to the current
  folder as in Kaldi, else to the recipe folder holding ``data/<name>``, else to the data
  folder's parent). Lines that are commands (ending in
  ``|``, e.g. ``sph2pipe ... |`` or ``sox ... |``) and archive offsets (``foo.ark:123``) are
  not files soundfile can read: they are reported and skipped;
- ``text``: utterance id, then the transcript;
- ``segments`` (optional): utterance id, recording id, start and end in seconds (end -1: the
  end of the recording). Without it, utterance ids are recording ids and each is a whole file;
- ``utt2spk`` (optional): utterance id, speaker.

Each entry keeps the transcript as written (whitespace collapsed) and carries ``id`` (the
utterance id), ``speaker`` when known and ``offset`` for segments.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Optional

from asr.corpora import audio_problem, read_table
from asr.manifest import Entry, write_manifest
from asr.text import normalize_text

log = logging.getLogger(__name__)

ARK = re.compile(r"\.ark:\d+$")
TOLERANCE = 0.05  # seconds a segment may run past the end of its file (rounding in segments files)


def output_path(out: str, name: str) -> str:
    """``out`` itself when it names a ``.jsonl`` file, else ``out/<name>.jsonl``."""
    return out if out.endswith(".jsonl") else os.path.join(out, f"{name}.jsonl")


def _audio_path(value: str, data_dir: str) -> tuple[Optional[str], Optional[str]]:
    """(path, None) for a wav.scp value naming a file, or (None, why it cannot be read)."""
    if value.endswith("|"):
        return None, (f"wav.scp gives a command ({value!r}), which soundfile cannot run: convert the audio to "
                      f"files first (e.g. with sox or ffmpeg) and list them in wav.scp")
    if ARK.search(value):
        return None, f"wav.scp gives an archive offset ({value!r}), not an audio file: extract the audio to files first"
    if os.path.isabs(value):
        return value, None
    recipe = os.path.dirname(os.path.dirname(os.path.abspath(data_dir)))  # <recipe>/data/train
    for base in (os.getcwd(), recipe, os.path.dirname(os.path.abspath(data_dir))):
        if os.path.exists(os.path.join(base, value)):
            return os.path.abspath(os.path.join(base, value)), None
    return os.path.abspath(value), None  # not found: audio_problem says so, naming the path


def _times(fields: list[str]) -> tuple[Optional[tuple[float, float]], str]:
    """((start, end), "") from the fields of a segments line, or (None, what is wrong)."""
    if len(fields) != 4:
        return None, "expected 'utterance recording start end'"
    try:
        start, end = float(fields[2]), float(fields[3])
    except ValueError:
        return None, "start and end must be numbers of seconds"
    if start < 0 or (end != -1 and end <= start):
        return None, f"bad times (start {start:g}, end {end:g})"
    return (start, end), ""


def _segments(path: str) -> dict[str, tuple[str, float, float]]:
    """``{utterance: (recording, start, end)}``; malformed lines are reported with file:line
    and skipped."""
    out: dict[str, tuple[str, float, float]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            times, why = _times(fields)
            if times is None or fields[0] in out:
                why = why or f"duplicate utterance {fields[0]!r} (kept the first)"
                log.warning("%s:%d: skipping line: %s: %r", path, lineno, why, line.rstrip("\n"))
                continue
            out[fields[0]] = (fields[1], *times)
    return out


def read_data_dir(data_dir: str) -> tuple[list[Entry], int]:
    """Entries of a Kaldi data folder in utterance order, and how many utterances were skipped
    (each reported with its reason)."""
    for need in ("wav.scp", "text"):
        if not os.path.isfile(os.path.join(data_dir, need)):
            raise FileNotFoundError(f"{data_dir}: not a Kaldi data folder (no {need})")
    texts = read_table(os.path.join(data_dir, "text"), fields=0, allow_empty_value=True)
    wavs = read_table(os.path.join(data_dir, "wav.scp"), fields=0)
    utt2spk = read_table(os.path.join(data_dir, "utt2spk"))
    seg_file = os.path.join(data_dir, "segments")
    segments = _segments(seg_file) if os.path.isfile(seg_file) else None
    recordings: dict[str, tuple[Optional[str], Optional[str], float]] = {}  # rec: (path, why, duration)

    def recording(rec: str) -> tuple[Optional[str], Optional[str], float]:
        if rec not in recordings:
            path, why = _audio_path(wavs[rec], data_dir)
            duration = 0.0
            if why is None:
                why, duration = audio_problem(path)
                if why:
                    why = f"{why}: {path}"
            recordings[rec] = (path, why, duration)
        return recordings[rec]

    entries: list[Entry] = []
    skipped = 0
    utts = sorted(texts) if segments is None else sorted(set(texts) | set(segments))
    for utt in utts:
        text = " ".join(texts.get(utt, "").split())
        offset: Optional[float] = None
        if utt not in texts:
            why = "not in text (no transcript)"
        elif not normalize_text(text):
            why = "empty transcript"
        else:
            rec, start, end = (utt, 0.0, -1.0) if segments is None else segments.get(utt, (None, 0.0, 0.0))
            if rec is None:
                why = "not in segments"
            elif rec not in wavs:
                why = f"recording {rec} not in wav.scp" if segments is not None else "not in wav.scp (no audio)"
            else:
                path, why, file_duration = recording(rec)
                if why is None:
                    if segments is None:
                        duration = file_duration
                    else:
                        stop = file_duration if end == -1 else end
                        if start >= file_duration:
                            why = f"segment starts at {start:g} s, after the end of {path} ({file_duration:g} s)"
                        elif stop > file_duration + TOLERANCE:
                            why = f"segment ends at {stop:g} s, after the end of {path} ({file_duration:g} s)"
                        offset, duration = start, min(stop, file_duration) - start
        if why:
            log.warning("%s: skipping utterance %s: %s", data_dir, utt, why)
            skipped += 1
            continue
        entries.append(Entry(path, duration, text, utt2spk.get(utt), {"id": utt}, offset))
    return entries, skipped


def prepare(data_dir: str, out: str) -> dict[str, int]:
    """Write the data folder as one manifest: ``out`` when it ends in ``.jsonl``, else
    ``out/<name of the data folder>.jsonl``. Returns the count and ``skipped``."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"{data_dir}: Kaldi data folder not found")
    entries, skipped = read_data_dir(data_dir)
    if not entries:
        raise ValueError(f"{data_dir}: no usable utterances (see the warnings above)")
    name = os.path.basename(os.path.normpath(os.path.abspath(data_dir)))
    dest = output_path(out, name)
    counts = {os.path.splitext(os.path.basename(dest))[0]: write_manifest(dest, entries)}
    if skipped:
        log.warning("%s: skipped %d utterance(s)", data_dir, skipped)
    counts["skipped"] = skipped
    return counts
