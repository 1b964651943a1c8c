"""Command-line options shared by several commands, one spelling and one help text each (the
vocabulary of docs/layout.md): decoding (``asr evaluate``, ``asr transcribe``, ``asr stream``, ...)
-> :class:`asr.decoding.options.DecodingOptions`; endpointing (``asr stream``, ``asr mic``, ``asr
serve``) -> :class:`asr.runtime.endpoint.EndpointConfig`; ``--format``, ``--write``, ``--threads``."""

from __future__ import annotations

import argparse
import itertools
from typing import Optional

from asr.decoding.beam_search import BeamSearchOptions
from asr.decoding.options import MAX_ALTERNATIVES, DecodingOptions

__all__ = ["add_decoding_args", "decoding_options", "positive", "add_model_args", "model_path", "load_recognizer", "training_side",
           "output_stems", "BUILTIN_HELP", "add_endpoint_args", "endpoint_config", "endpoint_rule", "add_format_arg",
           "add_threads_arg", "add_write_args", "transcript_writers"]


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


def endpoint_rule(text: str) -> Optional[float]:
    """An argparse type: an endpoint rule's seconds (positive), or ``off`` (also ``none``) -> None."""
    return None if text.strip().lower() in ("off", "none") else positive(float)(text)


def add_endpoint_args(sp, no_endpoint: bool = False, rule3_off: bool = True) -> None:
    """``--rule1/2/3`` (seconds, or ``off``), the same for every command that streams; with
    ``no_endpoint`` also ``--no-endpoint`` (one utterance per input). ``rule3_off=False``: the
    command refuses ``--rule3 off`` (:func:`endpoint_config` says why)."""
    from asr.runtime.endpoint import EndpointConfig  # light: no onnxruntime session

    d = EndpointConfig()
    title = "endpointing (when an utterance ends and its result is final; 'off' turns a rule off"
    title += ")" if rule3_off else "; --rule3 cannot be off here: it bounds an utterance's memory)"
    g = sp.add_argument_group(title)
    if no_endpoint:
        g.add_argument("--no-endpoint", action="store_true", help="no endpointing: one utterance per file")
    g.add_argument("--rule1", type=endpoint_rule, default=d.rule1, metavar="S",
                   help=f"end after this many s of non-speech before any speech (default {d.rule1}; 'off': never)")
    g.add_argument("--rule2", type=endpoint_rule, default=d.rule2, metavar="S",
                   help=f"end after this many s of non-speech following speech (default {d.rule2}; 'off': never)")
    g.add_argument("--rule3", type=endpoint_rule, default=d.rule3, metavar="S",
                   help=f"end an utterance this many s long (default {d.rule3}; 'off': no limit)")


def endpoint_config(args, rule3_off: bool = True):
    """The :class:`asr.runtime.endpoint.EndpointConfig` of :func:`add_endpoint_args`' options;
    None with ``--no-endpoint``."""
    from asr.runtime.endpoint import EndpointConfig

    if getattr(args, "no_endpoint", False):
        return None
    if args.rule3 is None and not rule3_off:
        raise ValueError("--rule3 off: this command needs a longest utterance (it bounds an utterance's memory)")
    return EndpointConfig(args.rule1, args.rule2, args.rule3)


def add_format_arg(sp, text: str, json: str) -> None:
    """``--format text|json``: what is printed on stdout (``text`` and ``json`` say what each is)."""
    sp.add_argument("--format", choices=["text", "json"], default="text", help=f"stdout: {text} (text, the default) or {json} (json)")


def add_threads_arg(sp, what: str = "onnxruntime threads, or PyTorch's for a checkpoint") -> None:
    sp.add_argument("--threads", type=int, default=1, help=f"{what} (default 1)")


def _write_formats(text: str) -> list[str]:
    from asr.writers import FORMATS

    formats = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in (*FORMATS, "all")]
    if not formats or bad:
        raise argparse.ArgumentTypeError(f"expected comma-separated formats of {', '.join(FORMATS)}, or all; got {text!r}")
    return formats


