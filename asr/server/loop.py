"""The decoding loop: every live stream of the server decoded together, off the event loop.

Connection handlers never touch the model: they put each audio message (and the eof) into
their :class:`Session`'s inbox and wait for replies, and one :class:`DecodeLoop` task runs
the steps in its worker thread. So at most one thread runs the model, streams are only touched
by that thread while a step runs, and the event loop only does socket work. A session owes one
reply per message (Vosk's contract), made once its audio is decoded as far as the model's
window allows, so the time from a message to its reply is the server's added latency.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from asr.itn import TextOptions
from asr.runtime.online import OnlineRecognizer, OnlineStream
from asr.server.protocol import MAX_ALTERNATIVES, ProtocolError, StreamConfig, partial_reply, result_reply, with_warning

__all__ = ["Session", "DecodeLoop", "LoopStats", "open_stream"]

log = logging.getLogger("asr.server")
EOF = None  # the inbox item that ends the input
RESET = "reset"  # the inbox item that ends the input so far: final result, then a fresh stream
FEED_PIECE_S = 1.0  # seconds of a message fed to its stream per step (resampling and log-mel of at most this much)
AHEAD_S = 0.25  # audio a real-time client may have sent ahead of the clock beyond the model's window (jitter)


def open_stream(rec: OnlineRecognizer, name: str, cfg: StreamConfig) -> tuple[OnlineStream, str, Callable[[], OnlineStream]]:
    """A new stream of ``rec`` for a connection's config, a warning for its client ("" if
    none), and what makes another such stream (after a reset): ``phrase_list`` restricts its
    final decoding (a grammar: words the model cannot spell are left out, named in the warning
    and the log, and the stream goes on), ``hotwords`` bias it, ``max_alternatives`` sets its
    n-best size, ``endpoint`` its endpoint rules. Raises :class:`ProtocolError` naming the field
    for a phrase list with nothing left, or hotwords the model cannot spell."""
    grammar, warning = None, ""
    if cfg.phrase_list:
        try:
            grammar = rec.decoder.compile_grammar(cfg.phrase_list, warn=False)
        except ValueError as exc:
            raise ProtocolError(f"config.phrase_list: {exc}") from None
        if grammar.dropped:
            warning = f"config.phrase_list: {grammar.warning}"
            log.warning("stream %s: %s", name, warning)
    alternatives = min(cfg.max_alternatives, MAX_ALTERNATIVES)
    if cfg.max_alternatives > MAX_ALTERNATIVES:  # Vosk's is a maximum with no bound: cut, not refused
        cut = f"config.max_alternatives: {cfg.max_alternatives} asked, at most {MAX_ALTERNATIVES} given"
        warning = f"{warning}; {cut}" if warning else cut
        log.warning("stream %s: %s", name, cut)
    again = functools.partial(rec.create_stream, name, hotwords=list(cfg.hotwords) or None, grammar=grammar,
                              alternatives=alternatives, endpoint=cfg.endpoint)
    try:
        stream = again()
    except ValueError as exc:
        raise ProtocolError(f"config.hotwords: {exc}") from None
    return stream, warning, again


class Session:
    """One connection's stream. The handler (event loop) calls :meth:`push` / :meth:`finish`
    and reads :attr:`outbox`; the loop's worker thread alone touches :attr:`stream`. A
    :meth:`reset` ends the stream as the eof does (its final result is the reset's reply), and
    ``restart`` makes the next one, whose times run on from the connection's start."""

    def __init__(self, stream: OnlineStream, cfg: StreamConfig, frame_shift_s: float, window_s: float = 0.0,
                 warning: str = "", restart: Optional[Callable[[], OnlineStream]] = None):
        self.stream, self.cfg = stream, cfg
        self._restart = restart  # None: a reset is refused
        self._offset_s = 0.0  # audio of the streams before the last reset, seconds (their times run on)
        self._resetting = False  # the stream was ended by a reset, not the eof
        self.warning = warning  # sent once, in a "warning" field of the first reply (e.g. phrase_list words left out)
        self.name = stream.name
        self._shift = frame_shift_s
        self._ahead_s = window_s + AHEAD_S
        self._sent_until = 0.0  # when the audio received so far would have played out, sent in real time
        self.inbox: collections.deque = collections.deque()  # sample arrays, then EOF; thread-safe appends/pops
        self.outbox: asyncio.Queue = asyncio.Queue()  # reply strings, then None after the final one
        self.received_s = 0.0  # audio received (handler side)
        self.decoded_s = 0.0  # audio the model has decoded (set by the worker)
        self.eof_sent = False
        self.closed = False  # the connection is gone: drop at the next step
        self.final_sent = False
        self.loop: Optional["DecodeLoop"] = None  # the loop that decodes it
        self.waiting_since: Optional[float] = None  # when it last became ready and waited for a batch
        self.progress = asyncio.Event()  # set after each step that touched this session, and each reply sent
        # worker-side state
        self._owed = 0  # messages consumed, replies not made yet
        self._reported = 0  # finished utterances already sent in a result
        self._partial_key, self._partial = None, partial_reply("")
        self._arrivals: collections.deque = collections.deque()  # (when each message arrived, timed?), until its reply
        self._piece = max(1, int(FEED_PIECE_S * cfg.sample_rate))  # input samples fed per step at most

    def push(self, samples: np.ndarray) -> None:
        now, duration = time.monotonic(), samples.size / self.cfg.sample_rate
        self._arrivals.append((now, duration <= FEED_PIECE_S and self._real_time(now)))
        self._sent_until = max(self._sent_until, now) + duration
        self.inbox.append(samples)
        self.received_s += duration

    def finish(self) -> None:
        self.eof_sent = True
        now = time.monotonic()
        self._arrivals.append((now, self._real_time(now)))
        self.inbox.append(EOF)

    def reset(self) -> None:
        """``{"reset" : 1}``: the final result of the audio so far, then a fresh stream."""
        if self._restart is None:
            raise ProtocolError("reset is not served on this stream")
        now = time.monotonic()
        self._arrivals.append((now, self._real_time(now)))
        self.inbox.append(RESET)

    def waited(self, now: float) -> float:
        """How long the oldest unanswered message has waited, if it is timed (else 0)."""
        try:
            t, timed = self._arrivals[0]
        except IndexError:  # none (or the worker just answered it)
            return 0.0
        return now - t if timed and not self.closed else 0.0

    def _real_time(self, now: float) -> bool:
        """The client has sent no more than real time allows (a pause earns no credit): a
        message's reply delay is then the server's, and is timed (for /metrics and admission).
        A client that sends faster than real time, or in long messages, waits for its own
        audio, which times nothing."""
        return self._sent_until - now <= self._ahead_s

    @property
    def backlog_s(self) -> float:
        """Audio received but not yet decoded, seconds (read on the event loop)."""
        return self.received_s - self.decoded_s

    # worker thread ---------------------------------------------------------------------------
    def _feed(self, replies: list) -> float:
        """Move inbox messages into the stream, one at a time, while the stream needs no model
        call; a message that leaves nothing to decode is answered at once. Returns seconds fed."""
        fed = 0.0
        while self.inbox and not self.stream.ready and not self.stream.done:
            item = self.inbox[0]
            if item is EOF or item is RESET:
                self.inbox.popleft()
                self._owed += 1
                self._resetting = item is RESET
                self.stream.input_finished()
            else:
                if item.size > self._piece:  # a long message: this piece now, the rest at later steps
                    item, self.inbox[0] = item[: self._piece], item[self._piece :]
                else:
                    self.inbox.popleft()
                    self._owed += 1  # the message is consumed with its last piece
                self.stream.accept_waveform(self.cfg.sample_rate, item)
                fed += item.size / self.cfg.sample_rate
                if self._owed == 0:
                    break  # one piece of a long message per step
            replies += self._replies()
        return fed

    def _replies(self) -> list:
        """The replies owed (one per message consumed), once the stream is decoded as far as it
        can be: a result if utterances finished meanwhile (several merged into one), else the
        partial text; the eof's is the final result, followed by None (the end)."""
        stream = self.stream
        if not self._owed or stream.ready:
            return []
        new = stream.utterances[self._reported :]  # finished utterances (what get_result lists first)
        self._reported = len(stream.utterances)
        if stream.done:
            partial = partial_reply("")
        else:  # the current utterance, as get_result gives it; its text changes only with its tokens
            dec = stream.decoder
            key = (dec.utterance_start, len(dec.tokens))
            if key != self._partial_key:
                self._partial_key, self._partial = key, partial_reply(dec.utterance(final=False).text)
            partial = self._partial
        out = [partial] * self._owed
        now = time.monotonic()
        delays = self.loop.stats.delays if self.loop is not None else None
        for _ in range(self._owed):
            arrived, timed = self._arrivals.popleft()
            if delays is not None and timed:
                delays.append((now, now - arrived))
        if new and (self.cfg.itn or self.cfg.punctuate):  # final results readable; partials stay as spoken
            new = self._readable(new)
        if stream.done:  # the eof (or a reset) is the last message: its reply is the final result
            out[-1] = result_reply(new, self.cfg.words, self.cfg.max_alternatives, self._offset_s)
            if not self._resetting:
                out.append(None)
        elif new:
            out[0] = result_reply(new, self.cfg.words, self.cfg.max_alternatives, self._offset_s)
        if self.warning:
            out[0], self.warning = with_warning(out[0], self.warning), ""
        self._owed = 0
        if stream.done and self._resetting:
            self._start_over()
        return out

    def _readable(self, utterances: list) -> list:
        """The stream's finished utterances with ``itn`` / ``punctuate`` applied (asr.itn.TextOptions)."""
        cfg = self.cfg
        opts = TextOptions(itn=cfg.itn, punctuate=cfg.punctuate, punctuation_model=cfg.punctuation_model if cfg.punctuate else None)
        return [opts.apply(u) for u in utterances]

    def _start_over(self) -> None:
        """After a reset: a fresh stream (decoder, states, endpoint rules), its times after the old one's audio."""
        old = self.stream
        self._offset_s += old.duration_s
        self.stream = self._restart()
        self._resetting = False
        self._reported = 0
        self._partial_key, self._partial = None, partial_reply("")

    @property
    def decoded_until_s(self) -> float:
        """Audio decoded so far, seconds from the connection's start (worker side)."""
        return self._offset_s + self.stream.decoder.num_frames * self._shift


@dataclass
class LoopStats:
    """Counters of the decoding loop, read by /metrics."""

    steps: int = 0
    batched_streams: int = 0  # sum of batch sizes
    busy_s: float = 0.0  # time in steps (feature extraction, model, replies)
    audio_s: float = 0.0  # audio fed
    recent: collections.deque = field(default_factory=lambda: collections.deque(maxlen=2000))  # (t, step_s, batch, audio_s)
    # (t, message arrival -> reply made, s) of streams keeping up
    delays: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20000))
    started: float = field(default_factory=time.monotonic)
    step_started: Optional[float] = None  # the step in progress, if any

    def load(self, window_s: float, now: Optional[float] = None) -> tuple[float, float, float]:
        """(seconds spent in steps, seconds of audio fed, seconds observed) over the last
        ``window_s`` seconds; the step in progress counts as busy (a saturated loop shows at once)."""
        now = time.monotonic() if now is None else now
        span = max(0.0, min(window_s, now - self.started))
        since = now - span
        rows = [r for r in list(self.recent) if r[0] + r[1] > since]
        busy = sum(min(dt, t + dt - since) for t, dt, *_ in rows)
        audio = sum(r[3] for r in rows)
        if self.step_started is not None:
            busy += now - max(self.step_started, since)
        return min(busy, span), audio, span

    def recent_delays(self, window_s: float, now: Optional[float] = None) -> list:
        """The reply delays (message arrival -> reply made, s) of the last ``window_s`` seconds."""
        now = time.monotonic() if now is None else now
        out = []
        for t, d in reversed(list(self.delays)):
            if now - t > window_s:
                break
            out.append(d)
        return out

    @classmethod
    def merged(cls, parts: list) -> "LoopStats":
        """The stats of several loops as one."""
        if len(parts) == 1:
            return parts[0]
        out = cls(steps=sum(p.steps for p in parts), batched_streams=sum(p.batched_streams for p in parts),
                  busy_s=sum(p.busy_s for p in parts), audio_s=sum(p.audio_s for p in parts))
        out.recent.extend(sorted((r for p in parts for r in p.recent), key=lambda r: r[0])[-out.recent.maxlen:])
        out.delays.extend(sorted((r for p in parts for r in list(p.delays)), key=lambda r: r[0])[-out.delays.maxlen:])
        out.loops = len(parts)
        return out

    def summary(self, window_s: float = 10.0) -> dict:
        now = time.monotonic()
        rows = [r for r in self.recent if now - r[0] <= window_s]
        step_ms = np.array([r[1] * 1000 for r in rows]) if rows else np.zeros(0)
        delay_ms = np.array([d * 1000 for t, d in list(self.delays) if now - t <= window_s])
        busy = float(step_ms.sum() / 1000)
        audio = sum(r[3] for r in rows)
        loops = getattr(self, "loops", 1)
        return {
            "loops": loops,
            "steps": self.steps,
            "mean_batch": round(self.batched_streams / self.steps, 2) if self.steps else 0.0,
            "rtf": round(self.busy_s / self.audio_s, 4) if self.audio_s else None,
            f"last_{window_s:g}s": {
                "steps": len(rows),
                "step_ms_p50": round(float(np.percentile(step_ms, 50)), 2) if rows else None,
                "step_ms_p95": round(float(np.percentile(step_ms, 95)), 2) if rows else None,
                "mean_batch": round(sum(r[2] for r in rows) / len(rows), 2) if rows else 0.0,
                "busy_fraction": round(busy / window_s / loops, 3),  # of each loop's time, on average
                "replies": int(delay_ms.size),  # message arrival -> its reply made, in the server
                "reply_ms_p50": round(float(np.percentile(delay_ms, 50)), 2) if delay_ms.size else None,
                "reply_ms_p95": round(float(np.percentile(delay_ms, 95)), 2) if delay_ms.size else None,
                "reply_ms_max": round(float(delay_ms.max()), 2) if delay_ms.size else None,
                "rtf": round(busy / audio, 4) if audio else None,
            },
        }


