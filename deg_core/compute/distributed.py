"""Several processes under ``torchrun``: one per GPU (NCCL) or a few on a CPU (gloo).

``torchrun`` starts the processes and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
:func:`init` joins them into a process group the first time a trainer or ``deg infer``
resolves its device (backend ``nccl`` for a CUDA device, which becomes
``cuda:LOCAL_RANK``, else ``gloo``). Without those variables, or with a world of one,
every helper here is a no-op that returns what one process would use, so notebooks
and single-process scripts behave exactly as before.

What is split across ranks (docs/cluster.md): training batches (each rank takes a
disjoint slice of every global batch, gradients are averaged by
DistributedDataParallel) and the videos of ``deg infer`` (:func:`shard`). Rank 0
alone validates, writes run folders, checkpoints and metrics, shows progress and runs
callbacks; what it decides (validation metrics, the run folder's name) is broadcast
so every rank's scheduler and bookkeeping stay in step.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from deg_core.errors import DegError

T = TypeVar("T")


@dataclass(frozen=True)
class Launch:
    """Where this process sits in a torchrun launch."""

    rank: int  # 0 .. world-1 over all nodes
    world: int  # number of processes over all nodes
    local_rank: int  # index on this node: the GPU it drives


def launch() -> Launch | None:
    """The torchrun launch this process belongs to, or None (no env, or a world of one)."""
    world = os.environ.get("WORLD_SIZE")
    if world is None or int(world) <= 1:
        return None
    try:
        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError) as e:
        raise DegError(f"WORLD_SIZE={world} but RANK/LOCAL_RANK are missing or bad ({e})") from e
    return Launch(rank=rank, world=int(world), local_rank=local)


def active() -> bool:
    """True once :func:`init` has joined a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes files and talks to the user."""
    return rank() == 0


_comm_device = torch.device("cpu")  # where collective tensors live: cuda for NCCL


def init(device: torch.device | str) -> torch.device:
    """Join the torchrun process group (once) and return this rank's device.

    ``device``: what one process would use (``auto``: cuda if available, else cpu).
    Under torchrun a CUDA device becomes ``cuda:LOCAL_RANK`` and the backend NCCL;
    anything else uses gloo. Without a launch this returns ``device`` and starts nothing.
    """
    global _comm_device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    where = launch()
    if where is None:
        return device
    if device.type == "cuda":
        if where.local_rank >= torch.cuda.device_count():
            raise DegError(
                f"LOCAL_RANK {where.local_rank} but this node has "
                f"{torch.cuda.device_count()} GPUs: start at most one process per GPU"
            )
        device = torch.device("cuda", where.local_rank)
    if not dist.is_initialized():
        # the other ranks wait while rank 0 alone validates and saves: allow for a long one
        timeout = dt.timedelta(minutes=30)
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device, timeout=timeout)
            _comm_device = device
        else:
            dist.init_process_group("gloo", timeout=timeout)
            _comm_device = torch.device("cpu")
        atexit.register(cleanup)
    return device


def cleanup() -> None:
    """Leave the process group (idempotent; also registered at exit)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def all_reduce(value: float, op: str = "mean") -> float:
    """``value`` combined over ranks: ``mean``, ``sum`` or ``min`` (one process: ``value``)."""
    if not active():
        return float(value)
    ops = {"mean": dist.ReduceOp.SUM, "sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN}
    t = torch.tensor([float(value)], dtype=torch.float64, device=_comm_device)
    dist.all_reduce(t, op=ops[op])
    out = float(t.item())
    return out / world() if op == "mean" else out


def broadcast(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (picklable objects: records, names)."""
    if not active():
        return obj
    box: list[Any] = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world()
    dist.all_gather_object(out, obj)
    return out


def shard(keys: Sequence[str]) -> list[str]:
    """This rank's share of ``keys``: sorted, then every world-th from position rank.

    The sort makes the split the same on every rank whatever order the keys came in,
    so each key belongs to exactly one rank. One process: ``keys`` as given.
    """
    if world() == 1:
        return list(keys)
    return sorted(keys)[rank() :: world()]


def merged(results: dict[str, T]) -> dict[str, T]:
    """Per-rank ``{key: value}`` results gathered into one dict (sorted by key) on every rank.

    One process: ``results`` as given.
    """
    if not active():
        return results
    parts: dict[str, T] = {}
    for part in all_gather(results):
        parts.update(part)
    return dict(sorted(parts.items()))


def broadcast_buffers(model: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank, in place.

    DDP sends them at the start of each forward, so after the last step every rank
    holds its own update; this makes all ranks hold exactly what rank 0 saves.
    """
    if not active():
        return
    for buf in model.buffers():
        dist.broadcast(buf.data, src=0)


def wrap(model: nn.Module, find_unused_parameters: bool = False) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several ranks, else as is.

    Only parameters with ``requires_grad`` are synchronised (a frozen flow generator
    is left alone). ``find_unused_parameters``: set it when some trainable parameters
    get no gradient in a step (e.g. per-stream heads the loss does not use): DDP then
    walks the graph every step to find them, which costs time, so it is off otherwise.
    """
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    return DistributedDataParallel(
        model,
        device_ids=[device] if device.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters,
    )


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a DistributedDataParallel wrapper (for checkpoints, eval)."""
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model