def add_write_args(g) -> None:
    """``--write txt,srt,...|all``, ``--output-dir`` and the subtitle lines' bounds: the transcript
    files a command writes (:func:`transcript_writers` reads them back)."""
    from asr.writers import FORMATS, SubtitleOptions

    g.add_argument("--write", type=_write_formats, metavar="FORMATS",
                   help=f"also write transcript files, one per input: comma-separated {', '.join(FORMATS)}, or all")
    g.add_argument("--output-dir", default=".", help="folder for the --write files (default: the current one)")
    s = SubtitleOptions()
    g.add_argument("--max-line-chars", type=positive(int), default=s.max_line_chars,
                   help=f"srt/vtt/tsv: longest subtitle line, characters (default {s.max_line_chars})")
    g.add_argument("--max-line-duration", type=positive(float), default=s.max_line_s,
                   help=f"srt/vtt/tsv: longest subtitle line, s (default {s.max_line_s})")


def transcript_writers(args) -> list:
    """The :class:`asr.writers.Writer` of each ``--write`` format (none without it)."""
    from asr.writers import SubtitleOptions, get_writers

    options = SubtitleOptions(args.max_line_chars, args.max_line_duration)
    writers, seen = [], set()
    for fmt in args.write or ():
        for w in get_writers(fmt, args.output_dir, options):
            if type(w) not in seen:
                seen.add(type(w))
                writers.append(w)
    return writers


def _alternatives(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= n <= MAX_ALTERNATIVES:
        raise argparse.ArgumentTypeError(f"must be 0..{MAX_ALTERNATIVES}, got {n}")
    return n


def add_decoding_args(sp, grid: bool = False, alternatives: bool = True) -> None:
    """The decoding group (:func:`decoding_options` reads it back); ``alternatives``: also
    ``--alternatives N`` (commands that print n-best lists)."""
    g = sp.add_argument_group("decoding (default: greedy; beam search with --beam-size, --lm, hotwords, a grammar"
                              + (" or --alternatives)" if alternatives else ")"))
    g.add_argument("--beam-size", type=int,
                   help="prefix beam search with this beam (default 16 with --lm/hotwords/--grammar/--phrase"
                        + ("/--alternatives" if alternatives else "") + ", else 0 = greedy)")
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
    g.add_argument("--grammar", metavar="FILE",
                   help="restrict the text to these phrases, in any sequence: one phrase a line, or a JSON list; "
                        "'[unk]' stands for anything else (docs/grammars.md)")
    g.add_argument("--phrase", action="append", metavar="TEXT",
                   help="a phrase of the grammar (repeatable; with or without --grammar)")
    g.add_argument("--unk-score", type=float, default=BeamSearchOptions.unk_score,
                   help=f"with a grammar: added to a hypothesis per [unk] word, natural log; more writes more speech as [unk] "
                        f"(default {BeamSearchOptions.unk_score:g})")
    g.add_argument("--drop-unk", action="store_true", help="with a grammar: leave [unk] out of the text and the words")
    g.add_argument("--lexicon", metavar="FILE",
                   help="write only words of this pronunciation lexicon (`asr lexicon`); a phone model spells them by "
                        "their pronunciations (default for a phone model: the words of its model file)")
    if alternatives:
        g.add_argument("--alternatives", type=_alternatives, default=0, metavar="N",
                       help=f"keep the N best hypotheses of each utterance (0-{MAX_ALTERNATIVES}), with scores and "
                            "words, in --format json (default 0: none)")
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
                           alpha=alphas[0], char_alpha=char_alphas[0], beta=betas[0],
                           grammar=tuple(args.phrase or ()), grammar_file=args.grammar, unk_score=args.unk_score,
                           drop_unk=args.drop_unk, alternatives=getattr(args, "alternatives", 0), lexicon=args.lexicon)
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
        if (exc.name or "").split(".")[0] not in ("torch", "torchaudio", "onnx", "yaml"):
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
