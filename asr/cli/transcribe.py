"""``asr transcribe``: files -> text, with a checkpoint or an exported model (one recognizer,
:func:`asr.load_model`; torch-free for ONNX models)."""

from __future__ import annotations

import json
import sys

from asr.cli.options import add_decoding_args, decoding_options, model_path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    sp = sub.add_parser("transcribe", help="transcribe audio files (wav, flac, ogg, mp3; any rate and channel count; - = stdin)")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="trained checkpoint (best.pt), run with PyTorch")
    src.add_argument("--model", help="exported ONNX model, run with onnxruntime (no PyTorch)")
    sp.add_argument("--format", choices=["text", "json"], default="text", help="text: 'path<TAB>transcript'; json: one object a line")
    sp.add_argument("--threads", type=int, default=1)
    add_decoding_args(sp)
    sp.add_argument("files", nargs="+", help="audio files; '-' reads one file from standard input")
    sp.set_defaults(func=run)


def run(args) -> int:
    import asr
    from asr.audio import AudioError

    (options,) = decoding_options(args)
    rec = asr.load_model(model_path(args), options, num_threads=args.threads)
    failures = 0
    for path in args.files:
        try:
            result = rec.transcribe(path)
        except AudioError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            failures += 1
            continue
        if args.format == "json":
            d = result.to_dict()
            d["path"] = path
            print(json.dumps(d), flush=True)
        else:
            print(f"{path}\t{result.text}", flush=True)
    return 1 if failures else 0
