"""``asr align``: word start and end times of a known transcript (CTC forced alignment,
:meth:`asr.runtime.offline.OfflineRecognizer.align`; torch-free for ONNX models).

    asr align --model model.onnx --text "seven three" a.wav
    asr align --checkpoint best.pt --manifest data/x/test.jsonl --format json > aligned.jsonl

Output (stdout): one line per word, ``path<TAB>start<TAB>end<TAB>word<TAB>confidence``
(seconds), or with ``--format json`` one object per file or manifest entry (``path``, ``text``,
``duration``, ``words`` with ``start``, ``end``, ``confidence``). The words are placed within the
speech that ``--vad`` hears, the first starting and the last ending where it does (``--vad
none``: anywhere, by the model alone). ``--write`` also writes
transcript files (srt, vtt, ...: :mod:`asr.writers`), one per file or manifest entry (entries of
the same name, such as segments of one file, get ``x``, ``x-2``, ...; noted on stderr). An entry that cannot be aligned (unreadable
audio, a word the vocabulary cannot spell, audio too short for its text) is reported on stderr
and the others are still aligned (exit status 1)."""

from __future__ import annotations

import json
import sys

from asr.cli.options import (
    add_format_arg,
    add_model_args,
    add_threads_arg,
    add_write_args,
    load_recognizer,
    model_path,
    output_stems,
    transcript_writers,
)

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    from asr.vad import METHODS, VadOptions

    sp = sub.add_parser("align", help="word times of a known transcript (CTC forced alignment)")
    add_model_args(sp)
    what = sp.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="the transcript of FILE")
    what.add_argument("--manifest", help="a JSONL manifest: align each entry's audio (or segment) to its text")
    sp.add_argument("file", nargs="?", help="the audio file (with --text; '-' = standard input)")
    add_format_arg(sp, "'path<TAB>start<TAB>end<TAB>word<TAB>confidence' a word",
                   "one JSON object a file or manifest entry")
    sp.add_argument("--vad", choices=METHODS, default=VadOptions().method,
                    help=f"place the words within the speech this detector hears (default {VadOptions().method}; "
                         "none: anywhere in the audio)")
    add_threads_arg(sp)
    add_write_args(sp.add_argument_group("transcript files"))
    sp.set_defaults(func=run)


def run(args) -> int:
    from asr.audio import AudioError, load_audio
    from asr.manifest import read_manifest, segment_of
    from asr.vad import VadOptions

    if args.text is not None and not args.file:
        raise ValueError("--text needs the audio FILE it transcribes")
    if args.manifest and args.file:
        raise ValueError("give either --text with one FILE or --manifest, not a FILE with --manifest")
    rec = load_recognizer(model_path(args), threads=args.threads)
    writers = transcript_writers(args)
    if args.text is not None:
        jobs = [(args.file, lambda: args.file, args.text)]
    else:
        jobs = [(e.audio_filepath, lambda e=e: load_audio(e.audio_filepath, rec.sample_rate, *segment_of(e)), e.text)
                for e in read_manifest(args.manifest)]
    stems = output_stems([name for name, _, _ in jobs], writers)
    failures = 0
    for (name, audio, text), stem in zip(jobs, stems):
        try:
            samples = audio()
            result = rec.align(samples, text, None if isinstance(samples, str) else rec.sample_rate,
                               vad=None if args.vad == "none" else VadOptions(method=args.vad))
        except (AudioError, ValueError) as exc:
            print(f"error: {exc}" if name in str(exc) else f"error: {name}: {exc}", file=sys.stderr, flush=True)
            failures += 1
            continue
        result.name = name
        for w in writers:
            w.write(result, name, stem)
        if args.format == "json":
            print(json.dumps({"path": name, "text": result.text, "duration": result.duration,
                              "words": [w.__dict__ for w in result.words]}), flush=True)
        else:
            for w in result.words:
                print(f"{name}\t{w.start:.3f}\t{w.end:.3f}\t{w.word}\t{w.confidence:.4f}", flush=True)
    return 1 if failures else 0
