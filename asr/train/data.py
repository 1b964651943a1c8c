"""Training batches: feature datasets over manifest entries (:mod:`asr.manifest`) that skip
bad entries with a warning (never a crash halfway through an epoch), length-bucketed batches,
generated non-speech clips with empty transcripts (:func:`nonspeech_entries`), and synthetic
speech mixed into each epoch in a set ratio (:func:`epoch_items`)."""

from __future__ import annotations

import bisect
import dataclasses
import logging
from array import array
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from asr.audio import AudioError, load_audio, resample
from asr.frontend import FrontendConfig
from asr.manifest import Entry, LazySequence, segment_of
from asr.shards import load_shard_audio
from asr.text import Tokenizer
from asr.train.features import LogMel

log = logging.getLogger(__name__)

__all__ = [
    "FeatureDataset", "OnTheFlyDataset", "batch_loader", "bucket_batches", "collate",
    "NONSPEECH_KINDS", "nonspeech_entries", "nonspeech_wave", "mark_synthetic", "is_synthetic", "epoch_items",
    "ConcatConfig", "StringSpec", "string_specs", "string_wave", "shard_order", "shuffle_buffer", "shard_batches",
    "interleave_ranks",
]

# Generated non-speech clips (train.nonspeech_fraction): what they sound like. Each is an
# Entry whose ``extra["nonspeech"]`` says how to make its audio again (kind, seed, index), so
# every process and worker builds the same clip without files, and whose transcript is empty:
# its CTC target is the all-blank path, which teaches the model to say nothing.
NONSPEECH_KINDS = ("silence", "white", "pink", "brown", "dc", "tone", "square", "hum", "clicks", "sweep")
_NONSPEECH_STREAM = 0x6E73  # keeps the clips' random numbers apart from other uses of the seed


def nonspeech_entries(entries: Sequence[Entry], fraction: float, seed: int) -> list[Entry]:
    """``round(fraction * len(entries))`` entries for generated non-speech clips, the kinds of
    :data:`NONSPEECH_KINDS` in turn, each lasting as long as a random utterance of ``entries``
    times 0.8-1.25 (kept within the corpus's shortest and longest). Deterministic for ``seed``;
    clip ``i`` is the same whatever the fraction. Their text is empty: the datasets give them
    an empty target (a real utterance with an empty transcript is still skipped)."""
    n = int(round(fraction * len(entries)))
    if n <= 0 or not entries:
        return []
    durations = getattr(entries, "durations", None)  # a ManifestIndex has them without parsing a line
    if durations is None:
        durations = np.array([e.duration for e in entries], dtype=np.float64)
    lo, hi = float(durations.min()), float(durations.max())
    rng = np.random.default_rng([seed, _NONSPEECH_STREAM])
    out = []
    for i in range(n):
        kind = NONSPEECH_KINDS[i % len(NONSPEECH_KINDS)]
        d = float(np.clip(durations[rng.integers(len(durations))] * rng.uniform(0.8, 1.25), lo, hi))
        out.append(Entry(f"<nonspeech {i}: {kind}>", d, "", extra={"nonspeech": {"kind": kind, "seed": seed, "index": i}}))
    return out


