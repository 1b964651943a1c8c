"""Command line: ``asr prepare | synth | train | average | export | evaluate | calibrate | transcribe | align | plot |
stream | serve | client | mic | text | lm`` (also ``python -m asr``), one module per command; ``asr-stream`` is another name
for ``asr stream``. Only this package knows argparse; commands import their heavy parts (torch, onnxruntime) when
they run. The options share one vocabulary (:mod:`asr.cli.options`, docs/layout.md)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

__all__ = ["main", "build_parser"]

# the modules asr.cli.<name>, each with add_parser(sub) and run(args); imported when the parser is built,
# so that `python -m asr.cli.stream` (the module of the `asr-stream` script) runs without a second copy of itself
COMMANDS = ("prepare", "synth", "train", "average", "export", "evaluate", "calibrate", "transcribe", "align", "plot", "stream",
            "serve", "client", "mic", "text", "lexicon")
TRAIN_ONLY = ("torch", "torchaudio", "onnx", "yaml")  # what only the 'train' extra installs


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )


def _setup_warnings() -> None:
    """Audio warnings (a file cut short, absurd levels, ...) and grammar warnings (words the
    model cannot spell, left out) as ``warning: <what>: <why>`` on stderr, each once; other
    warnings as Python shows them."""
    import warnings

    from asr.audio import AudioWarning
    from asr.decoding.grammar import GrammarWarning

    show = warnings.showwarning

    def show_warning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, (AudioWarning, GrammarWarning)):
            print(f"warning: {message}", file=sys.stderr, flush=True)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = show_warning
    warnings.simplefilter("once", AudioWarning)
    warnings.simplefilter("once", GrammarWarning)


def build_parser() -> argparse.ArgumentParser:
    from asr import __version__

    p = argparse.ArgumentParser(prog="asr", description="Recurrent CTC speech recognition: prepare, train, evaluate, transcribe.")
    p.add_argument("--version", action="version", version=f"asr {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"asr.cli.{name}").add_parser(sub)
    sp = sub.add_parser("lm", help="word n-gram language models: `asr lm build --manifest train.jsonl --out lm.arpa`, `asr lm ppl`",
                        add_help=False)
    sp.add_argument("lm_args", nargs=argparse.REMAINDER, help="build|ppl and their options (asr lm --help)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["lm"]:  # its own parser, options included
        from asr.cli.lm import main as lm_main

        return lm_main(argv[1:], prog="asr lm")
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    _setup_warnings()
    try:
        return args.func(args)
    except ModuleNotFoundError as exc:
        if args.verbose or exc.name not in TRAIN_ONLY:
            raise
        print(f"error: `asr {args.command}` needs the training install ({exc.name} is missing): "
              "pip install 'asr-toolkit[train]' (or '.[train]' from a checkout)", file=sys.stderr)
        return 2
    except (ValueError, OSError, RuntimeError) as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
