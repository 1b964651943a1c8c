"""How many live streams `asr serve` carries on this machine: for each client count, a fresh
server, tools/loadtest.py against it, and the cores the server's processes used.

    python tools/measure_serving.py --clients 300,500,750 -- --workers 2 --max-streams 2000 \\
        $(ls $CORPUS/fsdd/recordings/*_[0-4].wav | head -100)

Arguments after ``--`` go to ``asr serve`` (options) and then to the load test (the files; the
load test's options are this script's). Prints one line per client count (streams admitted,
refusals, reply delay p50/p95/p99 over the pieces after the warm-up, server and client cores),
then one JSON object with everything. Run it on an otherwise idle machine: the clients run here
too, and the figures are only comparable within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadtest  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def _cpu_s(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / TICKS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_health(port: int, workers: int, timeout: float = 120.0) -> None:
    until, seen = time.monotonic() + timeout, set()
    while time.monotonic() < until:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                seen.add(json.loads(r.read()).get("worker", {}).get("pid", 0))
            if len(seen) >= workers:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"error: asr serve did not answer on port {port} within {timeout} s")


@contextlib.contextmanager
def running_server(serve_args: list[str]):
    """``asr serve SERVE_ARGS`` on a free loopback port, every worker answering: (port, the
    pids of its process tree); stopped on the way out."""
    port = _free_port()
    workers = int(serve_args[serve_args.index("--workers") + 1]) if "--workers" in serve_args else len(os.sched_getaffinity(0))
    server = subprocess.Popen([sys.executable, "-m", "asr", "serve", "--port", str(port), *serve_args],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_health(port, workers)
        time.sleep(1.0)
        yield port, _tree(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def measure(clients: int, serve_args: list[str], load: argparse.Namespace) -> dict:
    with running_server(serve_args) as (port, pids):
        load.url, load.clients = f"ws://127.0.0.1:{port}/ws", clients
        cpu0, t0 = _cpu_s(pids), time.monotonic()
        summary = asyncio.run(loadtest.run_load(load))
        summary["server_cores"] = round((_cpu_s(pids) - cpu0) / (time.monotonic() - t0), 2)
        return summary


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: python tools/measure_serving.py --clients N[,N...] [load options] -- [asr serve options] FILES...")
    cut = argv.index("--")
    p = argparse.ArgumentParser(prog="python tools/measure_serving.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", required=True, help="client counts, comma-separated (a fresh server for each)")
    p.add_argument("--seconds", type=float, default=40.0, help="each run's length (default 40)")
    p.add_argument("--warmup-s", type=float, default=10.0, help="delays before this are not counted (default 10)")
    p.add_argument("--ramp-s", type=float, default=5.0, help="clients start spread over this many seconds (default 5)")
    p.add_argument("--out", help="write the JSON summary here as well")
    args = p.parse_args(argv[:cut])
    rest = argv[cut + 1:]
    files = [a for a in rest if os.path.isfile(a)]
    serve_args = [a for a in rest if a not in files]
    load = loadtest.build_parser().parse_args([*files, "--seconds", str(args.seconds), "--warmup-s", str(args.warmup_s),
                                               "--ramp-s", str(args.ramp_s), "--report-every-s", "1000"])
    rows = []
    for n in [int(x) for x in args.clients.split(",")]:
        s = measure(n, serve_args, load)
        d = s["delay"] or {}
        row = {"clients": n, "admitted": s["streams_started"], "refusals": s["refused"],
               "failed": s["streams_failed"], "p50_ms": d.get("p50_ms"), "p95_ms": d.get("p95_ms"), "p99_ms": d.get("p99_ms"),
               "server_cores": s["server_cores"], "client_cores": s["client_cpu_fraction"]}
        rows.append({**row, "load_test": s})
        print("  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    result = {"serve_args": serve_args, "files": len(files), "seconds": args.seconds, "runs": rows}
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
