"""Recurrent speech recognition: BiGRU/BiLSTM + CTC, trained on a CPU, served with onnxruntime.

Python API, the same for a checkpoint and an exported model::

    import asr
    model = asr.load_model()                              # the built-in English digits model
    model = asr.load_model("exp/fsdd/best.pt")          # or "model.onnx" / "stream.onnx"
    result = model.transcribe("file.wav")
    print(result.text, [(w.word, w.start, w.end) for w in result.words])

    from asr.decoding import DecodingOptions             # beam search, LMs, hotwords
    model = asr.load_model("model.onnx", DecodingOptions(lm="lm.arpa", alpha=0.8, hotwords={"tina": 3.0}))

Importing ``asr`` does not import torch; loading a checkpoint does (``pip install '.[train]'``).
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_model"]


def load_model(path=None, decoding=None, num_threads: int = 1, chunk_size=None, right_context=None):
    """A :class:`asr.recognizer.Recognizer` for a checkpoint or an ONNX model (see
    :func:`asr.recognizer.load_model`); no path: the built-in English digits model."""
    from asr.recognizer import load_model as _load

    return _load(path, decoding, num_threads=num_threads, chunk_size=chunk_size, right_context=right_context)