class DecodeLoop:
    """The one task that decodes every session. It repeatedly

    1. waits until some session has new input (or still has a ready window), then at most
       ``max_wait_ms`` more so that streams arriving together share the call;
    2. runs one *step* in its worker thread: feed each session's inbox into its stream
       (resampling and log-mel), message by message until the stream has a window to decode,
       then ONE batched ``decode_streams`` call for up to ``max_batch`` ready streams (the
       longest-waiting first), then build the replies of every message whose audio is decoded
       as far as it can be;
    3. hands the replies back to the sessions' outboxes (their senders write them to the sockets).

    The work of one step is bounded whatever the clients send: a message is fed in pieces of at
    most :data:`FEED_PIECE_S` seconds, one piece per stream and step (so a long message cannot
    hold the others up), and one window per stream is decoded. A step that raises fails only
    the streams that fail alone: the batch is retried one stream at a time, and the others go on
    (:meth:`health` tells what happened)."""

    def __init__(self, recognizer: OnlineRecognizer, max_batch: int = 256, max_wait_ms: float = 5.0):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.rec = recognizer
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_ms) / 1000
        self.sessions: list[Session] = []
        self.stats = LoopStats()
        self._wake = asyncio.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="asr-decode")
        self._task: Optional[asyncio.Task] = None
        # failures: streams ended by an error while decoding them, and whether decoding worked since
        self.failed_streams = 0
        self.failed_steps = 0
        self.last_failure: Optional[tuple[float, str]] = None  # (time.monotonic(), error)
        self.ok_steps_since_failure = 0  # steps that decoded some stream after the last failure

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="asr-decode-loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._pool.shutdown(wait=True)

    def add(self, session: Session) -> None:
        session.loop = self
        self.sessions.append(session)

    def remove(self, session: Session) -> None:
        session.closed = True
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pending = False  # some stream still has a ready window after the last step
        while True:
            if not pending:
                await self._wake.wait()
                if self.max_wait_s:
                    await asyncio.sleep(self.max_wait_s)
            self._wake.clear()
            self.sessions = [s for s in self.sessions if not s.closed]
            work = [s for s in self.sessions if s.inbox or s.waiting_since is not None]
            if not work:
                pending = False
                continue
            t0 = self.stats.step_started = time.monotonic()
            try:
                out, pending, fed, batch, failed = await loop.run_in_executor(self._pool, self._step, work)
            except Exception as exc:  # a bug outside the per-stream isolation: fail the sessions involved
                log.exception("decoding step failed")
                out, pending, fed, batch, failed = [], False, 0.0, 0, [(s, exc) for s in work]
            dt = time.monotonic() - t0
            st = self.stats
            st.step_started = None
            st.steps += 1
            st.batched_streams += batch
            st.busy_s += dt
            st.audio_s += fed
            st.recent.append((t0, dt, batch, fed))
            for s, replies in out:
                if not s.closed:
                    for r in replies:
                        s.outbox.put_nowait(r)
            self._record(failed, decoded=batch)
            for s, exc in failed:
                s.closed = True
                s.outbox.put_nowait(RuntimeError(f"internal error while decoding: {type(exc).__name__}: {exc}"))
            for s in work:
                s.progress.set()

    def _record(self, failed: list, decoded: int) -> None:
        if failed:
            self.failed_steps += 1
            self.failed_streams += len(failed)
            exc = failed[-1][1]
            self.last_failure = (time.monotonic(), f"{type(exc).__name__}: {exc}"[:300])
            self.ok_steps_since_failure = 1 if decoded > 0 else 0
        elif decoded > 0 and self.last_failure is not None:
            self.ok_steps_since_failure += 1

    def health(self, recovery_s: float) -> tuple[str, dict]:
        """("ok" | "recovered" | "degraded" | "error", details): "degraded" while no stream has
        been decoded since the last failure, "recovered" for ``recovery_s`` after a failure once
        decoding works again, then "ok"; "error" if the loop itself has stopped."""
        details = {"failed_streams": self.failed_streams, "failed_steps": self.failed_steps}
        if self._task is None or self._task.done():
            return "error", details
        if self.last_failure is None:
            return "ok", details
        t, error = self.last_failure
        age = time.monotonic() - t
        details.update(last_error=error, last_error_age_s=round(age, 1))
        if self.ok_steps_since_failure == 0:
            return "degraded", details
        return ("recovered" if age < recovery_s else "ok"), details

    def _step(self, work: list[Session]):
        """Worker thread: feed, one batched model call, replies. A stream whose feeding or
        decoding raises is left out (returned in ``failed``), the others go on."""
        fed = 0.0
        now = time.monotonic()
        replies = {id(s): [] for s in work}
        failed: list = []
        for s in work:
            try:
                fed += s._feed(replies[id(s)])
            except Exception as exc:
                log.exception("stream %s: feeding its audio failed", s.name)
                failed.append((s, exc))
                continue
            if s.waiting_since is None and s.stream.ready:
                s.waiting_since = now
        bad = {id(s) for s, _ in failed}
        ready = sorted((s for s in work if s.waiting_since is not None and id(s) not in bad),
                       key=lambda s: s.waiting_since)[: self.max_batch]
        if ready:
            for s, exc in self._decode(ready):
                failed.append((s, exc))
                bad.add(id(s))
                ready.remove(s)
        stepped = {id(s) for s in ready}  # decoded this step (the failed ones left out)
        # back of the queue: behind every stream that waited in this step, even those that only
        # became ready at ``now`` (a tie would put a stepped stream first again)
        requeue = max(time.monotonic(), math.nextafter(now, math.inf))
        out, pending = [], False
        for s in work:
            if id(s) in bad:
                continue
            s.decoded_s = s.decoded_until_s
            if s.stream.ready:
                if id(s) in stepped or s.waiting_since is None:
                    s.waiting_since = requeue
                pending = True
            else:
                s.waiting_since = None
                replies[id(s)] += s._replies()
                pending = pending or bool(s.inbox)
            if replies[id(s)]:
                out.append((s, replies[id(s)]))
        return out, pending, fed, len(ready), failed

    def _decode(self, ready: list[Session]) -> list:
        """One batched model call for ``ready``; if it raises, each stream it left untouched is
        retried alone, so only the streams that fail by themselves fail. Returns (session, error)
        of those."""
        before = [s.stream.num_steps for s in ready]
        try:
            self.rec.decode_streams([s.stream for s in ready])
            return []
        except Exception as exc:
            if len(ready) == 1:
                log.exception("stream %s: decoding failed", ready[0].name)
                return [(ready[0], exc)]
            log.warning("a batch of %d streams failed (%s: %s); retrying them one by one", len(ready),
                        type(exc).__name__, exc)
            batch_error = exc
        failed = []
        advanced = [s for s, n in zip(ready, before) if s.stream.num_steps != n]
        if advanced:  # the error came from taking the outputs; the last stream it reached is the one that raised
            failed.append((advanced[-1], batch_error))
        for s, n in zip(ready, before):
            if s.stream.num_steps != n:  # advanced before the error: not to be run again
                continue
            try:
                self.rec.decode_streams([s.stream])
            except Exception as exc:
                log.exception("stream %s: decoding failed", s.name)
                failed.append((s, exc))
        return failed
