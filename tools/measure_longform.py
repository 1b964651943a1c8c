"""Measure ``asr transcribe`` on a long recording with known truth (tools/make_long_recording.py).

    python tools/measure_longform.py --model exp/fsdd/stream.onnx /tmp/long_fsdd_1h [--align] [--out out.json]

Runs the whole command once, on one thread, as a child process, and reports:

- peak resident memory of that process (``/usr/bin/time``'s maximum RSS) and its real-time
  factor (CPU seconds, user + system, per second of audio; wall time too);
- WER of the long recording (all hypothesis words against all truth words, in order) and the
  WER of the same utterances decoded one by one (``OfflineRecognizer.transcribe`` on each source file,
  counted as often as it was placed): whole (``long_form=False``), and through the long-form
  path's voice activity detector as well (``long_form=True``), which leaves the long recording's
  own machinery (blocks, segment bounds, batching) as the only difference;
- word timestamps: for one-word utterances recognized correctly, |start error| and |end
  error| against the truth's speech times (median and 95th percentile);
- with ``--align``: the same for forced alignment (``OfflineRecognizer.align``, within the speech
  ``--align-vad`` hears) of each utterance's known text in its place, with up to 0.5 s of the
  recording around it;
- word confidence: how well it separates the long recording's correct words from the wrong
  ones (area under the ROC curve) and its expected calibration error (10 bins);
- with ``--context 0,0.05,0.4``: the WER of each utterance decoded alone with that many seconds
  of the recording around it (how much the model minds the room a segment leaves).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from asr.metrics import calibration_error, error_stats, roc_auc, word_hits  # noqa: E402
from asr.runtime.model import is_checkpoint  # noqa: E402


def run_command(model: str, wav: str, extra: list[str]) -> tuple[dict, dict]:
    out = tempfile.mkdtemp(prefix="asr-longform-")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = ["/usr/bin/time", "-f", "TIME %M %e %U %S", sys.executable, "-m", "asr", "transcribe",
           "--checkpoint" if is_checkpoint(model) else "--model", model, "--threads", "1",
           "--write", "json", "--output-dir", out, *extra, wav]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    line = [x for x in proc.stderr.splitlines() if x.startswith("TIME ")][-1].split()
    rss_kb, wall, user, sys_ = int(line[1]), float(line[2]), float(line[3]), float(line[4])
    with open(os.path.join(out, os.path.splitext(os.path.basename(wav))[0] + ".json")) as f:
        result = json.load(f)
    shutil.rmtree(out, ignore_errors=True)
    return result, {"peak_rss_mb": round(rss_kb / 1024, 1), "wall_s": wall, "cpu_s": round(user + sys_, 2),
                    "command": " ".join(cmd[4:])}


def timing_errors(truth: list[dict], words: list[dict]) -> dict:
    """Match each hypothesis word to the one-word truth utterance nearest it (within 1 s);
    errors of the correct, uniquely matched ones."""
    starts = np.array([t["speech_start"] for t in truth])
    ends = np.array([t["speech_end"] for t in truth])
    assigned: dict[int, list[dict]] = {}
    for w in words:
        mid = (w["start"] + w["end"]) / 2
        gap = np.maximum(0, np.maximum(starts - mid, mid - ends))
        k = int(np.argmin(gap))
        if gap[k] <= 1.0:
            assigned.setdefault(k, []).append(w)
    ds, de = [], []
    for k, ws in assigned.items():
        t = truth[k]
        if len(t["words"]) == 1 and len(ws) == 1 and ws[0]["word"] == t["words"][0]["word"]:
            ds.append(abs(ws[0]["start"] - t["words"][0]["start"]))
            de.append(abs(ws[0]["end"] - t["words"][0]["end"]))
    if not ds:
        return {"words": 0}
    return {"words": len(ds), "start_median_s": round(float(np.median(ds)), 3), "start_p95_s": round(float(np.percentile(ds, 95)), 3),
            "end_median_s": round(float(np.median(de)), 3), "end_p95_s": round(float(np.percentile(de, 95)), 3)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="ONNX model or checkpoint (.pt)")
    p.add_argument("folder", help="written by tools/make_long_recording.py")
    p.add_argument("--align", action="store_true", help="also time forced alignment of each utterance")
    p.add_argument("--align-vad", default="silero", help="the detector that bounds forced alignment (none: the model alone)")
    p.add_argument("--one-by-one", action="store_true",
                   help="also decode each utterance alone, whole and through the voice activity detector (WERs to compare)")
    p.add_argument("--context", help="comma-separated seconds: WER of each utterance alone with that much around it")
    p.add_argument("--transcribe-args", default="", help="more options for asr transcribe (e.g. '--vad energy')")
    p.add_argument("--out", metavar="PATH", help="also write the figures here (JSON)")
    args = p.parse_args(argv)

    import asr

    wav = os.path.join(args.folder, "recording.wav")
    truth = [json.loads(line) for line in open(os.path.join(args.folder, "truth.jsonl"))]
    info = json.load(open(os.path.join(args.folder, "info.json")))
    result, run = run_command(args.model, wav, args.transcribe_args.split())
    duration = info["duration_s"]
    run["rtf_cpu"] = round(run["cpu_s"] / duration, 4)
    run["rtf_wall"] = round(run["wall_s"] / duration, 4)
    hyp_words = [w for u in result["utterances"] for w in u["words"]]
    ref = " ".join(t["text"] for t in truth)
    long_stats = error_stats([ref], [" ".join(w["word"] for w in hyp_words)])
    report = {"recording": args.folder, "duration_s": duration, "utterances": len(truth), "model": args.model, "run": run,
              "long_wer_percent": round(long_stats.wer_percent, 2),
              "long_errors": {"sub": long_stats.substitutions, "del": long_stats.deletions,
                              "ins": long_stats.insertions, "ref_words": long_stats.ref_words},
              "timing_transcribe": timing_errors(truth, hyp_words)}
    labels = word_hits(ref.split(), [w["word"] for w in hyp_words])
    conf = [w["confidence"] for w in hyp_words]
    report["confidence"] = {"words": len(conf), "wrong": int(len(labels) - sum(labels)), "auc": round(roc_auc(conf, labels), 4),
                            "ece": round(calibration_error(conf, labels), 4)}
    rec = asr.load_model(args.model) if (args.one_by_one or args.align or args.context) else None
    if args.context:
        import soundfile as sf

        x, rate = sf.read(wav, dtype="float32")  # this check reads the whole file; the command above does not
        report["context_wer_percent"] = {}
        for c in (float(v) for v in args.context.split(",")):
            hyps = [rec.transcribe(x[max(0, int((t["start"] - c) * rate)): int((t["end"] + c) * rate)], sample_rate=rate,
                                   long_form=False).text for t in truth]
            report["context_wer_percent"][str(c)] = round(error_stats([t["text"] for t in truth], hyps).wer_percent, 2)
    if args.one_by_one:
        texts = {}
        for t in truth:
            if t["source"] not in texts:
                texts[t["source"]] = rec.transcribe(t["source"], long_form=False).text
        st = error_stats([t["text"] for t in truth], [texts[t["source"]] for t in truth])
        report["one_by_one_wer_percent"] = round(st.wer_percent, 2)
        # the same files through the long-form path (the default detector, as a segment would
        # be): what the long recording's machinery alone changes, with the detector on both sides
        vad_texts = {src: rec.transcribe(src, long_form=True).text for src in texts}
        st = error_stats([t["text"] for t in truth], [vad_texts[t["source"]] for t in truth])
        report["one_by_one_vad_wer_percent"] = round(st.wer_percent, 2)
    if args.align:
        from asr.audio import load_audio
        from asr.vad import VadOptions

        vad = None if args.align_vad == "none" else VadOptions(method=args.align_vad)
        aligned = []
        for i, t in enumerate(truth):
            lo = max(t["start"] - 0.5, (truth[i - 1]["end"] + t["start"]) / 2 if i else 0.0)
            hi = min(t["end"] + 0.5, (t["end"] + truth[i + 1]["start"]) / 2 if i + 1 < len(truth) else duration)
            r = rec.align(load_audio(wav, rec.sample_rate, lo, hi - lo), t["text"], vad=vad)
            aligned += [{"word": w.word, "start": w.start + lo, "end": w.end + lo} for w in r.words]
        report["timing_align"] = timing_errors(truth, aligned)
    print(json.dumps(report, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
