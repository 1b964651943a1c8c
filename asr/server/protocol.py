"""The websocket protocol of ``asr serve``: the Vosk server's, plus two small extensions
(README.md, "Serving"). This module only parses and validates messages and builds replies (no I/O).

A connection is one audio stream: an optional text ``{"config": {"sample_rate": 16000, "words":
true, "phrase_list": [...], "max_alternatives": 3}}``, binary messages of 16-bit little-endian
mono PCM, then the text ``{"eof" : 1}``. The server answers every client message after the
config with exactly one text message, in order: ``{"partial": "..."}``, or, when an endpoint has
closed one or more utterances, ``{"result": [{"word", "start", "end", "conf"}, ...], "text":
"..."}`` (no ``"result"`` when ``words`` is false), or with ``max_alternatives`` N > 0 Vosk's n-best
form ``{"alternatives": [{"confidence", "result": [{"word", "start", "end"}, ...], "text"}, ...]}``
(at most N, best first). The answer to the eof is the final result, after which the server
closes the connection; so does it after ``{"error": "reason"}``. ``{"reset" : 1}`` is answered
with the final result of what was sent so far, as the eof, and the stream goes on afresh (a new
recognizer, times running on from the start of the connection), as Vosk's server does.

``"endpoint": {"rule1": S, "rule2": S, "rule3": S}`` in the config sets the stream's endpoint
rules (``asr serve --rule1/2/3``, :mod:`asr.runtime.endpoint`): the rules given replace the
server's, each a number of seconds; ``rule1`` and ``rule2`` may be ``"off"`` (or null), ``rule3``
is at most the server's, since it bounds an utterance's memory. Vosk's server has no such key.

``phrase_list`` restricts what the stream may write to those phrases, in any sequence, as Vosk
does (``"[unk]"`` stands for anything else; :mod:`asr.decoding.grammar`); a word the model
cannot spell is left out and named in a ``"warning"`` field of the first reply (and the log),
and the stream goes on.

Extensions (a Vosk server would refuse or ignore them): ``"format": "float32"`` in the config
(little-endian float32 samples in [-1, 1]); ``"hotwords"``: phrases to favour (a bonus per
matched token in the beam search: biasing, where ``phrase_list`` restricts); ``"acoustic"`` and
``"lm"`` scores beside each alternative's ``"confidence"``; ``"warning"`` in a reply.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from asr.audio import MAX_SAMPLE_RATE
from asr.decoding.grammar import UNK_WORD
from asr.decoding.options import MAX_ALTERNATIVES
from asr.decoding.result import Alternative, Utterance
from asr.runtime.endpoint import EndpointConfig

__all__ = ["ProtocolError", "StreamConfig", "parse_config", "parse_text", "parse_audio", "partial_reply",
           "result_reply", "error_reply", "with_warning", "FORMATS", "VOSK_UNK", "MIN_RATE", "MAX_RATE", "MAX_PHRASES",
           "MAX_PHRASE_CHARS", "MAX_ALTERNATIVES", "MAX_RULE_S", "ENDPOINT_RULES"]

FORMATS = {"int16": np.dtype("<i2"), "float32": np.dtype("<f4")}
VOSK_UNK = UNK_WORD  # Vosk's "anything else" entry of a phrase list
MAX_PHRASES = 1000  # phrases of a phrase_list or hotwords list (each compiled when the stream starts)
MAX_PHRASE_CHARS = 200
# The rates a stream may declare. The lower bound bounds the work one message can cause: the
# stream resamples to the model's rate, so a message's samples grow by model rate / stream rate
# (a rate of 1 Hz made 2 KB of PCM into 16 million samples); at 8 kHz (telephone speech) a 16 kHz
# model doubles them. The upper bound is the highest rate audio hardware records.
MIN_RATE = 8_000
MAX_RATE = MAX_SAMPLE_RATE  # 384 kHz: the bound every input path shares (asr.audio)
# config.endpoint: a rule is a number of seconds in (0, MAX_RULE_S]; rule3 at most the server's own
# (it bounds an utterance's memory), and never off. The rules are checked after each model chunk,
# so a rule shorter than a chunk acts as one chunk.
MAX_RULE_S = 3600.0
ENDPOINT_RULES = ("rule1", "rule2", "rule3")


class ProtocolError(ValueError):
    """A message that breaks the protocol; the reason is sent to the client as ``{"error"}``."""


@dataclass(frozen=True)
class StreamConfig:
    """One connection's settings (the ``config`` message over the server's defaults)."""

    sample_rate: int
    words: bool = True
    phrase_list: tuple = field(default_factory=tuple)  # restricts (a grammar); () = no restriction
    format: str = "int16"
    hotwords: tuple = field(default_factory=tuple)  # biases (extension)
    max_alternatives: int = 0  # n-best results (Vosk's form) when > 0
    endpoint: Optional[EndpointConfig] = None  # the stream's endpoint rules (None: the recognizer's)
    itn: bool = False  # final results in written form (extension; default: asr serve --itn)
    punctuate: bool = False  # final results with marks and capitals (extension; default: asr serve --punctuate)
    punctuation_model: Optional[str] = None  # the server's tagger (--punctuation-model; None: the built-in one)

    @property
    def sample_bytes(self) -> int:
        return FORMATS[self.format].itemsize


def _rate(value, min_rate: int, max_rate: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or not min_rate <= value <= max_rate:
        raise ProtocolError(f"config.sample_rate must be a whole number of Hz in {min_rate}..{max_rate}, got {value!r}")
    return int(value)


def _flag(value, name: str) -> bool:
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise ProtocolError(f"config.{name} must be true/false (or 1/0), got {value!r}")


def _phrases(value, name: str, keep_unk: bool) -> tuple:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ProtocolError(f"config.{name} must be a list of strings, got {type(value).__name__}")
    if len(value) > MAX_PHRASES:
        raise ProtocolError(f"config.{name} has {len(value)} phrases; at most {MAX_PHRASES}")
    long = [p for p in value if len(p) > MAX_PHRASE_CHARS]
    if long:
        raise ProtocolError(f"config.{name}: a phrase is longer than {MAX_PHRASE_CHARS} characters ({long[0][:40]!r}...)")
    return tuple(p for p in value if p.strip() and (keep_unk or p.strip().lower() != VOSK_UNK))


def _alternatives(value) -> int:
    """The number asked for, any whole number >= 0: Vosk's is a maximum with no upper bound (its
    test_alternatives.py asks for 20), so a larger one is cut to :data:`MAX_ALTERNATIVES` when
    the stream opens, with a warning (:func:`asr.server.loop.open_stream`), not refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or value < 0:
        raise ProtocolError(f"config.max_alternatives must be a whole number >= 0, got {value!r}")
    return int(value)


