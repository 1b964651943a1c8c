"""Checkpoints: one file holds everything needed to rebuild the model (config, front-end
settings, normalization statistics inside the weights, vocabulary). Written atomically,
read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os

import torch

from asr import __version__
from asr.decoding.confidence import ConfidenceCalibration
from asr.fileio import atomic_write
from asr.runtime.model import model_file_kind
from asr.text import Tokenizer, tokenizer_from_dict
from asr.train.config import ExperimentConfig
from asr.train.model import CTCModel

__all__ = ["save_checkpoint", "load_checkpoint", "build_model", "average_checkpoints", "epoch_checkpoints", "CheckpointError",
           "checkpoint_calibration", "set_checkpoint_calibration"]

FORMAT = "asr-checkpoint/1"


class CheckpointError(ValueError):
    pass


def save_checkpoint(path: str, model: CTCModel, cfg: ExperimentConfig, tokenizer: Tokenizer, **extra) -> None:
    """Save atomically: write a temporary file beside ``path``, fsync it, then rename it, so an
    interrupted save (a crash, a power cut) never leaves a broken checkpoint behind."""
    state = {
        "format": FORMAT,
        "toolkit_version": __version__,
        "config": cfg.to_dict(),
        "tokenizer": tokenizer.to_dict(),
        "model": model.state_dict(),
    }
    state.update(extra)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str) -> dict:
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise CheckpointError(f"{path}: permission denied (cannot read the checkpoint)") from None
    except Exception as exc:  # torch raises many kinds for corrupt files
        if model_file_kind(path) == "onnx":
            raise CheckpointError(f"{path} is an ONNX model, not a checkpoint: use --model to run it "
                                  "(export and averaging need the PyTorch checkpoint)") from None
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {first_line})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a checkpoint of this toolkit (expected format {FORMAT!r})")
    return state


def checkpoint_calibration(state: dict, path: str = "checkpoint") -> "ConfidenceCalibration | None":
    """The word-confidence calibration stored in a checkpoint (key ``confidence``), or None."""
    raw = state.get("confidence")
    if raw is None:
        return None
    try:
        return ConfidenceCalibration.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def set_checkpoint_calibration(path: str, calibration: "ConfidenceCalibration | None") -> None:
    """Store (or with None, remove) the word-confidence calibration of a checkpoint, atomically."""
    state = load_checkpoint(path)
    if calibration is None:
        state.pop("confidence", None)
    else:
        state["confidence"] = calibration.to_dict()
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def build_model(state: dict) -> tuple[CTCModel, ExperimentConfig, Tokenizer]:
    """Rebuild the model (weights loaded, eval mode), its config and tokenizer from a loaded
    checkpoint dict."""
    cfg = ExperimentConfig.from_dict(state["config"])
    tokenizer = tokenizer_from_dict(state["tokenizer"])
    model = CTCModel(cfg.model)
    model.load_state_dict(state["model"])
    model.eval()
    return model, cfg, tokenizer


def epoch_checkpoints(exp_dir: str) -> list[str]:
    """The per-epoch snapshots ``epoch-N.pt`` of a run (``train.keep_epochs``), oldest first."""
    found = []
    for name in os.listdir(exp_dir) if os.path.isdir(exp_dir) else ():
        stem, ext = os.path.splitext(name)
        if ext == ".pt" and stem.startswith("epoch-") and stem[6:].isdigit():
            found.append((int(stem[6:]), os.path.join(exp_dir, name)))
    return [p for _, p in sorted(found)]


def write_average(paths: list[str], out: str) -> None:
    """The mean of ``paths`` (:func:`average_checkpoints`) saved to ``out``, atomically."""
    state = average_checkpoints(paths)
    atomic_write(out, lambda tmp: torch.save(state, tmp))


def average_checkpoints(paths: list[str]) -> dict:
    """One checkpoint whose weights are the mean of ``paths``' weights (same model config
    required); everything else comes from the last of them."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    states = [load_checkpoint(p) for p in paths]
    first = states[-1]
    for p, st in zip(paths, states):
        if st["config"]["model"] != first["config"]["model"] or st["tokenizer"] != first["tokenizer"]:
            raise CheckpointError(f"{p}: model settings or vocabulary differ from {paths[-1]}; cannot average")
    avg = {}
    for k, v in first["model"].items():
        if v.is_floating_point():
            avg[k] = sum(st["model"][k].double() for st in states).div(len(states)).to(v.dtype)
        else:
            avg[k] = v.clone()
    out = {k: v for k, v in first.items() if k in ("format", "toolkit_version", "config", "tokenizer")}
    out["model"] = avg
    out["averaged"] = [os.path.basename(p) for p in paths]
    return out


def checkpoint_paths(exp_dir: str) -> dict:
    return {"last": os.path.join(exp_dir, "last.pt"), "best": os.path.join(exp_dir, "best.pt")}
