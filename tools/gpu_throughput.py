"""Training throughput of a recipe's model on a GPU, and what one epoch of LibriSpeech 960 h
would take; batched offline decoding with onnxruntime's CUDA provider.

    python tools/gpu_throughput.py                                   # conf_960.yaml, every setting below
    python tools/gpu_throughput.py --config recipes/librispeech/conf_100.yaml --precision bf16 --rnn gru
    python tools/gpu_throughput.py --device cpu --steps 3 --set model.hidden_size=32 model.num_layers=1   # smoke

For each recurrent layer type (``--rnn``: gru, lstm; cuDNN's kernels on a GPU) and precision
(``--precision``: fp32, bf16, fp16) it trains the config's model for ``--steps`` optimizer steps
(after ``--warmup`` steps that are not timed) the way ``asr train`` does one step: the
feature perturbations and SpecAugment of the config, forward under ``torch.autocast`` for bf16
and fp16 (``train.precision``), the CTC loss in float32, backward, a gradient scaler for fp16,
clipping, an AdamW step. The batches are cut by the trainer's own length bucketing
(``train.max_frames``, ``train.max_batch``) from synthetic utterances of LibriSpeech-like
lengths (mean 12.3 s = 960 h / 281,241 utterances; gamma-distributed, 1-35 s; the spread is an
assumption) with random features and transcripts of the config's vocabulary size. Features are
made on the device: the loader (log-mels in ``train.num_workers`` processes) is not measured.

Prints per setting: audio seconds trained per second, step time, peak GPU memory, and the
projected time of one epoch of ``--hours`` (960) hours times the config's speed-perturbed copies
on one GPU (N GPUs: about N times faster if the loader keeps up; not measured). Then, when
onnxruntime has the CUDA provider (the onnxruntime-gpu package), the model exported as
``asr export`` does and run on batches of ``--ort-batches`` utterances: audio seconds decoded
per second with greedy decoding (front end not included); without it, a line saying it was
skipped. ``--out FILE`` writes everything as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from functools import partial

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

LIBRISPEECH_MEAN_S = 960 * 3600 / 281_241  # 12.29 s
CHAR_VOCAB = 29  # blank, space, apostrophe, a-z
UNITS_PER_S = {"char": 15.0, "bpe": 5.0}  # read English: about 15 characters, ~5 word pieces per second


def utterance_seconds(n: int, seed: int = 0) -> np.ndarray:
    """``n`` durations with LibriSpeech's mean (gamma, shape 12: standard deviation ~3.5 s), 1-35 s."""
    rng = np.random.default_rng(seed)
    shape = 12.0
    return np.clip(rng.gamma(shape, LIBRISPEECH_MEAN_S / shape, n), 1.0, 35.0)


def model_config(cfg):
    """The config's model with its input and vocabulary sizes set as training would set them."""
    cfg.model.input_dim = cfg.frontend.n_mels
    cfg.model.vocab_size = cfg.data.bpe_vocab_size + 1 if cfg.data.tokenizer == "bpe" else CHAR_VOCAB
    return cfg


