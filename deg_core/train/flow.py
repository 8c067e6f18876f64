"""Stage 1: train the self-supervised flow generator on every video of the project.

Labels are not needed. Validation clips come from the val split's videos; a project
with no val video holds out the last 10 % of each video's frames instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deg_core.compute import autobatch
from deg_core.compute.layout import as_layout, nhwc_if_2d
from deg_core.config import DegConfig
from deg_core.data.clips import (
    ClipAugment,
    ClipDataset,
    VideoItem,
    all_frames,
    denormalize,
    evenly_spaced,
)
from deg_core.errors import ProjectError
from deg_core.models.flow import build_flow_generator
from deg_core.models.flow.photometric import MotionNetLoss
from deg_core.project.project import Project, split_keys
from deg_core.train import common
from deg_core.train.loop import Callback, seed_everything
from deg_core.train.pretrained import init_flow_generator


def _samples(items: list[VideoItem], val_keys_mask: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    frames = all_frames(items)
    if any(val_keys_mask):
        is_val = np.array([val_keys_mask[v] for v in frames[:, 0]], dtype=bool)
    else:  # no val video: the last 10% of every video validates
        n = np.array([items[v].n_frames for v in frames[:, 0]])
        is_val = frames[:, 1] >= np.floor(n * 0.9)
    return frames[~is_val], frames[is_val]


def train_flow(
    project: Project,
    cfg: DegConfig | None = None,
    *,
    device: str = "auto",
    resume: str | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    seed: int | None = None,
) -> Path:
    """Train (or resume) a flow generator run; returns the run folder.

    ``cfg`` None: the project's config, or when resuming the run's own settings (a given
    ``cfg`` may change only resumable ones; :func:`deg_core.train.common.stage_config`).
    ``seed`` None: 0, or the resumed run's. The kept ``best.pt`` is the epoch with the
    lowest validation loss.
    """
    cfg, resumed = common.stage_config(project, "flow", cfg, resume)
    seed = common.recorded_seed(resumed, seed)
    fcfg = cfg.flow_generator
    dev = common.resolve_device(device, cfg)
    seed_everything(seed)
    split = split_keys(project)
    keys = split["train"] + split["val"] + split["test"]
    if not keys:
        raise ProjectError("no videos yet: add some with `deg add-videos`", project.root)
    items: list[VideoItem] = []
    is_val: list[bool] = []  # per item (a video of several animals gives one per animal)
    for k in keys:
        got = common.video_items(project, [k], with_labels=False, augs=cfg.augs)
        items += got
        is_val += [k in split["val"]] * len(got)
    train_s, val_s = _samples(items, is_val)
    if not len(train_s):
        raise ProjectError(
            "every video is in the val split: move one to train (`deg split PROJECT VIDEO "
            "train`) for the flow generator to learn from",
            project.root,
        )
    size = common.input_size(cfg)
    # a resumed run keeps the statistics it started with (videos may have been added)
    norm = (resumed.record.get("normalization") if resumed else None) or project.normalization()
    workers = common.num_workers(cfg.compute.num_workers)

    model = build_flow_generator(fcfg.arch, num_frames=fcfg.n_rgb)
    weights = init_flow_generator(model, fcfg.weights, project.models_dir / "pretrained")
    model.to(dev)
    nhwc = nhwc_if_2d(model)  # NHWC convolutions: deg_core.compute.layout
    loss_fn = MotionNetLoss.from_config(fcfg).to(dev)
    h, w = size
    probe = autobatch.random_probe(  # a step on [0, 1] frames, as the photometric loss sees
        model,
        lambda m, x, _: loss_fn(x.sigmoid(), m(as_layout(x, nhwc)))[0],
        (3 * fcfg.n_rgb, h, w),
        (1,),
        dev,
    )
    key = ("flow", fcfg.arch, size, fcfg.n_rgb)
    batch = (resumed and resumed.batch) or common.batch_size(
        fcfg.batch_size, dev, 4, 32, probe=probe, key=key
    )
    run = common.start_run(
        project,
        "flow",
        fcfg.arch,
        cfg,
        resume,
        {
            "weights": weights,
            "normalization": norm,
            "seed": seed,
            "batch_size": batch,
            "videos": split,
        },
    )

    def make_set(samples: np.ndarray, augment: bool) -> ClipDataset:
        aug = ClipAugment.from_config(cfg.augs) if augment else None
        return ClipDataset(
            items,
            samples,
            fcfg.n_rgb,
            size,
            norm["mean"],
            norm["std"],
            aug,
            cache_mb=cfg.compute.frame_cache_mb,
        )

    train_set = make_set(train_s, augment=True)
    val_set = make_set(evenly_spaced(val_s, fcfg.val_steps * batch), augment=False)

    mean = torch.tensor(norm["mean"], dtype=torch.float32, device=dev)
    std = torch.tensor(norm["std"], dtype=torch.float32, device=dev)

    def step(m: torch.nn.Module, b: dict[str, Any]) -> tuple[torch.Tensor, int]:
        images = b["images"].to(dev, non_blocking=True)
        # the network sees z-scored frames; the photometric loss compares [0, 1] pixels
        loss, _ = loss_fn(denormalize(images, mean, std), m(as_layout(images, nhwc)))
        return loss, images.shape[0]

    val_loader = common.fixed_loader(val_set, batch, workers)

    def validate(m: torch.nn.Module, epoch: int) -> dict[str, Any]:
        parts: dict[str, list[float]] = {}
        for b in val_loader:
            images = b["images"].to(dev)
            _, terms = loss_fn(denormalize(images, mean, std), m(as_layout(images, nhwc)))
            for k, v in terms.items():
                parts.setdefault(k, []).append(v)
        out = {k: common.mean_or_nan(v) for k, v in parts.items()}
        out["loss"] = out.get("total", float("nan"))
        return out

    return common.fit(
        run,
        model,
        lr=fcfg.lr,
        weight_decay=0.0,
        cfg=cfg,
        step_fn=step,
        validate_fn=validate,
        loader_fn=common.epoch_loader(train_set, batch, fcfg.steps_per_epoch, seed, workers),
        num_epochs=fcfg.num_epochs,
        steps_per_epoch=fcfg.steps_per_epoch,
        callbacks=callbacks,
        progress=progress,
    )
