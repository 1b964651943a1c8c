"""Streaming recognition: :class:`OnlineRecognizer` and its :class:`OnlineStream` objects.

A stream turns samples (any piece size, any sample rate) into log-mel frames as they arrive.
Each decoding step runs the streaming graph on one window of ``window_frames`` feature frames
(chunk plus right context) with the stream's carried RNN states, keeps the ``chunk_size``
output frames, and advances by ``hop_frames``. At the end of input the last windows are zero
padded (``lengths`` = valid frames) and only the frames that exist are kept: exactly the loop
``_run_ort_stream`` in ``asr/train/export.py`` checks against PyTorch.

:meth:`OnlineRecognizer.decode_streams` runs one batched onnxruntime call for all ready
streams. With an :class:`EndpointConfig`, endpointing is automatic: when a rule fires after a
step, the current utterance is finished (kept in ``stream.utterances``) and the next one starts
with a fresh decoder and zero RNN states; features and times run on. An utterance that begins
after non-speech (the stream's first, or after rule 1 or 2) of a word-unit model has its chunks
aligned to its first word (``EndpointConfig.onset_lead``): the chunk it first appears in is run again from just
before it, so a chunked model sees the word's start at a chunk's start, not cut by a chunk's end.
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from typing import Optional, Sequence

import numpy as np

from asr.audio import AudioError, StreamingResampler, as_samples, check_rate
from asr.decoding.beam_search import Hotwords
from asr.decoding.grammar import Grammar
from asr.decoding.greedy import CtcStreamDecoder
from asr.decoding.options import MAX_ALTERNATIVES, Decoder, DecodingOptions
from asr.decoding.result import Result, Utterance, make_result
from asr.frontend import OnlineLogMel
from asr.runtime.endpoint import EndpointConfig, EndpointDetector
from asr.runtime.model import OnnxModel
from asr.runtime.schema import ModelError

__all__ = ["OnlineRecognizer", "OnlineStream", "StreamingBackend", "run_streams", "stream_in_pieces"]


class OnlineStream:
    """One audio source. Create it with :meth:`OnlineRecognizer.create_stream`."""

    def __init__(self, recognizer: "OnlineRecognizer", name: str, keep_log_probs: bool = False, hotwords: Hotwords = None,
                 grammar: Optional[Grammar] = None, alternatives: Optional[int] = None,
                 endpoint: Optional[EndpointConfig] = None):
        info = recognizer.info
        self.name = name
        self._owner = recognizer
        self._info = info
        self._fbank = OnlineLogMel(info.frontend)
        self._resampler: Optional[StreamingResampler] = None
        self.input_sample_rate: Optional[int] = None
        self._buf = np.zeros((0, info.frontend.n_mels), np.float32)  # feature frames from _start on
        self._start = 0  # feature frame where the next window begins
        self.num_feature_frames = 0
        self.num_samples = 0  # at the model's sample rate
        self.finished = False  # input_finished() called
        self.num_steps = 0  # decoding steps taken (windows decoded)
        self._closed = False  # every frame decoded and the last utterance finished
        self.states = recognizer.model.init_states(1)
        self.hotwords, self.grammar = hotwords, grammar
        decoder = recognizer.decoder
        alternatives = decoder.options.alternatives if alternatives is None else alternatives
        final = None
        if not decoder.options.greedy or hotwords or grammar is not None or alternatives:
            final = functools.partial(decoder.search, hotwords=hotwords, grammar=grammar, alternatives=alternatives)
        self.decoder = CtcStreamDecoder(info.tokenizer, info.frame_shift_s, final_decoder=final,
                                        calibration=info.confidence, alternatives=alternatives)
        cfg = endpoint if endpoint is not None else recognizer.endpoint
        self._endpoint = EndpointDetector(cfg, info.frame_shift_s) if cfg is not None else None
        # with endpointing, a word-unit model's utterance has its chunks start at its first word
        # (EndpointConfig.onset_lead); a character model's first letter comes later into its
        # word, and aligning to it made the speechocean762 streaming model worse (docs/export.md)
        lead = cfg.onset_lead if cfg is not None and getattr(info.tokenizer, "kind", "") == "word" else None
        self._onset_lead = None if lead is None else int(round(lead / info.frame_shift_s))
        self._aligned = False  # the current utterance's chunks were aligned to its first token
        self._unknown = getattr(info.tokenizer, "unknown_id", None)  # a first token of "some other word" aligns nothing
        self.utterances: list[Utterance] = []  # finished utterances
        self.endpoint_rules: list[int] = []  # which rule ended each endpoint, in order
        self.log_probs: Optional[list[np.ndarray]] = [] if keep_log_probs else None  # kept for checks

    def __repr__(self) -> str:
        return f"OnlineStream({self.name!r}, {self.num_samples} samples, finished={self.finished})"

    @property
    def duration_s(self) -> float:
        """Seconds of audio received so far (at the model's sample rate)."""
        return self.num_samples / self._info.sample_rate

    # input -------------------------------------------------------------------------------
    def accept_waveform(self, sample_rate: int, samples: np.ndarray) -> None:
        """Feed the next piece of mono samples (any length; float in [-1, 1] or int16/int32
        PCM: the rules of :func:`asr.audio.as_samples`) at ``sample_rate`` Hz; resampled to the
        model's rate. The rate may not change mid-stream."""
        where = f"stream {self.name!r}"
        if self.finished:
            raise ValueError(f"{where}: accept_waveform() after input_finished()")
        sample_rate = check_rate(sample_rate, where)
        samples = as_samples(samples, where, allow_empty=True)
        if self.input_sample_rate is None:
            self.input_sample_rate = sample_rate
            self._resampler = StreamingResampler(sample_rate, self._info.sample_rate)
        elif sample_rate != self.input_sample_rate:
            raise AudioError(where, f"sample rate changed mid-stream from {self.input_sample_rate} Hz to {sample_rate} Hz")
        self._push(self._resampler.accept(samples))

    def input_finished(self) -> None:
        """No more input: the remaining frames will be decoded (zero padded at the end)."""
        if self.finished:
            return
        if self._resampler is not None:
            self._push(self._resampler.flush())
        self.finished = True
        self._close_if_done()

    def _push(self, samples: np.ndarray) -> None:
        if samples.size == 0:
            return
        self.num_samples += samples.size
        frames = self._fbank.accept(samples)
        if frames.shape[0]:
            self._buf = np.concatenate([self._buf, frames]) if self._buf.shape[0] else frames
            self.num_feature_frames += frames.shape[0]

    # decoding steps (driven by the recognizer) --------------------------------------------
    @property
    def _usable_frames(self) -> int:
        """Feature frames that make whole model frames (known once input is finished)."""
        sub = self._info.subsampling
        return self.num_feature_frames // sub * sub

    @property
    def ready(self) -> bool:
        if self.finished:
            return self._start < self._usable_frames
        return self._buf.shape[0] >= self._info.window_frames

    @property
    def done(self) -> bool:
        """Input finished and every frame decoded: the result is final."""
        return self._closed

    def _window(self) -> tuple[np.ndarray, int]:
        win = self._info.window_frames
        w = self._buf[:win]
        valid = w.shape[0]
        if valid < win:
            w = np.concatenate([w, np.zeros((win - valid, w.shape[1]), np.float32)])
        return w, valid

    def _advance(self, log_probs: np.ndarray, states: list[np.ndarray]) -> None:
        info = self._info
        self.num_steps += 1
        keep = info.chunk_size
        if self.finished:
            keep = min(keep, (self._usable_frames - self._start) // info.subsampling)
        lp = log_probs[:keep]
        if self._onset_lead is not None and not self._aligned and not self.decoder.tokens:
            best = lp.argmax(axis=-1)
            first = np.flatnonzero(best != self.decoder.blank)
            if first.size and first[0] > self._onset_lead and best[first[0]] != self._unknown:
                # run the chunk again from just before its first token
                self._aligned = True
                shift = int(first[0]) - self._onset_lead
                self._consume(lp[:shift], self._owner.model.init_states(1), shift * info.subsampling)
                return
        self._consume(lp, states, info.hop_frames)

    def _consume(self, lp: np.ndarray, states: list[np.ndarray], frames: int) -> None:
        """Decode the output frames ``lp`` and move the window ``frames`` feature frames on."""
        if self.log_probs is not None:
            self.log_probs.append(lp.copy())
        best = self.decoder.accept(lp)
        self.states = states
        self._start += frames
        self._buf = self._buf[frames:]
        if self._endpoint is not None:
            self._endpoint.accept(best)
            rule = self._endpoint.check()
            more_to_come = not self.finished or self.ready  # else _close_if_done ends the utterance
            if rule is not None and more_to_come:
                self.endpoint_rules.append(rule)
                self._end_utterance()
                self._aligned = rule == 3  # cut at the longest length, mid-speech: nothing to align to
        self._close_if_done()

    def _end_utterance(self) -> None:
        utt = self.decoder.finish_utterance()
        if utt.text:
            self.utterances.append(utt)
        self.states = self._owner.model.init_states(1)
        self._aligned = False
        if self._endpoint is not None:
            self._endpoint.reset()

    def _close_if_done(self) -> None:
        if self._closed or not self.finished or self.ready:
            return
        utt = self.decoder.finish_utterance()
        if utt.text or not self.utterances:
            self.utterances.append(utt)
        self._closed = True


class OnlineRecognizer:
    """Streaming recognizer over a streaming ONNX graph (``asr export --streaming``).

    ``model``: a path or a loaded :class:`OnnxModel`. ``endpoint``: an :class:`EndpointConfig`
    for automatic endpointing, or None (default) for one utterance per stream. ``decoding``:
    how each finished utterance is decoded (:class:`DecodingOptions`; default greedy); partial
    results are always greedy."""

    def __init__(self, model: "str | os.PathLike | OnnxModel", num_threads: int = 1,
                 endpoint: Optional[EndpointConfig] = None, decoding: Optional[DecodingOptions] = None):
        self.model = model if isinstance(model, OnnxModel) else OnnxModel(model, num_threads=num_threads)
        self.info = self.model.info
        if not self.info.streaming:
            raise ModelError(self.info.path, "is an offline graph; OnlineRecognizer needs a streaming graph "
                                             "(`asr export --streaming`), or use asr.load_model")
        if endpoint is not None and not isinstance(endpoint, EndpointConfig):
            raise TypeError(f"endpoint must be an EndpointConfig or None, got {type(endpoint).__name__}")
        self.endpoint = endpoint
        self.decoder = Decoder(self.info.tokenizer, decoding)
        self._ids = itertools.count()

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def create_stream(self, name: Optional[str] = None, keep_log_probs: bool = False, hotwords: Hotwords = None,
                      grammar: "Optional[Grammar | Sequence[str]]" = None, alternatives: Optional[int] = None,
                      endpoint: Optional[EndpointConfig] = None) -> OnlineStream:
        """A new stream; ``name`` appears in its errors and results (default ``stream-<n>``).
        ``keep_log_probs`` keeps every output frame's scores in ``stream.log_probs``.
        ``hotwords`` (phrases, or phrase -> bonus per token) bias this stream's final decoding
        (a beam search; a phrase the vocabulary cannot spell raises ValueError here).
        ``grammar`` (phrases, or a :class:`Grammar` from ``recognizer.decoder.compile_grammar``)
        restricts it instead of the options' grammar (words the model cannot spell are left out
        with a warning; an empty grammar raises ValueError); ``alternatives`` (0 to
        :data:`asr.decoding.options.MAX_ALTERNATIVES`) replaces the options' n-best size.
        ``endpoint`` replaces the recognizer's endpoint rules for this stream (None: the
        recognizer's; ``EndpointConfig(None, None, None)``: none). Partial results stay greedy."""
        if hotwords:
            self.decoder.check_hotwords(hotwords)
        if grammar is not None and not isinstance(grammar, Grammar):
            grammar = self.decoder.compile_grammar(grammar)
        if alternatives is not None and (isinstance(alternatives, bool) or not isinstance(alternatives, int)
                                         or not 0 <= alternatives <= MAX_ALTERNATIVES):
            raise ValueError(f"alternatives must be an integer in 0..{MAX_ALTERNATIVES}, got {alternatives!r}")
        if endpoint is not None and not isinstance(endpoint, EndpointConfig):
            raise TypeError(f"endpoint must be an EndpointConfig or None, got {type(endpoint).__name__}")
        n = next(self._ids)
        return OnlineStream(self, f"stream-{n}" if name is None else str(name), keep_log_probs, hotwords, grammar, alternatives,
                            endpoint)

    def _check(self, stream: OnlineStream) -> None:
        if not isinstance(stream, OnlineStream) or stream._owner is not self:
            raise ValueError(f"{stream!r} was not created by this recognizer")

    def is_ready(self, stream: OnlineStream) -> bool:
        """True when the stream has a full window (or, after input_finished, any frames left)."""
        self._check(stream)
        return stream.ready

    def decode_stream(self, stream: OnlineStream) -> int:
        return self.decode_streams([stream])

    def decode_streams(self, streams: Sequence[OnlineStream]) -> int:
        """One step for every ready stream in ``streams``, as one batched onnxruntime call.
        Returns how many streams were stepped."""
        ready, seen = [], set()
        for s in streams:
            self._check(s)
            if id(s) not in seen and s.ready:
                seen.add(id(s))
                ready.append(s)
        if not ready:
            return 0
        windows = [s._window() for s in ready]
        feats = windows[0][0][None] if len(windows) == 1 else np.stack([w for w, _ in windows])
        lengths = np.array([v for _, v in windows], np.int64)
        logp, next_states = self.model.stream_step(feats, lengths, self.model.stack_states([s.states for s in ready]))
        for s, lp, st in zip(ready, logp, self.model.unstack_states(next_states)):
            s._advance(lp, st)
        return len(ready)

    def get_result(self, stream: OnlineStream) -> Result:
        """Text and word times so far: finished utterances, then the current partial one."""
        self._check(stream)
        partial = None if stream.done else stream.decoder.utterance(final=False)
        return make_result(stream.name, stream.utterances, stream.done, stream.num_samples / self.sample_rate, partial)



class StreamingBackend:
    """Log-probs of whole waveforms through a streaming graph, chunk by chunk: the streams of
    an :class:`OnlineRecognizer` (no endpointing) decoded together in batched steps, so a
    whole file gets exactly the scores a live stream would."""

    def __init__(self, model: "str | os.PathLike | OnnxModel", num_threads: int = 1):
        self.online = OnlineRecognizer(model, num_threads=num_threads)
        info = self.info = self.online.info
        self.path, self.frontend, self.tokenizer, self.subsampling = info.path, info.frontend, info.tokenizer, info.subsampling
        self.calibration = info.confidence
        self.streaming_model = self.online.model
        self.description = (f"onnxruntime, streaming graph, chunks of {info.chunk_size} + "
                            f"{info.right_context} right-context model frames")
        self.details = {"chunk_size": info.chunk_size, "right_context": info.right_context}

    def log_probs(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        streams = run_streams(self.online, waves, self.frontend.sample_rate, keep_log_probs=True)
        v = len(self.tokenizer.vocab)
        return [np.concatenate(s.log_probs) if s.log_probs else np.zeros((0, v), np.float32) for s in streams]


def run_streams(recognizer: OnlineRecognizer, waves: Sequence[np.ndarray], sample_rate: int,
                piece_s: Optional[float] = None, hotwords: Hotwords = None, names: Optional[Sequence[str]] = None,
                keep_log_probs: bool = False, step_times: Optional[list] = None) -> list[OnlineStream]:
    """One new stream of ``recognizer`` per waveform, run to the end together: each is given
    ``piece_s`` seconds in turn, as a live source sends them, and every ready stream is stepped
    (one batched call) after each turn, so endpoints fall where they would live; with
    ``piece_s=None``, its whole waveform at once. Then input_finished, and decode_streams until
    every frame is decoded. ``step_times``: a list that gets the seconds of each decoding step."""
    streams = [recognizer.create_stream(None if names is None else names[i], keep_log_probs, hotwords)
               for i in range(len(waves))]

    def decode_all():
        while True:
            t = time.perf_counter()
            if not recognizer.decode_streams(streams):
                return
            if step_times is not None:
                step_times.append(time.perf_counter() - t)

    if piece_s is None:
        for s, w in zip(streams, waves):
            s.accept_waveform(sample_rate, w)
    else:
        piece = max(1, int(round(sample_rate * piece_s)))
        for pos in range(0, max((len(w) for w in waves), default=0), piece):
            for s, w in zip(streams, waves):
                if pos < len(w):
                    s.accept_waveform(sample_rate, w[pos : pos + piece])
                elif not s.finished:
                    s.input_finished()
            decode_all()
    for s in streams:
        s.input_finished()
    decode_all()
    return streams


def stream_in_pieces(recognizer: OnlineRecognizer, samples: np.ndarray, sample_rate: int, piece_s: float = 0.1,
                     name: Optional[str] = None) -> Result:
    """The final result of ``samples`` fed to a new stream of ``recognizer`` in pieces of
    ``piece_s`` seconds, as a live source would send them (:func:`run_streams`)."""
    (stream,) = run_streams(recognizer, [samples], sample_rate, piece_s, names=[name])
    return recognizer.get_result(stream)