def _endpoint(value, base: Optional[EndpointConfig]) -> EndpointConfig:
    """``config.endpoint`` over the server's rules ``base``: each rule given is seconds in
    (0, MAX_RULE_S], or "off"/null for rule1 and rule2; rule3 is at most ``base.rule3``."""
    if not isinstance(value, dict):
        raise ProtocolError(f'config.endpoint must be an object such as {{"rule2": 0.5}}, got {type(value).__name__}')
    unknown = sorted(set(value) - set(ENDPOINT_RULES))
    if unknown:
        raise ProtocolError(f"config.endpoint: unknown field(s) {unknown}; known: {list(ENDPOINT_RULES)}")
    base = base if base is not None else EndpointConfig()
    rules = {name: getattr(base, name) for name in ENDPOINT_RULES}
    longest = base.rule3 if base.rule3 is not None else MAX_RULE_S
    for name, v in value.items():
        top = longest if name == "rule3" else MAX_RULE_S
        if (v is None or v == "off") and name != "rule3":
            rules[name] = None
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 < v <= top:
            offable = "" if name == "rule3" else ', or "off"'
            why = " (the server's --rule3: it bounds an utterance's memory)" if name == "rule3" else ""
            raise ProtocolError(f"config.endpoint.{name} must be seconds in (0, {top:g}]{why}{offable}, got {v!r}")
        rules[name] = float(v)
    return EndpointConfig(**rules)