def _db(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A gain drawn uniformly in decibels."""
    return float(10 ** (rng.uniform(lo, hi) / 20))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Unit-RMS noise whose power falls as 1/f**exponent (1: pink, 2: brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    x = np.fft.irfft(spec * f ** (-exponent / 2), n)
    x -= x.mean()
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-12)


def nonspeech_wave(kind: str, num_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """``num_samples`` of non-speech audio of ``kind`` (one of :data:`NONSPEECH_KINDS`) at a
    random level, as float32 within [-1, 1] (louder signals clip, as a recording would):

    silence: digital zeros; white/pink/brown: noise at -80 to -5 dBFS RMS (brown -70 to -10);
    dc: an offset of +-0.05 to 0.6 with noise at -90 to -40 dBFS; tone: a sine at 1 kHz
    (three times in ten) or 50 Hz to 0.45 x sample_rate, peak -40 to -1 dBFS; square: a sine of
    50 Hz to sample_rate / 4 overdriven 2-100x and clipped; hum: 50/60 Hz mains with
    harmonics; clicks: short bursts on a quiet floor; sweep: a logarithmic chirp. All but
    silence get a faint noise floor (-100 to -50 dBFS) half the time."""
    n, sr = int(num_samples), float(sample_rate)
    t = np.arange(n) / sr
    top = 0.45 * sr
    if kind == "silence":
        return np.zeros(n, dtype=np.float32)
    if kind == "white":
        x = _db(rng, -80, -5) * rng.standard_normal(n)
    elif kind == "pink":
        x = _db(rng, -80, -5) * _colored_noise(rng, n, 1.0)
    elif kind == "brown":
        x = _db(rng, -70, -10) * _colored_noise(rng, n, 2.0)
    elif kind == "dc":
        x = rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.6) + _db(rng, -90, -40) * rng.standard_normal(n)
    elif kind == "tone":
        f = 1000.0 if rng.random() < 0.3 and top > 1000 else _log_uniform(rng, 50, top)
        x = _db(rng, -40, -1) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    elif kind == "square":
        f = _log_uniform(rng, 50, sr / 4)
        drive = _log_uniform(rng, 2, 100)
        x = _db(rng, -30, -1) * np.clip(drive * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)), -1, 1)
    elif kind == "hum":
        f0 = rng.choice([50.0, 60.0]) * (1 + 0.005 * rng.standard_normal())
        x = np.zeros(n)
        for k in range(1, int(rng.integers(1, 12)) + 1):
            if k * f0 < top:
                x += rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
        x *= _db(rng, -50, -10) / max(float(np.sqrt(np.mean(x**2))), 1e-12)
    elif kind == "clicks":
        x = _db(rng, -80, -50) * rng.standard_normal(n)
        width = max(1, int(sr * 0.002))
        burst = np.exp(-np.arange(5 * width) / width) * rng.standard_normal(5 * width)
        for _ in range(int(rng.poisson(rng.uniform(1, 15) * n / sr)) + 1):
            at = int(rng.integers(n))
            piece = burst[: n - at] * _db(rng, -30, 0) * rng.choice([-1.0, 1.0])
            x[at : at + piece.shape[0]] += piece
    elif kind == "sweep":
        f1, f2 = _log_uniform(rng, 50, top), _log_uniform(rng, 50, top)
        span = max(t[-1] if n else 0.0, 1e-3)
        freq = f1 * (f2 / f1) ** (t / span)
        x = _db(rng, -40, -1) * np.sin(2 * np.pi * np.cumsum(freq) / sr + rng.uniform(0, 2 * np.pi))
    else:
        raise ValueError(f"unknown non-speech kind {kind!r}; known: {', '.join(NONSPEECH_KINDS)}")
    if rng.random() < 0.5:
        x = x + _db(rng, -100, -50) * rng.standard_normal(n)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _load(e: Entry, sample_rate: int) -> np.ndarray:
    """The audio of an entry: its file (or segment), or a generated non-speech clip."""
    ns = e.extra.get("nonspeech")
    if ns is not None:
        rng = np.random.default_rng([int(ns["seed"]), _NONSPEECH_STREAM, int(ns["index"])])
        return nonspeech_wave(ns["kind"], int(round(e.duration * sample_rate)), sample_rate, rng)
    if "shard" in e.extra:  # a member of a tar shard (asr.shards)
        return load_shard_audio(e, sample_rate)
    return load_audio(e.audio_filepath, sample_rate, *segment_of(e))


def mark_synthetic(entries: Sequence[Entry]) -> list[Entry]:
    """Copies of ``entries`` marked as synthetic speech (``extra["synthetic"]``): the datasets
    give them one copy each (no speed perturbation) and :func:`epoch_items` draws them."""
    return [dataclasses.replace(e, extra={**e.extra, "synthetic": True}) for e in entries]


def is_synthetic(e: Entry) -> bool:
    return bool(e.extra.get("synthetic"))


def _speeds_of(e: Entry, speeds: Sequence[float]) -> Sequence[float]:
    return (1.0,) if is_synthetic(e) else speeds


def epoch_items(synthetic_mask: Sequence[bool], ratio: float, seed: int, epoch: int, real_only: bool = False) -> list[int]:
    """The items (indices into a dataset's, whose :meth:`synthetic_mask` says which are
    synthetic) that an epoch trains on: every real item, and ``round(ratio * real items)``
    synthetic ones (all of them when there are fewer) drawn without replacement, a new draw
    per ``(seed, epoch)``; none with ``real_only``."""
    mask = np.asarray(synthetic_mask, dtype=bool)
    real = np.flatnonzero(~mask).tolist()
    synthetic = np.flatnonzero(mask).tolist()
    if real_only or not synthetic:
        return real
    k = min(len(synthetic), int(round(ratio * len(real))))
    rng = np.random.default_rng([seed, epoch, 104729])
    chosen = rng.choice(len(synthetic), size=k, replace=False)
    return sorted(real + [synthetic[j] for j in chosen])


@dataclasses.dataclass
class ConcatConfig:
    """Connected speech made on the fly (``train.concat``): each epoch, ``ratio`` x (usable
    items) strings, each joining ``items`` [low, high] utterances drawn at random from the
    training items (real or synthetic, at speed 1.0, at most ``max_part_s`` seconds each, with
    a transcript), each piece at its own level (``gain_db`` [low, high]), separated by pauses
    of up to ``pause_s`` seconds (a string draws its longest pause uniformly in [0, pause_s],
    then each pause uniformly below it, so some strings run their words together and others
    leave a second between them), with ``edge_s`` seconds at most of silence before and after.
    Half of the strings lie on a faint continuous noise floor (-90 to -55 dBFS), the others
    keep each recording's own background with digital silence between. Transcripts are joined
    with spaces. Drawn anew for every (seed, epoch): resume stays exact."""

    ratio: float = 1.0
    items: list[int] = dataclasses.field(default_factory=lambda: [2, 8])
    pause_s: float = 1.0
    edge_s: float = 0.5
    gain_db: list[float] = dataclasses.field(default_factory=lambda: [-10.0, 3.0])
    max_part_s: float = 2.0

    def problems(self) -> list[str]:
        out = []
        if not 0 < self.ratio <= 20:
            out.append(f"train.concat.ratio must be in (0, 20], got {self.ratio!r}")
        if len(self.items) != 2 or not 1 <= self.items[0] <= self.items[1] <= 100:
            out.append(f"train.concat.items must be [low, high] with 1 <= low <= high <= 100, got {self.items!r}")
        if not 0 <= self.pause_s <= 30:
            out.append(f"train.concat.pause_s must be in [0, 30] seconds, got {self.pause_s!r}")
        if not 0 <= self.edge_s <= 30:
            out.append(f"train.concat.edge_s must be in [0, 30] seconds, got {self.edge_s!r}")
        if len(self.gain_db) != 2 or not -60 <= self.gain_db[0] <= self.gain_db[1] <= 30:
            out.append(f"train.concat.gain_db must be [low, high] with -60 <= low <= high <= 30, got {self.gain_db!r}")
        if not self.max_part_s > 0:
            out.append(f"train.concat.max_part_s must be > 0 seconds, got {self.max_part_s!r}")
        return out


@dataclasses.dataclass(frozen=True)
class StringSpec:
    """One connected string: the items it joins (indices into a dataset), the silence before
    each piece and after the last (samples), each piece's gain, and its noise floor (None: digital
    silence between the recordings) with the seed of that noise."""

    parts: tuple[int, ...]
    gaps: tuple[int, ...]  # len(parts) + 1: before the first piece, between pieces, after the last
    gains: tuple[float, ...]
    floor: Optional[float]
    seed: int

    def num_samples(self, part_samples: Sequence[int]) -> int:
        return sum(part_samples[i] for i in self.parts) + sum(self.gaps)


_CONCAT_STREAM = 0x636F  # keeps the strings' random numbers apart from other uses of the seed


def string_specs(candidates: Sequence[int], cfg: ConcatConfig, sample_rate: int, seed: int, epoch: int) -> list[StringSpec]:
    """The strings of one epoch, ``round(cfg.ratio * len(candidates))`` of them, joining items of
    ``candidates`` (dataset indices). Deterministic for ``(seed, epoch)``."""
    if not candidates:
        return []
    rng = np.random.default_rng([seed, _CONCAT_STREAM, epoch])
    out = []
    for _ in range(int(round(cfg.ratio * len(candidates)))):
        k = int(rng.integers(cfg.items[0], cfg.items[1] + 1))
        parts = tuple(int(candidates[j]) for j in rng.integers(len(candidates), size=k))
        longest = rng.uniform(0, cfg.pause_s)
        inner = rng.uniform(0, longest, size=k - 1)
        edges = rng.uniform(0, cfg.edge_s, size=2)
        gaps = tuple(int(round(g * sample_rate)) for g in [edges[0], *inner, edges[1]])
        gains = tuple(float(10 ** (g / 20)) for g in rng.uniform(cfg.gain_db[0], cfg.gain_db[1], size=k))
        floor = float(10 ** (rng.uniform(-90, -55) / 20)) if rng.random() < 0.5 else None
        out.append(StringSpec(parts, gaps, gains, floor, int(rng.integers(2**31))))
    return out


def string_wave(spec: StringSpec, waves: Sequence[np.ndarray]) -> np.ndarray:
    """The audio of ``spec``: ``waves[i]`` for each of its parts, scaled, laid out with its gaps
    over its noise floor, clipped to [-1, 1] as a recording would be."""
    n = sum(w.shape[0] for w in waves) + sum(spec.gaps)
    out = np.zeros(n, dtype=np.float32)
    if spec.floor is not None:
        out += (spec.floor * np.random.default_rng(spec.seed).standard_normal(n)).astype(np.float32)
    pos = spec.gaps[0]
    for w, g, gap in zip(waves, spec.gains, spec.gaps[1:]):
        out[pos : pos + w.shape[0]] += g * w
        pos += w.shape[0] + gap
    return np.clip(out, -1.0, 1.0)


def _ids(ids: Sequence[int]) -> np.ndarray:
    """Token ids as an item keeps them (see :attr:`_Items.targets`)."""
    return np.asarray(ids, dtype=np.int32)


def _perturb(wave: np.ndarray, speed: float, sample_rate: int) -> np.ndarray:
    """Speed perturbation (tempo and pitch together) by resampling; 1.0 returns ``wave``."""
    return wave if speed == 1.0 else resample(wave, int(round(sample_rate * speed)), sample_rate)


class _LazySamples:
    """``samples[i]``: an item's length in samples, asked of the dataset only when needed."""

    def __init__(self, ds: "_Items"):
        self.ds, self.cache = ds, {}

    def __getitem__(self, i: int) -> int:
        if i not in self.cache:
            self.cache[i] = self.ds.part_samples(i)
        return self.cache[i]


