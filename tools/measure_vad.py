"""How well each voice activity detector finds the speech of a recording with known pauses.

    python tools/measure_vad.py /tmp/long_fsdd_1h [--methods silero,webrtc,energy] [--out out.json]

The folder is one written by tools/make_long_recording.py. For each detector the recording is
read in blocks through :class:`asr.vad.Segmenter` (the settings ``asr transcribe`` uses) and the
segments are compared with the truth's speech (``speech_start`` to ``speech_end`` of each
utterance) in 10 ms steps:

- speech missed: % of the truth's speech time outside every segment;
- utterances cut: % of utterances with any of their speech outside every segment (a clipped word);
- utterances lost: % of utterances with none of their speech in a segment;
- non-speech kept: % of the non-speech time inside segments (what the recognizer still decodes);
- segments, their longest, and the detector's real-time factor (1 thread).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from asr.audio import audio_blocks  # noqa: E402
from asr.vad import Segmenter, VadOptions  # noqa: E402

STEP = 0.01


def measure(folder: str, options: VadOptions) -> dict:
    truth = [json.loads(line) for line in open(os.path.join(folder, "truth.jsonl"))]
    path = os.path.join(folder, "recording.wav")
    blocks = audio_blocks(path, None)
    rate, duration = blocks.rate, blocks.duration
    n = int(np.ceil(duration / STEP))
    speech = np.zeros(n, bool)
    for t in truth:
        speech[int(t["speech_start"] / STEP): int(np.ceil(t["speech_end"] / STEP))] = True
    kept = np.zeros(n, bool)
    seg = Segmenter(rate, options)
    segments = []
    t0 = time.process_time()
    for block in blocks:
        segments += [(s.start, s.end) for s in seg.accept(block)]
    segments += [(s.start, s.end) for s in seg.flush()]
    cpu = time.process_time() - t0
    for a, b in segments:
        kept[int(a / rate / STEP): int(np.ceil(b / rate / STEP))] = True
    cut = lost = 0
    for t in truth:
        part = kept[int(t["speech_start"] / STEP): int(np.ceil(t["speech_end"] / STEP))]
        cut += not part.all()
        lost += not part.any()
    lengths = [(b - a) / rate for a, b in segments]
    return {"method": options.method, "options": dataclasses.asdict(options), "duration_s": round(duration, 1),
            "speech_missed_pct": round(100 * (speech & ~kept).sum() / speech.sum(), 2),
            "utterances_cut_pct": round(100 * cut / len(truth), 2), "utterances_lost_pct": round(100 * lost / len(truth), 2),
            "nonspeech_kept_pct": round(100 * (~speech & kept).sum() / (~speech).sum(), 2),
            "segments": len(segments), "longest_s": round(max(lengths, default=0.0), 2), "rtf": round(cpu / duration, 4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder")
    p.add_argument("--methods", default="silero,webrtc,energy")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a VadOptions field for every method")
    p.add_argument("--out", metavar="PATH", help="also write the figures here (JSON)")
    args = p.parse_args(argv)
    fields = {f.name: f.type for f in dataclasses.fields(VadOptions)}
    overrides = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        if k not in fields:
            raise SystemExit(f"--set {kv}: no VadOptions field {k!r}")
        overrides[k] = int(v) if k == "aggressiveness" else float(v)
    rows = []
    print(f"{'method':<8} {'speech missed %':>15} {'utts cut %':>10} {'utts lost %':>11} {'non-speech kept %':>17} "
          f"{'segments':>8} {'longest s':>9} {'RTF':>7}")
    for m in args.methods.split(","):
        r = measure(args.folder, VadOptions(method=m, **overrides))
        rows.append(r)
        print(f"{m:<8} {r['speech_missed_pct']:>15.2f} {r['utterances_cut_pct']:>10.2f} {r['utterances_lost_pct']:>11.2f} "
              f"{r['nonspeech_kept_pct']:>17.2f} {r['segments']:>8} {r['longest_s']:>9.2f} {r['rtf']:>7.4f}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
