"""The punctuation and capitals tagger (:mod:`asr.punctuation`): data, model, training, export.

    python -m asr.train.punctuation prepare --out data/punctuation           # texts from installed packages
    python -m asr.train.punctuation train --config conf.yaml --exp exp/punct  # best.pt, last.pt, log.jsonl
    python -m asr.train.punctuation export exp/punct/best.pt --out model.onnx [--int8]
    python -m asr.train.punctuation evaluate --model model.onnx data/punctuation/test_*.txt

The model: word embeddings (a capped vocabulary of the training text, ``<unk>`` for the rest),
a bidirectional GRU, and two linear heads per word, the mark after it and its case. Training
examples are runs of whole sentences (:func:`asr.corpora.prose.examples`); a batch holds
examples of one length, so no padding ever enters the recurrence and the exported graph needs
no lengths. The checkpoint holds the config, the vocabulary and the weights; the exported ONNX
file holds the vocabulary, label sets and window in its metadata
(:class:`asr.punctuation.TaggerInfo`), which is all the runtime reads.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
import yaml

from asr import __version__
from asr.fileio import atomic_write
from asr.punctuation import CASES, MARKS, PAD, UNK, Punctuator, TaggerInfo, label_text, read_examples, score
from asr.punctuation import evaluate as evaluate_files
from asr.train.config import _build, apply_overrides

log = logging.getLogger(__name__)

__all__ = ["PunctuationConfig", "DataConfig", "ModelConfig", "TrainConfig", "Tagger", "load_config", "prepare",
           "train", "export", "evaluate"]

FORMAT = "asr-punctuation-checkpoint/1"


@dataclass
class DataConfig:
    train: str = "data/punctuation/train.txt"  # punctuated text, one example a line
    dev: str = "data/punctuation/dev.txt"
    vocab_size: int = 12000  # words kept, <pad> and <unk> included (the most frequent of data.train)
    min_count: int = 2  # a word seen fewer times is <unk>


@dataclass
class ModelConfig:
    embed_dim: int = 64
    hidden_size: int = 128  # per direction
    num_layers: int = 2
    dropout: float = 0.1


@dataclass
class TrainConfig:
    epochs: int = 6
    batch_words: int = 3000  # words per batch (examples x length)
    max_batch: int = 128  # examples per batch
    lr: float = 3e-3  # peak (AdamW), cosine decay to lr * 0.05 after warmup_steps
    warmup_steps: int = 200
    weight_decay: float = 1e-2
    grad_clip: float = 5.0
    mark_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0, 2.0])  # none , . ? in the loss
    seed: int = 1234
    num_threads: int = 1  # torch intra-op threads
    window: int = 128  # runtime: words per tagging call (written into the model file)
    context: int = 16  # runtime: overlap of windows on each side


@dataclass
class PunctuationConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        problems = []
        if self.data.vocab_size < 3:
            problems.append(f"data.vocab_size must be >= 3, got {self.data.vocab_size}")
        if self.data.min_count < 1:
            problems.append(f"data.min_count must be >= 1, got {self.data.min_count}")
        m, t = self.model, self.train
        for key, v in (("model.embed_dim", m.embed_dim), ("model.hidden_size", m.hidden_size),
                       ("model.num_layers", m.num_layers), ("train.epochs", t.epochs), ("train.batch_words", t.batch_words),
                       ("train.max_batch", t.max_batch), ("train.num_threads", t.num_threads)):
            if v < 1:
                problems.append(f"{key} must be >= 1, got {v}")
        if not 0 <= m.dropout < 1:
            problems.append(f"model.dropout must be in [0, 1), got {m.dropout}")
        if not t.lr > 0:
            problems.append(f"train.lr must be > 0, got {t.lr}")
        if len(t.mark_weights) != len(MARKS) or any(w <= 0 for w in t.mark_weights):
            problems.append(f"train.mark_weights must be {len(MARKS)} positive numbers (none , . ?), got {t.mark_weights}")
        try:
            TaggerInfo(vocab=(PAD, UNK), window=t.window, context=t.context)
        except ValueError as exc:
            problems.append(f"train.window/context: {exc}")
        if problems:
            raise ValueError("; ".join(problems))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PunctuationConfig":
        if not isinstance(d, dict):
            raise ValueError(f"config must be a mapping, got {type(d).__name__}")
        unknown = set(d) - {"data", "model", "train"}
        if unknown:
            raise ValueError(f"unknown config section(s) {sorted(unknown)}; known: data, model, train")
        return cls(data=_build(DataConfig, d.get("data") or {}, "data"),
                   model=_build(ModelConfig, d.get("model") or {}, "model"),
                   train=_build(TrainConfig, d.get("train") or {}, "train"))


def load_config(path: Optional[str], overrides: Sequence[str] = ()) -> PunctuationConfig:
    """A config from a YAML file (None: the defaults) with ``section.key=value`` overrides;
    a ValueError names the file and the key."""
    d: dict = {}
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                d = yaml.safe_load(f) or {}
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the config ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML ({exc})") from None
    try:
        return PunctuationConfig.from_dict(apply_overrides(d, overrides))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path or 'config'}: {exc}") from None


# data -----------------------------------------------------------------------------------------
def prepare(out: str, train_sources: Sequence[str], test_sources: Sequence[str], seed: int = 1234,
            dev_every: int = 20) -> dict:
    """Write ``train.txt`` and ``dev.txt`` (every ``dev_every``-th paragraph of the training
    sources) and one ``test_<source>.txt`` per held-out source into ``out``, one example a line
    (duplicates removed, a test line never in train or dev); returns and writes the counts
    (``stats.json``). A training source may be written ``NAME:WORDS``: at most that many
    training words of it, examples taken evenly through it (a balance between sources)."""
    from asr.corpora.prose import examples, paragraphs

    caps = {}
    for item in train_sources:
        name, _, cap = item.partition(":")
        if cap and not (cap.isdigit() and int(cap) > 0):
            raise ValueError(f"training source {item!r}: expected NAME or NAME:WORDS with WORDS a positive integer")
        caps[name] = int(cap) if cap else None
    train_sources = list(caps)
    overlap = set(train_sources) & set(test_sources)
    if overlap:
        raise ValueError(f"sources {sorted(overlap)} are both training and held-out sources")
    os.makedirs(out, exist_ok=True)
    train_lines: dict[str, None] = {}
    dev_lines: dict[str, None] = {}
    stats: dict = {"train": {}, "dev": {}, "test": {}}
    for k, source in enumerate(train_sources):
        paras = list(paragraphs(source))
        tr = list(examples((p for i, p in enumerate(paras) if i % dev_every), seed + k))
        dv = list(examples((p for i, p in enumerate(paras) if i % dev_every == 0), seed + 100 + k))
        if caps[source] is not None:
            tr, dv = _cap(tr, caps[source]), _cap(dv, max(1, caps[source] // dev_every))
        stats["train"][source] = _count(tr)
        stats["dev"][source] = _count(dv)
        train_lines.update(dict.fromkeys(tr))
        dev_lines.update(dict.fromkeys(x for x in dv if x not in train_lines))
    _write_lines(os.path.join(out, "train.txt"), list(train_lines))
    _write_lines(os.path.join(out, "dev.txt"), list(dev_lines))
    for k, source in enumerate(test_sources):
        te = list(dict.fromkeys(x for x in examples(paragraphs(source), seed + 200 + k)
                                if x not in train_lines and x not in dev_lines))
        stats["test"][source] = _count(te)
        _write_lines(os.path.join(out, f"test_{source}.txt"), te)
    atomic_write(os.path.join(out, "stats.json"), lambda tmp: _write_json(tmp, stats))
    return stats


def _cap(lines: list[str], words: int) -> list[str]:
    total = sum(len(x.split()) for x in lines)
    if total <= words:
        return lines
    keep = words / total  # every example whose running share crosses a new step: evenly through the text
    return [x for i, x in enumerate(lines) if int((i + 1) * keep) > int(i * keep)]


def _count(lines: Sequence[str]) -> dict:
    c: Counter = Counter()
    words = 0
    for line in lines:
        w, m, _ = label_text(line)
        words += len(w)
        c.update(m)
    return {"examples": len(lines), "words": words, "commas": c[1], "periods": c[2], "questions": c[3]}


def _write_lines(path: str, lines: Sequence[str]) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in lines)
    atomic_write(path, write)


def _write_json(tmp: str, obj) -> None:
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def build_vocab(examples, size: int, min_count: int) -> list[str]:
    counts = Counter(w for words, _, _ in examples for w in words)
    kept = [w for w, c in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if c >= min_count][:size - 2]
    return [PAD, UNK] + kept


def _batches(examples, ids: dict, cfg: TrainConfig, rng: random.Random) -> list[tuple]:
    by_len: dict[int, list] = {}
    for ex in examples:
        by_len.setdefault(len(ex[0]), []).append(ex)
    out = []
    for length, group in by_len.items():
        rng.shuffle(group)
        size = max(1, min(cfg.max_batch, cfg.batch_words // length))
        for i in range(0, len(group), size):
            part = group[i:i + size]
            out.append((torch.tensor([[ids.get(w, 1) for w in words] for words, _, _ in part]),
                        torch.tensor([m for _, m, _ in part]), torch.tensor([c for _, _, c in part])))
    rng.shuffle(out)
    return out


# model ----------------------------------------------------------------------------------------
class Tagger(torch.nn.Module):
    """Embedding -> bidirectional GRU -> (mark scores, case scores) per word."""

    def __init__(self, vocab_size: int, cfg: ModelConfig):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=0)
        self.drop = torch.nn.Dropout(cfg.dropout)
        self.rnn = torch.nn.GRU(cfg.embed_dim, cfg.hidden_size, num_layers=cfg.num_layers, batch_first=True,
                                bidirectional=True, dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.marks = torch.nn.Linear(2 * cfg.hidden_size, len(MARKS))
        self.cases = torch.nn.Linear(2 * cfg.hidden_size, len(CASES))

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.rnn(self.drop(self.embed(ids)))
        h = self.drop(h)
        return self.marks(h), self.cases(h)


def _save(path: str, model: Tagger, cfg: PunctuationConfig, vocab: list[str], **extra) -> None:
    state = {"format": FORMAT, "toolkit_version": __version__, "config": cfg.to_dict(), "vocab": vocab,
             "model": model.state_dict(), **extra}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str) -> tuple[Tagger, PunctuationConfig, list[str], dict]:
    if not os.path.isfile(path):
        raise ValueError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for corrupt files
        raise ValueError(f"{path}: cannot read the checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a punctuation checkpoint (expected format {FORMAT!r})")
    cfg = PunctuationConfig.from_dict(state["config"])
    model = Tagger(len(state["vocab"]), cfg.model)
    model.load_state_dict(state["model"])
    model.eval()
    return model, cfg, state["vocab"], state


@torch.no_grad()
def _dev_scores(model: Tagger, batches) -> dict:
    model.eval()
    pairs = []
    for ids, m, c in batches:
        pm, pc = model(ids)
        pm, pc = pm.argmax(-1).numpy(), pc.argmax(-1).numpy()
        for j in range(ids.shape[0]):
            pairs.append((m[j].numpy(), c[j].numpy(), pm[j], pc[j]))
    model.train()
    return score(pairs)


def _selection(s: dict) -> float:
    return (s["comma"]["f1"] + s["period"]["f1"] + s["question"]["f1"]) / 3 + s["case_accuracy"]


def train(cfg: PunctuationConfig, exp: str, resume: bool = False) -> dict:
    """Train; writes ``exp/last.pt`` (each epoch, with the optimizer: ``resume`` goes on from
    it), ``exp/best.pt`` (best dev score: the mean F1 of the three marks plus case accuracy)
    and ``exp/log.jsonl``. Returns the best dev scores."""
    torch.set_num_threads(cfg.train.num_threads)
    os.makedirs(exp, exist_ok=True)
    t = cfg.train
    train_ex, dev_ex = read_examples(cfg.data.train), read_examples(cfg.data.dev)
    vocab = build_vocab(train_ex, cfg.data.vocab_size, cfg.data.min_count)
    ids = {w: i for i, w in enumerate(vocab)}
    random.seed(t.seed)
    np.random.seed(t.seed)
    torch.manual_seed(t.seed)
    model = Tagger(len(vocab), cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    dev_batches = _batches(dev_ex, ids, t, random.Random(0))
    steps_per_epoch = len(_batches(train_ex, ids, t, random.Random(0)))
    total = steps_per_epoch * t.epochs
    start_epoch, best, step = 0, None, 0
    last = os.path.join(exp, "last.pt")
    if resume and os.path.isfile(last):
        _, _, vocab_saved, state = load_checkpoint(last)
        if vocab_saved != vocab:
            raise ValueError(f"{last}: its vocabulary differs from data.train's; resume with the same data")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, step, best = state["epoch"], state["step"], state.get("best")
        log.info("resumed from %s after epoch %d", last, start_epoch)

    def lr_at(s: int) -> float:
        if s < t.warmup_steps:
            return t.lr * (s + 1) / t.warmup_steps
        p = min(1.0, (s - t.warmup_steps) / max(1, total - t.warmup_steps))
        return t.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p)))

    mark_loss = torch.nn.CrossEntropyLoss(weight=torch.tensor(t.mark_weights))
    case_loss = torch.nn.CrossEntropyLoss()
    model.train()
    started = time.time()
    for epoch in range(start_epoch, t.epochs):
        rng = random.Random(t.seed * 1000 + epoch)  # each epoch's order: the same after a resume
        torch.manual_seed(t.seed * 1000 + epoch)
        loss_sum, n = 0.0, 0
        for ids_b, m_b, c_b in _batches(train_ex, ids, t, rng):
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            pm, pc = model(ids_b)
            loss = mark_loss(pm.reshape(-1, len(MARKS)), m_b.reshape(-1)) + case_loss(pc.reshape(-1, len(CASES)), c_b.reshape(-1))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            opt.step()
            loss_sum += float(loss.detach())
            n += 1
            step += 1
        dev = _dev_scores(model, dev_batches)
        entry = {"epoch": epoch + 1, "step": step, "train_loss": round(loss_sum / max(1, n), 4),
                 "elapsed_s": round(time.time() - started, 1), "dev": dev}
        log.info("%s", json.dumps(entry))
        with open(os.path.join(exp, "log.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        if best is None or _selection(dev) > _selection(best):
            best = dev
            _save(os.path.join(exp, "best.pt"), model, cfg, vocab, epoch=epoch + 1, dev=dev)
        _save(last, model, cfg, vocab, epoch=epoch + 1, step=step, best=best, optimizer=opt.state_dict())
    return best


# export ---------------------------------------------------------------------------------------
@torch.no_grad()
def tune_mark_bias(model: "Tagger", vocab: list[str], path: str) -> tuple[tuple, dict]:
    """The mark bias (:attr:`asr.punctuation.TaggerInfo.mark_bias`) that gives the best mean
    F1 of the three marks on the examples of ``path`` (dev text): a grid search over the
    comma, period and question biases (steps of 0.25), with the scores before and after."""
    ids = {w: i for i, w in enumerate(vocab)}
    model.eval()
    logits, refs = [], []
    for x, m, _ in _batches(read_examples(path), ids, TrainConfig(batch_words=20000, max_batch=512), random.Random(0)):
        logits.append(model(x)[0].reshape(-1, len(MARKS)).numpy())
        refs.append(m.reshape(-1).numpy())
    logits, refs = np.concatenate(logits), np.concatenate(refs)

    def f1s(bias) -> list[float]:
        hyp = (logits + np.asarray(bias, np.float32)).argmax(-1)
        out = []
        for k in (1, 2, 3):
            tp = np.sum((hyp == k) & (refs == k))
            p, r = tp / max(1, np.sum(hyp == k)), tp / max(1, np.sum(refs == k))
            out.append(float(2 * p * r / (p + r)) if p + r else 0.0)
        return out

    grid = np.arange(-1.0, 2.01, 0.25)
    best = (0.0, 0.0, 0.0, 0.0)
    for _ in range(2):  # coordinate search, twice round
        for k in (1, 2, 3):
            cands = [tuple(float(g) if j == k else best[j] for j in range(4)) for g in grid]
            best = max(cands, key=lambda b: (round(sum(f1s(b)), 6), -abs(b[k])))
    before, after = f1s((0.0, 0.0, 0.0, 0.0)), f1s(best)
    return best, {"mark_bias": list(best), "dev_f1_before": [round(v, 4) for v in before],
                  "dev_f1_after": [round(v, 4) for v in after]}


def export(checkpoint: str, out: str, int8: bool = False, parity_lines: Sequence[str] = (),
           tune: Optional[str] = None) -> dict:
    """Write the ONNX model (``ids`` -> ``marks``, ``cases``) with its :class:`TaggerInfo`
    metadata, run it through the runtime's :class:`asr.punctuation.Punctuator` and compare it with
    PyTorch on ``parity_lines`` (or a few built-in sentences): scores within 1e-4 for the float
    graph, the same labels on nearly every word for ``int8`` (MatMul and Gather weights as int8;
    onnxruntime has no int8 GRU, so the recurrence stays float). ``tune``: dev text on which
    the mark bias is chosen (:func:`tune_mark_bias`). Returns the figures."""
    import onnx

    model, cfg, vocab, state = load_checkpoint(checkpoint)
    bias, tuned = (0.0, 0.0, 0.0, 0.0), None
    if tune:
        bias, tuned = tune_mark_bias(model, vocab, tune)
    info = TaggerInfo(vocab=tuple(vocab), window=cfg.train.window, context=cfg.train.context, mark_bias=bias,
                      toolkit_version=__version__, config=cfg.to_dict())
    tmp = out + ".float.onnx" if int8 else out
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    torch.onnx.export(model, (torch.ones(1, 7, dtype=torch.long),), tmp, input_names=["ids"],
                      output_names=["marks", "cases"], opset_version=17, dynamo=False,
                      dynamic_axes={"ids": {0: "batch", 1: "time"}, "marks": {0: "batch", 1: "time"},
                                    "cases": {0: "batch", 1: "time"}})
    proto = onnx.load(tmp)
    for k, v in info.to_metadata().items():
        proto.metadata_props.add(key=k, value=v)
    onnx.save(proto, tmp)
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(tmp, out, op_types_to_quantize=["MatMul", "Gather"], weight_type=QuantType.QInt8)
        q = onnx.load(out)
        if not any(p.key == "asr.format" for p in q.metadata_props):
            for k, v in info.to_metadata().items():
                q.metadata_props.add(key=k, value=v)
            onnx.save(q, out)
    lines = list(parity_lines) or ["where are you going i asked", "and god said let there be light and there was light",
                                   "the jargon file is a glossary of hacker slang"]
    rt = Punctuator(out)
    rt_float = Punctuator(tmp) if int8 else rt
    max_diff, agree, words = 0.0, 0, 0
    with torch.no_grad():
        for line in lines:
            toks = line.split()
            x = torch.from_numpy(rt.encode(toks))[None]
            tm, tc = model(x)
            fm, fc = rt_float.session.run(None, {"ids": x.numpy()})
            max_diff = max(max_diff, float(np.abs(fm - tm.numpy()).max()), float(np.abs(fc - tc.numpy()).max()))
            qm, qc = rt.session.run(None, {"ids": x.numpy()})
            agree += int(np.sum((qm.argmax(-1) == tm.argmax(-1).numpy()) & (qc.argmax(-1) == tc.argmax(-1).numpy())))
            words += len(toks)
    if int8:
        os.remove(tmp)
    if max_diff > 1e-4:
        os.remove(out)
        raise RuntimeError(f"{out}: ONNX and PyTorch differ by {max_diff:.2e} (> 1e-4); not written")
    report = {"path": out, "bytes": os.path.getsize(out), "int8": int8, "tuned": tuned, "max_abs_diff_float": max_diff,
              "label_agreement": agree / max(1, words), "parity_words": words, "vocab": len(vocab), "epoch": state.get("epoch")}
    if int8 and report["label_agreement"] < 0.98:
        os.remove(out)
        raise RuntimeError(f"{out}: int8 labels agree with PyTorch on {report['label_agreement']:.1%} of words (< 98%); not written")
    return report


# evaluation -------------------------------------------------------------------------------------
def evaluate(model_path: Optional[str], paths: Sequence[str]) -> dict:
    """:func:`asr.punctuation.evaluate` of a model file (None: the built-in one)."""
    return evaluate_files(Punctuator(model_path), paths)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m asr.train.punctuation", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="write train.txt, dev.txt and test_<source>.txt from installed packages")
    p.add_argument("--out", required=True)
    p.add_argument("--train-sources", default="kjv:150000,jargon,fortunes,sotu,linux-docs:300000,git-docs,perl-docs,"
                   "debian-handbook",
                   help="comma-separated NAME or NAME:WORDS (at most WORDS training words of it)")
    p.add_argument("--test-sources", default="chatterbot,python-docs,gnu-standards")
    p.add_argument("--seed", type=int, default=1234)
    p = sub.add_parser("train", help="train a tagger")
    p.add_argument("--config")
    p.add_argument("--exp", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("overrides", nargs="*", help="section.key=value")
    p = sub.add_parser("export", help="checkpoint -> ONNX with its metadata, checked by the runtime")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True)
    p.add_argument("--int8", action="store_true", help="int8 MatMul and Gather weights (the GRU stays float)")
    p.add_argument("--parity", help="a text file whose first 200 lines check the export")
    p.add_argument("--tune", help="dev text (one example a line) on which to choose the mark bias")
    p = sub.add_parser("evaluate", help="F1 of each mark and case accuracy of a model file on test files")
    p.add_argument("--model", help="an exported model (default: the built-in one)")
    p.add_argument("--out", help="write the scores as JSON here")
    p.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    try:
        if args.cmd == "prepare":
            res = prepare(args.out, [s for s in args.train_sources.split(",") if s],
                          [s for s in args.test_sources.split(",") if s], seed=args.seed)
        elif args.cmd == "train":
            cfg = load_config(args.config, args.overrides)
            os.makedirs(args.exp, exist_ok=True)
            with open(os.path.join(args.exp, "config.json"), "w", encoding="utf-8") as f:
                json.dump(cfg.to_dict(), f, indent=1)
            started = time.time()
            res = {"best_dev": train(cfg, args.exp, resume=args.resume), "wall_s": round(time.time() - started, 1)}
        elif args.cmd == "export":
            lines = []
            if args.parity:
                with open(args.parity, encoding="utf-8") as f:
                    lines = [" ".join(label_text(x)[0]) for x in f.read().splitlines()[:200] if x.strip()]
            res = export(args.checkpoint, args.out, int8=args.int8, parity_lines=lines, tune=args.tune)
        else:
            res = evaluate(args.model, args.files)
            if args.out:
                atomic_write(args.out, lambda tmp: _write_json(tmp, res))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
