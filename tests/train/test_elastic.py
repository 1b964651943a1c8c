"""Elastic training under torchrun: two "nodes" on loopback (one torchrun agent each, one
process per node, c10d rendezvous on 127.0.0.1), one process killed with SIGKILL in the middle
of the second epoch, ``--max-restarts`` bringing the group back. The restarted processes run the
same command (``asr train --auto-resume``), continue from the last step checkpoint, and end with
the very weights of a run that was never interrupted. Dropout and SpecAugment are on, so each
process's random generator has to come back too."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from asr.train.checkpoint import load_checkpoint
from tests.train.test_distributed import free_port
from tests.train.test_trainer import read_log

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KILL_RANK, KILL_STEP = 1, 10  # 6 steps per epoch: dies in the 4th step of epoch 2, after the checkpoint of step 8


def settings(corpus):
    return [
        f"data.train={corpus['train']}", f"data.dev={corpus['dev']}",
        "frontend.sample_rate=8000", "frontend.n_fft=256", "frontend.win_length=200",
        "frontend.hop_length=80", "frontend.n_mels=24",
        "model.subsampling=2", "model.conv_dim=32", "model.hidden_size=32", "model.num_layers=1",
        "model.dropout=0.1", "train.max_frames=4000", "train.max_batch=4", "train.lr=0.01",
        "train.warmup_steps=5", "train.epochs=3", "train.save_every_steps=2", "train.device=cpu",
        "train.specaugment={freq_masks: 1, freq_width: 3, time_masks: 1, time_width: 3}",
    ]


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (Linux /proc; torchrun starts its processes in sessions of
    their own, so killing the agent's process group would not reach them)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def run_two_nodes(exp, corpus, kill=None, timeout=150):
    """Two torchrun agents (the two nodes) training into ``exp``; with ``kill`` (rank, step),
    that process SIGKILLs itself mid-step in the group's first attempt. Returns the agents'
    exit codes and their output. Every process started is killed if it outlives ``timeout``."""
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")  # see asr.train.distributed.SHARED_STORE_FIX
    env.pop("ASR_TEST_SIGKILL", None)
    if kill:
        env["ASR_TEST_SIGKILL"] = "%d:%d" % kill
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
           "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "elastic-test",
           "--local_addr", "127.0.0.1", "--max_restarts", "2", "--monitor_interval", "0.2",
           "-m", "tests.train.elastic_worker", "train", "--config", os.devnull, "--exp", exp, "--auto-resume",
           "--no-progress", *settings(corpus)]
    agents = []
    try:
        for node in range(2):
            out = open(f"{exp}.node{node}.log", "w+")
            agents.append((subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT), out))
        deadline = time.monotonic() + timeout
        for proc, _ in agents:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the two-node run into {exp} did not finish in {timeout} s")
    finally:
        logs = []
        for proc, out in agents:
            if proc.poll() is None:
                for pid in descendants(proc.pid) + [proc.pid]:  # the training processes, then the agent
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                proc.wait()
            out.seek(0)
            logs.append(out.read())
            out.close()
    return [p.returncode for p, _ in agents], "\n".join(logs)


def test_killed_worker_restarts_and_ends_with_the_uninterrupted_weights(tiny_corpus, tmp_path):
    whole, killed = str(tmp_path / "whole"), str(tmp_path / "killed")
    codes, out = run_two_nodes(whole, tiny_corpus)
    assert codes == [0, 0], out[-3000:]
    assert "resuming" not in out

    codes, out = run_two_nodes(killed, tiny_corpus, kill=(KILL_RANK, KILL_STEP))
    assert codes == [0, 0], out[-3000:]
    assert "exitcode: -9" in out  # the agent saw its process die of SIGKILL
    # the restarted group went through the resume path once, from the step checkpoint before the kill
    assert out.count("resuming from") == 1, out[-3000:]
    assert "at epoch 2, batch 4 (step 8)" in out  # 2 steps into epoch 2, 2 batches per step

    a = load_checkpoint(os.path.join(whole, "last.pt"))
    b = load_checkpoint(os.path.join(killed, "last.pt"))
    assert a["progress"]["step"] == b["progress"]["step"] == 18
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k  # bit for bit
    # each process's generator was saved and came back (rank 1's differs from rank 0's)
    assert len(b["per_rank"]) == 2 and not torch.equal(b["per_rank"][0]["rng"], b["per_rank"][1]["rng"])
    # the interrupted epoch's log row counts the steps before the kill too
    timing = {"epoch_seconds", "audio_sec_per_sec"}
    rows_a, rows_b = read_log(whole), read_log(killed)
    assert [{k: v for k, v in r.items() if k not in timing} for r in rows_a] == \
        [{k: v for k, v in r.items() if k not in timing} for r in rows_b]


def test_auto_resume_starts_or_continues_and_a_restart_without_it_says_so(tmp_path, monkeypatch):
    from asr.train.checkpoint import FORMAT
    from asr.train.distributed import Dist
    from asr.train.trainer import _checkpoint_to_resume

    last = str(tmp_path / "last.pt")
    assert _checkpoint_to_resume(last, "auto", str(tmp_path), Dist()) is None  # nothing yet: a new run
    with pytest.raises(FileNotFoundError, match="--resume"):
        _checkpoint_to_resume(last, True, str(tmp_path), Dist())
    torch.save({"format": FORMAT, "progress": {"step": 8}}, last)
    assert _checkpoint_to_resume(last, "auto", str(tmp_path), Dist())["progress"]["step"] == 8
    assert _checkpoint_to_resume(last, True, str(tmp_path), Dist())["progress"]["step"] == 8
    with pytest.raises(FileExistsError) as plain:
        _checkpoint_to_resume(last, False, str(tmp_path), Dist())
    assert "--auto-resume" not in str(plain.value)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")  # a group torchrun restarted, run without the flag
    with pytest.raises(FileExistsError, match="restarted torchrun worker group continues only with --auto-resume"):
        _checkpoint_to_resume(last, False, str(tmp_path), Dist())
