"""Experiment configuration: small typed dataclasses, read from YAML with ``key=value``
overrides, saved inside every checkpoint."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import yaml

from asr.nn.features import SpecAugmentConfig
from asr.frontend import FrontendConfig
from asr.nn.model import ModelConfig

__all__ = ["DataConfig", "TrainConfig", "ExperimentConfig", "load_config"]


@dataclass
class DataConfig:
    train: str = "data/fsdd/train.jsonl"
    dev: Optional[str] = "data/fsdd/dev.jsonl"
    tokenizer: str = "char"  # "char", "word" or "bpe" (SentencePiece word pieces, trained on data.train)
    bpe_vocab_size: int = 256  # tokenizer "bpe": the most output ids, blank included (small corpora give fewer)
    bpe_model_type: str = "unigram"  # tokenizer "bpe": SentencePiece "unigram" or "bpe"
    # Pronunciation lexicon (WORD phone phone ... a line): the intermediate CTC head
    # (model.inter_ctc_layer) learns the phones of the transcript instead of the model's units.
    # Utterances with a word it lacks get no phone loss. Training only: decoding never uses it.
    aux_lexicon: Optional[str] = None


@dataclass
class TrainConfig:
    epochs: int = 20
    max_frames: int = 20000  # padded frames per batch (batch size x longest utterance)
    max_batch: int = 64  # utterances per batch
    lr: float = 2e-3  # peak learning rate (AdamW)
    min_lr_ratio: float = 0.05  # cosine decay ends at lr * min_lr_ratio
    warmup_steps: int = 200
    weight_decay: float = 1e-2
    grad_clip: float = 5.0
    seed: int = 1234
    num_threads: int = 1  # torch intra-op threads; 1 is steady on a shared 2-core machine
    save_every_steps: int = 200  # mid-epoch checkpoints for --resume (0: epoch ends only)
    keep_epochs: int = 5  # keep epoch-N.pt snapshots of the last this many epochs (for `asr average`; 0: none)
    best_metric: str = "wer"  # dev metric that picks best.pt ("wer" or "cer"; the other breaks ties)
    # Latency-controlled models (model.chunk_size > 0): chunk size per batch drawn from this
    # list (model frames), so the model learns to serve at any of them. None: model.chunk_size.
    chunk_sizes: Optional[list[int]] = None
    speed_perturb: list[float] = field(default_factory=lambda: [1.0])  # e.g. [0.9, 1.0, 1.1]
    specaugment: Optional[SpecAugmentConfig] = field(default_factory=SpecAugmentConfig)
    # Vocal tract length perturbation: [low, high] warp factors of the mel axis, drawn per
    # utterance and batch (e.g. [0.9, 1.1]); None: off.
    vtlp: Optional[list[float]] = None
    # SortaGrad: the first epoch's batches run shortest first (a gentler start for CTC, whose
    # first steps emit blanks only); later epochs are shuffled as usual.
    sortagrad: bool = False
    inter_ctc_weight: float = 0.3  # weight of the intermediate CTC loss (with model.inter_ctc_layer > 0)
    # Where and how: "auto" trains on a GPU when there is one. Under torchrun every process
    # takes its share of each epoch's batches; one optimizer step = world size x accum_steps
    # batches (so the same global batch on 1 process needs accum_steps = world size).
    device: str = "auto"
    precision: str = "fp32"  # mixed precision: "bf16" or "fp16" (with a gradient scaler); for GPUs
    accum_steps: int = 1  # batches per process whose gradients are summed before a step
    # Features: computed once and kept in memory (small corpora: fastest), or computed per batch
    # by num_workers background processes (large corpora: flat memory).
    precompute_features: bool = True
    num_workers: int = 2
    prefetch: int = 4  # batches each worker keeps ready


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ExperimentConfig":
        return _build(cls, d, "")


def _check(cfg: "ExperimentConfig") -> "ExperimentConfig":
    if cfg.train.best_metric not in ("wer", "cer"):
        raise ValueError(f"train.best_metric must be 'wer' or 'cer', got {cfg.train.best_metric!r}")
    if cfg.train.precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"train.precision must be fp32, bf16 or fp16, got {cfg.train.precision!r}")
    if cfg.train.vtlp is not None and (len(cfg.train.vtlp) != 2 or not 0 < cfg.train.vtlp[0] <= cfg.train.vtlp[1] <= 1.25):
        raise ValueError(f"train.vtlp must be [low, high] with 0 < low <= high <= 1.25, got {cfg.train.vtlp!r}")
    if cfg.data.aux_lexicon and not cfg.model.inter_ctc_layer:
        raise ValueError("data.aux_lexicon trains the intermediate CTC head: set model.inter_ctc_layer too")
    if not 0 <= cfg.train.inter_ctc_weight < 1:
        raise ValueError(f"train.inter_ctc_weight must be in [0, 1), got {cfg.train.inter_ctc_weight}")
    for key in ("accum_steps", "prefetch"):
        if getattr(cfg.train, key) < 1:
            raise ValueError(f"train.{key} must be >= 1, got {getattr(cfg.train, key)}")
    if cfg.train.num_workers < 0:
        raise ValueError(f"train.num_workers must be >= 0, got {cfg.train.num_workers}")
    d = cfg.data
    if d.tokenizer == "bpe":
        if d.bpe_model_type not in ("unigram", "bpe"):
            raise ValueError(f"data.bpe_model_type must be 'unigram' or 'bpe', got {d.bpe_model_type!r}")
        if not isinstance(d.bpe_vocab_size, int) or isinstance(d.bpe_vocab_size, bool) or d.bpe_vocab_size < 3:
            raise ValueError(f"data.bpe_vocab_size must be an integer >= 3, got {d.bpe_vocab_size!r}")
    return cfg


def _build(cls, d: Any, where: str):
    if not isinstance(d, dict):
        raise ValueError(f"config section {where or '<root>'!r} must be a mapping, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ValueError(f"unknown config key(s) in {where or '<root>'}: {sorted(unknown)}; known: {sorted(fields)}")
    kwargs = {}
    hints = typing.get_type_hints(cls)
    for name, value in d.items():
        sub = _SECTIONS.get((cls, name))
        if sub is not None and value is not None:
            value = _build(sub, value, f"{where}.{name}".lstrip("."))
        kwargs[name] = _coerce(value, hints.get(name), f"{where}.{name}".lstrip("."))
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Numbers as the field wants them: YAML reads ``4e-3`` as a string and ``2`` as an int."""
    allowed = set(typing.get_args(hint)) or {hint}
    if float in allowed and isinstance(value, (str, int)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{key} must be a number, got {value!r}") from None
    if int in allowed and float not in allowed and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{key} must be an integer, got {value!r}") from None
    return value


_SECTIONS = {
    (ExperimentConfig, "data"): DataConfig,
    (ExperimentConfig, "frontend"): FrontendConfig,
    (ExperimentConfig, "model"): ModelConfig,
    (ExperimentConfig, "train"): TrainConfig,
    (TrainConfig, "specaugment"): SpecAugmentConfig,
}


def apply_overrides(d: dict, overrides: Sequence[str]) -> dict:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a nested dict."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form section.key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = d
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {p!r} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return d


def load_config(path: Optional[str], overrides: Sequence[str] = ()) -> ExperimentConfig:
    d: dict = {}
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                d = yaml.safe_load(f) or {}
        except FileNotFoundError:
            raise ValueError(f"{path}: config file not found") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from None
    try:
        return _check(ExperimentConfig.from_dict(apply_overrides(d, overrides)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path or 'config'}: {exc}") from None
