"""The metadata schema of an exported model: one definition, written by ``asr export`` and
read by the runtime.

An ONNX file made by this toolkit carries ``asr.*`` metadata keys with JSON values (the table:
:meth:`ModelInfo.to_metadata`). :func:`write_metadata` writes them into a file,
:meth:`ModelInfo.from_metadata` reads and checks them (a :class:`ModelError` names the file and
what is wrong), :func:`graph_signature` names the graph's inputs and outputs. A model may carry
a :class:`ModelCard` (``asr.card``: its name, language and what it recognizes, in words for
people), which :meth:`ModelInfo.describe` shows with what the file itself says.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Mapping, Optional

from asr.decoding.confidence import ConfidenceCalibration
from asr.frontend import FrontendConfig
from asr.text import Tokenizer, tokenizer_from_dict

__all__ = ["METADATA_FORMAT", "ModelCard", "ModelError", "ModelInfo", "StreamingLayout", "card_metadata", "confidence_metadata",
           "graph_signature", "read_card", "write_metadata"]

METADATA_FORMAT = "asr-onnx/1"
_PREFIX = "asr."
_REQUIRED = ("format", "graph", "frontend", "tokenizer", "subsampling", "vocab_size")
_REQUIRED_STREAMING = ("chunk_size", "right_context", "window_frames", "hop_frames", "state_names", "state_shapes")
# Ranges a model's sizes must lie in: far beyond any real model, low enough that a wrong value
# is refused before it allocates (a hidden size of 1e9 in asr.state_shapes asked for 11 GiB).
MAX_SUBSAMPLING = 64
MAX_CHUNK = 10_000  # model frames per step (chunk and right context each)
MAX_LAYERS = 128
MAX_HIDDEN = 65_536
MAX_STATE_VALUES = 1 << 22  # carried state values per stream, all states together (16 MiB of float32)
# a model card's fields, in characters: a page's heading, a language tag, a paragraph
MAX_CARD = {"name": 80, "language": 35, "description": 500}
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")  # BCP 47, loosely: en, en-US, zh-Hans
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# the kinds of tokenizer (asr.text) in words
_VOCABULARY_KINDS = {"char": "characters", "word": "words", "bpe": "word pieces", "phone": "phones"}


class ModelError(ValueError):
    """An ONNX file this runtime cannot serve, naming the file and what is wrong."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def read_metadata(path: str | os.PathLike, props: Mapping[str, str]) -> dict:
    """The ``asr.*`` keys of an ONNX file's metadata, JSON-decoded, without the prefix (a model's
    or a punctuation tagger's); a key that is not JSON raises :class:`ModelError`."""
    meta = {}
    for key, raw in props.items():
        if key.startswith(_PREFIX):
            try:
                meta[key[len(_PREFIX):]] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ModelError(path, f"metadata key {key!r} is not valid JSON ({exc})") from None
    return meta


@dataclass(frozen=True)
class StreamingLayout:
    """How a streaming graph walks a stream: C output frames per step, seeing R more frames of
    look-ahead, and the carried states (name -> (num_layers, hidden))."""

    chunk_size: int
    right_context: int
    state_shapes: Mapping[str, tuple] = field(default_factory=dict)

    @property
    def state_names(self) -> tuple:
        return tuple(self.state_shapes)


