"""LibriSpeech: read English audiobooks (LibriVox), 16 kHz FLAC, CC BY 4.0 (Panayotov et al.,
ICASSP 2015). OpenSLR 12 (about 1,000 h: train-clean-100, train-clean-360, train-other-500,
dev-clean, dev-other, test-clean, test-other) and Mini LibriSpeech, OpenSLR 31 (train-clean-5,
about 5 h, and dev-clean-2, about 2 h). Each archive unpacks to
``LibriSpeech/<part>/<speaker>/<chapter>/``: ``<speaker>-<chapter>.trans.txt`` (``<utterance
id> TRANSCRIPT`` lines, upper case) and ``<utterance id>.flac``.

:func:`prepare` writes ``<part>.jsonl`` for every part prepared, ``train.jsonl`` (every train
part prepared, together) and ``dev.jsonl`` (``dev-clean``, or ``dev-clean-2`` for mini: what
picks ``best.pt``). Text is the transcript lower-cased; entries carry ``speaker`` and ``id``.
:func:`prepare_lm` fetches the official language models (OpenSLR 11, upper case) and writes a
lower-cased copy that beam search can use directly.
"""

from __future__ import annotations

import gzip
import logging
import os
from typing import Iterable, Optional, Sequence

from asr.corpora import audio_problem, find_corpus, unpack
from asr.corpora.download import download
from asr.manifest import Entry, write_manifest

log = logging.getLogger(__name__)

NAME = "librispeech"
BASE_URL = "https://www.openslr.org/resources"

# part: (OpenSLR resource, sha256 of the archive or None). The SHA-256 sums are the ones
# torchaudio's LibriSpeech loader pins; OpenSLR itself publishes none for Mini LibriSpeech.
PARTS = {
    "train-clean-5": (31, None),
    "dev-clean-2": (31, None),
    "train-clean-100": (12, "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2"),
    "train-clean-360": (12, "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf"),
    "train-other-500": (12, "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2"),
    "dev-clean": (12, "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3"),
    "dev-other": (12, "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365"),
    "test-clean": (12, "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23"),
    "test-other": (12, "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29"),
}
EVAL_PARTS = ("dev-clean", "dev-other", "test-clean", "test-other")
SUBSETS = {
    "mini": ("train-clean-5", "dev-clean-2"),
    "100": ("train-clean-100",) + EVAL_PARTS,
    "960": ("train-clean-100", "train-clean-360", "train-other-500") + EVAL_PARTS,
}
# OpenSLR 11: ARPA models on LibriSpeech's normalized book texts (upper case words).
LMS = ("3-gram.pruned.3e-7", "3-gram.pruned.1e-7", "3-gram", "4-gram")
DEFAULT_LMS = ("3-gram.pruned.1e-7",)


def url(part: str) -> str:
    return f"{BASE_URL}/{PARTS[part][0]}/{part}.tar.gz"


def parts_of(subset: Optional[str] = None, parts: Optional[Sequence[str]] = None) -> list[str]:
    """The parts named by ``parts`` or by ``subset`` (mini, 100, 960; default mini), checked."""
    if parts and subset:
        raise ValueError("give either --subset or --parts, not both")
    if parts:
        unknown = [p for p in parts if p not in PARTS]
        if unknown:
            raise ValueError(f"unknown LibriSpeech part(s) {unknown} (known: {', '.join(PARTS)})")
        return list(dict.fromkeys(parts))
    subset = subset or "mini"
    if subset not in SUBSETS:
        raise ValueError(f"unknown LibriSpeech subset {subset!r} (known: {', '.join(SUBSETS)})")
    return list(SUBSETS[subset])


def find_part(part: str, corpus_dir: Optional[str]) -> Optional[str]:
    """The folder of ``part``: ``LibriSpeech/<part>`` under the usual places (see
    :func:`asr.corpora.find_corpus`), or ``<part>`` right inside ``corpus_dir`` (a
    ``LibriSpeech/`` folder itself)."""
    root = find_corpus(NAME, corpus_dir, os.path.join("LibriSpeech", part))
    if root is not None:
        return os.path.join(root, "LibriSpeech", part)
    if corpus_dir and os.path.isdir(os.path.join(corpus_dir, part)):
        return os.path.join(corpus_dir, part)
    return None


def fetch(part: str, dest_root: str = os.path.join("data", "corpora")) -> str:
    """Download one part and unpack it as ``dest_root/librispeech/LibriSpeech/<part>``; the
    archive is deleted once unpacked (the full corpus would otherwise take twice the disk)."""
    home = os.path.join(dest_root, NAME)
    archive = download(url(part), os.path.join(home, f"{part}.tar.gz"), sha256=PARTS[part][1])
    target = unpack(archive, f"LibriSpeech/{part}", os.path.join(home, "LibriSpeech", part))
    os.remove(archive)
    return target


