"""Tiny exported models and generated audio for checking an install that has no PyTorch
(``.ci/base_install.sh``). Needs the full install (torch, onnx)::

    python tests/make_tiny_model.py OUT

writes ``OUT/offline.onnx`` (bidirectional GRU, full context), ``OUT/stream.onnx`` (latency-
controlled bidirectional GRU, chunk-by-chunk graph), their checkpoints, ``OUT/a.wav`` and
``OUT/b.wav`` (synthetic tone "words", 8 kHz), ``OUT/corpus/test.jsonl`` (a manifest of 6
more) and ``OUT/fsdd/recordings/`` (a fake FSDD, for ``asr prepare fsdd``). Random weights:
the text is arbitrary but deterministic, which is all a comparison of two installs needs.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import soundfile as sf
import torch

from asr.frontend import FrontendConfig
from asr.text import BLANK, CharTokenizer
from asr.train.checkpoint import save_checkpoint
from asr.train.config import DataConfig, ExperimentConfig
from asr.train.export import export_onnx
from asr.train.model import CTCModel, ModelConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import SR, synth_utterance, write_corpus  # noqa: E402

FRONTEND = FrontendConfig(sample_rate=SR, n_fft=256, win_length=200, hop_length=80, n_mels=24)
VOCAB = [BLANK, " ", "a", "b", "c"]
MODELS = {  # name -> (model settings, streaming graph)
    "offline": (dict(rnn_type="gru", bidirectional=True, subsampling=2), False),
    "stream": (dict(rnn_type="gru", bidirectional=True, subsampling=2, chunk_size=4, right_context=2), True),
}


def random_model(seed: int, **kw) -> CTCModel:
    """A 2-layer, 16-unit CTC model with random weights whose greedy output varies (a sharpened
    head), so the decoded text has several symbols and words."""
    torch.manual_seed(seed)
    cfg = ModelConfig(input_dim=FRONTEND.n_mels, vocab_size=len(VOCAB), conv_dim=16, hidden_size=16, num_layers=2,
                      dropout=0.0, **kw)
    m = CTCModel(cfg)
    with torch.no_grad():
        m.set_normalization(torch.full((FRONTEND.n_mels,), -7.0) + torch.randn(FRONTEND.n_mels), torch.rand(FRONTEND.n_mels) + 2.0)
        m.head.weight.mul_(6.0)
        m.head.bias.zero_()
    return m.eval()


def export_models(out: str) -> dict[str, str]:
    """Checkpoint and export each of MODELS; returns name -> ONNX path."""
    torch.set_num_threads(1)
    paths = {}
    for seed, (name, (spec, streaming)) in enumerate(MODELS.items(), start=1):
        model = random_model(seed, **spec)
        cfg = ExperimentConfig(data=DataConfig(train="", dev=None), frontend=FRONTEND, model=model.cfg)
        ckpt = os.path.join(out, f"{name}.pt")
        save_checkpoint(ckpt, model, cfg, CharTokenizer(VOCAB))
        paths[name] = os.path.join(out, f"{name}.onnx")
        export_onnx(ckpt, paths[name], streaming=streaming, parity_audio=[], parity_lengths_s=(0.6,))
    return paths


def write_audio(out: str) -> None:
    rng = np.random.default_rng(11)
    sf.write(os.path.join(out, "a.wav"), synth_utterance("abc ca", rng), SR)
    sf.write(os.path.join(out, "b.wav"), synth_utterance("cab b", rng), SR)
    write_corpus(os.path.join(out, "corpus"), 6, seed=12, name="test")
    rec = os.path.join(out, "fsdd", "recordings")  # FSDD's layout: {digit}_{speaker}_{index}.wav
    os.makedirs(rec, exist_ok=True)
    for digit in range(10):
        for index in (0, 7, 12):
            sf.write(os.path.join(rec, f"{digit}_tiny_{index}.wav"), synth_utterance("a", rng), SR)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = argv[0]
    os.makedirs(out, exist_ok=True)
    for name, path in export_models(out).items():
        print(f"{name}: {path}")
    write_audio(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