class _Items:
    """What both datasets share: items (entries, targets, lengths), skipped entries, batches.
    Subclasses fill the lists and give :meth:`features`."""

    frontend: FrontendConfig
    entries: list[Entry]
    # token ids of each item's transcript, numpy int32: a torch tensor per item costs ~1 KB of
    # bookkeeping (over 1 GB per million utterances), a numpy array ~110 bytes; the batch
    # becomes torch tensors (pad_targets)
    targets: list[Optional[np.ndarray]]
    speeds: list[float]
    skipped: list[tuple[str, str]]
    aux_targets: Optional[list[Optional[np.ndarray]]] = None  # see set_aux_targets
    # connected strings (train.concat): items len(entries) + k are strings[k], set per epoch
    strings: Sequence[StringSpec] = ()

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def total_seconds(self) -> float:
        return int(self.base_lengths().sum()) * self.frontend.frame_shift_s

    def base_lengths(self) -> np.ndarray:
        """Frames of each item, connected strings aside (int)."""
        return np.asarray(self.lengths[: len(self)], dtype=np.int64)

    def synthetic_mask(self) -> np.ndarray:
        """Which items are synthetic speech (:func:`mark_synthetic`)."""
        return np.array([is_synthetic(e) for e in self.entries], dtype=bool)

    def part_samples(self, i: int) -> int:
        """Samples of item ``i``'s audio at the front end's rate (without reading it)."""
        raise NotImplementedError

    def wave(self, i: int) -> Optional[np.ndarray]:
        """Item ``i``'s audio at the front end's rate, speed-perturbed as the item is (None, with
        a warning, when unusable)."""
        raise NotImplementedError

    def string_candidates(self, max_part_s: float) -> list[int]:
        """Items a connected string may join: speech with a transcript (no generated non-speech),
        at speed 1.0, at most ``max_part_s`` seconds long."""
        limit = max_part_s * self.frontend.sample_rate
        return [i for i, e in enumerate(self.entries)
                if self.speeds[i] == 1.0 and "nonspeech" not in e.extra and self.targets[i] is not None
                and len(self.targets[i]) > 0 and self.part_samples(i) <= limit]

    def string_lengths(self, specs: Sequence[StringSpec]) -> list[int]:
        """Feature frames of each string of ``specs``."""
        samples = _LazySamples(self)
        return [self.frontend.num_frames(spec.num_samples(samples)) for spec in specs]

    def string_item(self, k: int) -> tuple[Optional[torch.Tensor], np.ndarray, Optional[np.ndarray]]:
        """(features, target, auxiliary target) of string ``k`` of :attr:`strings`."""
        spec = self.strings[k]
        waves = [self.wave(i) for i in spec.parts]
        if any(w is None for w in waves):
            return None, _ids([]), None
        feats = self._logmel(torch.from_numpy(string_wave(spec, waves)))
        target = np.concatenate([self.targets[i] for i in spec.parts])
        aux = None
        if self.aux_targets is not None and all(self.aux_targets[i] is not None for i in spec.parts):
            aux = np.concatenate([self.aux_targets[i] for i in spec.parts])
        return feats, target, aux

    def _skip(self, e: Entry, reason: str) -> None:
        self.skipped.append((e.audio_filepath, reason))
        log.warning("skipping %s: %s", e.audio_filepath, reason)

    def _target(self, tokenizer: Optional[Tokenizer], e: Entry, required: bool) -> tuple[bool, Optional[np.ndarray]]:
        """(keep the entry?, its target ids). A transcript the tokenizer cannot encode (or an
        empty one) skips the entry when targets are ``required``; otherwise the entry stays
        without a target (dev and test sets: still decoded and scored, not in the loss).
        A generated non-speech clip (:func:`nonspeech_entries`) has an empty target."""
        if tokenizer is None:
            return True, None
        if "nonspeech" in e.extra:  # a generated non-speech clip: CTC's all-blank path
            return True, _ids([])
        try:
            target = _ids(tokenizer.encode(e.text))
            if len(target) == 0:
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
        cache: dict[str, Optional[np.ndarray]] = {}
        self.aux_targets = []
        for e in self.entries:
            if "nonspeech" in e.extra:  # no phones either: a valid, empty target
                self.aux_targets.append(_ids([]))
                continue
            if e.text not in cache:
                try:
                    ids = tokenizer.encode(e.text)
                    cache[e.text] = _ids(ids) if ids else None
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
        n = len(self.entries)
        for i in indices:
            if i >= n:
                f, target, a = self.string_item(i - n)
            else:
                f, target = self.features(i), self.targets[i]
                a = self.aux_targets[i] if self.aux_targets is not None else None
            if f is not None:
                feats.append(f)
                targets.append(target)
                if self.aux_targets is not None:
                    aux.append(a)
        if not feats:
            return None
        out = collate(feats, None if any(t is None for t in targets) else targets)
        if self.aux_targets is not None:
            valid = torch.tensor([t is not None for t in aux])
            y, tl = pad_targets([t if t is not None else _ids([]) for t in aux])
            out.update(aux_targets=y, aux_target_lengths=tl, aux_valid=valid)
        return out


