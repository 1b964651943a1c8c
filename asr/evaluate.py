"""Evaluation: a manifest in, a report out. One loop for every backend (checkpoint, offline or
streaming ONNX graph), used by ``asr evaluate``, the recipes and the benchmark.

Entries are read in batches of similar length (their segments only), turned into log-probs by
the recognizer's backend in one call per batch, and decoded with each set of
:class:`DecodingOptions` (several: a grid search over LM weights, scored on the same
log-probs). Nothing is dropped silently: malformed manifest lines and unreadable audio are
counted and named in the report, and :attr:`EvalReport.complete` says whether every line of
the manifest was scored.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from asr.audio import AudioError, load_audio
from asr.decoding.confidence import token_confidences
from asr.decoding.options import Decoder, DecodingOptions
from asr.decoding.result import Word, hypothesis_words
from asr.manifest import Entry, read_manifest, segment_of
from asr.metrics import ErrorStats, error_stats
from asr.runtime.offline import OfflineRecognizer
from asr.text import normalize_text

log = logging.getLogger(__name__)

__all__ = ["EvalRun", "EvalReport", "evaluate", "utterance_name"]


@dataclass
class EvalRun:
    """One decoding setting's hypotheses and scores."""

    options: DecodingOptions
    hyps: list[str]
    stats: ErrorStats
    words: Optional[list[list[Word]]] = None  # with keep_words: each hypothesis's words, raw (uncalibrated) confidence


@dataclass
class EvalReport:
    manifest: str
    model: str
    description: str  # how the model ran
    details: dict  # backend facts (chunk_size, right_context)
    names: list[str]  # scored utterances, in manifest order
    refs: list[str]  # normalized references
    runs: list[EvalRun]  # one per decoding setting
    speakers: list[Optional[str]] = field(default_factory=list)  # each scored utterance's speaker (manifest)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line, reason): manifest lines not read
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (utterance, reason): audio not read

    @property
    def best(self) -> EvalRun:
        """The run with the lowest WER (then CER)."""
        return min(self.runs, key=lambda r: (r.stats.wer_percent, r.stats.cer_percent))

    @property
    def total(self) -> int:
        """Manifest lines holding an entry (valid or not)."""
        return len(self.names) + len(self.skipped) + len(self.malformed)

    @property
    def complete(self) -> bool:
        """Every entry of the manifest was scored."""
        return not self.skipped and not self.malformed

    def to_dict(self, run: Optional[EvalRun] = None) -> dict:
        """The report's JSON line for ``run`` (default: the best)."""
        run = run or self.best
        d = run.stats.to_dict()
        d.update(manifest=self.manifest, model=self.model, manifest_entries=self.total, scored=len(self.names),
                 skipped=len(self.skipped) + len(self.malformed), unreadable_audio=len(self.skipped),
                 malformed_lines=len(self.malformed), complete=self.complete, **self.details, **run.options.settings())
        return d


def utterance_name(e: Entry) -> str:
    """How results name an entry: its path, plus the segment for one that is part of a file."""
    if e.offset is None:
        return e.audio_filepath
    return f"{e.audio_filepath} [{e.offset:.2f}-{e.offset + e.duration:.2f} s]"


def _batches(entries: Sequence[Entry], max_seconds: float, max_items: int) -> list[list[int]]:
    """Indices of entries grouped by similar duration, each group within both limits."""
    order = sorted(range(len(entries)), key=lambda i: entries[i].duration)
    out, cur, longest = [], [], 0.0
    for i in order:
        longest_new = max(longest, entries[i].duration)
        if cur and (longest_new * (len(cur) + 1) > max_seconds or len(cur) >= max_items):
            out.append(cur)
            cur, longest_new = [], entries[i].duration
        cur.append(i)
        longest = longest_new
    if cur:
        out.append(cur)
    return out


_DECODER: Optional[Decoder] = None  # the decoder of forked workers (set before the pool starts)


def _best(decoder: Decoder, lp: np.ndarray):
    """The best hypothesis (None: no frames, or nothing the search could write)."""
    hyps = decoder.search(lp, alternatives=1)
    return hyps[0] if hyps else None


