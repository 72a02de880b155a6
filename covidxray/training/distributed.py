"""Distributed training under torchrun: process group from its environment, DDP, sharding.

gloo on CPU, nccl on GPU; one process is a world of size 1 and needs no process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from covidxray.errors import CovidxrayError

__all__ = ["DistributedError", "World", "barrier", "end_world", "gather_objects", "local_size", "mean_over_world",
           "start_world", "sync_buffers", "unwrap", "wrap"]


class DistributedError(CovidxrayError):
    """The torchrun environment is incomplete or the process group cannot start."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, logs and plots."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def start_world(device: str | None = None) -> World:
    """Join the process group described by torchrun's RANK / WORLD_SIZE / LOCAL_RANK (or a
    world of one without them)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    want_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if size <= 1:
        return World(device=torch.device("cuda" if want_cuda else "cpu"))
    missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise DistributedError(f"WORLD_SIZE={size} but {', '.join(missing)} not set; start with torchrun")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if want_cuda:
        torch.cuda.set_device(local_rank)
        where = torch.device("cuda", local_rank)
    else:
        where = torch.device("cpu")
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend="nccl" if want_cuda else "gloo", rank=rank, world_size=size)
        except Exception as exc:
            raise DistributedError(f"cannot join the process group as rank {rank} of {size}: {exc}") from None
    return World(rank=rank, local_rank=local_rank, size=size, device=where)


def end_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, world: World) -> nn.Module:
    """DistributedDataParallel around model when the world has several processes."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [world.device.index] if world.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def sync_buffers(model: nn.Module, world: World) -> None:
    """Copy rank 0's buffers (batch-norm running statistics) to every process.

    DDP broadcasts them before each forward, so after the last training step each rank still
    holds its own; without this, ranks would validate and save different models.
    """
    if not world.distributed:
        return
    for buffer in unwrap(model).buffers():
        dist.broadcast(buffer.data, src=0)


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def local_size() -> int:
    """Processes on this machine (torchrun's LOCAL_WORLD_SIZE), 1 without torchrun."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1"))))


def gather_objects(value, world: World) -> list:
    """Every process's value, in rank order, on every process."""
    if not world.distributed:
        return [value]
    gathered: list = [None] * world.size
    dist.all_gather_object(gathered, value)
    return gathered


def mean_over_world(value: float, world: World) -> float:
    if not world.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=world.device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / world.size
