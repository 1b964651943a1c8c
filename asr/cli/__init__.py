"""Command line: ``asr prepare | train | evaluate | transcribe`` (also ``python -m asr``)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Optional, Sequence

from asr.decoding.beam_search import add_decoding_args, aligners_from_args

log = logging.getLogger("asr")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )


# prepare: which options apply to which corpus (the others are refused with a clear message)
_PREPARE_OPTIONS = {
    "test_speaker": ("--test-speaker", {"fsdd"}),
    "subset": ("--subset", {"librispeech"}),
    "parts": ("--parts", {"librispeech", "librispeech-lm"}),
    "source": ("a source path", {"kaldi", "manifest"}),
}


def cmd_prepare(args) -> int:
    for key, (flag, corpora) in _PREPARE_OPTIONS.items():
        if getattr(args, key) is not None and args.corpus not in corpora:
            raise ValueError(f"{flag} applies to {' and '.join(sorted(corpora))} only")
    if args.corpus in ("kaldi", "manifest") and args.source is None:
        what = "a Kaldi data folder (with wav.scp and text)" if args.corpus == "kaldi" else "a JSONL manifest file"
        raise ValueError(f"asr prepare {args.corpus} needs {what}: asr prepare {args.corpus} PATH --out OUT")
    download = not args.no_download
    progress = not args.no_progress
    if args.corpus == "fsdd":
        from asr.corpora import fsdd

        counts = fsdd.prepare(args.corpus_dir, args.out, test_speaker=args.test_speaker, allow_download=download)
    elif args.corpus == "speechocean762":
        from asr.corpora import speechocean762

        counts = speechocean762.prepare(args.corpus_dir, args.out, allow_download=download)
    elif args.corpus == "librispeech":
        from asr.corpora import librispeech

        counts = librispeech.prepare(args.corpus_dir, args.out, subset=args.subset, parts=args.parts,
                                     allow_download=download, progress=progress)
    elif args.corpus == "librispeech-lm":
        from asr.corpora import librispeech

        written = librispeech.prepare_lm(args.corpus_dir, args.out, args.parts or librispeech.DEFAULT_LMS,
                                         allow_download=download)
        for name, path in written.items():
            print(f"LibriSpeech {name} LM, lower-cased: {path}")
        return 0
    elif args.corpus == "an4":
        from asr.corpora import an4

        counts = an4.prepare(args.corpus_dir, args.out, allow_download=download, progress=progress)
    elif args.corpus == "commonvoice":
        from asr.corpora import commonvoice

        counts = commonvoice.prepare(args.corpus_dir, args.out, progress=progress)
    elif args.corpus == "kaldi":
        from asr.corpora import kaldi

        counts = kaldi.prepare(args.source, args.out)
    elif args.corpus == "manifest":
        from asr.corpora import manifest

        counts = manifest.prepare(args.source, args.out)
    else:  # argparse restricts the choices
        raise AssertionError(args.corpus)
    print(f"wrote manifests to {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def cmd_train(args) -> int:
    from asr.nn.config import load_config
    from asr.nn.training import train

    cfg = load_config(args.config, args.overrides)
    os.makedirs(args.exp, exist_ok=True)
    handler = logging.FileHandler(os.path.join(args.exp, "train.log"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        result = train(cfg, args.exp, resume=args.resume, progress=not args.no_progress)
    except KeyboardInterrupt:
        return 130
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun: rank 0 reports
        return 0
    rate = result.audio_seconds / result.train_seconds if result.train_seconds else 0.0
    print(f"training done: {result.epochs_run} epochs, {result.train_seconds:.1f} s of training "
          f"({rate:.0f} audio seconds per second); best dev WER "
          f"{'n/a' if result.best_dev_wer is None else f'{result.best_dev_wer:.2f}%'}; model: {result.best_path}")
    return 0


def _align_all(aligner, log_probs: list, jobs: int) -> list:
    if jobs <= 1 or len(log_probs) < 2:
        return [aligner(lp) for lp in log_probs]
    import multiprocessing as mp

    with mp.get_context("fork").Pool(jobs) as pool:
        return pool.map(aligner, log_probs, chunksize=max(1, len(log_probs) // (4 * jobs)))


def _utterance_name(e) -> str:
    """How the per-utterance results name an entry: its path, plus the segment for one that is
    part of a file."""
    if e.offset is None:
        return e.audio_filepath
    return f"{e.audio_filepath} [{e.offset:.2f}-{e.offset + e.duration:.2f} s]"


def _decode_with_checkpoint(args, entries):
    import torch

    from asr.nn.checkpoint import build_model, load_checkpoint
    from asr.nn.data import FeatureDataset
    from asr.decoding.greedy import greedy_alignment
    from asr.nn.training import dataset_log_probs
    from asr.text import normalize_text

    torch.set_num_threads(args.threads)
    model, cfg, tokenizer = build_model(load_checkpoint(args.checkpoint))
    aligners = aligners_from_args(args, tokenizer, grid=True)
    ds = FeatureDataset(entries, cfg.frontend, None, progress=not args.no_progress, desc="features")
    if len(ds) == 0:
        raise ValueError(f"{args.manifest}: no usable utterances")
    log_probs, _ = dataset_log_probs(model, ds, chunk_size=args.chunk_size, right_context=args.right_context)
    refs = [normalize_text(e.text) for e in ds.entries]
    runs = []
    for settings, aligner in aligners:
        hyps = [tokenizer.decode([t for t, _, _ in a]) for a in _align_all(aligner or greedy_alignment, log_probs, args.jobs)]
        runs.append((settings, hyps))
    m = cfg.model
    chunk = m.chunk_size if args.chunk_size is None else args.chunk_size
    right = (m.right_context if args.right_context is None else args.right_context) if m.bidirectional else 0
    condition = "full context" if chunk <= 0 else f"chunks of {chunk} + {right} right-context model frames"
    extra = {"chunk_size": max(chunk, 0), "right_context": right if chunk > 0 else 0}
    return [_utterance_name(e) for e in ds.entries], refs, runs, len(ds.skipped), condition, extra


def _decode_with_onnx(args, entries):
    from asr.runtime import load_recognizer
    from asr.audio import AudioError, load_audio
    from asr.text import normalize_text

    if args.chunk_size is not None or args.right_context is not None:
        raise ValueError("--chunk-size/--right-context apply to checkpoints; an ONNX model streams as it was exported")
    rec = load_recognizer(args.model, num_threads=args.threads)
    info = rec.info
    ((settings, aligner),) = aligners_from_args(args, info.tokenizer)
    rec.aligner = aligner
    paths, refs, hyps, skipped = [], [], [], 0
    for e in entries:
        try:
            audio = e.audio_filepath if e.offset is None else load_audio(e.audio_filepath, info.sample_rate, e.offset, e.duration)
            hyps.append(rec.transcribe(audio).text)
        except AudioError as exc:
            log.warning("skipping %s", exc)
            skipped += 1
            continue
        paths.append(_utterance_name(e))
        refs.append(normalize_text(e.text))
    if not paths:
        raise ValueError(f"{args.manifest}: no usable utterances")
    graph = info.metadata.get("graph", "offline")
    condition = f"onnxruntime, {graph} graph" + (
        f", chunks of {info.chunk_size} + {info.right_context} right-context model frames" if graph == "streaming" else "")
    extra = {"chunk_size": info.chunk_size or 0, "right_context": info.right_context or 0} if graph == "streaming" else {}
    return paths, refs, [(settings, hyps)], skipped, condition, extra


def _settings_label(settings: dict) -> str:
    if settings["decoder"] == "greedy":
        return "greedy"
    label = f"beam {settings['beam_size']}"
    if settings.get("lm"):
        label += f", LM alpha {settings['alpha']:g}"
    if settings.get("char_lm"):
        label += f", char LM {settings['char_alpha']:g}"
    if settings.get("beta"):
        label += f", beta {settings['beta']:g}"
    if settings.get("hotwords"):
        label += f", {settings['hotwords']} hotwords"
    return label


def cmd_evaluate(args) -> int:
    from asr.manifest import read_manifest
    from asr.metrics import error_stats

    entries = read_manifest(args.manifest)
    decode = _decode_with_onnx if args.model else _decode_with_checkpoint
    paths, refs, runs, skipped, condition, extra = decode(args, entries)
    scored = [(settings, hyps, error_stats(refs, hyps)) for settings, hyps in runs]
    if len(scored) > 1:  # grid search over LM weights and insertion bonus: best by WER, then CER
        chars = any(s.get("char_lm") for s, _, _ in scored)
        print(f"grid search on {args.manifest}:")
        print(f"  {'alpha':>6}" + (f" {'char':>6}" if chars else "") + f" {'beta':>6} {'WER %':>7} {'CER %':>7}")
        for settings, _, st in scored:
            print(f"  {settings['alpha']:>6g}" + (f" {settings['char_alpha']:>6g}" if chars else "")
                  + f" {settings['beta']:>6g} {st.wer:>7.2f} {st.cer:>7.2f}")
    settings, hyps, st = min(scored, key=lambda r: (r[2].wer, r[2].cer))
    source = args.model or args.checkpoint
    stem = os.path.splitext(os.path.basename(args.manifest))[0]
    if args.model:
        stem += "_" + os.path.splitext(os.path.basename(args.model))[0]
    if settings["decoder"] == "beam":
        stem += "_beam" + ("_lm" if settings.get("lm") else "") + ("_charlm" if settings.get("char_lm") else "")
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(source)), f"decode_{stem}.txt")
    with open(out, "w", encoding="utf-8") as f:
        for p, r, h in zip(paths, refs, hyps):
            f.write(f"{p}\n  REF: {r}\n  HYP: {h}\n  {'ok' if r.split() == h.split() else 'ERROR'}\n")
    rows = [
        ("utterances", f"{st.num_utts}"),
        ("skipped (unreadable)", f"{skipped}"),
        ("reference words", f"{st.ref_words}"),
        ("substitutions", f"{st.substitutions}"),
        ("deletions", f"{st.deletions}"),
        ("insertions", f"{st.insertions}"),
        ("sentence errors", f"{st.sentence_errors}"),
        ("WER %", f"{st.wer:.2f}"),
        ("CER %", f"{st.cer:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"evaluation of {source} on {args.manifest} ({condition}; {_settings_label(settings)})")
    for k, v in rows:
        print(f"  {k:<{width}}  {v:>8}")
    print(f"  per-utterance results: {out}")
    result = st.to_dict()
    result.update(skipped=skipped, manifest=args.manifest, checkpoint=source, details=out, **extra, **settings)
    print(json.dumps(result))
    return 0


def cmd_transcribe(args) -> int:
    if args.model:  # exported ONNX model: the torch-free runtime
        from asr.runtime import load_recognizer, transcribe_files

        rec = load_recognizer(args.model, args.threads)
        ((_, rec.aligner),) = aligners_from_args(args, rec.info.tokenizer)
        items = ((r.path, r.error, r.result) for r in transcribe_files(rec, args.files))
    else:
        from asr import load_model
        from asr.audio import AudioError

        recognizer = load_model(args.checkpoint, num_threads=args.threads)
        ((_, recognizer.aligner),) = aligners_from_args(args, recognizer.tokenizer)

        def run(path):
            try:
                return path, None, recognizer.transcribe(path)
            except AudioError as exc:
                return path, exc, None

        items = (run(p) for p in args.files)
    failures = 0
    for path, error, result in items:
        if error is not None:
            print(f"error: {error}", file=sys.stderr)
            failures += 1
            continue
        if args.format == "json":
            d = result.to_dict()
            d["path"] = path
            print(json.dumps(d), flush=True)
        else:
            print(f"{path}\t{result.text}", flush=True)
    return 1 if failures else 0


def cmd_average(args) -> int:
    import torch

    from asr.nn.checkpoint import average_checkpoints, epoch_checkpoints

    if args.checkpoints:
        paths = args.checkpoints
    else:
        paths = epoch_checkpoints(args.exp)
        if not paths:
            raise FileNotFoundError(f"{args.exp}: no epoch-N.pt snapshots (train.keep_epochs > 0 keeps them)")
        if len(paths) < args.last:
            log.warning("%s: only %d epoch snapshots, averaging those", args.exp, len(paths))
        paths = paths[-args.last:]
    out = args.out or os.path.join(args.exp or os.path.dirname(paths[-1]), "avg.pt")
    state = average_checkpoints(paths)
    tmp = f"{out}.tmp{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, out)
    print(f"wrote {out}: mean of {', '.join(os.path.basename(p) for p in paths)}")
    return 0


def cmd_export(args) -> int:
    from export.onnx_export import export_onnx

    r = export_onnx(args.checkpoint, args.out, streaming=args.streaming, int8=args.int8,
                    chunk_size=args.chunk_size, right_context=args.right_context, parity_audio=args.parity_audio or ())
    print(f"wrote {r.path} ({r.metadata['graph']} graph, {r.metadata['model_kind']}); parity with PyTorch: "
          f"max |log-prob diff| {r.max_abs_diff:.1e} at {', '.join(f'{s:g}' for s in r.parity_lengths_s)} s")
    if r.int8_path:
        print(f"wrote {r.int8_path} (int8 dynamic quantization): max |log-prob diff| {r.int8_max_abs_diff:.3f}; "
              f"measure its WER before using it")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from asr import __version__

    p = argparse.ArgumentParser(prog="asr", description="Recurrent CTC speech recognition: prepare, train, evaluate, transcribe.")
    p.add_argument("--version", action="version", version=f"asr {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser(
        "prepare", help="write JSONL manifests for a corpus, or import a Kaldi data folder or a NeMo manifest",
        description="Write JSONL manifests. Corpora: fsdd, speechocean762, librispeech (--subset mini|100|960 or "
        "--parts), an4, commonvoice (needs --corpus-dir: its terms must be accepted before download); "
        "librispeech-lm fetches the official ARPA models. Imports: `asr prepare kaldi DATA_DIR --out OUT`, "
        "`asr prepare manifest FILE.jsonl --out OUT`. Bad entries are reported (file, line, reason) and left out.")
    sp.add_argument("corpus", choices=["fsdd", "speechocean762", "librispeech", "librispeech-lm", "an4", "commonvoice",
                                       "kaldi", "manifest"], help="which corpus, or kaldi/manifest to import data")
    sp.add_argument("source", nargs="?", help="kaldi: the data folder (wav.scp, text, optional segments and utt2spk); "
                    "manifest: the NeMo-style JSONL file")
    sp.add_argument("--corpus-dir", help="local copy: the corpus folder or a folder holding it (default: $ASR_CORPORA, then data/corpora; else download)")
    sp.add_argument("--out", required=True, help="folder for the manifests (train.jsonl, dev.jsonl, test.jsonl, ...); "
                    "kaldi/manifest: a .jsonl path or a folder")
    sp.add_argument("--test-speaker", help="FSDD: leave this speaker out as the test set")
    sp.add_argument("--subset", choices=["mini", "100", "960"], help="LibriSpeech: mini (train-clean-5, dev-clean-2; "
                    "the default), 100 (train-clean-100) or 960 (all train parts), each with dev/test clean and other")
    sp.add_argument("--parts", nargs="+", metavar="PART", help="LibriSpeech: these parts instead of a subset "
                    "(train-clean-100 dev-clean ...); librispeech-lm: which models (default 3-gram.pruned.1e-7; "
                    "also 3-gram.pruned.3e-7, 3-gram, 4-gram)")
    sp.add_argument("--no-download", action="store_true", help="fail instead of downloading when no local copy is found")
    sp.add_argument("--no-progress", action="store_true", help="no progress bars")
    sp.set_defaults(func=cmd_prepare)

    sp = sub.add_parser("train", help="train a model", description="Train; overrides look like train.epochs=5 model.rnn_type=lstm.")
    sp.add_argument("--config", required=True, help="YAML config (e.g. recipes/fsdd/conf.yaml)")
    sp.add_argument("--exp", required=True, help="experiment folder: checkpoints, log.csv, train.log")
    sp.add_argument("--resume", action="store_true", help="continue the run in --exp exactly where it stopped")
    sp.add_argument("--no-progress", action="store_true", help="no progress bars")
    sp.add_argument("overrides", nargs="*", help="section.key=value config overrides")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("evaluate", help="WER/CER of a checkpoint (PyTorch) or an exported ONNX model (runtime) on a manifest")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="trained checkpoint (best.pt), decoded with PyTorch")
    src.add_argument("--model", help="exported ONNX model (offline or streaming, fp32 or int8), decoded with the torch-free runtime")
    sp.add_argument("--manifest", required=True)
    sp.add_argument("--out", help="per-utterance results file (default: decode_<manifest>.txt beside the checkpoint)")
    sp.add_argument("--chunk-size", type=int, help="decode in chunks of N model frames (0: full context; default: the model's)")
    sp.add_argument("--right-context", type=int, help="right context in model frames for chunked decoding (default: the model's)")
    sp.add_argument("--threads", type=int, default=1)
    add_decoding_args(sp, grid=True)
    sp.add_argument("--no-progress", action="store_true")
    sp.set_defaults(func=cmd_evaluate)

    sp = sub.add_parser("average", help="average the weights of the last epochs' checkpoints (often better than any one)")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--exp", help="experiment folder holding epoch-N.pt snapshots")
    src.add_argument("--checkpoints", nargs="+", help="explicit checkpoint files")
    sp.add_argument("--last", type=int, default=5, help="with --exp: how many of the last epochs (default 5)")
    sp.add_argument("--out", help="output checkpoint (default: EXP/avg.pt)")
    sp.set_defaults(func=cmd_average)

    sp = sub.add_parser("lm", help="word n-gram language models: `asr lm build --manifest train.jsonl --out lm.arpa`, `asr lm ppl`",
                        add_help=False)
    sp.add_argument("lm_args", nargs=argparse.REMAINDER, help="build|ppl and their options (asr lm --help)")

    sp = sub.add_parser("export", help="export a checkpoint to ONNX (offline or streaming graph), checked against PyTorch")
    sp.add_argument("--checkpoint", required=True)
    sp.add_argument("--out", required=True, help="model.onnx path (with --int8 also writes NAME.int8.onnx)")
    sp.add_argument("--streaming", action="store_true", help="the chunk-by-chunk graph with carried states")
    sp.add_argument("--int8", action="store_true", help="also write an int8 dynamically quantized copy")
    sp.add_argument("--chunk-size", type=int, help="streaming chunk size in model frames (default: the model's)")
    sp.add_argument("--right-context", type=int, help="streaming right context in model frames (default: the model's)")
    sp.add_argument("--parity-audio", nargs="*", help="audio files for the parity check (default: the config's dev manifest)")
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("transcribe", help="transcribe audio files (wav, flac, ogg, mp3; any rate and channel count)")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="trained checkpoint (best.pt), run with PyTorch")
    src.add_argument("--model", help="exported ONNX model, run with onnxruntime (no PyTorch)")
    sp.add_argument("--format", choices=["text", "json"], default="text", help="text: 'path<TAB>transcript'; json: one object a line")
    sp.add_argument("--threads", type=int, default=1)
    add_decoding_args(sp)
    sp.add_argument("files", nargs="+")
    sp.set_defaults(func=cmd_transcribe)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["lm"]:  # its own parser (also `python -m asr.lm`), options included
        from asr.cli.lm import main as lm_main

        return lm_main(argv[1:], prog="asr lm")
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
