"""Build a long recording with known truth from a manifest of short utterances.

    python tools/make_long_recording.py --manifest data/fsdd/test.jsonl --hours 1 --out /tmp/long_fsdd_1h

The utterances are placed one after another in random order (each pass over the manifest
shuffled anew, until the length is reached), separated by pauses drawn uniformly from
``--pause-min`` to ``--pause-max`` seconds that hold low white noise (``--noise-db`` dBFS, not
digital silence). ``--events F``: a fraction F of the pauses of 1 s or more also hold one
non-speech sound (a tone with harmonics, a chirp, a noise burst, mains hum or clicks) about as
loud as the speech around it, to see what a voice activity detector keeps; ``--background-db``
adds white noise at that level (dBFS RMS) under everything, speech included. Written, in
bounded memory whatever the length:

- ``OUT/recording.wav``: mono 16-bit PCM at the manifest audio's rate (``--sample-rate`` to choose);
- ``OUT/truth.jsonl``: one line per placed utterance: ``text``, ``source`` (file), ``start`` /
  ``end`` (the clip's place, seconds), ``speech_start`` / ``speech_end`` (the speech inside it:
  the first and last 10 ms frame within ``--trim-db`` dB of the clip's loudest frame), and
  ``words``: for a one-word utterance ``[{"word", "start", "end"}]`` with the speech times
  (known truth for word timestamps), else the words without times;
- ``OUT/events.jsonl``: the non-speech sounds (``kind``, ``start``, ``end``);
- ``OUT/info.json``: the settings, the duration and the counts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from asr.audio import load_audio  # noqa: E402
from asr.manifest import read_manifest  # noqa: E402
from asr.text import normalize_text  # noqa: E402


def speech_extent(samples: np.ndarray, rate: int, trim_db: float) -> tuple[float, float]:
    """(start, end) seconds of the 10 ms frames within ``trim_db`` of the loudest one."""
    n = max(1, rate // 100)
    frames = samples[: samples.size // n * n].reshape(-1, n)
    if frames.shape[0] == 0:
        return 0.0, samples.size / rate
    db = 10 * np.log10((frames.astype(np.float64) ** 2).mean(axis=1) + 1e-12)
    loud = np.flatnonzero(db >= db.max() - trim_db)
    return loud[0] * n / rate, min(samples.size, (loud[-1] + 1) * n) / rate


EVENTS = ("tone", "chirp", "noise", "hum", "clicks")


def event_sound(kind: str, n: int, rate: int, rms: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of a non-speech sound at RMS ``rms``, with 10 ms fades."""
    t = np.arange(n) / rate
    if kind == "tone":
        f0 = rng.uniform(150, 1500)
        x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 4) if k * f0 < rate / 2)
    elif kind == "chirp":
        f0, f1 = rng.uniform(200, 1000), rng.uniform(1000, rate / 2 * 0.8)
        x = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * t[-1] + 1e-9)))
    elif kind == "noise":
        x = rng.standard_normal(n)
    elif kind == "hum":
        f0 = rng.choice([50.0, 60.0])
        x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in (1, 2, 3, 5))
    else:  # clicks
        x = np.zeros(n)
        for i in rng.integers(0, n, size=max(1, int(n / rate * 8))):
            x[i: i + 40] += rng.standard_normal(min(40, n - i)) * 3
    x = np.asarray(x, np.float64)
    x *= rms / (np.sqrt(np.mean(x ** 2)) + 1e-12)
    fade = min(n // 2, rate // 100)
    if fade:
        ramp = np.linspace(0, 1, fade)
        x[:fade] *= ramp
        x[n - fade:] *= ramp[::-1]
    return x


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--hours", type=float, default=1.0, help="length of the recording (default 1)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--sample-rate", type=int, metavar="HZ", help="sample rate, Hz (default: the first file's)")
    p.add_argument("--pause-min", type=float, default=0.2)
    p.add_argument("--pause-max", type=float, default=3.0)
    p.add_argument("--noise-db", type=float, default=-60.0, help="level of the noise in the pauses, dBFS (RMS)")
    p.add_argument("--trim-db", type=float, default=30.0)
    p.add_argument("--events", type=float, default=0.0, help="fraction of pauses of 1 s or more holding a non-speech sound")
    p.add_argument("--background-db", type=float, help="white noise under everything at this level, dBFS RMS")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    entries = read_manifest(args.manifest)
    if not entries:
        raise SystemExit(f"{args.manifest}: no entries")
    rate = args.sample_rate or sf.info(entries[0].audio_filepath).samplerate
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    total = int(args.hours * 3600 * rate)
    noise_rms = 10 ** (args.noise_db / 20)
    background = 10 ** (args.background_db / 20) if args.background_db is not None else 0.0
    cache: dict[str, tuple[np.ndarray, tuple[float, float]]] = {}
    pos = placed = events = 0
    last_rms = 0.05
    with sf.SoundFile(os.path.join(args.out, "recording.wav"), "w", samplerate=rate, channels=1, subtype="PCM_16") as wav, \
            open(os.path.join(args.out, "truth.jsonl"), "w") as truth, open(os.path.join(args.out, "events.jsonl"), "w") as ev:

        def write(x: np.ndarray) -> None:
            if background:
                x = x + background * rng.standard_normal(x.size)
            wav.write(np.clip(x, -1.0, 1.0).astype(np.float32))

        def pause(seconds: float) -> None:
            nonlocal pos, events
            n = min(int(seconds * rate), total - pos)
            if n <= 0:
                return
            x = noise_rms * rng.standard_normal(n)
            if seconds >= 1.0 and rng.random() < args.events:
                kind = EVENTS[int(rng.integers(len(EVENTS)))]
                m = int(n * rng.uniform(0.3, 0.8))
                a = (n - m) // 2
                x[a: a + m] += event_sound(kind, m, rate, last_rms * 10 ** (rng.uniform(-10, 0) / 20), rng)
                ev.write(json.dumps({"kind": kind, "start": round((pos + a) / rate, 4), "end": round((pos + a + m) / rate, 4)}) + "\n")
                events += 1
            write(x)
            pos += n

        pause(rng.uniform(args.pause_min, args.pause_max))
        while pos < total:
            for i in rng.permutation(len(entries)):
                e = entries[i]
                key = f"{e.audio_filepath}@{e.offset}"
                if key not in cache:
                    w = load_audio(e.audio_filepath, rate, e.offset or 0.0, e.duration if e.offset else None)
                    cache[key] = (w, speech_extent(w, rate, args.trim_db))
                w, (s0, s1) = cache[key]
                if pos + w.size > total:  # no room for it: the rest is a pause
                    pause((total - pos) / rate + 1.0)
                    break
                start = pos / rate
                write(w)
                last_rms = float(np.sqrt(np.mean(w[int(s0 * rate): int(s1 * rate)] ** 2))) or last_rms
                pos += w.size
                text = normalize_text(e.text)
                words = text.split()
                line = {"text": text, "source": e.audio_filepath, "start": round(start, 4), "end": round(pos / rate, 4),
                        "speech_start": round(start + s0, 4), "speech_end": round(start + s1, 4),
                        "words": [{"word": words[0], "start": round(start + s0, 4), "end": round(start + s1, 4)}]
                        if len(words) == 1 else [{"word": x} for x in words]}
                truth.write(json.dumps(line) + "\n")
                placed += 1
                pause(rng.uniform(args.pause_min, args.pause_max))
                if pos >= total:
                    break
    info = {"manifest": args.manifest, "rate": rate, "duration_s": total / rate, "utterances": placed,
            "distinct_utterances": len(cache), "pause_s": [args.pause_min, args.pause_max], "noise_db": args.noise_db,
            "events": events, "events_fraction": args.events, "background_db": args.background_db,
            "trim_db": args.trim_db, "seed": args.seed}
    with open(os.path.join(args.out, "info.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
