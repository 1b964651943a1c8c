"""What training records beyond log.csv, for `asr plot` and TensorBoard (rank 0 only):

- ``EXP/steps.csv``: one row per optimizer step: epoch, step, loss, learning rate, gradient
  norm before clipping, whether clipping fired (and the threshold), and the gradient norm of each part of the
  model (``subsampling``, ``rnn1.fwd``, ... ``head``: :func:`asr.train.diagnostics.part_of`). A run
  resumed after a crash repeats the steps after its last checkpoint: readers keep the last row
  of each step.
- ``EXP/gates.csv``: per epoch, layer, direction and gate, the mean and the shares near 0 and
  near 1 on the first ``train.gate_stats_utts`` dev utterances
  (:func:`asr.train.diagnostics.gate_statistics`, in the model's serving condition).
- ``EXP/tensorboard/`` with ``train.tensorboard: true``: the same scalars per step and epoch,
  dev WER/CER and loss, throughput, the per-epoch distribution of gradient norms with the clip
  threshold, gate statistics, and once per epoch one dev utterance's posteriors as an image
  with its reference and decoded text. ``tensorboard --logdir EXP/tensorboard`` shows them.
"""

from __future__ import annotations

import csv
import logging
import os
from typing import Optional, Sequence

import numpy as np
import torch

from asr.train.diagnostics import gate_statistics

log = logging.getLogger(__name__)

__all__ = ["TrainingMonitor", "require_tensorboard", "tensorboard_writer", "posterior_image", "VIEWS_HINT"]

VIEWS_HINT = "pip install 'asr-toolkit[views]' (or '.[views]' from a checkout)"
GATE_FIELDS = ["epoch", "layer", "direction", "gate", "mean", "near0", "near1", "values"]


