"""The aiohttp application of ``asr serve``: the websocket endpoint, the web page, /health and
/metrics, in one process. With an offline graph only (no streaming one), it serves the OpenAI
audio API, the page, /health and /metrics, and refuses websocket streams, saying why.

Each websocket connection gets a handler task (receives, validates, pushes audio into its
:class:`~asr.server.loop.Session`) and a sender task (writes the replies the decoding loop
made). Limits (:class:`ServerConfig`): concurrent streams, the measured decoding load a new
stream is admitted by (:mod:`asr.server.admission`), message size, sample rates, session length,
idle time, also while the socket is not being read; a client that breaks the protocol gets
``{"error": reason}`` and its connection closes, and nothing else changes for the other
streams. Every bound and what its refusal says: ``docs/serving_bounds.md``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import os
import pathlib
import resource
import select
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from asr.itn import TextOptions
from asr.runtime.offline import OfflineRecognizer
from asr.runtime.online import OnlineRecognizer
from asr.server.admission import Admission, LoadSample
from asr.server.loop import DecodeLoop, LoopStats, Session, open_stream
from asr.server.openai_api import ApiConfig, OpenAIApi
from asr.server.protocol import MAX_RATE, MIN_RATE, ProtocolError, StreamConfig, error_reply, parse_audio, parse_config, parse_text

__all__ = ["ServerConfig", "build_app", "run_server", "STATIC_DIR", "SERVER_KEY"]

log = logging.getLogger("asr.server")
STATIC_DIR = pathlib.Path(__file__).with_name("static")
SERVER_KEY = web.AppKey("server", object)  # app[SERVER_KEY]: the Server (state, counters, decoding loop)

# websocket close codes (RFC 6455 and the IANA registry)
CLOSE_NORMAL = WSCloseCode.OK  # 1000
CLOSE_GOING_AWAY = WSCloseCode.GOING_AWAY  # 1001: server shutting down
CLOSE_POLICY = WSCloseCode.POLICY_VIOLATION  # 1008: protocol error, idle, session limit
CLOSE_TOO_BIG = WSCloseCode.MESSAGE_TOO_BIG  # 1009
CLOSE_INTERNAL = WSCloseCode.INTERNAL_ERROR  # 1011
CLOSE_TRY_LATER = WSCloseCode.TRY_AGAIN_LATER  # 1013: server full

POLL_S = 0.2  # how often a connection that is not being read checks that its client is still there
CLOSE_TIMEOUT_S = 2.0  # how long closing waits for the client's close frame, or for a reply to go out
ADMISSION_WINDOW_S = 5.0  # the decoding load a new stream is admitted by is measured over this many seconds
ADMISSION_CACHE_S = 0.2  # measured at most this often (a burst of connections reuses it)
LAG_TICK_S = 0.05  # how often the event loop's lateness is measured


@dataclass(frozen=True)
class ServerConfig:
    max_streams: int = 200  # concurrent websocket streams; one more is refused
    max_message_bytes: int = 1 << 20  # one websocket message (1 MiB: 32 s of 16 kHz int16)
    max_session_s: float = 3600.0  # wall-clock seconds per connection
    idle_timeout_s: float = 30.0  # seconds without a message
    max_backlog_s: float = 2.0  # undecoded audio beyond the model's window before reading pauses
    max_outbox: int = 1000  # replies the client has not read before reading pauses
    sample_rate: Optional[int] = None  # default rate of a stream without config (None: the model's)
    max_batch: int = 256  # streams per model call
    max_wait_ms: float = 20.0  # after new input, wait this long for more streams before a step
    decode_threads: int = 1  # decoding loops, each with its own worker thread and share of the streams
    recovery_s: float = 60.0  # /health says "recovered" this long after a decoding failure, then "ok"
    max_load: float = 0.7  # admit a stream only while the decoding loops would stay this busy at most (asr.server.admission)
    workers: int = 1  # server processes sharing the port (asr serve --workers); each has its own loops and admission
    worker: int = 0  # which of them this process is (0-based)

    def __post_init__(self):
        bad = [f"{k}={v!r}" for k, v in self.__dict__.items()
               if k not in ("sample_rate", "max_wait_ms", "worker") and not (isinstance(v, (int, float)) and v > 0)]
        if not (isinstance(self.worker, int) and 0 <= self.worker < self.workers):
            bad.append(f"worker={self.worker!r} (0..workers-1)")
        if self.sample_rate is not None and not (isinstance(self.sample_rate, int) and self.sample_rate > 0):
            bad.append(f"sample_rate={self.sample_rate!r}")
        if not (isinstance(self.max_wait_ms, (int, float)) and self.max_wait_ms >= 0):
            bad.append(f"max_wait_ms={self.max_wait_ms!r}")
        if not (isinstance(self.max_load, (int, float)) and 0 < self.max_load <= 1):
            bad.append(f"max_load={self.max_load!r} (a fraction in (0, 1])")
        if bad:
            raise ValueError(f"invalid ServerConfig: {', '.join(bad)} (limits must be positive)")


NO_STREAMING = ("live streaming needs a streaming graph (asr export --checkpoint best.pt --streaming --out stream.onnx; "
                "asr serve --model stream.onnx); this server has an offline graph, {model}, which transcribes files: "
                "POST /v1/audio/transcriptions")


class Server:
    """State shared by the handlers: the recognizer, the decoding loop, counters. ``recognizer``
    None: no streaming graph (websocket streams are refused), ``api_recognizer`` serves /v1."""

    def __init__(self, recognizer: Optional[OnlineRecognizer], config: ServerConfig, model_name: str = "",
                 api_recognizer: Optional[OfflineRecognizer] = None, text: TextOptions = TextOptions()):
        if recognizer is None and api_recognizer is None:
            raise ValueError("the server needs a streaming graph, an offline graph for the API, or both")
        self.rec, self.cfg = recognizer, config
        self.api_rec = api_recognizer
        info = self.model_info = recognizer.info if recognizer is not None else api_recognizer.backend.info
        self.model_name = os.path.basename(model_name or info.path)  # the file's name, never the path it was given as
        endpoint = recognizer.endpoint if recognizer is not None else None
        self.text = text  # readable final results by default (--itn, --punctuate); a stream's config or a request may change it
        self.defaults = StreamConfig(sample_rate=config.sample_rate or info.sample_rate, endpoint=endpoint, itn=text.itn,
                                     punctuate=text.punctuate, punctuation_model=text.punctuation_model)
        self.rate_range = (min(MIN_RATE, info.sample_rate), MAX_RATE)  # what a stream may declare
        if not self.rate_range[0] <= self.defaults.sample_rate <= self.rate_range[1]:
            raise ValueError(f"invalid ServerConfig: sample_rate={self.defaults.sample_rate} is outside "
                             f"{self.rate_range[0]}..{self.rate_range[1]} Hz")
        self.window_s = info.window_frames * info.frontend.hop_length / info.sample_rate if info.streaming else 0.0
        self.loops: list[DecodeLoop] = []
        self.admission = Admission(max_load=config.max_load)
        self.lags: collections.deque = collections.deque(maxlen=1000)  # (t, event loop lateness, s)
        self.joins: collections.deque = collections.deque()  # when streams were admitted, the last ADMISSION_WINDOW_S
        self.live = 0
        self.connections: set = set()  # the live Connection objects
        self.api: Optional[OpenAIApi] = None  # the /v1 routes (asr.server.openai_api), when served
        self.counts = {"connections": 0, "refused": 0, "refused_busy": 0, "finished": 0, "errors": 0, "idle_timeouts": 0,
                       "session_limits": 0, "disconnects": 0, "messages": 0, "audio_s": 0.0}
        self.started = time.monotonic()

    async def start(self, app) -> None:
        # one recognizer per loop (its own decoders), one shared model; none without a streaming graph
        for i in range(self.cfg.decode_threads if self.rec is not None else 0):
            rec = self.rec if i == 0 else OnlineRecognizer(self.rec.model, endpoint=self.rec.endpoint,
                                                           decoding=self.rec.decoder.options)
            loop = DecodeLoop(rec, self.cfg.max_batch, self.cfg.max_wait_ms)
            loop.start()
            self.loops.append(loop)
        self._lag_task = asyncio.get_running_loop().create_task(self._watch_lag(), name="asr-loop-lag")

    async def _watch_lag(self) -> None:
        """How late the event loop runs what is due (sockets wait that long to be read): a
        timer every LAG_TICK_S, its lateness recorded."""
        while True:
            t = time.monotonic()
            await asyncio.sleep(LAG_TICK_S)
            now = time.monotonic()
            self.lags.append((now, max(0.0, now - t - LAG_TICK_S)))

    async def shutdown(self, app) -> None:
        """Server stopping (Ctrl-C): tell each client why and close its connection (1001)."""
        await asyncio.gather(*(c.close_for_shutdown() for c in list(self.connections)), return_exceptions=True)

    async def stop(self, app) -> None:
        if getattr(self, "_lag_task", None) is not None:
            self._lag_task.cancel()
        for loop in self.loops:
            await loop.stop()

    def load_sample(self) -> LoadSample:
        """The decoding loops' measured load (for :class:`Admission`), the live count now."""
        now = time.monotonic()
        cached = getattr(self, "_load_cache", None)
        if cached is None or now - cached[0] > ADMISSION_CACHE_S:
            busy, audio, span, delays = 0.0, 0.0, ADMISSION_WINDOW_S, []
            for loop in self.loops:
                b, a, s = loop.stats.load(ADMISSION_WINDOW_S, now)
                busy, audio, span = busy + b, audio + a, min(span, s)
                delays += loop.stats.recent_delays(ADMISSION_WINDOW_S, now)
            p95 = float(np.percentile(delays, 95)) if len(delays) >= 20 else None
            lags = [d for t, d in list(self.lags) if now - t <= ADMISSION_WINDOW_S]
            lag = float(np.percentile(lags, 95)) if lags else None
            waited = max((s.waited(now) for loop in self.loops for s in list(loop.sessions)), default=0.0)
            self._load_cache = cached = (now, LoadSample(busy_s=busy, window_s=span, live=0, loops=max(1, len(self.loops)),
                                                         audio_s=audio, reply_p95_s=p95, loop_lag_s=lag,
                                                         oldest_pending_s=waited))
        while self.joins and now - self.joins[0] > ADMISSION_WINDOW_S:
            self.joins.popleft()
        return dataclasses.replace(cached[1], live=self.live, joined=len(self.joins))

    def pick_loop(self) -> DecodeLoop:
        """The loop that decodes a new stream: the one with the fewest streams."""
        return min(self.loops, key=lambda loop: len(loop.sessions))

    # HTTP ---------------------------------------------------------------------------------
    async def index(self, request: web.Request):
        if request.headers.get("Upgrade", "").lower() == "websocket":  # Vosk clients connect to "/"
            return await self.websocket(request)
        return web.FileResponse(STATIC_DIR / "index.html")

    def health_dict(self) -> tuple[dict, int]:
        """/health: "ok"; "recovered" for ``recovery_s`` after a stream failed while decoding,
        once other streams decode again (200); "degraded" while nothing has decoded since a
        failure (503); "error" when a decoding loop has stopped (500). With the failure counts."""
        if self.rec is None:  # nothing streams: the API alone
            return {"status": "ok", "live_streams": 0, "streaming": False, **self._worker()}, 200
        if not self.loops:
            return {"status": "error", "live_streams": self.live}, 500
        parts = [loop.health(self.cfg.recovery_s) for loop in self.loops]
        order = ["ok", "recovered", "degraded", "error"]
        status = max((p[0] for p in parts), key=order.index)
        body = {"status": status, "live_streams": self.live,
                "failed_streams": sum(d["failed_streams"] for _, d in parts),
                "failed_steps": sum(d["failed_steps"] for _, d in parts)}
        recent = [d for _, d in parts if "last_error" in d]
        if recent:
            last = min(recent, key=lambda d: d["last_error_age_s"])
            body.update(last_error=last["last_error"], last_error_age_s=last["last_error_age_s"])
        body.update(self._worker())
        return body, {"ok": 200, "recovered": 200, "degraded": 503, "error": 500}[status]

    def _worker(self) -> dict:
        """Which process answered, when several share the port (each reports its own streams)."""
        if self.cfg.workers == 1:
            return {}
        return {"worker": {"index": self.cfg.worker, "of": self.cfg.workers, "pid": os.getpid()}}

    async def health(self, request: web.Request):
        body, status = self.health_dict()
        return web.json_response(body, status=status)

    async def info(self, request: web.Request):
        """/info: the model (its file name, its card or null, vocabulary, rate, latency = chunk +
        look-ahead: :meth:`asr.runtime.schema.ModelInfo.describe`) and the limits; the page reads it."""
        d = self.model_info.describe()
        api = self.api.rec.backend.info if self.api is not None else None
        return web.json_response({"model": self.model_name, "streaming": self.rec is not None,
                                  "api_model": os.path.basename(api.path) if api is not None else None,
                                  "card": d["card"], "vocabulary": d["vocabulary"],
                                  "sample_rate": d["sample_rate"], "default_sample_rate": self.defaults.sample_rate,
                                  "min_sample_rate": self.rate_range[0], "max_sample_rate": self.rate_range[1],
                                  "chunk_s": d["chunk_s"], "right_context_s": d["right_context_s"], "latency_s": d["latency_s"],
                                  "max_streams": self.cfg.max_streams, "max_message_bytes": self.cfg.max_message_bytes,
                                  "idle_timeout_s": self.cfg.idle_timeout_s, "max_session_s": self.cfg.max_session_s})

    async def favicon(self, request: web.Request):
        return web.FileResponse(STATIC_DIR / "favicon.svg", headers={"Content-Type": "image/svg+xml"})

    def metrics_dict(self) -> dict:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "uptime_s": round(time.monotonic() - self.started, 1),
            "live_streams": self.live,
            "max_streams": self.cfg.max_streams,
            **{k: (round(v, 2) if isinstance(v, float) else v) for k, v in self.counts.items()},
            "decode_loop": LoopStats.merged([loop.stats for loop in self.loops]).summary() if self.loops else None,
            "rss_mb": round(_rss_bytes() / 2**20, 1),
            "max_rss_mb": round(ru.ru_maxrss / 1024, 1),
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
            "open_fds": _open_fds(),
            **({"api": self.api.metrics()} if self.api is not None else {}),
            **self._worker(),
        }

    async def metrics(self, request: web.Request):
        return web.json_response(self.metrics_dict())

    # websocket ----------------------------------------------------------------------------
    async def websocket(self, request: web.Request):
        cfg = self.cfg
        ws = _WebSocket(cfg.max_message_bytes, compress=False, autoping=True, timeout=CLOSE_TIMEOUT_S)
        await ws.prepare(request)
        self.counts["connections"] += 1
        if self.rec is None:
            self.counts["refused"] += 1
            await ws.send_str(error_reply(NO_STREAMING.format(model=self.model_name)))
            await ws.close(code=CLOSE_POLICY, message=b"no streaming graph")
            return ws
        if self.live >= cfg.max_streams:
            self.counts["refused"] += 1
            reason = f"server full: {cfg.max_streams} streams are live (--max-streams); try again later"
            await ws.send_str(error_reply(reason))
            await ws.close(code=CLOSE_TRY_LATER, message=b"server full")
            return ws
        why = self.admission.refusal(self.load_sample())
        if why is not None:
            self.counts["refused"] += 1
            self.counts["refused_busy"] += 1
            await ws.send_str(error_reply(f"server busy: {why}; try again later"))
            await ws.close(code=CLOSE_TRY_LATER, message=b"server busy")
            return ws
        self.joins.append(time.monotonic())
        self.live += 1
        conn = Connection(self, ws, request)
        self.connections.add(conn)
        try:
            await conn.run()
        finally:
            self.live -= 1
            self.connections.discard(conn)
        return ws


