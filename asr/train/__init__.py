"""The training side (needs PyTorch: ``pip install '.[train]'``): model, features, data, config,
trainer, checkpoints, export to ONNX, synthetic speech, plots. It imports the base (``asr``)
and the base never imports it.

A checkpoint runs through the base's recognizer with a PyTorch backend::

    import asr.train
    model = asr.train.load_model("exp/fsdd/best.pt")   # an asr.OfflineRecognizer
    print(model.transcribe("file.wav").text)
"""

from __future__ import annotations

import os
from typing import Optional, Union

__all__ = ["load_model"]


def load_model(path: Union[str, os.PathLike], decoding=None, num_threads: int = 1, chunk_size: Optional[int] = None,
               right_context: Optional[int] = None):
    """An :class:`asr.runtime.offline.OfflineRecognizer` for a trained checkpoint (``best.pt``)
    or, like :func:`asr.load_model`, an exported ONNX model. ``chunk_size`` / ``right_context``
    (model frames; checkpoints only) decode in another latency condition than the model's own
    (``chunk_size=0``: full context)."""
    from asr.runtime.model import is_checkpoint
    from asr.runtime.offline import OfflineRecognizer
    from asr.runtime.offline import load_model as load_onnx

    path = os.fspath(path)
    if not is_checkpoint(path):
        if chunk_size is not None or right_context is not None:
            raise ValueError(f"{path}: chunk_size/right_context apply to checkpoints; an ONNX model runs as it was exported")
        return load_onnx(path, decoding, num_threads=num_threads)
    from asr.train.backend import TorchBackend

    return OfflineRecognizer(TorchBackend(path, num_threads=num_threads, chunk_size=chunk_size,
                                          right_context=right_context), decoding)
