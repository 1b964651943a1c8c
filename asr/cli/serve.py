"""``asr serve``: the streaming server (websocket + web page + /health + /metrics, and the
OpenAI-compatible /v1/audio/transcriptions) for an exported model, on the torch-free runtime.
A streaming graph serves both; an offline graph serves the API (websocket streams are refused,
saying that live streaming needs the streaming graph); given both (``--model`` twice), the
streaming graph decodes the live streams and the offline graph the API's files. See :mod:`asr.server`."""

from __future__ import annotations

import argparse
import logging

from asr.cli.options import add_decoding_args, add_endpoint_args, decoding_options, endpoint_config, positive
from asr.cli.text import add_itn_arg, text_options

__all__ = ["add_parser", "run", "tls_context", "api_config"]

API_KEY_ENV = "ASR_API_KEY"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a TCP port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port in 0..65535 (0: any free port), got {text}")
    return value


def _rate(text: str) -> int:
    from asr.server.protocol import MAX_RATE, MIN_RATE

    value = positive(int)(text)
    if not MIN_RATE <= value <= MAX_RATE:
        raise argparse.ArgumentTypeError(f"must be in {MIN_RATE}..{MAX_RATE} Hz, got {text}")
    return value


def _fraction(text: str) -> float:
    value = positive(float)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1], got {text}")
    return value


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def add_parser(sub) -> None:
    sp = sub.add_parser("serve", help="streaming server: Vosk-compatible websocket, web page, /health, /metrics")
    sp.add_argument("--model", action="append", metavar="PATH",
                    help="exported ONNX model (default: the built-in English digits model, streaming). A streaming graph "
                         "(`asr export --streaming`) serves the websocket and the OpenAI API; an offline graph serves "
                         "the API only; give --model twice, one of each, for the streaming graph on the websocket and "
                         "the offline one for the API")
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sp.add_argument("--port", type=_port, default=2700, help="TCP port (default 2700, as the Vosk server)")
    sp.add_argument("--certfile", help="TLS certificate (PEM): serve https/wss, which browsers need for the microphone off localhost")
    sp.add_argument("--keyfile", help="TLS private key (PEM) for --certfile")
    sp.add_argument("--threads", type=positive(int), default=1, help="onnxruntime threads for the batched model call (default 1)")
    lim = sp.add_argument_group("limits")
    lim.add_argument("--max-streams", type=positive(int), default=200, help="concurrent streams; one more is refused (default 200)")
    lim.add_argument("--max-message-bytes", type=positive(int), default=1 << 20,
                     help="largest websocket message, bytes; one of exactly this size is accepted (default 1 MiB = 1048576)")
    lim.add_argument("--max-session-s", type=positive(float), default=3600.0, help="longest connection, seconds (default 3600)")
    lim.add_argument("--idle-timeout", type=positive(float), default=30.0, help="close a connection silent this long, seconds (default 30)")
    lim.add_argument("--max-backlog-s", type=positive(float), default=2.0,
                     help="undecoded audio per stream (beyond the model's window) before its socket is no longer read (default 2 s)")
    lim.add_argument("--max-load", type=_fraction, default=0.7,
                     help="admit a stream only while the measured decoding load with it stays at most this fraction "
                          "of the decoding threads' time; refused ones get 1013, try again later (default 0.7)")
    lim.add_argument("--sample-rate", type=_rate, help="rate of streams that send no config, 8000..384000 Hz (default: the model's)")
    b = sp.add_argument_group("batching")
    b.add_argument("--max-batch-size", type=positive(int), default=256, help="streams per model call (default 256)")
    b.add_argument("--max-wait-ms", type=float, default=20.0,
                   help="after new audio, wait this long for more streams before a model call (default 20)")
    b.add_argument("--decode-threads", type=positive(int), default=1,
                   help="decoding loops per process, each with its own thread and share of the streams (default 1)")
    b.add_argument("--workers", type=positive(int), default=None,
                   help="server processes sharing the port (SO_REUSEPORT; the kernel spreads connections among them), "
                        "each with its own decoding loops, admission and 1/N of --max-streams, so that the server uses "
                        f"every core (default: one per core, {_cores()} here; docs/serving.md measures 1 to 4 on 2 cores)")
    api = sp.add_argument_group("OpenAI-compatible API (POST /v1/audio/transcriptions, GET /v1/models)")
    api.add_argument("--api-key", metavar="KEY",
                     help=f"the key /v1 requests must send as 'Authorization: Bearer KEY' (default: ${API_KEY_ENV}, which "
                          "keeps it out of the process list; without either, /v1 needs no key, which only a loopback "
                          "--host allows)")
    api.add_argument("--no-api-key", action="store_true",
                     help="serve /v1 without a key on a --host other than loopback: anyone who reaches the port can use it")
    api.add_argument("--max-upload-mb", type=positive(float), default=200.0,
                     help="largest audio file a request may upload, MiB; larger ones get 413 (default 200: "
                          "over an hour of 16 kHz WAV)")
    api.add_argument("--api-queue", type=_count, default=4,
                     help="transcription requests that may wait per process beside the one being transcribed; "
                          "one more gets 503, try again later (default 4)")
    add_endpoint_args(sp, rule3_off=False)
    add_itn_arg(sp)
    add_decoding_args(sp, alternatives=False)
    sp.set_defaults(func=run)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def api_config(args):
    """The /v1 API's settings: the key from --api-key or $ASR_API_KEY, resolved once here.
    Raises ValueError when a --host other than loopback would serve /v1 without a key and
    --no-api-key does not say that is meant."""
    import os

    from asr.server.openai_api import ApiConfig

    key = args.api_key if args.api_key is not None else (os.environ.get(API_KEY_ENV) or None)
    if key is not None and args.no_api_key:
        source = "--api-key" if args.api_key is not None else f"${API_KEY_ENV}"
        raise ValueError(f"{source} gives a key and --no-api-key says there is none: drop one of them")
    if key is not None and (not key.strip() or key.strip() != key):
        raise ValueError("the API key is empty or has spaces around it")
    if key is None and not args.no_api_key and not _loopback(args.host):
        raise ValueError(f"--host {args.host} serves other machines, and the OpenAI-compatible API (/v1) would need "
                         f"no key: give one with ${API_KEY_ENV} (or --api-key), or --no-api-key to serve it to anyone")
    return ApiConfig(api_key=key, max_upload_bytes=int(args.max_upload_mb * 2**20), queue=args.api_queue)