class FeatureDataset(_Items):
    """Loads every entry once, computes its log-mel features with the training front end and
    keeps them in memory. Entries whose audio cannot be read or is too short are skipped with a
    warning and counted in ``skipped``; so are those whose text the tokenizer cannot encode,
    unless ``require_targets`` is False (dev and test sets: still scored, left out of the loss).
    ``speeds`` other than 1.0 add speed-perturbed copies (tempo and pitch, by resampling).
    Entries from :func:`nonspeech_entries` are generated instead of read, and pass through the
    same speed perturbation and front end."""

    def __init__(
        self,
        entries: Sequence[Entry],
        frontend: FrontendConfig,
        tokenizer: Optional[Tokenizer] = None,
        progress: bool = True,
        desc: str = "features",
        require_targets: bool = True,
        speeds: Sequence[float] = (1.0,),
        keep_waves: bool = False,
    ):
        from tqdm import tqdm

        self.frontend = frontend
        self._logmel = logmel = LogMel(frontend)
        self.entries: list[Entry] = []
        self.feats: list[torch.Tensor] = []
        self.targets: list[np.ndarray] = []
        self.speeds: list[float] = []
        self.waves: Optional[list[np.ndarray]] = [] if keep_waves else None  # for connected strings
        self.skipped: list[tuple[str, str]] = []
        for e in tqdm(entries, desc=desc, disable=None if progress else True, leave=False, unit="utt"):
            try:
                wave = _load(e, frontend.sample_rate)
            except AudioError as exc:
                self._skip(e, exc.reason)
                continue
            if frontend.num_frames(wave.shape[0]) < 1:
                self._skip(e, f"too short ({wave.shape[0]} samples, need at least {frontend.n_fft})")
                continue
            keep, target = self._target(tokenizer, e, require_targets)
            if not keep:
                continue
            for speed in _speeds_of(e, speeds):  # speed perturbation: one copy of the utterance per factor
                w = _perturb(wave, speed, frontend.sample_rate)
                if frontend.num_frames(w.shape[0]) < 1:
                    continue
                self.entries.append(e)
                self.feats.append(logmel(torch.from_numpy(w)))
                self.targets.append(target)
                self.speeds.append(float(speed))
                if self.waves is not None:
                    self.waves.append(w if speed == 1.0 else np.zeros(0, np.float32))  # strings take speed 1.0 only
        if self.skipped:
            log.warning("%s: skipped %d of %d entries (see warnings above)", desc, len(self.skipped), len(entries))

    @property
    def lengths(self) -> list[int]:
        return [f.shape[0] for f in self.feats] + self.string_lengths(self.strings)

    def features(self, i: int) -> torch.Tensor:
        return self.feats[i]

    def part_samples(self, i: int) -> int:
        if self.waves is None:
            raise ValueError("connected strings need the dataset's audio: build it with keep_waves=True")
        return int(self.waves[i].shape[0])

    def wave(self, i: int) -> np.ndarray:
        return self.waves[i]


