"""Data-parallel training: 2 processes under torchrun (gloo, CPU) take the same optimizer steps
as 1 process that accumulates the same two batches per step; features computed on the fly by
worker processes give the same model as features kept in memory."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from asr.train.checkpoint import load_checkpoint
from asr.train.trainer import train
from tests.train.test_trainer import read_log

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# deterministic: no dropout, no augmentation (their random draws differ between processes)
DETERMINISTIC = dict(epochs=2, max_batch=4, save_every_steps=0, specaugment="null")


def overrides(corpus, **train):
    cfg = {**DETERMINISTIC, **train}
    return [
        f"data.train={corpus['train']}", f"data.dev={corpus['dev']}",
        "frontend.sample_rate=8000", "frontend.n_fft=256", "frontend.win_length=200",
        "frontend.hop_length=80", "frontend.n_mels=24",
        "model.subsampling=2", "model.conv_dim=32", "model.hidden_size=32", "model.num_layers=1",
        "model.dropout=0.0", "train.max_frames=4000", "train.lr=0.01", "train.warmup_steps=5",
        "train.device=cpu",
    ] + [f"train.{k}={v}" for k, v in cfg.items()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def weights(exp):
    return load_checkpoint(os.path.join(exp, "last.pt"))["model"]


def max_diff(a, b):
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_two_processes_match_one_with_accumulation(tiny_corpus, tmp_path):
    one = str(tmp_path / "one")
    from asr.train.config import load_config

    train(load_config(None, overrides(tiny_corpus, accum_steps=2)), one, progress=False)

    two = str(tmp_path / "two")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "asr.cli", "train", "--config", os.devnull, "--exp", two, "--no-progress",
           *overrides(tiny_corpus)]
    # os.devnull as --config reads an empty YAML mapping: every setting comes from the overrides
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "data parallel: 2 processes (gloo)" in proc.stderr

    a, b = weights(one), weights(two)
    assert a.keys() == b.keys()
    # identical math; only the order of float additions differs (all-reduce vs accumulation)
    assert max_diff(a, b) < 1e-5
    rows_one, rows_two = read_log(one), read_log(two)
    assert [r["step"] for r in rows_one] == [r["step"] for r in rows_two]  # same number of steps
    # both processes' audio is counted in the throughput
    assert float(rows_two[0]["audio_seconds"]) == pytest.approx(float(rows_one[0]["audio_seconds"]), rel=1e-6)
    # rank 0 alone wrote the log and checkpoints; the run resumes with another world size
    assert sorted(os.listdir(two)) == ["best.pt", "epoch-1.pt", "epoch-2.pt", "gates.csv", "last.pt", "log.csv", "steps.csv",
                                       "train.log"]
    assert len(rows_two) == 2  # one row per epoch: rank 1 wrote nothing
    with open(os.path.join(two, "steps.csv")) as f:  # one row per step, from rank 0 alone
        assert [r.split(",")[1] for r in f.read().splitlines()[1:]] == [str(k) for k in range(1, int(rows_two[-1]["step"]) + 1)]


def test_on_the_fly_features_match_precomputed(tiny_corpus, tmp_path):
    from asr.train.config import load_config

    cached, streamed = str(tmp_path / "cached"), str(tmp_path / "streamed")
    train(load_config(None, overrides(tiny_corpus)), cached, progress=False)
    # normalization statistics from every item (the sample covers all of this tiny corpus)
    train(load_config(None, overrides(tiny_corpus, precompute_features="false", num_workers=2)), streamed, progress=False)
    assert max_diff(weights(cached), weights(streamed)) < 1e-5
    assert [r["train_loss"] for r in read_log(cached)] == pytest.approx([r["train_loss"] for r in read_log(streamed)])


def test_resume_with_another_world_size(tiny_corpus, tmp_path):
    """A run started with accumulation (as if on 2 processes) continues on 1 process."""
    from asr.train.config import load_config

    exp = str(tmp_path / "run")
    train(load_config(None, overrides(tiny_corpus, epochs=1, accum_steps=2)), exp, progress=False)
    train(load_config(None, overrides(tiny_corpus, epochs=2, accum_steps=1)), exp, resume=True, progress=False)
    rows = read_log(exp)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert int(rows[1]["step"]) > int(rows[0]["step"])
    assert torch.isfinite(torch.tensor(float(rows[1]["train_loss"])))


def test_bf16_autocast_trains(tiny_corpus, tmp_path):
    """The mixed-precision path (autocast, float32 CTC loss) runs; bf16 autocast works on CPUs too."""
    from asr.train.config import load_config

    exp = str(tmp_path / "bf16")
    train(load_config(None, overrides(tiny_corpus, epochs=3, precision="bf16")), exp, progress=False)
    losses = [float(r["train_loss"]) for r in read_log(exp)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]



def test_fp16_with_gradient_scaler_trains_and_resumes(tiny_corpus, tmp_path):
    """fp16 autocast with a gradient scaler (the GPU setting) runs on CPUs too, so the path is
    tested here: the scaler's state is saved and a resumed run continues with it."""
    from asr.train.config import load_config

    exp = str(tmp_path / "fp16")
    train(load_config(None, overrides(tiny_corpus, epochs=2, precision="fp16")), exp, progress=False)
    state = load_checkpoint(os.path.join(exp, "last.pt"))
    assert state["scaler"]["scale"] > 0
    train(load_config(None, overrides(tiny_corpus, epochs=4, precision="fp16")), exp, resume=True, progress=False)
    losses = [float(r["train_loss"]) for r in read_log(exp)]
    assert len(losses) == 4 and all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_bad_settings_are_reported():
    from asr.train.config import load_config

    with pytest.raises(ValueError, match="precision"):
        load_config(None, ["train.precision=fp8"])
    with pytest.raises(ValueError, match="accum_steps"):
        load_config(None, ["train.accum_steps=0"])


