"""Throughput of ``asr train`` against a bare forward/backward/step loop on the same batches.

    python tools/measure_training.py --config recipes/fsdd/conf.yaml [--utts 800] [--dev-utts 100] [--set KEY=VALUE ...]

Trains one epoch with ``asr train``'s own code (:func:`asr.train.trainer.train`) on the first
``--utts`` utterances of the config's training manifest, then runs a bare loop over the very
same batches (the same feature tensors, collated before the clock starts): forward with the
same augmentation and chunk sizes, CTC loss, backward, gradient clipping, an AdamW step, and
nothing else. Reports audio seconds trained per second for both, and where ``asr train``'s
extra time goes: feature preparation, batch collation inside the loop, the training monitor
(per-layer gradient norms, steps.csv), dev decoding and checkpoint saving. Both on one thread
(the config's ``train.num_threads``), in this one process; the bare loop runs twice and the
faster run counts.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from functools import partial

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark import timed  # noqa: E402


def bare_loop(cfg, batches: list, seed: int, precision: str = "fp32") -> float:
    """Seconds for forward/backward/clip/step over ``batches`` (collated dicts), as training does
    them (the config's perturbations and SpecAugment, autocast for ``precision`` bf16/fp16, the
    CTC loss in fp32); tools/measure_loader.py times the model with it too."""
    import torch

    from asr.train.features import spec_augment
    from asr.train.model import CTCModel
    from asr.train.trainer import perturb_batch

    tc = cfg.train
    torch.manual_seed(seed)
    model = CTCModel(cfg.model)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    augment = partial(spec_augment, cfg=tc.specaugment) if tc.specaugment else None
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    t0 = time.perf_counter()
    for batch in batches:
        opt.zero_grad(set_to_none=True)
        lengths = batch["lengths"]
        feats, chunk = perturb_batch(batch["feats"], lengths, cfg)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            logp, out_len = model(feats, lengths, augment=augment, chunk_size=chunk)
        loss = torch.nn.functional.ctc_loss(logp.float().transpose(0, 1), batch["targets"], out_len, batch["target_lengths"],
                                            zero_infinity=True, reduction="sum") / len(lengths)
        loss.backward()
        gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip))
        if math.isfinite(gnorm):
            opt.step()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="recipes/fsdd/conf.yaml")
    p.add_argument("--utts", type=int, default=800, help="training utterances (the first of the manifest)")
    p.add_argument("--dev-utts", type=int, default=100, help="dev utterances decoded after the epoch, as asr train does")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides, as asr train --set")
    p.add_argument("--out", metavar="PATH", help="also write the figures here (JSON)")
    args = p.parse_args(argv)

    import torch

    import asr.train.trainer as training
    from asr.manifest import read_manifest, write_manifest
    from asr.train import data as nn_data
    from asr.train.config import load_config

    cfg = load_config(args.config, args.set)
    tmp = tempfile.mkdtemp(prefix="asr-train-bench-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # exported models / the run: gone when done
    train_m, dev_m = os.path.join(tmp, "train.jsonl"), os.path.join(tmp, "dev.jsonl")
    write_manifest(train_m, read_manifest(cfg.data.train)[: args.utts])
    cfg.data.train = train_m
    if cfg.data.dev and args.dev_utts > 0:
        write_manifest(dev_m, read_manifest(cfg.data.dev)[: args.dev_utts])
        cfg.data.dev = dev_m
    else:
        cfg.data.dev = None
    cfg.train.epochs = 1
    cfg.train.precompute_features = True  # the bare loop gets the same tensors
    torch.set_num_threads(max(1, cfg.train.num_threads))

    captured = {}
    init = nn_data.FeatureDataset.__init__

    def capture(self, *a, **k):
        init(self, *a, **k)
        captured.setdefault("train", self)  # the first one built is the training set

    acc: Counter = Counter()
    parts = [(nn_data.FeatureDataset, "__init__", "features (before the loop)"),
             (nn_data._Items, "batch", "collating batches"),
             (training, "layer_grad_norms", "monitor: per-layer gradient norms"),
             (training.TrainingMonitor, "step", "monitor: steps.csv"),
             (training, "decode_dataset", "dev decoding (after the loop)"),
             (training.TrainingMonitor, "epoch", "monitor: epoch statistics (gates, figures)"),
             (training, "compute_stats", "normalization statistics"),
             (training, "nonspeech_entries", "generating non-speech clips"),
             (torch.optim.AdamW, "__init__", "the optimizer (its first one imports torch._dynamo)"),
             (training, "save_checkpoint", "saving checkpoints")]
    nn_data.FeatureDataset.__init__ = capture
    try:
        with timed(acc, parts):
            t = time.perf_counter()
            training.train(cfg, os.path.join(tmp, "exp"), progress=False)
            whole = time.perf_counter() - t
    finally:
        nn_data.FeatureDataset.__init__ = init
    import csv

    with open(os.path.join(tmp, "exp", "log.csv")) as f:
        row = list(csv.DictReader(f))[-1]
    loop_s, audio_s = float(row["epoch_seconds"]), float(row["audio_seconds"])

    ds = captured["train"]
    tc = cfg.train
    order = nn_data.bucket_batches(ds.lengths, tc.max_frames, tc.max_batch, not tc.sortagrad, tc.seed, 0)
    batches = [b for b in (ds.batch(ix) for ix in order) if b is not None]
    bare = min(bare_loop(cfg, batches, tc.seed), bare_loop(cfg, batches, tc.seed))

    in_loop = {k: acc[k] for k in ("collating batches", "monitor: per-layer gradient norms", "monitor: steps.csv")}
    outside = {k: acc[k] for k in ("features (before the loop)", "generating non-speech clips", "normalization statistics",
                                   "the optimizer (its first one imports torch._dynamo)",
                                   "dev decoding (after the loop)", "monitor: epoch statistics (gates, figures)",
                                   "saving checkpoints")}
    print(f"config {args.config}: {cfg.model.rnn_type}, {len(ds)} training items ({audio_s:.0f} s of audio in the epoch), "
          f"{len(batches)} batches, {tc.num_threads} thread(s)")
    print(f"{'':<44} {'seconds':>8} {'audio s/s':>10} {'vs bare':>8}")
    print(f"{'bare forward/backward/clip/step loop':<44} {bare:8.1f} {audio_s / bare:10.1f} {'100%':>8}")
    print(f"{'asr train, its epoch loop':<44} {loop_s:8.1f} {audio_s / loop_s:10.1f} {100 * bare / loop_s:7.0f}%")
    print(f"{'asr train, the whole call':<44} {whole:8.1f} {audio_s / whole:10.1f} {100 * bare / whole:7.0f}%")
    print("inside the epoch loop, beyond the bare loop:")
    for k, v in in_loop.items():
        print(f"  {k:<52} {v:8.2f} s ({100 * v / loop_s:.1f}% of the loop)")
    rest = loop_s - bare - sum(in_loop.values())
    print(f"  {'the rest (augmentation draws, progress bar, drift)':<52} {rest:8.2f} s ({100 * rest / loop_s:.1f}%)")
    print("outside the loop:")
    for k, v in outside.items():
        print(f"  {k:<52} {v:8.2f} s")
    other = whole - loop_s - sum(outside.values())
    print(f"  {'the rest (manifests, tokenizer, model, log)':<52} {other:8.2f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"bare_s": bare, "loop_s": loop_s, "whole_s": whole, "audio_s": audio_s, "in_loop": in_loop,
                       "outside": outside}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