class OnTheFlyDataset(_Items):
    """The interface of :class:`FeatureDataset` (``entries``, ``lengths``, ``batch``,
    ``skipped``, ``total_seconds``) without keeping features: a batch loads its audio and
    computes features when asked, so memory stays flat for corpora of any size, and
    :func:`batch_loader` computes them in background worker processes.

    Lengths for bucketing come from the manifest durations. Transcripts are checked up front
    (entries the tokenizer cannot encode are skipped now, as in :class:`FeatureDataset`) and
    encoded again when a batch needs them; unreadable or too-short audio is found when its
    batch is built: that utterance is left out of the batch with a warning (in the worker's
    log) and the epoch goes on.

    Items are kept in columns (the entry each is of, its speed, its frames, what kind it is:
    about 10 bytes an item) over the ``entries`` given, which stay as they are: with a
    :class:`~asr.manifest.ManifestIndex` the manifest stays on disk and a million utterances
    take about 50 MB (``tools/measure_loader.py`` measures it)."""

    def __init__(
        self,
        entries: Sequence[Entry],
        frontend: FrontendConfig,
        tokenizer: Optional[Tokenizer] = None,
        require_targets: bool = True,
        speeds: Sequence[float] = (1.0,),
    ):
        self.frontend = frontend
        self._logmel = LogMel(frontend)
        self.source = entries
        self.tokenizer = tokenizer
        self.skipped: list[tuple[str, str]] = []
        self.speed_values: tuple[float, ...] = tuple(dict.fromkeys([1.0, *map(float, speeds)]))
        if len(self.speed_values) > 255:
            raise ValueError(f"at most 255 speed perturbation factors, got {len(self.speed_values)}")
        durations = array("d", bytes(8 * len(entries)))
        of, speed, frames, kinds = array("i"), array("B"), array("i"), array("B")
        for k, e in enumerate(entries):
            keep, target = self._target(tokenizer, e, require_targets)
            if not keep:
                continue
            durations[k] = e.duration
            kind = ((_SYNTHETIC if is_synthetic(e) else 0) | (_NONSPEECH if "nonspeech" in e.extra else 0)
                    | (_TARGET if target is not None else 0))
            for sp in _speeds_of(e, speeds):
                n = frontend.num_frames(int(round(e.duration * frontend.sample_rate / sp)))
                if n < 1:
                    continue
                of.append(k)
                speed.append(self.speed_values.index(float(sp)))
                frames.append(n)
                kinds.append(kind)
        self._durations = np.frombuffer(durations, np.float64)
        self._of = np.frombuffer(of, np.int32)
        self._speed = np.frombuffer(speed, np.uint8)
        self._frames = np.frombuffer(frames, np.int32)
        self._kind = np.frombuffer(kinds, np.uint8)

    @property
    def entries(self) -> Sequence[Entry]:
        """Each item's entry (read from ``source`` when asked)."""
        return _ItemView(len(self), self._entry)

    def _entry(self, i: int) -> Entry:
        return self.source[int(self._of[i])]

    @property
    def speeds(self) -> Sequence[float]:
        return _ItemView(len(self), lambda i: self.speed_values[self._speed[i]])

    @property
    def targets(self) -> Sequence[Optional[np.ndarray]]:
        return _ItemView(len(self), self._target_of)

    def __len__(self) -> int:
        return len(self._of)

    @property
    def lengths(self) -> list[int]:
        return self._frames.tolist() + self.string_lengths(self.strings)

    def base_lengths(self) -> np.ndarray:
        return self._frames

    def source_index(self) -> np.ndarray:
        """For each item, the index of its entry in the ``entries`` the dataset was built on."""
        return self._of

    def synthetic_mask(self) -> np.ndarray:
        return (self._kind & _SYNTHETIC).astype(bool)

    def string_candidates(self, max_part_s: float) -> list[int]:
        limit = max_part_s * self.frontend.sample_rate
        usable = (self._speed == self.speed_values.index(1.0)) & (self._kind & (_NONSPEECH | _TARGET) == _TARGET)
        return [i for i in np.flatnonzero(usable).tolist() if self.part_samples(i) <= limit]

    def _target_of(self, i: int) -> Optional[np.ndarray]:
        kind = self._kind[i]
        if kind & _NONSPEECH:
            return _ids([])
        if not kind & _TARGET:
            return None
        return _ids(self.tokenizer.encode(self._entry(i).text))

    def part_samples(self, i: int) -> int:
        return int(round(float(self._durations[self._of[i]]) * self.frontend.sample_rate
                         / self.speed_values[self._speed[i]]))

    def wave(self, i: int) -> Optional[np.ndarray]:
        e, fe = self._entry(i), self.frontend
        try:
            wave = _load(e, fe.sample_rate)
        except AudioError as exc:
            log.warning("skipping %s: %s", e.audio_filepath, exc.reason)
            return None
        return _perturb(wave, self.speed_values[self._speed[i]], fe.sample_rate)

    def features(self, i: int) -> Optional[torch.Tensor]:
        """Log-mel features of item ``i`` (None, with a warning, when its audio is unusable)."""
        wave, fe = self.wave(i), self.frontend
        if wave is None:
            return None
        if fe.num_frames(wave.shape[0]) < 1:
            log.warning("skipping %s: too short (%d samples, need at least %d)", self._entry(i).audio_filepath,
                        wave.shape[0], fe.n_fft)
            return None
        return self._logmel(torch.from_numpy(wave))

    def sample_features(self, max_items: int = 1000, seed: int = 0) -> Iterator[torch.Tensor]:
        """Features of up to ``max_items`` real (not synthetic) items drawn at random
        (normalization statistics: those of the speech the model will hear)."""
        rng = np.random.default_rng(seed)
        real = np.flatnonzero(~self.synthetic_mask())
        for i in sorted(real[rng.permutation(len(real))[:max_items]].tolist()):
            f = self.features(i)
            if f is not None:
                yield f


