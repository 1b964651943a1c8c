"""``asr client URL FILE... | --mic``: stream audio files (or the microphone) to a running
``asr serve`` (or any Vosk-protocol server) and print what it recognizes.

Options go anywhere, before or after the URL and the files. The URL is ``ws://HOST:PORT`` (or
``wss://`` with TLS; a path such as ``/ws`` may follow); the page's own ``http://`` or
``https://`` address is taken as ``ws://`` or ``wss://``; anything else is refused, saying so.

Output: stdout, one line per result (an utterance the server closed at an endpoint, and the
final one): ``path<TAB>text``, or with ``--format json`` the server's reply with ``"path"`` added;
stderr: ``path<TAB>partial<TAB>text`` whenever the partial text changes (``--no-partials``:
none) and ``error: path: reason``. Exit status 0, or 1 if any stream failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys

__all__ = ["add_parser", "run", "websocket_url"]


class _AnyOrderParser(argparse.ArgumentParser):
    """The ``client`` subcommand's parser: options anywhere among the URL and the files
    (``asr client URL --format json a.wav``), which plain argparse refuses once the files'
    ``nargs="*"`` has matched nothing right after the URL."""

    def parse_known_args(self, args=None, namespace=None):
        if getattr(self, "_inner", False):  # parse_known_intermixed_args calls this, twice
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def websocket_url(url: str) -> str:
    """``ws://`` and ``wss://`` URLs as they are; ``http://`` and ``https://`` (the page's address)
    as ``ws://`` and ``wss://``; anything else a ValueError that says what to write."""
    m = re.match(r"(?i)(wss?|https?)://(?=[^/\s])", url)
    if not m:
        here = f", here ws://{url}" if "://" not in url else ""
        raise ValueError(f"{url!r} is not a websocket address: use ws://HOST:PORT{here} (wss:// with TLS)")
    scheme = m.group(1).lower()
    return {"http": "ws", "https": "wss"}.get(scheme, scheme) + url[len(m.group(1)):]


def add_parser(sub) -> None:
    from asr.cli.options import add_format_arg, positive

    sp = sub.add_parser("client", help="stream files or the microphone to a running `asr serve` (Vosk protocol)")
    sp.__class__ = _AnyOrderParser  # argparse builds a subcommand's parser itself; this one takes options anywhere
    sp.add_argument("url", help="websocket address: ws://HOST:PORT, e.g. ws://127.0.0.1:2700 (wss:// with TLS; "
                                "the page's http:// or https:// address also works)")
    sp.add_argument("files", nargs="*", default=[], help="audio files (any format soundfile reads, sent at their own rate)")
    sp.add_argument("--mic", action="store_true", help="stream the default microphone instead of files (needs sounddevice)")
    sp.add_argument("--seconds", type=positive(float), help="with --mic: stop after this much audio (default: Ctrl-C)")
    sp.add_argument("--sample-rate", type=positive(int), help="with --mic: capture rate, Hz (default: the device's; the server resamples)")
    sp.add_argument("--piece-ms", type=positive(float), default=200.0, help="audio per message, ms (default 200)")
    sp.add_argument("--realtime", action="store_true",
                    help="send files no faster than real time (default: as fast as the server takes them)")
    sp.add_argument("--phrase", action="append", metavar="PHRASE",
                    help="a phrase the server keeps the text to (config.phrase_list: any sequence of them, "
                         "'[unk]' for anything else; repeatable)")
    sp.add_argument("--hotword", action="append", metavar="PHRASE",
                    help="a phrase the server favours without restricting to it (config.hotwords; repeatable)")
    sp.add_argument("--alternatives", type=int, default=0, metavar="N",
                    help="ask for the N best texts of each result (config.max_alternatives; --format json shows them, "
                         "text output the best; default 0)")
    sp.add_argument("--no-words", action="store_true", help="ask for text only (config.words = false)")
    add_format_arg(sp, "'path<TAB>text' a result", "each result reply as JSON, with \"path\" added")
    sp.add_argument("--no-partials", action="store_true", help="do not print partial results to stderr")
    sp.set_defaults(func=run)


def _printer(path: str, args):
    from asr.server.client import result_text

    last = {"partial": ""}

    def on_reply(reply: dict) -> None:
        if "partial" in reply:
            if reply["partial"] != last["partial"] and not args.no_partials:
                print(f"{path}\tpartial\t{reply['partial']}", file=sys.stderr, flush=True)
            last["partial"] = reply["partial"]
            return
        last["partial"] = ""
        if args.format == "json":
            print(json.dumps({"path": path, **reply}, ensure_ascii=False), flush=True)
        elif result_text(reply):
            print(f"{path}\t{result_text(reply)}", flush=True)

    return on_reply


async def _main(args) -> int:
    import aiohttp

    from asr.audio import AudioError
    from asr.server.client import stream_file, stream_pieces

    kw = dict(words=not args.no_words, phrase_list=args.phrase, hotwords=args.hotword, max_alternatives=args.alternatives)
    failures = 0
    async with aiohttp.ClientSession() as session:
        if args.mic:
            from asr.cli.mic import Microphone

            mic = Microphone(args.sample_rate, block_s=args.piece_ms / 1000, seconds=args.seconds).start()
            print(f"listening at {mic.rate} Hz, streaming to {args.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
            try:  # Ctrl-C ends the capture; the eof then brings the final result
                asyncio.get_running_loop().add_signal_handler(signal.SIGINT, mic.stop)
            except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
                pass
            reports = [await stream_pieces(args.url, mic, mic.rate, name="mic", on_reply=_printer("mic", args),
                                           session=session, **kw)]
        else:
            reports = []
            for path in args.files:
                try:
                    reports.append(await stream_file(args.url, path, chunk_s=args.piece_ms / 1000, realtime=args.realtime,
                                                     on_reply=_printer(path, args), session=session, **kw))
                except AudioError as exc:
                    print(f"error: {exc}", file=sys.stderr, flush=True)
                    failures += 1
    for r in reports:
        if r.error:
            print(f"error: {r.name}: {r.error}", file=sys.stderr, flush=True)
            failures += 1
    return 1 if failures else 0


def run(args) -> int:
    args.url = websocket_url(args.url)
    if not args.mic and not args.files:
        raise ValueError("give audio files to stream, or --mic")
    if args.mic and args.files:
        raise ValueError("give files or --mic, not both")
    from asr.cli.mic import MicrophoneError

    try:
        return asyncio.run(_main(args))
    except MicrophoneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
