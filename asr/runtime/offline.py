"""The offline recognizer over any backend: ``asr.load_model(path).transcribe(audio)``.

The pipeline is written once: input (a file, ``-`` for standard input, or an array; see
:func:`asr.audio.read_input`) -> samples at the model's rate -> the backend's log-probs ->
:class:`asr.decoding.options.Decoder` (greedy, or beam search with LMs and hotwords) -> a
:class:`asr.decoding.result.Result` with words and their times.

A backend turns waveforms into CTC log-probabilities; it is the only part that differs
between a PyTorch checkpoint (:class:`asr.train.backend.TorchBackend`, made by
:func:`asr.train.load_model`), an offline ONNX graph (:class:`OnnxBackend`, below) and a
streaming ONNX graph run chunk by chunk
(:class:`asr.runtime.online.StreamingBackend`). The same rules hold for all: an input shorter
than one model frame has no frames and gives empty text; the input rules are those of
:func:`asr.audio.as_samples`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Protocol, Sequence, Union

import numpy as np

from asr.audio import STDIN, AudioBlocks, AudioError, AudioInput, read_input
from asr.decoding.beam_search import Hotwords
from asr.decoding.confidence import ConfidenceCalibration, token_confidences
from asr.decoding.options import Decoder, DecodingOptions
from asr.decoding.result import Result, Utterance, utterance_from_hypotheses, words_from_tokens
from asr.frontend import FrontendConfig, logmel
from asr.runtime.model import OnnxModel
from asr.runtime.schema import ModelError
from asr.text import Tokenizer
from asr.vad import VadOptions

if TYPE_CHECKING:
    from asr.runtime.longform import LongFormOptions

__all__ = ["Backend", "OfflineRecognizer", "OnnxBackend", "load_model"]


class Backend(Protocol):
    """What a recognizer needs from a model."""

    path: str  # the model file
    description: str  # how it runs, for reports: "onnxruntime, offline graph", ...
    frontend: FrontendConfig
    tokenizer: Tokenizer
    subsampling: int  # feature frames per model frame
    details: dict  # JSON-able facts for reports (e.g. chunk_size, right_context)
    # optional (None when absent): the model file's word-confidence map (asr calibrate), and the
    # streaming graph it runs chunk by chunk, if it runs one (long recordings then endpoint on it)
    calibration: Optional[ConfidenceCalibration]
    streaming_model: Optional[OnnxModel]

    def log_probs(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(frames, V) CTC log-probabilities of each waveform (mono float32 at
        ``frontend.sample_rate``, each long enough for at least one model frame)."""


