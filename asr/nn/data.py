"""Training batches: feature datasets over manifest entries (:mod:`asr.manifest`) that skip
bad entries with a warning (never a crash halfway through an epoch), and length-bucketed
batches."""

from __future__ import annotations

import logging
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

from asr.audio import AudioError, load_audio, resample
from asr.manifest import Entry, segment_of
from asr.nn.features import LogMel
from asr.frontend import FrontendConfig
from asr.text import Tokenizer

log = logging.getLogger(__name__)

__all__ = ["FeatureDataset", "OnTheFlyDataset", "batch_loader", "bucket_batches", "collate"]


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
