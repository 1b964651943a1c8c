"""Manifests and batches: JSONL manifests in and out, a feature dataset that skips bad
entries with a warning (never a crash halfway through an epoch), and length-bucketed batches.

A manifest line is one JSON object: ``audio_filepath`` (absolute, or relative to the manifest's
folder), ``duration`` (seconds), ``text``, and optionally ``speaker`` and ``offset`` (seconds:
the utterance is the segment [offset, offset + duration] of the file, as in a Kaldi ``segments``
file or a NeMo manifest; without it, the whole file).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
import torch

from .audio import AudioError, load_audio, resample
from .features import LogMel
from .frontend import FrontendConfig
from .text import Tokenizer, normalize_text

log = logging.getLogger(__name__)

__all__ = ["ManifestError", "Entry", "read_manifest", "write_manifest", "FeatureDataset", "OnTheFlyDataset",
           "batch_loader", "bucket_batches", "collate"]

REQUIRED = {"audio_filepath": str, "duration": (int, float), "text": str}


class ManifestError(ValueError):
    pass


@dataclass
class Entry:
    audio_filepath: str
    duration: float
    text: str
    speaker: Optional[str] = None
    extra: dict = field(default_factory=dict)
    offset: Optional[float] = None  # seconds into the file; None: the whole file

    def to_json(self) -> dict:
        d = {"audio_filepath": self.audio_filepath, "duration": round(self.duration, 4), "text": self.text}
        if self.offset is not None:
            d["offset"] = round(self.offset, 4)
        if self.speaker is not None:
            d["speaker"] = self.speaker
        d.update(self.extra)
        return d


def _parse_line(line: str, base: str) -> Entry:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ManifestError(f"expected a JSON object, got {type(obj).__name__}")
    for key, typ in REQUIRED.items():
        if key not in obj:
            raise ManifestError(f"missing field {key!r}")
        if not isinstance(obj[key], typ) or isinstance(obj[key], bool):
            raise ManifestError(f"field {key!r} has type {type(obj[key]).__name__}")
    if not obj["duration"] > 0:
        raise ManifestError(f"duration must be positive, got {obj['duration']}")
    offset = obj.pop("offset", None)
    if offset is not None and (not isinstance(offset, (int, float)) or isinstance(offset, bool) or offset < 0):
        raise ManifestError(f"field 'offset' must be a number of seconds >= 0, got {offset!r}")
    path = obj.pop("audio_filepath")
    if not os.path.isabs(path):
        path = os.path.normpath(os.path.join(base, path))
    speaker = obj.pop("speaker", None)
    return Entry(path, float(obj.pop("duration")), obj.pop("text"), None if speaker is None else str(speaker), obj,
                 None if offset is None else float(offset))


def read_manifest(path: str | os.PathLike, strict: bool = False) -> list[Entry]:
    """Read a JSONL manifest. A malformed line is reported with its file and line number and
    skipped (``strict=True``: raised). A missing file, or one with no valid line, raises."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ManifestError(f"{path}: manifest not found")
    base = os.path.dirname(os.path.abspath(path))
    entries, bad = [], 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entries.append(_parse_line(line, base))
            except ManifestError as exc:
                if strict:
                    raise ManifestError(f"{path}:{lineno}: {exc}") from None
                bad += 1
                log.warning("%s:%d: skipping malformed line: %s", path, lineno, exc)
    if bad:
        log.warning("%s: skipped %d malformed line(s), kept %d", path, bad, len(entries))
    if not entries:
        raise ManifestError(f"{path}: no valid entries")
    return entries


