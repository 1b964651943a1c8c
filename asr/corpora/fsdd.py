"""Free Spoken Digit Dataset (FSDD): 3,000 recordings of the digits 0-9 spoken in English by
6 speakers, 8 kHz. File names are ``recordings/{digit}_{speaker}_{index}.wav``.

Splits written by :func:`prepare`:
- official (default): test = index 0-4 of every digit and speaker (300 files, the dataset's own
  split); dev = index 5-9 (300 files, held out of train); train = index 10-49 (2,400 files).
- leave one speaker out (``test_speaker``): test = every file of that speaker (500); dev =
  index 0-4 of the other speakers; train = index 5-49 of the other speakers.
"""

from __future__ import annotations

import logging
import os
import re
import tarfile
from typing import Optional

import soundfile as sf

from asr.corpora import find_corpus
from asr.corpora.download import download
from asr.manifest import Entry, write_manifest

log = logging.getLogger(__name__)

URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def fetch(dest_root: str = os.path.join("data", "corpora")) -> str:
    """Download and unpack FSDD's recordings into ``dest_root/fsdd/recordings``."""
    target = os.path.join(dest_root, "fsdd")
    archive = download(URL, os.path.join(dest_root, "fsdd-v1.0.10.tar.gz"))
    os.makedirs(os.path.join(target, "recordings"), exist_ok=True)
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            parts = m.name.split("/")
            if m.isfile() and len(parts) >= 3 and parts[-2] == "recordings" and NAME.match(parts[-1]):
                m.name = parts[-1]
                tar.extract(m, os.path.join(target, "recordings"), filter="data")
    return target


def prepare(
    corpus_dir: Optional[str], out_dir: str, test_speaker: Optional[str] = None, allow_download: bool = True
) -> dict[str, int]:
    """Write ``train.jsonl``, ``dev.jsonl`` and ``test.jsonl`` to ``out_dir``; returns counts."""
    root = find_corpus("fsdd", corpus_dir, "recordings")
    if root is None:
        if corpus_dir or not allow_download:
            raise FileNotFoundError(
                f"FSDD not found (looked for recordings/ in {corpus_dir or '$ASR_CORPORA/fsdd or data/corpora/fsdd'})"
            )
        log.info("FSDD not found locally: downloading %s", URL)
        root = fetch()
    rec = os.path.join(root, "recordings")
    splits: dict[str, list[Entry]] = {"train": [], "dev": [], "test": []}
    skipped = 0
    speakers = set()
    for name in sorted(os.listdir(rec)):
        m = NAME.match(name)
        if not m:
            continue
        digit, speaker, index = int(m.group(1)), m.group(2), int(m.group(3))
        speakers.add(speaker)
        path = os.path.abspath(os.path.join(rec, name))
        try:
            info = sf.info(path)
            duration = info.frames / info.samplerate
            if info.frames == 0:
                raise ValueError("no samples")
        except Exception as exc:  # soundfile raises several kinds for broken files
            log.warning("skipping %s: unreadable audio (%s)", path, exc)
            skipped += 1
            continue
        entry = Entry(path, duration, WORDS[digit], speaker)
        if test_speaker is None:
            split = "test" if index < 5 else "dev" if index < 10 else "train"
        else:
            split = "test" if speaker == test_speaker else "dev" if index < 5 else "train"
        splits[split].append(entry)
    if test_speaker is not None and test_speaker not in speakers:
        raise ValueError(f"--test-speaker {test_speaker!r} is not an FSDD speaker (speakers: {sorted(speakers)})")
    if not any(splits.values()):
        raise FileNotFoundError(f"{rec}: no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav) found")
    counts = {k: write_manifest(os.path.join(out_dir, f"{k}.jsonl"), v) for k, v in splits.items()}
    if skipped:
        log.warning("FSDD: skipped %d unreadable file(s)", skipped)
    counts["skipped"] = skipped
    return counts