def test_two_processes_read_their_own_shards(tiny_corpus, tmp_path):
    """Sharded data.train under torchrun: process r trains on the batches of shards r, r + 2,
    ... (asr.train.data.shard_batches), both cut to the same number of steps: the audio the
    epoch counts is exactly that of those batches."""
    from asr.manifest import read_manifest
    from asr.shards import shard_entries, write_shards
    from asr.train.config import load_config
    from asr.train.data import FeatureDataset, interleave_ranks, shard_batches

    write_shards(read_manifest(tiny_corpus["train"]), tmp_path / "shards", shard_size=8)  # 6 shards
    index = str(tmp_path / "shards" / "shards.json")
    exp = str(tmp_path / "two")
    args = [*overrides(tiny_corpus, epochs=1), f"data.train={index}", "data.shuffle_buffer=10"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "asr.cli", "train", "--config", os.devnull, "--exp", exp, "--no-progress", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    # Seen in 2 of 5 runs of tests/train/ on a loaded 2-core machine (never in 32 runs of this
    # command alone): a process aborts while exiting, after training finished and after
    # destroy_process_group ("terminate called without an active exception", gloo's threads at
    # interpreter exit). That is torch's teardown, not this test's subject: a run that finished
    # passes (last.pt is written at the end of the epoch, before the processes' last barrier;
    # save_every_steps is 0 here, so not before).
    teardown = ("terminate called without an active exception" in proc.stderr
                and os.path.isfile(os.path.join(exp, "last.pt")))
    assert proc.returncode == 0 or teardown, proc.stderr[-3000:]

    cfg = load_config(None, args)
    ds = FeatureDataset(shard_entries(index), cfg.frontend, progress=False)
    shard_items = [[i for i, e in enumerate(ds.entries) if e.extra["shard"]["index"] == k] for k in range(6)]
    t = cfg.train
    per_rank = [shard_batches(shard_items, ds.lengths, t.max_frames, t.max_batch, cfg.data.shuffle_buffer, t.seed, 0, r, 2)
                for r in range(2)]
    assert not {i for b in per_rank[0] for i in b} & {i for b in per_rank[1] for i in b}  # no utterance on both
    batches = interleave_ranks(per_rank)
    (row,) = read_log(exp)
    assert int(row["step"]) == len(batches) // 2
    frames = sum(ds.lengths[i] for b in batches for i in b)
    assert float(row["audio_seconds"]) == pytest.approx(frames * cfg.frontend.frame_shift_s, rel=1e-6)
