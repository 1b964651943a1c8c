"""Data-parallel training under ``torchrun``: who this process is, and the few collectives the
training loop needs.

``asr train`` runs unchanged under ``torchrun --nproc_per_node N [--nnodes M ...]``: torchrun
sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``, and
:func:`setup` joins the process group (NCCL when training on GPUs, gloo on CPUs). Without those
variables it is a single process and every helper here is a no-op.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist

__all__ = ["Dist", "setup", "resolve_device"]

log = logging.getLogger(__name__)

# torchrun's agents share their rendezvous store with the processes they start, and the keys
# of a process group's start-up outlive a restarted group: its new processes may read the dead
# ones' addresses and fail or hang (pytorch/pytorch#135712, #167288). With this set in
# torchrun's own environment each rendezvous round gets a fresh store.
SHARED_STORE_FIX = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``train.device``: "auto" (a GPU when there is one), "cpu", "cuda" or "cuda:N". Under
    torchrun each process on a node takes GPU ``LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"train.device={name!r}, but PyTorch sees no GPU (use auto or cpu)")
        if name == "cuda":
            name = f"cuda:{local_rank % torch.cuda.device_count()}"
        torch.cuda.set_device(torch.device(name))
    elif name != "cpu":
        raise ValueError(f"train.device must be auto, cpu, cuda or cuda:N, got {name!r}")
    return torch.device(name)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.active:
            tdist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank (a stop request, for instance)."""
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self._comm_device)
        tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def sum(self, *values: float) -> list[float]:
        """Element-wise sums over ranks (for epoch statistics)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64 if self._comm_device.type == "cpu" else torch.float32,
                         device=self._comm_device)
        tdist.all_reduce(t)
        return t.tolist()

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (any picklable object: a checkpoint, an exception)."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        tdist.broadcast_object_list(box, src=0, device=self._comm_device)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out = [None] * self.world
        tdist.all_gather_object(out, obj)
        return out

    @property
    def _comm_device(self) -> torch.device:
        return self.device if tdist.get_backend() == "nccl" else torch.device("cpu")

    def close(self) -> None:
        if self.active and tdist.is_initialized():
            tdist.destroy_process_group()


def setup(device: str = "auto") -> Dist:
    """Join the torchrun process group when there is one; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1 and not tdist.is_initialized():
        restarts = int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0"))
        if restarts > 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True" and rank == 0:
            log.warning("torchrun --max-restarts %d with the agents' shared store: a restarted worker group can fail "
                        "to connect or hang; start torchrun with %s in its environment (see docs/training.md)",
                        restarts, SHARED_STORE_FIX)
        tdist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, local_rank, dev)