@dataclass(frozen=True)
class ModelCard:
    """What a model is, in words for people (metadata key ``asr.card``; ``asr serve`` shows it
    on its page and in /info): ``name`` ("English digits"), ``language`` (a BCP 47 tag such as
    ``en``; empty: not said) and ``description`` (what it recognizes and what it does not, one
    paragraph). Set by ``asr export --card CARD.json``."""

    name: str
    language: str = ""
    description: str = ""

    def __post_init__(self):
        problems = []
        for key, limit in MAX_CARD.items():
            value = getattr(self, key)
            if not isinstance(value, str):
                problems.append(f"{key} must be a string, got {type(value).__name__}")
            elif len(value) > limit:
                problems.append(f"{key} has {len(value)} characters, more than {limit}")
            elif _CONTROL.search(value) or value != value.strip():
                problems.append(f"{key} has control characters (line breaks, tabs) or spaces around it: {value[:40]!r}")
        if not problems and not self.name:
            problems.append("name is empty")
        if not problems and self.language and not _LANGUAGE_TAG.fullmatch(self.language):
            problems.append(f"language must be a language tag such as 'en' or 'en-US', got {self.language!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_dict(cls, d) -> "ModelCard":
        if not isinstance(d, dict):
            raise ValueError(f"must be an object {{\"name\", \"language\", \"description\"}}, got {type(d).__name__}")
        unknown = sorted(set(d) - set(MAX_CARD))
        if unknown:
            raise ValueError(f"unknown keys {unknown} (known: {', '.join(MAX_CARD)})")
        if "name" not in d:
            raise ValueError("lacks a name")
        return cls(**d)

    def to_dict(self) -> dict:
        return {"name": self.name, "language": self.language, "description": self.description}


@dataclass(frozen=True)
class ModelInfo:
    """The checked metadata of one model file."""

    path: str
    graph: str  # "offline" or "streaming"
    frontend: FrontendConfig
    tokenizer: Tokenizer
    subsampling: int
    vocab_size: int
    model_kind: str = ""
    toolkit_version: str = ""
    streaming_layout: Optional[StreamingLayout] = None  # streaming graphs only
    confidence: Optional[ConfidenceCalibration] = None  # word-confidence calibration (asr calibrate)
    card: Optional[ModelCard] = None  # name, language, description (asr export --card)
    extra: Mapping = field(default_factory=dict, repr=False)  # informational keys (normalization, model)

    @property
    def streaming(self) -> bool:
        return self.graph == "streaming"

    @property
    def sample_rate(self) -> int:
        return self.frontend.sample_rate

    @property
    def frame_shift_s(self) -> float:
        """Seconds per model output frame."""
        return self.frontend.output_frame_shift_s(self.subsampling)

    # streaming graphs: 0 / empty for offline ones
    @property
    def chunk_size(self) -> int:
        return self.streaming_layout.chunk_size if self.streaming_layout else 0

    @property
    def right_context(self) -> int:
        return self.streaming_layout.right_context if self.streaming_layout else 0

    @property
    def window_frames(self) -> int:
        return (self.chunk_size + self.right_context) * self.subsampling

    @property
    def hop_frames(self) -> int:
        return self.chunk_size * self.subsampling

    @property
    def state_names(self) -> tuple:
        return self.streaming_layout.state_names if self.streaming_layout else ()

    @property
    def state_shapes(self) -> Mapping[str, tuple]:
        return self.streaming_layout.state_shapes if self.streaming_layout else {}

    def describe(self, max_symbols: int = 64) -> dict:
        """What the model is, for people (``asr serve``'s /info and page): the file's name, its
        card (None without one), the vocabulary (kind in words, size without the blank, and the
        symbols when there are at most ``max_symbols``), the sample rate, the graph, and for a
        streaming graph its latency: a chunk plus its look-ahead, in seconds (0 offline)."""
        symbols = self.tokenizer.vocab[1:]  # id 0 is the blank
        kind = self.tokenizer.to_dict().get("kind", "")
        vocabulary = {"kind": _VOCABULARY_KINDS.get(kind, kind), "size": len(symbols)}
        if len(symbols) <= max_symbols:
            vocabulary["symbols"] = symbols
        chunk_s, right_s = self.chunk_size * self.frame_shift_s, self.right_context * self.frame_shift_s
        return {"file": os.path.basename(self.path), "card": self.card.to_dict() if self.card else None,
                "vocabulary": vocabulary, "sample_rate": self.sample_rate, "graph": self.graph,
                "chunk_s": round(chunk_s, 3), "right_context_s": round(right_s, 3), "latency_s": round(chunk_s + right_s, 3)}

    # writing -------------------------------------------------------------------------------
    def to_metadata(self) -> dict[str, str]:
        """The ``asr.*`` keys with JSON values, as stored in the ONNX file:

        ==================  ==========================================================================
        key                 value
        ==================  ==========================================================================
        format              ``"asr-onnx/1"``
        graph               ``"offline"`` or ``"streaming"``
        model_kind          e.g. ``"gru-bidirectional-latency-controlled"`` (informational)
        toolkit_version     the exporting toolkit's version (informational)
        frontend            :class:`asr.frontend.FrontendConfig` as a dict
        tokenizer           the tokenizer's dict (:func:`asr.text.tokenizer_from_dict`)
        subsampling         feature frames per model output frame
        vocab_size          output symbols, blank included (= the tokenizer's)
        normalization       mean/std of the features (informational: the graph applies them)
        model               the model config (informational)
        confidence          optional: the word-confidence calibration
                            (:class:`asr.decoding.confidence.ConfidenceCalibration` as a dict)
        card                optional: name, language, description (:class:`ModelCard` as a dict)
        streaming graphs:
        chunk_size          C model frames out per step
        right_context       R model frames of look-ahead
        window_frames       (C + R) * subsampling feature frames in per step
        hop_frames          C * subsampling feature frames advanced per step
        state_names         carried states, e.g. ``["state_h"]`` or ``["state_h", "state_c"]``
        state_shapes        name -> ``[num_layers, "batch", hidden]``
        ==================  ==========================================================================
        """
        meta = {
            "format": METADATA_FORMAT,
            "toolkit_version": self.toolkit_version,
            "graph": self.graph,
            "model_kind": self.model_kind,
            "frontend": self.frontend.to_dict(),
            "tokenizer": self.tokenizer.to_dict(),
            "subsampling": self.subsampling,
            "vocab_size": self.vocab_size,
            **dict(self.extra),
        }
        if self.confidence is not None:
            meta["confidence"] = self.confidence.to_dict()
        if self.card is not None:
            meta["card"] = self.card.to_dict()
        if self.streaming:
            meta.update(chunk_size=self.chunk_size, right_context=self.right_context,
                        window_frames=self.window_frames, hop_frames=self.hop_frames,
                        state_names=list(self.state_names),
                        state_shapes={n: [s[0], "batch", s[1]] for n, s in self.state_shapes.items()})
        return {_PREFIX + k: json.dumps(v) for k, v in meta.items()}

    # reading -------------------------------------------------------------------------------
    @classmethod
    def from_metadata(cls, path: str, props: Mapping[str, str]) -> "ModelInfo":
        """Check the ``asr.*`` keys of ``path``'s metadata and build its :class:`ModelInfo`."""
        meta = read_metadata(path, props)
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
        for key in ("frontend", "tokenizer"):
            if not isinstance(meta[key], dict):
                raise ModelError(path, f"asr.{key} must be an object, got {type(meta[key]).__name__}")
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
        if not _int_in(sub, 1, MAX_SUBSAMPLING):
            problems.append(f"asr.subsampling must be an integer in 1..{MAX_SUBSAMPLING}, got {sub!r}")
        if not _int_in(vocab_size, 1, None) or vocab_size != len(tokenizer.vocab):
            problems.append(f"asr.vocab_size is {vocab_size!r} but the tokenizer has {len(tokenizer.vocab)} symbols")
        confidence = None
        if meta.get("confidence") is not None:
            try:
                confidence = ConfidenceCalibration.from_dict(meta["confidence"])
            except (TypeError, ValueError) as exc:
                problems.append(f"asr.confidence: {exc}")
        card = None
        if meta.get("card") is not None:
            try:
                card = ModelCard.from_dict(meta["card"])
            except ValueError as exc:
                problems.append(f"asr.card: {exc}")
        layout = None
        if graph == "streaming" and not problems:
            layout = _streaming_layout(meta, sub, problems)
        if problems:
            raise ModelError(path, "; ".join(problems))
        known = set(_REQUIRED + _REQUIRED_STREAMING + ("model_kind", "toolkit_version", "confidence", "card"))
        return cls(path=path, graph=graph, frontend=frontend, tokenizer=tokenizer, subsampling=sub,
                   vocab_size=vocab_size, model_kind=str(meta.get("model_kind", "")),
                   toolkit_version=str(meta.get("toolkit_version", "")), streaming_layout=layout, confidence=confidence,
                   card=card, extra={k: v for k, v in meta.items() if k not in known})


def _int_in(value, lo: int, hi: Optional[int]) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value and (hi is None or value <= hi)


def _streaming_layout(meta: dict, sub: int, problems: list) -> Optional[StreamingLayout]:
    c, r = meta["chunk_size"], meta["right_context"]
    n0 = len(problems)
    if not _int_in(c, 1, MAX_CHUNK):
        problems.append(f"asr.chunk_size must be an integer in 1..{MAX_CHUNK}, got {c!r}")
    if not _int_in(r, 0, MAX_CHUNK):
        problems.append(f"asr.right_context must be an integer in 0..{MAX_CHUNK}, got {r!r}")
    if len(problems) == n0 and (meta["window_frames"] != (c + r) * sub or meta["hop_frames"] != c * sub
                                or not all(_int_in(meta[k], 1, None) for k in ("window_frames", "hop_frames"))):
        problems.append(f"asr.window_frames/hop_frames are {meta['window_frames']!r}/{meta['hop_frames']!r}, "
                        f"expected {(c + r) * sub}/{c * sub} from chunk {c}, right context {r}, subsampling {sub}")
    names, shapes_meta = meta["state_names"], meta["state_shapes"]
    if not (isinstance(names, list) and names and all(isinstance(n, str) and n for n in names)
            and len(set(names)) == len(names)):
        problems.append(f"asr.state_names must be a non-empty list of distinct names, got {names!r}")
        return None
    if not isinstance(shapes_meta, dict):
        problems.append(f"asr.state_shapes must be an object {{name: [num_layers, 'batch', hidden]}}, "
                        f"got {type(shapes_meta).__name__}")
        return None
    extra = sorted(set(shapes_meta) - set(names))
    if extra:
        problems.append(f"asr.state_shapes has {extra}, which asr.state_names {names} lacks")
    shapes = {}
    for n in names:
        shape = shapes_meta.get(n)
        if not (isinstance(shape, list) and len(shape) == 3 and shape[1] == "batch"
                and _int_in(shape[0], 1, MAX_LAYERS) and _int_in(shape[2], 1, MAX_HIDDEN)):
            problems.append(f"asr.state_shapes[{n!r}] must be [num_layers (1..{MAX_LAYERS}), 'batch', "
                            f"hidden (1..{MAX_HIDDEN})], got {shape!r}")
        else:
            shapes[n] = (shape[0], shape[2])
    total = sum(a * b for a, b in shapes.values())
    if total > MAX_STATE_VALUES:
        problems.append(f"asr.state_shapes: {total} state values per stream, more than {MAX_STATE_VALUES}")
    if len(problems) > n0:
        return None
    return StreamingLayout(c, r, shapes)


def graph_signature(info: ModelInfo) -> tuple[list[str], list[str]]:
    """(input names, output names) of ``info``'s graph: offline ``feats`` (B, T, n_mels),
    ``lengths`` (B,) -> ``log_probs`` (B, T', V), ``out_lengths`` (B,); streaming ``feats``
    (B, window_frames, n_mels), ``lengths`` (B,) valid frames, one input per state ->
    ``log_probs`` (B, C, V), ``next_<state>`` per state."""
    if info.streaming:
        return ["feats", "lengths", *info.state_names], ["log_probs", *[f"next_{n}" for n in info.state_names]]
    return ["feats", "lengths"], ["log_probs", "out_lengths"]


def confidence_metadata(calibration: Optional[ConfidenceCalibration]) -> dict[str, Optional[str]]:
    """The metadata key of a word-confidence calibration, for :func:`write_metadata` (None:
    remove it)."""
    return {_PREFIX + "confidence": None if calibration is None else json.dumps(calibration.to_dict())}


def card_metadata(card: Optional[ModelCard]) -> dict[str, Optional[str]]:
    """The metadata key of a model card, for :func:`write_metadata` (None: remove it)."""
    return {_PREFIX + "card": None if card is None else json.dumps(card.to_dict())}


def read_card(path: str | os.PathLike) -> ModelCard:
    """A model card from a JSON file ``{"name": ..., "language": ..., "description": ...}``;
    a ``ValueError`` names the file and what is wrong."""
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{os.fspath(path)}: not valid JSON ({exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{os.fspath(path)}: not UTF-8 text") from None
    try:
        return ModelCard.from_dict(d)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{os.fspath(path)}: model card: {exc}") from None


def write_metadata(path: str, metadata: Mapping[str, Optional[str]]) -> None:
    """Set (a string value) or remove (None) metadata keys of the ONNX file ``path``, keeping
    the others; the file is replaced atomically. Needs the ``onnx`` package (the train extra)."""
    import onnx

    from asr.fileio import atomic_write

    proto = onnx.load(path)
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    for k, v in keep + [(k, v) for k, v in metadata.items() if v is not None]:
        proto.metadata_props.add(key=k, value=v)
    atomic_write(path, lambda tmp: onnx.save(proto, tmp))
