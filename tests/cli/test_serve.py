"""asr.cli.serve: options that cannot work are refused by argparse (a message, exit 2), before
the model loads or a socket opens."""

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("args, words", [
    (["--port", "99999"], "argument --port: must be a TCP port in 0..65535"),
    (["--port", "-1"], "argument --port: must be a TCP port in 0..65535"),
    (["--port", "http"], "argument --port: expected a TCP port number"),
    (["--sample-rate", "1"], "argument --sample-rate: must be in 8000..384000 Hz"),
])
def test_bad_options_exit_2_with_a_message(models, args, words):
    """Issue 30 #10: `asr serve --port 99999` ended in a traceback (OverflowError from bind)."""
    model = models.get("lstm-lc")[0]
    out = subprocess.run([sys.executable, "-m", "asr", "serve", "--model", model, *args], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 2 and words in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]


def _health(port: int, timeout: float = 60.0):
    """/health of whichever worker the kernel hands a new connection to (None until one answers)."""
    import json
    import time
    import urllib.request

    until = time.monotonic() + timeout
    while time.monotonic() < until:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"no answer on port {port} within {timeout} s")


def _gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()


@contextlib.contextmanager
def _serving(*args: str):
    """``asr serve --port 0 ARGS`` in its own process: (the process, the port every worker
    logged), killed on the way out if it still runs."""
    proc = subprocess.Popen([sys.executable, "-m", "asr", "serve", "--port", "0", *args], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        workers = int(args[args.index("--workers") + 1]) if "--workers" in args else len(os.sched_getaffinity(0))
        ports = set()
        while len(ports) < workers:
            line = proc.stdout.readline()
            assert line, "the server stopped before every worker served"
            ports |= set(re.findall(r"(?:worker (\d) )?INFO serving on http://127\.0\.0\.1:(\d+)", line))
        assert len({p for _, p in ports}) == 1, ports  # port 0: one free port, shared
        yield proc, int(next(iter(ports))[1])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_workers_share_the_port_and_each_transcribes():
    """--workers 2: two processes answer on one port (the kernel spreads connections between
    them: /health names the one that answered), each transcribes, and SIGTERM to the parent
    stops both (exit 0)."""
    from asr.server.client import stream_file

    with _serving("--workers", "2") as (proc, port):
        pids = {_health(port)["worker"]["pid"] for _ in range(40)}
        assert len(pids) == 2, pids
        digits = os.path.join(ROOT, "tests", "data", "fsdd_four_zero_seven_two_nine.wav")
        texts = {asyncio.run(stream_file(f"ws://127.0.0.1:{port}", digits)).text for _ in range(6)}
        assert texts == {"four zero seven two nine"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert all(_gone(pid) for pid in pids)


def test_a_dead_worker_stops_the_server():
    """A worker that dies takes the other down with it and the parent exits 1, so that a
    supervisor restarts the whole server rather than run on at half strength unnoticed."""
    with _serving("--workers", "2") as (proc, port):
        victim = _health(port)["worker"]["pid"]
        others = {_health(port)["worker"]["pid"] for _ in range(40)} - {victim}
        os.kill(victim, signal.SIGKILL)
        assert proc.wait(timeout=30) == 1
        out = proc.stdout.read()
        assert "exited with code -9: stopping the others" in out, out[-2000:]
        assert others and all(_gone(pid) for pid in others)


def test_one_worker_per_core_by_default():
    """No --workers: one process per usable core (the figures in docs/serving.md)."""
    cores = len(os.sched_getaffinity(0))
    with _serving() as (proc, port):
        seen = [_health(port).get("worker") for _ in range(40)]
        if cores == 1:
            assert seen == [None] * 40  # one process: /health names no worker
        else:
            assert {w["of"] for w in seen} == {cores} and {w["index"] for w in seen} == set(range(cores))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def _post_file(url: str, path: str) -> dict:
    import aiohttp

    async def post():
        form = aiohttp.FormData()
        form.add_field("file", open(path, "rb"), filename=os.path.basename(path))
        async with aiohttp.ClientSession() as s, s.post(url, data=form) as r:
            return await r.json()
    return asyncio.run(post())


def _ws_replies(url: str, path: str) -> list:
    """Every message the server sends for one file (a config, the file in 0.5 s pieces, the eof), and the close code."""
    import json

    import aiohttp
    import soundfile as sf

    samples, rate = sf.read(path, dtype="int16")

    async def talk():
        out = []
        async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"config": {"sample_rate": rate}}))
            for i in range(0, samples.size, rate // 2):
                await ws.send_bytes(samples[i : i + rate // 2].tobytes())
            await ws.send_str('{"eof" : 1}')
            async for msg in ws:
                out.append(json.loads(msg.data))
            return out, ws.close_code
    return asyncio.run(talk())


DIGITS = os.path.join(ROOT, "tests", "data", "fsdd_four_zero_seven_two_nine.wav")


def test_an_offline_graph_serves_the_api_and_refuses_streams():
    """Issue 27: `asr serve --model model.onnx` (an offline graph) stopped with a message. It now
    serves the OpenAI API (the text asr.load_model gives), /health and /info, and a websocket
    stream gets one error naming the fix (a streaming graph, asr export --streaming), close 1008."""
    import json
    import urllib.request

    import asr
    from asr.runtime.builtin import builtin_model

    offline = builtin_model(streaming=False)
    want = asr.load_model(offline).transcribe(DIGITS).text
    with _serving("--model", offline, "--workers", "2") as (proc, port):
        http = f"http://127.0.0.1:{port}"
        assert _post_file(f"{http}/v1/audio/transcriptions", DIGITS)["text"] == want
        with urllib.request.urlopen(f"{http}/v1/models", timeout=10) as r:
            assert [m["id"] for m in json.loads(r.read())["data"]] == ["digits-model"]
        with urllib.request.urlopen(f"{http}/info", timeout=10) as r:
            info = json.loads(r.read())
        assert info["streaming"] is False and info["model"] == "model.onnx" and info["api_model"] == "model.onnx"
        health = _health(port)
        assert health["status"] == "ok" and health["streaming"] is False
        replies, code = _ws_replies(f"ws://127.0.0.1:{port}/ws", DIGITS)
        assert code == 1008 and len(replies) == 1
        assert replies[0]["error"].startswith("live streaming needs a streaming graph (asr export --checkpoint best.pt "
                                              "--streaming --out stream.onnx; asr serve --model stream.onnx); this server "
                                              "has an offline graph, model.onnx")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_both_graphs_streams_on_one_files_on_the_other():
    """--model twice, a streaming and an offline graph: the websocket streams with the first,
    the API transcribes with the second (its id in /v1/models)."""
    import json
    import urllib.request

    import asr
    from asr.runtime.builtin import builtin_model

    streaming, offline = builtin_model(streaming=True), builtin_model(streaming=False)
    with _serving("--model", streaming, "--model", offline, "--workers", "2") as (proc, port):
        http = f"http://127.0.0.1:{port}"
        replies, code = _ws_replies(f"ws://127.0.0.1:{port}/ws", DIGITS)
        assert code == 1000 and replies[-1]["text"] == "four zero seven two nine"
        assert _post_file(f"{http}/v1/audio/transcriptions", DIGITS)["text"] == asr.load_model(offline).transcribe(DIGITS).text
        with urllib.request.urlopen(f"{http}/v1/models", timeout=10) as r:
            assert [m["id"] for m in json.loads(r.read())["data"]] == ["digits-model"]
        with urllib.request.urlopen(f"{http}/info", timeout=10) as r:
            info = json.loads(r.read())
        assert info["streaming"] is True and info["model"] == "stream.onnx" and info["api_model"] == "model.onnx"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_two_graphs_of_one_kind_are_refused(workers):
    from asr.runtime.builtin import builtin_model

    streaming = builtin_model(streaming=True)
    out = subprocess.run([sys.executable, "-m", "asr", "serve", "--model", streaming, "--model", streaming, "--port", "0",
                          "--workers", workers], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1] == (f"error: --model {streaming} and --model {streaming} are both streaming "
                                                   "graphs: give one streaming graph (the websocket's) and one offline graph "
                                                   "(the API's), or one model")
    assert "Traceback" not in out.stderr
