"""Recurrent speech recognition: BiGRU/BiLSTM + CTC, trained on a CPU, served with onnxruntime.

Python API::

    import asr
    model = asr.load_model()                           # the built-in English digits model
    model = asr.load_model("model.onnx")               # or a streaming graph, "stream.onnx"
    result = model.transcribe("file.wav")
    print(result.text, [(w.word, w.start, w.end) for w in result.words])

    from asr.decoding import DecodingOptions          # beam search, LMs, hotwords
    model = asr.load_model("model.onnx", DecodingOptions(lm="lm.arpa", alpha=0.8, hotwords={"tina": 3.0}))

A PyTorch checkpoint runs through the same recognizer with ``asr.train.load_model("best.pt")``
(``pip install '.[train]'``). Importing ``asr`` never imports PyTorch: everything outside
``asr/train/`` is the base install.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_model", "OfflineRecognizer", "OnlineRecognizer"]


def load_model(path=None, decoding=None, num_threads: int = 1):
    """An :class:`OfflineRecognizer` for an exported ONNX model (offline or streaming graph);
    no path: the built-in English digits model (:func:`asr.runtime.offline.load_model`)."""
    from asr.runtime.offline import load_model as _load

    return _load(path, decoding, num_threads=num_threads)


def __getattr__(name):  # the recognizer classes, imported when first asked for
    if name == "OfflineRecognizer":
        from asr.runtime.offline import OfflineRecognizer

        return OfflineRecognizer
    if name == "OnlineRecognizer":
        from asr.runtime.online import OnlineRecognizer

        return OnlineRecognizer
    raise AttributeError(f"module 'asr' has no attribute {name!r}")
