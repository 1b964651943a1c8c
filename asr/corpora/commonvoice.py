"""Mozilla Common Voice, English: crowd-sourced read sentences, MP3 clips (mostly 48 kHz), CC0.
The release is handed out at https://commonvoice.mozilla.org/datasets once its terms are
accepted (no script can fetch it): unpack it and pass the folder with ``--corpus-dir`` (or put
it under ``$ASR_CORPORA/commonvoice``).

It unpacks to ``cv-corpus-<version>/en/``: ``clips/*.mp3`` and tab-separated tables with a
header line, among them ``train.tsv``, ``dev.tsv``, ``test.tsv`` (the official splits, no
speaker in two), with columns ``client_id`` (the speaker), ``path``, ``sentence``, ``age``,
``gender``, ``accents`` (``accent`` in old releases) and others.

:func:`prepare` writes ``train.jsonl``, ``dev.jsonl`` and ``test.jsonl`` (for each table
present) with every clip's duration, read from its header (slow for a whole release: a
progress bar). Text is the sentence as written, whitespace collapsed (scoring normalizes);
entries carry ``speaker``, ``id`` (clip name) and ``age``, ``gender``, ``accent`` where given.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
from typing import Optional, Sequence

from asr.corpora import ENV, audio_problem
from asr.manifest import Entry, write_manifest
from asr.text import normalize_text

log = logging.getLogger(__name__)

NAME = "commonvoice"
SPLITS = ("train", "dev", "test")
TERMS_URL = "https://commonvoice.mozilla.org/datasets"


def find(corpus_dir: Optional[str]) -> Optional[str]:
    """The language folder (holding ``clips/`` and ``train.tsv``): ``corpus_dir`` itself, its
    ``commonvoice/``, ``en/`` or newest ``cv-corpus-*/en/``; else the same under
    ``$ASR_CORPORA/commonvoice``, then ``data/corpora/commonvoice``."""
    if corpus_dir:
        bases = [corpus_dir, os.path.join(corpus_dir, NAME)]
    elif os.environ.get(ENV):
        bases = [os.path.join(os.environ[ENV], NAME)]
    else:
        bases = []
    bases.append(os.path.join("data", "corpora", NAME))
    for base in bases:
        for c in [base, os.path.join(base, "en")] + sorted(glob.glob(os.path.join(base, "cv-corpus-*", "en")), reverse=True):
            if os.path.isdir(os.path.join(c, "clips")) and any(os.path.isfile(os.path.join(c, f"{s}.tsv")) for s in SPLITS):
                return c
    return None


def read_tsv(path: str, clips: str, progress: bool = True) -> tuple[list[Entry], int]:
    """Entries of one Common Voice table in file order, and how many rows were skipped (each
    reported with file:line and the reason)."""
    from tqdm import tqdm

    rows: list[tuple[int, dict]] = []
    skipped = 0
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header or "path" not in header or "sentence" not in header:
            raise ValueError(f"{path}:1: expected a header line with 'path' and 'sentence' columns, got {header!r}")
        for row in reader:
            lineno = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                log.warning("%s:%d: skipping row with %d fields (the header has %d)", path, lineno, len(row), len(header))
                skipped += 1
                continue
            rows.append((lineno, dict(zip(header, row))))
    entries = []
    name = os.path.basename(path)
    for lineno, r in tqdm(rows, desc=f"{name} durations", disable=None if progress else True, unit="clip"):
        text = " ".join(r["sentence"].split())
        audio = os.path.abspath(os.path.join(clips, r["path"]))
        if not r["path"].strip():
            why = "no clip named"
        elif not normalize_text(text):
            why = "empty transcript" if not text else f"transcript {text!r} has no words"
        else:
            why, duration = audio_problem(audio)
            if why:
                why = f"{why}: {audio}"
        if why:
            log.warning("%s:%d: skipping %s: %s", path, lineno, r["path"] or "row", why)
            skipped += 1
            continue
        extra = {"id": os.path.splitext(r["path"])[0]}
        for key in ("age", "gender", "accents", "accent"):
            if r.get(key, "").strip():
                extra["accent" if key == "accents" else key] = r[key].strip()
        entries.append(Entry(audio, duration, text, r.get("client_id") or None, extra))
    return entries, skipped


def prepare(corpus_dir: Optional[str], out_dir: str, splits: Sequence[str] = SPLITS, progress: bool = True) -> dict[str, int]:
    """Write ``<split>.jsonl`` for each official table present to ``out_dir``; returns the
    counts per split and ``skipped``."""
    root = find(corpus_dir)
    if root is None:
        where = corpus_dir or f"$ASR_CORPORA/{NAME} or data/corpora/{NAME}"
        raise FileNotFoundError(
            f"Common Voice not found (looked for clips/ and train.tsv, also under en/ and cv-corpus-*/en/, in {where}). "
            f"It cannot be downloaded automatically: accept its terms at {TERMS_URL}, download the English release, "
            f"unpack it and pass --corpus-dir DIR"
        )
    counts: dict[str, int] = {}
    skipped = 0
    for split in splits:
        tsv = os.path.join(root, f"{split}.tsv")
        if not os.path.isfile(tsv):
            log.info("%s: no %s.tsv; not writing %s.jsonl", root, split, split)
            continue
        entries, n = read_tsv(tsv, os.path.join(root, "clips"), progress)
        skipped += n
        counts[split] = write_manifest(os.path.join(out_dir, f"{split}.jsonl"), entries)
        log.info("commonvoice %s: %d clips, %d speakers, %.2f h", split, len(entries),
                 len({e.speaker for e in entries}), sum(e.duration for e in entries) / 3600)
    if not any(counts.values()):
        raise FileNotFoundError(f"{root}: no usable Common Voice clips (see the warnings above)")
    if skipped:
        log.warning("Common Voice: skipped %d clip(s)", skipped)
    counts["skipped"] = skipped
    return counts
