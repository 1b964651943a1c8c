"""Write a corpus in LibriSpeech's layout and of train-clean-100's size from the audio at hand.

    python tools/make_librispeech_like.py --source data/speechocean762/train.jsonl \\
        --source data/speechocean762/dev.jsonl --source data/fsdd/train.jsonl --out data/ls_like

No corpus of that size can be downloaded here, so this one is made: sentence-length utterances
joined from short ones (each source speaker's manifest utterances, resampled to 16 kHz with
libsoxr, in random order, with pauses of low white noise between them, transcripts joined and
upper-cased), under ``OUT/LibriSpeech/<part>/<speaker>/<chapter>/``: ``<speaker>-<chapter>-NNNN.flac``
and ``<speaker>-<chapter>.trans.txt``, as the OpenSLR 12 archives unpack. The training part
(``--part``, default ``train-clean-100``) has train-clean-100's counts by default (``--speakers``
251, ``--chapters`` 585, ``--utterances`` 28,539, ``--hours`` 100.6); durations are drawn from a
mixture shaped like LibriSpeech's (most 10-20 s, a tail of short ones, a few up to
``--max-seconds``) and scaled to ``--hours``. Each made speaker reads with one source speaker's
voice (a source speaker lends its voice to several made speakers when there are fewer of them).

Rendering 100 h takes long, so at most ``--distinct`` training files are rendered (spread over
the speakers, at their durations' quantiles); the speaker's other utterances are hard links to
its rendered files of the nearest duration (a running correction keeps the total at
``--hours``), each with its transcript: the layout, the counts and the durations are
LibriSpeech's, the audio repeats. ``--eval-parts`` (default the four dev/test parts, so that
``asr prepare librispeech --subset 100`` finds them) are small (``--eval-speakers`` speakers,
``--eval-utterances`` utterances each), every file rendered, read by ``--held-out`` source
speakers that the training part never hears.

Also written: ``OUT/LibriSpeech/SPEAKERS.TXT`` (LibriSpeech's columns; NAME says whose voice)
and ``OUT/LibriSpeech/MADE.json`` (the settings, the sources, the counts). Deterministic for
``--seed`` whatever ``--jobs``. Prints what it wrote: files, distinct files, hours, seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from asr.audio import load_audio  # noqa: E402
from asr.manifest import read_manifest  # noqa: E402
from asr.text import normalize_text  # noqa: E402

RATE = 16000
EVAL_PARTS = ("dev-clean", "dev-other", "test-clean", "test-other")


@dataclass
class Source:
    """One source speaker: its utterances (audio path, normalized text, seconds)."""

    key: str  # "<the manifest's folder>:<speaker>"
    gender: str
    pieces: list[tuple[str, str, float]] = field(default_factory=list)


@dataclass
class Utterance:
    uid: str  # SPEAKER-CHAPTER-NNNN
    path: str
    target: float  # seconds wanted
    render: bool
    seed: int
    duration: float = 0.0
    text: str = ""


@dataclass
class Speaker:
    sid: int
    source: int  # index into the sources
    part: str
    utterances: list[Utterance] = field(default_factory=list)


def read_sources(manifests: list[str], max_piece_s: float) -> list[Source]:
    """Source speakers of ``manifests``, sorted by key (``<the manifest's folder>:<speaker>``:
    a corpus's train/dev/test manifests sit in one folder, so a speaker in two of them is one
    speaker); entries without text (after normalization) or longer than ``max_piece_s`` are
    left out."""
    by_key: dict[str, Source] = {}
    for m in manifests:
        parent = os.path.basename(os.path.dirname(os.path.abspath(m)))
        for e in read_manifest(m):
            text = normalize_text(e.text)
            if not text or e.duration > max_piece_s or e.offset is not None:
                continue
            key = f"{parent}:{e.speaker or 'unknown'}"
            src = by_key.setdefault(key, Source(key, str(e.extra.get("gender", "")).upper()[:1]))
            src.pieces.append((e.audio_filepath, text, float(e.duration)))
    return [by_key[k] for k in sorted(by_key)]


def draw_durations(rng: np.random.Generator, n: int, max_s: float) -> np.ndarray:
    """``n`` utterance durations shaped like LibriSpeech's: about 78% near 15 s, 20% short
    (1.5-12 s), 2% long (17 s to ``max_s``)."""
    kind = rng.random(n)
    d = np.clip(rng.normal(14.8, 1.6, n), 10.0, max_s)
    short, long_ = kind < 0.20, kind > 0.98
    d[short] = rng.uniform(1.5, 12.0, short.sum())
    d[long_] = rng.uniform(min(17.0, max_s), max_s, long_.sum())
    return d


def split_counts(rng: np.random.Generator, total: int, parts: int, minimum: int = 1, spread: float = 0.3) -> list[int]:
    """``total`` split into ``parts`` counts of at least ``minimum``, each within about
    +-``spread`` of the mean."""
    if total < parts * minimum:
        raise ValueError(f"cannot split {total} into {parts} parts of at least {minimum}")
    w = rng.uniform(1 - spread, 1 + spread, parts)
    extra = total - parts * minimum
    counts = np.floor(w / w.sum() * extra).astype(int)
    for i in rng.permutation(parts)[: extra - counts.sum()]:
        counts[i] += 1
    return (counts + minimum).tolist()


def plan_part(rng: np.random.Generator, part: str, root: str, sids: list[int], sources: list[int], n_chapters: int,
              n_utts: int, durations: np.ndarray, distinct: int, chapter_ids: set[int], seed_base: int) -> list[Speaker]:
    """The speakers, chapters and utterances of one part; ``distinct`` of the utterances are
    marked for rendering (all when ``distinct >= n_utts``), spread over the speakers in
    proportion to their utterances and over each speaker's durations."""
    per_spk = split_counts(rng, n_utts, len(sids), minimum=1)
    ch_per_spk = split_counts(rng, n_chapters, len(sids), minimum=1, spread=0.0) if n_chapters > len(sids) \
        else [1] * len(sids)
    render_per_spk = [n for n in per_spk] if distinct >= n_utts else \
        [max(1, min(n, int(round(distinct * n / n_utts)))) for n in per_spk]
    while sum(render_per_spk) > min(distinct, n_utts):  # rounding up: take the excess from the largest
        render_per_spk[int(np.argmax(render_per_spk))] -= 1
    speakers, k = [], 0
    for sid, src, n, n_ch, n_render in zip(sids, sources, per_spk, ch_per_spk, render_per_spk):
        spk = Speaker(sid, src, part)
        n_ch = min(n_ch, n)
        chapters = []
        while len(chapters) < n_ch:
            c = int(rng.integers(1000, 1000000))
            if c not in chapter_ids:
                chapter_ids.add(c)
                chapters.append(c)
        per_ch = split_counts(rng, n, n_ch, minimum=1)
        d = durations[k: k + n]
        # the rendered ones: evenly spaced quantiles of this speaker's durations
        rank = np.argsort(d, kind="stable")
        at = np.round(np.linspace(0, n - 1, n_render)).astype(int) if n_render > 1 else np.array([n // 2])
        render = set(rank[at].tolist())
        j = 0
        for ch, m in zip(sorted(chapters), per_ch):
            for i in range(m):
                uid = f"{sid}-{ch}-{i:04d}"
                path = os.path.join(root, part, str(sid), str(ch), uid + ".flac")
                spk.utterances.append(Utterance(uid, path, float(d[j]), j in render, seed_base + k + j))
                j += 1
        k += n
        speakers.append(spk)
    return speakers


def render_source(source: Source, jobs: list[tuple[str, float, int]], pause_s: tuple[float, float],
                  noise_db: float) -> list[tuple[str, float, str]]:
    """Render ``jobs`` ((path, target seconds, seed)) from one source speaker's pieces: pieces in
    a random order, each taken while the utterance stays within its target (at least one),
    with pauses of low noise between them and at the edges. Returns (path, seconds, text)."""
    cache: dict[int, np.ndarray] = {}
    noise = 10 ** (noise_db / 20)
    out = []
    for path, target, seed in jobs:
        rng = np.random.default_rng(seed)
        lead, tail = rng.uniform(0.1, 0.4, 2)
        total, chosen = lead + tail, []
        for _ in range(3):  # up to three passes over a small pool
            for i in rng.permutation(len(source.pieces)).tolist():
                pause = rng.uniform(*pause_s) if chosen else 0.0
                if chosen and total + pause + source.pieces[i][2] > target:
                    continue
                chosen.append((i, pause))
                total += pause + source.pieces[i][2]
            if target - total < 1.0:
                break
        pieces = []
        n_lead = int(lead * RATE)
        pieces.append(noise * rng.standard_normal(n_lead))
        for i, pause in chosen:
            if pause:
                pieces.append(noise * rng.standard_normal(int(pause * RATE)))
            if i not in cache:
                cache[i] = load_audio(source.pieces[i][0], RATE)
            pieces.append(cache[i])
        pieces.append(noise * rng.standard_normal(int(tail * RATE)))
        x = np.concatenate(pieces).astype(np.float32)
        peak = float(np.abs(x).max())
        if peak > 0.99:
            x *= 0.99 / peak
        os.makedirs(os.path.dirname(path), exist_ok=True)
        sf.write(path, x, RATE, format="FLAC", subtype="PCM_16")
        out.append((path, x.size / RATE, " ".join(source.pieces[i][1] for i, _ in chosen).upper()))
    return out


def _render(task):
    return render_source(*task)


def link_rest(spk: Speaker) -> float:
    """Hard-link each of ``spk``'s utterances not rendered to its rendered one of the nearest
    duration to the target plus the running shortfall; returns the shortfall left (seconds)."""
    made = sorted((u for u in spk.utterances if u.render), key=lambda u: u.duration)
    lengths = np.array([u.duration for u in made])
    short = 0.0
    for u in spk.utterances:
        if u.render:
            short += u.target - u.duration
            continue
        j = int(np.abs(lengths - (u.target + short)).argmin())
        os.makedirs(os.path.dirname(u.path), exist_ok=True)
        if os.path.exists(u.path):
            os.remove(u.path)
        os.link(made[j].path, u.path)
        u.duration, u.text = made[j].duration, made[j].text
        short += u.target - u.duration
    return short


def write_transcripts(spk: Speaker) -> None:
    by_dir: dict[str, list[Utterance]] = {}
    for u in spk.utterances:
        by_dir.setdefault(os.path.dirname(u.path), []).append(u)
    for d, utts in by_dir.items():
        sid, ch = utts[0].uid.split("-")[:2]
        with open(os.path.join(d, f"{sid}-{ch}.trans.txt"), "w", encoding="utf-8") as f:
            f.writelines(f"{u.uid} {u.text}\n" for u in utts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", action="append", required=True, metavar="MANIFEST",
                   help="a manifest of short utterances with speakers (repeatable); 16 kHz or resampled to it")
    p.add_argument("--out", required=True, help="folder to write LibriSpeech/ into")
    p.add_argument("--part", default="train-clean-100", help="the training part's name (default train-clean-100)")
    p.add_argument("--speakers", type=int, default=251, help="speakers of the training part (default 251)")
    p.add_argument("--chapters", type=int, default=585, help="chapters of the training part (default 585)")
    p.add_argument("--utterances", type=int, default=28539, help="utterances of the training part (default 28,539)")
    p.add_argument("--hours", type=float, default=100.6, help="hours of the training part (default 100.6)")
    p.add_argument("--max-seconds", type=float, default=35.0, help="longest utterance (default 35)")
    p.add_argument("--distinct", type=int, default=3000,
                   help="training files rendered, at most (each speaker's share is rounded: a few fewer may be); "
                        "the others are hard links to them (default 3000)")
    p.add_argument("--eval-parts", default=",".join(EVAL_PARTS),
                   help="small held-out parts, comma-separated ('' for none; default the four dev/test parts)")
    p.add_argument("--eval-speakers", type=int, default=4, help="speakers per held-out part (default 4)")
    p.add_argument("--eval-utterances", type=int, default=100, help="utterances per held-out part (default 100)")
    p.add_argument("--held-out", type=int, default=12,
                   help="source speakers kept for the held-out parts, never in training (default 12)")
    p.add_argument("--pause-min", type=float, default=0.15, help="shortest pause between joined utterances, s")
    p.add_argument("--pause-max", type=float, default=0.6, help="longest pause between joined utterances, s")
    p.add_argument("--noise-db", type=float, default=-60.0, help="level of the noise in the pauses, dBFS (RMS)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="rendering processes (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    from tqdm import tqdm

    t0 = time.perf_counter()
    eval_parts = [x for x in args.eval_parts.split(",") if x]
    if args.part in eval_parts:
        raise SystemExit(f"--part {args.part} is also in --eval-parts")
    sources = read_sources(args.source, args.max_seconds - 0.8)
    if not sources:
        raise SystemExit("no usable utterances in the --source manifests")
    held = args.held_out if eval_parts else 0
    if held < (1 if eval_parts else 0) or held >= len(sources):
        raise SystemExit(f"--held-out must be in [1, {len(sources) - 1}] with held-out parts, got {args.held_out} "
                         f"({len(sources)} source speakers)")
    if args.speakers < 1 or args.utterances < args.speakers or args.chapters < args.speakers:
        raise SystemExit("need --utterances >= --chapters >= --speakers >= 1")
    root = os.path.join(args.out, "LibriSpeech")
    there = [x for x in [args.part] + eval_parts if os.path.exists(os.path.join(root, x))]
    if there:  # rewriting a file in place would rewrite every hard link to it
        raise SystemExit(f"{root}: {', '.join(there)} exist(s) already: remove them first")
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(sources)).tolist()
    eval_src, train_src = order[:held], order[held:]
    n_eval_spk = args.eval_speakers * len(eval_parts)
    ids = rng.choice(np.arange(10, 10000), size=args.speakers + n_eval_spk, replace=False).tolist()
    chapter_ids: set[int] = set()

    durations = draw_durations(rng, args.utterances, args.max_seconds)
    durations = np.clip(durations * args.hours * 3600 / durations.sum(), 1.0, args.max_seconds)
    train_ids = sorted(ids[: args.speakers])
    voices = [train_src[i % len(train_src)] for i in rng.permutation(args.speakers)]
    speakers = plan_part(rng, args.part, root, train_ids, voices, args.chapters, args.utterances, durations,
                         args.distinct, chapter_ids, seed_base=args.seed * 10**7)
    for k, part in enumerate(eval_parts):
        mine = eval_src[k::len(eval_parts)] or [eval_src[k % len(eval_src)]]
        sids = sorted(ids[args.speakers + k * args.eval_speakers: args.speakers + (k + 1) * args.eval_speakers])
        d = draw_durations(rng, args.eval_utterances, args.max_seconds)
        d = np.clip(d * args.hours * 3600 / args.utterances / d.mean(), 1.0, args.max_seconds)
        speakers += plan_part(rng, part, root, sids, [mine[i % len(mine)] for i in range(len(sids))], len(sids),
                              args.eval_utterances, d, args.eval_utterances, chapter_ids,
                              seed_base=args.seed * 10**7 + (k + 1) * 10**6)

    # render, one task per source speaker (its made speakers' rendered utterances)
    by_path = {u.path: u for s in speakers for u in s.utterances}
    tasks: dict[int, list] = {}
    for s in speakers:
        tasks.setdefault(s.source, []).extend((u.path, u.target, u.seed) for u in s.utterances if u.render)
    todo = [(sources[i], jobs, (args.pause_min, args.pause_max), args.noise_db) for i, jobs in sorted(tasks.items())]
    n_render = sum(len(t[1]) for t in todo)
    bar = tqdm(total=n_render, desc="rendering", unit="file", disable=True if args.no_progress else None)
    with ProcessPoolExecutor(args.jobs) if args.jobs > 1 else _Serial() as pool:
        for done in pool.map(_render, todo):
            for path, seconds, text in done:
                by_path[path].duration, by_path[path].text = seconds, text
            bar.update(len(done))
    bar.close()
    for s in tqdm(speakers, desc="linking", unit="speaker", disable=True if args.no_progress else None):
        link_rest(s)
        write_transcripts(s)

    parts: dict[str, dict] = {}
    for s in speakers:
        c = parts.setdefault(s.part, {"speakers": 0, "chapters": set(), "files": 0, "distinct": 0, "hours": 0.0,
                                      "distinct_hours": 0.0, "longest_s": 0.0})
        c["speakers"] += 1
        for u in s.utterances:
            c["chapters"].add(u.uid.rsplit("-", 1)[0])
            c["files"] += 1
            c["distinct"] += u.render
            c["hours"] += u.duration / 3600
            c["distinct_hours"] += u.duration / 3600 if u.render else 0.0
            c["longest_s"] = max(c["longest_s"], u.duration)
    for c in parts.values():
        c["chapters"] = len(c["chapters"])
        c["hours"], c["distinct_hours"], c["longest_s"] = (round(c[k], 3) for k in ("hours", "distinct_hours", "longest_s"))
    with open(os.path.join(root, "SPEAKERS.TXT"), "w", encoding="utf-8") as f:
        f.write("; Made by tools/make_librispeech_like.py: NAME is the source speaker whose voice it is\n")
        f.write(";ID  |SEX| SUBSET           |MINUTES| NAME\n")
        for s in sorted(speakers, key=lambda s: s.sid):
            minutes = sum(u.duration for u in s.utterances) / 60
            sex = sources[s.source].gender if sources[s.source].gender in ("M", "F") else "M" if s.sid % 2 else "F"
            f.write(f"{s.sid:<5}| {sex} | {s.part:<17}| {minutes:5.2f} | {sources[s.source].key}\n")
    seconds = time.perf_counter() - t0
    info = {"made_by": "tools/make_librispeech_like.py", "sources": args.source,
            "source_speakers": len(sources), "held_out_sources": [sources[i].key for i in eval_src],
            "settings": {k: v for k, v in vars(args).items() if k not in ("source", "no_progress", "jobs")},
            "parts": parts, "files": sum(c["files"] for c in parts.values()),
            "distinct_files": sum(c["distinct"] for c in parts.values()),
            "hours": round(sum(c["hours"] for c in parts.values()), 3), "seconds": round(seconds, 1)}
    with open(os.path.join(root, "MADE.json"), "w") as f:
        json.dump(info, f, indent=1)
    for name, c in parts.items():
        print(f"{name}: {c['speakers']} speakers, {c['chapters']} chapters, {c['files']} files "
              f"({c['distinct']} distinct, {c['distinct_hours']:.2f} h), {c['hours']:.2f} h, longest {c['longest_s']:.1f} s")
    print(f"wrote {root}: {info['files']} files, {info['distinct_files']} distinct, {info['hours']:.2f} h, "
          f"in {seconds:.0f} s")
    return 0


class _Serial:
    """A stand-in for a process pool with one process: map in this one."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items):
        return map(fn, items)


if __name__ == "__main__":
    sys.exit(main())
