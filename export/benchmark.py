"""Speed and memory of one model, measured in one run on one thread:

    python -m export.benchmark --checkpoint exp/fsdd_lc/best.pt --manifest data/fsdd/test.jsonl

Prints the real-time factor (compute seconds per audio second, front end included) of PyTorch
eager offline, onnxruntime offline, onnxruntime streaming fp32 and int8; per-chunk compute
latency p50/p95 of the streaming runtime; the algorithmic latency of the chunking; the peak
resident memory of a process that only runs the runtime (PyTorch blocked from importing); the
ratio streaming onnxruntime / eager; and the WER of each way of decoding (int8 changes it).
A benchmark prints figures; it never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def _rtf(fn, waves, sr) -> float:
    t0 = time.perf_counter()
    for w in waves:
        fn(w)
    return (time.perf_counter() - t0) / (sum(len(w) for w in waves) / sr)


_RSS_SCRIPT = r"""
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this process")
sys.meta_path.insert(0, _NoTorch())
import asr
rec = asr.load_model(sys.argv[1], num_threads=1)
for path in sys.argv[2:]:
    rec.transcribe(path)
assert "torch" not in sys.modules
# VmHWM: this process's own peak (ru_maxrss would carry the forking parent's peak over exec)
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="exp/fsdd/best.pt", help="a streamable checkpoint (latency-controlled or unidirectional)")
    p.add_argument("--manifest", default="data/fsdd/test.jsonl")
    p.add_argument("--max-utts", type=int, default=300)
    p.add_argument("--piece-ms", type=float, default=100.0, help="audio fed to a stream per call")
    p.add_argument("--chunk-size", type=int, help="streaming chunk (model frames) for a unidirectional model")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from asr.nn.checkpoint import build_model, load_checkpoint
    from asr.manifest import read_manifest
    from asr.audio import load_audio
    from asr.metrics import error_stats
    from asr.text import normalize_text
    import asr
    from asr.runtime import OnlineRecognizer
    from export.onnx_export import export_onnx

    model, cfg, tok = build_model(load_checkpoint(args.checkpoint))
    sr = cfg.frontend.sample_rate
    entries = read_manifest(args.manifest)[: args.max_utts]
    waves = [load_audio(e.audio_filepath, sr) for e in entries]
    refs = [normalize_text(e.text) for e in entries]
    audio_s = sum(len(w) for w in waves) / sr
    tmp = tempfile.mkdtemp(prefix="asr-bench-")
    off_path, st_path = os.path.join(tmp, "offline.onnx"), os.path.join(tmp, "stream.onnx")
    export_onnx(args.checkpoint, off_path)
    rep = export_onnx(args.checkpoint, st_path, streaming=True, int8=True, chunk_size=args.chunk_size)
    info = rep.info
    rnn = cfg.model.rnn_type

    eager = asr.load_model(args.checkpoint, num_threads=1, chunk_size=0)  # full context, like the offline graph
    offline = asr.load_model(off_path, num_threads=1)
    results = {}
    hyps = {}

    def run(name, fn):
        out = []
        results[name] = _rtf(lambda w: out.append(fn(w).text), waves, sr)
        hyps[name] = out

    run("pytorch eager offline", eager.transcribe)
    run("onnxruntime offline", offline.transcribe)

    def stream_run(path):
        rec = OnlineRecognizer(path, num_threads=1)
        piece = int(sr * args.piece_ms / 1000)
        lat, out = [], []
        t0 = time.perf_counter()
        for w in waves:
            s = rec.create_stream()
            for i in range(0, len(w), piece):
                s.accept_waveform(sr, w[i : i + piece])
                while rec.is_ready(s):
                    t = time.perf_counter()
                    rec.decode_stream(s)
                    lat.append(time.perf_counter() - t)
            s.input_finished()
            while rec.is_ready(s):
                t = time.perf_counter()
                rec.decode_stream(s)
                lat.append(time.perf_counter() - t)
            out.append(rec.get_result(s).text)
        return (time.perf_counter() - t0) / audio_s, np.array(lat), out

    rtf32, lat32, hyps["onnxruntime streaming fp32"] = stream_run(st_path)
    results["onnxruntime streaming fp32"] = rtf32
    rtf8, lat8, hyps["onnxruntime streaming int8"] = stream_run(rep.int8_path)
    results["onnxruntime streaming int8"] = rtf8

    rss = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, st_path, *[e.audio_filepath for e in entries[:20]]],
                         capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    rss_mb = int(rss.stdout.strip().splitlines()[-1]) / 1024

    fe = cfg.frontend
    hop_s = fe.hop_length / sr
    window_s = info.window_frames * hop_s
    frame_extra = (fe.n_fft - fe.hop_length) / sr
    algo_first = window_s + frame_extra  # first frame of a chunk waits for the whole window
    algo_last = info.right_context * info.subsampling * hop_s + info.subsampling * hop_s + frame_extra
    chunk_s = info.hop_frames * hop_s

    print(f"model {args.checkpoint}: {info.model_kind}, {model.num_parameters() / 1e6:.2f}M parameters, "
          f"chunk {info.chunk_size} + right context {info.right_context} model frames ({chunk_s * 1000:.0f} ms per step)")
    print(f"audio: {len(waves)} utterances, {audio_s:.1f} s, from {args.manifest}; 1 thread; device: CPU")
    print(f"{'decoding':<30} {'RTF':>8} {'WER %':>7} {'CER %':>7}")
    for name, rtf in results.items():
        st = error_stats(refs, hyps[name])
        results[name] = {"rtf": rtf, "wer": st.wer, "cer": st.cer}
        print(f"{name:<30} {rtf:8.4f} {st.wer:7.2f} {st.cer:7.2f}")
    ratio = results["pytorch eager offline"]["rtf"] / results["onnxruntime streaming fp32"]["rtf"]
    print(f"streaming onnxruntime fp32 is {ratio:.1f}x faster than PyTorch eager offline")
    print(f"per-chunk compute latency fp32: p50 {np.percentile(lat32, 50) * 1000:.2f} ms, p95 {np.percentile(lat32, 95) * 1000:.2f} ms "
          f"({len(lat32)} chunks); int8: p50 {np.percentile(lat8, 50) * 1000:.2f} ms, p95 {np.percentile(lat8, 95) * 1000:.2f} ms")
    print(f"algorithmic latency: {algo_first * 1000:.0f} ms for the first frame of a chunk, {algo_last * 1000:.0f} ms for its last "
          f"(window {window_s * 1000:.0f} ms + {frame_extra * 1000:.0f} ms of FFT frame)")
    print(f"peak resident memory of a runtime-only process (no torch): {rss_mb:.0f} MB")
    if rnn != "lstm":
        print(f"int8: onnxruntime has no int8 {rnn.upper()} kernel, so only the matrix products outside it are quantized")
    d_wer = results["onnxruntime streaming int8"]["wer"] - results["onnxruntime streaming fp32"]["wer"]
    if d_wer > 0.5:
        verdict = "NOT to be the default: WER worse by more than 0.5 points"
    elif rtf8 >= rtf32:
        verdict = "NOT to be the default: no faster than fp32"
    else:
        verdict = "can be the default (faster, WER within 0.5 points)"
    print(f"int8 vs fp32 streaming: WER {d_wer:+.2f} points, speed x{rtf32 / rtf8:.2f}: {verdict}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "ratio_eager_over_stream": ratio, "latency_ms_p50": float(np.percentile(lat32, 50) * 1000),
                       "latency_ms_p95": float(np.percentile(lat32, 95) * 1000), "algorithmic_latency_ms": [algo_first * 1000, algo_last * 1000],
                       "runtime_rss_mb": rss_mb}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