class _WebSocket(web.WebSocketResponse):
    """A message of up to ``limit`` bytes is accepted (aiohttp refuses one of exactly its
    ``max_msg_size``, hence ``limit + 1``). aiohttp closes a connection whose message is over
    it itself: code 1009, no reason, and at once, so a client still sending gets a TCP reset
    that can swallow what was sent before it. Here: the protocol's error message, the close
    frame with the reason, then up to a second for the client to close its side (its data
    read and dropped meanwhile)."""

    def __init__(self, limit: int, **kwargs):
        super().__init__(max_msg_size=limit + 1, **kwargs)
        self.limit = limit

    async def close(self, *, code: int = CLOSE_NORMAL, message: bytes = b"", drain: bool = True) -> bool:
        if code != CLOSE_TOO_BIG or message or self.closed or self._writer is None:
            return await super().close(code=code, message=message, drain=drain)
        reason = too_big_reason(self.limit)
        transport = self._req.transport if self._req is not None else None
        try:
            await self.send_str(error_reply(reason))
            await self._writer.close(code, reason.encode())
        except (ConnectionError, RuntimeError):
            pass
        self._set_closed()
        for _ in range(100):
            if transport is None or transport.is_closing():
                break
            await asyncio.sleep(0.01)
        self._set_code_close_transport(code)
        return True