def parse_config(body, defaults: StreamConfig, min_rate: int = MIN_RATE, max_rate: int = MAX_RATE) -> StreamConfig:
    """The object under ``"config"`` -> a :class:`StreamConfig` (unknown keys are refused, so a
    typo is not silently ignored; ``sample_rate`` must lie in ``min_rate..max_rate``; ``endpoint``
    rules over ``defaults.endpoint``, the server's)."""
    if not isinstance(body, dict):
        raise ProtocolError(f"config must be an object, got {type(body).__name__}")
    known = {"sample_rate", "words", "phrase_list", "format", "max_alternatives", "hotwords", "endpoint", "itn", "punctuate"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ProtocolError(f"config: unknown field(s) {unknown}; known: {sorted(known)}")
    out = {}
    if "sample_rate" in body:
        out["sample_rate"] = _rate(body["sample_rate"], min_rate, max_rate)
    for name in ("words", "itn", "punctuate"):
        if name in body:
            out[name] = _flag(body[name], name)
    if "phrase_list" in body:
        out["phrase_list"] = _phrases(body["phrase_list"], "phrase_list", keep_unk=True)
    if "hotwords" in body:
        out["hotwords"] = _phrases(body["hotwords"], "hotwords", keep_unk=False)
    if "format" in body:
        if body["format"] not in FORMATS:
            raise ProtocolError(f"config.format must be one of {sorted(FORMATS)}, got {body['format']!r}")
        out["format"] = body["format"]
    if "max_alternatives" in body:
        out["max_alternatives"] = _alternatives(body["max_alternatives"])
    if "endpoint" in body:
        out["endpoint"] = _endpoint(body["endpoint"], defaults.endpoint)
    return StreamConfig(**{**defaults.__dict__, **out})


def parse_text(text: str) -> tuple[str, Optional[dict]]:
    """A text message -> ``("config", body)``, ``("eof", None)`` or ``("reset", None)``; anything else raises."""
    try:
        obj = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise ProtocolError(f"text message is not valid JSON ({exc}): {text[:80]!r}") from None
    except RecursionError:  # e.g. 100,000 '[': the parser recurses once per level
        raise ProtocolError(f"text message nests too deeply to parse: {text[:20]!r}...") from None
    if not isinstance(obj, dict) or len(obj) != 1:
        raise ProtocolError(f'text message must be {{"config": {{...}}}}, {{"eof" : 1}} or {{"reset" : 1}}, got {text[:80]!r}')
    (key, value), = obj.items()
    if key == "config":
        return "config", value
    if key in ("eof", "reset"):
        if value != 1 or isinstance(value, bool):
            raise ProtocolError(f'{key} message must be {{"{key}" : 1}}, got {text[:80]!r}')
        return key, None
    raise ProtocolError(f'unknown text message {key!r}: expected "config", "eof" or "reset"')


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_audio(data: bytes, cfg: StreamConfig) -> np.ndarray:
    """A binary message -> mono samples (int16, or float32 for the float32 extension)."""
    n = cfg.sample_bytes
    if len(data) % n:
        raise ProtocolError(f"binary message of {len(data)} bytes is not a whole number of {cfg.format} samples "
                            f"({n} bytes each)")
    samples = np.frombuffer(data, FORMATS[cfg.format])
    if cfg.format == "float32":
        finite = np.isfinite(samples)
        if not finite.all():
            raise ProtocolError(f"binary message has {int(samples.size - finite.sum())} NaN or infinite float32 sample(s)")
        samples = samples.astype(np.float32)
    else:
        samples = samples.astype(np.int16)
    return samples


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def partial_reply(text: str) -> str:
    return _dumps({"partial": text})


def result_reply(utterances: Sequence[Utterance], words: bool, alternatives: int = 0, offset_s: float = 0.0) -> str:
    """One result for the utterances finished since the last result (their words in order, their
    texts joined by a space); ``conf`` is the word's confidence where the model gives one, else 1.0.
    ``alternatives`` > 0: Vosk's n-best form instead (:func:`_alternatives_reply`). ``offset_s``:
    added to every time (the audio of the connection before its last reset)."""
    if alternatives > 0:
        return _alternatives_reply(utterances, words, alternatives, offset_s)
    text = " ".join(u.text for u in utterances if u.text)
    if not words:
        return _dumps({"text": text})
    t = _shifter(offset_s)
    ws = [{"conf": _conf(w), "end": t(w.end), "start": t(w.start), "word": w.word} for u in utterances for w in u.words]
    return _dumps({"result": ws, "text": text})


def _shifter(offset_s: float):
    """Times moved ``offset_s`` later (rounded to the millisecond; unchanged when 0)."""
    if not offset_s:
        return lambda x: x
    return lambda x: round(x + offset_s, 3)


def _alternatives_reply(utterances: Sequence[Utterance], words: bool, n: int, offset_s: float = 0.0) -> str:
    """``{"alternatives": [{"confidence", "result", "text", "acoustic", "lm"}, ...]}``, at most ``n``,
    best first, as Vosk writes them (words without ``conf``; no ``result`` when ``words`` is false;
    ``confidence`` is the hypothesis's total log-score, natural log). Several utterances in one
    result (long messages only): the k-th entry joins each one's k-th best (its last, where it
    has fewer), scores summed. Nothing recognized: one empty entry, confidence 1.0 (Vosk's)."""
    t = _shifter(offset_s)
    lists = [u.alternatives or [Alternative(u.text, 0.0, 0.0, 0.0, list(u.words))] for u in utterances if u.text or u.alternatives]
    entries = []
    for k in range(min(n, max((len(a) for a in lists), default=0))):
        picked = [a[min(k, len(a) - 1)] for a in lists]
        entry = {"confidence": round(sum(a.score for a in picked), 4)}
        if words:
            entry["result"] = [{"end": t(w.end), "start": t(w.start), "word": w.word} for a in picked for w in a.words]
        entry["text"] = " ".join(a.text for a in picked if a.text)
        entry["acoustic"] = round(sum(a.acoustic for a in picked), 4)
        entry["lm"] = round(sum(a.lm for a in picked), 4)
        entries.append(entry)
    return _dumps({"alternatives": entries or [{"text": "", "confidence": 1.0}]})


def with_warning(reply: str, warning: str) -> str:
    """A reply with a ``"warning"`` field added (the extension that names phrase_list words left out)."""
    obj = json.loads(reply)
    obj["warning"] = warning
    return _dumps(obj)


def _conf(word) -> float:
    c = getattr(word, "confidence", None)
    return 1.0 if c is None else float(c)


def error_reply(reason: str) -> str:
    return _dumps({"error": reason})