_SYNTHETIC, _NONSPEECH, _TARGET = 1, 2, 4  # OnTheFlyDataset's item kinds (bits)


class _ItemView(LazySequence):
    """``view[i]``: something of item ``i`` of a dataset (its entry, speed, target), made when asked."""

    def __init__(self, n: int, get: Callable[[int], object]):
        self.n, self._item = n, get

    def __len__(self) -> int:
        return self.n


class _Chain(LazySequence[Entry]):
    """Sequences of entries one after another, read where they are."""

    def __init__(self, parts: Sequence[Sequence[Entry]]):
        self.parts = [p for p in parts if len(p)]
        self.ends = np.cumsum([len(p) for p in self.parts]).tolist()

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    def _item(self, i: int) -> Entry:
        p = bisect.bisect_right(self.ends, i)
        return self.parts[p][i - (self.ends[p - 1] if p else 0)]

    def __iter__(self) -> Iterator[Entry]:
        for p in self.parts:
            yield from p


def chain_entries(*parts: Sequence[Entry]) -> Sequence[Entry]:
    """``parts`` as one sequence: a list when they all are, else a view that leaves each where
    it is (a :class:`~asr.manifest.ManifestIndex` stays on disk)."""
    if all(isinstance(p, list) for p in parts):
        return [e for p in parts for e in p]
    return _Chain(parts)


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
    # its own generator: a DataLoader draws its workers' base seed from the global one otherwise,
    # a draw that a run resumed mid-epoch (a new loader) would make once more than an
    # uninterrupted one, shifting every later dropout and augmentation draw (the batches are
    # built without random numbers, so the workers' seeds do not matter)
    loader = torch.utils.data.DataLoader(
        _Batches(dataset, list(batches)), batch_size=None, shuffle=False, num_workers=workers,
        prefetch_factor=prefetch, collate_fn=_as_is, generator=torch.Generator().manual_seed(0),
    )
    yield from loader