def require_tensorboard():
    """``torch.utils.tensorboard.SummaryWriter``, or a RuntimeError saying what to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise RuntimeError(f"train.tensorboard: needs the tensorboard package: {VIEWS_HINT}") from None
    return SummaryWriter


def tensorboard_writer(log_dir: str):
    return require_tensorboard()(log_dir=log_dir)


def posterior_image(log_probs: np.ndarray, row_px: int = 8, col_px: int = 4) -> np.ndarray:
    """(frames, V) log-probabilities -> an (V * row_px, frames * col_px) image of the
    posteriors in [0, 1], symbol 0 (blank) on top, each cell ``row_px`` x ``col_px`` pixels."""
    p = np.exp(np.asarray(log_probs, np.float32)).T.clip(0.0, 1.0)
    return np.repeat(np.repeat(p, row_px, axis=0), col_px, axis=1)


class CsvLog:
    """A CSV file appended row by row and flushed (floats to 6 significant digits). A file that
    exists keeps its own columns, so a run resumed from an older version still lines up."""

    def __init__(self, path: str, fields: Sequence[str]):
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        if not new:
            with open(path, newline="", encoding="utf-8") as f:
                fields = next(csv.reader(f), None) or fields
        self.f = open(path, "a", newline="", encoding="utf-8")
        self.w = csv.DictWriter(self.f, fieldnames=list(fields), extrasaction="ignore")
        if new:
            self.w.writeheader()

    def write(self, row: dict) -> None:
        self.w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self.f.flush()

    def close(self) -> None:
        self.f.close()


class TrainingMonitor:
    """Rank 0's recorder of steps, gates and TensorBoard events (see the module doc)."""

    def __init__(self, exp_dir: str, parts: Sequence[str], grad_clip: float, tensorboard: bool = False,
                 gate_stats_utts: int = 0):
        self.exp_dir, self.grad_clip, self.gate_stats_utts = exp_dir, grad_clip, gate_stats_utts
        self.parts = list(parts)
        self.writer = tensorboard_writer(os.path.join(exp_dir, "tensorboard")) if tensorboard else None
        self.steps = CsvLog(os.path.join(exp_dir, "steps.csv"),
                          ["epoch", "step", "loss", "lr", "grad_norm", "clipped", "grad_clip"] + [f"norm_{p}" for p in self.parts])
        self.gates = CsvLog(os.path.join(exp_dir, "gates.csv"), GATE_FIELDS) if gate_stats_utts > 0 else None
        self.epoch_norms: list[float] = []

    def step(self, epoch: int, step: int, loss: float, lr: float, grad_norm: float, part_norms: dict) -> None:
        clipped = int(grad_norm > self.grad_clip)
        self.epoch_norms.append(grad_norm)
        self.steps.write({"epoch": epoch, "step": step, "loss": loss, "lr": lr, "grad_norm": grad_norm, "clipped": clipped,
                          "grad_clip": self.grad_clip,
                          **{f"norm_{k}": v for k, v in part_norms.items()}})
        if self.writer is not None:
            w = self.writer
            w.add_scalar("train/loss", loss, step)
            w.add_scalar("train/lr", lr, step)
            w.add_scalar("grad/norm_before_clip", grad_norm, step)
            w.add_scalar("grad/clipped", clipped, step)
            for k, v in part_norms.items():
                w.add_scalar(f"grad_norm_by_layer/{k}", v, step)

    def epoch_stats(self) -> dict:
        """clip_rate and grad_norm_max of the epoch's steps (for log.csv); starts a new epoch."""
        n = np.array([x for x in self.epoch_norms if np.isfinite(x)])
        out = {"clip_rate": float((n > self.grad_clip).mean()) if n.size else 0.0,
               "grad_norm_max": float(n.max()) if n.size else 0.0}
        self._last_norms, self.epoch_norms = n, []
        return out

    def epoch(self, epoch: int, step: int, row: dict, model, dev_ds=None, tokenizer=None) -> Optional[list]:
        """At the end of an epoch: gate statistics, and TensorBoard's epoch scalars, gradient
        norm distribution and one dev utterance's posteriors. Returns the gate rows (or None)."""
        gates = None
        if self.gates is not None and dev_ds is not None and len(dev_ds):
            feats = [dev_ds.features(i) for i in range(min(self.gate_stats_utts, len(dev_ds)))]
            device = next(model.parameters()).device
            gates = gate_statistics(model, [f.to(device) for f in feats if f is not None], chunk_size=None)
            for g in gates:
                self.gates.write({"epoch": epoch, **g})
        w = self.writer
        if w is None:
            return gates
        for key, tag in (("train_loss", "train/epoch_loss"), ("dev_loss", "dev/loss"), ("dev_wer", "dev/wer"),
                         ("dev_cer", "dev/cer"), ("audio_sec_per_sec", "train/audio_sec_per_sec"),
                         ("clip_rate", "grad/clip_rate"), ("grad_norm", "grad/epoch_mean_norm"),
                         ("grad_norm_max", "grad/epoch_max_norm")):
            if isinstance(row.get(key), (int, float)):
                w.add_scalar(tag, row[key], step)
        w.add_scalar("grad/clip_threshold", self.grad_clip, step)
        if getattr(self, "_last_norms", np.zeros(0)).size:
            w.add_histogram("grad/norm_distribution", self._last_norms, epoch)
        for g in gates or []:
            name = f"gates/layer{g['layer']}.{g['direction']}.{g['gate']}"
            for k in ("mean", "near0", "near1"):
                w.add_scalar(f"{name}/{k}", g[k], epoch)
        if dev_ds is not None and len(dev_ds) and tokenizer is not None:
            self._posteriors(epoch, model, dev_ds, tokenizer)
        w.flush()
        return gates

    @torch.no_grad()
    def _posteriors(self, epoch: int, model, dev_ds, tokenizer) -> None:
        from asr.decoding.greedy import greedy_ids
        from asr.text import normalize_text

        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        f = dev_ds.features(0)
        logp, n = model(f[None].to(device), torch.tensor([f.shape[0]], device=device))
        model.train(was_training)
        lp = logp[0, : int(n[0])].float().cpu().numpy()
        self.writer.add_image("dev/posteriors", posterior_image(lp), epoch, dataformats="HW")
        ref = normalize_text(dev_ds.entries[0].text)
        hyp = tokenizer.decode(greedy_ids(lp))
        self.writer.add_text("dev/transcript", f"{dev_ds.entries[0].audio_filepath}  \nREF: {ref}  \nHYP: {hyp}", epoch)

    def close(self) -> None:
        self.steps.close()
        if self.gates is not None:
            self.gates.close()
        if self.writer is not None:
            self.writer.close()
