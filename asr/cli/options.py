"""Command-line options shared by several commands: decoding (``asr evaluate``, ``asr
transcribe``, ``asr-stream``) -> :class:`asr.decoding.options.DecodingOptions`."""

from __future__ import annotations

import argparse
import itertools
from typing import Optional

from asr.decoding.beam_search import BeamSearchOptions
from asr.decoding.options import DecodingOptions

__all__ = ["add_decoding_args", "decoding_options", "positive", "add_model_args", "model_path", "load_recognizer", "training_side",
           "output_stems", "BUILTIN_HELP"]


def positive(kind):
    """An argparse type: a positive ``kind`` (int or float)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def add_decoding_args(sp, grid: bool = False) -> None:
    g = sp.add_argument_group("decoding (default: greedy; beam search with --beam-size, --lm or hotwords)")
    g.add_argument("--beam-size", type=int, help="prefix beam search with this beam (default 16 with --lm/hotwords, else 0 = greedy)")
    g.add_argument("--lm", help="word n-gram language model, ARPA (`asr lm build`)")
    many = "; comma-separated values run a grid search and report the best" if grid else ""
    g.add_argument("--alpha", help=f"LM weight (default {BeamSearchOptions.alpha}){many}")
    g.add_argument("--beta", help=f"bonus per word, the insertion bonus (default {BeamSearchOptions.beta}){many}")
    g.add_argument("--char-lm", help="character n-gram language model, ARPA (`asr lm build --units char`); alone or with --lm")
    g.add_argument("--char-alpha", help=f"character LM weight (default {BeamSearchOptions.char_alpha}){many}")
    g.add_argument("--hotwords", help="file of words or phrases to favour: one a line, optional <TAB>bonus per token")
    g.add_argument("--hotword", action="append", metavar="PHRASE", help="a word or phrase to favour (repeatable)")
    g.add_argument("--hotword-weight", type=float, default=BeamSearchOptions.hotword_weight,
                   help=f"bonus per matched token of a hotword (default {BeamSearchOptions.hotword_weight})")
    g.add_argument("--no-lm-lookahead", action="store_true",
                   help="character models: score words only once complete (default: unigram look-ahead while spelling)")
    if grid:
        g.add_argument("--jobs", type=int, default=1, help="processes for beam search (default 1)")


def _floats(text: Optional[str], name: str, default: float) -> list[float]:
    if text is None:
        return [default]
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{name}: expected a number or comma-separated numbers, got {text!r}") from None
    if not values:
        raise ValueError(f"{name}: no value given")
    return values


def decoding_options(args, grid: bool = False) -> list[DecodingOptions]:
    """The decoding options of the command line: one set, or with comma-separated
    --alpha/--char-alpha/--beta (``grid``) one per combination."""
    alphas = _floats(args.alpha, "--alpha", BeamSearchOptions.alpha)
    char_alphas = _floats(args.char_alpha, "--char-alpha", BeamSearchOptions.char_alpha)
    betas = _floats(args.beta, "--beta", BeamSearchOptions.beta)
    if not grid and max(len(alphas), len(char_alphas), len(betas)) > 1:
        raise ValueError("several --alpha/--beta/--char-alpha values (a grid search) need `asr evaluate`")
    if not args.lm:
        alphas = alphas[:1]
    if not args.char_lm:
        char_alphas = char_alphas[:1]
    base = DecodingOptions(beam_size=args.beam_size, lm=args.lm, char_lm=args.char_lm,
                           hotwords={p: float("nan") for p in args.hotword or ()}, hotwords_file=args.hotwords,
                           hotword_weight=args.hotword_weight, lm_lookahead=not args.no_lm_lookahead,
                           alpha=alphas[0], char_alpha=char_alphas[0], beta=betas[0])
    return [base.replace(alpha=a, char_alpha=c, beta=b) for a, c, b in itertools.product(alphas, char_alphas, betas)]


BUILTIN_HELP = "default: the built-in English digits model"


def add_model_args(sp, builtin: bool = True) -> None:
    """``--checkpoint`` (PyTorch) or ``--model`` (ONNX, torch-free); with neither, the
    built-in digits model (``builtin``; else one of them is required). :func:`model_path`
    reads them back."""
    src = sp.add_mutually_exclusive_group(required=not builtin)
    src.add_argument("--checkpoint", help="trained checkpoint (best.pt), run with PyTorch")
    src.add_argument("--model", help="exported ONNX model (offline or streaming graph, fp32 or int8), run with "
                                     f"onnxruntime (no PyTorch){'; ' + BUILTIN_HELP if builtin else ''}")


def model_path(args, streaming: bool = False) -> str:
    """The model of ``--checkpoint`` / ``--model``, refused when it is the other kind; with
    neither, the built-in digits model (its streaming graph with ``streaming``)."""
    from asr.runtime.builtin import builtin_model
    from asr.runtime.model import is_checkpoint

    if args.model and is_checkpoint(args.model):
        raise ValueError(f"{args.model}: is a PyTorch checkpoint, not an ONNX model: use --checkpoint")
    if getattr(args, "checkpoint", None):
        return args.checkpoint
    return args.model or builtin_model(streaming)


def training_side(what: str, module: str = "asr.train"):
    """Import ``module`` of the training side (:mod:`asr.train`, PyTorch) for ``what``, or exit
    with a message that says which install it needs: the CLI is the only layer that sees both."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").split(".")[0] in ("torch", "torchaudio", "onnx", "yaml"):
            raise
        raise SystemExit(f"error: {what} needs the training install ({exc.name} is missing): "
                         "pip install 'asr-toolkit[train]' (in a checkout: pip install '.[train]')") from None


def load_recognizer(path: str, decoding=None, threads: int = 1, chunk_size: Optional[int] = None,
                    right_context: Optional[int] = None):
    """The :class:`asr.runtime.offline.OfflineRecognizer` of a model file: an ONNX model with
    the base install, a checkpoint through :func:`asr.train.load_model` (PyTorch)."""
    from asr.runtime.model import is_checkpoint
    from asr.runtime.offline import load_model

    if is_checkpoint(path):
        training_side(f"{path} (a PyTorch checkpoint)", "asr.train.backend")
        import asr.train

        return asr.train.load_model(path, decoding, num_threads=threads, chunk_size=chunk_size, right_context=right_context)
    if chunk_size is not None or right_context is not None:
        raise ValueError(f"{path}: --chunk-size/--right-context apply to checkpoints; an ONNX model runs as it was exported")
    return load_model(path, decoding, num_threads=threads)


def output_stems(inputs: list[str], writers: list) -> list[str]:
    """The transcript-file names of ``inputs`` (:func:`asr.writers.output_stems`: distinct, so
    that no input's file replaces another's), with a note on stderr for each input whose files
    got another name than its own, saying where they go."""
    import sys

    from asr.writers import input_stem
    from asr.writers import output_stems as stems_of

    stems = stems_of(inputs)
    if writers:
        first: dict[str, str] = {}
        for path, stem in zip(inputs, stems):
            own = input_stem(path)
            first.setdefault(own.casefold(), path)
            if stem != own:
                files = ", ".join(w.output_path(path, stem) for w in writers)
                print(f"note: {path}: written to {files} ({own} is taken by {first[own.casefold()]} in this run)",
                      file=sys.stderr, flush=True)
    return stems
