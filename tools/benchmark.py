"""Speed and memory of one model, measured in one run on one thread:

    python tools/benchmark.py --checkpoint exp/fsdd/best.pt --manifest data/fsdd/test.jsonl
    python tools/benchmark.py --checkpoint exp/so_lc/best.pt --manifest data/speechocean762/dev.jsonl \\
        --lm exp/speechocean762/lm.arpa --char-lm exp/speechocean762/chars.arpa --alpha 1.2 --char-alpha 0.5 --beta 4 \\
        [--grammar words.txt --unk-score -2]

Prints, for the same audio:

- the real-time factor (compute seconds per audio second, front end included) of PyTorch eager
  offline, onnxruntime offline, and the streaming runtime fed live in 100 ms pieces, fp32 and
  int8, one stream at a time (batch 1) and 64 streams stepped together (per stream), with WER;
- where the streaming time goes (resampler, front end, model call, decoder, Python
  bookkeeping), at batch 1 and 64, for audio at the model's rate and at 48 kHz (a browser's
  microphone);
- the arithmetic floor: the model's multiply-adds per audio second against this core's
  measured fp32 matrix-product peak, and the share of it each streaming figure reaches;
- prefix beam search (``--beam-size``, with ``--lm`` / ``--char-lm`` if given) on the streaming
  posteriors: its RTF on top of the model and its WER; with ``--grammar`` the same search kept to
  the grammar (docs/grammars.md), alone and with the LMs; beside them, when they are installed, a
  compiled decoder on the same posteriors and LM (flashlight-text, the decoder under
  torchaudio's ``ctc_decoder``) and pocketsphinx on the same audio;
- per-chunk compute latency, algorithmic latency, the peak memory of a runtime-only process,
  and whether int8 can be the default.

Machines drift (other processes, frequency, a neighbour on the host): every timed figure is the
best of ``--rounds`` rounds, the ways of decoding taking turns within each round, so the
ratios between them are measured side by side. A benchmark prints figures; it never fails on a
slow machine.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter

import numpy as np

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

SHARES = ("resampler", "front end", "model call", "decoder")


@contextlib.contextmanager
def timed(acc: Counter, targets):
    """Add the seconds spent in each ``(owner, attribute, part)`` of ``targets`` to
    ``acc[part]`` while inside; the attributes are put back on the way out."""
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in targets]

    def wrap(fn, part):
        def inner(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                acc[part] += time.perf_counter() - t
        return inner

    try:
        for (owner, name, part), (_, _, fn) in zip(targets, originals):
            setattr(owner, name, wrap(fn, part))
        yield acc
    finally:
        for owner, name, fn in originals:
            setattr(owner, name, fn)


def _timed_parts(acc: Counter):
    """Time the streaming runtime's stages into ``acc`` (seconds by part) while inside."""
    from asr.audio import StreamingResampler
    from asr.decoding.greedy import CtcStreamDecoder
    from asr.frontend import OnlineLogMel
    from asr.runtime.model import OnnxModel

    return timed(acc, [(StreamingResampler, "accept", "resampler"), (StreamingResampler, "flush", "resampler"),
                       (OnlineLogMel, "accept", "front end"), (OnnxModel, "stream_step", "model call"),
                       (CtcStreamDecoder, "accept", "decoder"), (CtcStreamDecoder, "finish_utterance", "decoder")])


def stream_all(rec, waves, rate: int, batch: int, piece_s: float, keep_log_probs: bool = False):
    """Feed ``waves`` to streams as live audio, ``batch`` streams at a time, each given
    ``piece_s`` seconds per turn (:func:`asr.runtime.online.run_streams`). Returns (texts,
    per-step compute seconds, log-probs if kept)."""
    from asr.runtime.online import run_streams

    texts, steps, lps = [], [], []
    for g in range(0, len(waves), batch):
        streams = run_streams(rec, waves[g : g + batch], rate, piece_s, keep_log_probs=keep_log_probs, step_times=steps)
        texts += [rec.get_result(s).text for s in streams]
        if keep_log_probs:
            lps += [np.concatenate(s.log_probs) if s.log_probs else np.zeros((0, len(rec.info.tokenizer.vocab)), np.float32)
                    for s in streams]
    return texts, np.array(steps), lps


def best_of(rounds: int, runs: dict) -> dict:
    """{name: fn} -> {name: (best seconds, last output)}, the runs taking turns in each round."""
    best, out = {}, {}
    for _ in range(rounds):
        for name, fn in runs.items():
            t = time.perf_counter()
            out[name] = fn()
            dt = time.perf_counter() - t
            best[name] = min(best.get(name, dt), dt)
    return {name: (best[name], out[name]) for name in runs}


