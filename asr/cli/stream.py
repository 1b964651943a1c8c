"""``asr-stream``: feed audio files to an exported model as if they were live sources.

Usage: ``asr-stream --model model.onnx FILE... [--chunk-ms N] [--realtime] [--json] [--threads N]
[--lm lm.arpa] [--hotword PHRASE]...``

With ``--lm``/``--hotwords``/``--beam-size`` each finished utterance is decoded again by prefix
beam search (partials stay greedy).

Each file is read at its own sample rate and fed in pieces of ``--chunk-ms`` (resampled in
the stream). Output:

- stdout, one line per finished utterance: ``path<TAB>start-end<TAB>text`` (seconds, two
  decimals), or with ``--json`` one object per line:
  ``{"path", "text", "start", "end", "words": [{"word", "start", "end", "confidence"}]}``;
- stderr, while decoding: ``path<TAB>partial<TAB>text`` whenever the current utterance's text
  changes (``--no-partials`` turns these off), and ``error: path: reason`` for a bad file.

Utterances end at endpoints (``--rule1/2/3`` seconds, see ``asr.runtime.endpoint``;
``--no-endpoint``: one utterance per file) and at the end of each file. An offline graph
prints one final line per file (no partials; ``--realtime`` is ignored). Exit status: 0, or
1 if any file failed (the others are still decoded), 2 if the model cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Optional, Sequence

from asr.audio import AudioError, read_audio
from asr.cli.options import add_decoding_args, decoding_options, positive
from asr.decoding.result import Utterance
from asr.runtime.offline import OfflineRecognizer
from asr.runtime import OnnxBackend, OnnxModel
from asr.runtime.builtin import builtin_model
from asr.runtime.endpoint import EndpointConfig
from asr.runtime.online import OnlineRecognizer
from asr.runtime.schema import ModelError

__all__ = ["main"]


def _rule(text: str):
    return None if text.lower() in ("off", "none") else positive(float)(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="asr-stream", description="Stream audio files through an exported ONNX model.")
    p.add_argument("--model", help="model.onnx from `asr export` (streaming or offline graph; default: the built-in English digits model, streaming)")
    p.add_argument("files", nargs="+", help="audio files (any format and rate soundfile reads; '-' = standard input)")
    p.add_argument("--chunk-ms", type=positive(float), default=100.0, help="piece size fed per call (default 100 ms)")
    p.add_argument("--realtime", action="store_true", help="sleep to feed audio no faster than real time")
    p.add_argument("--json", action="store_true", help="final results as one JSON object per line")
    p.add_argument("--threads", type=positive(int), default=1, help="onnxruntime threads (default 1)")
    p.add_argument("--no-partials", action="store_true", help="do not print partial results to stderr")
    p.add_argument("--no-endpoint", action="store_true", help="no endpointing: one utterance per file")
    d = EndpointConfig()
    p.add_argument("--rule1", type=_rule, default=d.rule1, help=f"s of non-speech before any speech (default {d.rule1}; 'off')")
    p.add_argument("--rule2", type=_rule, default=d.rule2, help=f"s of trailing non-speech after speech (default {d.rule2}; 'off')")
    p.add_argument("--rule3", type=_rule, default=d.rule3, help=f"maximum utterance length in s (default {d.rule3}; 'off')")
    add_decoding_args(p)
    return p


def _print_final(path: str, utt: Utterance, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"path": path, "text": utt.text, "start": utt.start, "end": utt.end,
                          "words": [w.__dict__ for w in utt.words]}), flush=True)
    else:
        print(f"{path}\t{utt.start:.2f}-{utt.end:.2f}\t{utt.text}", flush=True)


def _stream_file(rec: OnlineRecognizer, path: str, args) -> None:
    samples, rate = read_audio(path)  # the file's own rate: the stream resamples
    stream = rec.create_stream(name=path)
    step = max(1, int(round(rate * args.chunk_ms / 1000)))
    printed, last_partial = 0, ""
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
            _print_final(path, utt, args.json)
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        (options,) = decoding_options(args)
        model = OnnxModel(args.model or builtin_model(streaming=True), num_threads=args.threads)
        if model.info.streaming:
            endpoint = None if args.no_endpoint else EndpointConfig(args.rule1, args.rule2, args.rule3)
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
                _print_final(path, rec.transcribe(path).utterances[0], args.json)
        except AudioError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
