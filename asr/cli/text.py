"""``asr text``: text filters for scripts, one text a line on standard input, one a line out.

    asr text itn < spoken.txt > written.txt       # "seven thirty p m" -> "7:30 p.m." (asr.itn)
    asr text punctuate < plain.txt > readable.txt # "where are you i asked" -> "Where are you? I asked." (asr.punctuation)

Each line is written, and flushed, as soon as it is read, so the filter works in a pipe
that stays open. A line comes out for every line that goes in: an empty line gives an empty
line; bytes that are not UTF-8 and control characters pass through as they are; a line longer
than :data:`MAX_LINE` bytes (1 MiB) passes through unchanged, in pieces, in bounded memory.
Also :func:`add_itn_arg`: the ``--itn``, ``--punctuate`` and ``--punctuation-model`` switches of
the commands that transcribe.
"""

from __future__ import annotations

import sys
from typing import BinaryIO, Callable, Optional

__all__ = ["add_parser", "run", "run_punctuate", "filter_lines", "add_itn_arg", "text_options", "MAX_LINE"]

MAX_LINE = 1 << 20  # bytes normalized in one line; the rest of a longer one passes through unchanged


def add_itn_arg(sp) -> None:
    """``--itn``: final results in written form; ``--punctuate``: with marks and capitals
    (``asr transcribe``, ``asr stream``)."""
    sp.add_argument("--itn", action="store_true",
                    help="write final results in written form: numbers, money, times, dates ('seven thirty p m' -> "
                         "'7:30 p.m.'; asr.itn); partial results stay spoken")
    sp.add_argument("--punctuate", action="store_true",
                    help="write final results with marks and capitals ('where are you i asked' -> 'Where are you? I "
                         "asked.'; asr.punctuation, the built-in tagger); words keep their times; partial results stay plain")
    sp.add_argument("--punctuation-model", metavar="FILE",
                    help="the punctuation model for --punctuate, which it implies (an exported tagger, "
                         "recipes/punctuation; default: the built-in one)")


def text_options(args):
    """The :class:`asr.itn.TextOptions` of :func:`add_itn_arg`'s switches; the punctuation
    model is loaded here, so that a bad one stops the command before any audio (exit 2)."""
    from asr.itn import TextOptions

    punctuate = bool(getattr(args, "punctuate", False))
    model = getattr(args, "punctuation_model", None)
    try:
        options = TextOptions(itn=bool(getattr(args, "itn", False)), punctuate=punctuate or model is not None,
                              punctuation_model=model)
        if options.punctuate:
            from asr.punctuation import default_punctuator

            default_punctuator(model)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return options


def add_parser(sub) -> None:
    sp = sub.add_parser("text", help="text filters, one text a line on stdin, one a line out: "
                                     "`asr text itn` (spoken form to written form), `asr text punctuate` (marks and "
                                     "capitals)",
                        description="Text filters for scripts: each reads one text a line on standard input and "
                                    "writes one a line on standard output, flushed line by line.")
    kinds = sp.add_subparsers(dest="filter", required=True)
    p = kinds.add_parser("itn", help="inverse text normalization: 'five dollars and twenty cents' -> '$5.20'",
                         description="Spoken form to written form (English, rule-based: asr.itn): cardinals, ordinals, "
                                     "decimals, fractions, money, times, dates, measures, telephone numbers and a few "
                                     "abbreviations; ordinary words ('one of them') stay words.")
    p.set_defaults(func=run)
    p = kinds.add_parser("punctuate", help="marks and capitals: 'where are you i asked' -> 'Where are you? I asked.'",
                         description="Marks (comma, period, question mark) and capitals for lower-case text without marks, "
                                     "as a recognizer writes it, by a small bidirectional GRU tagger (asr.punctuation). "
                                     "Whitespace is kept; a word that already has a capital or a mark keeps it; long "
                                     "lines are tagged in overlapping windows.")
    p.add_argument("--model", metavar="FILE", help="an exported punctuation model (default: the built-in one, "
                                                     "asr/assets/punctuation/model.onnx)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    p.set_defaults(func=run_punctuate)


def filter_lines(fn: Callable[[str], str], inp: BinaryIO, out: BinaryIO) -> int:
    """Apply ``fn`` to each line of ``inp`` (bytes, any line ending) and write one line each to
    ``out``, flushed; returns the number of lines. Text is UTF-8 with undecodable bytes carried
    through unchanged (``surrogateescape``)."""
    count = 0
    while True:
        line = inp.readline(MAX_LINE + 1)
        if not line:
            return count
        count += 1
        if len(line) > MAX_LINE and not line.endswith(b"\n"):  # too long: as it is, piece by piece
            out.write(line)
            while not line.endswith(b"\n"):
                line = inp.readline(MAX_LINE)
                if not line:
                    out.write(b"\n")
                    break
                out.write(line)
            out.flush()
            continue
        text = line[:-1] if line.endswith(b"\n") else line
        written = fn(text.decode("utf-8", "surrogateescape"))
        out.write(written.encode("utf-8", "surrogateescape") + b"\n")
        out.flush()


def run(args, stdin: Optional[BinaryIO] = None, stdout: Optional[BinaryIO] = None) -> int:
    from asr.itn import inverse_normalize

    return _filter(inverse_normalize, stdin, stdout)


def run_punctuate(args, stdin: Optional[BinaryIO] = None, stdout: Optional[BinaryIO] = None) -> int:
    from asr.punctuation import Punctuator

    if args.threads < 1:
        print(f"error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    try:
        punctuator = Punctuator(args.model, num_threads=args.threads)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _filter(punctuator.punctuate, stdin, stdout)


def _filter(fn: Callable[[str], str], stdin: Optional[BinaryIO], stdout: Optional[BinaryIO]) -> int:
    inp = stdin if stdin is not None else sys.stdin.buffer
    out = stdout if stdout is not None else sys.stdout.buffer
    try:
        filter_lines(fn, inp, out)
    except BrokenPipeError:  # `asr text itn < big.txt | head`: the reader is gone, nothing is wrong
        if stdout is None:  # and Python's own flush at exit must not say otherwise
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
