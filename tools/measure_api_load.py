"""The live streams' delay while `asr serve` transcribes uploads on its OpenAI-compatible API.

    python tools/measure_api_load.py --clients 100 --seconds 240 --upload long_1h.wav \\
        --upload short.wav --upload short.mp3 -- --workers 2 $(ls $CORPUS/fsdd/recordings/*_[0-4].wav | head -100)

Two runs, each on a fresh server (arguments after ``--``: ``asr serve`` options, then the
recordings the live clients stream, as tools/measure_serving.py takes them): the load test alone
(tools/loadtest.py: ``--clients`` live websocket streams in real time), then the same load while
one client of the official ``openai`` package uploads each ``--upload`` file in every response
format (json, text, srt, vtt, verbose_json with word and segment times), one request after the
other, and then the first file again in verbose_json until the load test ends. Each response is
checked: its text is what ``asr.load_model(model).transcribe(file)`` gives in this process, and
verbose_json has segments and words with times inside the audio. Prints one line per run (delay
p50/p95/p99 of the live streams' replies after the warm-up, cores used), one line per upload
(seconds, real-time factor, checks), then one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loadtest  # noqa: E402
from measure_serving import _cpu_s, running_server  # noqa: E402

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")


def _check(fmt: str, body, want_text: str, duration: float) -> list[str]:
    """What is wrong with one response (empty: nothing)."""
    problems = []
    if fmt == "json":
        if body.text != want_text:
            problems.append(f"text differs from asr's transcribe ({len(body.text)} vs {len(want_text)} chars)")
    elif fmt == "verbose_json":
        if body.text != want_text:
            problems.append("text differs from asr's transcribe")
        words, segments = body.words or [], body.segments or []
        if want_text and (not words or not segments):
            problems.append(f"{len(words)} words, {len(segments)} segments")
        if any(not (0 <= w.start <= w.end <= duration + 0.01) for w in words):
            problems.append("a word's times lie outside the audio")
        if " ".join(s.text for s in segments) != body.text:
            problems.append("the segments' texts do not make the text")
    elif fmt == "text":
        if " ".join(body.split()) != " ".join(want_text.split()):
            problems.append("text differs")
    elif want_text and "-->" not in body:
        problems.append("no cue")
    return problems


def _uploads(port: int, files: list, expected: dict, deadline: float, out: list) -> None:
    import openai

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=3600)
    plan = [(f, fmt) for f in files for fmt in FORMATS]
    i = 0
    while time.monotonic() < deadline:
        path, fmt = plan[i] if i < len(plan) else (files[0], "verbose_json")
        i += 1
        extra = {"timestamp_granularities": ["word", "segment"]} if fmt == "verbose_json" else {}
        t0 = time.monotonic()
        try:
            with open(path, "rb") as f:
                body = client.audio.transcriptions.create(file=f, model="whisper-1", response_format=fmt, **extra)
            problems = _check(fmt, body, *expected[path])
        except openai.APIError as exc:
            problems = [f"{type(exc).__name__}: {exc}"]
        wall = time.monotonic() - t0
        out.append({"file": os.path.basename(path), "format": fmt, "seconds": round(wall, 2),
                    "rtf": round(wall / expected[path][1], 4), "ok": not problems, "problems": problems,
                    "within_load": time.monotonic() < deadline})


def run(serve_args: list, load: argparse.Namespace, files: list, expected: dict, warmup_s: float) -> dict:
    uploads: list = []
    with running_server(serve_args) as (port, pids):
        load.url = f"ws://127.0.0.1:{port}/ws"
        cpu0, t0 = _cpu_s(pids), time.monotonic()
        thread = None
        if files:
            def start():
                time.sleep(max(0.0, warmup_s - 5.0))  # busy by the time delays start to count
                _uploads(port, files, expected, t0 + load.seconds, uploads)
            thread = threading.Thread(target=start, daemon=True)
            thread.start()
        summary = asyncio.run(loadtest.run_load(load))
        summary["server_cores"] = round((_cpu_s(pids) - cpu0) / (time.monotonic() - t0), 2)
        if thread is not None:
            thread.join()
        summary["uploads"] = uploads
        return summary


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: python tools/measure_api_load.py --clients N --upload FILE [...] -- [asr serve options] FILES...")
    cut = argv.index("--")
    p = argparse.ArgumentParser(prog="python tools/measure_api_load.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=100, help="live websocket streams (default 100)")
    p.add_argument("--seconds", type=float, default=240.0, help="each run's length (default 240)")
    p.add_argument("--warmup-s", type=float, default=10.0, help="delays before this are not counted (default 10)")
    p.add_argument("--upload", action="append", required=True, help="a file to transcribe through /v1 (repeat for several)")
    p.add_argument("--model", help="the model asr serve runs, to compute the expected texts (default: the built-in one)")
    p.add_argument("--skip-baseline", action="store_true", help="only the run with uploads")
    p.add_argument("--out", help="write the JSON summary here as well")
    args = p.parse_args(argv[:cut])
    rest = argv[cut + 1:]
    files = [a for a in rest if os.path.isfile(a)]
    serve_args = [a for a in rest if a not in files]
    if "--model" in serve_args:
        args.model = serve_args[serve_args.index("--model") + 1]

    import asr
    from asr.runtime.builtin import builtin_model

    rec = asr.load_model(args.model or builtin_model(streaming=True))
    expected = {}
    for path in args.upload:
        t0 = time.monotonic()
        r = rec.transcribe(path)
        expected[path] = (r.text, r.duration)
        print(f"expected text of {os.path.basename(path)}: {r.duration:.0f} s of audio, {len(r.words)} words, "
              f"transcribed in this process in {time.monotonic() - t0:.1f} s", flush=True)
    load = loadtest.build_parser().parse_args([*files, "--clients", str(args.clients), "--seconds", str(args.seconds),
                                               "--warmup-s", str(args.warmup_s), "--report-every-s", "1000"])
    runs = {}
    for name, uploads in (("alone", []), ("with_uploads", args.upload)):
        if name == "alone" and args.skip_baseline:
            continue
        s = run(serve_args, load, uploads, expected, args.warmup_s)
        d = s["delay"] or {}
        row = {"run": name, "clients": args.clients, "admitted": s["streams_started"], "refusals": s["refused"],
               "failed": s["streams_failed"], "p50_ms": d.get("p50_ms"), "p95_ms": d.get("p95_ms"),
               "p99_ms": d.get("p99_ms"), "server_cores": s["server_cores"]}
        print("  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        for u in s["uploads"]:
            print(f"  upload {u['file']} {u['format']}: {u['seconds']} s (rtf {u['rtf']}), "
                  f"{'ok' if u['ok'] else 'FAILED: ' + '; '.join(u['problems'])}"
                  f"{'' if u['within_load'] else ' (ended after the load test)'}", flush=True)
        runs[name] = {**row, "load_test": s}
    result = {"serve_args": serve_args, "files": len(files), "seconds": args.seconds, "uploads": args.upload,
              "load_average": os.getloadavg(), "runs": runs}
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if all(u["ok"] for r in runs.values() for u in r["load_test"]["uploads"]) else 1


if __name__ == "__main__":
    sys.exit(main())
