"""The server attacks of the hostile-input audit, re-run against a real ``asr serve`` on loopback: what a
well-behaved client gets meanwhile, and the server's resident memory and health after.

    python tools/hostile_server.py --model exp/fsdd_base/stream.onnx --wav recordings/3_george_0.wav

Two servers are started in turn (their own processes, a free port on 127.0.0.1):

1. ``--max-streams 20``: a client with ``{"sample_rate": 1}`` (refused, named); three floods of
   six 1 MiB messages at 8,000, 384,000 and 11,025 Hz; meanwhile 12 real-time clients stream
   ``--wav`` one after another. Printed: the refusal, the floods' replies, whether the good
   clients got the text a quiet server gives and their reply delays, the server's memory.
2. ``--max-streams 3``: three clients send 60 s of audio as fast as they can and read nothing
   (the server stops reading them), then leave (two resets, one close frame). Printed: a
   fourth is refused while they are there, how soon the slots are free, whether a new client
   then gets its text, and /health.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from asr.server.client import stream_file  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, model: str, max_streams: int):
        self.port = _free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.http = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "asr", "serve", "--model", model, "--port", str(self.port), "--workers", "1",
                                      "--max-streams", str(max_streams)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     cwd=ROOT)  # this checkout's asr
        for _ in range(300):
            try:
                self.get("/metrics")
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("error: the server did not start")

    def get(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.http + path, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def _raw(url: str, messages: list, read_timeout: float = 120.0):
    """Send messages (str or bytes); (replies, close code)."""
    import aiohttp

    replies = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        for m in messages:
            if ws.closed:
                break
            await (ws.send_str(m) if isinstance(m, str) else ws.send_bytes(m))
        while True:
            msg = await ws.receive(timeout=read_timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return replies, ws.close_code
            replies.append(json.loads(msg.data))


async def amplification(srv: Server, wav: str) -> None:
    quiet = await stream_file(srv.url, wav, chunk_s=0.2)
    rss0 = srv.get("/metrics")[1]["rss_mb"]

    async def good():
        return [await stream_file(srv.url, wav, chunk_s=0.2, realtime=True) for _ in range(12)]

    goods = asyncio.create_task(good())
    tiny = await _raw(srv.url, ['{"config": {"sample_rate": 1}}', b"\x01\x00" * 1000])
    big = (np.random.default_rng(0).standard_normal(1 << 19) * 3000).astype("<i2").tobytes()  # 1 MiB
    floods = await asyncio.gather(*(_raw(srv.url, ['{"config": {"sample_rate": %d}}' % r] + [big] * 6 + ['{"eof": 1}'])
                                    for r in (8000, 384000, 11025)))
    reports = await goods
    delays = [d for r in reports for _, d in r.latencies]
    m = srv.get("/metrics")[1]
    print("1 Hz config:", tiny)
    print("floods of 6 x 1 MiB at 8000 / 384000 / 11025 Hz: (replies, close code)", [(len(r), c) for r, c in floods])
    print("good clients: all served the quiet server's text:", all(r.error is None and r.texts == quiet.texts for r in reports),
          "| reply delay p50/p95/max ms:", [round(float(np.percentile(delays, q)) * 1000) for q in (50, 95, 100)],
          "| errors:", [r.error for r in reports if r.error][:2])
    print(f"server memory: {rss0} MB before, {m['rss_mb']} MB after, {m['max_rss_mb']} MB at most; /health: {srv.get('/health')}")


async def stuck_slots(srv: Server, wav: str) -> None:
    import aiohttp

    samples = (np.random.default_rng(1).standard_normal(8000 * 60) * 3000).astype("<i2")
    async with aiohttp.ClientSession() as s:
        conns = [await s.ws_connect(srv.url) for _ in range(3)]
        for ws in conns:
            await ws.send_str('{"config": {"sample_rate": 8000}}')
            for i in range(0, samples.size, 16000):
                await ws.send_bytes(samples[i : i + 16000].tobytes())
        await asyncio.sleep(0.5)
        print("3 clients that read nothing: live", srv.get("/metrics")[1]["live_streams"], "| a fourth:", await _raw(srv.url, []))
        for ws in conns[:2]:
            ws._response.connection.transport.abort()
        closing = asyncio.create_task(conns[2].close())
        t0 = time.monotonic()
        while srv.get("/metrics")[1]["live_streams"] and time.monotonic() - t0 < 60:
            await asyncio.sleep(0.05)
        print(f"they leave: live {srv.get('/metrics')[1]['live_streams']} after {time.monotonic() - t0:.2f} s")
        await closing
    again = await stream_file(srv.url, wav, chunk_s=0.2)
    print("a new client:", "served" if again.error is None and again.final else again.error, "| /health:", srv.get("/health"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="streaming ONNX model")
    p.add_argument("--wav", required=True, help="a recording the good clients stream")
    args = p.parse_args(argv)
    for scenario, limit in ((amplification, 20), (stuck_slots, 3)):
        srv = Server(args.model, limit)
        try:
            asyncio.run(scenario(srv, args.wav))
        finally:
            srv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
