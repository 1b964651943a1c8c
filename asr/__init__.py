"""Recurrent speech recognition: BiGRU/BiLSTM + CTC, trained on a CPU, served with onnxruntime.

Python API::

    import asr
    model = asr.load_model("exp/fsdd/best.pt")
    print(model.transcribe("file.wav").text)

Importing ``asr`` does not import torch; ``load_model`` does.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "load_model"]


def load_model(path: str, num_threads: int = 1):
    """Load a trained checkpoint (``best.pt``) for transcription: returns an
    :class:`asr.transcribe.Recognizer`."""
    from asr.nn.backend import Recognizer

    return Recognizer.from_checkpoint(path, num_threads=num_threads)