def tls_context(certfile, keyfile):
    """The server's TLS context for --certfile/--keyfile (None without them)."""
    import ssl

    if not (certfile or keyfile):
        return None
    if not (certfile and keyfile):
        raise ValueError("--certfile and --keyfile go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context


def run(args) -> int:
    api_config(args)  # refused here, once, before any worker starts
    if args.workers is None:
        args.workers = _cores()
    if args.workers > 1:
        return _supervise(args)
    return _serve(args)


def _supervise(args) -> int:
    """``--workers N``: N server processes on one port (each one :func:`_serve`), started and
    stopped together; each answers /health and /metrics for itself (the reply names it). A
    worker that dies takes the others down with it (exit 1), so that whatever supervises the
    server (systemd, a container) restarts the whole of it."""
    import multiprocessing
    import signal
    import socket
    import time

    from asr.runtime.builtin import builtin_model

    # the port held (bound, never listening, so no connection comes here) while the workers bind
    # it too: port 0 becomes one free port that all of them share
    hold = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        hold.bind((args.host, args.port))
    except OSError as exc:
        hold.close()
        raise OSError(f"cannot listen on {args.host}:{args.port}: {exc.strerror.lower()}") from None
    args.port = hold.getsockname()[1]
    args.model = args.model or [builtin_model(streaming=True)]
    serve_models(args.model)  # a bad model file fails here, once, with its message
    endpoint_config(args, rule3_off=False)
    tls_context(args.certfile, args.keyfile)
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no onnxruntime state crosses a fork
    procs = [ctx.Process(target=_serve_worker, args=(args, i), name=f"asr-serve-{i}", daemon=False)
             for i in range(args.workers)]
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in procs:
            p.start()
        while not stopping and all(p.is_alive() for p in procs):
            time.sleep(0.2)
        failed = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: each closes its connections (1001) and exits
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
        for sig, handler in old.items():
            signal.signal(sig, handler)
        hold.close()
    if failed and not stopping:
        logging.getLogger("asr.server").error("worker %s exited with code %s: stopping the others",
                                              failed[0].name, failed[0].exitcode)
        return 1
    return 0


def serve_models(paths: list, num_threads: int = 1):
    """The models of ``--model`` (one or two paths), loaded: (streaming graph or None, offline
    graph or None). Two of one kind are refused: one serves the websocket, the other the API."""
    from asr.runtime import OnnxModel

    if len(paths) > 2:
        raise ValueError(f"--model given {len(paths)} times: at most twice, a streaming graph and an offline graph")
    found = {}
    for path in paths:
        model = OnnxModel(path, num_threads=num_threads)
        kind = "streaming" if model.info.streaming else "offline"
        if kind in found:
            raise ValueError(f"--model {found[kind].info.path} and --model {path} are both {kind} graphs: give one streaming "
                             "graph (the websocket's) and one offline graph (the API's), or one model")
        found[kind] = model
    return found.get("streaming"), found.get("offline")


def _serve_worker(args, index: int) -> None:
    import sys

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker {index} %(levelname)s %(message)s", datefmt="%H:%M:%S")
    sys.exit(_serve(args, worker=index))


def _serve(args, worker: int = 0) -> int:
    from asr.runtime import OfflineRecognizer, OnlineRecognizer, OnnxBackend
    from asr.runtime.builtin import builtin_model
    from asr.server.app import ServerConfig, build_app, run_server

    (options,) = decoding_options(args)
    endpoint = endpoint_config(args, rule3_off=False)
    text = text_options(args)
    args.model = args.model or [builtin_model(streaming=True)]
    streaming, offline = serve_models(args.model, num_threads=args.threads)
    rec = OnlineRecognizer(streaming, endpoint=endpoint, decoding=options) if streaming is not None else None
    api_rec = OfflineRecognizer(OnnxBackend(offline), options) if offline is not None else None
    cfg = ServerConfig(max_streams=-(-args.max_streams // args.workers), max_message_bytes=args.max_message_bytes,
                       max_session_s=args.max_session_s, idle_timeout_s=args.idle_timeout, max_backlog_s=args.max_backlog_s,
                       sample_rate=args.sample_rate, max_batch=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                       decode_threads=args.decode_threads, max_load=args.max_load, workers=args.workers, worker=worker)
    context = tls_context(args.certfile, args.keyfile)
    log = logging.getLogger("asr.server")
    if rec is not None:
        log.info("model %s: streaming, %d Hz, chunks of %.2f s + %.2f s look-ahead; decoding %s", rec.info.path,
                 rec.info.sample_rate, rec.info.chunk_size * rec.info.frame_shift_s,
                 rec.info.right_context * rec.info.frame_shift_s, options.label())
    else:
        log.info("no streaming graph: websocket streams are refused (live streaming needs `asr export --streaming`)")
    api = api_config(args)
    log.info("OpenAI-compatible API: POST /v1/audio/transcriptions, GET /v1/models, model %s (%s; %s; uploads up to %g MiB)",
             (offline or streaming).info.path, "offline graph" if offline is not None else "the streaming graph",
             "key required" if api.api_key else "no key", args.max_upload_mb)
    name = (streaming or offline).info.path
    run_server(build_app(rec, cfg, model_name=name, api=api, api_recognizer=api_rec, text=text), host=args.host, port=args.port,
               ssl_context=context, reuse_port=args.workers > 1)
    return 0