class Connection:
    """One websocket stream: a receive loop (this task) and a sender task.

    While the receive loop does not read the socket (backpressure: too much undecoded audio or
    too many unsent replies; or waiting for the final result), it still notices within
    :data:`POLL_S` a client that has left (close frame, reset, hang-up), and closes the
    connection when nothing has moved (no decoding step, no reply written) for the idle
    timeout, so a slot is never held by a gone or stuck client."""

    def __init__(self, server: Server, ws: web.WebSocketResponse, request: web.Request):
        self.server, self.ws, self.request = server, ws, request
        self.peer = request.remote or "?"
        self.cfg = server.defaults
        self.session: Optional[Session] = None
        self.sender: Optional[asyncio.Task] = None
        self.sending = False  # the sender is writing a reply (blocked there if the client does not read)
        self.t0 = time.monotonic()

    async def run(self) -> None:
        srv = self.server
        try:
            await self._receive()
        except ProtocolError as exc:
            srv.counts["errors"] += 1
            log.info("%s: protocol error: %s", self.peer, exc)
            await self._fail(str(exc), CLOSE_POLICY)
        except asyncio.CancelledError:
            raise
        finally:
            if self.session is not None:
                self.session.loop.remove(self.session)
            if self.sender is not None and not self.sender.done():
                self.sender.cancel()
        if not self.ws.closed:
            await self._close(CLOSE_NORMAL, b"")

    async def _fail(self, reason: str, code: int) -> None:
        if self.sender is not None and self.sender is not asyncio.current_task():
            self.sender.cancel()
        if not self.ws.closed:
            try:
                await asyncio.wait_for(self.ws.send_str(error_reply(reason)), CLOSE_TIMEOUT_S)
            except (ConnectionError, RuntimeError, asyncio.TimeoutError):
                self._abort()
                return
            await self._close(code, reason[:120].encode())

    async def _close(self, code: int, message: bytes) -> None:
        """The close handshake, bounded: a client that reads nothing is cut off."""
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=message), CLOSE_TIMEOUT_S + 1)
        except (ConnectionError, RuntimeError, asyncio.TimeoutError):
            self._abort()

    def _abort(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def close_for_shutdown(self) -> None:
        await self._fail("the server is shutting down", CLOSE_GOING_AWAY)

    def _deadline(self) -> float:
        return self.t0 + self.server.cfg.max_session_s

    def _peer_gone(self) -> bool:
        """The client has left though the socket is not being read: the connection is lost, a
        close frame (or a read error) is queued unread, or the socket reports a hang-up."""
        transport = self.request.transport
        if transport is None or transport.is_closing():
            return True
        queued = getattr(getattr(self.ws, "_reader", None), "_buffer", ())  # aiohttp's unread messages
        if any(getattr(item[0] if isinstance(item, tuple) else item, "type", None) in _GONE for item in list(queued)):
            return True
        return _hung_up(transport)

    async def _wait_until(self, condition, deadline: Optional[float] = None) -> Optional[str]:
        """Wait, without reading the socket, until ``condition()`` holds: None then; else why
        the wait ended: "closed" (the client left), "limit" (``deadline``, default the session
        limit), "stalled" (no progress for the idle timeout)."""
        s, idle = self.session, self.server.cfg.idle_timeout_s
        deadline = self._deadline() if deadline is None else deadline
        last = time.monotonic()
        while not condition():
            if self._peer_gone():
                return "closed"
            now = time.monotonic()
            if now >= deadline:
                return "limit"
            if now - last >= idle:
                return "stalled"
            s.progress.clear()
            try:
                await asyncio.wait_for(s.progress.wait(), timeout=min(POLL_S, deadline - now, idle - (now - last)))
                last = time.monotonic()
            except asyncio.TimeoutError:
                pass
        return None

    async def _stop(self, why: str) -> str:
        """The end of a connection whose wait (:meth:`_wait_until`) did not succeed."""
        srv = self.server
        if why == "limit":
            return await self._session_limit()
        if why == "closed":
            if self.session is not None and not self.session.final_sent:
                srv.counts["disconnects"] += 1
            return "closed"
        srv.counts["idle_timeouts"] += 1
        idle = srv.cfg.idle_timeout_s
        if self.sending or (self.session is not None and self.session.outbox.qsize() > srv.cfg.max_outbox):
            reason = f"no reply read for {idle:g} s (idle timeout): closing"
        else:
            reason = f"no decoding progress for {idle:g} s (idle timeout): closing"
        await self._fail(reason, CLOSE_POLICY)
        return "idle"

    async def _receive(self) -> Optional[str]:
        srv, scfg, ws = self.server, self.server.cfg, self.ws
        while True:
            why = await self._wait_for_room()
            if why is not None:
                return await self._stop(why)
            remaining = self._deadline() - time.monotonic()
            timeout = min(scfg.idle_timeout_s, remaining)
            if remaining <= 0:
                return await self._session_limit()
            try:
                msg = await ws.receive(timeout=timeout)
            except asyncio.TimeoutError:
                if time.monotonic() >= self._deadline():
                    return await self._session_limit()
                srv.counts["idle_timeouts"] += 1
                await self._fail(f"no message for {scfg.idle_timeout_s:g} s (idle timeout): closing", CLOSE_POLICY)
                return "idle"
            if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT) and _size(msg.data) > scfg.max_message_bytes:
                srv.counts["errors"] += 1  # aiohttp's own limit caught it already, unless its rule changed
                await self._fail(too_big_reason(scfg.max_message_bytes), CLOSE_TOO_BIG)
                return "error"
            if msg.type == WSMsgType.BINARY:
                srv.counts["messages"] += 1
                self._audio(msg.data)
            elif msg.type == WSMsgType.TEXT:
                srv.counts["messages"] += 1
                kind, body = parse_text(msg.data)
                if kind == "config":
                    if self.session is not None:
                        raise ProtocolError("config after audio: send the config once, before the first audio message")
                    self.cfg = parse_config(body, self.cfg, *srv.rate_range)
                elif kind == "reset":
                    s = self.session or self._start_session()
                    s.reset()
                    s.loop.wake()
                else:
                    return await self._eof()
            elif msg.type == WSMsgType.ERROR:  # aiohttp has closed it (too big: see _WebSocket.close)
                srv.counts["errors"] += 1
                log.info("%s: websocket error: %s", self.peer, ws.exception())
                await self._fail(f"websocket error: {ws.exception()}", CLOSE_POLICY)
                return "error"
            else:  # CLOSE, CLOSING, CLOSED: the client left
                return await self._stop("closed")

    async def _wait_for_room(self) -> Optional[str]:
        """Backpressure: stop reading while this stream's undecoded audio or unsent replies are
        too many. None when there is room (or the stream has ended), else why to stop."""
        s, scfg = self.session, self.server.cfg
        if s is None:
            return None
        limit_s = self.server.window_s + scfg.max_backlog_s
        return await self._wait_until(lambda: s.closed or self.sender.done()
                                      or (s.backlog_s <= limit_s and s.outbox.qsize() <= scfg.max_outbox))

    def _start_session(self) -> Session:
        srv = self.server
        loop = srv.pick_loop()
        stream, warning, again = open_stream(loop.rec, f"{self.peer}#{srv.counts['connections']}", self.cfg)
        self.session = Session(stream, self.cfg, srv.rec.info.frame_shift_s, srv.window_s, warning, restart=again)
        loop.add(self.session)
        self.sender = asyncio.get_running_loop().create_task(self._send_replies())
        return self.session

    def _audio(self, data: bytes) -> None:
        samples = parse_audio(data, self.cfg)
        s = self.session or self._start_session()
        s.push(samples)
        self.server.counts["audio_s"] += samples.size / self.cfg.sample_rate
        s.loop.wake()

    async def _eof(self) -> str:
        s = self.session or self._start_session()
        s.finish()
        s.loop.wake()
        why = await self._wait_until(self.sender.done)
        if why is not None:
            return await self._stop(why)
        if s.final_sent:
            self.server.counts["finished"] += 1
        return "eof"

    async def _session_limit(self) -> str:
        srv = self.server
        srv.counts["session_limits"] += 1
        reason = f"session longer than {srv.cfg.max_session_s:g} s (--max-session-s): final result sent, closing"
        s = self.session
        if s is not None and not s.eof_sent:
            s.finish()
            s.loop.wake()
            why = await self._wait_until(self.sender.done, deadline=time.monotonic() + 10.0)
            if why == "closed":
                return "closed"
            if s.final_sent:
                srv.counts["finished"] += 1
        await self._fail(reason, CLOSE_POLICY)
        return "limit"

    async def _send_replies(self) -> None:
        s, ws = self.session, self.ws
        while True:
            reply = await s.outbox.get()
            if reply is None:
                s.final_sent = True
                return
            if isinstance(reply, BaseException):
                await self._fail(str(reply), CLOSE_INTERNAL)
                return
            self.sending = True
            try:
                await ws.send_str(reply)
            except (ConnectionError, RuntimeError):
                return
            finally:
                self.sending = False
            s.progress.set()


