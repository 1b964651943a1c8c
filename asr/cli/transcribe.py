"""``asr transcribe``: files -> text, with a checkpoint or an exported model (one recognizer,
:func:`asr.load_model`; torch-free for ONNX models).

Files longer than :data:`asr.runtime.longform.LONG_FORM_MIN_S` seconds (``--long-form always``: every
file) are read in blocks, cut into speech segments by voice activity detection (``--vad``) and
decoded batch by batch in bounded memory (:mod:`asr.runtime.longform`), with a progress bar on a
terminal. ``--write`` writes transcript files (txt, json, srt, vtt, tsv, several or all) into
``--output-dir`` as the utterances are decoded (:mod:`asr.writers`), in written form with ``--itn``
(:mod:`asr.itn`: stdout, JSON and every file); inputs of the same name
(``a/x.wav b/x.wav``) get distinct files (``x.txt``, ``x-2.txt``), each renamed one noted on
stderr."""

from __future__ import annotations

import json
import os
import sys

from asr.cli.options import (
    add_decoding_args,
    add_format_arg,
    add_model_args,
    add_threads_arg,
    add_write_args,
    decoding_options,
    load_recognizer,
    model_path,
    output_stems,
    positive,
    transcript_writers,
)
from asr.cli.text import add_itn_arg, text_options

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    from asr.vad import METHODS, VadOptions

    sp = sub.add_parser("transcribe", help="transcribe audio files (wav, flac, ogg, mp3; any rate and channel count; - = stdin)")
    add_model_args(sp)
    add_format_arg(sp, "'path<TAB>transcript' a file", "one JSON object a file")
    add_threads_arg(sp)
    add_decoding_args(sp)
    add_itn_arg(sp)
    g = sp.add_argument_group("long recordings and transcript files")
    add_write_args(g)
    g.add_argument("--long-form", choices=["auto", "always", "never"], default="auto",
                   help="segment files by voice activity: auto = files longer than 30 s (default), always, never")
    d = VadOptions()
    g.add_argument("--vad", choices=METHODS, default=d.method, help=f"voice activity detector for long files (default {d.method})")
    g.add_argument("--vad-threshold", type=float, default=d.threshold,
                   help=f"speech probability that starts speech (default {d.threshold})")
    g.add_argument("--min-silence", type=float, default=d.min_silence_s, help=f"s of pause that ends a segment (default {d.min_silence_s})")
    g.add_argument("--speech-pad", type=float, default=d.pad_s, help=f"s of audio kept before and after speech (default {d.pad_s})")
    g.add_argument("--max-segment", type=positive(float), default=d.max_segment_s,
                   help=f"longest segment in s; longer speech is cut at its quietest point (default {d.max_segment_s})")
    g.add_argument("--no-progress", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    sp.add_argument("files", nargs="+", help="audio files; '-' reads one file from standard input")
    sp.set_defaults(func=run)


def _progress(path: str, duration: float, disable: bool):
    """A tqdm bar over seconds of audio (quiet when stderr is not a terminal), or None."""
    if disable or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=round(duration, 1), desc=os.path.basename(path), unit="s", file=sys.stderr, leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of audio [{elapsed}<{remaining}, {rate_fmt}]")


def _utterances(rec, path: str, args, lf_options):
    """(utterances: an iterator, duration, close()) for one file: the long-form path for long
    files, else the whole file in one call."""
    import warnings

    import numpy as np

    from asr.audio import AudioWarning
    from asr.runtime import longform

    long = args.long_form == "always"
    blocks = None
    if args.long_form == "auto":  # standard input too: read once, into a temporary file, not into memory
        blocks = longform.audio_blocks(path, rec.sample_rate, lf_options.block_s)
        long = blocks.duration > longform.LONG_FORM_MIN_S
    if not long and path == "-" and blocks is not None:  # short: its samples, from the copy already read
        samples = np.concatenate(list(blocks))  # warned of levels as "<stdin>" while read
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AudioWarning)
            result = rec.transcribe(samples, rec.sample_rate, long_form=False)
        return iter(result.utterances), result.duration, lambda: None
    if not long:
        result = rec.transcribe(path, long_form=False if args.long_form == "never" else None, options=lf_options)
        return iter(result.utterances), result.duration, lambda: None
    if blocks is None:
        blocks = longform.audio_blocks(path, rec.sample_rate, lf_options.block_s)
    bar = _progress(path, blocks.duration, args.no_progress)

    def progress(seconds: float) -> None:
        bar.update(round(seconds, 1) - bar.n)

    utts = longform.iter_utterances(rec, path, options=lf_options, progress=progress if bar is not None else None,
                                     blocks=blocks)
    return utts, blocks.duration, (bar.close if bar is not None else (lambda: None))


def run(args) -> int:
    from asr.audio import AudioError
    from asr.decoding.result import make_result
    from asr.runtime.longform import LongFormOptions
    from asr.vad import VadOptions

    (options,) = decoding_options(args)
    lf_options = LongFormOptions(vad=VadOptions(method=args.vad, threshold=args.vad_threshold, min_silence_s=args.min_silence,
                                                pad_s=args.speech_pad, max_segment_s=args.max_segment))
    writers = transcript_writers(args)
    text = text_options(args)
    rec = load_recognizer(model_path(args), options, args.threads)
    stems = output_stems(args.files, writers)
    failures = 0
    for path, stem in zip(args.files, stems):
        sinks, close = [], (lambda: None)
        try:
            utts, duration, close = _utterances(rec, path, args, lf_options)
            sinks = [w.open(path, stem) for w in writers]
            kept, texts = [], []
            for utt in utts:
                if not utt.text:
                    continue
                utt = text.apply(utt)
                for s in sinks:
                    s.add(utt)
                texts.append(utt.text)
                if args.format == "json":
                    kept.append(utt)
            close()
            for s in sinks:
                s.close(duration)
        except AudioError as exc:
            close()
            for s in sinks:
                s.abort()
            print(f"error: {exc}", file=sys.stderr, flush=True)
            failures += 1
            continue
        if args.format == "json":
            d = make_result(path, kept, True, duration).to_dict()
            d["path"] = path
            print(json.dumps(d), flush=True)
        else:
            print(f"{path}\t{' '.join(texts)}", flush=True)
    return 1 if failures else 0