def write_manifest(path: str | os.PathLike, entries: Iterable[Entry]) -> int:
    """Write entries as JSONL (atomically); returns the number written."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    n = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for e in entries:
            f.write(json.dumps(e.to_json(), ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


def segment_of(e: Entry) -> tuple[float, Optional[float]]:
    """(offset, duration) arguments of :func:`asr.audio.load_audio` for an entry: its segment
    when it has an ``offset``, else the whole file."""
    return (0.0, None) if e.offset is None else (e.offset, e.duration)


def _perturb(wave: np.ndarray, speed: float, sample_rate: int) -> np.ndarray:
    """Speed perturbation (tempo and pitch together) by resampling; 1.0 returns ``wave``."""
    return wave if speed == 1.0 else resample(wave, int(round(sample_rate * speed)), sample_rate)


class _Items:
    """What both datasets share: items (entries, targets, lengths), skipped entries, batches.
    Subclasses fill the lists and give :meth:`features`."""

    frontend: FrontendConfig
    entries: list[Entry]
    targets: list[Optional[torch.Tensor]]
    skipped: list[tuple[str, str]]
    aux_targets: Optional[list[Optional[torch.Tensor]]] = None  # see set_aux_targets

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def total_seconds(self) -> float:
        return sum(self.lengths) * self.frontend.frame_shift_s

    def _skip(self, e: Entry, reason: str) -> None:
        self.skipped.append((e.audio_filepath, reason))
        log.warning("skipping %s: %s", e.audio_filepath, reason)

    def _target(self, tokenizer: Optional[Tokenizer], e: Entry, required: bool) -> tuple[bool, Optional[torch.Tensor]]:
        """(keep the entry?, its target ids). A transcript the tokenizer cannot encode (or an
        empty one) skips the entry when targets are ``required``; otherwise the entry stays
        without a target (dev and test sets: still decoded and scored, not in the loss)."""
        if tokenizer is None:
            return True, None
        try:
            target = torch.tensor(tokenizer.encode(e.text), dtype=torch.long)
            if target.numel() == 0:
                raise ValueError("empty transcript")
            return True, target
        except ValueError as exc:
            if required:
                self._skip(e, str(exc))
                return False, None
            return True, None

    def set_aux_targets(self, tokenizer: Tokenizer) -> int:
        """Second targets for every item (e.g. phones for an auxiliary CTC head); an item the
        ``tokenizer`` cannot encode keeps its main target and has none here (batches mark it
        in ``aux_valid``). Returns how many items have none."""
        cache: dict[str, Optional[torch.Tensor]] = {}
        self.aux_targets = []
        for e in self.entries:
            if e.text not in cache:
                try:
                    ids = tokenizer.encode(e.text)
                    cache[e.text] = torch.tensor(ids, dtype=torch.long) if ids else None
                except ValueError as exc:
                    log.debug("no auxiliary target for %s: %s", e.audio_filepath, exc)
                    cache[e.text] = None
            self.aux_targets.append(cache[e.text])
        return sum(t is None for t in self.aux_targets)

    def features(self, i: int) -> Optional[torch.Tensor]:
        raise NotImplementedError

    def batch(self, indices: Sequence[int]) -> Optional[dict]:
        """A padded batch of the items whose features exist (None when none does)."""
        feats, targets, aux = [], [], []
        for i in indices:
            f = self.features(i)
            if f is not None:
                feats.append(f)
                targets.append(self.targets[i])
                if self.aux_targets is not None:
                    aux.append(self.aux_targets[i])
        if not feats:
            return None
        out = collate(feats, None if any(t is None for t in targets) else targets)
        if self.aux_targets is not None:
            valid = torch.tensor([t is not None for t in aux])
            y, tl = pad_targets([t if t is not None else torch.zeros(0, dtype=torch.long) for t in aux])
            out.update(aux_targets=y, aux_target_lengths=tl, aux_valid=valid)
        return out


class FeatureDataset(_Items):
    """Loads every entry once, computes its log-mel features with the training front end and
    keeps them in memory. Entries whose audio cannot be read or is too short are skipped with a
    warning and counted in ``skipped``; so are those whose text the tokenizer cannot encode,
    unless ``require_targets`` is False (dev and test sets: still scored, left out of the loss).
    ``speeds`` other than 1.0 add speed-perturbed copies (tempo and pitch, by resampling)."""

    def __init__(
        self,
        entries: Sequence[Entry],
        frontend: FrontendConfig,
        tokenizer: Optional[Tokenizer] = None,
        progress: bool = True,
        desc: str = "features",
        require_targets: bool = True,
        speeds: Sequence[float] = (1.0,),
    ):
        from tqdm import tqdm

        self.frontend = frontend
        logmel = LogMel(frontend)
        self.entries: list[Entry] = []
        self.feats: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        self.skipped: list[tuple[str, str]] = []
        for e in tqdm(entries, desc=desc, disable=None if progress else True, leave=False, unit="utt"):
            try:
                wave = load_audio(e.audio_filepath, frontend.sample_rate, *segment_of(e))
            except AudioError as exc:
                self._skip(e, exc.reason)
                continue
            if frontend.num_frames(wave.shape[0]) < 1:
                self._skip(e, f"too short ({wave.shape[0]} samples, need at least {frontend.n_fft})")
                continue
            keep, target = self._target(tokenizer, e, require_targets)
            if not keep:
                continue
            for speed in speeds:  # speed perturbation: one copy of the utterance per factor
                w = _perturb(wave, speed, frontend.sample_rate)
                if frontend.num_frames(w.shape[0]) < 1:
                    continue
                self.entries.append(e)
                self.feats.append(logmel(torch.from_numpy(w)))
                self.targets.append(target)
        if self.skipped:
            log.warning("%s: skipped %d of %d entries (see warnings above)", desc, len(self.skipped), len(entries))

    @property
    def lengths(self) -> list[int]:
        return [f.shape[0] for f in self.feats]

    def features(self, i: int) -> torch.Tensor:
        return self.feats[i]


class OnTheFlyDataset(_Items):
    """The interface of :class:`FeatureDataset` (``entries``, ``lengths``, ``batch``,
    ``skipped``, ``total_seconds``) without keeping features: a batch loads its audio and
    computes features when asked, so memory stays flat for corpora of any size, and
    :func:`batch_loader` computes them in background worker processes.

    Lengths for bucketing come from the manifest durations. Transcripts are encoded up front
    (entries the tokenizer cannot encode are skipped now, as in :class:`FeatureDataset`);
    unreadable or too-short audio is found when its batch is built: that utterance is left out
    of the batch with a warning (in the worker's log) and the epoch goes on."""

    def __init__(
        self,
        entries: Sequence[Entry],
        frontend: FrontendConfig,
        tokenizer: Optional[Tokenizer] = None,
        require_targets: bool = True,
        speeds: Sequence[float] = (1.0,),
    ):
        self.frontend = frontend
        self.logmel = LogMel(frontend)
        self.entries: list[Entry] = []
        self.speeds: list[float] = []
        self.targets: list[Optional[torch.Tensor]] = []
        self.lengths: list[int] = []
        self.skipped: list[tuple[str, str]] = []
        for e in entries:
            keep, target = self._target(tokenizer, e, require_targets)
            if not keep:
                continue
            for speed in speeds:
                n = frontend.num_frames(int(round(e.duration * frontend.sample_rate / speed)))
                if n < 1:
                    continue
                self.entries.append(e)
                self.speeds.append(float(speed))
                self.targets.append(target)
                self.lengths.append(n)

    def features(self, i: int) -> Optional[torch.Tensor]:
        """Log-mel features of item ``i`` (None, with a warning, when its audio is unusable)."""
        e, speed, fe = self.entries[i], self.speeds[i], self.frontend
        try:
            wave = load_audio(e.audio_filepath, fe.sample_rate, *segment_of(e))
        except AudioError as exc:
            log.warning("skipping %s: %s", e.audio_filepath, exc.reason)
            return None
        wave = _perturb(wave, speed, fe.sample_rate)
        if fe.num_frames(wave.shape[0]) < 1:
            log.warning("skipping %s: too short (%d samples, need at least %d)", e.audio_filepath, wave.shape[0], fe.n_fft)
            return None
        return self.logmel(torch.from_numpy(wave))

    def sample_features(self, max_items: int = 1000, seed: int = 0) -> Iterator[torch.Tensor]:
        """Features of up to ``max_items`` items drawn at random (normalization statistics)."""
        rng = np.random.default_rng(seed)
        for i in sorted(rng.permutation(len(self))[:max_items].tolist()):
            f = self.features(i)
            if f is not None:
                yield f


def _as_is(batch):
    return batch


class _Batches(torch.utils.data.Dataset):
    def __init__(self, dataset, batches):
        self.dataset, self.batches = dataset, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        return self.dataset.batch(self.batches[i])


def batch_loader(dataset, batches: Sequence[Sequence[int]], workers: int = 0, prefetch: int = 4) -> Iterator[Optional[dict]]:
    """The batches of ``dataset``, in order; with ``workers`` > 0 built in that many background
    processes, each keeping ``prefetch`` batches ready (a batch whose every utterance failed
    comes back as None)."""
    if workers <= 0 or not batches:
        for b in batches:
            yield dataset.batch(b)
        return
    loader = torch.utils.data.DataLoader(
        _Batches(dataset, list(batches)), batch_size=None, shuffle=False, num_workers=workers,
        prefetch_factor=prefetch, collate_fn=_as_is,
    )
    yield from loader


def collate(feats: Sequence[torch.Tensor], targets: Optional[Sequence[torch.Tensor]] = None) -> dict:
    lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
    x = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
    for i, f in enumerate(feats):
        x[i, : f.shape[0]] = f
    out = {"feats": x, "lengths": lengths}
    if targets is not None:
        y, tl = pad_targets(targets)
        out.update(targets=y, target_lengths=tl)
    return out


def pad_targets(targets: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Target id sequences -> (B, longest) zero-padded ids and their lengths."""
    tl = torch.tensor([t.numel() for t in targets], dtype=torch.long)
    y = torch.zeros(len(targets), max(1, int(tl.max())), dtype=torch.long)
    for i, t in enumerate(targets):
        y[i, : t.numel()] = t
    return y, tl


def bucket_batches(
    lengths: Sequence[int],
    max_frames: int,
    max_batch: int,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    pool_batches: int = 50,
) -> list[list[int]]:
    """Group utterances of similar length: shuffle, sort within pools of about ``pool_batches``
    batches, cut batches whose padded size stays within ``max_frames`` (and ``max_batch``
    utterances), then shuffle the batches. Deterministic for a given (seed, epoch)."""
    n = len(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if shuffle else np.argsort(lengths, kind="stable")
    pool = max(1, pool_batches * max_batch)
    batches: list[list[int]] = []
    for start in range(0, n, pool):
        chunk = sorted(order[start : start + pool].tolist(), key=lambda i: lengths[i])
        cur: list[int] = []
        longest = 0
        for i in chunk:
            new_longest = max(longest, lengths[i])
            if cur and (new_longest * (len(cur) + 1) > max_frames or len(cur) >= max_batch):
                batches.append(cur)
                cur, new_longest = [], lengths[i]
            cur.append(i)
            longest = new_longest
        if cur:
            batches.append(cur)
    if shuffle:
        perm = rng.permutation(len(batches))
        batches = [batches[i] for i in perm]
    return batches


def iterate_batches(dataset: FeatureDataset, batches: Sequence[Sequence[int]]) -> Iterator[dict]:
    for b in batches:
        yield dataset.batch(b)
