"""Feature inference: every frame of every video -> ``DATA/<key>/<key>_outputs.h5``.

The features come from :mod:`deg_core.infer.feature_predictor` (decoding, stacks, the
model; its names are re-exported here). Results stream into a temporary copy of the
outputs file that replaces it when the video is done, so a crash leaves the previous
file intact, memory stays bounded for hour-long videos, and a rerun skips the videos
already done.

Layout, one group per feature-extractor run (named after the run folder)::

    <run>/spatial_features  (T, 512) float32
    <run>/flow_features     (T, 512) float32
    <run>/logits            (T, K) float32
    <run>/P                 (T, K) float32   sigmoid(logits); exclusive projects: the
                                             softmax over background (logit 0) + logits
    <run>/thresholds        (K,) float32     fitted on validation
    <run>/class_names       (K,) str         the behaviours (background is derived)

A video of N > 1 animals gets those per-frame datasets once per animal, each computed on a
window following that animal (deg_core.tracking.crop.animal_crop_boxes), in subgroups
``<run>/animal<i>/`` (attribute ``animals`` = N on ``<run>``; see deg_core.project.outputs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deg_core.compute import distributed
from deg_core.compute.autobatch import with_fallback
from deg_core.errors import DegError
from deg_core.infer.feature_predictor import (
    DATASETS,
    REFERENCE,
    FeaturePredictor,
    InferenceOptions,
    decode_ahead,
    frame_runs,
    stacks,
    video_features,  # looked up here at call time: tests replace it on this module
)
from deg_core.project.outputs import animal_group, has_group, writing_group
from deg_core.project.project import Project
from deg_core.tracking.crop import animal_crop_boxes, crop_boxes

__all__ = [
    "DATASETS",
    "REFERENCE",
    "FeaturePredictor",
    "InferenceOptions",
    "decode_ahead",
    "frame_runs",
    "infer_features",
    "stacks",
    "video_features",
    "write_video_outputs",
]

_FAST = InferenceOptions()  # the default options (frozen: one shared instance is safe)


def write_video_outputs(
    fm: FeaturePredictor,
    key: str,
    video: Path,
    n_frames: int,
    out_path: Path,
    batch: int | str = 16,
    progress=None,
    opts: InferenceOptions = _FAST,
    boxes: np.ndarray | None = None,
    animal_boxes: list[np.ndarray] | None = None,
) -> None:
    """Compute one video's features and add them atomically as group ``fm.run.name``.

    ``boxes``: (T, 4) crop boxes of the video when the run crops (deg_core.tracking.crop).
    ``animal_boxes``: a several-animal video's per-animal (T, 4) boxes: each animal's
    outputs go to subgroup ``animal<i>`` (``boxes`` is then ignored), all in one group.
    Batches are gathered to ``opts.write_frames`` frames and written as one slice per
    dataset (HDF5 per-write overhead dominates small writes); memory stays O(that).
    ``batch`` ``auto``: the largest that fits the GPU (16 on CPU). Out of device memory
    mid-video, the video restarts at half the batch (one warning), down to batch 1.
    """
    size = fm.auto_batch(opts) if batch == "auto" else int(batch)

    def restart(_: int) -> None:
        if progress is not None and hasattr(progress, "reset"):
            progress.reset()

    streams: list[np.ndarray | None] = list(animal_boxes) if animal_boxes else [boxes]
    with_fallback(
        lambda b: _write_outputs(
            fm, key, video, n_frames, out_path, b, progress, opts, streams, bool(animal_boxes)
        ),
        size,
        f"{video.name}: feature inference",
        on_halve=restart,
    )


def _write_outputs(
    fm, key, video, n_frames, out_path, batch, progress, opts, streams, per_animal
) -> None:
    attrs = {"animals": len(streams)} if per_animal else {}
    with writing_group(out_path, fm.run.name, fm.behaviors, fm.thresholds, video=key, **attrs) as g:
        for i, boxes in enumerate(streams):
            target = g.create_group(animal_group(i)) if per_animal else g
            _write_stream(fm, target, video, n_frames, batch, progress, opts, boxes)


def _write_stream(fm, g, video, n_frames, batch, progress, opts, boxes) -> None:
    k = len(fm.behaviors)
    dims = {"spatial_features": 512, "flow_features": 512}
    ds = {
        name: g.create_dataset(
            name,
            (n_frames, dims.get(name, k)),
            dtype="float32",
            chunks=(min(n_frames, 4096), dims.get(name, k)),
        )
        for name in DATASETS
    }
    pending: list[dict[str, np.ndarray]] = []
    first, held = 0, 0

    def flush() -> None:
        nonlocal pending, first, held
        if not pending:
            return
        for name in DATASETS:
            parts = [p[name] for p in pending]
            ds[name][first : first + held] = parts[0] if len(parts) == 1 else np.concatenate(parts)
        first, held, pending = first + held, 0, []

    for start, arrays in video_features(fm, video, n_frames, batch, opts, boxes):
        if start != first + held:  # batches arrive in order; anything else is a bug
            raise DegError(f"{video}: batch at frame {start}, expected {first + held}")
        pending.append(arrays)
        held += len(arrays["P"])
        if held >= opts.write_frames:
            flush()
        if progress is not None:
            progress.update(len(arrays["P"]))
    flush()


def infer_features(
    project: Project,
    run: str = "latest",
    keys: list[str] | None = None,
    *,
    device: str = "auto",
    batch_size: int | str = 16,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, str]:
    """Run a feature extractor over videos; returns {key: "done" | "skipped"}."""
    fm = FeaturePredictor.load(project, run, str(distributed.init(device)))  # torchrun: its GPU
    keys = [project.resolve_key(k) for k in keys] if keys else project.video_keys()
    keys = distributed.shard(keys)  # torchrun: this rank's videos; one writer per file
    result = {}
    for key in keys:
        rec = project.record(key)
        out = rec.outputs_path  # a DEG project's existing outputs file, else <key>_outputs.h5
        if not overwrite and has_group(out, fm.run.name):
            result[key] = "skipped"
            continue
        n = rec.n_frames()
        several = project.n_animals(key) > 1  # one stream per animal, each in its window
        per_animal = animal_crop_boxes(project, key, fm.augs) if several else None
        bar = None
        if progress:
            from tqdm.auto import tqdm

            total = n * (len(per_animal) if per_animal else 1)
            bar = tqdm(total=total, desc=key, unit="frame", leave=False)
        try:
            boxes = None if several else crop_boxes(project, key, fm.augs)
            write_video_outputs(
                fm,
                key,
                rec.video,  # type: ignore[arg-type]
                n,
                out,
                batch_size,
                bar,
                boxes=boxes,
                animal_boxes=per_animal,
            )
        finally:
            if bar is not None:
                bar.close()
        result[key] = "done"
    return result
