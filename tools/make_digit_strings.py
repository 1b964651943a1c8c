"""Connected strings with known truth from a manifest of short utterances (e.g. FSDD digits):
each output file joins 3-8 utterances (``--items``) drawn without replacement, with pauses
drawn uniformly from 0 to ``--pause-max`` seconds (default 0.4) holding low white noise
(``--noise-db`` dBFS), and the transcripts joined in order.

    python tools/make_digit_strings.py --manifest data/fsdd/test.jsonl --out data/fsdd/strings_test

Writes ``OUT/NNNN.wav`` (mono 16-bit PCM at the manifest audio's rate) and ``OUT/manifest.jsonl``
(one entry per string), so that ``asr evaluate --model M --manifest OUT/manifest.jsonl`` scores
them. Every utterance of the manifest is used about ``--passes`` times.
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", required=True, help="manifest of short utterances")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--items", default="3,8", help="utterances per string: LOW,HIGH (default 3,8)")
    p.add_argument("--pause-max", type=float, default=0.4, help="longest pause between utterances, seconds")
    p.add_argument("--noise-db", type=float, default=-60.0, help="white noise in the pauses, dBFS RMS")
    p.add_argument("--passes", type=int, default=2, help="times each utterance is used (default 2)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    lo, hi = (int(v) for v in args.items.split(","))
    if not 1 <= lo <= hi:
        p.error(f"--items must be LOW,HIGH with 1 <= LOW <= HIGH, got {args.items!r}")
    entries = read_manifest(args.manifest)
    if not entries:
        p.error(f"{args.manifest}: no utterances")
    rate = sf.info(entries[0].audio_filepath).samplerate
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    order = np.concatenate([rng.permutation(len(entries)) for _ in range(args.passes)])
    noise = 10 ** (args.noise_db / 20)
    lines, pos, k = [], 0, 0
    while pos < len(order):
        n = int(rng.integers(lo, hi + 1))
        picked = order[pos : pos + n]
        pos += n
        pieces, words = [], []
        for j, i in enumerate(picked):
            if j:
                gap = int(rng.uniform(0, args.pause_max) * rate)
                pieces.append((noise * rng.standard_normal(gap)).astype(np.float32))
            pieces.append(load_audio(entries[i].audio_filepath, rate))
            words.append(entries[i].text)
        wave = np.clip(np.concatenate(pieces), -1, 1)
        path = os.path.abspath(os.path.join(args.out, f"{k:04d}.wav"))
        sf.write(path, wave, rate, subtype="PCM_16")
        lines.append({"audio_filepath": path, "duration": round(wave.size / rate, 4), "text": " ".join(words)})
        k += 1
    with open(os.path.join(args.out, "manifest.jsonl"), "w") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    total = sum(line["duration"] for line in lines)
    print(f"{args.out}: {k} strings of {lo}-{hi} utterances ({total / 60:.1f} min) from {len(entries)} in {args.manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
