"""Offline recognition (full-context graph), and file transcription with either kind of model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from asr.audio import AudioError
from asr.frontend import logmel
from asr.decoding.result import Aligner, Result, Utterance, greedy_alignment, words_from_tokens
from asr.runtime.endpoint import EndpointConfig
from asr.runtime.inputs import AudioInput, read_input
from asr.runtime.model import ModelError, OnnxModel
from asr.runtime.online import OnlineRecognizer

__all__ = ["OfflineRecognizer", "FileResult", "load_recognizer", "transcribe_files"]


class OfflineRecognizer:
    """Whole inputs through an offline graph (``asr export`` without ``--streaming``)."""

    def __init__(self, model: "str | os.PathLike | OnnxModel", num_threads: int = 1, aligner: Optional[Aligner] = None):
        self.model = model if isinstance(model, OnnxModel) else OnnxModel(model, num_threads=num_threads)
        self.aligner = aligner  # None: greedy; e.g. asr.beam_search.build_aligner(...) for beam search with an LM
        self.info = self.model.info
        if self.info.streaming:
            raise ModelError(self.info.path, "is a streaming graph; OfflineRecognizer needs an offline graph "
                                             "(or use OnlineRecognizer)")

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    def transcribe(self, audio: AudioInput, sample_rate: Optional[int] = None) -> Result:
        """One file (any format soundfile reads) or 1-D array at ``sample_rate`` (default: the model's)."""
        return self.transcribe_batch([audio], sample_rate)[0]

    def transcribe_batch(self, items: Iterable[AudioInput], sample_rate: Optional[int] = None) -> list[Result]:
        """Several inputs in one padded batch (one onnxruntime call)."""
        info = self.info
        inputs = [read_input(item, sample_rate, info.sample_rate, i) for i, item in enumerate(items)]
        feats = [logmel(samples, info.frontend) for samples, _ in inputs]
        usable = [i for i, f in enumerate(feats) if f.shape[0] >= info.subsampling]  # shorter: no model frame
        scores: dict[int, np.ndarray] = {}
        if usable:
            t = max(feats[i].shape[0] for i in usable)
            batch = np.zeros((len(usable), t, info.frontend.n_mels), np.float32)
            for row, i in enumerate(usable):
                batch[row, : feats[i].shape[0]] = feats[i]
            lengths = np.array([feats[i].shape[0] for i in usable], np.int64)
            logp, out_len = self.model.forward(batch, lengths)
            scores = {i: logp[row, : int(out_len[row])] for row, i in enumerate(usable)}
        results = []
        for i, (samples, name) in enumerate(inputs):
            lp = scores.get(i, np.zeros((0, info.vocab_size), np.float32))
            align = self.aligner or greedy_alignment
            text, words = words_from_tokens(info.tokenizer, align(lp) if lp.shape[0] else [], info.frame_shift_s)
            utt = Utterance(text, 0.0, round(lp.shape[0] * info.frame_shift_s, 3), words)
            results.append(Result(name, text, words, [utt], True, round(samples.size / info.sample_rate, 3)))
        return results


Recognizer = Union[OnlineRecognizer, OfflineRecognizer]


def load_recognizer(model_path: "str | os.PathLike", num_threads: int = 1,
                    endpoint: Optional[EndpointConfig] = None, aligner: Optional[Aligner] = None) -> Recognizer:
    """An :class:`OnlineRecognizer` for a streaming graph, an :class:`OfflineRecognizer` for an
    offline one (``endpoint`` applies to streaming graphs only; ``aligner``: see the classes)."""
    model = OnnxModel(model_path, num_threads=num_threads)
    if model.info.streaming:
        return OnlineRecognizer(model, endpoint=endpoint, aligner=aligner)
    return OfflineRecognizer(model, aligner=aligner)


@dataclass
class FileResult:
    path: str
    result: Optional[Result] = None  # None when the file failed
    error: Optional[AudioError] = None  # why it failed


def transcribe_files(model: "str | os.PathLike | Recognizer", paths: Sequence["str | os.PathLike"],
                     num_threads: int = 1, aligner: Optional[Aligner] = None) -> Iterator[FileResult]:
    """Transcribe files one by one with a streaming or offline model (``asr transcribe --model``):
    a path (loaded now: :class:`ModelError` is raised here) or a recognizer. Unreadable files
    come back as a :class:`FileResult` with ``error`` set, and the others go on."""
    if isinstance(model, (OnlineRecognizer, OfflineRecognizer)):
        recognizer = model
    else:
        recognizer = load_recognizer(model, num_threads, aligner=aligner)

    def results() -> Iterator[FileResult]:
        for p in paths:
            p = os.fspath(p)
            try:
                yield FileResult(p, recognizer.transcribe(p))
            except AudioError as exc:
                yield FileResult(p, error=exc)

    return results()
