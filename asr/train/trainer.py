"""The training loop: CTC loss, AdamW with warm-up and cosine decay, gradient clipping,
SpecAugment, length-bucketed batches, per-epoch dev WER, atomic checkpoints and exact resume.

Resume is exact: the batch order of each epoch is a pure function of (seed, epoch) (of
(seed, epoch, process) for sharded data: :func:`asr.train.data.shard_batches`), and the
checkpoint holds the model, optimizer, scheduler, torch RNG state and the position inside the
epoch, so a run stopped and resumed ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Optional, Sequence

import numpy as np
import torch

from asr.decoding.greedy import greedy_ids
from asr.manifest import ManifestIndex, read_manifest
from asr.metrics import error_stats
from asr.shards import ShardEntries, is_shard_index, read_index, shard_entries
from asr.text import PhoneTokenizer, Tokenizer, build_tokenizer, normalize_text, tokenizer_from_dict
from asr.train import distributed
from asr.train.checkpoint import checkpoint_paths, epoch_checkpoints, load_checkpoint, save_checkpoint
from asr.train.config import ExperimentConfig
from asr.train.data import (
    FeatureDataset,
    OnTheFlyDataset,
    batch_loader,
    bucket_batches,
    chain_entries,
    epoch_items,
    interleave_ranks,
    is_synthetic,
    mark_synthetic,
    nonspeech_entries,
    shard_batches,
    string_specs,
)
from asr.train.diagnostics import layer_grad_norms, part_of
from asr.train.features import compute_stats, random_eq, random_gain, random_noise, spec_augment, vtlp
from asr.train.model import CTCModel, utterance_cmn
from asr.train.monitor import CsvLog, TrainingMonitor, require_tensorboard

log = logging.getLogger(__name__)

__all__ = ["train", "decode_dataset", "dataset_log_probs", "TrainResult"]

LOG_FIELDS = [
    "epoch", "step", "train_loss", "lr", "grad_norm", "dev_loss", "dev_wer", "dev_cer",
    "epoch_seconds", "audio_seconds", "audio_sec_per_sec",
    "clip_rate", "grad_norm_max",  # share of steps whose gradient norm exceeded train.grad_clip; the largest norm
]


@dataclass
class TrainResult:
    exp_dir: str
    best_path: str
    best_dev_wer: Optional[float]
    epochs_run: int
    train_seconds: float
    audio_seconds: float


def lr_lambda(step: int, warmup: int, total: int, min_ratio: float) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def dataset_log_probs(
    model: CTCModel, ds: FeatureDataset, max_frames: int = 40000, max_batch: int = 64,
    chunk_size: Optional[int] = None, right_context: Optional[int] = None, device: Optional[torch.device] = None,
) -> tuple[list[np.ndarray], Optional[float]]:
    """Per-utterance (frames, vocab) CTC log-probabilities of every utterance of ``ds`` (in the
    model's serving condition unless ``chunk_size``/``right_context`` say otherwise; chunk_size
    0 = full context), and the mean CTC loss per utterance (None when ``ds`` has no targets)."""
    model.eval()
    out: list[Optional[np.ndarray]] = [None] * len(ds)
    loss_sum, n = 0.0, 0
    for b in bucket_batches(ds.lengths, max_frames, max_batch, shuffle=False):
        batch = {k: v.to(device) for k, v in ds.batch(b).items()} if device is not None else ds.batch(b)
        logp, out_len = model(batch["feats"], batch["lengths"], chunk_size=chunk_size, right_context=right_context)
        if "targets" in batch:
            loss = torch.nn.functional.ctc_loss(
                logp.transpose(0, 1), batch["targets"], out_len, batch["target_lengths"],
                zero_infinity=True, reduction="sum",
            )
            loss_sum, n = loss_sum + float(loss), n + len(b)
        lp, out_len = logp.float().cpu().numpy(), out_len.cpu()
        for row, i in enumerate(b):
            out[i] = lp[row, : int(out_len[row])].copy()
    return out, (loss_sum / n if n else None)


def decode_dataset(
    model: CTCModel, ds: FeatureDataset, tokenizer: Tokenizer, max_frames: int = 40000, max_batch: int = 64,
    chunk_size: Optional[int] = None, right_context: Optional[int] = None, device: Optional[torch.device] = None,
) -> tuple[list[str], list[str], Optional[float]]:
    """Greedy-decode every utterance of ``ds`` (see :func:`dataset_log_probs`). Returns
    references (normalized), hypotheses, and the mean CTC loss per utterance. A phone model's
    references are the phones of the transcripts (so its "WER" is a phone error rate, the word
    boundary counted as a phone); utterances with a word its lexicon lacks are left out."""
    log_probs, loss = dataset_log_probs(model, ds, max_frames, max_batch, chunk_size, right_context, device)
    hyps = [tokenizer.decode(greedy_ids(lp)) for lp in log_probs]
    refs = [normalize_text(e.text) for e in ds.entries]
    if getattr(tokenizer, "kind", "") == "phone":
        pairs = []
        for ref, hyp in zip(refs, hyps):
            try:
                pairs.append((tokenizer.decode(tokenizer.encode(ref)), hyp))
            except ValueError:
                continue
        refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    return refs, hyps, loss


def perturb_batch(feats: torch.Tensor, lengths: torch.Tensor, cfg: ExperimentConfig) -> tuple[torch.Tensor, Optional[int]]:
    """A training batch's feature-domain perturbations (``train.gain_db``, ``train.eq_db``,
    ``train.noise_snr``, ``train.vtlp``, in that order) and
    this step's chunk size (one of ``train.chunk_sizes`` for a latency-controlled model, else
    None: the config's own)."""
    tc = cfg.train
    if tc.gain_db:
        feats = random_gain(feats, lengths, tc.gain_db[0], tc.gain_db[1], cfg.frontend.log_floor)
    if tc.eq_db:
        feats = random_eq(feats, lengths, tc.eq_db, cfg.frontend.log_floor)
    if tc.noise_snr:
        feats = random_noise(feats, lengths, tc.noise_snr[0], tc.noise_snr[1], cfg.frontend.log_floor)
    if tc.vtlp:
        feats = vtlp(feats, tc.vtlp[0], tc.vtlp[1])
    chunk = None
    if cfg.model.chunk_size > 0 and tc.chunk_sizes:
        chunk = tc.chunk_sizes[int(torch.randint(len(tc.chunk_sizes), (1,)))]
    return feats, chunk


