"""The runtime without PyTorch: exported ONNX models run with onnxruntime (numpy, soundfile).

Whole files and arrays: :class:`OfflineRecognizer` (``asr.load_model("model.onnx")``).
Streaming, in the style of sherpa-onnx's ``OnlineRecognizer``::

    rec = OnlineRecognizer("stream.onnx", endpoint=EndpointConfig(rule2=0.8))
    s = rec.create_stream("mic")          # hotwords=[...] biases this stream's final text, grammar=[...]
                                          # restricts it, alternatives=N keeps its n-best
    for piece in pieces:                  # mono samples, any size, any rate (float or int16 PCM)
        s.accept_waveform(16000, piece)
        while rec.is_ready(s):
            rec.decode_stream(s)          # or rec.decode_streams([s1, s2, ...]): one batched call
        print(rec.get_result(s).text)     # partial text so far
    s.input_finished()                    # then decode while ready: the final result's
                                          # utterances, with words and their times
"""

from asr.decoding.result import Result, Utterance, Word
from asr.runtime.endpoint import EndpointConfig, EndpointDetector, detect_endpoint
from asr.runtime.model import OnnxModel, is_checkpoint
from asr.runtime.offline import Backend, OfflineRecognizer, OnnxBackend, load_model
from asr.runtime.online import OnlineRecognizer, OnlineStream, StreamingBackend, stream_in_pieces
from asr.runtime.schema import METADATA_FORMAT, ModelError, ModelInfo

__all__ = [
    "OfflineRecognizer", "OnlineRecognizer", "OnlineStream", "load_model", "stream_in_pieces",
    "EndpointConfig", "EndpointDetector", "detect_endpoint", "Backend", "OnnxBackend", "StreamingBackend",
    "OnnxModel", "ModelInfo", "ModelError", "METADATA_FORMAT", "Result", "Utterance", "Word", "is_checkpoint",
]
