"""Checkpoints: one file holds everything needed to rebuild the model (config, front-end
settings, normalization statistics inside the weights, vocabulary). Written atomically,
read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
from typing import Optional

import torch

from asr import __version__
from asr.nn.config import ExperimentConfig
from asr.nn.model import CTCModel
from asr.text import Tokenizer, tokenizer_from_dict

__all__ = ["save_checkpoint", "load_checkpoint", "build_model", "average_checkpoints", "epoch_checkpoints", "CheckpointError"]

FORMAT = "asr-checkpoint/1"


class CheckpointError(ValueError):
    pass


def save_checkpoint(path: str, model: CTCModel, cfg: ExperimentConfig, tokenizer: Tokenizer, **extra) -> None:
    """Save atomically (write a temporary file, then rename), so an interrupted save never
    leaves a broken checkpoint behind."""
    state = {
        "format": FORMAT,
        "toolkit_version": __version__,
        "config": cfg.to_dict(),
        "tokenizer": tokenizer.to_dict(),
        "model": model.state_dict(),
    }
    state.update(extra)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str) -> dict:
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for corrupt files
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a checkpoint of this toolkit (expected format {FORMAT!r})")
    return state


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


def latest(exp_dir: str) -> Optional[str]:
    p = checkpoint_paths(exp_dir)["last"]
    return p if os.path.isfile(p) else None
