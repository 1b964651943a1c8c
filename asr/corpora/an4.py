"""AN4 (CMU "census" database, 1991): spelled letters, digits, names and dates, 16 kHz,
close-talking microphone; 948 train and 130 test utterances (different speakers), under an
hour. The usual archive is ``an4_raw.bigendian.tar.gz``: headerless 16-bit big-endian PCM.

Inside its ``an4/`` folder: ``etc/an4_{train,test}.transcription`` (one utterance a line,
``<s> P I T T S B U R G H </s> (cen5-fash-b)``, the id being ``<utterance>-<speaker>-<session>``),
``etc/an4_{train,test}.fileids`` (each id's audio path relative to ``wav/`` without
extension) and ``wav/an4_clstk/<speaker>/<id>.raw`` (train), ``wav/an4test_clstk/...`` (test).

:func:`prepare` converts each raw file once to a WAV under ``<out>/wav/<split>/`` (soundfile
cannot guess a headerless format) and writes ``train.jsonl`` (the official train split less
the dev speakers), ``dev.jsonl`` (every 10th train speaker in sorted order, about 10%) and
``test.jsonl``. Text is the transcript without ``<s>``/``</s>``, lower-cased; entries carry
``speaker`` and ``id``.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Optional

import soundfile as sf

from asr.corpora import audio_problem, find_corpus, unpack
from asr.corpora.download import download
from asr.manifest import Entry, write_manifest

log = logging.getLogger(__name__)

NAME = "an4"
URL = "http://www.speech.cs.cmu.edu/databases/an4/an4_raw.bigendian.tar.gz"
SAMPLE_RATE = 16000
SPLITS = {"train": "an4_clstk", "test": "an4test_clstk"}  # split: folder under wav/
DEV_EVERY = 10  # dev = train speakers at sorted positions 0, 10, 20, ...
LINE = re.compile(r"^(.*)\(([^()\s]+)\)\s*$")


def fetch(dest_root: str = os.path.join("data", "corpora")) -> str:
    """Download the raw big-endian AN4 archive and unpack its ``an4/`` as ``dest_root/an4``."""
    target = os.path.join(dest_root, NAME)
    if os.path.exists(target):
        raise FileExistsError(f"{target} exists but has no etc/an4_train.transcription: remove it, or pass --corpus-dir DIR")
    archive = download(URL, os.path.join(dest_root, "an4_raw.bigendian.tar.gz"))
    return unpack(archive, NAME, target)


def parse_transcription(path: str) -> tuple[list[tuple[str, str]], int]:
    """``[(id, text)]`` from an ``an4_*.transcription`` file, and how many lines were skipped
    (reported with file:line: no id, or an empty transcript)."""
    out, skipped = [], 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            m = LINE.match(line.strip())
            if not m:
                log.warning("%s:%d: skipping line without '(id)' at the end: %r", path, lineno, line.rstrip("\n"))
                skipped += 1
                continue
            words = [w for w in m.group(1).split() if w.lower() not in ("<s>", "</s>", "<sil>")]
            if not words:
                log.warning("%s:%d: skipping %s: empty transcript", path, lineno, m.group(2))
                skipped += 1
                continue
            out.append((m.group(2), " ".join(words).lower()))
    return out, skipped


def _fileids(path: str) -> dict[str, str]:
    """``{id: path relative to wav/ without extension}`` from an ``an4_*.fileids`` file."""
    table: dict[str, str] = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rel = line.strip()
                    table[os.path.basename(rel)] = rel
    return table


def convert(raw: str, wav: str) -> tuple[Optional[str], float]:
    """Convert one headerless big-endian 16-bit file to WAV (skipped when ``wav`` is already a
    readable file). Returns (why it failed, or None; duration in seconds)."""
    why, duration = audio_problem(wav)
    if why is None:
        return None, duration
    if not os.path.isfile(raw):
        return "audio file not found", 0.0
    try:
        samples, _ = sf.read(raw, samplerate=SAMPLE_RATE, channels=1, format="RAW", subtype="PCM_16",
                             endian="BIG", dtype="int16")
    except Exception as exc:  # soundfile raises several kinds for broken files
        return f"unreadable audio ({exc})", 0.0
    if len(samples) == 0:
        return "audio has no samples", 0.0
    os.makedirs(os.path.dirname(wav), exist_ok=True)
    tmp = wav + ".tmp"
    sf.write(tmp, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    os.replace(tmp, wav)
    return None, len(samples) / SAMPLE_RATE


def _read_split(root: str, split: str, out_dir: str, progress: bool) -> tuple[list[Entry], int]:
    from tqdm import tqdm

    etc = os.path.join(root, "etc")
    trans = os.path.join(etc, f"an4_{split}.transcription")
    if not os.path.isfile(trans):
        raise FileNotFoundError(f"{root}: no etc/{os.path.basename(trans)}")
    utts, skipped = parse_transcription(trans)
    fileids = _fileids(os.path.join(etc, f"an4_{split}.fileids"))
    entries = []
    for utt, text in tqdm(utts, desc=f"an4 {split}: converting", disable=None if progress else True, unit="utt"):
        parts = utt.split("-")
        speaker = parts[1] if len(parts) == 3 else None
        rel = fileids.get(utt) or (f"{SPLITS[split]}/{speaker}/{utt}" if speaker else None)
        if speaker is None and rel is not None and "/" in rel:
            speaker = rel.split("/")[-2]  # the folder the fileids list puts it in
        if rel is None:
            why = "id is not <utterance>-<speaker>-<session> and not in the fileids list"
        else:
            raw = os.path.join(root, "wav", rel + ".raw")
            wav = os.path.abspath(os.path.join(out_dir, "wav", split, utt + ".wav"))
            why, duration = convert(raw, wav)
            if why:
                why = f"{why}: {raw}"
        if why:
            log.warning("an4/%s: skipping utterance %s: %s", split, utt, why)
            skipped += 1
            continue
        entries.append(Entry(wav, duration, text, speaker, {"id": utt}))
    return entries, skipped


def prepare(corpus_dir: Optional[str], out_dir: str, allow_download: bool = True, progress: bool = True) -> dict[str, int]:
    """Convert the audio to WAV under ``out_dir/wav`` and write ``train.jsonl``, ``dev.jsonl``
    and ``test.jsonl`` to ``out_dir``; returns the counts and ``skipped``."""
    root = find_corpus(NAME, corpus_dir, os.path.join("etc", "an4_train.transcription"))
    if root is None:
        if corpus_dir or not allow_download:
            where = corpus_dir or f"$ASR_CORPORA/{NAME} or data/corpora/{NAME}"
            raise FileNotFoundError(f"AN4 not found (looked for etc/an4_train.transcription in {where})")
        log.info("AN4 not found locally: downloading %s", URL)
        root = fetch()
    train, skipped = _read_split(root, "train", out_dir, progress)
    test, n = _read_split(root, "test", out_dir, progress)
    skipped += n
    if not train:
        raise FileNotFoundError(f"{root}: no usable AN4 train utterances (see the warnings above)")
    dev_speakers = set(sorted({e.speaker for e in train if e.speaker})[::DEV_EVERY])
    splits = {
        "train": [e for e in train if e.speaker not in dev_speakers],
        "dev": [e for e in train if e.speaker in dev_speakers],
        "test": test,
    }
    counts = {k: write_manifest(os.path.join(out_dir, f"{k}.jsonl"), v) for k, v in splits.items()}
    for k, v in splits.items():
        log.info("an4 %s: %d utterances, %d speakers, %.1f min", k, len(v), len({e.speaker for e in v}),
                 sum(e.duration for e in v) / 60)
    if skipped:
        log.warning("AN4: skipped %d utterance(s)", skipped)
    counts["skipped"] = skipped
    return counts
