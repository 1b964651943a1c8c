"""Load and soak test of a running ``asr serve``: N simulated clients, each streaming real
recordings in real time, bounded in time, loopback by default.

    python tools/loadtest.py --url ws://127.0.0.1:2700/ws --clients 200 --seconds 60 FILES...
    python tools/loadtest.py --url ... --clients 100 --seconds 600 --churn 5:40 FILES...   # soak

Each client keeps one connection and streams the files in random order, with ``--gap-s`` of
silence between them, paced in real time in pieces of ``--piece-ms``, until ``--seconds`` are
up; then it sends the eof and waits for the final result. With ``--churn MIN:MAX`` a client
instead leaves after a random MIN..MAX seconds and connects again (the soak). Clients start
spread over ``--ramp-s``. A client the server refuses (1013: full, or busy by its admission
rule) tries again 2-5 s later, as the code asks; refusals are counted apart from streams.

The delay of a piece is the time from sending it to receiving its reply (the server answers
each message once, in order): what a live client waits for the partial text that includes
that audio. Reported: p50/p95/p99/max over the pieces sent after ``--warmup-s``, streams
started/finished/failed, the server's /metrics before and after (resident memory, open file
descriptors, decoding-loop batch size and real-time factor), and for a soak whether memory
and descriptors stayed flat. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
import urllib.parse
from typing import Optional

import numpy as np

from asr.server.client import stream_pieces, to_int16

__all__ = ["main", "run_load"]


def _load_files(paths: list) -> tuple[list, int]:
    from asr.audio import read_audio, resample

    clips, rate = [], None
    for p in paths:
        x, r = read_audio(p)
        if rate is None:
            rate = r
        if r != rate:
            x = resample(x, r, rate)
        clips.append(to_int16(x))
    return clips, rate


def _http(url: str) -> str:
    u = urllib.parse.urlparse(url)
    return f"{'https' if u.scheme == 'wss' else 'http'}://{u.netloc}"


async def _metrics(session, url: str) -> Optional[dict]:
    try:
        async with session.get(_http(url) + "/metrics") as r:
            return await r.json()
    except Exception:
        return None


async def _client(i: int, args, clips, rate, deadline: float, session, out: dict, rng: random.Random) -> None:
    gap = np.zeros(int(args.gap_s * rate), np.int16)
    step = max(1, int(rate * args.piece_ms / 1000))
    await asyncio.sleep(rng.uniform(0, args.ramp_s))
    while time.monotonic() < deadline - 1.0:
        if args.churn:
            lo, hi = args.churn
            until = min(deadline, time.monotonic() + rng.uniform(lo, hi))
        else:
            until = deadline

        async def pieces(until=until):  # this round's stop time, bound now
            buf = np.zeros(0, np.int16)
            t0 = time.monotonic()
            sent = 0
            while True:
                if t0 + sent / rate >= until:  # the next piece would be sent after the stop time
                    return
                while buf.size < step:
                    buf = np.concatenate([buf, clips[rng.randrange(len(clips))], gap])
                yield buf[:step]
                buf = buf[step:]
                sent += step

        out["started"] += 1
        report = await stream_pieces(args.url, pieces(), rate, realtime=True, session=session, name=f"client-{i}",
                                     timeout_s=args.final_timeout_s)
        if report.close_code == 1013:  # refused (full or busy): not a stream; try again later, as asked
            out["started"] -= 1
            out["refused"] += 1
            if len(out["refusals"]) < 3:
                out["refusals"].append(report.error)
            await asyncio.sleep(rng.uniform(2.0, 5.0))
            continue
        out["reports"].append(report)
        if report.error:
            out["failed"] += 1
            out["errors"].append(f"client-{i}: {report.error}")
            await asyncio.sleep(0.5)  # cut: do not spin
        else:
            out["finished"] += 1


def _percentiles(values) -> dict:
    if not len(values):
        return {"n": 0}
    a = np.asarray(values) * 1000
    return {"n": int(a.size), "p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1), "max_ms": round(float(a.max()), 1)}


def _brief(m: Optional[dict]) -> dict:
    if not m:
        return {}
    loop = m.get("decode_loop") or {}
    return {"rss_mb": m.get("rss_mb"), "open_fds": m.get("open_fds"), "live_streams": m.get("live_streams"),
            "cpu_s": m.get("cpu_s"), "refused": m.get("refused"), "errors": m.get("errors"),
            "disconnects": m.get("disconnects"), "steps": loop.get("steps"), "mean_batch": loop.get("mean_batch"),
            "rtf": loop.get("rtf")}


async def run_load(args) -> dict:
    import aiohttp

    clips, rate = _load_files(args.files)
    rng = random.Random(args.seed)
    out = {"started": 0, "finished": 0, "failed": 0, "refused": 0, "refusals": [], "errors": [], "reports": []}
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        before = await _metrics(session, args.url)
        if before is None:
            raise SystemExit(f"error: no /metrics at {_http(args.url)}: is `asr serve` running there?")
        t_start = time.monotonic()
        deadline = t_start + args.seconds
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        samples = []

        async def sample():
            while time.monotonic() < deadline:
                await asyncio.sleep(min(args.report_every_s, max(0.1, deadline - time.monotonic())))
                m = await _metrics(session, args.url)
                if m:
                    b = _brief(m)
                    b["t_s"] = round(time.monotonic() - t_start, 1)
                    samples.append(b)
                    print(json.dumps({"progress": b}), file=sys.stderr, flush=True)

        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(_client(i, args, clips, rate, deadline, session, out, random.Random(rng.random()))
                               for i in range(args.clients)))
        sampler.cancel()
        for _ in range(20):  # let the server close the last connections (up to 10 s)
            await asyncio.sleep(0.5)
            after = await _metrics(session, args.url)
            if after and after.get("live_streams") == 0 and after.get("open_fds") == before.get("open_fds"):
                break
        wall = time.monotonic() - t_start
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
    t_warm = t_start + args.warmup_s
    lat = [d for r in out["reports"] for (t, d) in r.latencies if t >= t_warm]
    audio_s = sum(r.audio_s for r in out["reports"])
    b0, b1 = _brief(before), _brief(after)
    summary = {
        "clients": args.clients, "seconds": args.seconds, "piece_ms": args.piece_ms, "churn": args.churn,
        "streams_started": out["started"], "streams_finished": out["finished"], "streams_failed": out["failed"],
        "refused": out["refused"], "refusals": out["refusals"],
        "audio_s": round(audio_s, 1), "delay": _percentiles(lat),
        "server_before": b0, "server_after": b1,
        "server_cpu_fraction": round((b1.get("cpu_s", 0) - b0.get("cpu_s", 0)) / wall, 2) if b1 and b0 else None,
        "client_cpu_fraction": round((ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall, 2),
        "errors": out["errors"][:5],
    }
    if samples:
        mid = [s["rss_mb"] for s in samples if s.get("rss_mb") is not None]
        summary["rss_mb_first_last_max"] = [mid[0], mid[-1], max(mid)] if mid else None
    if args.churn:
        second_half = [s["rss_mb"] for s in samples if s["t_s"] >= args.seconds / 2 and s.get("rss_mb") is not None]
        summary["soak"] = {
            "no_stream_lost": out["failed"] == 0 and out["finished"] == out["started"],
            "fds_back_to_start": b1.get("open_fds") == b0.get("open_fds") if b0 and b1 else None,
            "rss_mb_samples": [s.get("rss_mb") for s in samples],  # every --report-every-s
            # growth once warmed up: the allocator first grows to the working set of N streams
            "rss_growth_second_half_mb": round(second_half[-1] - second_half[0], 1) if len(second_half) > 1 else None,
        }
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python tools/loadtest.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="recordings to stream (mixed in random order)")
    p.add_argument("--url", default="ws://127.0.0.1:2700/ws")
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--seconds", type=float, default=30.0, help="how long the test runs (default 30)")
    p.add_argument("--piece-ms", type=float, default=200.0, help="audio per message (default 200 ms)")
    p.add_argument("--gap-s", type=float, default=0.3, help="silence between recordings (default 0.3 s)")
    p.add_argument("--ramp-s", type=float, default=5.0, help="clients start spread over this many seconds (default 5)")
    p.add_argument("--warmup-s", type=float, default=10.0, help="delays of pieces sent before this are not counted (default 10)")
    p.add_argument("--churn", help="MIN:MAX: each connection lasts a random MIN..MAX seconds, then the client reconnects (soak)")
    p.add_argument("--report-every-s", type=float, default=10.0, help="print the server's /metrics this often (stderr)")
    p.add_argument("--final-timeout-s", type=float, default=30.0, help="how long to wait for a final result")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-remote", action="store_true", help="allow a --url that is not a loopback address")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    host = urllib.parse.urlparse(args.url).hostname or ""
    if not args.allow_remote and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
        print(f"error: {args.url} is not a loopback address (a load test floods its target; --allow-remote if you mean it)",
              file=sys.stderr)
        return 2
    if args.clients < 1 or args.seconds <= 0 or args.seconds > 3600:
        print("error: --clients must be >= 1 and --seconds in (0, 3600]", file=sys.stderr)
        return 2
    if args.churn:
        lo, hi = (float(x) for x in args.churn.split(":"))
        if not 0 < lo <= hi:
            print(f"error: --churn MIN:MAX with 0 < MIN <= MAX, got {args.churn}", file=sys.stderr)
            return 2
        args.churn = (lo, hi)
    summary = asyncio.run(run_load(args))
    d = summary["delay"]
    print(f"{args.clients} clients x {args.seconds:g} s, pieces of {args.piece_ms:g} ms: "
          f"{summary['streams_finished']}/{summary['streams_started']} streams finished, {summary['streams_failed']} failed; "
          f"delay p50 {d.get('p50_ms')} ms, p95 {d.get('p95_ms')} ms, p99 {d.get('p99_ms')} ms, max {d.get('max_ms')} ms "
          f"over {d['n']} pieces; server CPU {summary['server_cpu_fraction']} cores, client CPU {summary['client_cpu_fraction']} cores; "
          f"server rss {summary['server_before'].get('rss_mb')} -> {summary['server_after'].get('rss_mb')} MB, "
          f"fds {summary['server_before'].get('open_fds')} -> {summary['server_after'].get('open_fds')}")
    print(json.dumps(summary))
    return 0 if summary["streams_failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
