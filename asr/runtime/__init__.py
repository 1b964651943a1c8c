"""The runtime without PyTorch: exported ONNX models served with onnxruntime (numpy, soundfile).

Streaming, in the style of sherpa-onnx's OnlineRecognizer::

    from asr.runtime import EndpointConfig, OnlineRecognizer
    rec = OnlineRecognizer("stream.onnx", num_threads=1, endpoint=EndpointConfig(rule2=0.8))
    s = rec.create_stream("mic")              # hotwords=[...] biases this stream's final text
    for piece in pieces:                      # mono samples, any size, any rate (float or int16 PCM)
        s.accept_waveform(16000, piece)
        while rec.is_ready(s):
            rec.decode_stream(s)              # or rec.decode_streams([s1, s2, ...]): one batched call
        print(rec.get_result(s).text)         # partial text so far
    s.input_finished()
    while rec.is_ready(s):
        rec.decode_stream(s)
    for utt in rec.get_result(s).utterances:  # final: utt.text, utt.start, utt.end, utt.words
        print(utt.start, utt.end, utt.text, [(w.word, w.start, w.end) for w in utt.words])

Whole files and arrays, offline or streaming graph: ``asr.load_model("model.onnx").transcribe(...)``
(an :class:`asr.recognizer.Recognizer` over :func:`load_backend`). Command line: ``asr-stream``,
``asr transcribe --model``, ``asr evaluate --model``. Imports only numpy, onnxruntime,
soundfile and the PyTorch-free modules of ``asr`` (tests/test_layers.py checks this with
PyTorch blocked).
"""

from asr.decoding.result import Result, Utterance, Word
from asr.runtime.endpoint import EndpointConfig, EndpointDetector, detect_endpoint
from asr.runtime.model import OnnxModel, is_checkpoint
from asr.runtime.offline import OnnxBackend
from asr.runtime.online import OnlineRecognizer, OnlineStream, StreamingBackend
from asr.runtime.resampler import StreamingResampler
from asr.runtime.schema import METADATA_FORMAT, ModelError, ModelInfo

__all__ = [
    "OnlineRecognizer", "OnlineStream", "EndpointConfig", "EndpointDetector", "detect_endpoint",
    "OnnxModel", "ModelInfo", "ModelError", "METADATA_FORMAT", "Result", "Utterance", "Word", "StreamingResampler",
    "OnnxBackend", "StreamingBackend", "load_backend", "is_checkpoint",
]


def load_backend(path, num_threads: int = 1):
    """The recognizer backend for an exported model: :class:`StreamingBackend` for a streaming
    graph, :class:`OnnxBackend` for an offline one."""
    model = OnnxModel(path, num_threads=num_threads)
    return StreamingBackend(model) if model.info.streaming else OnnxBackend(model)