def synthetic_batches(cfg, n_batches: int, seed: int = 0) -> list[dict]:
    """``n_batches`` of the trainer's length-bucketed batches (CPU tensors) over synthetic utterances."""
    import torch

    from asr.train.data import bucket_batches, collate

    fps = cfg.frontend.sample_rate / cfg.frontend.hop_length
    seconds = utterance_seconds(max(4000, 4 * n_batches * cfg.train.max_batch), seed)
    frames = [int(s * fps) for s in seconds]
    picked = bucket_batches(frames, cfg.train.max_frames, cfg.train.max_batch, shuffle=True, seed=seed)[:n_batches]
    gen = torch.Generator().manual_seed(seed)
    rate = UNITS_PER_S.get(cfg.data.tokenizer, UNITS_PER_S["char"])
    out = []
    for b in picked:
        feats = [torch.randn(frames[i], cfg.frontend.n_mels, generator=gen) for i in b]
        max_units = [max(1, frames[i] // cfg.model.subsampling // 2) for i in b]  # CTC needs room for repeats
        targets = [torch.randint(1, cfg.model.vocab_size, (min(m, max(1, int(seconds[i] * rate))),), generator=gen)
                   for i, m in zip(b, max_units)]
        batch = collate(feats, targets)
        batch["audio_seconds"] = float(sum(seconds[i] for i in b))
        out.append(batch)
    return out


def measure_training(cfg, batches: list[dict], device: str, precision: str, warmup: int, seed: int = 0) -> dict:
    """Train on ``batches`` (the first ``warmup`` untimed) as ``asr train`` takes a step; audio
    seconds per second, seconds per step, peak memory."""
    import torch

    from asr.train.features import spec_augment
    from asr.train.model import CTCModel
    from asr.train.trainer import perturb_batch

    dev = torch.device(device)
    tc = cfg.train
    torch.manual_seed(seed)
    model = CTCModel(cfg.model).to(dev)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(dev.type) if precision == "fp16" else None
    augment = partial(spec_augment, cfg=tc.specaugment) if tc.specaugment else None
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    times, audio = [], 0.0
    for k, batch in enumerate(batches):
        sync()
        t0 = time.perf_counter()
        feats, lengths = batch["feats"].to(dev, non_blocking=True), batch["lengths"].to(dev)
        opt.zero_grad(set_to_none=True)
        feats, chunk = perturb_batch(feats, lengths, cfg)
        with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logp, out_len = model(feats, lengths, augment=augment, chunk_size=chunk)
        loss = torch.nn.functional.ctc_loss(logp.float().transpose(0, 1), batch["targets"].to(dev), out_len,
                                            batch["target_lengths"].to(dev), zero_infinity=True,
                                            reduction="sum") / len(lengths)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        if scaler is not None:
            scaler.unscale_(opt)
        gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip))
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        elif math.isfinite(gnorm):
            opt.step()
        sync()
        if k >= warmup:
            times.append(time.perf_counter() - t0)
            audio += batch["audio_seconds"]
    seconds = sum(times)
    return {
        "rnn_type": cfg.model.rnn_type, "precision": precision, "steps": len(times),
        "utts_per_batch": float(np.mean([len(b["lengths"]) for b in batches[warmup:]])),
        "audio_sec_per_sec": audio / seconds if seconds else 0.0,
        "sec_per_step": float(np.median(times)) if times else 0.0,
        "peak_memory_gb": torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None,
        "parameters_m": model.num_parameters() / 1e6, "last_loss": loss.item(),
    }


def epoch_hours(audio_sec_per_sec: float, hours: float, copies: int) -> float:
    """Hours of one epoch of ``hours`` of audio times ``copies`` (speed perturbation) at that rate."""
    return hours * copies * 3600 / audio_sec_per_sec / 3600 if audio_sec_per_sec > 0 else float("inf")


