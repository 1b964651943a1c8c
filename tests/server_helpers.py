"""Helpers of the server tests: an ``asr serve`` application run in a background thread on a free
loopback port, and the runtime's own transcript of a file to compare with."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from contextlib import redirect_stdout
from typing import Optional

import numpy as np
from aiohttp import web

from asr.cli.stream import main as stream_main
from asr.runtime import EndpointConfig, OnlineRecognizer
from asr.server.app import SERVER_KEY, ServerConfig, build_app
from asr.server.openai_api import ApiConfig

ENDPOINT = EndpointConfig(rule1=0.5, rule2=0.3, rule3=20.0)  # short rules: several results per file


class ServerThread:
    """``with ServerThread(model_path, ServerConfig(...)) as srv:`` -> ``srv.url`` (ws://127.0.0.1:PORT/ws),
    ``srv.http`` (http://127.0.0.1:PORT; the OpenAI-compatible API under /v1, configured by ``api``).

    Admission by measured load (asr.server.admission) is off unless ``admission=True``: on a
    busy test machine a slow moment must not refuse a test's second client."""

    def __init__(self, model: str, config: ServerConfig = ServerConfig(), endpoint: EndpointConfig = ENDPOINT, decoding=None,
                 ssl_context=None, admission: bool = False, api: Optional[ApiConfig] = ApiConfig(), text=None):
        self.ssl_context = ssl_context
        self.rec = OnlineRecognizer(model, endpoint=endpoint, decoding=decoding)
        self.app = build_app(self.rec, config, model_name="test", api=api, **({"text": text} if text is not None else {}))
        self.server = self.app[SERVER_KEY]
        if not admission:
            self.server.admission = _AdmitAll()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="test-server")
        self.runner = None

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        self.call(self._start(), timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        self.call(self.runner.cleanup(), timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    async def _start(self) -> None:
        self.runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        self.port = self.runner.addresses[0][1]
        s = "s" if self.ssl_context else ""
        self.http = f"http{s}://127.0.0.1:{self.port}"
        self.url = f"ws{s}://127.0.0.1:{self.port}/ws"

    def call(self, coro, timeout: float = 30):
        """Run a coroutine on the server's loop (to read its state safely)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def metrics(self) -> dict:
        async def get():
            return self.server.metrics_dict()
        return self.call(get())

    @property
    def live(self) -> int:
        return self.server.live


class _AdmitAll:
    def refusal(self, sample):
        return None


def stream_texts(model: str, path: str, endpoint: EndpointConfig = ENDPOINT, piece_ms: float = 100.0) -> list:
    """``asr stream``'s final utterance texts for one file (empty ones left out)."""
    args = ["--model", model, path, "--format", "json", "--no-partials", "--piece-ms", str(piece_ms)]
    for name in ("rule1", "rule2", "rule3"):
        v = getattr(endpoint, name)
        args += [f"--{name}", "off" if v is None else str(v)]
    out = io.StringIO()
    with redirect_stdout(out):
        assert stream_main(args) == 0
    return [t for t in (json.loads(line)["text"] for line in out.getvalue().splitlines()) if t]


def run(coro):
    return asyncio.run(coro)


def pcm_bytes(samples: np.ndarray) -> bytes:
    from asr.server.client import to_int16

    return to_int16(samples).astype("<i2").tobytes()
