"""What the stage trainers share: the project's videos as dataset items, loaders, runs."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sized
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from deg_core.config import DegConfig, to_dict
from deg_core.data.clips import EpochBatchSampler, VideoItem
from deg_core.errors import ProjectError
from deg_core.fileio import save_yaml
from deg_core.project import Project
from deg_core.runs import RUN_CONFIG, new_run_dir


def video_items(project: Project, keys: list[str], with_labels: bool) -> list[VideoItem]:
    """Dataset items for ``keys``; with labels, videos without any labelled frame are dropped."""
    items = []
    for key in keys:
        rec = project.record(key)
        if rec.video is None:
            raise ProjectError("no video file found in this folder", rec.folder)
        labels = None
        if with_labels:
            if not rec.labels_path.exists():
                continue
            labels = project.labels(key).array
            if not (labels != -1).any():
                continue
        items.append(VideoItem(path=rec.video, n_frames=rec.n_frames(), labels=labels))
    return items


def split_keys(project: Project) -> dict[str, list[str]]:
    table = project.splits()
    keys = project.video_keys()
    return {s: [k for k in keys if table.assignment.get(k) == s] for s in ("train", "val", "test")}


def input_size(cfg: DegConfig) -> tuple[int, int]:
    h, w = cfg.augs.resize
    if h % 32 or w % 32:
        raise ProjectError(f"augs.resize {h}x{w}: height and width must be multiples of 32")
    return int(h), int(w)


def batch_size(
    value: int | str,
    device: torch.device,
    cpu_default: int,
    gpu_default: int,
    probe=None,
    key=None,
) -> int:
    """``auto`` -> the CPU default, or on CUDA the largest batch whose ``probe(b)`` (one
    training step) fits the GPU (deg_core.autobatch; ``gpu_default`` without a probe)."""
    from deg_core.autobatch import auto_batch

    return auto_batch(
        value, device, cpu_default=cpu_default, gpu_default=gpu_default, step=probe, key=key
    )


def num_workers(value: int | str) -> int:
    if value == "auto":
        return min(8, max((os.cpu_count() or 1) - 1, 0))
    return int(value)


def epoch_loader(dataset: Dataset, batch: int, steps: int, seed: int, workers: int):
    """A LoaderFn for the Trainer: (epoch, first step) -> that epoch's batches.

    One DataLoader serves every epoch: its workers persist (starting a worker pool
    costs seconds per epoch) and only the main-process sampler moves to the epoch.
    """
    sampler = EpochBatchSampler(len(cast(Sized, dataset)), batch, steps, seed, 0)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        multiprocessing_context=_worker_context(workers),
        persistent_workers=workers > 0,
    )

    def make(epoch: int, start: int) -> Iterable[dict[str, Any]]:
        sampler.epoch, sampler.start = epoch, start
        return loader

    return make


def fixed_loader(dataset: Dataset, batch: int, workers: int) -> DataLoader:
    """Validation batches in a fixed order; iterate it once per epoch (workers persist)."""
    return DataLoader(
        dataset,
        batch_size=batch,
        shuffle=False,
        num_workers=workers,
        multiprocessing_context=_worker_context(workers),
        persistent_workers=workers > 0,
    )


def _worker_context(workers: int) -> str | None:
    # fork() copies a process whose decoder and OpenMP threads may hold locks that then
    # never release in the worker; forkserver starts workers from a clean process
    if workers == 0:
        return None
    return "forkserver" if sys.platform.startswith("linux") else None


def start_run(
    project: Project, stage: str, arch: str, cfg: DegConfig, resume: str | None, info: dict
) -> Path:
    """A new run folder with its config.yaml, or the folder of the run to resume."""
    if resume is not None:
        run = project.models_dir / resume
        if not (run / RUN_CONFIG).is_file():
            raise ProjectError(f"no run {resume!r} to resume", project.models_dir)
        return run
    run = new_run_dir(project.models_dir, stage, arch)
    save_yaml(run / RUN_CONFIG, {"stage": stage, "arch": arch, **info, "config": to_dict(cfg)})
    return run


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


def mean_or_nan(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def fit(
    run: Path,
    model: torch.nn.Module,
    *,
    lr: float,
    weight_decay: float,
    cfg: DegConfig,
    step_fn,
    validate_fn,
    loader_fn,
    num_epochs: int,
    steps_per_epoch: int,
    callbacks=(),
    progress: bool = True,
    extra_state=None,
) -> Path:
    """Adam + plateau LR schedule + the shared Trainer, resumed from ``last.pt`` if present."""
    from deg_core.train.loop import Trainer

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=cfg.train.reduction_factor, patience=cfg.train.patience
    )
    trainer = Trainer(
        run_dir=run,
        model=model,
        optimizer=optimizer,
        step_fn=step_fn,
        validate_fn=validate_fn,
        loader_fn=loader_fn,
        num_epochs=num_epochs,
        steps_per_epoch=steps_per_epoch,
        scheduler=scheduler,
        min_lr=cfg.train.min_lr,
        callbacks=callbacks,
        progress=progress,
        extra_state=extra_state,
    )
    trainer.resume()
    trainer.fit()
    return run


def resolve_device(device: str, cfg: DegConfig) -> torch.device:
    """An explicit ``device`` wins; ``auto`` defers to ``compute.device``."""
    from deg_core.train.loop import pick_device

    return pick_device(device if device != "auto" else cfg.compute.device)


def threshold_metrics(
    probs: list[np.ndarray], labels: list[np.ndarray], behaviors: list[str], losses: list[float]
) -> dict[str, Any]:
    """Validation record: mean loss, max-F1 thresholds and the per-behaviour metrics at them.

    probs/labels: per-batch or per-video (T_i, K) arrays, pooled here.
    """
    from deg_core.metrics import fit_thresholds, per_class_metrics

    p, y = np.concatenate(probs), np.concatenate(labels).astype(np.int8)
    thresholds, _, _ = fit_thresholds(p, y, class_names=behaviors)
    metrics = per_class_metrics(p, y, thresholds, behaviors)
    return {"loss": mean_or_nan(losses), **metrics, "thresholds": thresholds.tolist()}
