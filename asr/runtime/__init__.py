"""The runtime without PyTorch: exported ONNX models served with onnxruntime (numpy, soundfile).

Streaming, in the style of sherpa-onnx's OnlineRecognizer::

    from asr.runtime import EndpointConfig, OnlineRecognizer
    rec = OnlineRecognizer("model.onnx", num_threads=1, endpoint=EndpointConfig(rule2=0.8))
    s = rec.create_stream("mic")
    for piece in pieces:                      # float32 mono samples, any size, any rate
        s.accept_waveform(16000, piece)
        while rec.is_ready(s):
            rec.decode_stream(s)              # or rec.decode_streams([s1, s2, ...]): one batched call
        print(rec.get_result(s).text)         # partial text so far
    s.input_finished()
    while rec.is_ready(s):
        rec.decode_stream(s)
    for utt in rec.get_result(s).utterances:  # final: utt.text, utt.start, utt.end, utt.words
        print(utt.start, utt.end, utt.text, [(w.word, w.start, w.end) for w in utt.words])

Whole files: ``OfflineRecognizer(path).transcribe("a.wav")`` for an offline graph,
``OnlineRecognizer(path).transcribe("a.wav")`` for a streaming one, or
``transcribe_files(model_path, paths)`` for either. Command line: ``asr-stream``.
Imports only numpy, onnxruntime, soundfile and the PyTorch-free modules of ``asr``
(tests/test_runtime.py runs it in a process where PyTorch cannot be imported).
"""

from asr.decoding.result import Result, Utterance, Word
from asr.runtime.endpoint import EndpointConfig, EndpointDetector, detect_endpoint
from asr.runtime.model import METADATA_FORMAT, ModelError, ModelInfo, OnnxModel
from asr.runtime.offline import FileResult, OfflineRecognizer, load_recognizer, transcribe_files
from asr.runtime.online import OnlineRecognizer, OnlineStream
from asr.runtime.resampler import StreamingResampler

__all__ = [
    "OnlineRecognizer", "OnlineStream", "OfflineRecognizer", "EndpointConfig", "EndpointDetector", "detect_endpoint",
    "OnnxModel", "ModelInfo", "ModelError", "METADATA_FORMAT", "Result", "Utterance", "Word", "StreamingResampler",
    "FileResult", "load_recognizer", "transcribe_files",
]