# set from the data when training starts (the front end's mel bins, the tokenizer's and the
# phone lexicon's sizes), not by the user: a config read anew does not hold them yet
_DERIVED_MODEL_FIELDS = ("input_dim", "vocab_size", "inter_vocab_size")


def _changed_settings(saved: ExperimentConfig, cfg: ExperimentConfig) -> list[str]:
    """The model and front-end settings (``model.hidden_size``, ...) in which ``cfg`` differs
    from a checkpoint's ``saved`` config, leaving out what training derives from the data."""
    out = []
    for section in ("model", "frontend"):
        old, new = getattr(saved, section).__dict__, getattr(cfg, section).__dict__
        out += [f"{section}.{k}" for k in old if old[k] != new.get(k)
                and not (section == "model" and k in _DERIVED_MODEL_FIELDS)]
    return out


def train(cfg: ExperimentConfig, exp_dir: str, resume: "bool | str" = False, progress: bool = True) -> TrainResult:
    """Train; ``resume``: True continues the run in ``exp_dir``, "auto" continues it when there
    is one and starts it otherwise (for torchrun's restarts). Under torchrun, data-parallel over all processes (see
    :mod:`asr.train.distributed`): rank 0 logs, evaluates and writes checkpoints."""
    tc = cfg.train
    torch.set_num_threads(max(1, tc.num_threads))
    dist = distributed.setup(tc.device)
    try:
        return _train(cfg, exp_dir, resume, progress and dist.is_main, dist)
    finally:
        dist.close()


