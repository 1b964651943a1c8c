"""Admission by measured decoding cost: a new stream is admitted only while the decoding loops
can take it and still keep every live stream within the reply-delay goal.

A stream count alone (``--max-streams``) cannot say when the server is full: a stream's cost
depends on the model, the machine, what else runs there, and how fast its client sends. So
the server measures it. Over the last ``window_s`` seconds, the decoding loops were busy
``busy_s`` seconds (feature extraction, model calls, replies: everything a step does); spread
over the ``live`` streams that is ``busy_s / window_s / live`` of a loop per stream (for
real-time clients, the decoding time per second of audio). With one more stream of that cost
the loops would be busy

    predicted = busy_s / window_s * (live + 1) / live / loops

of their time. Replies wait for the step in progress and their own, so their delay stays
near one or two steps while the loops have idle time left and grows without bound once they
have none: the rule keeps ``predicted <= max_load`` (default 0.8), and refuses the newcomer
with Vosk's "try again later" (1013) otherwise. Before ``min_measured_s`` of history, or with
no live stream, there is nothing to extrapolate from, and the stream is admitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Admission", "LoadSample"]


@dataclass(frozen=True)
class LoadSample:
    """What the loops measured: ``busy_s`` decoding seconds (all loops together) over the last
    ``window_s`` seconds, ``loops`` decoding loops, ``live`` streams now."""

    busy_s: float
    window_s: float
    live: int
    loops: int = 1

    @property
    def load(self) -> float:
        """Fraction of the loops' time spent decoding, now."""
        return self.busy_s / self.window_s / self.loops if self.window_s > 0 else 0.0


@dataclass(frozen=True)
class Admission:
    max_load: float = 0.8  # fraction of the decoding loops' time the live streams may fill
    min_measured_s: float = 2.0  # history needed before a stream is refused

    def __post_init__(self):
        if not 0 < self.max_load <= 1:
            raise ValueError(f"max_load must be in (0, 1], got {self.max_load!r}")
        if not self.min_measured_s > 0:
            raise ValueError(f"min_measured_s must be positive, got {self.min_measured_s!r}")

    def predicted_load(self, m: LoadSample) -> Optional[float]:
        """The loops' load with one more stream of the live ones' average cost; None when
        there is nothing to extrapolate from."""
        if m.live < 1 or m.window_s < self.min_measured_s:
            return None
        return m.load * (m.live + 1) / m.live

    def admits(self, m: LoadSample) -> bool:
        predicted = self.predicted_load(m)
        return predicted is None or predicted <= self.max_load
