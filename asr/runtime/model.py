"""One exported ONNX file: an onnxruntime session plus the metadata that describes it.

The file is self-describing (see the docstring of ``export/onnx_export.py``): front end,
vocabulary, subsampling and, for streaming graphs, chunk, right context, window and hop sizes
and the state layout. :class:`OnnxModel` reads and checks all of it, and offers the streaming
contract in the style of sherpa-onnx: :meth:`OnnxModel.init_states`,
:meth:`OnnxModel.stream_step` (window + states in, chunk log-probs + next states out), and
:meth:`OnnxModel.stack_states` / :meth:`OnnxModel.unstack_states` to batch streams.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import onnxruntime as ort

from asr.frontend import FrontendConfig
from asr.text import Tokenizer, tokenizer_from_dict

__all__ = ["ModelError", "ModelInfo", "OnnxModel", "METADATA_FORMAT"]

METADATA_FORMAT = "asr-onnx/1"
_PREFIX = "asr."
_REQUIRED = ("format", "graph", "frontend", "tokenizer", "subsampling", "vocab_size")
_REQUIRED_STREAMING = ("chunk_size", "right_context", "window_frames", "hop_frames", "state_names", "state_shapes")


class ModelError(ValueError):
    """An ONNX file this runtime cannot serve, naming the file and what is wrong."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class ModelInfo:
    """The checked metadata of one model file."""

    path: str
    graph: str  # "offline" or "streaming"
    model_kind: str
    toolkit_version: str
    frontend: FrontendConfig
    tokenizer: Tokenizer
    subsampling: int
    vocab_size: int
    # streaming graphs only (0 / empty for offline graphs)
    chunk_size: int = 0  # C model frames out per step
    right_context: int = 0  # R model frames of look-ahead
    window_frames: int = 0  # (C + R) * subsampling feature frames in per step
    hop_frames: int = 0  # C * subsampling feature frames advanced per step
    state_names: tuple = ()
    state_shapes: dict = field(default_factory=dict)  # name -> (num_layers, hidden)
    metadata: dict = field(default_factory=dict, repr=False)  # every asr.* key, decoded

    @property
    def streaming(self) -> bool:
        return self.graph == "streaming"

    @property
    def sample_rate(self) -> int:
        return self.frontend.sample_rate

    @property
    def frame_shift_s(self) -> float:
        """Seconds per model output frame (feature hop x subsampling)."""
        return self.frontend.hop_length * self.subsampling / self.frontend.sample_rate


def _decode_metadata(path: str, props: dict) -> dict:
    meta = {}
    for key, raw in props.items():
        if not key.startswith(_PREFIX):
            continue
        try:
            meta[key[len(_PREFIX):]] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ModelError(path, f"metadata key {key!r} is not valid JSON ({exc})") from None
    return meta


