"""``asr calibrate``: fit a model's word-confidence map on held-out speech and store it in the
model file (:mod:`asr.calibrate`; torch-free for reading ONNX models, writing one needs onnx)."""

from __future__ import annotations

import json

from asr.cli.options import add_decoding_args, add_model_args, add_threads_arg, decoding_options, load_recognizer, model_path, training_side

__all__ = ["add_parser", "run", "EXIT_NOTHING_TO_FIT"]

EXIT_NOTHING_TO_FIT = 3  # too few right or wrong words to fit on: the model keeps raw scores


def add_parser(sub) -> None:
    sp = sub.add_parser("calibrate", help="fit word confidence to the chance a word is right, on held-out speech, "
                                          "and store the map in the model file",
                        description="Decode a manifest of held-out speech (a dev set: speakers and sentences the "
                        "model did not train on), label each hypothesis word right or wrong, fit "
                        "confidence = sigmoid(a * logit(raw) + b), report the area under the ROC curve and the "
                        "calibration error before and after (after: also on held-out speakers), and write the "
                        "map into each model file (checkpoint or ONNX) unless --dry-run. When the manifest gives "
                        f"too few right or wrong words to fit on, nothing is written and the exit status is {EXIT_NOTHING_TO_FIT}.")
    add_model_args(sp, builtin=False)  # it writes into the model file: never the built-in one
    sp.add_argument("--manifest", required=True, help="held-out speech with transcripts (the recipe's dev set)")
    sp.add_argument("--also", action="append", default=[], metavar="MODEL",
                    help="another file of the same model to store the same map in (e.g. the int8 export); repeatable")
    sp.add_argument("--folds", type=int, default=2, help="speaker folds for the held-out check (default 2)")
    sp.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    sp.add_argument("--remove", action="store_true", help="remove the model's calibration (raw scores again); no decoding")
    sp.add_argument("--out", metavar="FILE", help="also write the report here, as JSON")
    add_threads_arg(sp)
    add_decoding_args(sp, alternatives=False)
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    sp.set_defaults(func=run)


def run(args) -> int:
    from asr.calibrate import calibrate, write_calibration
    from asr.decoding.confidence import CalibrationDataError
    from asr.runtime.model import is_checkpoint

    def write(path, calibration):
        if is_checkpoint(path):
            training_side(f"{path} (a PyTorch checkpoint)", "asr.train.checkpoint").set_checkpoint_calibration(path, calibration)
        else:
            write_calibration(path, calibration)

    source = model_path(args)
    targets = [source, *args.also]
    if args.remove:
        for t in targets:
            write(t, None)
            print(f"{t}: calibration removed")
        return 0
    (options,) = decoding_options(args)
    rec = load_recognizer(source, options, args.threads)
    try:
        report = calibrate(rec, args.manifest, folds=args.folds, progress=not args.no_progress)
    except CalibrationDataError as exc:
        print(f"{args.manifest}: {exc}; {', '.join(targets)} unchanged (raw confidence)")
        return EXIT_NOTHING_TO_FIT
    print(report.summary())
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report.to_dict(), f, indent=1)
    if not args.dry_run:
        for t in targets:
            write(t, report.calibration)
            print(f"{t}: calibration written")
    return 0