def macs_per_frame(model, cfg) -> int:
    """Multiply-adds of one output frame of the model in full context: every linear and
    recurrent weight matrix once per frame, and each convolution kernel once per output
    position (counted on a one-second forward pass)."""
    import torch

    conv = []

    def hook(m, inp, out):
        conv.append(out.numel() // m.out_channels * m.weight.numel())

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))]
    frames = 100 * cfg.model.subsampling
    with torch.no_grad():
        logp, _ = model(torch.zeros(1, frames, cfg.frontend.n_mels), torch.tensor([frames]), chunk_size=0)
    for h in hooks:
        h.remove()
    total = sum(conv) // logp.shape[1]
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            total += m.weight.numel()
        elif isinstance(m, torch.nn.RNNBase):
            total += sum(p.numel() for n, p in m.named_parameters() if n.startswith("weight"))
    return total


def matmul_peak_gflops() -> float:
    """fp32 matrix-product throughput of one core through onnxruntime (MLAS), 1024^3."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    n = 1024
    w = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "peak",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])],
                              [numpy_helper.from_array(w, "w")])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
                                opts, providers=["CPUExecutionProvider"])
    x = np.ones((n, n), np.float32)
    sess.run(None, {"x": x})
    best = float("inf")
    for _ in range(20):
        t = time.perf_counter()
        sess.run(None, {"x": x})
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _flashlight(tokenizer, char_lm_path, beam, char_alpha):
    """flashlight-text's lexicon-free beam search with a KenLM character model over our
    vocabulary, or None when flashlight-text is not installed. KenLM scores are log10, ours
    natural logs: the LM weight is scaled by ln 10 so both searches weigh the LM alike. Every
    token may extend every hypothesis (``beam_size_token`` = vocabulary), no score threshold."""
    try:
        from flashlight.lib.text.decoder import CriterionType, LexiconFreeDecoder, LexiconFreeDecoderOptions
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary
    except ImportError:
        return None
    from asr.decoding.lm import SPACE

    vocab = tokenizer.vocab
    units = ["<blank>" if i == 0 else (SPACE if v == " " else v) for i, v in enumerate(vocab)]
    d = Dictionary()
    for u in units:
        d.add_entry(u)
    lm = KenLM(char_lm_path, d)
    opts = LexiconFreeDecoderOptions(beam_size=beam, beam_size_token=len(vocab), beam_threshold=1000.0,
                                     lm_weight=char_alpha * math.log(10), sil_score=0.0, log_add=True, criterion_type=CriterionType.CTC)
    space = units.index(SPACE) if SPACE in units else 0
    dec = LexiconFreeDecoder(opts, lm, space, 0, [])

    def decode(lp):
        lp = np.ascontiguousarray(lp, np.float32)
        res = dec.decode(lp.ctypes.data, lp.shape[0], lp.shape[1])
        tokens, prev = [], -1
        for t in res[0].tokens:
            if t != prev and t != 0:
                tokens.append(t)
            prev = t
        return tokenizer.decode(tokens).strip()

    return decode


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="exp/fsdd/best.pt", help="a streamable checkpoint (latency-controlled or unidirectional)")
    p.add_argument("--manifest", default="data/fsdd/test.jsonl")
    p.add_argument("--max-utts", type=int, default=300)
    p.add_argument("--piece-ms", type=float, default=100.0, help="audio fed to a stream per turn")
    p.add_argument("--batch", type=int, default=64, help="streams stepped together for the many-streams figures")
    p.add_argument("--rounds", type=int, default=3, help="timed figures are the best of this many rounds")
    p.add_argument("--chunk-size", type=int, help="streaming chunk (model frames) for a unidirectional model")
    p.add_argument("--beam-size", type=int, default=16)
    p.add_argument("--lm", help="word n-gram (ARPA) for the beam search")
    p.add_argument("--char-lm", help="character n-gram (ARPA) for the beam search")
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--char-alpha", type=float, default=0.5)
    p.add_argument("--beta", type=float, default=0.0)
    p.add_argument("--grammar", metavar="FILE", help="also time the search kept to this grammar (one phrase a line or a JSON list), "
                                                     "alone and with the LMs")
    p.add_argument("--unk-score", type=float, default=0.0, help="with --grammar: the score of an [unk] word (natural log)")
    p.add_argument("--out", metavar="PATH", help="also write the figures here (JSON)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    import asr
    import asr.train
    from asr.audio import load_audio, resample
    from asr.decoding.options import Decoder, DecodingOptions
    from asr.manifest import read_manifest
    from asr.metrics import error_stats
    from asr.runtime import OnlineRecognizer
    from asr.text import normalize_text
    from asr.train.checkpoint import build_model, load_checkpoint
    from asr.train.export import export_onnx

    model, cfg, tok = build_model(load_checkpoint(args.checkpoint))
    sr = cfg.frontend.sample_rate
    entries = read_manifest(args.manifest)[: args.max_utts]
    waves = [load_audio(e.audio_filepath, sr) for e in entries]
    refs = [normalize_text(e.text) for e in entries]
    audio_s = sum(len(w) for w in waves) / sr
    tmp = tempfile.mkdtemp(prefix="asr-bench-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # exported models / the run: gone when done
    off_path, st_path = os.path.join(tmp, "offline.onnx"), os.path.join(tmp, "stream.onnx")
    export_onnx(args.checkpoint, off_path)
    rep = export_onnx(args.checkpoint, st_path, streaming=True, int8=True, chunk_size=args.chunk_size)
    info = rep.info
    rnn = cfg.model.rnn_type
    piece_s = args.piece_ms / 1000
    B = args.batch

    eager = asr.train.load_model(args.checkpoint, num_threads=1, chunk_size=0)  # full context, like the offline graph
    offline = asr.load_model(off_path, num_threads=1)
    fp32, int8 = OnlineRecognizer(st_path, num_threads=1), OnlineRecognizer(rep.int8_path, num_threads=1)
    runs = {
        "pytorch eager offline": lambda: ([eager.transcribe(w, sr).text for w in waves], None, None),
        "onnxruntime offline": lambda: ([offline.transcribe(w, sr).text for w in waves], None, None),
        "streaming fp32, batch 1": lambda: stream_all(fp32, waves, sr, 1, piece_s),
        "streaming int8, batch 1": lambda: stream_all(int8, waves, sr, 1, piece_s),
        f"streaming fp32, batch {B}": lambda: stream_all(fp32, waves, sr, B, piece_s),
        f"streaming int8, batch {B}": lambda: stream_all(int8, waves, sr, B, piece_s),
    }
    timed = best_of(args.rounds, runs)
    results = {}
    for name, (secs, (texts, _, _)) in timed.items():
        st = error_stats(refs, texts)
        results[name] = {"rtf": secs / audio_s, "wer_percent": st.wer_percent, "cer_percent": st.cer_percent}
    lat32 = timed["streaming fp32, batch 1"][1][1]
    lat8 = timed["streaming int8, batch 1"][1][1]

    # where the streaming time goes
    waves48 = [resample(w, sr, 48000) for w in waves]
    shares = {}
    for label, ws, rate in ((f"{sr // 1000} kHz", waves, sr), ("48 kHz", waves48, 48000)):
        for batch in (1, B):
            acc: Counter = Counter()
            with _timed_parts(acc):
                t = time.perf_counter()
                stream_all(fp32, ws, rate, batch, piece_s)
                total = time.perf_counter() - t
            row = {k: acc[k] / total for k in SHARES}
            row["python"] = 1 - sum(row.values())
            row["rtf"] = total / audio_s
            shares[f"{label} in, batch {batch}"] = row

    # the floor
    macs = macs_per_frame(model, cfg)
    frames_per_s = sr / (cfg.frontend.hop_length * cfg.model.subsampling)
    window_over_chunk = (info.chunk_size + info.right_context) / info.chunk_size
    peak = matmul_peak_gflops()
    floor_offline = 2 * macs * frames_per_s / (peak * 1e9)
    floor_stream = floor_offline * window_over_chunk

    # beam search on the streaming posteriors
    texts_g, _, lps = stream_all(fp32, waves, sr, B, piece_s, keep_log_probs=True)
    dec_opts = DecodingOptions(beam_size=args.beam_size, lm=args.lm, alpha=args.alpha, char_lm=args.char_lm,
                               char_alpha=args.char_alpha, beta=args.beta)
    beam = Decoder(tok, dec_opts)
    beam(lps[0])  # LMs read outside the timing
    searches = {"greedy": lambda: [tok.decode([t for t, _, _ in Decoder(tok)(lp)]) for lp in lps],
                f"prefix beam {args.beam_size}" + (" + LMs" if args.lm or args.char_lm else ""):
                    lambda: [tok.decode([t for t, _, _ in beam(lp)]) for lp in lps]}
    if args.grammar:
        g_opts = DecodingOptions(beam_size=args.beam_size, grammar_file=args.grammar, unk_score=args.unk_score)
        constrained = Decoder(tok, g_opts)
        constrained(lps[0])
        searches[f"prefix beam {args.beam_size}, grammar of {len(g_opts.grammar)} phrases"] = \
            lambda: [constrained.search(lp)[0].text for lp in lps]
        if args.lm or args.char_lm:
            both = Decoder(tok, dec_opts.replace(grammar_file=args.grammar, unk_score=args.unk_score))
            both(lps[0])
            searches[f"prefix beam {args.beam_size} + LMs + grammar"] = lambda: [both.search(lp)[0].text for lp in lps]
    compare = {}
    if args.char_lm:
        char_only = Decoder(tok, DecodingOptions(beam_size=args.beam_size, char_lm=args.char_lm, char_alpha=args.char_alpha))
        char_only(lps[0])
        searches[f"ours, beam {args.beam_size}, char LM only"] = lambda: [tok.decode([t for t, _, _ in char_only(lp)]) for lp in lps]
        fl = _flashlight(tok, args.char_lm, args.beam_size, args.char_alpha)
        if fl is not None:
            searches[f"flashlight-text, beam {args.beam_size}, char LM only"] = lambda: [fl(lp) for lp in lps]
        else:
            compare["flashlight-text"] = "not installed (pip install flashlight-text)"
    search_t = best_of(args.rounds, searches)
    search = {}
    for name, (secs, texts) in search_t.items():
        st = error_stats(refs, texts)
        search[name] = {"rtf": secs / audio_s, "wer_percent": st.wer_percent, "cer_percent": st.cer_percent}

    rss = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, st_path, *[e.audio_filepath for e in entries[:20]]],
                         capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    rss_mb = int(rss.stdout.strip().splitlines()[-1]) / 1024

    # --- report ---------------------------------------------------------------------------
    fe = cfg.frontend
    hop_s = fe.hop_length / sr
    window_s = info.window_frames * hop_s
    frame_extra = (fe.n_fft - fe.hop_length) / sr
    algo_first = window_s + frame_extra
    algo_last = info.right_context * info.subsampling * hop_s + info.subsampling * hop_s + frame_extra
    chunk_s = info.hop_frames * hop_s
    print(f"model {args.checkpoint}: {info.model_kind}, {model.num_parameters() / 1e6:.2f}M parameters, "
          f"chunk {info.chunk_size} + right context {info.right_context} model frames ({chunk_s * 1000:.0f} ms per step)")
    print(f"audio: {len(waves)} utterances, {audio_s:.1f} s at {sr} Hz, from {args.manifest}; one thread; "
          f"best of {args.rounds} rounds; {_cpu_name()}")
    print(f"\n{'decoding':<32} {'RTF':>8} {'WER %':>7} {'CER %':>7}   (RTF per stream; streams fed {args.piece_ms:.0f} ms pieces)")
    for name, r in results.items():
        print(f"{name:<32} {r['rtf']:8.4f} {r['wer_percent']:7.2f} {r['cer_percent']:7.2f}")
    r1, rb = results["streaming fp32, batch 1"]["rtf"], results[f"streaming fp32, batch {B}"]["rtf"]
    print(f"streaming fp32 batch 1 is {results['pytorch eager offline']['rtf'] / r1:.1f}x faster than PyTorch eager offline; "
          f"batch {B} per stream is {r1 / rb:.2f}x faster than batch 1 ({1 / rb:.0f} real-time streams per core)")

    print("\nwhere streaming time goes (fp32; shares of the total):")
    print(f"{'input':<22} {'RTF':>8} " + " ".join(f"{k:>11}" for k in SHARES) + f" {'Python':>8}")
    for name, row in shares.items():
        print(f"{name:<22} {row['rtf']:8.4f} " + " ".join(f"{100 * row[k]:10.0f}%" for k in SHARES) + f" {100 * row['python']:7.0f}%")

    print(f"\narithmetic floor: {macs / 1e6:.2f}M multiply-adds per output frame x {frames_per_s:.0f} frames/s"
          f" x {window_over_chunk:.2f} (right context recomputed) = {2 * macs * frames_per_s * window_over_chunk / 1e9:.3f} GFLOP"
          f" per audio second; this core's fp32 matrix-product peak {peak:.0f} GFLOP/s -> floor RTF {floor_stream:.5f}"
          f" (offline {floor_offline:.5f})")
    for batch in (1, B):
        share = shares[f"{sr // 1000} kHz in, batch {batch}"]
        print(f"  streaming fp32, batch {batch}: {100 * floor_stream / results[f'streaming fp32, batch {batch}']['rtf']:.0f}% "
              f"of the floor's speed overall, {100 * floor_stream / (share['rtf'] * share['model call']):.0f}% in the model call")

    print(f"  so no batching can make a stream more than {r1 / floor_stream:.1f}x faster than batch 1's {r1:.4f} "
          f"(that is, with the model at the floor and everything else free)")

    print(f"\nsearch on the streaming posteriors ({len(lps)} utterances; RTF of the search alone, on top of the model):")
    for name, r in search.items():
        print(f"{name:<44} {r['rtf']:8.4f} {r['wer_percent']:7.2f} {r['cer_percent']:7.2f}")
    for k, v in compare.items():
        print(f"{k}: {v}")
    ps = _pocketsphinx(waves, sr, refs)
    if ps is not None:
        print(f"pocketsphinx (its en-us model; the first {ps['utterances']} utterances, {ps['audio_s']:.0f} s, at 16 kHz): "
              f"RTF {ps['rtf']:.4f}, WER {ps['wer_percent']:.2f}%")
    else:
        print("pocketsphinx: not installed (pip install pocketsphinx)")

    print(f"\nper-step compute latency, batch 1: fp32 p50 {np.percentile(lat32, 50) * 1000:.2f} ms, p95 "
          f"{np.percentile(lat32, 95) * 1000:.2f} ms ({len(lat32)} steps); int8 p50 {np.percentile(lat8, 50) * 1000:.2f} ms, "
          f"p95 {np.percentile(lat8, 95) * 1000:.2f} ms")
    print(f"algorithmic latency: {algo_first * 1000:.0f} ms for the first frame of a chunk, {algo_last * 1000:.0f} ms for its last "
          f"(window {window_s * 1000:.0f} ms + {frame_extra * 1000:.0f} ms of FFT frame)")
    print(f"peak resident memory of a runtime-only process (no torch): {rss_mb:.0f} MB")
    if rnn != "lstm":
        print(f"int8: onnxruntime has no int8 {rnn.upper()} kernel, so only the matrix products outside it are quantized")
    rtf8 = results["streaming int8, batch 1"]["rtf"]
    d_wer = results["streaming int8, batch 1"]["wer_percent"] - results["streaming fp32, batch 1"]["wer_percent"]
    if d_wer > 0.5:
        verdict = "NOT to be the default: WER worse by more than 0.5 points"
    elif rtf8 > 0.95 * r1:
        verdict = "NOT to be the default: not even 5% faster than fp32"
    else:
        verdict = "can be the default (faster, WER within 0.5 points)"
    print(f"int8 vs fp32 streaming: WER {d_wer:+.2f} points, speed x{r1 / rtf8:.2f}: {verdict}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"results": results, "shares": shares, "search": search, "pocketsphinx": ps,
                       "floor": {"macs_per_frame": macs, "peak_gflops": peak, "rtf_streaming": floor_stream, "rtf_offline": floor_offline},
                       "latency_ms_p50": float(np.percentile(lat32, 50) * 1000), "latency_ms_p95": float(np.percentile(lat32, 95) * 1000),
                       "algorithmic_latency_ms": [algo_first * 1000, algo_last * 1000], "runtime_rss_mb": rss_mb}, f, indent=1)
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "CPU")
        return f"{name}, {os.cpu_count()} cores"
    except OSError:
        return "CPU"


def _pocketsphinx(waves, sr, refs, max_audio_s: float = 150.0):
    """pocketsphinx with its default US English model on the same audio (16 kHz, int16; the
    first utterances up to ``max_audio_s``, as it runs near real time), or None when it is not
    installed."""
    try:
        from pocketsphinx import Decoder as PsDecoder
    except ImportError:
        return None
    from asr.audio import resample
    from asr.metrics import error_stats
    from asr.text import normalize_text

    n = int(np.searchsorted(np.cumsum([len(w) / sr for w in waves]), max_audio_s, side="right")) or 1
    waves, refs = waves[:n], refs[:n]
    dec = PsDecoder(samprate=16000, loglevel="FATAL")
    pcm = [(np.clip(resample(w, sr, 16000), -1, 1) * 32767).astype(np.int16).tobytes() for w in waves]
    hyps = []
    t = time.perf_counter()
    for b in pcm:
        dec.start_utt()
        dec.process_raw(b, full_utt=True)
        dec.end_utt()
        hyps.append(normalize_text(dec.hyp().hypstr) if dec.hyp() else "")
    secs = time.perf_counter() - t
    st = error_stats(refs, hyps)
    audio = sum(len(w) for w in waves) / sr
    return {"rtf": secs / audio, "wer_percent": st.wer_percent, "utterances": n, "audio_s": audio}


if __name__ == "__main__":
    sys.exit(main())
