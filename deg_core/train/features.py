"""Stage 2: train the hidden two-stream feature extractor on labelled frames.

The flow generator comes frozen from a flow run (``latest`` by default). Only frames
with at least one label count; -1 entries are masked in the loss, so partially
labelled videos are used as they are. Each validation pass fits per-behaviour
thresholds (max F1) that are stored with the checkpoint of that epoch.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deg_core.compute import autobatch
from deg_core.compute.layout import as_layout, nhwc_if_2d
from deg_core.config import DegConfig
from deg_core.data.clips import ClipAugment, ClipDataset, evenly_spaced, labelled_frames
from deg_core.data.flow_cache import (
    CachedFlowClips,
    FlowClipAugment,
    PairFlowCache,
    cache_bytes,
    video_key,
)
from deg_core.errors import ProjectError
from deg_core.evaluation.decisions import Decision, fit_decision
from deg_core.models.flow import build_flow_generator
from deg_core.models.network import feature_network
from deg_core.project.project import Project, split_keys
from deg_core.project.runs import RunInfo, load_run
from deg_core.train import common
from deg_core.train.loop import Callback, seed_everything
from deg_core.train.losses import label_counts, stage_loss
from deg_core.train.pretrained import init_feature_extractor


def load_flow_run(project: Project, flow_run: str) -> tuple[torch.nn.Module, RunInfo]:
    """The frozen flow generator of a flow run (its best checkpoint), and the run."""
    info = load_run(flow_run, project.models_dir, "flow")
    if info.n_rgb is None or info.arch is None:
        raise ProjectError(f"{info.name} is not a flow run", info.path)
    model = build_flow_generator(info.arch, num_frames=info.n_rgb)
    model.load_state_dict(info.checkpoint()["model"])
    return model, info


def train_features(
    project: Project,
    cfg: DegConfig | None = None,
    *,
    flow_run: str = "latest",
    device: str = "auto",
    resume: str | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    seed: int | None = None,
) -> Path:
    """Train (or resume) a feature-extractor run; returns the run folder.

    ``cfg`` None: the project's config, or when resuming the run's own settings (a given
    ``cfg`` may change only resumable ones; :func:`deg_core.train.common.stage_config`).
    A resumed run keeps its flow run (``latest`` means it) and ``seed`` (None: 0).
    """
    cfg, resumed = common.stage_config(project, "features", cfg, resume)
    flow_run = common.recorded(resumed, "flow_run", flow_run, unset="latest")
    seed = common.recorded_seed(resumed, seed)
    ecfg = cfg.feature_extractor
    behaviors = project.behaviors
    dev = common.resolve_device(device, cfg)
    seed_everything(seed)
    split = split_keys(project)
    train_items = common.video_items(project, split["train"], with_labels=True, augs=cfg.augs)
    val_items = common.video_items(project, split["val"], with_labels=True, augs=cfg.augs)
    if not train_items:
        raise ProjectError("no labelled video in the train split: label some frames first")
    if not val_items:
        raise ProjectError(
            "no labelled video in the val split: thresholds are fitted on validation "
            "(move a labelled video with `deg split PROJECT VIDEO val`)"
        )
    flow_gen, flow = load_flow_run(project, flow_run)
    n_rgb = flow.n_rgb
    assert n_rgb is not None  # load_flow_run refuses a run without it
    norm = flow.normalization or project.normalization()
    size = common.input_size(cfg)

    if ecfg.fit_on == "train+val":  # more animals, boxes and lighting than one video shows
        train_items = train_items + val_items
    train_labels = np.concatenate([it.labels for it in train_items if it.labels is not None])
    pos, _ = label_counts(train_labels)
    val_pos, _ = label_counts(
        np.concatenate([it.labels for it in val_items if it.labels is not None])
    )
    for name, p, vp in zip(behaviors, pos, val_pos, strict=True):
        if p == 0 or vp == 0:
            where = "train" if p == 0 else "val"
            warnings.warn(
                f"behaviour {name!r} has no positive frames in the {where} split: "
                "it is trained/evaluated without examples (threshold falls back to 0.5)",
                stacklevel=2,
            )
    model = feature_network(cfg, len(behaviors), n_rgb=n_rgb, flow_generator=flow_gen)
    weights = init_feature_extractor(
        model,
        ecfg.arch,
        ecfg.weights,
        project.models_dir / "pretrained",
        runs_dir=project.models_dir,  # auto / selfsup: the project's pretrain runs
        flow_run=flow.name,
    )
    exclusive = bool(cfg.project.exclusive)
    loss_fn, bias_pos, bias_neg = stage_loss(
        ecfg, train_labels, cfg.train.loss_weight_exp, exclusive
    )
    model.init_bias(bias_pos, bias_neg)
    model.to(dev)
    loss_fn.to(dev)
    nhwc = nhwc_if_2d(model)  # NHWC convolutions: deg_core.compute.layout
    probe = autobatch.random_probe(
        model,
        lambda m, x, y: loss_fn(m(as_layout(x, nhwc))["logits"], y),
        (3 * n_rgb, *size),
        (len(behaviors),),
        dev,
    )
    key = ("features", ecfg.arch, size, n_rgb)
    batch = (resumed and resumed.batch) or common.batch_size(
        ecfg.batch_size, dev, 8, 32, probe=probe, key=key
    )
    workers = common.num_workers(cfg.compute.num_workers)
    cached = flow_cache_applies(cfg, model, train_items + val_items, size)
    if cached and cfg.compute.num_workers == "auto" and dev.type == "cpu":
        # a cached sample is a few ms of work: on a CPU a worker process would cost its
        # start-up, a second copy of the frames and cores taken from the step (RESULTS.md)
        workers = 0
    run = common.start_run(
        project,
        "features",
        ecfg.arch,
        cfg,
        resume,
        {
            "class_names": project.class_names,
            "flow_run": flow.name,
            "weights": weights,
            "normalization": norm,
            "n_rgb": n_rgb,
            "seed": seed,
            "batch_size": batch,
            "videos": split,
            "flow_cache": cached,  # flows computed once per video (data/flow_cache.py)
        },
    )

    def make_set(items, samples, augment: bool) -> ClipDataset:
        aug = ClipAugment.from_config(cfg.augs) if augment else None
        return ClipDataset(
            items,
            samples,
            n_rgb,
            size,
            norm["mean"],
            norm["std"],
            aug,
            cache_mb=cfg.compute.frame_cache_mb,
        )

    train_clips = make_set(train_items, labelled_frames(train_items), augment=True)
    val_clips = make_set(
        val_items, evenly_spaced(labelled_frames(val_items), ecfg.val_steps * batch), False
    )
    train_set: ClipDataset | CachedFlowClips = train_clips
    val_set: ClipDataset | CachedFlowClips = val_clips
    if cached:
        gen = model.flow_generator
        tables: dict = {}  # a video in both sets (fit_on train+val) is computed once
        train_set = CachedFlowClips(
            train_clips,
            PairFlowCache.build(train_clips, gen, dev, shared=tables),
            FlowClipAugment.from_config(cfg.augs),
        )
        val_set = CachedFlowClips(
            val_clips, PairFlowCache.build(val_clips, gen, dev, shared=tables)
        )
        if workers > 0:  # the workers fill their own frame caches
            train_clips.drop_frames()
            val_clips.drop_frames()
    latest: dict[str, Any] = {"decision": Decision.thresholded([0.5] * len(behaviors)).to_dict()}

    def forward(m: torch.nn.Module, b: dict[str, Any]) -> dict[str, torch.Tensor]:
        if cached:  # the centre frame and its cached flows
            rgb, flows = (
                as_layout(b[k].to(dev, non_blocking=True), nhwc) for k in ("rgb", "flows")
            )
            return m(rgb, flows)
        return m(as_layout(b["images"].to(dev, non_blocking=True), nhwc))

    def step(m: torch.nn.Module, b: dict[str, Any]) -> tuple[torch.Tensor, int]:
        out = forward(m, b)
        return loss_fn(out["logits"], b["labels"].to(dev)), len(b["labels"])

    val_loader = common.fixed_loader(val_set, batch, workers)

    def validate(m: torch.nn.Module, epoch: int) -> dict[str, Any]:
        logits, labels, losses = [], [], []
        for b in val_loader:
            out = forward(m, b)
            losses.append(float(loss_fn(out["logits"], b["labels"].to(dev))))
            logits.append(out["logits"].float().cpu().numpy())
            labels.append(b["labels"].numpy().astype(np.int8))
        # val clips are sampled frames, not whole videos: one pool, no per-video scaling
        decision = fit_decision(
            [np.concatenate(logits)],
            [np.concatenate(labels)],
            behaviors,
            exclusive=exclusive,
            smooth=cfg.train.threshold_smoothing,
        )
        latest["decision"] = decision.to_dict()
        return common.decision_metrics(
            [np.concatenate(logits)], [np.concatenate(labels)], behaviors, losses, decision
        )

    def extra() -> dict[str, Any]:
        d = latest["decision"]
        return {"thresholds": d["thresholds"], "class_names": behaviors, "decision": d}

    return common.fit(
        run,
        model,
        lr=ecfg.lr,
        weight_decay=ecfg.weight_decay,
        cfg=cfg,
        step_fn=step,
        validate_fn=validate,
        loader_fn=common.epoch_loader(train_set, batch, ecfg.steps_per_epoch, seed, workers),
        num_epochs=ecfg.num_epochs,
        steps_per_epoch=ecfg.steps_per_epoch,
        callbacks=callbacks,
        progress=progress,
        extra_state=extra,
        # concatenate fusion: the per-stream heads exist but the loss does not use them
        find_unused_parameters=ecfg.fusion == "concatenate",
    )


def flow_cache_applies(
    cfg: DegConfig, model: torch.nn.Module, items: Sequence[Any], size: tuple[int, int]
) -> bool:
    """Whether this run trains on cached flows (``feature_extractor.flow_cache``): a
    frozen pairwise generator, 2-D streams, and every video's flows within
    ``compute.frame_cache_mb``."""
    if not cfg.feature_extractor.flow_cache:
        return False
    gen = getattr(model, "flow_generator", None)
    if not (getattr(gen, "pairwise", False) and getattr(model, "freeze_flow_generator", False)):
        return False
    if getattr(model, "is_3d", False):
        return False
    unique = {video_key(it): it.n_frames for it in items}
    return cache_bytes(list(unique.values()), size) <= cfg.compute.frame_cache_mb * 2**20