def _train(cfg: ExperimentConfig, exp_dir: str, resume: "bool | str", progress: bool, dist: "distributed.Dist") -> TrainResult:
    from tqdm import tqdm

    tc = cfg.train
    device = dist.device
    if not dist.is_main:  # one voice in the log: rank 0's
        log.setLevel(logging.WARNING)
    if tc.tensorboard and dist.is_main:
        require_tensorboard()  # before any work
    if tc.precision != "fp32" and device.type != "cuda":
        # bf16 autocast on a CPU: a 5 x 512 BiGRU step took 100 s against fp32's 57 s on 2 cores
        # of a Xeon with AMX-BF16 (recipes/librispeech/README.md, tools/measure_loader.py)
        log.warning("train.precision=%s on %s runs (so it can be tested) but is slower than fp32 there; "
                    "it is meant for GPUs (train.precision=fp32 for a CPU run)", tc.precision, device)
    os.makedirs(exp_dir, exist_ok=True)
    paths = checkpoint_paths(exp_dir)
    state = _checkpoint_to_resume(paths["last"], resume, exp_dir, dist)
    if state is not None:
        saved = ExperimentConfig.from_dict(state["config"])
        changed = _changed_settings(saved, cfg)
        if changed:
            log.warning("--resume: %s differ from the checkpoint's; using the checkpoint's", ", ".join(changed))
        cfg.model, cfg.frontend = saved.model, saved.frontend

    torch.manual_seed(tc.seed)
    sharded = is_shard_index(cfg.data.train)  # tar shards (asr.shards) rather than a manifest
    if sharded:
        train_entries = shard_entries(cfg.data.train)
    elif tc.precompute_features:
        train_entries = read_manifest(cfg.data.train)
    else:  # the manifest stays on disk: a few bytes an utterance in memory
        train_entries = ManifestIndex.read(cfg.data.train)
    tokenizer = tokenizer_from_dict(state["tokenizer"]) if state else _build_tokenizer(cfg, train_entries)
    nonspeech = nonspeech_entries(train_entries, tc.nonspeech_fraction, tc.seed)  # after the tokenizer: real text only
    if nonspeech:
        log.info("train.nonspeech_fraction %g: %d generated non-speech clips with empty transcripts", tc.nonspeech_fraction, len(nonspeech))
        train_entries = chain_entries(train_entries, nonspeech)
    if cfg.data.synthetic:
        synthetic = mark_synthetic(read_manifest(cfg.data.synthetic))
        log.info("data.synthetic %s: %d utterances (%.1f h), %g per real item each epoch%s", cfg.data.synthetic,
                 len(synthetic), sum(e.duration for e in synthetic) / 3600, tc.synthetic_ratio,
                 f", none in the last {tc.real_only_epochs} epoch(s)" if tc.real_only_epochs else "")
        train_entries = chain_entries(train_entries, synthetic)
    if tc.precompute_features:
        train_ds = FeatureDataset(train_entries, cfg.frontend, tokenizer, progress, desc="train features",
                                  speeds=tuple(tc.speed_perturb), keep_waves=tc.concat is not None)
    else:
        train_ds = OnTheFlyDataset(train_entries, cfg.frontend, tokenizer, speeds=tuple(tc.speed_perturb))
    dev_ds = None
    if cfg.data.dev and dist.is_main:
        dev_ds = FeatureDataset(read_manifest(cfg.data.dev), cfg.frontend, tokenizer, progress, "dev features", require_targets=False)
    if len(train_ds) == 0:
        raise ValueError(f"{cfg.data.train}: no usable training utterances")

    cfg.model.input_dim = cfg.frontend.n_mels
    cfg.model.vocab_size = len(tokenizer.vocab)
    if cfg.data.aux_lexicon:
        phones = PhoneTokenizer.from_lexicon(cfg.data.aux_lexicon)
        missing = train_ds.set_aux_targets(phones)
        cfg.model.inter_vocab_size = len(phones.vocab)
        log.info("intermediate CTC head on %d phones of %s (%d of %d items have a word it lacks: no phone loss)",
                 len(phones.vocab) - 1, cfg.data.aux_lexicon, missing, len(train_ds))
    model = CTCModel(cfg.model)
    if state is None:
        feats = ([f for f, e in zip(train_ds.feats, train_ds.entries) if not is_synthetic(e)]  # real speech's
                 if tc.precompute_features else train_ds.sample_features(seed=tc.seed))
        if cfg.model.utterance_cmn:  # statistics of what the global normalization will see
            feats = (utterance_cmn(f[None], torch.tensor([f.shape[0]]))[0] for f in feats)
        mean, std = compute_stats(feats)
        model.set_normalization(mean, std)
    synthetic_mask = train_ds.synthetic_mask()
    n_synthetic = int(synthetic_mask.sum())
    log.info("model: %s, %.2fM parameters; train %d utts (%.0f s audio, speeds %s%s), dev %s utts",
             cfg.model.rnn_type, model.num_parameters() / 1e6, len(train_ds), train_ds.total_seconds, tc.speed_perturb,
             f"; {n_synthetic} of them synthetic" if n_synthetic else "", len(dev_ds) if dev_ds else 0)

    group = dist.world * tc.accum_steps  # batches per optimizer step, over all processes
    if dist.active:
        log.info("data parallel: %d processes (%s), %d batch(es) per process per step", dist.world,
                 "nccl" if device.type == "cuda" else "gloo", tc.accum_steps)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    n_items = len(train_ds)
    base_lengths = train_ds.base_lengths()
    candidates = train_ds.string_candidates(tc.concat.max_part_s) if tc.concat else []
    if tc.concat:
        if not candidates:
            raise ValueError(f"train.concat: no utterance of {cfg.data.train} can join a string (each needs a transcript "
                             f"and at most train.concat.max_part_s={tc.concat.max_part_s} s)")
        log.info("train.concat: %d connected strings per epoch of %d-%d of %d utterances, pauses up to %g s",
                 round(tc.concat.ratio * len(candidates)), *tc.concat.items, len(candidates), tc.concat.pause_s)

    def epoch_strings(epoch: int):
        return string_specs(candidates, tc.concat, cfg.frontend.sample_rate, tc.seed, epoch) if tc.concat else []

    shard_items: list[list[int]] = []
    if sharded:  # each shard's items in tar order (speed-perturbed copies side by side)
        n_shards = len(read_index(cfg.data.train)["shards"])
        shard_items = [[] for _ in range(n_shards)]
        if isinstance(train_ds, OnTheFlyDataset) and isinstance(train_ds.source, ShardEntries):
            of_shard = train_ds.source.shard[train_ds.source_index()].tolist()  # without reading a member again
        else:
            of_shard = [e.extra["shard"]["index"] for e in train_ds.entries]
        for i, k in enumerate(of_shard):
            shard_items[k].append(i)
        if n_shards < dist.world:
            raise ValueError(f"{cfg.data.train}: {n_shards} shard(s) for {dist.world} processes; each process needs "
                             "one of its own at least: write smaller shards (asr prepare shards --shard-size)")

    def sharded_batches(epoch: int) -> list[list[int]]:
        return interleave_ranks([shard_batches(shard_items, base_lengths, tc.max_frames, tc.max_batch,
                                               cfg.data.shuffle_buffer, tc.seed, epoch, r, dist.world)
                                 for r in range(dist.world)], tc.accum_steps)

    def epoch_batches(epoch: int) -> list[Sequence[int]]:
        """The epoch's batches (item indices): all items, or with data.synthetic every real item
        and that epoch's draw of synthetic ones (:func:`epoch_items`); with train.concat, then
        that epoch's connected strings (items n_items + k). Sharded data: every process's
        batches from its own shards (:func:`shard_batches`, :func:`interleave_ranks`)."""
        if sharded:
            return sharded_batches(epoch)
        shuffle = not (tc.sortagrad and epoch == 0)
        if cfg.data.synthetic:
            items = np.array(epoch_items(synthetic_mask, tc.synthetic_ratio, tc.seed, epoch,
                                         real_only=epoch >= tc.epochs - tc.real_only_epochs), dtype=np.int64)
        else:
            items = np.arange(n_items)
        lengths = base_lengths[items]
        strings = epoch_strings(epoch)
        if strings:
            items = np.concatenate([items, n_items + np.arange(len(strings))])
            lengths = np.concatenate([lengths, train_ds.string_lengths(strings)])
        picked = bucket_batches(lengths, tc.max_frames, tc.max_batch, shuffle, tc.seed, epoch)
        return [items[b] for b in picked]

    # the learning-rate schedule spans every epoch's steps (epochs may differ with data.synthetic)
    steps_per_epoch = [len(epoch_batches(e)) // group for e in range(tc.epochs)]
    if min(steps_per_epoch) < 1:
        raise ValueError(f"{cfg.data.train}: fewer batches than processes x train.accum_steps ({group})")
    total_steps = min(sum(steps_per_epoch), tc.max_steps) if tc.max_steps else sum(steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, partial(lr_lambda, warmup=tc.warmup_steps, total=total_steps, min_ratio=tc.min_lr_ratio)
    )
    prog = {"epoch": 0, "batch": 0, "step": 0, "best_wer": None, "best_epoch": None,
            "train_seconds": 0.0, "audio_seconds": 0.0}
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        prog.update(state["progress"])
    # every process's random generator and running epoch sums are in the checkpoint, so each
    # one continues its own dropout and augmentation draws and its share of the epoch's log row
    # (an elastic restart with the same number of processes resumes exactly)
    per_rank = state.get("per_rank") if state is not None else None
    own = per_rank[dist.rank] if per_rank is not None and len(per_rank) == dist.world else None
    if state is not None:
        torch.set_rng_state(own["rng"] if own is not None else state["rng"])
        if own is not None and own.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state(own["cuda_rng"], device)  # dropout and augmentation on the GPU
        log.info("resuming from %s at epoch %d, batch %d (step %d)", paths["last"], prog["epoch"] + 1, prog["batch"], prog["step"])
    if dist.rank > 0 and own is None:  # same initial weights everywhere (DDP also broadcasts rank 0's); own augmentation draws
        torch.manual_seed(tc.seed + 7919 * dist.rank + prog["step"])
    # this epoch so far, on this process: loss, gradient norm and audio sums, steps, seconds
    sums = dict(own["epoch_sums"]) if own is not None and prog["batch"] > 0 else {}

    net = model
    if dist.active:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(tc.precision)
    scaler = torch.amp.GradScaler(device.type) if tc.precision == "fp16" else None
    if scaler is not None and state is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    augment = partial(spec_augment, cfg=tc.specaugment) if tc.specaugment else None
    csv_log = CsvLog(os.path.join(exp_dir, "log.csv"), LOG_FIELDS) if dist.is_main else None
    monitor = None
    if dist.is_main:  # steps.csv, gates.csv, TensorBoard (asr.train.monitor)
        parts = list(dict.fromkeys(part_of(n) for n, _ in model.named_parameters()))
        monitor = TrainingMonitor(exp_dir, parts, tc.grad_clip, tc.tensorboard, tc.gate_stats_utts if dev_ds else 0)

    def save_last(epoch_sums: Optional[dict] = None):
        """Rank 0 writes last.pt; called by every process at the same points, as it gathers
        each one's generator and (mid-epoch) its sums of the epoch so far."""
        per_rank = dist.gather({"rng": torch.get_rng_state(), "epoch_sums": epoch_sums or {},
                                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None})
        if dist.is_main:
            save_checkpoint(paths["last"], model, cfg, tokenizer, optimizer=opt.state_dict(),
                            scheduler=sched.state_dict(), progress=dict(prog), rng=per_rank[0]["rng"], per_rank=per_rank,
                            **({"scaler": scaler.state_dict()} if scaler is not None else {}))

    def micro_step(batch: Optional[dict], n_micro: int, sync: bool) -> float:
        if batch is None:  # every utterance failed to load (warned): under DDP this process must
            if not dist.active:  # still join the gradient all-reduce, with a zero contribution
                return 0.0
            feats = torch.zeros(1, 8 * cfg.model.subsampling, cfg.frontend.n_mels, device=device)
            with net.no_sync() if not sync else contextlib.nullcontext():
                logp, _ = net(feats, torch.tensor([feats.shape[1]], device=device))
                (logp.float().sum() * 0.0).backward()
            return 0.0
        feats, lengths = batch["feats"].to(device, non_blocking=True), batch["lengths"].to(device)
        feats, chunk = perturb_batch(feats, lengths, cfg)
        ctx = net.no_sync() if (dist.active and not sync) else contextlib.nullcontext()
        with ctx:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logp, out_len = net(feats, lengths, augment=augment, chunk_size=chunk)

            def ctc(lp, key="", keep=None):
                """Mean CTC loss per utterance of ``lp`` against batch[key + "targets"]; ``keep``
                (bool per utterance) leaves the others out of the sum."""
                y, yl = batch[key + "targets"].to(device), batch[key + "target_lengths"].to(device)
                per = torch.nn.functional.ctc_loss(lp.float().transpose(0, 1), y, out_len, yl, zero_infinity=True,
                                                   reduction="sum" if keep is None else "none")
                return (per if keep is None else (per * keep.to(device)).sum()) / (len(lengths) * n_micro)

            loss = ctc(logp)
            inter = model.intermediate
            if inter is not None:  # (weight 0 still joins the graph: DDP wants every parameter used)
                # phones where data.aux_lexicon has every word of the utterance, else the model's own units
                aux = ctc(inter, "aux_", batch["aux_valid"]) if "aux_targets" in batch else ctc(inter)
                loss = (1 - tc.inter_ctc_weight) * loss + tc.inter_ctc_weight * aux
            (scaler.scale(loss) if scaler is not None else loss).backward()
        return loss.item()

    def epoch_so_far() -> dict:  # the running sums of the epoch loop below, for a mid-epoch checkpoint
        return {"loss": loss_sum, "norm": norm_sum, "steps": n_steps, "audio": audio, "seconds": time.perf_counter() - t0,
                "grad_norms": list(monitor.epoch_norms) if monitor is not None else []}

    stop = _StopFlag()
    try:
        while prog["epoch"] < tc.epochs and not (tc.max_steps and prog["step"] >= tc.max_steps):
            epoch = prog["epoch"]
            batches = epoch_batches(epoch)
            train_ds.strings = epoch_strings(epoch)
            # step k uses batches [k*group, (k+1)*group): process r takes every world-th of them,
            # so the processes share each epoch without overlap; the < group left over are dropped
            starts = range(prog["batch"], len(batches) - group + 1, group)
            mine = [batches[g + a * dist.world + dist.rank] for g in starts for a in range(tc.accum_steps)]
            model.train()
            t0 = time.perf_counter() - sums.get("seconds", 0.0)
            loss_sum, norm_sum, n_steps, audio = (sums.get(k, 0) for k in ("loss", "norm", "steps", "audio"))
            if monitor is not None and sums.get("grad_norms"):
                monitor.epoch_norms = list(sums["grad_norms"])
            sums = {}
            bar = tqdm(total=len(batches) // group, initial=prog["batch"] // group, desc=f"epoch {epoch + 1}/{tc.epochs}",
                       disable=None if progress else True, leave=False, unit="step")
            workers = 0 if tc.precompute_features else tc.num_workers
            loader = batch_loader(train_ds, mine, workers, tc.prefetch)
            for g in starts:
                opt.zero_grad(set_to_none=True)
                loss_value = 0.0
                for a in range(tc.accum_steps):
                    batch = next(loader)
                    loss_value += micro_step(batch, tc.accum_steps, sync=a == tc.accum_steps - 1)
                    if batch is not None:
                        audio += float(batch["lengths"].sum()) * cfg.frontend.frame_shift_s
                if scaler is not None:
                    scaler.unscale_(opt)
                part_norms = layer_grad_norms(model) if monitor is not None else {}
                gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip))
                if scaler is not None:
                    scaler.step(opt)  # skips the step itself when the gradient overflowed
                    scaler.update()
                elif math.isfinite(gnorm):
                    opt.step()
                else:
                    log.warning("step %d: non-finite gradient norm, update skipped", prog["step"])
                if monitor is not None:
                    monitor.step(epoch + 1, prog["step"] + 1, loss_value, sched.get_last_lr()[0], gnorm, part_norms)
                sched.step()
                prog["step"] += 1
                prog["batch"] = g + group
                loss_sum += loss_value
                norm_sum += gnorm if math.isfinite(gnorm) else 0.0
                n_steps += 1
                bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{sched.get_last_lr()[0]:.2e}")
                bar.update(1)
                if dist.any(stop.requested):
                    stop.at_boundary = True
                    raise KeyboardInterrupt
                if tc.save_every_steps and prog["step"] % tc.save_every_steps == 0 and g + 2 * group <= len(batches):
                    save_last(epoch_so_far())
                if tc.max_steps and prog["step"] >= tc.max_steps:
                    break
            bar.close()
            finished = len(batches) - prog["batch"] < group  # else stopped at train.max_steps, mid-epoch
            seconds = time.perf_counter() - t0
            audio, loss_sum = dist.sum(audio, loss_sum)
            loss_sum /= dist.world
            prog["train_seconds"] += seconds
            prog["audio_seconds"] += audio
            row = {"epoch": epoch + 1, "step": prog["step"], "train_loss": loss_sum / max(1, n_steps),
                   "lr": sched.get_last_lr()[0], "grad_norm": norm_sum / max(1, n_steps),
                   "epoch_seconds": seconds, "audio_seconds": audio,
                   "audio_sec_per_sec": audio / seconds if seconds else 0.0,
                   **(monitor.epoch_stats() if monitor is not None else {})}
            improved = True
            if dev_ds is not None and len(dev_ds):
                refs, hyps, dev_loss = decode_dataset(model, dev_ds, tokenizer, device=device)
                st = error_stats(refs, hyps)
                row.update(dev_loss=dev_loss if dev_loss is not None else "", dev_wer=st.wer_percent, dev_cer=st.cer_percent)
                key = (st.wer_percent, st.cer_percent) if tc.best_metric == "wer" else (st.cer_percent, st.wer_percent)
                best = prog.get("best_key")
                improved = best is None or key < tuple(best)
                if improved:
                    prog.update(best_key=list(key), best_wer=st.wer_percent, best_epoch=epoch + 1)
            if csv_log is not None:
                csv_log.write(row)
            if monitor is not None:
                monitor.epoch(epoch + 1, prog["step"], row, model, dev_ds, tokenizer)
            log.info("epoch %d/%d%s: loss %.4f, lr %.2e, grad norm %.2f%s%s, %.1f s (%.0f audio s/s)",
                     epoch + 1, tc.epochs, "" if finished else f" (stopped at train.max_steps={tc.max_steps},"
                     f" batch {prog['batch']} of {len(batches)})", row["train_loss"], row["lr"], row["grad_norm"],
                     f" (max {row['grad_norm_max']:.2f}, clipped in {100 * row['clip_rate']:.0f}% of steps)"
                     if "clip_rate" in row else "",
                     f", dev WER {row['dev_wer']:.2f}% CER {row['dev_cer']:.2f}%" if "dev_wer" in row else "",
                     seconds, row["audio_sec_per_sec"])
            if finished:
                prog["epoch"], prog["batch"] = epoch + 1, 0
            if improved and dist.is_main:
                save_checkpoint(paths["best"], model, cfg, tokenizer, progress=dict(prog))
            if finished and tc.keep_epochs > 0 and dist.is_main:  # snapshots for checkpoint averaging
                save_checkpoint(os.path.join(exp_dir, f"epoch-{epoch + 1}.pt"), model, cfg, tokenizer, progress=dict(prog))
                for old in epoch_checkpoints(exp_dir)[: -tc.keep_epochs]:
                    os.remove(old)
            save_last()
            dist.barrier()  # the others wait while rank 0 evaluates and saves
    except KeyboardInterrupt:
        if stop.at_boundary:
            save_last(epoch_so_far())
            log.warning("interrupted: saved %s at epoch %d, batch %d; continue with --resume",
                        paths["last"], prog["epoch"] + 1, prog["batch"])
        else:
            log.warning("interrupted mid-step: --resume continues from the last saved checkpoint")
        raise
    finally:
        stop.restore()
        if csv_log is not None:
            csv_log.close()
        if monitor is not None:
            monitor.close()
    return TrainResult(exp_dir, paths["best"], prog["best_wer"], prog["epoch"], prog["train_seconds"], prog["audio_seconds"])


