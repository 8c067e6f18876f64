"""What the stage trainers share: the project's videos as dataset items, loaders, runs."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from deg_core.compute import distributed
from deg_core.config import AugsSection, DegConfig, to_dict
from deg_core.data.clips import EpochBatchSampler, VideoItem
from deg_core.data.streams import stream_has_labels, stream_labels, video_streams
from deg_core.errors import ConfigError, DegError, ProjectError
from deg_core.fileio import FULL_DISK, save_yaml
from deg_core.project.project import Project
from deg_core.project.runs import (
    RUN_CONFIG,
    check_run,
    new_run_dir,
    read_run_config,
    resumable_run,
    resume_config,
)
from deg_core.tracking.crop import animal_crop_boxes, crop_boxes


def video_items(
    project: Project, keys: list[str], with_labels: bool, augs: AugsSection | None = None
) -> list[VideoItem]:
    """Dataset items for ``keys``; with labels, videos without any labelled frame are dropped.

    ``augs``: its ``crop`` decides the crop boxes of each item (None: full frames).
    A video of N > 1 animals gives N items, one per animal (a stream,
    :mod:`deg_core.data.streams`): animal i's labels, crop boxes of a fixed window following
    it (:func:`deg_core.tracking.crop.animal_crop_boxes`; needs the video's animal tracks);
    with labels, animals without any labelled frame are dropped.
    """
    items = []
    for key in keys:
        rec = project.record(key)
        if rec.video is None:
            raise ProjectError("no video file found in this folder", rec.folder)
        if project.n_animals(key) > 1:
            items += _animal_items(project, key, rec.video, rec.n_frames(), with_labels, augs)
            continue
        labels = None
        if with_labels:
            if not rec.labels_path.exists():
                continue
            labels = project.labels(key).array
            if not (labels != -1).any():
                continue
        boxes = crop_boxes(project, key, augs) if augs is not None else None
        items.append(VideoItem(path=rec.video, n_frames=rec.n_frames(), labels=labels, boxes=boxes))
    return items


def _animal_items(
    project: Project,
    key: str,
    video: Path,
    n_frames: int,
    with_labels: bool,
    augs: AugsSection | None,
) -> list[VideoItem]:
    streams = video_streams(project, key)
    if with_labels:
        streams = [s for s in streams if stream_has_labels(project, s)]
        if not streams:
            return []
    boxes = animal_crop_boxes(project, key, augs)
    items = []
    for stream in streams:
        animal = int(stream[1] or 0)
        labels = stream_labels(project, stream) if with_labels else None
        items.append(VideoItem(video, n_frames, labels=labels, boxes=boxes[animal], animal=animal))
    return items


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
    """``auto`` -> the CPU default, or on CUDA the largest power of two up to ``gpu_default``
    whose ``probe(b)`` (one training step) fits the GPU (deg_core.compute.autobatch): the usual
    batch where it fits, a smaller one on small cards; ``gpu_default`` without a probe.

    The result is the global batch (split over torchrun's ranks by :func:`epoch_loader`):
    a number is taken as it is, ``auto`` sizes one process's share, so under torchrun
    it is the smallest share any rank found times the number of ranks.
    """
    from deg_core.compute.autobatch import auto_batch

    per = auto_batch(
        value,
        device,
        cpu_default=cpu_default,
        gpu_default=gpu_default,
        step=probe,
        key=key,
        cap=gpu_default,  # auto never raises the batch above the usual one (same training)
    )
    if value == "auto" and distributed.world() > 1:  # every rank must draw the same batches
        return int(distributed.all_reduce(per, "min")) * distributed.world()
    return per


def num_workers(value: int | str) -> int:
    if value == "auto":
        return min(8, max((os.cpu_count() or 1) - 1, 0))
    return int(value)


class RankBatchSampler(EpochBatchSampler):
    """An :class:`EpochBatchSampler` of global batches of which this rank takes a slice.

    Every rank draws the same global batches (same seed and epoch); rank r keeps
    positions r, r + world, ... of each, so the ranks' slices are disjoint and
    together are exactly the one-process batch. With DDP averaging the gradients,
    a step then equals one process's step on the global batch (up to float
    rounding, BatchNorm statistics per slice and random augmentation draws).
    A global batch not divisible by the world gives slices differing by one.
    """

    def __init__(self, n: int, batch_size: int, steps: int, seed: int, rank: int, world: int):
        if batch_size < world:
            raise DegError(
                f"batch size {batch_size} is smaller than the {world} processes: "
                "each needs at least one clip (raise the batch size or start fewer)"
            )
        super().__init__(n, batch_size, steps, seed, 0)
        self.rank, self.world = rank, world

    def __iter__(self):
        for batch in super().__iter__():
            yield batch[self.rank :: self.world]


def epoch_loader(dataset: Dataset, batch: int, steps: int, seed: int, workers: int):
    """A LoaderFn for the Trainer: (epoch, first step) -> that epoch's batches.

    One DataLoader serves every epoch: its workers persist (starting a worker pool
    costs seconds per epoch) and only the main-process sampler moves to the epoch.
    ``batch`` is the global batch: under torchrun each rank loads its slice of it
    (:class:`RankBatchSampler`), so the stage's settings mean the same at any scale.
    """
    n = len(cast(Sized, dataset))
    sampler: EpochBatchSampler
    if distributed.world() > 1:
        sampler = RankBatchSampler(n, batch, steps, seed, distributed.rank(), distributed.world())
    else:
        sampler = EpochBatchSampler(n, batch, steps, seed, 0)
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


@dataclass
class Resumed:
    """The run a trainer resumes: its folder and its config.yaml record."""

    run: Path
    record: dict[str, Any]

    @property
    def batch(self) -> int | None:
        """The batch size the run trained with: kept, as ``auto`` may size it otherwise
        on another device (other batches; too big for the device: see Trainer._step)."""
        value = self.record.get("batch_size")
        return int(value) if value else None


def stage_config(
    project: Project, stage: str, cfg: DegConfig | None, resume: str | None
) -> tuple[DegConfig, Resumed | None]:
    """The settings to train with, and the run to resume (None: a new run).

    A new run: ``cfg``, or the project's config when None. A resumed run: its own
    settings (:func:`deg_core.project.runs.resume_config`), which a given ``cfg`` may change
    only in resumable keys (the number of epochs, compute.*), else one-line ConfigError.
    Reads only: whatever is refused here leaves every file as it was.
    """
    if resume is None:
        return (cfg or project.resolve_config()), None
    run, record = resumable_run(project.models_dir, resume, stage)
    if record.get("class_names") is not None:
        check_run(run, project.behaviors)  # trained for other behaviours: cannot continue
    return resume_config(run, cfg), Resumed(run, record)


def recorded(resumed: Resumed | None, key: str, value: Any, unset: Any = None) -> Any:
    """``value``; when resuming, the run's recorded ``key`` where ``value`` is ``unset``
    (e.g. the seed, the flow run), and a one-line ConfigError where it differs."""
    saved = resumed.record.get(key) if resumed is not None else None
    if resumed is None or saved is None or value == unset:
        return value if saved is None else saved
    if value != saved:
        raise ConfigError(
            f"cannot resume run {resumed.run.name} with {key} {value!r}: "
            f"it was trained with {key} {saved!r}"
        )
    return value


def recorded_seed(resumed: Resumed | None, seed: int | None) -> int:
    """The seed to train with: ``seed``, the resumed run's own, else 0 (see :func:`recorded`)."""
    value = recorded(resumed, "seed", seed)
    return 0 if value is None else int(value)


def start_run(
    project: Project, stage: str, arch: str, cfg: DegConfig, resume: str | None, info: dict
) -> Path:
    """A new run folder with its config.yaml, or the folder of the run to resume.

    A resumed run's config.yaml takes the settings it now trains with (more epochs,
    another device: :data:`deg_core.config.RESUMABLE`), so the next resume continues
    with them. Under torchrun rank 0 creates the folder and the others take its name
    (two ranks starting in different seconds would otherwise name different folders).
    """
    if resume is not None:
        run = project.models_dir / resume
        if not (run / RUN_CONFIG).is_file():
            raise ProjectError(f"no run {resume!r} to resume", project.models_dir)
        if distributed.is_main():
            record = read_run_config(run)
            if record.get("config") != to_dict(cfg):
                save_yaml(run / RUN_CONFIG, {**record, "config": to_dict(cfg)})
        return run
    name: str | None = None
    error = ""
    if distributed.is_main():
        try:
            run = new_run_dir(project.models_dir, stage, arch)
            record = {"stage": stage, "arch": arch, **info, "config": to_dict(cfg)}
            try:
                save_yaml(run / RUN_CONFIG, record)
            except BaseException:  # a full disk: no run left that holds nothing
                shutil.rmtree(run, ignore_errors=True)
                raise
            name = run.name
        except (OSError, DegError) as e:  # every rank stops, not just rank 0
            if distributed.world() == 1:
                raise
            error = str(e)
    name, error = distributed.broadcast((name, error))
    if name is None:
        raise ProjectError(f"rank 0 could not create the run folder: {error}", project.models_dir)
    return project.models_dir / name


def mean_or_nan(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def adam(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with torch's fused kernel where the parameters' device has one (CPU, CUDA): one
    pass over each tensor instead of a dozen elementwise ops. Same update; on 2 cores the step
    over two ResNet-18 streams takes 25 ms instead of 104 (benchmarks/RESULTS.md)."""
    params = list(params)
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


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
    find_unused_parameters: bool = False,
) -> Path:
    """Adam + plateau LR schedule + the shared Trainer, resumed from ``last.pt`` if present.

    Under torchrun (process group joined by :func:`resolve_device`, the model on the
    device it returned) the model trains inside DistributedDataParallel, which gets
    ``find_unused_parameters`` (see :func:`deg_core.compute.distributed.wrap`). Returns once
    every rank is done, so the run's files are complete for whatever runs next on any rank.
    """
    from deg_core.train.loop import Trainer, seed_everything

    if distributed.rank() > 0:
        # the same seed made every rank build the same model (DDP also broadcasts
        # rank 0's weights); from here on augmentation and dropout draws must differ
        # between ranks, which see different clips. Rank 0 keeps one process's stream.
        seed_everything(torch.initial_seed() + 7919 * distributed.rank())
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = adam(trainable, lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=cfg.train.reduction_factor, patience=cfg.train.patience
    )
    trainer = Trainer(
        run_dir=run,
        model=distributed.wrap(model, find_unused_parameters),
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
    try:
        trainer.resume()
        trainer.fit()
    except OSError as e:
        if e.errno in FULL_DISK and distributed.is_main() and not any(run.glob("*.pt")):
            shutil.rmtree(run, ignore_errors=True)  # no checkpoint yet: nothing to resume
        raise
    distributed.barrier()
    return run


def resolve_device(device: str, cfg: DegConfig) -> torch.device:
    """An explicit ``device`` wins; ``auto`` defers to ``compute.device``. An unknown
    name or a device the machine lacks is a one-line error.

    Under torchrun this joins the process group and a CUDA device becomes this
    rank's GPU (``cuda:LOCAL_RANK``).
    """
    from deg_core.train.loop import pick_device

    return distributed.init(pick_device(device if device != "auto" else cfg.compute.device))


def decision_metrics(
    logits: list[np.ndarray],
    labels: list[np.ndarray],
    behaviors: list[str],
    losses: list[float],
    decision: Any,
) -> dict[str, Any]:
    """Validation record of a run whose decision is a
    :class:`deg_core.evaluation.decisions.Decision`: mean loss, the decision's thresholds,
    and per-behaviour F1/precision/recall/accuracy/support of its (uncleaned) predictions.

    logits/labels: per-video (T_i, K) arrays (a per-video normalisation needs whole videos).
    """
    from deg_core.evaluation.metrics import per_class_metrics

    pred = np.concatenate([decision.raw(x) for x in logits]).astype(np.float32)
    y = np.concatenate(labels).astype(np.int8)
    # decided predictions as 0/1 "probabilities" against 0.5: the same summary as thresholds
    metrics = per_class_metrics(pred, y, np.full(len(behaviors), 0.5), behaviors)
    return {"loss": mean_or_nan(losses), **metrics, "thresholds": decision.thresholds.tolist()}
