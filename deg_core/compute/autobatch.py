"""Batch sizes that fit the device: probe once, fall back by halving when a step still OOMs.

DEG users hit out-of-memory at batch 32 on 8 GB cards. On CUDA, ``batch_size: auto``
runs the real step (forward + backward for training, forward for inference) at batch
1, 2, 4, ... up to a cap and keeps the largest that fits with a margin of free memory;
the answer is cached per (model arch, input size, device name, mode) for the process.
On CPU, ``auto`` keeps the fixed defaults (memory is rarely the limit there).

A step that still runs out of memory later (fragmentation, a longer clip) is retried
at half the batch with a one-line warning; at batch 1 a DegError says what to change.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from typing import TypeVar

import torch

from deg_core.errors import DegError

T = TypeVar("T")

# (arch, input size, device name, mode) -> the largest batch that fitted
_CACHE: dict[Hashable, int] = {}

ADVICE = "use a smaller augs.resize, a lighter preset (fast), or another device"


class BatchSizeWarning(UserWarning):
    """A step ran out of device memory and is being retried at a smaller batch."""


def is_oom(err: BaseException) -> bool:
    """Out of device memory, whichever layer (allocator, cuDNN, cuBLAS) noticed it."""
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and (
        "out of memory" in text or "CUDNN_STATUS_ALLOC_FAILED" in text
    )


def free_device_memory() -> None:
    """Return cached CUDA blocks after an out-of-memory error (no-op without CUDA)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def fits(step: Callable[[int], object], batch: int, device: torch.device, margin: float) -> bool:
    """Does ``step(batch)`` run, leaving ``margin`` of the device's memory free (CUDA)?"""
    cuda = device.type == "cuda"
    try:
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        step(batch)
        if cuda:
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device)
            total = torch.cuda.get_device_properties(device).total_memory
            return peak <= (1.0 - margin) * total
        return True
    except Exception as e:
        if not is_oom(e):
            raise
        return False
    finally:
        free_device_memory()


def find_batch(
    step: Callable[[int], object],
    device: torch.device,
    key: Hashable,
    *,
    cap: int = 256,
    margin: float = 0.15,
) -> int:
    """The largest power of two <= ``cap`` whose ``step`` fits ``device``; cached by ``key``.

    ``step(b)`` runs one real step at batch ``b`` (allocating what training or inference
    would); it should raise torch.cuda.OutOfMemoryError when the device is full.
    """
    full_key = (key, _device_name(device), cap)
    if full_key in _CACHE:
        return _CACHE[full_key]
    best, b = 0, 1
    while b <= cap and fits(step, b, device, margin):
        best, b = b, b * 2
    if best == 0:
        raise DegError(f"{key}: does not fit in {_device_name(device)} memory at batch 1: {ADVICE}")
    _CACHE[full_key] = best
    return best


def auto_batch(
    value: int | str,
    device: torch.device,
    *,
    cpu_default: int,
    gpu_default: int,
    step: Callable[[int], object] | None = None,
    key: Hashable = None,
    cap: int = 256,
) -> int:
    """A config ``batch_size`` -> an int: a number stays; ``auto`` probes CUDA when it can.

    Without a ``step`` to probe with (or on CPU), ``auto`` is the fixed default.
    """
    if value != "auto":
        return int(value)
    if device.type != "cuda":
        return cpu_default
    if step is None:
        return gpu_default
    return find_batch(step, device, key, cap=cap)


def with_fallback(
    step: Callable[[int], T], batch: int, what: str, on_halve: Callable[[int], None] | None = None
) -> tuple[T, int]:
    """Run ``step(batch)``; on out-of-memory halve the batch and retry; (result, batch used).

    ``on_halve(new_batch)`` lets the caller reset state a failed attempt left behind.
    """
    while True:
        try:
            return step(batch), batch
        except Exception as e:
            if not is_oom(e):
                raise
            free_device_memory()
            if batch <= 1:
                raise DegError(f"{what}: out of device memory even at batch 1: {ADVICE}") from None
            batch //= 2
            warnings.warn(
                f"{what}: out of device memory; retrying at batch {batch}",
                BatchSizeWarning,
                stacklevel=2,
            )
            if on_halve is not None:
                on_halve(batch)


def training_probe(
    model: torch.nn.Module,
    example: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    loss_fn: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
) -> Callable[[int], None]:
    """A ``step`` for :func:`find_batch`: forward + backward of ``model`` at batch ``b``.

    ``example(b)`` -> (inputs, targets) on the model's device; ``loss_fn(model, x, y)``
    -> a scalar. The model's parameters, buffers (BatchNorm statistics) and gradients are
    restored afterwards, so probing changes nothing a training run would see. Adam's
    state (2x the trainable parameters) is not allocated here: the margin covers it.
    """

    def step(b: int) -> None:
        saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
        was_training = model.training
        try:
            model.train()
            x, y = example(b)
            loss_fn(model, x, y).backward()
        finally:
            model.load_state_dict(saved)
            model.zero_grad(set_to_none=True)
            model.train(was_training)

    return step


def random_probe(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    x_shape: tuple[int, ...],
    y_shape: tuple[int, ...],
    device: torch.device,
) -> Callable[[int], None]:
    """:func:`training_probe` on random (b, *x_shape) inputs and 0/1 (b, *y_shape) targets."""

    def example(b: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(b, *x_shape, device=device)
        return x, (torch.rand(b, *y_shape, device=device) > 0.5).float()

    return training_probe(model, example, loss_fn)


def clear_cache() -> None:
    _CACHE.clear()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type
