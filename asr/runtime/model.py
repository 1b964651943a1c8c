"""One exported ONNX file: an onnxruntime session plus the metadata that describes it.

The file is self-describing (the schema is :mod:`asr.runtime.schema`): front end,
vocabulary, subsampling and, for streaming graphs, chunk, right context, window and hop sizes
and the state layout. :class:`OnnxModel` reads and checks all of it, and offers the streaming
contract in the style of sherpa-onnx: :meth:`OnnxModel.init_states`,
:meth:`OnnxModel.stream_step` (window + states in, chunk log-probs + next states out), and
:meth:`OnnxModel.stack_states` / :meth:`OnnxModel.unstack_states` to batch streams.
"""

from __future__ import annotations

import os
import zipfile
from typing import Optional, Sequence

import numpy as np
import onnxruntime as ort

from asr.runtime.schema import ModelError, ModelInfo, graph_signature

__all__ = ["OnnxModel", "model_file_kind", "is_checkpoint"]


class OnnxModel:
    """An onnxruntime session on one exported model file, with its checked :class:`ModelInfo`.

    ``num_threads`` / ``inter_op_threads``: onnxruntime intra- and inter-op threads (default 1,
    steady on a shared machine)."""

    def __init__(self, path: str | os.PathLike, num_threads: int = 1, inter_op_threads: int = 1):
        path = os.fspath(path)
        if num_threads < 1 or inter_op_threads < 1:
            raise ValueError(f"thread counts must be >= 1, got num_threads={num_threads}, inter_op_threads={inter_op_threads}")
        if not os.path.exists(path):
            raise ModelError(path, "model file not found")
        if os.path.isdir(path):
            raise ModelError(path, "is a directory, not an ONNX model file")
        if is_checkpoint(path):
            raise ModelError(path, "is a PyTorch checkpoint, not an ONNX model (use --checkpoint, or export it with `asr export`)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = inter_op_threads
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several kinds for unreadable files
            raise ModelError(path, f"cannot load as an ONNX model ({type(exc).__name__}: {exc})") from None
        self.info = ModelInfo.from_metadata(path, self.session.get_modelmeta().custom_metadata_map)
        self._check_signature()
        self._outputs = graph_signature(self.info)[1]
        self._probe()

    @property
    def path(self) -> str:
        return self.info.path

    def _check_signature(self) -> None:
        info = self.info
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        want_in, want_out = graph_signature(info)
        missing = [n for n in want_in if n not in inputs] + [n for n in want_out if n not in outputs]
        if missing:
            raise ModelError(info.path, f"{info.graph} graph lacks input/output(s) {missing} "
                                        f"(has inputs {sorted(inputs)}, outputs {sorted(outputs)})")
        n_mels = inputs["feats"][-1]
        if isinstance(n_mels, int) and n_mels != info.frontend.n_mels:
            raise ModelError(info.path, f"graph input 'feats' has {n_mels} features but asr.frontend.n_mels is {info.frontend.n_mels}")
        if not info.streaming:
            return
        frames = inputs["feats"][1] if len(inputs["feats"]) == 3 else None
        if isinstance(frames, int) and frames != info.window_frames:
            raise ModelError(info.path, f"graph input 'feats' takes windows of {frames} frames but the metadata says "
                                        f"{info.window_frames} (asr.chunk_size {info.chunk_size} + asr.right_context "
                                        f"{info.right_context}, times asr.subsampling {info.subsampling})")
        for name in info.state_names:
            shape, (layers, hidden) = inputs[name], info.state_shapes[name]
            fixed = [(i, d) for i, d in ((0, layers), (2, hidden)) if len(shape) == 3 and isinstance(shape[i], int)]
            if len(shape) != 3 or any(shape[i] != d for i, d in fixed):
                raise ModelError(info.path, f"graph input {name!r} has shape {shape} but asr.state_shapes[{name!r}] "
                                            f"is [{layers}, 'batch', {hidden}]")

    def _probe(self) -> None:
        """One step on zero input, to prove the metadata and the graph agree (a mismatch the
        static shapes do not show would otherwise surface at the first decode, on a live
        stream)."""
        info = self.info
        what = "streaming step on one zero window" if info.streaming else "forward pass on zero features"
        try:
            if info.streaming:
                win = info.window_frames
                states = self.init_states(1)
                logp, next_states = self.stream_step(np.zeros((1, win, info.frontend.n_mels), np.float32),
                                                     np.array([win]), states)
                want = (1, info.chunk_size, info.vocab_size)
            else:
                frames = 16 * info.subsampling
                logp, out_len = self.forward(np.zeros((1, frames, info.frontend.n_mels), np.float32), np.array([frames]))
        except Exception as exc:  # onnxruntime raises several kinds
            raise ModelError(info.path, f"the metadata does not fit the graph: a {what} failed "
                                        f"({type(exc).__name__}: {str(exc)[:300]})") from None
        if info.streaming:
            if logp.shape != want:
                raise ModelError(info.path, f"the metadata does not fit the graph: a {what} gave log-probs of shape "
                                            f"{logp.shape}, expected {want} (1, asr.chunk_size, asr.vocab_size)")
            for name, before, after in zip(info.state_names, states, next_states):
                if after.shape != before.shape:
                    raise ModelError(info.path, f"the metadata does not fit the graph: next_{name} has shape {after.shape}, "
                                                f"asr.state_shapes says {before.shape}")
        elif (logp.ndim != 3 or logp.shape[0] != 1 or logp.shape[2] != info.vocab_size
              or not 1 <= logp.shape[1] <= -(-frames // info.subsampling)):
            raise ModelError(info.path, f"the metadata does not fit the graph: a {what} of {frames} frames gave log-probs "
                                        f"of shape {logp.shape}, expected (1, about {frames // info.subsampling}, "
                                        f"{info.vocab_size}) from asr.subsampling and asr.vocab_size")
        if not np.isfinite(logp).all():
            raise ModelError(info.path, f"a {what} gave non-finite log-probs")

    # offline graph -------------------------------------------------------------------------
    def forward(self, feats: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Offline graph: feats (B, T, n_mels), lengths (B,) -> log_probs (B, T', V), out_lengths (B,)."""
        if self.info.streaming:
            raise ModelError(self.path, "forward() needs an offline graph; this is a streaming graph (use stream_step)")
        logp, out_len = self.session.run(self._outputs, {"feats": np.ascontiguousarray(feats, np.float32),
                                                         "lengths": np.asarray(lengths, np.int64)})
        return logp, out_len

    # streaming graph -----------------------------------------------------------------------
    def init_states(self, batch: int = 1) -> list[np.ndarray]:
        """Zero states, one (num_layers, batch, hidden) array per name in ``info.state_names``."""
        return [np.zeros((self.info.state_shapes[n][0], batch, self.info.state_shapes[n][1]), np.float32)
                for n in self.info.state_names]

    def stream_step(self, feats: np.ndarray, lengths: np.ndarray, states: Sequence[np.ndarray]):
        """Streaming graph, one step: feats (B, window_frames, n_mels) zero-padded windows,
        lengths (B,) valid frames, states -> (log_probs (B, chunk_size, V), next states)."""
        if not self.info.streaming:
            raise ModelError(self.path, "stream_step() needs a streaming graph; this is an offline graph (use forward)")
        feeds = {"feats": np.ascontiguousarray(feats, np.float32), "lengths": np.asarray(lengths, np.int64)}
        feeds.update(zip(self.info.state_names, states))
        logp, *next_states = self.session.run(self._outputs, feeds)
        return logp, next_states

    @staticmethod
    def stack_states(per_stream: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
        """States of several streams (each a list of (L, 1, H)) -> batched list of (L, B, H)."""
        if len(per_stream) == 1:
            return list(per_stream[0])
        return [np.concatenate(parts, axis=1) for parts in zip(*per_stream)]

    @staticmethod
    def unstack_states(states: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        """Batched states (L, B, H) -> one list of (L, 1, H) per stream (one batch: the arrays
        themselves, which onnxruntime allocated for this call alone)."""
        batch = states[0].shape[1]
        if batch == 1:
            return [list(states)]
        return [[s[:, b : b + 1].copy() for s in states] for b in range(batch)]


def model_file_kind(path: str | os.PathLike) -> Optional[str]:
    """What a model file holds, told from its bytes (not its name): ``"checkpoint"`` for a
    PyTorch checkpoint (``torch.save`` writes a zip archive), ``"onnx"`` for an ONNX model (a
    protobuf ModelProto whose graph holds at least one node; never zip), None for anything
    else or no such file. Reads only the fields' headers: cheap on a model of any size."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        return None
    if zipfile.is_zipfile(path):
        return "checkpoint"
    try:
        with open(path, "rb") as f:
            graph = _protobuf_field(f, 0, os.fstat(f.fileno()).st_size, 7, whole=True)  # ModelProto.graph
            return "onnx" if graph is not None and _protobuf_field(f, *graph, 1) is not None else None  # GraphProto.node
    except (OSError, ValueError):
        return None


def is_checkpoint(path: str | os.PathLike) -> bool:
    """True for a PyTorch checkpoint (:func:`model_file_kind`)."""
    return model_file_kind(path) == "checkpoint"


def _varint(f) -> int:
    value, shift = 0, 0
    while True:
        b = f.read(1)
        if not b or shift > 63:
            raise ValueError("not protobuf: a varint runs past the end")
        value |= (b[0] & 0x7F) << shift
        shift += 7
        if b[0] < 0x80:
            return value


def _protobuf_field(f, start: int, end: int, number: int, whole: bool = False) -> Optional[tuple[int, int]]:
    """(first byte, end) of the first length-delimited field ``number`` of the protobuf message
    in bytes [start, end) of ``f``, or None; ``whole``: check every field up to ``end``. Raises
    ValueError where the bytes are not protobuf."""
    found, pos = None, start
    f.seek(start)
    while pos < end and (whole or found is None):
        key = _varint(f)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ValueError("not protobuf: field number 0")
        if wire == 0:
            _varint(f)
        elif wire in (1, 5):
            f.seek(8 if wire == 1 else 4, os.SEEK_CUR)
        elif wire == 2:
            size = _varint(f)
            if found is None and field == number:
                found = (f.tell(), f.tell() + size)
            f.seek(size, os.SEEK_CUR)
        else:
            raise ValueError(f"not protobuf: wire type {wire}")
        pos = f.tell()
    if pos > end:
        raise ValueError("not protobuf: a field runs past the end")
    return found