def parse_metadata(path: str, meta: dict) -> ModelInfo:
    """Check the decoded ``asr.*`` metadata of ``path`` and build its :class:`ModelInfo`."""
    if not meta:
        raise ModelError(path, f"no 'asr.*' metadata: not a model exported by this toolkit "
                               f"(expected format {METADATA_FORMAT!r}; export one with `asr export`)")
    if meta.get("format") != METADATA_FORMAT:
        raise ModelError(path, f"metadata format is {meta.get('format')!r}, expected {METADATA_FORMAT!r}")
    graph = meta.get("graph")
    missing = [f"asr.{k}" for k in _REQUIRED + (_REQUIRED_STREAMING if graph == "streaming" else ()) if k not in meta]
    if missing:
        raise ModelError(path, f"metadata lacks {', '.join(missing)}")
    if graph not in ("offline", "streaming"):
        raise ModelError(path, f"asr.graph must be 'offline' or 'streaming', got {graph!r}")
    try:
        frontend = FrontendConfig.from_dict(meta["frontend"])
    except (TypeError, ValueError) as exc:
        raise ModelError(path, f"asr.frontend: {exc}") from None
    try:
        tokenizer = tokenizer_from_dict(meta["tokenizer"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(path, f"asr.tokenizer: {exc}") from None
    sub, vocab_size = meta["subsampling"], meta["vocab_size"]
    problems = []
    if not isinstance(sub, int) or sub < 1:
        problems.append(f"asr.subsampling must be a positive integer, got {sub!r}")
    if vocab_size != len(tokenizer.vocab):
        problems.append(f"asr.vocab_size is {vocab_size} but the tokenizer has {len(tokenizer.vocab)} symbols")
    extra = {}
    if graph == "streaming" and not problems:
        c, r = meta["chunk_size"], meta["right_context"]
        names = tuple(meta["state_names"])
        if not isinstance(c, int) or c < 1 or not isinstance(r, int) or r < 0:
            problems.append(f"need asr.chunk_size >= 1 and asr.right_context >= 0, got {c!r}, {r!r}")
        elif meta["window_frames"] != (c + r) * sub or meta["hop_frames"] != c * sub:
            problems.append(f"asr.window_frames/hop_frames are {meta['window_frames']}/{meta['hop_frames']}, "
                            f"expected {(c + r) * sub}/{c * sub} from chunk {c}, right context {r}, subsampling {sub}")
        shapes = {}
        for n in names:
            shape = meta["state_shapes"].get(n)
            if not (isinstance(shape, list) and len(shape) == 3 and shape[1] == "batch"
                    and all(isinstance(d, int) and d > 0 for d in (shape[0], shape[2]))):
                problems.append(f"asr.state_shapes[{n!r}] must be [num_layers, 'batch', hidden], got {shape!r}")
            else:
                shapes[n] = (shape[0], shape[2])
        if not names:
            problems.append("asr.state_names is empty")
        extra = dict(chunk_size=c, right_context=r, window_frames=meta["window_frames"],
                     hop_frames=meta["hop_frames"], state_names=names, state_shapes=shapes)
    if problems:
        raise ModelError(path, "; ".join(problems))
    return ModelInfo(path=path, graph=graph, model_kind=str(meta.get("model_kind", "")),
                     toolkit_version=str(meta.get("toolkit_version", "")), frontend=frontend, tokenizer=tokenizer,
                     subsampling=sub, vocab_size=vocab_size, metadata=meta, **extra)


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
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = inter_op_threads
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several kinds for unreadable files
            raise ModelError(path, f"cannot load as an ONNX model ({type(exc).__name__}: {exc})") from None
        props = self.session.get_modelmeta().custom_metadata_map
        self.info = parse_metadata(path, _decode_metadata(path, props))
        self._check_signature()
        self._outputs = ["log_probs"] + [f"next_{n}" for n in self.info.state_names] if self.info.streaming \
            else ["log_probs", "out_lengths"]

    @property
    def path(self) -> str:
        return self.info.path

    def _check_signature(self) -> None:
        info = self.info
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        want_in = ["feats", "lengths", *info.state_names]
        want_out = ["log_probs", *[f"next_{n}" for n in info.state_names]] if info.streaming else ["log_probs", "out_lengths"]
        missing = [n for n in want_in if n not in inputs] + [n for n in want_out if n not in outputs]
        if missing:
            raise ModelError(info.path, f"{info.graph} graph lacks input/output(s) {missing} "
                                        f"(has inputs {sorted(inputs)}, outputs {sorted(outputs)})")
        n_mels = inputs["feats"][-1]
        if isinstance(n_mels, int) and n_mels != info.frontend.n_mels:
            raise ModelError(info.path, f"graph input 'feats' has {n_mels} features but asr.frontend.n_mels is {info.frontend.n_mels}")

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
        return [np.concatenate(parts, axis=1) for parts in zip(*per_stream)]

    @staticmethod
    def unstack_states(states: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        """Batched states (L, B, H) -> one list of (L, 1, H) per stream."""
        batch = states[0].shape[1]
        return [[s[:, b : b + 1].copy() for s in states] for b in range(batch)]
