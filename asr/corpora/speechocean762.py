"""speechocean762: read English (short sentences, about 6 words) by 250 non-native speakers
whose first language is Mandarin, half children and half adults; 16 kHz mono; 5,000
utterances. OpenSLR 101 (CC BY 4.0), paper arXiv 2104.01378.

Kaldi layout: ``train/`` and ``test/`` (125 speakers, 2,500 utterances each) hold ``text``,
``wav.scp`` (paths relative to the corpus root, or absolute; WAV, or FLAC in recompressed
copies), ``utt2spk``, ``spk2age`` and ``spk2gender``; audio lies under ``WAVE/SPEAKERxxxx/``.

:func:`prepare` writes train (the official split less the dev speakers), dev (the 13 train
speakers of :data:`DEFAULT_DEV_SPEAKERS`, about 10%: 260 utterances; 6 children and 7 adults,
5 male and 8 female) and test (when ``test/`` is present), text lower-cased with whitespace
collapsed, entries with ``speaker``, ``age`` (int) and ``gender`` (``m``/``f``) where given;
and ``lexicon.txt``: the corpus lexicon (CMU phones with stress) restricted to train words, for
``data.aux_lexicon`` (dev and test words left out, so nothing about them reaches training).
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
from typing import Iterable, Optional

from asr.corpora import audio_problem as _audio_problem
from asr.corpora import find_corpus
from asr.corpora import read_table as _read_table
from asr.corpora.download import download
from asr.fileio import atomic_open
from asr.manifest import Entry, write_manifest

log = logging.getLogger(__name__)

URL = "https://www.openslr.org/resources/101/speechocean762.tar.gz"
NAME = "speechocean762"
SPLITS = ("train", "test")

# Held-out dev speakers, chosen once from the real train/spk2age and train/spk2gender: the 125
# train speakers sorted by (age, speaker id), then every 10th starting with the 5th (positions
# 5, 15, ..., 125). That spreads them over the age range: ages 6, 7, 8, 9, 11, 15 (children,
# 3 m / 3 f) and 20, 20, 21, 22, 25, 28, 37 (adults, 2 m / 5 f).
DEFAULT_DEV_SPEAKERS = (
    "0048", "0145", "2034", "3423", "6121", "8585",  # children: 6 m, 7 f, 8 m, 9 f, 11 f, 15 m
    "0813", "4005", "2282", "2236", "9625", "9616", "1027",  # adults: 20 f, 20 f, 21 f, 22 m, 25 f, 28 f, 37 m
)


def fetch(dest_root: str = os.path.join("data", "corpora")) -> str:
    """Download OpenSLR 101 and unpack its ``speechocean762/`` folder into ``dest_root``
    (through a ``.part`` folder, so an interrupted unpack is never taken for the corpus)."""
    target = os.path.join(dest_root, NAME)
    if os.path.exists(target):
        raise FileExistsError(f"{target} exists but has no train/text: remove it, or pass --corpus-dir DIR")
    archive = download(URL, os.path.join(dest_root, "speechocean762.tar.gz"))
    part = target + ".part"
    shutil.rmtree(part, ignore_errors=True)
    os.makedirs(part)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.split("/")[0] == NAME and (m.isfile() or m.isdir())]
        tar.extractall(part, members=members, filter="data")
    if not os.path.isfile(os.path.join(part, NAME, "train", "text")):
        raise FileNotFoundError(f"{archive}: no {NAME}/train/text inside; delete it and retry")
    os.replace(os.path.join(part, NAME), target)
    shutil.rmtree(part, ignore_errors=True)
    return target


def _speaker_info(split_dir: str) -> dict[str, dict]:
    """``{speaker: {"age": int, "gender": str}}`` from spk2age and spk2gender, where present."""
    info: dict[str, dict] = {}
    path = os.path.join(split_dir, "spk2age")
    for spk, age in _read_table(path).items():
        if not age.isdigit():
            log.warning("%s: speaker %s: age %r is not a whole number; left out", path, spk, age)
            continue
        info.setdefault(spk, {})["age"] = int(age)
    for spk, gender in _read_table(os.path.join(split_dir, "spk2gender")).items():
        info.setdefault(spk, {})["gender"] = gender.lower()
    return info


def _read_split(root: str, split: str) -> tuple[list[Entry], int]:
    """Entries of one split in utterance order, and how many utterances were skipped."""
    d = os.path.join(root, split)
    texts = _read_table(os.path.join(d, "text"), fields=0, allow_empty_value=True)
    wavs = _read_table(os.path.join(d, "wav.scp"), fields=0)
    utt2spk = _read_table(os.path.join(d, "utt2spk"))
    speakers = _speaker_info(d)
    entries: list[Entry] = []
    skipped = 0
    for utt in sorted(set(texts) | set(wavs)):
        text = " ".join(texts.get(utt, "").split()).lower()
        wav = wavs.get(utt)
        speaker = utt2spk.get(utt)
        if utt not in texts:
            why = "not in text (no transcript)"
        elif not text:
            why = "empty transcript"
        elif wav is None:
            why = "not in wav.scp (no audio)"
        elif wav.endswith("|"):
            why = f"wav.scp gives a command ({wav!r}), not an audio file"
        elif speaker is None:
            why = "not in utt2spk (no speaker)"
        else:
            path = os.path.abspath(wav if os.path.isabs(wav) else os.path.join(root, wav))
            why, duration = _audio_problem(path)
            if why:
                why = f"{why}: {path}"
        if why:
            log.warning("%s/%s: skipping utterance %s: %s", NAME, split, utt, why)
            skipped += 1
            continue
        entries.append(Entry(path, duration, text, speaker, dict(speakers.get(speaker, {}))))
    return entries, skipped


def prepare(
    corpus_dir: Optional[str],
    out_dir: str,
    dev_speakers: Iterable[str] = DEFAULT_DEV_SPEAKERS,
    allow_download: bool = True,
) -> dict[str, int]:
    """Write ``train.jsonl``, ``dev.jsonl`` and (when the corpus has ``test/``) ``test.jsonl`` to
    ``out_dir``; returns the counts per split and ``skipped`` (utterances left out, each
    reported with its reason)."""
    root = find_corpus(NAME, corpus_dir, os.path.join("train", "text"))
    if root is None:
        if corpus_dir or not allow_download:
            where = corpus_dir or f"$ASR_CORPORA/{NAME} or data/corpora/{NAME}"
            raise FileNotFoundError(f"speechocean762 not found (looked for train/text in {where})")
        log.info("speechocean762 not found locally: downloading %s", URL)
        root = fetch()
    dev_speakers = {str(s) for s in dev_speakers}
    splits: dict[str, list[Entry]] = {"train": [], "dev": []}
    skipped = 0
    for split in SPLITS:
        if not os.path.isdir(os.path.join(root, split)):
            log.info("%s: no %s/ split; not writing %s.jsonl", root, split, split)
            continue
        entries, n = _read_split(root, split)
        skipped += n
        if split == "train":
            splits["train"] = [e for e in entries if e.speaker not in dev_speakers]
            splits["dev"] = [e for e in entries if e.speaker in dev_speakers]
            absent = sorted(dev_speakers - {e.speaker for e in entries})
            if absent:
                log.warning("%s: dev speaker(s) with no usable train utterance: %s", NAME, " ".join(absent))
        else:
            splits[split] = entries
    if not splits["train"]:
        raise FileNotFoundError(f"{root}: no usable speechocean762 train utterances (see the warnings above)")
    counts = {k: write_manifest(os.path.join(out_dir, f"{k}.jsonl"), v) for k, v in splits.items()}
    for k, v in splits.items():
        log.info("%s %s: %d utterances, %d speakers, %.2f h", NAME, k, len(v), len({e.speaker for e in v}),
                 sum(e.duration for e in v) / 3600)
    if skipped:
        log.warning("speechocean762: skipped %d utterance(s)", skipped)
    counts["skipped"] = skipped
    counts["lexicon_words"] = _write_lexicon(root, splits["train"], os.path.join(out_dir, "lexicon.txt"))
    return counts


def _write_lexicon(root: str, train: list[Entry], out: str) -> int:
    """Copy the lines of ``resource/lexicon.txt`` whose word occurs in ``train``; returns how many
    words (0, and nothing written, when the corpus has no lexicon)."""
    from asr.text import normalize_text

    src = os.path.join(root, "resource", "lexicon.txt")
    if not os.path.isfile(src):
        log.info("%s: no resource/lexicon.txt; not writing %s", root, out)
        return 0
    words = {w for e in train for w in normalize_text(e.text).split()}
    kept, covered = [], set()
    with open(src, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            word = normalize_text(parts[0]) if len(parts) >= 2 else None
            if word in words:
                kept.append(line if line.endswith("\n") else line + "\n")
                covered.add(word)
    with atomic_open(out) as f:  # never a truncated lexicon for training to read
        f.writelines(kept)
    if words - covered:
        log.warning("%s: %d train word(s) have no pronunciation in %s", NAME, len(words - covered), src)
    log.info("%s: lexicon of %d train words -> %s", NAME, len(covered), out)
    return len(covered)
