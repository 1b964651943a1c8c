"""The built-in model: English digits (FSDD recipe, ``make demo``), shipped inside the package
so that ``asr transcribe a.wav``, ``asr stream``, ``asr serve`` and ``asr.load_model()`` work
with no ``--model`` and no training. Its model card (``asr/assets/digits/MODEL_CARD.md``)
says what it recognizes, how it was trained and measured, and the data's licence."""

from __future__ import annotations

import os

__all__ = ["BUILTIN_DIR", "builtin_model"]

BUILTIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "digits")


def builtin_model(streaming: bool = False) -> str:
    """Path of the built-in digits model: its streaming graph (``stream.onnx``: ``asr stream``,
    ``asr serve``, ``asr mic``) or its offline graph (``model.onnx``: whole files)."""
    path = os.path.join(BUILTIN_DIR, "stream.onnx" if streaming else "model.onnx")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: the built-in digits model is missing from this install; "
                                "give a model with --model (make demo trains one)")
    return path
