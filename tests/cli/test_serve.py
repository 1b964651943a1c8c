"""asr.cli.serve: options that cannot work are refused by argparse (a message, exit 2), before
the model loads or a socket opens."""

import os
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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def _wait(proc, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _start_workers(port: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "asr", "serve", "--workers", "2", "--port", str(port), *extra],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_workers_share_the_port_and_each_transcribes():
    """--workers 2: two processes answer on one port (the kernel spreads connections between
    them: /health names the one that answered), each transcribes, and SIGTERM to the parent
    stops both (exit 0)."""
    import asyncio
    import signal

    from asr.server.client import stream_file

    port = _free_port()
    proc = _start_workers(port)
    try:
        pids = {_health(port)["worker"]["pid"] for _ in range(40)}
        assert len(pids) == 2, pids
        digits = os.path.join(ROOT, "tests", "data", "fsdd_four_zero_seven_two_nine.wav")
        texts = {asyncio.run(stream_file(f"ws://127.0.0.1:{port}", digits)).text for _ in range(6)}
        assert texts == {"four zero seven two nine"}
        proc.send_signal(signal.SIGTERM)
        assert _wait(proc, 30) == 0
        for pid in pids:
            assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_dead_worker_stops_the_server():
    """A worker that dies takes the other down with it and the parent exits 1, so that a
    supervisor restarts the whole server rather than run on at half strength unnoticed."""
    import signal

    port = _free_port()
    proc = _start_workers(port)
    try:
        victim = _health(port)["worker"]["pid"]
        others = {_health(port)["worker"]["pid"] for _ in range(40)} - {victim}
        os.kill(victim, signal.SIGKILL)
        assert _wait(proc, 30) == 1
        out = proc.stdout.read()
        assert "exited with code -9: stopping the others" in out, out[-2000:]
        for pid in others:
            assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_workers_share_port_0_and_the_default_is_one_per_core():
    """--port 0 picks one free port that every worker binds; the log names it. The default
    --workers is the number of usable cores (two processes on a 2-core machine)."""
    import re
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "asr", "serve", "--workers", "2", "--port", "0"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ports = set()
        while len(ports) < 2:
            line = proc.stdout.readline()
            assert line, "the server stopped before both workers served"
            ports |= set(re.findall(r"worker (\d) INFO serving on http://127\.0\.0\.1:(\d+)", line))
        assert len({p for _, p in ports}) == 1, ports
        port = int(next(iter(ports))[1])
        assert {_health(port)["worker"]["index"] for _ in range(40)} == {0, 1}
        proc.send_signal(signal.SIGTERM)
        assert _wait(proc, 30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    from asr.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.workers is None  # resolved when it runs: one per usable core
