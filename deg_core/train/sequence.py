"""Stage 3: train the sequence model on per-frame features of a feature-extractor run.

Inputs are the features ``deg infer features`` wrote; a video without them stops
the run with one message naming the videos and the command that makes them. A run
whose behaviour list differs from the project's is refused (stale). Validation
runs whole val videos at once and fits per-behaviour thresholds (max F1).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deg_core.compute import autobatch
from deg_core.config import DegConfig
from deg_core.data.sequences import SequenceItem, WindowDataset, features_or_explain
from deg_core.errors import ProjectError
from deg_core.evaluation.postprocess import min_bout_lengths
from deg_core.models.sequence import sequence_model_from_config
from deg_core.project.project import Project, split_keys
from deg_core.project.runs import resolve_run
from deg_core.train import common
from deg_core.train.loop import Callback, seed_everything
from deg_core.train.losses import MaskedBCELoss, label_counts, pos_weight_from_counts


def labelled_items(
    project: Project, keys: list[str], feats: dict[str, np.ndarray]
) -> list[SequenceItem]:
    items = []
    for key in keys:
        labels = project.labels(key).array
        if len(labels) != len(feats[key]):
            raise ProjectError(
                f"video {key!r}: features have {len(feats[key])} rows, labels {len(labels)}"
            )
        items.append(SequenceItem(feats[key], labels))
    return items


def _labelled_keys(project: Project, keys: list[str]) -> list[str]:
    out = []
    for k in keys:
        rec = project.record(k)
        if rec.labels_path.exists() and (project.labels(k).array != -1).any():
            out.append(k)
    return out


def train_sequence(
    project: Project,
    cfg: DegConfig | None = None,
    *,
    feature_run: str = "latest",
    device: str = "auto",
    resume: str | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    seed: int | None = None,
) -> Path:
    """Train (or resume) a sequence-model run; returns the run folder.

    ``cfg`` None: the project's config, or when resuming the run's own settings (a given
    ``cfg`` may change only resumable ones; :func:`deg_core.train.common.stage_config`).
    A resumed run keeps its feature run (``latest`` means it) and ``seed`` (None: 0).
    """
    cfg, resumed = common.stage_config(project, "sequence", cfg, resume)
    feature_run = common.recorded(resumed, "feature_run", feature_run, unset="latest")
    seed = common.recorded_seed(resumed, seed)
    scfg = cfg.sequence
    behaviors = project.behaviors
    dev = common.resolve_device(device, cfg)
    seed_everything(seed)
    fdir = project.check_run(resolve_run(project.models_dir, "features", feature_run))
    split = split_keys(project)
    train_keys = _labelled_keys(project, split["train"])
    val_keys = _labelled_keys(project, split["val"])
    if not train_keys or not val_keys:
        raise ProjectError("the sequence model needs labelled videos in both train and val")
    feats = features_or_explain(
        project, train_keys + val_keys, fdir.name, track=scfg.track_features
    )
    train_items = labelled_items(project, train_keys, feats)
    val_items = labelled_items(project, val_keys, feats)
    pos, neg = label_counts(np.concatenate([it.labels for it in train_items]))
    for name, p in zip(behaviors, pos, strict=True):
        if p == 0:
            warnings.warn(
                f"behaviour {name!r} has no positive frames in the train split", stacklevel=2
            )
    n_features = train_items[0].features.shape[1]
    model = sequence_model_from_config(scfg, n_features, len(behaviors))
    model.init_bias(pos, neg)
    model.to(dev)
    loss_fn = MaskedBCELoss.from_config(
        scfg, pos_weight=pos_weight_from_counts(pos, neg, beta=cfg.train.loss_weight_exp)
    ).to(dev)
    window = (scfg.sequence_length, int(n_features))
    probe = autobatch.random_probe(
        model, lambda m, x, y: loss_fn(m(x), y), window, (window[0], len(behaviors)), dev
    )
    key = ("sequence", scfg.arch, window)
    batch = (resumed and resumed.batch) or common.batch_size(
        scfg.batch_size, dev, 8, 32, probe=probe, key=key
    )
    run = common.start_run(
        project,
        "sequence",
        scfg.arch,
        cfg,
        resume,
        {
            "class_names": project.class_names,
            "feature_run": fdir.name,
            "num_features": int(n_features),
            "seed": seed,
            "batch_size": batch,
            "videos": split,
        },
    )
    train_set = WindowDataset(train_items, scfg.sequence_length, stride=scfg.sequence_length // 2)
    latest: dict[str, Any] = {"thresholds": [0.5] * len(behaviors)}
    # shortest bouts people label: predictions shorter than these are noise
    min_lengths = min_bout_lengths(
        [it.labels for it in train_items], fraction=scfg.min_bout_fraction
    ).tolist()

    def step(m: torch.nn.Module, b: dict[str, Any]) -> tuple[torch.Tensor, int]:
        logits = m(b["features"].to(dev, non_blocking=True))
        return loss_fn(logits, b["labels"].to(dev)), int(b["labels"].shape[0])

    def validate(m: torch.nn.Module, epoch: int) -> dict[str, Any]:
        probs, labels, losses = [], [], []
        for it in val_items:  # whole videos: a few small convolutions each
            x = torch.from_numpy(it.features).to(dev)[None]
            logits = m(x)[0]
            y = torch.from_numpy(it.labels.astype(np.float32)).to(dev)
            losses.append(float(loss_fn(logits, y)))
            probs.append(torch.sigmoid(logits).float().cpu().numpy())
            labels.append(it.labels)
        record = common.threshold_metrics(
            probs, labels, behaviors, losses, smooth=cfg.train.threshold_smoothing
        )
        latest["thresholds"] = record["thresholds"]
        return record

    return common.fit(
        run,
        model,
        lr=scfg.lr,
        weight_decay=scfg.weight_decay,
        cfg=cfg,
        step_fn=step,
        validate_fn=validate,
        loader_fn=common.epoch_loader(train_set, batch, scfg.steps_per_epoch, seed, 0),
        num_epochs=scfg.num_epochs,
        steps_per_epoch=scfg.steps_per_epoch,
        callbacks=callbacks,
        progress=progress,
        extra_state=lambda: {
            "thresholds": latest["thresholds"],
            "class_names": behaviors,
            "min_lengths": min_lengths,
        },
    )
