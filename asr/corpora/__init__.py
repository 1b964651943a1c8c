"""Corpus preparation: each module turns one public corpus (or data in another toolkit's
format) into JSONL manifests. What they share lives here: where a local copy lies, unpacking
a downloaded archive safely, Kaldi-style tables, and why an audio file cannot be used."""

import logging
import os
import shutil
import tarfile
from typing import Optional

import soundfile as sf

__all__ = ["find_corpus", "unpack", "read_table", "audio_problem"]

log = logging.getLogger(__name__)

ENV = "ASR_CORPORA"


def find_corpus(name: str, corpus_dir: Optional[str], marker: str) -> Optional[str]:
    """Where corpus ``name`` lies: ``corpus_dir`` (the corpus itself or a folder holding
    ``name/``), else ``$ASR_CORPORA/name``, else ``data/corpora/name``. ``marker`` is a path
    inside the corpus that must exist. Returns None when it is nowhere."""
    candidates = []
    if corpus_dir:
        candidates += [corpus_dir, os.path.join(corpus_dir, name)]
    elif os.environ.get(ENV):
        candidates.append(os.path.join(os.environ[ENV], name))
    candidates.append(os.path.join("data", "corpora", name))
    for c in candidates:
        if os.path.exists(os.path.join(c, marker)):
            return c
    return None


def unpack(archive: str, inner: str, target: str) -> str:
    """Unpack the folder ``inner`` of tar ``archive`` (e.g. ``LibriSpeech/dev-clean``) as
    ``target``, in one pass over the archive and through ``target.part``, so an interrupted
    unpack is never taken for the corpus. Other members are left out. Returns ``target``."""
    part = target + ".part"
    shutil.rmtree(part, ignore_errors=True)
    os.makedirs(part)
    prefix = inner.rstrip("/") + "/"
    log.info("unpacking %s from %s", inner, archive)
    try:
        with tarfile.open(archive) as tar:
            for m in tar:
                name = m.name[2:] if m.name.startswith("./") else m.name
                if name.startswith(prefix) and (m.isfile() or m.isdir()):
                    m.name = name
                    tar.extract(m, part, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        shutil.rmtree(part, ignore_errors=True)
        raise RuntimeError(f"{archive}: cannot unpack ({exc}); delete it and run again to download it anew") from None
    if not os.path.isdir(os.path.join(part, inner)):
        shutil.rmtree(part, ignore_errors=True)
        raise FileNotFoundError(f"{archive}: no {inner}/ inside; delete it and run again to download it anew")
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    os.replace(os.path.join(part, inner), target)
    shutil.rmtree(part, ignore_errors=True)
    return target


def read_table(path: str, fields: int = 2, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a Kaldi ``key value`` file (whitespace between key and value). With ``fields=2``
    the value is one token; with ``fields=0`` it is the rest of the line. Malformed and
    duplicate lines are reported with file:line and skipped. A missing file gives ``{}``."""
    table: dict[str, str] = {}
    if not os.path.isfile(path):
        return table
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split(None, 1)
            key, value = parts[0], parts[1].strip() if len(parts) > 1 else ""
            if fields == 2 and len(value.split()) != 1:
                log.warning("%s:%d: skipping malformed line (expected 'key value'): %r", path, lineno, line.rstrip("\n"))
                continue
            if not value and not allow_empty_value:
                log.warning("%s:%d: skipping malformed line (no value after the key): %r", path, lineno, line.rstrip("\n"))
                continue
            if key in table:
                log.warning("%s:%d: skipping duplicate key %r (kept the first)", path, lineno, key)
                continue
            table[key] = value
    return table


def audio_problem(path: str) -> tuple[Optional[str], float]:
    """(why the file is unusable, or None; its duration in seconds)."""
    if not os.path.isfile(path):
        return "audio file not found", 0.0
    try:
        info = sf.info(path)
    except Exception as exc:  # soundfile raises several kinds for broken files
        return f"unreadable audio ({exc})", 0.0
    if info.frames <= 0 or info.samplerate <= 0:
        return "audio has no samples", 0.0
    return None, info.frames / info.samplerate
