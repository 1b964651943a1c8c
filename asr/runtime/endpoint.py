"""Endpointing: when does an utterance end? Three rules, as in sherpa-onnx.

Non-speech is a model frame whose best CTC symbol is the blank. With ``frame_shift_s`` seconds
per model frame, an endpoint fires when

- rule 1: no speech decoded yet in this utterance, and trailing non-speech >= ``rule1`` s;
- rule 2: some speech decoded, and trailing non-speech >= ``rule2`` s;
- rule 3: the utterance is >= ``rule3`` s long.

``None`` switches a rule off. The recognizer checks the rules after each decoded chunk, so an
endpoint is found at most one chunk late.

``onset_lead`` (seconds; None: off): where a word-unit model's utterance begins (the start of
the stream, or an endpoint of rule 1 or 2: after non-speech), its chunks are aligned to its
first word. While an utterance has no token yet, a chunk whose first token comes later than
``onset_lead`` into it is not kept: its blank frames before that point are, and the chunk is
run again from ``onset_lead`` before the token, with the fresh states an utterance starts with.
A chunked model (latency-controlled, chunk-wise attention) sees a word cut by a chunk's end
only up to its look-ahead, and commits to it there; a word that begins where its chunk begins
is seen as the model was trained to see an utterance's start. It costs one more model step
per utterance, and the first word of an utterance comes at most one chunk later. Character and
word-piece models keep the stream's grid: their first token can come well into its word
(:mod:`asr.runtime.online`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["EndpointConfig", "EndpointDetector", "detect_endpoint"]


@dataclass(frozen=True)
class EndpointConfig:
    rule1: Optional[float] = 2.4  # s of non-speech with no speech decoded yet
    rule2: Optional[float] = 1.2  # s of trailing non-speech after some speech
    rule3: Optional[float] = 20.0  # s maximum utterance length
    onset_lead: Optional[float] = 0.02  # s kept before an utterance's first token when its chunk is run again from there

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        bad = [f"{n}={v!r}" for n, v in (("rule1", self.rule1), ("rule2", self.rule2), ("rule3", self.rule3))
               if v is not None and not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v))]
        v = self.onset_lead
        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 and math.isfinite(v)):
            bad.append(f"onset_lead={v!r}")
        if bad:
            raise ValueError(f"invalid EndpointConfig: {', '.join(bad)} (each rule is a positive number of seconds, "
                             "onset_lead seconds >= 0, or None for off)")


def detect_endpoint(cfg: EndpointConfig, has_speech: bool, trailing_silence_s: float, utterance_s: float) -> Optional[int]:
    """The number of the first rule that fires (1, 2 or 3), or None. Times in seconds."""
    eps = 1e-9
    if cfg.rule1 is not None and not has_speech and trailing_silence_s + eps >= cfg.rule1:
        return 1
    if cfg.rule2 is not None and has_speech and trailing_silence_s + eps >= cfg.rule2:
        return 2
    if cfg.rule3 is not None and utterance_s + eps >= cfg.rule3:
        return 3
    return None


class EndpointDetector:
    """Tracks one utterance's best-symbol frames and applies :func:`detect_endpoint`."""

    def __init__(self, cfg: EndpointConfig, frame_shift_s: float, blank: int = 0):
        self.cfg, self.frame_shift_s, self.blank = cfg, frame_shift_s, blank
        self.reset()

    def reset(self) -> None:
        self.num_frames = 0
        self.trailing_blanks = 0
        self.has_speech = False

    def accept(self, best: np.ndarray) -> None:
        """Feed the argmax symbol of each new model frame."""
        best = np.asarray(best).reshape(-1)
        if best.size == 0:
            return
        speech = np.flatnonzero(best != self.blank)
        self.num_frames += best.size
        if speech.size:
            self.has_speech = True
            self.trailing_blanks = best.size - 1 - int(speech[-1])
        else:
            self.trailing_blanks += best.size

    def check(self) -> Optional[int]:
        return detect_endpoint(self.cfg, self.has_speech, self.trailing_blanks * self.frame_shift_s,
                               self.num_frames * self.frame_shift_s)