_GONE = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)
_HANG_UP = getattr(select, "POLLRDHUP", 0) | getattr(select, "POLLHUP", 0) | getattr(select, "POLLERR", 0)


def _hung_up(transport) -> bool:
    """The peer has closed or reset the TCP connection, seen on the socket itself (Linux
    ``POLLRDHUP``), also while its unread data keeps asyncio from seeing the end."""
    sock = transport.get_extra_info("socket")
    if sock is None or not hasattr(select, "poll"):
        return False
    try:
        poller = select.poll()
        poller.register(sock.fileno(), _HANG_UP)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return False


def _size(data) -> int:
    """Bytes of a websocket message's payload."""
    return len(data) if isinstance(data, (bytes, bytearray)) else len(data.encode("utf-8", "surrogatepass"))


def too_big_reason(limit: int) -> str:
    return f"message larger than {limit} bytes (--max-message-bytes)"


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _open_fds() -> Optional[int]:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def build_app(recognizer: Optional[OnlineRecognizer], config: ServerConfig = ServerConfig(), model_name: str = "",
              api: Optional[ApiConfig] = ApiConfig(), api_recognizer: Optional[OfflineRecognizer] = None,
              text: TextOptions = TextOptions()) -> web.Application:
    """The aiohttp application: ``/`` (page, or websocket for Vosk clients), ``/ws``, ``/health``,
    ``/metrics``, ``/info``, ``/favicon.ico``, ``/static/...``, and unless ``api`` is None the OpenAI-compatible
    ``/v1/audio/transcriptions`` and ``/v1/models`` (:mod:`asr.server.openai_api`). ``recognizer``
    (a streaming graph) decodes the websocket streams, and the API's files too unless
    ``api_recognizer`` (an offline graph) is given; without ``recognizer``, streams are refused.
    ``text``: what final results get by default, in streams and in the API (ITN, punctuation)."""
    if recognizer is None and (api is None or api_recognizer is None):
        raise ValueError("without a streaming graph the server needs the API and an offline graph for it")
    server = Server(recognizer, config, model_name, api_recognizer, text)
    app = web.Application()
    app[SERVER_KEY] = server
    app.on_startup.append(server.start)
    app.on_shutdown.append(server.shutdown)
    app.on_cleanup.append(server.stop)
    if api is not None:
        server.api = OpenAIApi(api_recognizer if api_recognizer is not None else recognizer, api,
                               idle_timeout_s=config.idle_timeout_s, text=text)
        server.api.add_routes(app)
    app.add_routes([
        web.get("/", server.index),
        web.get("/ws", server.websocket),
        web.get("/health", server.health),
        web.get("/metrics", server.metrics),
        web.get("/info", server.info),
        web.get("/favicon.ico", server.favicon),  # what browsers ask for unasked: an SVG, as the page's <link rel=icon> says
        web.static("/static", STATIC_DIR),
    ])
    return app


def run_server(app: web.Application, host: str = "127.0.0.1", port: int = 2700, ssl_context=None,
               reuse_port: bool = False) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM). ``reuse_port``: bind with SO_REUSEPORT, so
    that several processes (``asr serve --workers``) share the port and the kernel spreads the
    connections among them."""
    scheme = "https" if ssl_context else "http"
    web.run_app(app, host=host, port=port, ssl_context=ssl_context, access_log=None, handle_signals=True,
                reuse_port=reuse_port or None,
                print=lambda *_: log.info("serving on %s://%s:%d (websocket: %s://%s:%d/ws, page: /)", scheme, host, port,
                                          "wss" if ssl_context else "ws", host, port))
