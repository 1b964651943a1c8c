"""A websocket client of ``asr serve`` (and of any Vosk-protocol server): one connection streams
one audio source (pieces of int16 PCM), paced in real time or as fast as the server takes it,
and collects the replies. ``asr client`` and the load and soak tests (:mod:`asr.server.loadtest`)
all use :func:`stream_pieces`.

The server answers each message with one reply, in order, so the i-th reply belongs to the i-th
message: the time between them is the latency a client sees (``StreamReport.latencies``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from dataclasses import dataclass, field
from typing import AsyncIterable, Callable, Iterable, Optional, Union

import numpy as np

__all__ = ["StreamReport", "stream_pieces", "stream_file", "file_pieces", "to_int16", "ServerError"]

EOF_MESSAGE = '{"eof" : 1}'  # exactly as Vosk's clients write it


class ServerError(RuntimeError):
    """The server sent ``{"error": ...}`` or closed the connection without a final result."""


def result_text(reply: dict) -> str:
    """The text of a result reply: its ``text``, or with ``max_alternatives`` (Vosk's n-best
    form, ``{"alternatives": [...]}``) the best alternative's."""
    if "text" in reply:
        return reply["text"] or ""
    alternatives = reply.get("alternatives") or [{}]
    return alternatives[0].get("text", "") or ""


@dataclass
class StreamReport:
    name: str
    results: list = field(default_factory=list)  # result replies ({"result", "text"}), the final one last
    partials: list = field(default_factory=list)  # partial texts, as received
    latencies: list = field(default_factory=list)  # (send time, seconds until its reply) per message, eof excluded
    final: bool = False  # the reply to eof arrived
    error: Optional[str] = None  # the server's {"error"} or why the connection ended early
    audio_s: float = 0.0
    close_code: Optional[int] = None

    @property
    def text(self) -> str:
        return " ".join(t for t in map(result_text, self.results) if t)

    @property
    def texts(self) -> list:
        return [t for t in map(result_text, self.results) if t]


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16 PCM (rounded, clipped); int16 passes through."""
    a = np.asarray(samples)
    if a.dtype == np.int16:
        return a
    return np.clip(np.round(a.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def file_pieces(samples: np.ndarray, rate: int, chunk_s: float = 0.2, rng: Optional[np.random.Generator] = None,
                max_piece_s: float = 0.5) -> list:
    """Split int16 samples into pieces of ``chunk_s`` seconds, or with ``rng`` of random sizes
    (1 sample .. ``max_piece_s``)."""
    pcm = to_int16(samples)
    if rng is None:
        step = max(1, int(round(rate * chunk_s)))
        return [pcm[i : i + step] for i in range(0, pcm.size, step)]
    out, i = [], 0
    while i < pcm.size:
        n = int(rng.integers(1, max(2, int(rate * max_piece_s))))
        out.append(pcm[i : i + n])
        i += n
    return out


Pieces = Union[Iterable[np.ndarray], AsyncIterable[np.ndarray]]


async def _aiter(pieces: Pieces):
    if hasattr(pieces, "__aiter__"):
        async for p in pieces:
            yield p
    else:
        for p in pieces:
            yield p


async def stream_pieces(url: str, pieces: Pieces, rate: int, *, realtime: bool = False, words: bool = True,
                        phrase_list: Optional[list] = None, hotwords: Optional[list] = None, max_alternatives: int = 0,
                        send_config: bool = True, name: str = "",
                        on_reply: Optional[Callable[[dict], None]] = None, session=None,
                        timeout_s: float = 60.0) -> StreamReport:
    """Stream int16 ``pieces`` at ``rate`` Hz to ``url``, then ``{"eof" : 1}``; returns every reply.

    ``realtime``: send each piece no earlier than its audio would exist live (a microphone's
    pace; the pieces of an async source such as a microphone come at their own pace anyway).
    ``session``: an ``aiohttp.ClientSession`` to share among many streams. ``timeout_s``: how
    long to wait for the final result after the eof."""
    import aiohttp

    report = StreamReport(name or url)
    own = session is None
    session = session or aiohttp.ClientSession()
    sent: collections.deque = collections.deque()  # send time of each message still waiting for its reply
    try:
        async with session.ws_connect(url, max_msg_size=0, autoping=True, compress=0) as ws:
            async def receive():
                while True:  # until the server closes (Vosk's and ours do after the final result)
                    try:
                        msg = await ws.receive(timeout=2.0 if report.final else None)
                    except asyncio.TimeoutError:  # final result in, the server keeps it open: done anyway
                        return
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        report.close_code = ws.close_code
                        return
                    now = time.monotonic()
                    reply = json.loads(msg.data)
                    if "error" in reply:
                        report.error = reply["error"]
                        continue
                    if sent:
                        t = sent.popleft()
                        if t is None:
                            report.final = True
                        else:
                            report.latencies.append((t, now - t))
                    if "partial" in reply:
                        report.partials.append(reply["partial"])
                    else:
                        report.results.append(reply)
                    if on_reply is not None:
                        on_reply(reply)

            receiver = asyncio.create_task(receive())
            try:
                if send_config:
                    config = {"sample_rate": rate, "words": words}
                    if phrase_list:
                        config["phrase_list"] = list(phrase_list)
                    if hotwords:
                        config["hotwords"] = list(hotwords)
                    if max_alternatives:
                        config["max_alternatives"] = int(max_alternatives)
                    await ws.send_str(json.dumps({"config": config}))
                t0, total = time.monotonic(), 0
                async for piece in _aiter(pieces):
                    pcm = to_int16(piece)
                    if realtime:
                        delay = t0 + total / rate - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    if receiver.done():  # the server closed the connection (an error)
                        break
                    sent.append(time.monotonic())
                    await ws.send_bytes(pcm.astype("<i2").tobytes())
                    total += pcm.size
                report.audio_s = total / rate
                if not receiver.done():
                    sent.append(None)
                    await ws.send_str(EOF_MESSAGE)
                await asyncio.wait_for(asyncio.shield(receiver), timeout=timeout_s)
            except asyncio.TimeoutError:
                report.error = report.error or f"no final result {timeout_s:g} s after eof"
            except (ConnectionError, aiohttp.ClientError) as exc:  # the server closed it: its reason may still be on the way
                try:
                    await asyncio.wait_for(asyncio.shield(receiver), timeout=2.0)
                except (asyncio.TimeoutError, ConnectionError, aiohttp.ClientError):
                    pass
                report.error = report.error or f"connection lost: {exc}"
            finally:
                if not receiver.done():
                    receiver.cancel()
                await asyncio.gather(receiver, return_exceptions=True)
    except (ConnectionError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
        report.error = report.error or f"cannot connect to {url}: {exc}"
    finally:
        if own:
            await session.close()
    if not report.final and report.error is None:
        report.error = f"connection closed (code {report.close_code}) before the final result"
    return report


async def stream_file(url: str, path: str, *, chunk_s: float = 0.2, realtime: bool = False,
                      rng: Optional[np.random.Generator] = None, **kw) -> StreamReport:
    """Read ``path`` (any format soundfile reads, at its own rate) and :func:`stream_pieces` it."""
    from asr.audio import read_audio

    samples, rate = read_audio(path)
    return await stream_pieces(url, file_pieces(samples, rate, chunk_s, rng), rate, realtime=realtime,
                               name=kw.pop("name", path), **kw)