def collate(feats: Sequence[torch.Tensor], targets: Optional[Sequence] = None) -> dict:
    lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
    x = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
    for i, f in enumerate(feats):
        x[i, : f.shape[0]] = f
    out = {"feats": x, "lengths": lengths}
    if targets is not None:
        y, tl = pad_targets(targets)
        out.update(targets=y, target_lengths=tl)
    return out


def pad_targets(targets: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
    """Target id sequences (numpy arrays or tensors) -> (B, longest) zero-padded int64 ids
    and their lengths."""
    tl = torch.tensor([len(t) for t in targets], dtype=torch.long)
    y = torch.zeros(len(targets), max(1, int(tl.max())), dtype=torch.long)
    for i, t in enumerate(targets):
        y[i, : len(t)] = torch.as_tensor(t)
    return y, tl


def bucket_batches(
    lengths: Sequence[int],
    max_frames: int,
    max_batch: int,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    pool_batches: int = 50,
) -> list[np.ndarray]:
    """Group utterances of similar length: shuffle, sort within pools of about ``pool_batches``
    batches, cut batches whose padded size stays within ``max_frames`` (and ``max_batch``
    utterances), then shuffle the batches. Deterministic for a given (seed, epoch). Each batch
    is an array of item indices (int64): a list of Python ints would hold about 150 MB per
    million utterances (three speeds) for the whole epoch, the arrays 30 MB."""
    n = len(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n) if shuffle else np.argsort(lengths, kind="stable")
    pool = max(1, pool_batches * max_batch)
    batches: list[np.ndarray] = []
    for start in range(0, n, pool):
        batches += [np.array(b, dtype=np.int64) for b in _cut(order[start : start + pool].tolist(), lengths,
                                                              max_frames, max_batch)]
    if shuffle:
        perm = rng.permutation(len(batches))
        batches = [batches[i] for i in perm]
    return batches


def _cut(pool: Sequence[int], lengths: Sequence[int], max_frames: int, max_batch: int) -> list[list[int]]:
    """Items of ``pool`` sorted by length and cut into batches whose padded size stays within
    ``max_frames`` (and ``max_batch`` items)."""
    batches: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    pool = list(pool)
    size = [int(lengths[i]) for i in pool]  # Python ints, whatever ``lengths`` holds
    for j in sorted(range(len(pool)), key=size.__getitem__):  # stable: ties keep the pool's order
        i, n = pool[j], size[j]
        new_longest = max(longest, n)
        if cur and (new_longest * (len(cur) + 1) > max_frames or len(cur) >= max_batch):
            batches.append(cur)
            cur, new_longest = [], n
        cur.append(i)
        longest = new_longest
    if cur:
        batches.append(cur)
    return batches


# Sharded data (asr.shards): each epoch the shards are shuffled by (seed, epoch), the same for
# every process; process r of w reads shards r, r + w, ...; its utterances pass through a
# shuffle buffer seeded by (seed, epoch, r), then are batched by length in pools as
# bucket_batches does. The batches are a pure function of (seed, epoch, r, w) and the shards'
# metadata, so resuming from (epoch, batch) is exact and needs no reading of what went before.
_SHARD_STREAM = 0x7368  # keeps the shard order's random numbers apart from other uses of the seed
_BUFFER_STREAM = 0x7362


def shard_order(n_shards: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[int]:
    """The shards process ``rank`` of ``world`` reads in ``epoch``, in reading order: positions
    rank, rank + world, ... of the epoch's shuffle of all ``n_shards``."""
    order = np.random.default_rng([seed, _SHARD_STREAM, epoch]).permutation(n_shards)
    return order[rank::world].tolist()


def shuffle_buffer(stream: Sequence[int], size: int, rng: np.random.Generator) -> list[int]:
    """``stream`` reordered as a shuffle buffer of ``size`` items would (WebDataset's shuffle):
    fill the buffer, then for each next item emit a random one of the buffer and put the new
    item in its place; at the end, emit what is left in random order. What is emitted was read
    at most ``size`` items earlier: reading stays sequential, a window of ``size`` wide."""
    if size <= 1:
        return list(stream)
    buf = list(stream[:size])
    out = []
    for item in stream[size:]:
        j = int(rng.integers(len(buf)))
        out.append(buf[j])
        buf[j] = item
    out += [buf[j] for j in rng.permutation(len(buf)).tolist()]
    return out


def shard_batches(
    shard_items: Sequence[Sequence[int]],
    lengths: Sequence[int],
    max_frames: int,
    max_batch: int,
    buffer: int,
    seed: int,
    epoch: int,
    rank: int = 0,
    world: int = 1,
    pool_batches: int = 50,
) -> list[list[int]]:
    """The batches (lists of items) process ``rank`` of ``world`` trains on in ``epoch``:
    ``shard_items[k]`` are shard k's items in tar order (an utterance's speed-perturbed copies
    side by side); its shards (:func:`shard_order`) are read in turn, their items pass through
    a :func:`shuffle_buffer` of ``buffer`` items, and each run of about ``pool_batches``
    batches' worth of items is sorted by length, cut as :func:`bucket_batches` cuts, and its
    batches shuffled. Deterministic for (seed, epoch, rank, world)."""
    stream = [i for k in shard_order(len(shard_items), seed, epoch, rank, world) for i in shard_items[k]]
    rng = np.random.default_rng([seed, _BUFFER_STREAM, epoch, rank])
    order = shuffle_buffer(stream, buffer, rng)
    pool = max(1, pool_batches * max_batch)
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        cut = _cut(order[start : start + pool], lengths, max_frames, max_batch)
        batches += [cut[j] for j in rng.permutation(len(cut)).tolist()]
    return batches


def interleave_ranks(per_rank: Sequence[Sequence[list[int]]], accum_steps: int = 1) -> list[list[int]]:
    """One epoch's batch list from each process's own batches (``per_rank[r]``, e.g. from
    :func:`shard_batches`), laid out as the trainer takes batches: step k's at
    [k * group, (k + 1) * group) with group = processes x ``accum_steps``, process r's every
    world-th of them. Every process takes as many steps as the one with fewest batches allows;
    the others' remaining batches are left out."""
    world = len(per_rank)
    steps = min(len(p) for p in per_rank) // accum_steps
    return [per_rank[r][k * accum_steps + a] for k in range(steps) for a in range(accum_steps) for r in range(world)]
