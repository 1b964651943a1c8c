"""Does the data loader keep up with the model? And what does the manifest cost in memory?

    python tools/measure_loader.py --config recipes/librispeech/conf_100.yaml \\
        --set data.train=data/ls_like100/train.jsonl --workers 0,1,2 --batches 8 --model-batches 2

1. Memory: the training manifest indexed (:class:`asr.manifest.ManifestIndex`: it stays on
   disk), the training dataset built over it (:class:`asr.train.data.OnTheFlyDataset`: every
   speed-perturbed copy an item, transcripts checked, encoded again per batch) and epoch 1's
   batch plan (:func:`asr.train.data.bucket_batches`), as ``asr train`` makes them with
   ``train.precompute_features: false``: the growth of the process's resident memory, after a
   small dataset was built first (the front end's and tokenizer's one-time costs are not the
   manifest's) and with freed memory handed back to the system (``malloc_trim``); the peak
   while building is printed beside. Python's objects alone (tracemalloc) are counted on the
   first 20,000 utterances. ``--repeat K`` reads K copies of the manifest as one (K x its
   utterances: a million-utterance manifest from a small one).
2. The loader: the first ``--batches`` batches of epoch 1 (the config's bucketing,
   ``train.max_frames`` / ``train.max_batch``) built by :func:`asr.train.data.batch_loader` --
   audio read, speed-perturbed, log-mel, padded -- with each number of background ``--workers``
   (worker start-up included), in audio seconds per second.
3. The model: forward (SpecAugment), CTC loss, backward, clipping and an AdamW step over the
   first ``--model-batches`` of those batches, on ``train.num_threads`` threads, at each
   ``--precision`` (fp32; bf16 autocast as ``train.precision: bf16`` runs it), in audio seconds
   per second.

It ends with the ratio loader / model for each number of workers: above 1 the loader keeps
up and training is model-bound. ``--out`` writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure_training import bare_loop  # noqa: E402  the model's steps, timed as measure_training times them


def _mb(nbytes: float) -> float:
    return nbytes / 2**20


def rss(trim: bool = True) -> int:
    """Resident memory of this process now, bytes (Linux; 0 elsewhere); with ``trim``, after
    garbage collection and freed memory handed back to the system (glibc's ``malloc_trim``)."""
    import ctypes
    import gc

    if trim:
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="recipes/librispeech/conf_100.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides, as asr train takes")
    p.add_argument("--repeat", type=int, default=1, help="read this many copies of the manifest as one (memory)")
    p.add_argument("--workers", default="0,1,2", help="numbers of loader workers to time (comma-separated)")
    p.add_argument("--batches", type=int, default=8, help="batches the loader builds per setting")
    p.add_argument("--model-batches", type=int, default=2, help="batches the model trains on per precision (0: none)")
    p.add_argument("--precision", default="fp32", help="model precisions to time: fp32, bf16 (comma-separated)")
    p.add_argument("--out", metavar="PATH", help="also write the figures here (JSON)")
    args = p.parse_args(argv)

    import torch

    from asr.manifest import ManifestIndex
    from asr.train.config import load_config
    from asr.train.data import OnTheFlyDataset, batch_loader, bucket_batches
    from asr.train.trainer import _build_tokenizer

    cfg = load_config(args.config, args.set)
    tc, fe = cfg.train, cfg.frontend
    torch.set_num_threads(max(1, tc.num_threads))
    report: dict = {"config": args.config, "overrides": args.set}

    manifest = cfg.data.train
    if args.repeat > 1:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
        with open(manifest) as f:
            lines = f.readlines()
        for _ in range(args.repeat):
            tmp.writelines(lines)
        tmp.close()
        manifest = tmp.name
    r0 = rss()
    t = time.perf_counter()
    entries = ManifestIndex.read(manifest)  # as asr train reads it for data computed per batch
    read_s = time.perf_counter() - t
    entries_bytes = rss() - r0
    t = time.perf_counter()
    tokenizer = _build_tokenizer(cfg, entries[: len(entries) // args.repeat])
    tok_s = time.perf_counter() - t
    speeds = tuple(tc.speed_perturb)
    OnTheFlyDataset(entries[:100], fe, tokenizer, speeds=speeds)  # one-time costs (front end, tokenizer)
    r0 = rss()
    t = time.perf_counter()
    ds = OnTheFlyDataset(entries, fe, tokenizer, speeds=speeds)
    ds_s = time.perf_counter() - t
    ds_peak = rss(trim=False) - r0
    ds_bytes = rss() - r0
    r0 = rss()
    plan = bucket_batches(ds.base_lengths(), tc.max_frames, tc.max_batch, True, tc.seed, 0)  # as the trainer's epoch
    plan_peak, plan_bytes, n_batches = rss(trim=False) - r0, rss() - r0, len(plan)
    del plan
    with open(manifest, "rb") as f, tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as head:
        head.writelines(line for line, _ in zip(f, range(20000)))  # Python's own objects, traced (slow): a sample
    tracemalloc.start()
    part = ManifestIndex.read(head.name)
    sample = OnTheFlyDataset(part, fe, tokenizer, speeds=speeds)
    py_bytes, k = tracemalloc.get_traced_memory()[0], len(part)
    tracemalloc.stop()
    del part, sample
    os.unlink(head.name)
    if args.repeat > 1:
        os.unlink(manifest)
    n = len(entries)
    report["memory"] = {"utterances": n, "items": len(ds), "read_s": round(read_s, 2), "tokenizer_s": round(tok_s, 2),
                        "dataset_s": round(ds_s, 2), "entries_mb": round(_mb(entries_bytes), 1),
                        "dataset_mb": round(_mb(ds_bytes), 1), "dataset_peak_mb": round(_mb(ds_peak), 1),
                        "plan_batches": n_batches, "plan_mb": round(_mb(plan_bytes), 1),
                        "plan_peak_mb": round(_mb(plan_peak), 1),
                        "mb_per_million_utterances": round(_mb(entries_bytes + ds_bytes) * 1e6 / n, 1),
                        "with_plan_mb_per_million_utterances": round(_mb(entries_bytes + ds_bytes + plan_bytes) * 1e6 / n, 1),
                        "python_bytes_per_utterance": round(py_bytes / k, 1)}
    m = report["memory"]
    print(f"manifest {cfg.data.train}{f' x {args.repeat}' if args.repeat > 1 else ''}: {n} utterances indexed in "
          f"{read_s:.1f} s, {m['entries_mb']} MB; dataset of {len(ds)} items (speeds {tc.speed_perturb}) built in "
          f"{ds_s:.1f} s, {m['dataset_mb']} MB more (peak {m['dataset_peak_mb']}): "
          f"{m['mb_per_million_utterances']} MB per million utterances (resident; Python objects alone "
          f"{m['python_bytes_per_utterance']:g} bytes an utterance); epoch 1's plan of {n_batches} batches "
          f"{m['plan_mb']} MB more (peak {m['plan_peak_mb']}): {m['with_plan_mb_per_million_utterances']} MB "
          f"per million with it")
    if args.repeat > 1:  # the rest on one copy
        ds = OnTheFlyDataset(entries[: n // args.repeat], fe, tokenizer, speeds=tuple(tc.speed_perturb))
    del entries

    order = bucket_batches(ds.lengths, tc.max_frames, tc.max_batch, True, tc.seed, 0)[: args.batches]
    audio = sum(ds.lengths[i] for b in order for i in b) * fe.frame_shift_s
    print(f"{len(order)} batches of epoch 1 (train.max_frames {tc.max_frames}, train.max_batch {tc.max_batch}): "
          f"{audio:.0f} s of audio, {audio / len(order):.0f} s a batch")
    report["loader"] = {}
    kept: list = []
    for w in [int(x) for x in args.workers.split(",") if x.strip()]:
        t = time.perf_counter()
        first = not report["loader"]
        for b in batch_loader(ds, order, w, tc.prefetch):
            if first and b is not None and len(kept) < args.model_batches:  # the model's batches
                kept.append(b)
        s = time.perf_counter() - t
        report["loader"][w] = {"seconds": round(s, 2), "audio_s_per_s": round(audio / s, 1)}
        print(f"  loader, {w} worker(s): {s:6.1f} s, {audio / s:7.1f} audio s/s")
    report["model"] = {}
    if kept:
        cfg.model.input_dim, cfg.model.vocab_size = fe.n_mels, len(tokenizer.vocab)
        m_audio = float(sum(b["lengths"].sum() for b in kept)) * fe.frame_shift_s
        for prec in [x.strip() for x in args.precision.split(",") if x.strip()]:
            s = bare_loop(cfg, kept, cfg.train.seed, prec)
            report["model"][prec] = {"batches": len(kept), "seconds_per_step": round(s / len(kept), 2),
                                     "audio_s_per_s": round(m_audio / s, 1)}
            print(f"  model ({cfg.model.rnn_type} {cfg.model.num_layers} x {cfg.model.hidden_size}, {prec}, "
                  f"{tc.num_threads} thread(s)): {s / len(kept):6.1f} s a step, {m_audio / s:7.1f} audio s/s")
        for prec, mr in report["model"].items():
            ratios = {w: round(lr["audio_s_per_s"] / mr["audio_s_per_s"], 2) for w, lr in report["loader"].items()}
            report["model"][prec]["loader_over_model"] = ratios
            print(f"  loader / model ({prec}): " + ", ".join(f"{r}x with {w} worker(s)" for w, r in ratios.items()))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
