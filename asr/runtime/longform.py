"""Long recordings in bounded memory: blocks -> speech segments -> batched decoding -> utterances.

The audio is read in blocks (:class:`asr.audio.AudioBlocks`); the voice activity detector
(:class:`asr.vad.Segmenter`) keeps the speech, in segments of at most
``VadOptions.max_segment_s`` seconds, and drops the rest, so silence and non-speech give no
words. Segments are decoded in batches of at most ``batch_s`` seconds of audio by the
recognizer's own pipeline (a streaming graph: streams of an :class:`asr.runtime.OnlineRecognizer`
with endpointing; any other model: :meth:`OfflineRecognizer.log_probs`, then ``decode``), and
their words and times shifted to the segment's place. Nothing but the current block, the open
segment and one batch is held; utterances are yielded as they are decoded.

``OfflineRecognizer.transcribe`` takes this path for inputs longer than :data:`LONG_FORM_MIN_S`
(``long_form=True`` forces it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional

from asr.audio import AudioInput, audio_blocks
from asr.decoding.result import Result, Utterance, Word, make_result
from asr.runtime.endpoint import EndpointConfig
from asr.vad import Segment, Segmenter, VadOptions

if TYPE_CHECKING:
    from asr.decoding.beam_search import Hotwords
    from asr.runtime.offline import OfflineRecognizer

__all__ = ["LongFormOptions", "LONG_FORM_MIN_S", "transcribe_long", "iter_utterances", "shift_utterance", "bound_words",
           "merge_lead_echo"]

LONG_FORM_MIN_S = 30.0  # inputs longer than this (seconds) take the long-form path by default


@dataclass(frozen=True)
class LongFormOptions:
    vad: VadOptions = field(default_factory=VadOptions)
    block_s: float = 10.0  # audio read per block
    batch_s: float = 60.0  # audio decoded per backend call (the batch padded to its longest segment)
    endpoint: Optional[EndpointConfig] = field(default_factory=EndpointConfig)  # streaming graphs, within a segment
    vad_word_bounds: bool = True  # a segment's first word starts, its last word ends, where the detector heard speech
    merge_lead_echo: bool = True  # a word wholly in the padding before the speech, followed by the same word: one word

    def __post_init__(self):
        if not self.block_s > 0 or not self.batch_s > 0:
            raise ValueError(f"invalid LongFormOptions: block_s and batch_s must be positive, got {self.block_s}, {self.batch_s}")

    def replace(self, **changes) -> "LongFormOptions":
        return dataclasses.replace(self, **changes)


def shift_utterance(utt: Utterance, seconds: float) -> Utterance:
    """The utterance with every time moved ``seconds`` later."""
    def t(x: float) -> float:
        return round(x + seconds, 3)

    words = [Word(w.word, t(w.start), t(w.end), w.confidence) for w in utt.words]
    return Utterance(utt.text, t(utt.start), t(utt.end), words, utt.final)


def _batches(segments: Iterable[Segment], rate: int, batch_s: float) -> Iterator[list[Segment]]:
    """Consecutive segments whose batch, padded to its longest, holds at most ``batch_s``
    seconds (a longer segment goes alone): the backend's work per call is bounded."""
    batch, longest = [], 0
    limit = batch_s * rate
    for seg in segments:
        n = seg.samples.size
        if batch and (len(batch) + 1) * max(longest, n) > limit:
            yield batch
            batch, longest = [], 0
        batch.append(seg)
        longest = max(longest, n)
    if batch:
        yield batch


def _segments(blocks, segmenter: Segmenter, progress: Optional[Callable[[float], None]]) -> Iterator[Segment]:
    done = 0
    for block in blocks:
        yield from segmenter.accept(block)
        done += block.size
        if progress is not None:
            progress(done / blocks.rate)
    yield from segmenter.flush()


