"""Checkpoint -> one self-describing ONNX file, with a parity check after every export.

Two graphs (signatures and metadata keys: :mod:`asr.runtime.schema`, the one definition the
runtime reads):

- offline: full context, whole padded batches;
- streaming: one window of chunk plus right context per step, the forward states carried.

The parity check runs the written file through the runtime users run (a
:class:`asr.runtime.offline.OfflineRecognizer` of :func:`asr.runtime.offline.load_model`: the offline graph in
one padded batch, or the streaming graph chunk by chunk through ``OnlineRecognizer`` streams)
and compares its log-probabilities with PyTorch's forward pass in the same latency condition,
on the same features (the runtime's numpy front end; its equality with the training front end
is tests/test_frontend.py's job). Max |difference| above 1e-4: nothing is written.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch

from asr import __version__
from asr.audio import AudioError, load_audio
from asr.decoding.confidence import ConfidenceCalibration
from asr.frontend import logmel
from asr.runtime.offline import load_model
from asr.runtime.schema import ModelCard, ModelInfo, StreamingLayout, graph_signature, write_metadata
from asr.train.checkpoint import build_model, checkpoint_calibration, load_checkpoint
from asr.train.data import collate
from asr.train.model import CTCModel
from asr.train.recurrent_ops import native_ops

log = logging.getLogger(__name__)

__all__ = ["export_onnx", "ExportError", "ExportReport", "model_info"]

PARITY_TOLERANCE = 1e-4


class ExportError(RuntimeError):
    pass


@dataclass
class ExportReport:
    path: str
    streaming: bool
    max_abs_diff: float
    parity_lengths_s: list = field(default_factory=list)
    info: Optional[ModelInfo] = None  # what the runtime reads from the file
    int8_path: Optional[str] = None
    int8_max_abs_diff: Optional[float] = None


class _Offline(torch.nn.Module):
    def __init__(self, model: CTCModel):
        super().__init__()
        self.model = model

    def forward(self, feats, lengths):
        return self.model(feats, lengths, chunk_size=0)


class _Streaming(torch.nn.Module):
    def __init__(self, model: CTCModel):
        super().__init__()
        self.model = model

    def forward(self, feats, lengths, *state):
        return self.model.stream_step(feats, lengths, *state)


def model_info(model: CTCModel, cfg, tokenizer, path: str, streaming: bool,
               confidence: Optional[ConfidenceCalibration] = None, card: Optional[ModelCard] = None) -> ModelInfo:
    """What the runtime will read about this model (:class:`ModelInfo`, written as metadata);
    ``confidence``: the checkpoint's word-confidence calibration, carried over; ``card``: its
    name, language and description for people (``asr export --card``)."""
    m = cfg.model
    kind = f"{m.rnn_type}-{'bi' if m.bidirectional else 'uni'}directional"
    if m.bidirectional and m.chunk_size:
        kind += "-latency-controlled"
    layout = None
    if streaming:
        chunk, right = m.serving()
        states = ["state_h"] + (["state_c"] if m.rnn_type == "lstm" else [])
        layout = StreamingLayout(chunk, right, {n: (m.num_layers, m.hidden_size) for n in states})
    extra = {"normalization": {"mean": model.feat_mean.tolist(), "std": model.feat_std.tolist(), "applied_in_graph": True},
             "model": m.to_dict()}
    return ModelInfo(path=path, graph="streaming" if streaming else "offline", frontend=cfg.frontend,
                     tokenizer=tokenizer, subsampling=m.subsampling, vocab_size=m.vocab_size, model_kind=kind,
                     toolkit_version=__version__, streaming_layout=layout, confidence=confidence, card=card,
                     extra=extra)


def _parity_waves(cfg, audio: Sequence[str], lengths_s: Sequence[float]) -> list[np.ndarray]:
    """Real audio cut or tiled to several lengths; synthetic noise only if none is readable."""
    sr = cfg.frontend.sample_rate
    sources = []
    for path in audio:
        try:
            sources.append(load_audio(path, sr))
        except AudioError as exc:
            log.warning("parity audio skipped: %s", exc)
        if len(sources) >= 3:
            break
    if not sources:
        log.warning("no real audio for the parity check: using noise")
        sources = [0.1 * np.random.default_rng(0).standard_normal(sr).astype(np.float32)]
    waves = []
    for i, secs in enumerate(lengths_s):
        src = sources[i % len(sources)]
        n = int(secs * sr)
        waves.append(np.resize(src, n).astype(np.float32))
    return waves


def _audio_from_config(cfg) -> list[str]:
    from asr.manifest import ManifestError, read_manifest

    for manifest in (cfg.data.dev, cfg.data.train):
        if manifest and os.path.isfile(manifest):
            try:
                return [e.audio_filepath for e in read_manifest(manifest)[:3]]
            except ManifestError:
                continue
    return []


@torch.no_grad()
def _max_diff(path: str, model: CTCModel, cfg, waves: list[np.ndarray], streaming: bool) -> float:
    """Max |log-prob difference| between the runtime on ``path`` and PyTorch's forward pass in
    the graph's condition (full context, or the model's chunks), over ``waves``."""
    rec = load_model(path)
    got = rec.log_probs(waves)
    feats = collate([torch.from_numpy(logmel(w, cfg.frontend)) for w in waves])
    ref, ref_len = model(feats["feats"], feats["lengths"], chunk_size=None if streaming else 0)
    worst = 0.0
    for i, (g, n) in enumerate(zip(got, ref_len.tolist())):
        if g.shape[0] != n:
            raise ExportError(f"runtime gives {g.shape[0]} output frames for parity input {i}, PyTorch {n}")
        worst = max(worst, float(np.abs(ref[i, :n].numpy() - g).max()))
    return worst


def export_onnx(
    checkpoint: str,
    out: str,
    streaming: bool = False,
    int8: bool = False,
    chunk_size: Optional[int] = None,
    right_context: Optional[int] = None,
    parity_audio: Sequence[str] = (),
    parity_lengths_s: Sequence[float] = (0.4, 1.3, 3.1),
    opset: int = 17,
    card: Optional[ModelCard] = None,
) -> ExportReport:
    """Export ``checkpoint`` to ``out`` and check onnxruntime against PyTorch (max absolute
    log-probability difference at most 1e-4, else :class:`ExportError`). ``card``: the model
    card to write with it (``asr.card``)."""
    state = load_checkpoint(checkpoint)
    model, cfg, tokenizer = build_model(state)
    m = cfg.model
    if chunk_size is not None:
        m.chunk_size = chunk_size
    if right_context is not None:
        m.right_context = right_context
    if streaming:
        if m.chunk_size <= 0:
            if m.bidirectional:
                raise ExportError(
                    f"{checkpoint}: a full-context bidirectional model cannot stream; train a latency-controlled "
                    "model (model.chunk_size, model.right_context) or a unidirectional one"
                )
            m.chunk_size = 16  # unidirectional: any chunk size streams exactly
        m.validate()
    model.eval()
    torch.set_num_threads(1)
    info = model_info(model, cfg, tokenizer, out, streaming, checkpoint_calibration(state, checkpoint), card)
    os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
    tmp = f"{out}.tmp{os.getpid()}.onnx"
    input_names, output_names = graph_signature(info)
    f = cfg.frontend.n_mels
    if streaming:
        wrapper = _Streaming(model).eval()
        args = (torch.zeros(1, info.window_frames, f), torch.tensor([info.window_frames]), *model.initial_state(1))
        dynamic = {"feats": {0: "batch"}, "lengths": {0: "batch"}, "log_probs": {0: "batch"}}
        for n in info.state_names:
            dynamic[n] = {1: "batch"}
            dynamic[f"next_{n}"] = {1: "batch"}
    else:
        wrapper = _Offline(model).eval()  # a new Module starts in training mode: dropout would be exported
        args = (torch.zeros(2, 64, f), torch.tensor([64, 40]))
        dynamic = {"feats": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
                   "log_probs": {0: "batch", 1: "out_time"}, "out_lengths": {0: "batch"}}
    metadata = info.to_metadata()
    try:
        with torch.no_grad(), warnings.catch_warnings(), native_ops(model):
            warnings.simplefilter("ignore")  # the legacy exporter warns about RNNs with batch_first
            torch.onnx.export(wrapper, args, tmp, input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic, opset_version=opset, dynamo=False)
        write_metadata(tmp, metadata)
        waves = _parity_waves(cfg, list(parity_audio) or _audio_from_config(cfg), parity_lengths_s)
        diff = _max_diff(tmp, model, cfg, waves, streaming)
        if not diff <= PARITY_TOLERANCE:
            raise ExportError(f"parity check failed: the runtime differs from PyTorch by {diff:.2e} "
                              f"(> {PARITY_TOLERANCE:g}); nothing written")
        _fsync(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    report = ExportReport(out, streaming, diff, list(parity_lengths_s), info=info)
    log.info("exported %s (%s graph): parity max |diff| %.2e over %d lengths", out, info.graph, diff, len(waves))

    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        q_path = os.path.splitext(out)[0] + ".int8.onnx"
        q_tmp = f"{q_path}.tmp{os.getpid()}.onnx"
        ops = ["MatMul", "Gemm"] + (["LSTM"] if m.rnn_type == "lstm" else [])
        try:
            quantize_dynamic(out, q_tmp, weight_type=QuantType.QInt8, op_types_to_quantize=ops)
            write_metadata(q_tmp, metadata)
            report.int8_max_abs_diff = _max_diff(q_tmp, model, cfg, waves, streaming)
            _fsync(q_tmp)
            os.replace(q_tmp, q_path)
        finally:
            if os.path.exists(q_tmp):
                os.remove(q_tmp)
        report.int8_path = q_path
        if m.rnn_type != "lstm":
            log.warning("int8: onnxruntime has no int8 %s kernel; only the matrix products outside it are quantized",
                        m.rnn_type.upper())
        log.info("int8 model %s: max |diff| vs PyTorch %.3f (quantization error; judge it by WER)", q_path, report.int8_max_abs_diff)
    return report


def _fsync(path: str) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
