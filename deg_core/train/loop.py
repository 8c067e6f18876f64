"""The training loop every stage shares: epochs, checkpoints, metrics, resume, callbacks.

A run folder holds ``last.pt`` (everything needed to resume: model, optimizer,
scheduler, position), ``best.pt`` (the model of the epoch with the LOWEST validation loss —
DEG kept the highest, a real bug; no optimizer state, nothing resumes from it) and
``metrics.jsonl`` (one JSON record per epoch).
Batches come from :class:`deg_core.data.clips.EpochBatchSampler`, seeded per epoch,
so a run is repeatable on CPU and a resumed run continues with the batches it would
have seen. Ctrl-C (KeyboardInterrupt) saves ``last.pt`` at the current step first.

Under torchrun (``model`` wrapped in DistributedDataParallel) every rank trains on
its slice of each batch; rank 0 alone validates (on the plain model), writes the
files, shows progress and calls callbacks, and its validation record is broadcast
so the LR schedule, ``best_loss`` and early stop agree on every rank. Checkpoints
hold the plain model's ``state_dict`` (loadable by one process).
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from deg_core.compute import distributed
from deg_core.compute.autobatch import ADVICE, BatchSizeWarning, free_device_memory, is_oom
from deg_core.config import device_problem
from deg_core.errors import ConfigError, DegError
from deg_core.models.weights import load_checkpoint, save_checkpoint
from deg_core.project.runs import BEST, LAST, METRICS, read_jsonl

StepFn = Callable[[nn.Module, dict[str, Any]], tuple[torch.Tensor, int]]
"""(model, batch) -> (loss to minimise, number of clips in the batch)."""
ValidateFn = Callable[[nn.Module, int], dict[str, Any]]
"""(model, epoch) -> {"loss": float, ...more metrics, JSON-ready}."""
LoaderFn = Callable[[int, int], Iterable[dict[str, Any]]]
"""(epoch, first step) -> batches of that epoch from ``first step`` on."""


class Callback(Protocol):
    """Hooks for live displays (e.g. a notebook widget plotting curves)."""

    def on_step(self, trainer: Trainer, loss: float) -> None: ...

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any]) -> None: ...


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds libraries that use the legacy global RNG
    torch.manual_seed(seed)


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` -> cuda if available, else cpu; a name deg does not accept, or a device
    this machine lacks, is a one-line error (before anything is written)."""
    problem = device_problem(device)
    if problem:
        raise ConfigError(problem)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise DegError(f"device {device!r}: torch sees no CUDA GPU on this machine")
        if dev.index is not None and dev.index >= n:
            raise DegError(f"device {device!r}: this machine has {n} CUDA GPU(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DegError(f"device {device!r}: MPS is not available on this machine")
    return dev


@dataclass
class Trainer:
    """Runs ``num_epochs`` x ``steps_per_epoch`` optimisation steps with validation."""

    run_dir: Path
    model: nn.Module
    optimizer: torch.optim.Optimizer
    step_fn: StepFn
    validate_fn: ValidateFn
    loader_fn: LoaderFn
    num_epochs: int
    steps_per_epoch: int
    scheduler: Any = None  # ReduceLROnPlateau (stepped with the validation loss)
    min_lr: float = 0.0
    callbacks: Sequence[Callback] = ()
    progress: bool = True
    extra_state: Callable[[], dict[str, Any]] | None = None
    # position (restored by resume)
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_loss: float = math.inf
    history: list[dict[str, Any]] = field(default_factory=list)
    micro_batches: int = 1  # > 1 after running out of device memory (see _step)

    # ------------------------------------------------------------------ state
    def state(self, resumable: bool = True) -> dict[str, Any]:
        """What a checkpoint holds. ``resumable`` False (``best.pt``) leaves out the optimizer
        and scheduler: nothing resumes from best.pt, and Adam's two moments per weight would
        triple its size (two ResNet-18 streams: ~91 MB instead of ~270 MB)."""
        optim: dict[str, Any] = {}
        if resumable:
            optim = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            }
        return {
            "model": distributed.unwrap(self.model).state_dict(),
            **optim,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best_loss": self.best_loss,
            "extra": self.extra_state() if self.extra_state else {},
        }

    def resume(self) -> bool:
        """Continue from ``last.pt`` if the run has one; returns whether it did."""
        path = self.run_dir / LAST
        if not path.is_file():
            # killed before the first epoch's checkpoint: its record (if any) goes too
            if distributed.is_main() and (self.run_dir / METRICS).exists():
                _write_jsonl(self.run_dir / METRICS, [])
            return False
        ckpt = load_checkpoint(path)  # every rank reads the same file: they start in step
        distributed.unwrap(self.model).load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.epoch, self.step_in_epoch = int(ckpt["epoch"]), int(ckpt["step_in_epoch"])
        self.global_step, self.best_loss = int(ckpt["global_step"]), float(ckpt["best_loss"])
        # epochs not completed before the interruption are recorded again (read_jsonl
        # skips a half-written last record: killed mid-append)
        self.history = [r for r in read_jsonl(self.run_dir / METRICS) if r["epoch"] < self.epoch]
        distributed.barrier()  # every rank has read metrics.jsonl before rank 0 rewrites it
        if distributed.is_main():
            _write_jsonl(self.run_dir / METRICS, self.history)
        return True

    # ------------------------------------------------------------------ loop
    def fit(self) -> list[dict[str, Any]]:
        """Train to the end (or until the LR falls below ``min_lr``); returns the history."""
        try:
            while self.epoch < self.num_epochs:
                self._epoch()
                if self._lr() < self.min_lr:  # the plateau scheduler has given up
                    break
        except KeyboardInterrupt:
            if distributed.is_main():
                save_checkpoint(self.run_dir / LAST, self.state())
            raise
        return self.history

    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _step(self, batch: dict[str, Any]) -> tuple[float, int]:
        """One optimisation step; out of device memory, the batch is split into more pieces
        whose gradients add up (same step, less memory), with a warning. Returns (loss, n)."""
        while True:
            try:
                self.optimizer.zero_grad(set_to_none=True)
                total = _batch_len(batch)
                value, count = 0.0, 0
                for piece in split_batch(batch, self.micro_batches):
                    loss, n = self.step_fn(self.model, piece)
                    share = _batch_len(piece) / total
                    (loss * share).backward()  # the mean over the whole batch
                    value += float(loss.detach()) * share
                    count += n
                self.optimizer.step()
                return value, count
            except Exception as err:  # only out-of-memory is handled
                if not is_oom(err):
                    raise
                self.optimizer.zero_grad(set_to_none=True)
                size = _batch_len(batch)
                if distributed.world() > 1 or self.micro_batches >= size:
                    raise DegError(
                        f"out of device memory at {size // self.micro_batches} clip(s) per "
                        f"step: set a smaller batch_size for this stage, or {ADVICE}"
                    ) from None
                self.micro_batches = min(2 * self.micro_batches, size)
                free_device_memory()
                warnings.warn(
                    f"out of device memory: each batch of {size} now runs as "
                    f"{self.micro_batches} pieces (gradients accumulated)",
                    BatchSizeWarning,
                    stacklevel=2,
                )

    def _epoch(self) -> dict[str, Any]:
        self.model.train()
        start_step, clips, losses = self.step_in_epoch, 0, []
        main = distributed.is_main()
        callbacks = self.callbacks if main else ()
        t0 = time.perf_counter()
        bar = _progress(
            self.steps_per_epoch,
            start_step,
            f"epoch {self.epoch + 1}/{self.num_epochs}",
            self.progress and main,
        )
        for batch in self.loader_fn(self.epoch, start_step):
            value, n = self._step(batch)
            losses.append(value)
            clips += n
            self.step_in_epoch += 1
            self.global_step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}")
            for cb in callbacks:
                cb.on_step(self, value)
            if self.step_in_epoch >= self.steps_per_epoch:
                break
        if bar is not None:
            bar.close()
        train_seconds = time.perf_counter() - t0
        # over all ranks: the mean of their mean losses (equal slices: the global mean)
        train_loss = distributed.all_reduce(float(np.mean(losses)) if losses else math.nan)
        clips = int(distributed.all_reduce(clips, "sum"))
        distributed.broadcast_buffers(self.model)  # one model on every rank, rank 0's
        self.model.eval()
        val: dict[str, Any] | None = None
        if main:  # the plain model: no DDP collectives while the other ranks wait
            with torch.no_grad():
                val = self.validate_fn(distributed.unwrap(self.model), self.epoch)
        val = distributed.broadcast(val)
        assert val is not None
        record = {
            "epoch": self.epoch,
            "step": self.global_step,
            "train_loss": train_loss if losses else None,
            "val_loss": float(val["loss"]),
            "lr": self._lr(),
            "clips_per_s": clips / train_seconds if train_seconds > 0 else None,
            **{k: v for k, v in val.items() if k != "loss"},
        }
        if self.scheduler is not None:
            self.scheduler.step(record["val_loss"])
        improved = record["val_loss"] < self.best_loss  # lower is better
        record["best"] = improved
        self.epoch += 1
        self.step_in_epoch = 0
        if improved:
            self.best_loss = record["val_loss"]
        self.history.append(record)
        if main:
            # the record first: killed before last.pt moves on, resume() drops it again;
            # the other order would lose the epoch's record for good
            with open(self.run_dir / METRICS, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            if improved:
                save_checkpoint(self.run_dir / BEST, self.state(resumable=False))
            save_checkpoint(self.run_dir / LAST, self.state())
        for cb in callbacks:
            cb.on_epoch_end(self, record)
        return record


def _batch_len(batch: dict[str, Any]) -> int:
    """Samples in a collated batch: the length of its first tensor or list (1 if none)."""
    return next((len(v) for v in batch.values() if isinstance(v, torch.Tensor | list)), 1)


def split_batch(batch: dict[str, Any], parts: int) -> list[dict[str, Any]]:
    """A collated batch (tensors and lists along dim 0) cut into ``parts`` near-equal pieces."""
    if parts <= 1:
        return [batch]
    size = _batch_len(batch)
    bounds = np.linspace(0, size, parts + 1).round().astype(int)
    return [
        {k: v[a:b] if isinstance(v, torch.Tensor | list) else v for k, v in batch.items()}
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]


def _progress(total: int, start: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm  # notebook-aware progress bar

    return tqdm(total=total, initial=start, desc=desc, leave=False)


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    from deg_core.fileio import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))