def iter_utterances(rec: "OfflineRecognizer", audio: AudioInput, sample_rate: Optional[int] = None, hotwords: "Hotwords" = None,
                    options: Optional[LongFormOptions] = None, progress: Optional[Callable[[float], None]] = None,
                    blocks=None) -> Iterator[Utterance]:
    """The utterances of a recording of any length, in order, as they are decoded (times in
    seconds from the start of the recording). ``progress(seconds_read)`` is called after each
    block. ``blocks``: an :class:`asr.audio.AudioBlocks` already opened on ``audio``."""
    o = options if options is not None else LongFormOptions()
    rate = rec.sample_rate
    if blocks is None:
        blocks = audio_blocks(audio, rate, o.block_s, sample_rate)
    segmenter = Segmenter(rate, o.vad)
    online = _online_recognizer(rec, o)
    for batch in _batches(_segments(blocks, segmenter, progress), rate, o.batch_s):
        if online is not None:
            decoded = _decode_streams(online, batch, hotwords)
        else:
            decoded = _decode_offline(rec, batch, hotwords)
        for seg, utts in zip(batch, decoded):
            utts = [shift_utterance(u, seg.start / rate) for u in utts if u.text]
            if o.merge_lead_echo and seg.speech_start is not None:
                utts = merge_lead_echo(utts, round(seg.speech_start / rate, 3))
            if o.vad_word_bounds and seg.speech_start is not None:
                bound_words([w for u in utts for w in u.words], round(seg.speech_start / rate, 3), round(seg.speech_end / rate, 3))
            yield from utts


def bound_words(words: list[Word], speech_start: float, speech_end: float) -> None:
    """Move the first word's start and the last word's end out to where a voice activity
    detector heard speech begin and end (seconds), when they lie inside it: a CTC token sits on
    one frame somewhere inside its sound (a bidirectional model often puts a word's token on
    the first frame it can), so a one-token word has no length of its own and may sit in the
    padding before the speech."""
    if not words:
        return
    first, last = words[0], words[-1]
    if first.start < speech_start:
        first.start = min(speech_start, words[1].start) if len(words) > 1 else speech_start
        first.end = max(first.end, first.start)
    if last.end < speech_end:
        last.end = speech_end


def merge_lead_echo(utts: list[Utterance], speech_start: float) -> list[Utterance]:
    """A segment's utterances without the echo of its first word: when the first word lies
    wholly before ``speech_start`` (seconds; in the padding the detector kept before the speech
    it heard) and the next word is the same word, the two are one. A bidirectional CTC model
    puts a segment's first token on the first frame it can (see :func:`bound_words`), and
    sometimes again where the speech begins: two words for one spoken, the first in audio the
    detector heard no speech in. A word said twice has its first copy in the speech, not before
    it. The word kept is the second (its times; the higher confidence of the two)."""
    words = [w for u in utts for w in u.words]
    if len(words) < 2 or words[0].word != words[1].word or words[0].end > speech_start + 1e-6:
        return utts
    first, second = words[0], words[1]
    if first.confidence is not None and second.confidence is not None:
        second.confidence = max(first.confidence, second.confidence)
    out = []
    for u in utts:
        if u.words and u.words[0] is first:
            rest = u.words[1:]
            if not rest:
                continue
            u = Utterance(" ".join(w.word for w in rest), u.start, u.end, rest, u.final, u.alternatives)
        out.append(u)
    return out


def _online_recognizer(rec: "OfflineRecognizer", o: LongFormOptions):
    """An OnlineRecognizer with endpointing on the recognizer's streaming graph, or None."""
    if rec.streaming_model is None:
        return None
    from asr.runtime.online import OnlineRecognizer

    return OnlineRecognizer(rec.streaming_model, endpoint=o.endpoint, decoding=rec.decoding)


def _decode_streams(online, batch: list[Segment], hotwords) -> list[list[Utterance]]:
    from asr.runtime.online import run_streams

    streams = run_streams(online, [seg.samples for seg in batch], online.sample_rate, hotwords=hotwords)
    return [online.get_result(s).utterances for s in streams]


def _decode_offline(rec: "OfflineRecognizer", batch: list[Segment], hotwords) -> list[list[Utterance]]:
    rate = rec.sample_rate
    out = []
    for seg, lp in zip(batch, rec.log_probs([s.samples for s in batch])):
        out.append(rec.decode(lp, "", seg.samples.size / rate, hotwords).utterances)
    return out


def transcribe_long(rec: "OfflineRecognizer", audio: AudioInput, sample_rate: Optional[int] = None, hotwords: "Hotwords" = None,
                    options: Optional[LongFormOptions] = None, progress: Optional[Callable[[float], None]] = None,
                    name: Optional[str] = None) -> Result:
    """:func:`iter_utterances` gathered into one :class:`Result` (text, words, utterances)."""
    o = options if options is not None else LongFormOptions()
    blocks = audio_blocks(audio, rec.sample_rate, o.block_s, sample_rate, name or "input 0")
    utts = list(iter_utterances(rec, audio, sample_rate, hotwords, o, progress, blocks))
    return make_result(blocks.name, utts, True, blocks.duration)
