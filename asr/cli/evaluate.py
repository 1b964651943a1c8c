"""``asr evaluate``: WER/CER of a checkpoint or an exported model on a manifest (the library
function :func:`asr.evaluate.evaluate`; torch-free for ONNX models).

Prints a table and one JSON line (rates in percent: ``wer_percent``, ``cer_percent``). The
per-utterance results (reference, hypothesis, and the entries not scored) are written only to
``--out FILE``; nothing is written beside the model or the manifest unasked."""

from __future__ import annotations

import json
import os
import sys

from asr.cli.options import add_decoding_args, add_model_args, add_threads_arg, decoding_options, load_recognizer, model_path

__all__ = ["add_parser", "run", "EXIT_INCOMPLETE"]

EXIT_INCOMPLETE = 3  # some manifest entries could not be scored (and --allow-skipped was not given)


def add_parser(sub) -> None:
    sp = sub.add_parser("evaluate", help="WER/CER of a checkpoint (PyTorch) or an exported ONNX model (runtime) on a manifest",
                        description="Score a model on a manifest. Entries that cannot be scored (malformed lines, "
                        "unreadable audio) are named and counted; unless --allow-skipped, the command then exits "
                        f"with status {EXIT_INCOMPLETE}, since a WER over a subset is not the manifest's WER.")
    add_model_args(sp)
    sp.add_argument("--manifest", required=True, help="JSONL manifest to score on (audio and reference transcripts)")
    sp.add_argument("--out", help="write the per-utterance results (REF/HYP, entries not scored) to this file "
                                  "(default: none written)")
    sp.add_argument("--chunk-size", type=int,
                    help="checkpoints: decode in chunks of N model frames (0: full context; default: the model's)")
    sp.add_argument("--right-context", type=int,
                    help="checkpoints: right context in model frames for chunked decoding (default: the model's)")
    add_threads_arg(sp)
    sp.add_argument("--allow-skipped", action="store_true",
                    help="exit 0 even if some entries could not be scored (they are still reported)")
    add_decoding_args(sp, grid=True, alternatives=False)
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    sp.set_defaults(func=run)


def _write_details(path: str, report, manifest: str) -> None:
    best = report.best
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for p, r, h in zip(report.names, report.refs, best.hyps):
            f.write(f"{p}\n  REF: {r}\n  HYP: {h}\n  {'ok' if r.split() == h.split() else 'ERROR'}\n")
        for p, reason in report.skipped:
            f.write(f"{p}\n  NOT SCORED: {reason}\n")
        for line, reason in report.malformed:
            f.write(f"{manifest}:{line}\n  NOT SCORED (malformed line): {reason}\n")


def run(args) -> int:
    from asr.evaluate import evaluate

    grid = decoding_options(args, grid=True)
    source = model_path(args)
    rec = load_recognizer(source, grid[0], args.threads, chunk_size=args.chunk_size,
                         right_context=args.right_context)
    report = evaluate(rec, args.manifest, grid, jobs=args.jobs, progress=not args.no_progress)
    if len(report.runs) > 1:  # grid search over LM weights and insertion bonus: best by WER, then CER
        chars = any(r.options.char_lm for r in report.runs)
        print(f"grid search on {args.manifest}:")
        print(f"  {'alpha':>6}" + (f" {'char':>6}" if chars else "") + f" {'beta':>6} {'WER %':>7} {'CER %':>7}")
        for r in report.runs:
            o = r.options
            print(f"  {o.alpha if o.lm else 0:>6g}" + (f" {o.char_alpha:>6g}" if chars else "")
                  + f" {o.beta:>6g} {r.stats.wer_percent:>7.2f} {r.stats.cer_percent:>7.2f}")
    best = report.best
    st = best.stats
    out = args.out
    if out:
        _write_details(out, report, args.manifest)
    rows = [
        ("manifest entries", f"{report.total}"),
        ("scored", f"{len(report.names)}"),
        ("unreadable audio", f"{len(report.skipped)}"),
        ("malformed lines", f"{len(report.malformed)}"),
        ("reference words", f"{st.ref_words}"),
        ("substitutions", f"{st.substitutions}"),
        ("deletions", f"{st.deletions}"),
        ("insertions", f"{st.insertions}"),
        ("sentence errors", f"{st.sentence_errors}"),
        ("WER %", f"{st.wer_percent:.2f}"),
        ("CER %", f"{st.cer_percent:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"evaluation of {source} on {args.manifest} ({report.description}; {best.options.label()})")
    for k, v in rows:
        print(f"  {k:<{width}}  {v:>8}")
    print(f"  per-utterance results: {out}" if out else "  per-utterance results: not written (--out FILE writes them)")
    result = report.to_dict()
    result["details"] = out
    print(json.dumps(result))
    if not report.complete:
        print(f"warning: only {len(report.names)} of {report.total} manifest entries were scored "
              f"({len(report.skipped)} unreadable, {len(report.malformed)} malformed; "
              + (f"listed in {out}" if out else "named in the log; --out FILE lists them") + "): "
              "this WER is not the manifest's" + ("" if args.allow_skipped else "; --allow-skipped accepts it"),
              file=sys.stderr)
        return 0 if args.allow_skipped else EXIT_INCOMPLETE
    return 0