def read_part(part_dir: str, progress: bool = True) -> tuple[list[Entry], int]:
    """Entries of one part in (speaker, chapter, utterance) order, and how many utterances were
    skipped (each reported with its reason)."""
    from tqdm import tqdm

    part = os.path.basename(os.path.normpath(part_dir))
    todo: list[tuple[str, str, str, str]] = []  # (utterance id, text, audio path, speaker)
    skipped = 0
    for spk in sorted(os.listdir(part_dir)):
        spk_dir = os.path.join(part_dir, spk)
        if not os.path.isdir(spk_dir):
            continue
        for chapter in sorted(os.listdir(spk_dir)):
            ch_dir = os.path.join(spk_dir, chapter)
            if not os.path.isdir(ch_dir):
                continue
            trans = os.path.join(ch_dir, f"{spk}-{chapter}.trans.txt")
            if not os.path.isfile(trans):
                log.warning("%s: no %s; skipping chapter %s/%s", part, os.path.basename(trans), spk, chapter)
                continue
            with open(trans, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    utt, _, text = line.strip().partition(" ")
                    text = " ".join(text.split()).lower()
                    if not utt.startswith(f"{spk}-{chapter}-"):
                        why = f"utterance id {utt!r} does not belong to chapter {spk}-{chapter}"
                    elif not text:
                        why = "empty transcript"
                    else:
                        todo.append((utt, text, os.path.abspath(os.path.join(ch_dir, utt + ".flac")), spk))
                        continue
                    log.warning("%s:%d: skipping: %s", trans, lineno, why)
                    skipped += 1
    entries = []
    for utt, text, path, spk in tqdm(todo, desc=f"{part} durations", disable=None if progress else True, unit="utt"):
        why, duration = audio_problem(path)
        if why:
            log.warning("%s: skipping utterance %s: %s: %s", part, utt, why, path)
            skipped += 1
            continue
        entries.append(Entry(path, duration, text, spk, {"id": utt}))
    return entries, skipped


def prepare(
    corpus_dir: Optional[str],
    out_dir: str,
    subset: Optional[str] = None,
    parts: Optional[Sequence[str]] = None,
    allow_download: bool = True,
    progress: bool = True,
) -> dict[str, int]:
    """Write ``<part>.jsonl`` for each part, plus ``train.jsonl`` and ``dev.jsonl`` (see the
    module doc) to ``out_dir``. Parts not found locally are downloaded unless ``corpus_dir`` is
    given or ``allow_download`` is False. Returns the counts per manifest and ``skipped``."""
    wanted = parts_of(subset, parts)
    found = {p: find_part(p, corpus_dir) for p in wanted}
    missing = [p for p, d in found.items() if d is None]
    if missing and (corpus_dir or not allow_download):
        where = corpus_dir or f"$ASR_CORPORA/{NAME} or data/corpora/{NAME}"
        raise FileNotFoundError(
            f"LibriSpeech part(s) {', '.join(missing)} not found (looked for LibriSpeech/<part>/ in {where})"
        )
    for p in missing:
        log.info("LibriSpeech %s not found locally: downloading %s", p, url(p))
        found[p] = fetch(p)
    counts: dict[str, int] = {}
    train: list[Entry] = []
    dev: Optional[list[Entry]] = None
    skipped = 0
    for p in wanted:
        entries, n = read_part(found[p], progress)
        skipped += n
        if not entries:
            raise FileNotFoundError(f"{found[p]}: no usable LibriSpeech utterances (see the warnings above)")
        counts[p] = write_manifest(os.path.join(out_dir, f"{p}.jsonl"), entries)
        log.info("%s: %d utterances, %d speakers, %.2f h", p, len(entries), len({e.speaker for e in entries}),
                 sum(e.duration for e in entries) / 3600)
        if p.startswith("train-"):
            train += entries
        elif p in ("dev-clean", "dev-clean-2") and dev is None:
            dev = entries
    if train:
        counts["train"] = write_manifest(os.path.join(out_dir, "train.jsonl"), train)
    if dev is not None:
        counts["dev"] = write_manifest(os.path.join(out_dir, "dev.jsonl"), dev)
    if skipped:
        log.warning("LibriSpeech: skipped %d utterance(s)", skipped)
    counts["skipped"] = skipped
    return counts


def lm_url(name: str) -> str:
    return f"{BASE_URL}/11/{name}.arpa.gz"


def prepare_lm(
    corpus_dir: Optional[str], out_dir: str, names: Iterable[str] = DEFAULT_LMS, allow_download: bool = True
) -> dict[str, str]:
    """Fetch the official LibriSpeech ARPA models ``names`` (see :data:`LMS`) -- a local
    ``<name>.arpa.gz`` found like the corpus, else downloaded into ``data/corpora/librispeech``
    -- and write ``out_dir/<name>.lower.arpa.gz``: the same model with lower-case words, as our
    transcripts are. Returns ``{name: path written}``."""
    out: dict[str, str] = {}
    for name in names:
        if name not in LMS:
            raise ValueError(f"unknown LibriSpeech LM {name!r} (known: {', '.join(LMS)})")
        fname = f"{name}.arpa.gz"
        root = find_corpus(NAME, corpus_dir, fname)
        if root is not None:
            src = os.path.join(root, fname)
        elif corpus_dir or not allow_download:
            where = corpus_dir or f"$ASR_CORPORA/{NAME} or data/corpora/{NAME}"
            raise FileNotFoundError(f"LibriSpeech LM {fname} not found (looked in {where})")
        else:
            log.info("LibriSpeech LM %s not found locally: downloading %s", fname, lm_url(name))
            src = download(lm_url(name), os.path.join("data", "corpora", NAME, fname))
        dest = os.path.join(out_dir, f"{name}.lower.arpa.gz")
        if not os.path.isfile(dest):
            lowercase_arpa(src, dest)
        out[name] = dest
    return out


def lowercase_arpa(src: str, dest: str) -> None:
    """Copy a (gzipped) ARPA file with every word lower-cased (written to ``dest`` gzipped,
    atomically). LibriSpeech's vocabulary is upper case only, so no two words merge."""
    from asr.decoding.lm import open_text

    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    tmp = dest + ".tmp"
    log.info("writing %s (lower-cased copy of %s)", dest, src)
    try:
        with open_text(src) as fin, gzip.open(tmp, "wt", encoding="utf-8", compresslevel=1) as fout:
            for line in fin:
                fout.write(line.lower())
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise RuntimeError(f"{src}: cannot read ({exc}); delete it and run again to download it anew") from None
    os.replace(tmp, dest)
