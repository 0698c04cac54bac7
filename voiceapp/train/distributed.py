"""Training on several GPUs: DistributedDataParallel, one process per GPU, started the torchrun way.

    python -m torch.distributed.run --standalone --nproc-per-node N -m voiceapp train --config logs/EXP/train.json

`torchrun` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT for each process; `dist_from_env`
reads them and `init_distributed` joins the group (NCCL on Linux with CUDA, gloo on Windows and on the CPU).
Each process trains on its own share of every bucket (batch size is per GPU); rank 0 alone writes events,
TensorBoard, checkpoints and voice models. `python -m voiceapp train` (and the Train tab) start this launcher
themselves when more than one GPU is visible (TrainConfig.gpus = 0 means all of them).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_from_env() -> DistInfo:
    """The process's place in a torchrun group (a single process when the variables are absent)."""
    env = os.environ
    if "WORLD_SIZE" not in env or int(env.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    return DistInfo(int(env.get("RANK", "0")), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0")))


def default_backend(device: str) -> str:
    return "nccl" if device.startswith("cuda") and sys.platform.startswith("linux") else "gloo"


def rank_device(device: str, info: DistInfo) -> str:
    """cuda -> cuda:<local_rank> for each process; cpu stays cpu."""
    if device.startswith("cuda") and info.enabled:
        return f"cuda:{info.local_rank}"
    return device


def init_distributed(info: DistInfo, device: str) -> None:
    """Join the process group (no-op for a single process)."""
    if not info.enabled:
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if device.startswith("cuda"):
        torch.cuda.set_device(info.local_rank)
    backend = default_backend(device)
    log.info("joining DDP group: rank %d of %d, backend %s", info.rank, info.world_size, backend)
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def cleanup_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wanted_processes(device: str, gpus: int) -> int:
    """How many training processes to start: the visible GPUs (or `gpus` of them) on CUDA, one otherwise."""
    if not device.startswith("cuda") or device.startswith("cuda:"):
        return 1
    import torch

    available = torch.cuda.device_count()
    return max(1, min(available, gpus) if gpus else available)


def launch_command(config_path: Path, root: Path, device: str, processes: int) -> list[str]:
    """The command that trains from `config_path` with `processes` DDP workers (plain child when 1)."""
    tail = ["-m", "voiceapp", "--root", str(root), "--device", device, "train", "--config", str(config_path)]
    if processes <= 1:
        return [sys.executable, *tail]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *tail]


def broadcast_object(value, info: DistInfo):
    """Rank 0's `value` on every rank (e.g. the validation split)."""
    if not info.enabled:
        return value
    import torch.distributed as dist

    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()
