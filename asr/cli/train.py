"""``asr train``: train a model from a YAML config with key=value overrides (PyTorch)."""

from __future__ import annotations

import logging
import os

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    sp = sub.add_parser("train", help="train a model", description="Train; overrides look like train.epochs=5 model.rnn_type=lstm.")
    sp.add_argument("--config", required=True, help="YAML config (e.g. recipes/fsdd/conf.yaml)")
    sp.add_argument("--exp", required=True, help="experiment folder: checkpoints, log.csv, train.log")
    sp.add_argument("--resume", action="store_true", help="continue the run in --exp exactly where it stopped")
    sp.add_argument("--auto-resume", action="store_true",
                    help="continue the run in --exp if it has one (last.pt), else start it: for torchrun --max-restarts, "
                         "whose restarted processes run the same command")
    sp.add_argument("--no-progress", action="store_true", help="no progress bars")
    sp.add_argument("overrides", nargs="*", help="section.key=value config overrides")
    sp.set_defaults(func=run)


def run(args) -> int:
    from asr.train.config import load_config
    from asr.train.trainer import train

    cfg = load_config(args.config, args.overrides)
    os.makedirs(args.exp, exist_ok=True)
    handler = logging.FileHandler(os.path.join(args.exp, "train.log"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        result = train(cfg, args.exp, resume="auto" if args.auto_resume else args.resume, progress=not args.no_progress)
    except KeyboardInterrupt:
        return 130
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun: rank 0 reports
        return 0
    rate = result.audio_seconds / result.train_seconds if result.train_seconds else 0.0
    print(f"training done: {result.epochs_run} epochs, {result.train_seconds:.1f} s of training "
          f"({rate:.0f} audio seconds per second); best dev WER "
          f"{'n/a' if result.best_dev_wer is None else f'{result.best_dev_wer:.2f}%'}; model: {result.best_path}")
    return 0
