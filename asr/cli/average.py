"""``asr average``: the mean of the last epochs' weights (PyTorch)."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("asr")

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    sp = sub.add_parser("average", help="average the weights of the last epochs' checkpoints (often better than any one)")
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--exp", help="experiment folder holding epoch-N.pt snapshots")
    src.add_argument("--checkpoints", nargs="+", help="explicit checkpoint files")
    sp.add_argument("--last", type=int, default=5, help="with --exp: how many of the last epochs (default 5)")
    sp.add_argument("--out", help="output checkpoint (default: EXP/avg.pt)")
    sp.set_defaults(func=run)


def run(args) -> int:
    from asr.train.checkpoint import epoch_checkpoints, write_average

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
    write_average(paths, out)
    print(f"wrote {out}: mean of {', '.join(os.path.basename(p) for p in paths)}")
    return 0