def ort_provider(name: str) -> tuple[str | None, str]:
    """onnxruntime's provider for ``name`` ("cuda" or "cpu"), or None and why not."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "onnxruntime is not installed"
    want = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}[name]
    have = ort.get_available_providers()
    if want not in have:
        return None, f"onnxruntime {ort.__version__} has no {want} (providers: {', '.join(have)}); install onnxruntime-gpu"
    return want, ""


def measure_ort(cfg, provider: str, batch_sizes: list[int], rounds: int, seed: int = 0) -> list[dict]:
    """Export the config's (untrained) model as ``asr export`` does and decode batches of
    synthetic utterances with ``provider``: audio seconds per second, model call and greedy
    decoding (the front end is not included)."""
    import onnxruntime as ort
    import torch

    from asr.decoding.greedy import greedy_ids
    from asr.text import tokenizer_from_dict
    from asr.train.checkpoint import save_checkpoint
    from asr.train.export import export_onnx
    from asr.train.model import CTCModel

    torch.manual_seed(seed)
    model = CTCModel(cfg.model).eval()
    # a word vocabulary of the model's size stands in for the config's tokenizer: same graph
    tokenizer = tokenizer_from_dict({"kind": "word", "vocab": ["<blank>"] + [f"w{i}" for i in range(cfg.model.vocab_size - 1)]})
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, onnx_path = os.path.join(tmp, "model.pt"), os.path.join(tmp, "model.onnx")
        save_checkpoint(ckpt, model, cfg, tokenizer)
        export_onnx(ckpt, onnx_path)
        opts = ort.SessionOptions()
        sess = ort.InferenceSession(onnx_path, opts, providers=[provider])
        names = [i.name for i in sess.get_inputs()]
        fps = cfg.frontend.sample_rate / cfg.frontend.hop_length
        rng = np.random.default_rng(seed)
        for bs in batch_sizes:
            seconds = utterance_seconds(bs, seed + bs)
            frames = (seconds * fps).astype(np.int64)
            feats = rng.standard_normal((bs, int(frames.max()), cfg.frontend.n_mels)).astype(np.float32)
            feed = {names[0]: feats, names[1]: frames}
            sess.run(None, feed)  # warm-up: allocations, cuDNN algorithm choice
            best = float("inf")
            for _ in range(rounds):
                t0 = time.perf_counter()
                logp, out_len = sess.run(None, feed)[:2]
                for row in range(bs):
                    greedy_ids(logp[row, : int(out_len[row])])
                best = min(best, time.perf_counter() - t0)
            audio = float(seconds.sum())
            out.append({"provider": provider, "batch": bs, "audio_seconds": audio, "seconds": best,
                        "audio_sec_per_sec": audio / best, "rtf": best / audio})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=os.path.join(ROOT, "recipes/librispeech/conf_960.yaml"), help="the recipe's config")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides (section.key=value)")
    p.add_argument("--device", default="auto", help="auto (a GPU when there is one), cuda, cuda:N or cpu")
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps per setting")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (cuDNN algorithm choice, allocator)")
    p.add_argument("--precision", default="fp32,bf16,fp16", help="comma-separated: fp32, bf16, fp16")
    p.add_argument("--rnn", default="gru,lstm", help="comma-separated recurrent layer types")
    p.add_argument("--hours", type=float, default=960.0, help="hours of audio in the projected epoch")
    p.add_argument("--ort-provider", choices=["cuda", "cpu", "none"], default=None,
                   help="onnxruntime provider for the decoding measure (default: cuda on a GPU, none on the CPU)")
    p.add_argument("--ort-batches", default="1,16,64", help="comma-separated batch sizes for the decoding measure")
    p.add_argument("--ort-rounds", type=int, default=3, help="timed rounds per batch size (the best counts)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    p.add_argument("--out", help="write the report as JSON")
    args = p.parse_args(argv)

    import torch

    from asr.train.config import load_config

    torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda, but PyTorch sees no GPU", file=sys.stderr)
        return 2
    cfg = model_config(load_config(args.config, args.set))
    copies = max(1, len(cfg.train.speed_perturb))
    report = {"config": args.config, "overrides": args.set, "device": device, "torch": torch.__version__,
              "hours": args.hours, "speed_copies": copies, "training": [], "decoding": []}
    if device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(torch.device(device))
        report["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        torch.backends.cudnn.benchmark = False  # as asr train runs (the default)
    print(f"{args.config} on {report.get('gpu', device)} (torch {torch.__version__}"
          f"{', cuDNN %s' % report['cudnn'] if report.get('cudnn') else ''}); max_frames {cfg.train.max_frames}, "
          f"max_batch {cfg.train.max_batch}; epoch = {args.hours:g} h x {copies} speed copies")
    print(f"{'rnn':5} {'precision':9} {'utts/batch':>10} {'s/step':>8} {'audio s/s':>10} {'peak GB':>8} {'epoch h (1 dev)':>16}")
    batches = synthetic_batches(cfg, args.warmup + args.steps)
    for rnn in [r for r in args.rnn.split(",") if r]:
        cfg.model.rnn_type = rnn
        for precision in [x for x in args.precision.split(",") if x]:
            try:
                r = measure_training(cfg, batches, device, precision, args.warmup)
            except torch.cuda.OutOfMemoryError as exc:
                r = {"rnn_type": rnn, "precision": precision, "error": f"out of memory: {str(exc).splitlines()[0]}"}
                torch.cuda.empty_cache()
                print(f"{rnn:5} {precision:9} {r['error']}")
                report["training"].append(r)
                continue
            r["epoch_hours_one_gpu"] = epoch_hours(r["audio_sec_per_sec"], args.hours, copies)
            report["training"].append(r)
            mem = f"{r['peak_memory_gb']:.1f}" if r["peak_memory_gb"] is not None else "-"
            print(f"{rnn:5} {precision:9} {r['utts_per_batch']:10.1f} {r['sec_per_step']:8.3f} {r['audio_sec_per_sec']:10.0f} "
                  f"{mem:>8} {r['epoch_hours_one_gpu']:16.1f}")

    provider_name = args.ort_provider or ("cuda" if device.startswith("cuda") else "none")
    if provider_name == "none":
        print("decoding with onnxruntime: skipped (--ort-provider none)")
    else:
        provider, why = ort_provider(provider_name)
        if provider is None:
            print(f"decoding with onnxruntime: skipped: {why}")
            report["decoding_skipped"] = why
        else:
            cfg.model.rnn_type = args.rnn.split(",")[0]
            sizes = [int(x) for x in args.ort_batches.split(",") if x]
            report["decoding"] = measure_ort(cfg, provider, sizes, args.ort_rounds)
            print(f"decoding with onnxruntime {provider}, {cfg.model.rnn_type}, greedy (front end not included):")
            for r in report["decoding"]:
                print(f"  batch {r['batch']:3d}: {r['audio_sec_per_sec']:9.0f} audio s/s (RTF {r['rtf']:.5f})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
