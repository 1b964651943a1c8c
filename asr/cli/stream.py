"""``asr stream`` (also ``asr-stream``, the same command): feed audio files to an exported model
as if they were live sources.

Usage: ``asr stream --model model.onnx FILE... [--piece-ms N] [--realtime] [--format json]
[--threads N] [--lm lm.arpa] [--hotword PHRASE]...``

With ``--lm``/``--hotwords``/``--beam-size`` each finished utterance is decoded again by prefix
beam search (partials stay greedy). With ``--itn`` finished utterances are printed in written
form (:mod:`asr.itn`; partials stay spoken).

Each file is read at its own sample rate and fed in pieces of ``--piece-ms`` (resampled in
the stream). Output:

- stdout, one line per finished utterance: ``path<TAB>start-end<TAB>text`` (seconds, two
  decimals), or with ``--format json`` one object per line:
  ``{"path", "text", "start", "end", "words": [{"word", "start", "end", "confidence"}]}``;
- stderr, while decoding: ``path<TAB>partial<TAB>text`` whenever the current utterance's text
  changes (``--no-partials`` turns these off), and ``error: path: reason`` for a bad file.

Utterances end at endpoints (``--rule1/2/3`` seconds, see ``asr.runtime.endpoint``;
``--no-endpoint``: one utterance per file) and at the end of each file. An offline graph
prints one final line per file (no partials; ``--realtime`` is ignored). Exit status: 0, or
1 if any file failed (the others are still decoded), 2 if the model cannot be loaded.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Optional, Sequence

from asr.cli.options import add_decoding_args, add_endpoint_args, add_format_arg, decoding_options, endpoint_config, positive
from asr.cli.text import add_itn_arg, text_options

if TYPE_CHECKING:
    from asr.decoding.result import Utterance
    from asr.runtime.online import OnlineRecognizer

__all__ = ["add_parser", "run", "main"]

HELP = "stream audio files through an exported ONNX model as if live: partial results, endpoints (also `asr-stream`)"


def add_parser(sub) -> None:
    sp = sub.add_parser("stream", help=HELP, description="Stream audio files through an exported ONNX model, piece by "
                        "piece as if they were live sources: partial results on stderr, each finished utterance on stdout. "
                        "`asr-stream` is the same command.")
    sp.add_argument("--model",
                    help="model.onnx from `asr export` (streaming or offline graph; default: the built-in English digits model, streaming)")
    sp.add_argument("files", nargs="+", help="audio files (any format and rate soundfile reads; '-' = standard input)")
    sp.add_argument("--piece-ms", type=positive(float), default=100.0, help="audio fed per call, ms (default 100)")
    sp.add_argument("--realtime", action="store_true", help="sleep to feed audio no faster than real time")
    add_format_arg(sp, "'path<TAB>start-end<TAB>text' a finished utterance", "one JSON object a finished utterance")
    sp.add_argument("--threads", type=positive(int), default=1, help="onnxruntime threads (default 1)")
    sp.add_argument("--no-partials", action="store_true", help="do not print partial results to stderr")
    add_endpoint_args(sp, no_endpoint=True)
    add_decoding_args(sp)
    add_itn_arg(sp)
    sp.set_defaults(func=run)


def _print_final(path: str, utt: Utterance, as_json: bool) -> None:
    if as_json:
        d = {"path": path, "text": utt.text, "start": utt.start, "end": utt.end, "words": [w.__dict__ for w in utt.words]}
        if utt.alternatives:  # --alternatives N
            d["alternatives"] = utt.to_dict()["alternatives"]
        print(json.dumps(d), flush=True)
    else:
        print(f"{path}\t{utt.start:.2f}-{utt.end:.2f}\t{utt.text}", flush=True)


def _stream_file(rec: OnlineRecognizer, path: str, args) -> None:
    from asr.audio import read_audio

    samples, rate = read_audio(path)  # the file's own rate: the stream resamples
    stream = rec.create_stream(name=path)
    step = max(1, int(round(rate * args.piece_ms / 1000)))
    printed, last_partial = 0, ""
    text = text_options(args)
    t0 = time.monotonic()

    def report():
        nonlocal printed, last_partial
        result = rec.get_result(stream)
        for utt in result.utterances:
            if not utt.final:
                if utt.text != last_partial and not args.no_partials:
                    print(f"{path}\tpartial\t{utt.text}", file=sys.stderr, flush=True)
                last_partial = utt.text
        finals = [u for u in result.utterances if u.final]
        for utt in finals[printed:]:
            _print_final(path, text.apply(utt), args.format == "json")
            last_partial = ""
        printed = len(finals)

    for start in range(0, samples.size, step):
        if args.realtime:
            time.sleep(max(0.0, t0 + start / rate - time.monotonic()))
        stream.accept_waveform(rate, samples[start : start + step])
        while rec.decode_stream(stream):
            pass
        report()
    stream.input_finished()
    while rec.decode_stream(stream):
        pass
    report()


def run(args) -> int:
    from asr.audio import AudioError
    from asr.runtime import OnnxBackend, OnnxModel
    from asr.runtime.builtin import builtin_model
    from asr.runtime.offline import OfflineRecognizer
    from asr.runtime.online import OnlineRecognizer
    from asr.runtime.schema import ModelError

    try:
        (options,) = decoding_options(args)
        model = OnnxModel(args.model or builtin_model(streaming=True), num_threads=args.threads)
        if model.info.streaming:
            endpoint = endpoint_config(args)
            rec = OnlineRecognizer(model, endpoint=endpoint, decoding=options)
        else:
            rec = OfflineRecognizer(OnnxBackend(model), options)
    except (ModelError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failures = 0
    for path in args.files:
        try:
            if isinstance(rec, OnlineRecognizer):
                _stream_file(rec, path, args)
            else:
                _print_final(path, text_options(args).apply(rec.transcribe(path).utterances[0]), args.format == "json")
        except AudioError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            failures += 1
    return 1 if failures else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``asr-stream ARGS``: ``asr stream ARGS``, the same parser and the same run."""
    from asr.cli import main as asr_main

    return asr_main(["stream", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
