"""Checkpoint -> one self-describing ONNX file, with a parity check after every export.

Two graphs:

- offline: ``feats`` (B, T, n_mels) float32 log-mel, ``lengths`` (B,) int64 ->
  ``log_probs`` (B, T', V), ``out_lengths`` (B,). Full context.
- streaming: ``feats`` (B, (C + R) * subsampling, n_mels) = one window (chunk plus right
  context, zero padded at the end of input), ``lengths`` (B,) valid frames in the window, and
  the carried state(s) ``state_h`` [``state_c`` for LSTM] (num_layers, B, hidden) ->
  ``log_probs`` (B, C, V) of the chunk frames and ``next_state_h`` [``next_state_c``].
  The runtime advances by C * subsampling feature frames per step.

Everything the runtime needs is in the file's metadata (``asr.*`` keys, JSON values): front
end, vocabulary, normalization statistics (informational: the graph applies them), subsampling,
chunk and right-context sizes, state names and shapes, model kind, toolkit version.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch

from asr import __version__
from asr.audio import AudioError, load_audio
from asr.nn.checkpoint import build_model, load_checkpoint
from asr.nn.features import LogMel
from asr.nn.model import CTCModel

log = logging.getLogger(__name__)

__all__ = ["export_onnx", "ExportError", "ExportReport", "METADATA_FORMAT"]

METADATA_FORMAT = "asr-onnx/1"
PARITY_TOLERANCE = 1e-4


class ExportError(RuntimeError):
    pass


@dataclass
class ExportReport:
    path: str
    streaming: bool
    max_abs_diff: float
    parity_lengths_s: list = field(default_factory=list)
    int8_path: Optional[str] = None
    int8_max_abs_diff: Optional[float] = None
    metadata: dict = field(default_factory=dict)


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


def _metadata(model: CTCModel, cfg, tokenizer, streaming: bool) -> dict:
    m = cfg.model
    state_names = ["state_h"] + (["state_c"] if m.rnn_type == "lstm" else [])
    kind = f"{m.rnn_type}-{'bi' if m.bidirectional else 'uni'}directional"
    if m.bidirectional and m.chunk_size:
        kind += "-latency-controlled"
    meta = {
        "format": METADATA_FORMAT,
        "toolkit_version": __version__,
        "graph": "streaming" if streaming else "offline",
        "model_kind": kind,
        "frontend": cfg.frontend.to_dict(),
        "tokenizer": tokenizer.to_dict(),
        "normalization": {"mean": model.feat_mean.tolist(), "std": model.feat_std.tolist(), "applied_in_graph": True},
        "subsampling": m.subsampling,
        "model": m.to_dict(),
        "vocab_size": m.vocab_size,
    }
    if streaming:
        meta.update(
            chunk_size=m.chunk_size,
            right_context=m.right_context if m.bidirectional else 0,
            window_frames=(m.chunk_size + (m.right_context if m.bidirectional else 0)) * m.subsampling,
            hop_frames=m.chunk_size * m.subsampling,
            state_names=state_names,
            state_shapes={n: [m.num_layers, "batch", m.hidden_size] for n in state_names},
        )
    return meta


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


def _run_torch_stream(model: CTCModel, feats: torch.Tensor) -> np.ndarray:
    m = model.cfg
    right = m.right_context if m.bidirectional else 0
    win, hop = (m.chunk_size + right) * m.subsampling, m.chunk_size * m.subsampling
    n = feats.shape[0] // m.subsampling * m.subsampling
    state = model.initial_state(1)
    outs = []
    for start in range(0, n, hop):
        w = feats[start : start + win]
        valid = w.shape[0]
        if valid < win:
            w = torch.cat([w, w.new_zeros(win - valid, w.shape[1])])
        logp, *state = model.stream_step(w[None], torch.tensor([valid]), *state)
        outs.append(logp[0, : min(m.chunk_size, (n - start) // m.subsampling)])
    return torch.cat(outs).numpy()


def _run_ort_stream(sess: ort.InferenceSession, meta: dict, feats: np.ndarray) -> np.ndarray:
    win, hop, sub, chunk = meta["window_frames"], meta["hop_frames"], meta["subsampling"], meta["chunk_size"]
    n = feats.shape[0] // sub * sub
    state = {name: np.zeros([s if s != "batch" else 1 for s in meta["state_shapes"][name]], np.float32) for name in meta["state_names"]}
    outs = []
    for start in range(0, n, hop):
        w = feats[start : start + win]
        valid = w.shape[0]
        if valid < win:
            w = np.concatenate([w, np.zeros((win - valid, w.shape[1]), np.float32)])
        res = sess.run(None, {"feats": w[None], "lengths": np.array([valid], np.int64), **state})
        state = dict(zip(meta["state_names"], res[1:]))
        outs.append(res[0][0, : min(chunk, (n - start) // sub)])
    return np.concatenate(outs)


def _max_diff(path: str, model: CTCModel, meta: dict, feats_list: list[torch.Tensor], streaming: bool) -> float:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        if streaming:
            for f in feats_list:
                ref = _run_torch_stream(model, f)
                got = _run_ort_stream(sess, meta, f.numpy())
                worst = max(worst, float(np.abs(ref - got).max()))
        else:
            # one padded batch of all lengths: also checks the dynamic batch and time axes
            from asr.nn.data import collate

            b = collate(feats_list)
            ref, ref_len = model(b["feats"], b["lengths"], chunk_size=0)
            got, got_len = sess.run(None, {"feats": b["feats"].numpy(), "lengths": b["lengths"].numpy()})
            if not np.array_equal(ref_len.numpy(), got_len):
                raise ExportError(f"onnxruntime output lengths {got_len.tolist()} differ from PyTorch {ref_len.tolist()}")
            for i, n in enumerate(ref_len.tolist()):
                worst = max(worst, float(np.abs(ref[i, :n].numpy() - got[i, :n]).max()))
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
) -> ExportReport:
    """Export ``checkpoint`` to ``out`` and check onnxruntime against PyTorch (max absolute
    log-probability difference at most 1e-4, else :class:`ExportError`)."""
    model, cfg, tokenizer = build_model(load_checkpoint(checkpoint))
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
    meta = _metadata(model, cfg, tokenizer, streaming)
    os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
    tmp = out + ".tmp.onnx"
    f = cfg.frontend.n_mels
    if streaming:
        wrapper = _Streaming(model).eval()
        state = model.initial_state(1)
        args = (torch.zeros(1, meta["window_frames"], f), torch.tensor([meta["window_frames"]]), *state)
        names = meta["state_names"]
        input_names = ["feats", "lengths", *names]
        output_names = ["log_probs", *[f"next_{n}" for n in names]]
        dynamic = {"feats": {0: "batch"}, "lengths": {0: "batch"}, "log_probs": {0: "batch"}}
        for n in names:
            dynamic[n] = {1: "batch"}
            dynamic[f"next_{n}"] = {1: "batch"}
    else:
        wrapper = _Offline(model).eval()  # a new Module starts in training mode: dropout would be exported
        args = (torch.zeros(2, 64, f), torch.tensor([64, 40]))
        input_names, output_names = ["feats", "lengths"], ["log_probs", "out_lengths"]
        dynamic = {"feats": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
                   "log_probs": {0: "batch", 1: "out_time"}, "out_lengths": {0: "batch"}}
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter warns about RNNs with batch_first
        torch.onnx.export(wrapper, args, tmp, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic, opset_version=opset, dynamo=False)
    proto = onnx.load(tmp)
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = f"asr.{k}", json.dumps(v)
    onnx.save(proto, tmp)

    logmel = LogMel(cfg.frontend)
    waves = _parity_waves(cfg, list(parity_audio) or _audio_from_config(cfg), parity_lengths_s)
    feats = [logmel(torch.from_numpy(w)) for w in waves]
    diff = _max_diff(tmp, model, meta, feats, streaming)
    if not diff <= PARITY_TOLERANCE:
        os.remove(tmp)
        raise ExportError(f"parity check failed: onnxruntime differs from PyTorch by {diff:.2e} (> {PARITY_TOLERANCE:g}); nothing written")
    os.replace(tmp, out)
    report = ExportReport(out, streaming, diff, list(parity_lengths_s), metadata=meta)
    log.info("exported %s (%s graph): parity max |diff| %.2e over %d lengths", out, meta["graph"], diff, len(feats))

    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        q_path = os.path.splitext(out)[0] + ".int8.onnx"
        ops = ["MatMul", "Gemm"] + (["LSTM"] if m.rnn_type == "lstm" else [])
        quantize_dynamic(out, q_path, weight_type=QuantType.QInt8, op_types_to_quantize=ops)
        q = onnx.load(q_path)
        present = {p.key for p in q.metadata_props}
        for p in proto.metadata_props:
            if p.key not in present:
                q.metadata_props.add(key=p.key, value=p.value)
        onnx.save(q, q_path)
        report.int8_path = q_path
        report.int8_max_abs_diff = _max_diff(q_path, model, meta, feats, streaming)
        if m.rnn_type == "gru":
            log.warning("int8: onnxruntime has no int8 GRU kernel; only the matrix products outside the GRU are quantized")
        log.info("int8 model %s: max |diff| vs PyTorch %.3f (quantization error; judge it by WER)", q_path, report.int8_max_abs_diff)
    return report
