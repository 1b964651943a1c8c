"""``asr evaluate``: WER/CER of a checkpoint or an exported model on a manifest (the library
function :func:`asr.evaluate.evaluate`; torch-free for ONNX models)."""

from __future__ import annotations

import json
import os
import sys

from asr.cli.options import add_decoding_args, add_model_args, decoding_options, model_path

__all__ = ["add_parser", "run", "EXIT_INCOMPLETE"]

EXIT_INCOMPLETE = 3  # some manifest entries could not be scored (and --allow-skipped was not given)


def add_parser(sub) -> None:
    sp = sub.add_parser("evaluate", help="WER/CER of a checkpoint (PyTorch) or an exported ONNX model (runtime) on a manifest",
                        description="Score a model on a manifest. Entries that cannot be scored (malformed lines, "
                        "unreadable audio) are named and counted; unless --allow-skipped, the command then exits "
                        f"with status {EXIT_INCOMPLETE}, since a WER over a subset is not the manifest's WER.")
    add_model_args(sp)
    sp.add_argument("--manifest", required=True)
    sp.add_argument("--out", help="per-utterance results file (default: decode_<manifest>.txt beside the model)")
    sp.add_argument("--chunk-size", type=int, help="checkpoints: decode in chunks of N model frames (0: full context; default: the model's)")
    sp.add_argument("--right-context", type=int, help="checkpoints: right context in model frames for chunked decoding (default: the model's)")
    sp.add_argument("--threads", type=int, default=1)
    sp.add_argument("--allow-skipped", action="store_true",
                    help="exit 0 even if some entries could not be scored (they are still reported)")
    add_decoding_args(sp, grid=True)
    sp.add_argument("--no-progress", action="store_true")
    sp.set_defaults(func=run)


def _out_path(args, source: str, best) -> str:
    if args.out:
        return args.out
    stem = os.path.splitext(os.path.basename(args.manifest))[0]
    if args.model:
        stem += "_" + os.path.splitext(os.path.basename(args.model))[0]
    o = best.options
    if not o.greedy:
        stem += "_beam" + ("_lm" if o.lm else "") + ("_charlm" if o.char_lm else "")
    return os.path.join(os.path.dirname(os.path.abspath(source)), f"decode_{stem}.txt")


def run(args) -> int:
    import asr
    from asr.evaluate import evaluate

    grid = decoding_options(args, grid=True)
    source = model_path(args)
    rec = asr.load_model(source, grid[0], num_threads=args.threads, chunk_size=args.chunk_size,
                         right_context=args.right_context)
    report = evaluate(rec, args.manifest, grid, jobs=args.jobs, progress=not args.no_progress)
    if len(report.runs) > 1:  # grid search over LM weights and insertion bonus: best by WER, then CER
        chars = any(r.options.char_lm for r in report.runs)
        print(f"grid search on {args.manifest}:")
        print(f"  {'alpha':>6}" + (f" {'char':>6}" if chars else "") + f" {'beta':>6} {'WER %':>7} {'CER %':>7}")
        for r in report.runs:
            o = r.options
            print(f"  {o.alpha if o.lm else 0:>6g}" + (f" {o.char_alpha:>6g}" if chars else "")
                  + f" {o.beta:>6g} {r.stats.wer:>7.2f} {r.stats.cer:>7.2f}")
    best = report.best
    st = best.stats
    out = _out_path(args, source, best)
    with open(out, "w", encoding="utf-8") as f:
        for p, r, h in zip(report.names, report.refs, best.hyps):
            f.write(f"{p}\n  REF: {r}\n  HYP: {h}\n  {'ok' if r.split() == h.split() else 'ERROR'}\n")
        for p, reason in report.skipped:
            f.write(f"{p}\n  NOT SCORED: {reason}\n")
        for line, reason in report.malformed:
            f.write(f"{args.manifest}:{line}\n  NOT SCORED (malformed line): {reason}\n")
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
        ("WER %", f"{st.wer:.2f}"),
        ("CER %", f"{st.cer:.2f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"evaluation of {source} on {args.manifest} ({report.description}; {best.options.label()})")
    for k, v in rows:
        print(f"  {k:<{width}}  {v:>8}")
    print(f"  per-utterance results: {out}")
    result = report.to_dict()
    result["details"] = out
    print(json.dumps(result))
    if not report.complete:
        print(f"warning: only {len(report.names)} of {report.total} manifest entries were scored "
              f"({len(report.skipped)} unreadable, {len(report.malformed)} malformed; listed in {out}): "
              "this WER is not the manifest's" + ("" if args.allow_skipped else "; --allow-skipped accepts it"),
              file=sys.stderr)
        return 0 if args.allow_skipped else EXIT_INCOMPLETE
    return 0
