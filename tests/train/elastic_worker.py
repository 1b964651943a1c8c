"""``python -m tests.train.elastic_worker ARGS``: ``asr ARGS`` (``python -m asr``), except that
in the first attempt of a torchrun worker group (``TORCHELASTIC_RESTART_COUNT`` 0) the process
of rank ``R`` sends itself SIGKILL in the middle of its optimizer step ``S``, where
``ASR_TEST_SIGKILL=R:S``: after that step's backward pass and gradient all-reduce, before the
weights change. A kill at a known step makes the elastic-restart test deterministic; the
process dies as a killed machine's would (no handler, no cleanup, no checkpoint)."""

import os
import signal
import sys

import torch

from asr.cli import main


def arm(rank: int, step: int) -> None:
    real_clip = torch.nn.utils.clip_grad_norm_  # called once per optimizer step, after backward
    seen = [0]

    def clip_or_die(*args, **kwargs):
        seen[0] += 1
        if seen[0] == step:
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real_clip(*args, **kwargs)

    torch.nn.utils.clip_grad_norm_ = clip_or_die


if __name__ == "__main__":
    target = os.environ.get("ASR_TEST_SIGKILL")
    if target and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
        rank, step = (int(x) for x in target.split(":"))
        if int(os.environ.get("RANK", "0")) == rank:
            arm(rank, step)
    sys.exit(main(sys.argv[1:]))