def _checkpoint_to_resume(last: str, resume, exp_dir: str, dist: "distributed.Dist") -> Optional[dict]:
    """The checkpoint a run continues from, or None for a new run. ``resume``: True (``last``
    must exist), False (it must not: a new run never overwrites one) or "auto" (continue when it
    exists, else start: what ``torchrun --max-restarts`` needs, as its restarted processes run
    the same command). Rank 0 reads it and sends it to every process (or sends the error every
    process raises), so all of them continue from the same one, whatever the other nodes' disks hold."""
    found = None
    if dist.is_main:
        try:
            if resume is True and not os.path.isfile(last):
                raise FileNotFoundError(f"--resume: no checkpoint to resume from at {last}")
            if not resume and os.path.isfile(last):
                restarted = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0
                raise FileExistsError(f"{exp_dir} already holds a run (last.pt): pass --resume to continue it, or use a "
                                      f"new --exp" + ("; a restarted torchrun worker group continues only with "
                                                      "--auto-resume" if restarted else ""))
            found = load_checkpoint(last) if os.path.isfile(last) else None
        except (OSError, ValueError) as exc:
            found = exc
    found = dist.broadcast(found)
    if isinstance(found, BaseException):
        raise found
    return found


class _StopFlag:
    """Ctrl-C during training finishes the current step, then saves and stops, so the saved
    position always matches the weights."""

    def __init__(self):
        self.requested = False
        self.at_boundary = False
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True
        log.warning("stopping after this step (Ctrl-C again to stop at once)")

    def restore(self):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _build_tokenizer(cfg: ExperimentConfig, entries) -> Tokenizer:
    d = cfg.data
    options = dict(vocab_size=d.bpe_vocab_size, model_type=d.bpe_model_type) if d.tokenizer == "bpe" else {}
    if d.tokenizer == "phone":
        options = dict(lexicon=d.lexicon)
    if d.vocabulary is not None:
        options = dict(vocabulary=d.vocabulary)
    try:
        return build_tokenizer(d.tokenizer, (e.text for e in entries), **options)
    except ValueError as exc:
        field = "data.bpe_vocab_size" if "vocabulary size" in str(exc) else "data.tokenizer"
        raise ValueError(f"{field}: {exc}") from None