def _decode_in_worker(lp: np.ndarray):
    return _best(_DECODER, lp)


def _decode_all(decoder: Decoder, log_probs: list[np.ndarray], jobs: int) -> list:
    global _DECODER
    if jobs <= 1 or len(log_probs) < 2 or decoder.options.greedy:
        return [_best(decoder, lp) for lp in log_probs]
    _DECODER = decoder
    try:
        with mp.get_context("fork").Pool(jobs) as pool:
            return pool.map(_decode_in_worker, log_probs, chunksize=max(1, len(log_probs) // (4 * jobs)))
    finally:
        _DECODER = None


def evaluate(recognizer: OfflineRecognizer, manifest: str, grid: Optional[Sequence[DecodingOptions]] = None,
             jobs: int = 1, progress: bool = True, max_batch_seconds: float = 320.0, max_batch: int = 32,
             keep_words: bool = False) -> EvalReport:
    """Score ``recognizer`` on ``manifest``: WER/CER for its own decoding options, or for each
    of ``grid`` (the log-probs are computed once). ``jobs`` > 1 runs beam searches in that many
    processes. ``keep_words``: each run also keeps every hypothesis's words with their times and
    raw confidence (what ``asr calibrate`` fits on). Raises :class:`asr.manifest.ManifestError` if the manifest has no valid entry
    and ValueError if no entry could be scored."""
    from tqdm import tqdm

    if getattr(recognizer.tokenizer, "kind", "") == "phone" and any(o.greedy for o in grid or [recognizer.decoding]):
        raise ValueError("a phone model writes words through a lexicon: decode it with beam search (--beam-size 16,"
                         " --lm or --lexicon); greedy decoding writes phones, which WER cannot score")
    malformed: list[tuple[int, str]] = []
    entries = read_manifest(manifest, problems=malformed)
    rate = recognizer.sample_rate
    log_probs: list[Optional[np.ndarray]] = [None] * len(entries)
    skipped: list[tuple[str, str]] = []
    batches = _batches(entries, max_batch_seconds, max_batch)
    bar = tqdm(total=sum(e.duration for e in entries), desc="decode", unit="s", unit_scale=True, leave=False,
               disable=None if progress else True, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]")
    for batch in batches:
        waves, rows = [], []
        for i in batch:
            e = entries[i]
            try:
                waves.append(load_audio(e.audio_filepath, rate, *segment_of(e)))
                rows.append(i)
            except AudioError as exc:
                skipped.append((utterance_name(e), exc.reason))
                log.warning("skipping %s: %s", utterance_name(e), exc.reason)
        for i, lp in zip(rows, recognizer.log_probs(waves) if waves else []):
            log_probs[i] = lp
        bar.update(sum(entries[i].duration for i in batch))
    bar.close()
    scored = [i for i, lp in enumerate(log_probs) if lp is not None]
    if not scored:
        raise ValueError(f"{manifest}: none of its {len(entries)} entries could be read (first: {skipped[0][1]})")
    lps = [log_probs[i] for i in scored]
    names = [utterance_name(entries[i]) for i in scored]
    refs = [normalize_text(entries[i].text) for i in scored]
    runs = []
    for options in grid or [recognizer.decoding]:
        decoder = recognizer.decoder if options == recognizer.decoding else Decoder(recognizer.tokenizer, options)
        best = _decode_all(decoder, lps, jobs)
        hyps = [h.text if h is not None else "" for h in best]
        words = None
        if keep_words:
            shift = recognizer.frame_shift_s
            words = [hypothesis_words(recognizer.tokenizer, h, shift, token_confidences(lp, h.alignment))[1] if h is not None else []
                     for h, lp in zip(best, lps)]
        runs.append(EvalRun(options, hyps, error_stats(refs, hyps), words))
    backend = recognizer.backend
    return EvalReport(manifest, backend.path, backend.description, dict(backend.details), names, refs, runs,
                      [entries[i].speaker for i in scored], malformed, skipped)
