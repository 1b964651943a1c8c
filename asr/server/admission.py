"""Admission by measured decoding cost: a new stream is admitted only while the decoding loops
can take it and still keep every live stream within the reply-delay goal.

A stream count alone (``--max-streams``) cannot say when the server is full: a stream's cost
depends on the model, the machine, what else runs there, and how fast its client sends. So
the server measures it. Over the last ``window_s`` seconds the decoding loops were busy
``busy_s`` seconds (feature extraction, model calls, replies: everything a step does, the step
in progress included) and decoded ``audio_s`` seconds of audio. Two estimates of the loops'
load with one more stream, the larger one counts:

- by decoding time per second of audio: ``busy_s / audio_s * (live + 1) / loops``, every live
  stream taken to send audio in real time (so streams just admitted, whose audio has not
  come yet, count in full: a burst of connections cannot all slip in before their cost shows);
- by the time the loops are busy now: ``busy_s / window_s / loops * (live + 1) / live``, the
  newcomer costing what the average live stream costs (this one sees saturation at once,
  whatever the audio).

Replies wait for the step in progress and their own, so their delay stays near one or two
steps while the loops have idle time left and grows without bound once they have none: the
rule keeps the predicted load at most ``max_load`` (default 0.7). A stream's cost is not quite
linear in the load (more sockets, more contention for the interpreter and the cores: with the
FSDD model the cost per audio second measured at 40% load had grown by about 12% at 90%), so
the rule also watches the outcome itself: while the replies made in the last window took
longer than ``max_reply_s`` inside the server (95th percentile, a message's arrival to its
reply, plus the 95th percentile of how late the event loop runs what is due, which is how
long a message waits to be read; default 0.2 s of the 0.3 s reply-delay goal, the rest left
to the network), no newcomer is admitted. A refused client gets Vosk's "try again later" (1013) and the reason.

Before ``min_measured_s`` of history, or with no live stream, there is nothing to extrapolate
from, and the stream is admitted; the estimate by cost per audio second needs ``min_audio_s``
of audio decoded (one slow step over a tenth of a second of audio says little about the cost
per second).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Admission", "LoadSample"]


@dataclass(frozen=True)
class LoadSample:
    """What the loops measured: ``busy_s`` decoding seconds and ``audio_s`` seconds of audio
    decoded (all loops together) over the last ``window_s`` seconds; ``loops`` decoding
    loops, ``live`` streams now."""

    busy_s: float
    window_s: float
    live: int
    loops: int = 1
    audio_s: float = 0.0
    reply_p95_s: Optional[float] = None  # 95th percentile of the replies' delays inside the server (None: too few)
    loop_lag_s: Optional[float] = None  # 95th percentile of how late the event loop ran what was due (sockets read late)

    @property
    def load(self) -> float:
        """Fraction of the loops' time spent decoding, now."""
        return self.busy_s / self.window_s / self.loops if self.window_s > 0 else 0.0


@dataclass(frozen=True)
class Admission:
    max_load: float = 0.7  # fraction of the decoding loops' time the live streams may fill
    min_measured_s: float = 2.0  # history needed before a stream is refused
    min_audio_s: float = 2.0  # audio decoded in the window needed for the estimate by cost per audio second
    max_reply_s: float = 0.2  # replies slower than this inside the server (p95): no newcomer

    def __post_init__(self):
        if not 0 < self.max_load <= 1:
            raise ValueError(f"max_load must be in (0, 1], got {self.max_load!r}")
        if not self.min_measured_s > 0:
            raise ValueError(f"min_measured_s must be positive, got {self.min_measured_s!r}")
        if not self.max_reply_s > 0:
            raise ValueError(f"max_reply_s must be positive, got {self.max_reply_s!r}")

    def predicted_load(self, m: LoadSample) -> Optional[float]:
        """The loops' load with one more stream of the live ones' average cost; None when
        there is nothing to extrapolate from."""
        if m.live < 1 or m.window_s < self.min_measured_s:
            return None
        by_time = m.load * (m.live + 1) / m.live
        by_audio = m.busy_s / m.audio_s * (m.live + 1) / m.loops if m.audio_s >= self.min_audio_s else 0.0
        return max(by_time, by_audio)

    def refusal(self, m: LoadSample) -> Optional[str]:
        """Why a new stream is refused now, or None: admitted."""
        reply, lag = m.reply_p95_s or 0.0, m.loop_lag_s or 0.0
        if m.live >= 1 and reply + lag > self.max_reply_s:
            return (f"replies take {reply * 1000:.0f} ms inside the server, and messages wait {lag * 1000:.0f} ms to be "
                    f"read (95th percentiles; limit {self.max_reply_s * 1000:.0f} ms together)")
        predicted = self.predicted_load(m)
        if predicted is not None and predicted > self.max_load:
            return (f"decoding the live streams ({m.live}) takes {m.load:.0%} of its time, one more would take "
                    f"{predicted:.0%} (limit {self.max_load:.0%}, --max-load)")
        return None

    def admits(self, m: LoadSample) -> bool:
        return self.refusal(m) is None
