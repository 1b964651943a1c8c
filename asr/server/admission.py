"""Admission by measured decoding cost: a new stream is admitted only while the decoding loops
can take it and still keep every live stream within the reply-delay goal.

A stream count alone (``--max-streams``) cannot say when the server is full: a stream's cost
depends on the model, the machine, what else runs there. So the server measures, over the
last ``window_s`` seconds (:class:`LoadSample`), and refuses a newcomer with Vosk's "try again
later" (1013) and the reason when one of the rules of :class:`Admission` says so
(docs/serving_bounds.md lists what a client gets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Admission", "LoadSample"]


@dataclass(frozen=True)
class LoadSample:
    """What the server measured over the last ``window_s`` seconds, all decoding loops together."""

    busy_s: float  # seconds the loops spent in steps
    window_s: float
    live: int  # streams now
    loops: int = 1  # decoding loops
    audio_s: float = 0.0  # seconds of audio decoded
    reply_p95_s: Optional[float] = None  # 95th percentile of the replies' delays inside the server (None: too few)
    loop_lag_s: Optional[float] = None  # 95th percentile of how late the event loop ran what was due
    oldest_pending_s: float = 0.0  # how long the oldest unanswered message (of a stream keeping up) has waited
    joined: int = 0  # streams admitted within the window

    @property
    def load(self) -> float:
        """Fraction of the loops' time spent decoding, now."""
        return self.busy_s / self.window_s / self.loops if self.window_s > 0 else 0.0


@dataclass(frozen=True)
class Admission:
    """The rules that refuse a newcomer (:meth:`refusal`):

    1. **Cost.** The decoding loops were busy ``busy_s`` seconds (feature extraction, model
       calls, replies: everything a step does, the step in progress included) to decode
       ``audio_s`` seconds of audio. With every live stream and the newcomer sending audio in real
       time they would be busy ``busy_s / audio_s * (live + 1) / loops`` of their time; that must
       stay at most ``max_load`` (default 0.7). Streams just admitted, whose audio has not come
       yet, count in full, so a burst of connections cannot all slip in before their cost shows.
       (The time the loops are busy is no measure by itself: a client that sends faster than real
       time takes whatever time is free, and a 2-client flood would otherwise lock everyone out.)
    2. **Outcome.** A stream's cost is not quite linear in the load (more sockets, more contention
       for the interpreter and the cores: with the FSDD model the cost per audio second measured
       at 40% load had grown by about 12% at 90%), so while the replies made in the window took
       longer than ``max_reply_s`` inside the server (95th percentile of a message's arrival to
       its reply, for streams that keep up with their audio, plus the 95th percentile of how late
       the event loop runs what is due, which is how long a message waits to be read; default
       0.2 s of the 0.3 s reply-delay goal, the rest left to the network), no newcomer is admitted.
    3. **Stuck.** While a message of a stream that keeps up has waited more than
       ``max_pending_s`` for its reply (a step that does not end), no newcomer is admitted.
    4. **Burst.** Rule 1's cost was measured at the load of the last window; at twice that load
       it can be half as much again (rule 2 only sees it once replies are late, and streams once
       admitted stay). So the streams admitted within the window may be at most ``burst`` plus
       ``growth - 1`` times the streams it measured (``audio_s / window_s`` real-time streams): a
       burst of connections is admitted in steps, each measured before the next.

    Before ``min_measured_s`` of history, or with no live stream, there is nothing to extrapolate
    from, and the stream is admitted; rule 1 needs ``min_audio_s`` of audio decoded (one slow step
    over a tenth of a second of audio says little about the cost per second).
    """

    max_load: float = 0.7  # fraction of the decoding loops' time real-time streams may fill (rule 1)
    max_reply_s: float = 0.2  # replies slower than this inside the server, p95: no newcomer (rule 2)
    max_pending_s: float = 0.5  # a reply waited for this long: no newcomer (rule 3)
    min_measured_s: float = 2.0  # history needed before a stream is refused
    min_audio_s: float = 2.0  # audio decoded in the window needed for rule 1
    growth: float = 2.0  # streams admitted per window: at most (growth - 1) times the streams measured... (rule 4)
    burst: int = 20  # ...plus this many

    def __post_init__(self):
        if not 0 < self.max_load <= 1:
            raise ValueError(f"max_load must be in (0, 1], got {self.max_load!r}")
        bad = [f"{k}={getattr(self, k)!r}" for k in ("max_reply_s", "max_pending_s", "min_measured_s", "min_audio_s",
                                                     "burst") if not getattr(self, k) > 0]
        if not self.growth >= 1:
            bad.append(f"growth={self.growth!r} (at least 1)")
        if bad:
            raise ValueError(f"Admission: {', '.join(bad)} must be positive")

    def predicted_load(self, m: LoadSample) -> Optional[float]:
        """The loops' load with every live stream and one more sending in real time; None when
        there is nothing to extrapolate from."""
        if m.live < 1 or m.window_s < self.min_measured_s or m.audio_s < self.min_audio_s:
            return None
        return m.busy_s / m.audio_s * (m.live + 1) / m.loops

    def refusal(self, m: LoadSample) -> Optional[str]:
        """Why a new stream is refused now, or None: admitted."""
        if m.live < 1:
            return None
        if m.oldest_pending_s > self.max_pending_s:
            return (f"a reply has been due for {m.oldest_pending_s * 1000:.0f} ms "
                    f"(limit {self.max_pending_s * 1000:.0f} ms): decoding is behind")
        reply, lag = m.reply_p95_s or 0.0, m.loop_lag_s or 0.0
        if reply + lag > self.max_reply_s:
            return (f"replies take {reply * 1000:.0f} ms inside the server, and messages wait {lag * 1000:.0f} ms to be "
                    f"read (95th percentiles; limit {self.max_reply_s * 1000:.0f} ms together)")
        measured = m.audio_s / m.window_s if m.window_s > 0 else 0.0
        if m.joined + 1 > (self.growth - 1) * measured + self.burst:
            return (f"streams are joining faster than their cost can be measured ({m.joined} joined in "
                    f"{m.window_s:.0f} s, {measured:.0f} measured sending in real time)")
        predicted = self.predicted_load(m)
        if predicted is not None and predicted > self.max_load:
            return (f"decoding takes {m.busy_s / m.audio_s * 1000:.1f} ms per second of audio: {m.live + 1} real-time "
                    f"streams would fill {predicted:.0%} of its time (limit {self.max_load:.0%}, --max-load)")
        return None

    def admits(self, m: LoadSample) -> bool:
        return self.refusal(m) is None
