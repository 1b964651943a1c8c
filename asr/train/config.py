"""Experiment configuration: small typed dataclasses, read from YAML with ``key=value``
overrides, saved inside every checkpoint."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import yaml

from asr.frontend import FrontendConfig
from asr.shards import is_shard_index
from asr.train.data import ConcatConfig
from asr.train.features import SpecAugmentConfig
from asr.train.model import ModelConfig

__all__ = ["DataConfig", "TrainConfig", "ExperimentConfig", "load_config"]


@dataclass
class DataConfig:
    train: str = "data/fsdd/train.jsonl"
    dev: Optional[str] = "data/fsdd/dev.jsonl"
    tokenizer: str = "char"  # "char", "word", "bpe" (SentencePiece word pieces, trained on data.train) or "phone"
    # tokenizer "phone": the pronunciation lexicon (WORD phone phone ... a line; `asr lexicon`
    # writes one from CMUdict and espeak-ng). The model learns its phones and a word boundary;
    # the pronunciations of the training words travel in the model file.
    lexicon: Optional[str] = None
    bpe_vocab_size: int = 256  # tokenizer "bpe": the most output ids, blank included (small corpora give fewer)
    bpe_model_type: str = "unigram"  # tokenizer "bpe": SentencePiece "unigram" or "bpe"
    # Pronunciation lexicon (WORD phone phone ... a line): the intermediate CTC head
    # (model.inter_ctc_layer) learns the phones of the transcript instead of the model's units.
    # Utterances with a word it lacks get no phone loss. Training only: decoding never uses it.
    aux_lexicon: Optional[str] = None
    # Synthetic speech (`asr synth`): a manifest whose utterances join training in the ratio
    # train.synthetic_ratio, drawn anew each epoch. Never in dev; never speed-perturbed (the
    # synthesizer varies the rate itself). Its texts should use the training text's characters.
    synthetic: Optional[str] = None
    # Word tokenizer with a closed vocabulary (e.g. the ten digits): these words are the units,
    # and every other word of a transcript becomes the unknown-word unit <unk>, which the model
    # learns to emit for speech that is none of them and which decoding leaves out of the text.
    # None: the vocabulary is every word of data.train and other words cannot be encoded.
    vocabulary: Optional[list[str]] = None
    # data.train as tar shards (`asr prepare shards`; a path ending in .json is their index):
    # utterances pass through a shuffle buffer of this many items (speed-perturbed copies
    # count one each), seeded by (train.seed, epoch, process); shards are shuffled per epoch
    # and process r of w reads shards r, r + w, ... The larger, the better mixed.
    shuffle_buffer: int = 2000


@dataclass
class TrainConfig:
    epochs: int = 20
    # A bounded run: stop after this many optimizer steps (0: no limit), mid-epoch if need be,
    # with the epoch's dev evaluation and checkpoints; the learning-rate schedule then spans
    # these steps. The position stays mid-epoch: --resume with a larger limit (or none) goes on
    # from there, on the schedule of the new limit.
    max_steps: int = 0
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
    # list (model frames), so the model learns to serve at any of them; 0 is full context
    # (WeNet's dynamic chunk training mixes full-context batches in: connected speech is learnt
    # many times faster with them). None: model.chunk_size.
    chunk_sizes: Optional[list[int]] = None
    speed_perturb: list[float] = field(default_factory=lambda: [1.0])  # e.g. [0.9, 1.0, 1.1]
    specaugment: Optional[SpecAugmentConfig] = field(default_factory=SpecAugmentConfig)
    # Vocal tract length perturbation: [low, high] warp factors of the mel axis, drawn per
    # utterance and batch (e.g. [0.9, 1.1]); None: off.
    vtlp: Optional[list[float]] = None
    # Recording level: each utterance as if recorded g dB louder, g uniform in [low, high],
    # drawn per utterance and batch (e.g. [-24, 6]: a quiet speaker's recordings are then no
    # stranger than a loud one's); None: off.
    gain_db: Optional[list[float]] = None
    # Channel: each utterance through its own random equalizer, a smooth curve over the mel
    # axis within +-eq_db dB, half of them with a low cut too (a small microphone, a
    # high-pass filter), drawn per utterance and batch (e.g. 12); None: off.
    eq_db: Optional[float] = None
    # Background noise: half of the utterances (real and synthetic) with stationary noise of a
    # random colour (white to brown) at an SNR uniform in [low, high] dB, added in the feature
    # domain, drawn per utterance and batch (e.g. [5, 40]); None: off.
    noise_snr: Optional[list[float]] = None
    # SortaGrad: the first epoch's batches run shortest first (a gentler start for CTC, whose
    # first steps emit blanks only); later epochs are shuffled as usual.
    sortagrad: bool = False
    inter_ctc_weight: float = 0.3  # weight of the intermediate CTC loss (with model.inter_ctc_layer > 0)
    # "No speech": generated non-speech clips (digital silence, white/pink/brown noise, DC offset,
    # tones, clipped square waves, mains hum, clicks, sweeps; random levels, durations like the
    # corpus's) with an EMPTY transcript join the training set, so CTC learns to emit only
    # blanks for them. Their number is this fraction of the training manifest's utterances
    # (0.1: one clip per ten utterances; 0: off); in [0, 1), fixed by train.seed. Dev stays real.
    nonspeech_fraction: float = 0.0
    # Connected speech: each epoch, strings of training utterances joined on the fly with pauses,
    # each piece at its own level (asr.train.data.ConcatConfig: ratio, items, pause_s, edge_s,
    # gain_db, max_part_s), beside the utterances themselves. None: off.
    concat: Optional[ConcatConfig] = None
    # With data.synthetic: synthetic utterances per real training item in each epoch (real
    # items include the speed-perturbed copies; 0.5: a third of every epoch is synthetic, a new
    # draw each epoch, all real items always in). The last real_only_epochs epochs leave the
    # synthetic speech out (fine-tuning on real speech at the end of the schedule).
    synthetic_ratio: float = 0.5
    real_only_epochs: int = 0
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
    # Looking inside (docs/looking_inside.md; EXP/steps.csv is always written): TensorBoard
    # event files in EXP/tensorboard (needs the tensorboard package: pip install '.[views]'),
    # and gate statistics of the first gate_stats_utts dev utterances per epoch in EXP/gates.csv
    # (0: none).
    tensorboard: bool = False
    gate_stats_utts: int = 16


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
    """Ranges and combinations, after the types (:func:`_coerce`): everything that can be
    known before any work, so a wrong setting fails at once rather than after the features."""
    t, d = cfg.train, cfg.data
    problems = [f"model.{p}" for p in cfg.model.problems(vocab=False)]  # vocab_size: from the tokenizer

    def need(key: str, ok: bool, expected: str) -> None:
        if not ok:
            problems.append(f"train.{key} must be {expected}, got {getattr(t, key)!r}")

    need("epochs", t.epochs >= 1, ">= 1")
    need("max_steps", t.max_steps >= 0, ">= 0 (0: no limit)")
    need("max_frames", t.max_frames > 0, "> 0")
    need("max_batch", t.max_batch >= 1, ">= 1")
    need("lr", t.lr > 0, "> 0")
    need("min_lr_ratio", 0 <= t.min_lr_ratio <= 1, "in [0, 1]")
    need("warmup_steps", t.warmup_steps >= 0, ">= 0")
    need("weight_decay", t.weight_decay >= 0, ">= 0")
    need("grad_clip", t.grad_clip > 0, "> 0")
    need("num_threads", t.num_threads >= 1, ">= 1")
    need("save_every_steps", t.save_every_steps >= 0, ">= 0 (0: at epoch ends only)")
    need("keep_epochs", t.keep_epochs >= 0, ">= 0 (0: none)")
    need("accum_steps", t.accum_steps >= 1, ">= 1")
    need("prefetch", t.prefetch >= 1, ">= 1")
    need("gate_stats_utts", t.gate_stats_utts >= 0, ">= 0 (0: none)")
    need("num_workers", t.num_workers >= 0, ">= 0")
    need("best_metric", t.best_metric in ("wer", "cer"), "'wer' or 'cer'")
    need("precision", t.precision in ("fp32", "bf16", "fp16"), "fp32, bf16 or fp16")
    need("inter_ctc_weight", 0 <= t.inter_ctc_weight < 1, "in [0, 1)")
    need("nonspeech_fraction", 0 <= t.nonspeech_fraction < 1, "in [0, 1)")
    need("synthetic_ratio", 0 < t.synthetic_ratio <= 20, "in (0, 20]")
    need("real_only_epochs", 0 <= t.real_only_epochs < t.epochs or t.real_only_epochs == 0,
         "in [0, train.epochs) (some epochs must see the synthetic speech)")
    need("speed_perturb", len(t.speed_perturb) > 0 and all(s > 0 for s in t.speed_perturb),
         "a non-empty list of positive speed factors")
    need("chunk_sizes", t.chunk_sizes is None or (len(t.chunk_sizes) > 0 and all(c >= 0 for c in t.chunk_sizes)
                                                   and any(c > 0 for c in t.chunk_sizes)),
         "null or a list of chunk sizes (model frames; 0: full context), at least one of them positive")
    need("gain_db", t.gain_db is None or (len(t.gain_db) == 2 and -60 <= t.gain_db[0] <= t.gain_db[1] <= 30),
         "null or [low, high] in dB with -60 <= low <= high <= 30")
    need("noise_snr", t.noise_snr is None or (len(t.noise_snr) == 2 and -10 <= t.noise_snr[0] <= t.noise_snr[1] <= 60),
         "null or [low, high] SNR in dB with -10 <= low <= high <= 60")
    need("eq_db", t.eq_db is None or 0 < t.eq_db <= 30, "null or a number of dB in (0, 30]")
    need("vtlp", t.vtlp is None or (len(t.vtlp) == 2 and 0 < t.vtlp[0] <= t.vtlp[1] <= 1.25),
         "null or [low, high] with 0 < low <= high <= 1.25")
    if t.concat is not None:
        problems += t.concat.problems()
    if d.shuffle_buffer < 1:
        problems.append(f"data.shuffle_buffer must be >= 1 utterances, got {d.shuffle_buffer!r}")
    if is_shard_index(d.train):  # what the shard reader does not do (yet)
        for key, on in (("data.synthetic", bool(d.synthetic)), ("train.nonspeech_fraction", t.nonspeech_fraction > 0),
                        ("train.concat", t.concat is not None), ("train.sortagrad", t.sortagrad)):
            if on:
                problems.append(f"{key} is not available with sharded data.train ({d.train}): use a manifest")
    if d.vocabulary is not None:
        if d.tokenizer != "word":
            problems.append(f"data.vocabulary applies to the word tokenizer only (data.tokenizer is {d.tokenizer!r})")
        if not d.vocabulary or any(not w or " " in w for w in d.vocabulary):
            problems.append(f"data.vocabulary must be a non-empty list of single words, got {d.vocabulary!r}")
    if t.specaugment is not None:
        sa = t.specaugment
        for key in ("freq_masks", "freq_width", "time_masks", "time_width"):
            if getattr(sa, key) < 0:
                problems.append(f"train.specaugment.{key} must be >= 0, got {getattr(sa, key)}")
        if not 0 <= sa.time_width_ratio <= 1:
            problems.append(f"train.specaugment.time_width_ratio must be in [0, 1], got {sa.time_width_ratio}")
    if d.tokenizer not in ("char", "word", "bpe", "phone"):
        problems.append(f"data.tokenizer must be 'char', 'word', 'bpe' or 'phone', got {d.tokenizer!r}")
    if (d.tokenizer == "phone") != bool(d.lexicon):
        problems.append("data.tokenizer 'phone' and data.lexicon (its pronunciation lexicon) go together"
                        f" (data.tokenizer is {d.tokenizer!r}, data.lexicon {d.lexicon!r})")
    if d.aux_lexicon and not cfg.model.inter_ctc_layer:
        problems.append("data.aux_lexicon trains the intermediate CTC head: set model.inter_ctc_layer too")
    if t.real_only_epochs and not d.synthetic:
        problems.append("train.real_only_epochs applies with data.synthetic (a synthetic speech manifest) only")
    if d.tokenizer == "bpe":
        if d.bpe_model_type not in ("unigram", "bpe"):
            problems.append(f"data.bpe_model_type must be 'unigram' or 'bpe', got {d.bpe_model_type!r}")
        if d.bpe_vocab_size < 3:
            problems.append(f"data.bpe_vocab_size must be an integer >= 3, got {d.bpe_vocab_size!r}")
    if problems:
        raise ValueError("; ".join(problems))
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
        key = f"{where}.{name}".lstrip(".")
        sub = _SECTIONS.get((cls, name))
        if sub is not None and value is not None:
            kwargs[name] = _build(sub, value, key)
        else:
            kwargs[name] = _coerce(value, hints.get(name), key)
    return cls(**kwargs)


_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` as the field's type ``hint`` wants it, or a ValueError naming ``key`` and the
    type. YAML reads ``4e-3`` as a string and ``2`` as an int: both become floats where a float
    is wanted; an integer may be written ``2e4`` or ``20000.0`` but not ``2.5``; a bool is not
    a number (YAML's ``true`` for ``hidden_size`` is a mistake, not 1)."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional:  # Optional[X]
        if value is None:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        args = typing.get_args(hint)
    if typing.get_origin(hint) is list:
        if not isinstance(value, list):
            raise ValueError(f"{key} must be a list{' or null' if optional else ''}, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if hint not in _EXPECTED:
        return value  # a type this config does not use: left as it is
    wrong = ValueError(f"{key} must be {_EXPECTED[hint]}{' or null' if optional else ''}, got {value!r}")
    if hint is bool or isinstance(value, bool) or value is None:
        if hint is bool and isinstance(value, bool):
            return value
        raise wrong
    if hint is str:
        if not isinstance(value, str):
            raise wrong
        return value
    if isinstance(value, str):  # YAML leaves 4e-3 (no dot in the mantissa) a string
        try:
            value = int(value) if hint is int else float(value)
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                raise wrong from None
    if not isinstance(value, (int, float)):
        raise wrong
    if hint is float:
        return float(value)
    if isinstance(value, float):  # an integer written 2e4 or 20000.0, but not 2.5
        if not value.is_integer():
            raise wrong
        return int(value)
    return value


_SECTIONS = {
    (ExperimentConfig, "data"): DataConfig,
    (ExperimentConfig, "frontend"): FrontendConfig,
    (ExperimentConfig, "model"): ModelConfig,
    (ExperimentConfig, "train"): TrainConfig,
    (TrainConfig, "specaugment"): SpecAugmentConfig,
    (TrainConfig, "concat"): ConcatConfig,
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
        except PermissionError:
            raise ValueError(f"{path}: permission denied (cannot read the config file)") from None
        except IsADirectoryError:
            raise ValueError(f"{path}: is a directory, not a config file") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from None
    try:
        return _check(ExperimentConfig.from_dict(apply_overrides(d, overrides)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path or 'config'}: {exc}") from None