class OfflineRecognizer:
    """Transcribes files and arrays with one model; ``decoding`` chooses greedy decoding or
    beam search (:class:`DecodingOptions`). Use :func:`load_model` to make one."""

    def __init__(self, backend: Backend, decoding: Optional[DecodingOptions] = None):
        self.backend = backend
        self.decoding = decoding if decoding is not None else DecodingOptions()
        self.decoder = Decoder(backend.tokenizer, self.decoding)

    def __repr__(self) -> str:
        return f"OfflineRecognizer({self.backend.path!r}, {self.backend.description}, {self.decoding.label()})"

    @property
    def sample_rate(self) -> int:
        return self.backend.frontend.sample_rate

    @property
    def tokenizer(self) -> Tokenizer:
        return self.backend.tokenizer

    @property
    def frame_shift_s(self) -> float:
        return self.backend.frontend.output_frame_shift_s(self.backend.subsampling)

    @property
    def calibration(self) -> Optional[ConfidenceCalibration]:
        """The model's word-confidence calibration (``asr calibrate``), or None: raw scores."""
        return getattr(self.backend, "calibration", None)

    @property
    def streaming_model(self) -> Optional[OnnxModel]:
        """The streaming graph the backend runs, or None: long recordings are then decoded by
        an :class:`asr.runtime.online.OnlineRecognizer` on it, with endpointing."""
        return getattr(self.backend, "streaming_model", None)

    # the pipeline ------------------------------------------------------------------------
    def log_probs(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(frames, V) log-probs of waveforms at the model's rate, in one backend call; an input
        shorter than one model frame gets zero frames."""
        fe, sub = self.backend.frontend, self.backend.subsampling
        usable = [i for i, w in enumerate(waves) if fe.num_frames(w.shape[0]) >= sub]
        out = [np.zeros((0, len(self.tokenizer.vocab)), np.float32)] * len(waves)
        if usable:
            for i, lp in zip(usable, self.backend.log_probs([waves[i] for i in usable])):
                out[i] = lp
        return out

    def decode(self, log_probs: np.ndarray, name: str, duration: float, hotwords: Hotwords = None,
               decoder: Optional[Decoder] = None) -> Result:
        """One input's log-probs -> its :class:`Result` (one utterance, with its n-best list when
        the decoding options ask for ``alternatives``); ``decoder`` overrides the recognizer's
        (e.g. one point of a grid search)."""
        decoder = decoder or self.decoder
        hyps = decoder.search(log_probs, hotwords=hotwords)
        utt = utterance_from_hypotheses(self.tokenizer, hyps, log_probs, self.frame_shift_s, 0, self.calibration,
                                        decoder.options.alternatives)
        return Result(name, utt.text, utt.words, [utt], True, round(duration, 3), alternatives=utt.alternatives)

    def transcribe(self, audio: AudioInput, sample_rate: Optional[int] = None, hotwords: Hotwords = None,
                   long_form: Optional[bool] = None, options: "Optional[LongFormOptions]" = None,
                   progress: Optional[Callable[[float], None]] = None) -> Result:
        """One file (any format soundfile reads; ``-`` = standard input) or 1-D array at
        ``sample_rate`` (default: the model's). Raises :class:`AudioError` naming the input.

        An input longer than :data:`asr.runtime.longform.LONG_FORM_MIN_S` seconds (or any, with
        ``long_form=True``) is read in blocks and decoded segment by segment after voice activity
        detection, in bounded memory (:mod:`asr.runtime.longform`; ``options``: its
        :class:`~asr.runtime.longform.LongFormOptions`, ``progress(seconds_read)``): one utterance per
        speech segment (or endpoint), none for silence. ``long_form=False``: the whole input in
        one call, as one utterance."""
        from asr.runtime import longform

        if long_form is None and isinstance(audio, (str, os.PathLike)) and os.fspath(audio) != STDIN:
            long_form = AudioBlocks(audio, warn=False).duration > longform.LONG_FORM_MIN_S
        if long_form:
            return longform.transcribe_long(self, audio, sample_rate, hotwords, options, progress)
        samples, name = read_input(audio, sample_rate, self.sample_rate, "input 0")
        if long_form is None and samples.size > longform.LONG_FORM_MIN_S * self.sample_rate:  # an array, or stdin
            return longform.transcribe_long(self, samples, self.sample_rate, hotwords, options, progress, name)
        (lp,) = self.log_probs([samples])
        return self.decode(lp, name, samples.size / self.sample_rate, hotwords)

    def align(self, audio: AudioInput, text: str, sample_rate: Optional[int] = None,
              vad: Optional[VadOptions] = VadOptions()) -> Result:
        """Forced alignment: the words of a known ``text`` (normalized like transcripts) with
        their times in ``audio`` (CTC Viterbi, :mod:`asr.decoding.align`) and their confidence.
        The confidence is how sure the model is of each word where the model itself puts it (the
        best path over the whole input), so that a right transcript scores high and a wrong one
        low whatever ``vad`` does to the times. The times are placed within the speech the
        ``vad`` detector hears (the whole input if it hears none or the text does not fit
        there), the first starting and the last ending where it does
        (:func:`asr.runtime.longform.bound_words`); ``vad=None``: where the model put them. Every time
        lies within the audio (0 to its duration). Raises ValueError when a word cannot be
        spelled with the model's vocabulary or the audio is too short for the text."""
        from asr.decoding.align import AlignmentError, forced_align
        from asr.text import normalize_text

        samples, name = read_input(audio, sample_rate, self.sample_rate, "input 0")
        try:
            targets = self.tokenizer.encode(normalize_text(text))
        except ValueError as exc:
            raise ValueError(f"{name}: cannot spell the transcript with this model's vocabulary: {exc}") from None
        (lp,) = self.log_probs([samples])
        span = None
        if vad is not None:
            from asr.vad import speech_span

            span = speech_span(samples, self.sample_rate, vad.replace(pad_s=0.0))
        shift = self.frame_shift_s
        try:
            own = forced_align(lp, targets) if targets else []  # where the model puts the text: its confidence
            path = own
            if targets and span is not None:  # the times: within the speech, if the text fits there
                lo, hi = int(span[0] / self.sample_rate / shift), int(np.ceil(span[1] / self.sample_rate / shift))
                try:
                    path = [(t, a + lo, b + lo) for t, a, b in forced_align(lp[lo:hi], targets)]
                except AlignmentError:
                    span = None
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        text, words = words_from_tokens(self.tokenizer, path, shift, token_confidences(lp, own), self.calibration)
        if span is not None:
            from asr.runtime.longform import bound_words

            bound_words(words, round(span[0] / self.sample_rate, 3), round(span[1] / self.sample_rate, 3))
        duration = round(samples.size / self.sample_rate, 3)
        for w in words:  # the last frame may reach past the last sample
            w.start, w.end = min(w.start, duration), min(w.end, duration)
        utt = Utterance(text, 0.0, min(round(lp.shape[0] * shift, 3), duration), words)
        return Result(name, text, words, [utt], True, duration)

    def transcribe_batch(self, items: Iterable[AudioInput], sample_rate: Optional[int] = None,
                         hotwords: Hotwords = None) -> list[Result]:
        """Several inputs in one backend call. An input that cannot be read comes back as a
        :class:`Result` with ``error`` set (and empty text); the others are transcribed."""
        results: list[Optional[Result]] = []
        waves, where = [], []
        for i, item in enumerate(items):
            name = os.fspath(item) if isinstance(item, (str, os.PathLike)) else f"input {i}"
            try:
                samples, name = read_input(item, sample_rate, self.sample_rate, name)
            except AudioError as exc:
                results.append(Result(name, "", [], [], True, 0.0, error=exc.reason))
                continue
            where.append(len(results))
            results.append(None)
            waves.append((samples, name))
        for k, (samples, name), lp in zip(where, waves, self.log_probs([w for w, _ in waves])):
            results[k] = self.decode(lp, name, samples.size / self.sample_rate, hotwords)
        return results  # type: ignore[return-value]


def load_model(path: Union[str, os.PathLike, None] = None, decoding: Optional[DecodingOptions] = None,
               num_threads: int = 1) -> OfflineRecognizer:
    """An :class:`OfflineRecognizer` for an exported ONNX model (offline or streaming graph;
    onnxruntime only); None: the built-in English digits model. A PyTorch checkpoint is run by
    :func:`asr.train.load_model` (the training install)."""
    from asr.runtime.builtin import builtin_model
    from asr.runtime.model import is_checkpoint

    path = builtin_model() if path is None else os.fspath(path)
    if is_checkpoint(path):
        raise ModelError(path, "is a PyTorch checkpoint: run it with asr.train.load_model() (pip install '.[train]'), "
                               "or export it to ONNX with `asr export` and load that")
    model = OnnxModel(path, num_threads=num_threads)
    if model.info.streaming:
        from asr.runtime.online import StreamingBackend

        return OfflineRecognizer(StreamingBackend(model), decoding)
    return OfflineRecognizer(OnnxBackend(model), decoding)


class OnnxBackend:
    """Log-probs from an offline graph (``asr export`` without ``--streaming``) through
    onnxruntime: the numpy front end, one padded batch, one call."""

    def __init__(self, model: "str | os.PathLike | OnnxModel", num_threads: int = 1):
        self.model = model if isinstance(model, OnnxModel) else OnnxModel(model, num_threads=num_threads)
        info = self.info = self.model.info
        if info.streaming:
            raise ModelError(info.path, "is a streaming graph; this backend needs an offline graph (use StreamingBackend)")
        self.path, self.frontend, self.tokenizer, self.subsampling = info.path, info.frontend, info.tokenizer, info.subsampling
        self.calibration = info.confidence
        self.streaming_model = None
        self.description = "onnxruntime, offline graph"
        self.details: dict = {}

    def log_probs(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        feats = [logmel(w, self.frontend) for w in waves]
        lengths = np.array([f.shape[0] for f in feats], np.int64)
        batch = np.zeros((len(feats), int(lengths.max()), self.frontend.n_mels), np.float32)
        for row, f in enumerate(feats):
            batch[row, : f.shape[0]] = f
        logp, out_len = self.model.forward(batch, lengths)
        return [logp[row, : int(n)] for row, n in enumerate(out_len)]
