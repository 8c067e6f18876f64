"""Stage 3: train the sequence model on per-frame features of a feature-extractor run.

Inputs are the features ``deg infer features`` wrote; a video without them stops
the run with one message naming the videos and the command that makes them. A run
whose behaviour list differs from the project's is refused (stale). Validation
runs whole val videos at once.

Decisions (``sequence.decisions: out_of_fold``; the default ``val`` fits them on the val
videos at the best epoch, DeepEthogram's way, with the same guard): before the final model, every
labelled video (train and val) is predicted by a model trained on the other labelled videos
(k-fold by video; a sequence model trains in seconds), and the thresholds (or, for an
exclusive project, the arg-max offsets) are fitted on those predictions pooled, with the
guard of :mod:`deg_core.evaluation.decisions`. The decision is stored in the checkpoint (``extra``)
and, readable, in the run's ``decision.yaml``; the out-of-fold logits in ``oof_logits.npz``
(one (T, K) array per labelled video key).
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
from deg_core.data.streams import (
    Stream,
    stream_has_labels,
    stream_labels,
    stream_name,
    video_streams,
)
from deg_core.errors import ConfigError, ProjectError
from deg_core.evaluation.decisions import Decision, fit_decision, probabilities
from deg_core.evaluation.postprocess import min_bout_lengths
from deg_core.fileio import atomic_open, save_yaml
from deg_core.models.sequence import sequence_model_from_config
from deg_core.project.project import Project, split_keys
from deg_core.project.runs import resolve_run
from deg_core.train import common
from deg_core.train.loop import Callback, seed_everything
from deg_core.train.losses import label_counts, stage_loss

MAX_DECISION_FOLDS = 5  # k of the k-fold by video that fits the decisions


def labelled_streams(project: Project, keys: list[str]) -> list[Stream]:
    """The labelled streams of ``keys`` (already :func:`_labelled_keys`): a one-animal
    video's stream, and each animal of a several-animal video that has labels."""
    out: list[Stream] = []
    for key in keys:
        streams = video_streams(project, key)
        if len(streams) == 1:
            out += streams
        else:
            out += [s for s in streams if stream_has_labels(project, s)]
    return out


def labelled_items(
    project: Project, keys: list[str], feats: dict[str, np.ndarray]
) -> list[SequenceItem]:
    """One item per labelled stream of ``keys`` (:func:`labelled_streams`): a video of
    several animals gives one per labelled animal."""
    items = []
    for stream in labelled_streams(project, keys):
        name = stream_name(stream)
        labels = stream_labels(project, stream)
        if len(labels) != len(feats[name]):
            raise ProjectError(
                f"video {name!r}: features have {len(feats[name])} rows, labels {len(labels)}"
            )
        items.append(SequenceItem(feats[name], labels))
    return items


def _labelled_keys(project: Project, keys: list[str]) -> list[str]:
    """The videos of ``keys`` with a labelled frame (any animal's, for several animals)."""
    return [
        k for k in keys if any(stream_has_labels(project, s) for s in video_streams(project, k))
    ]


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
        project,
        train_keys + val_keys,
        fdir.name,
        track=scfg.track_features,
        track_position=scfg.track_position,
        standardise=scfg.standardise_inputs,
        social=scfg.social_features,
    )
    train_items = labelled_items(project, train_keys, feats)
    val_items = labelled_items(project, val_keys, feats)
    exclusive = bool(cfg.project.exclusive)
    # the plain arg-max of an exclusive project fits nothing on the val videos
    fits_on_val = scfg.decisions == "val" and not (exclusive and not scfg.argmax_offsets)
    if scfg.fit_on == "train+val" and fits_on_val:
        raise ConfigError(
            "sequence.fit_on: train+val trains on the val videos, so their predictions cannot "
            "fit the decisions: set sequence.decisions: out_of_fold"
        )
    fit_on = scfg.fit_on if scfg.fit_on != "auto" else ("train" if fits_on_val else "train+val")
    normalise = scfg.normalise_scores == "always" or (scfg.normalise_scores == "auto" and exclusive)
    fit_items = train_items + (val_items if fit_on == "train+val" else [])
    pos, _ = label_counts(np.concatenate([it.labels for it in fit_items]))
    for name, p in zip(behaviors, pos, strict=True):
        if p == 0:
            warnings.warn(
                f"behaviour {name!r} has no positive frames in the train split", stacklevel=2
            )
    n_features = train_items[0].features.shape[1]
    # shortest bouts people label: predictions shorter than these are noise
    min_lengths = min_bout_lengths(
        [it.labels for it in fit_items], fraction=scfg.min_bout_fraction
    ).tolist()
    model, loss_fn = _model_and_loss(cfg, fit_items, n_features, len(behaviors), exclusive)
    model.to(dev)
    loss_fn.to(dev)
    window = (scfg.sequence_length, int(n_features))
    probe = autobatch.random_probe(
        model, lambda m, x, y: loss_fn(m(x), y), window, (window[0], len(behaviors)), dev
    )
    key = ("sequence", scfg.arch, window)
    batch = (resumed and resumed.batch) or common.batch_size(
        scfg.batch_size, dev, 8, 32, probe=probe, key=key
    )
    decision: Decision | None = None
    oof: list[np.ndarray] = []
    if scfg.decisions == "out_of_fold":
        keys = train_keys + val_keys
        oof = out_of_fold_logits(
            cfg, [*train_items, *val_items], exclusive, batch=batch, device=dev, seed=seed
        )
        decision = fit_decision(
            oof,
            [it.labels for it in [*train_items, *val_items]],
            behaviors,
            exclusive=exclusive,
            normalise=normalise,
            smooth=cfg.train.threshold_smoothing,
            min_lengths=min_lengths,
            offsets=scfg.argmax_offsets,
            source=f"out-of-fold over {len(keys)} labelled videos",
        )
    if scfg.self_training:  # confident frames of the unlabelled videos join the training set
        fit_items = fit_items + self_training_items(
            project,
            cfg,
            fdir.name,
            fit_items,
            train_keys + val_keys,
            exclusive,
            batch=batch,
            device=dev,
            seed=seed,
        )
    if decision is not None or scfg.self_training:
        seed_everything(seed)  # the final model draws as it would without the folds
        model, loss_fn = _model_and_loss(cfg, fit_items, n_features, len(behaviors), exclusive)
        model.to(dev)
        loss_fn.to(dev)
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
            "trained_on": fit_on,  # sequence.fit_on resolved (auto)
        },
    )
    if decision is not None:
        save_yaml(run / "decision.yaml", decision.to_dict())
        with atomic_open(run / "oof_logits.npz", "wb") as f:  # to refit or inspect decisions
            names = [stream_name(st) for st in labelled_streams(project, train_keys + val_keys)]
            arrays: dict[str, Any] = dict(zip(names, oof, strict=True))
            np.savez(f, **arrays)
    train_set = WindowDataset(fit_items, scfg.sequence_length, stride=scfg.sequence_length // 2)
    start = decision or Decision.thresholded([0.5] * len(behaviors), min_lengths)
    latest: dict[str, Any] = {"decision": start.to_dict()}

    def step(m: torch.nn.Module, b: dict[str, Any]) -> tuple[torch.Tensor, int]:
        logits = m(b["features"].to(dev, non_blocking=True))
        return loss_fn(logits, b["labels"].to(dev)), int(b["labels"].shape[0])

    def validate(m: torch.nn.Module, epoch: int) -> dict[str, Any]:
        logits_v, labels, losses = [], [], []
        for it in val_items:  # whole videos: a few small convolutions each
            x = torch.from_numpy(it.features).to(dev)[None]
            logits = m(x)[0]
            y = torch.from_numpy(it.labels.astype(np.float32)).to(dev)
            losses.append(float(loss_fn(logits, y)))
            logits_v.append(logits.float().cpu().numpy())
            labels.append(it.labels)
        if decision is None:  # DeepEthogram's way: the val videos decide, epoch by epoch
            fitted = fit_decision(
                logits_v,
                labels,
                behaviors,
                exclusive=exclusive,
                normalise=normalise,
                smooth=cfg.train.threshold_smoothing,
                min_lengths=min_lengths,
                offsets=scfg.argmax_offsets,
                source="val",
            )
            latest["decision"] = fitted.to_dict()
        return common.decision_metrics(
            logits_v, labels, behaviors, losses, Decision.from_dict(latest["decision"])
        )

    def extra() -> dict[str, Any]:
        d = Decision.from_dict(latest["decision"])
        return {
            "thresholds": d.thresholds.tolist(),
            "class_names": behaviors,
            "min_lengths": min_lengths,
            "decision": latest["decision"],
        }

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
        extra_state=extra,
    )


def _model_and_loss(
    cfg: DegConfig, items: list[SequenceItem], n_features: int, k: int, exclusive: bool
) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A fresh sequence model with its head bias at the labelled prevalence, and its loss
    (:func:`deg_core.train.losses.stage_loss`)."""
    labels = np.concatenate([it.labels for it in items])
    model = sequence_model_from_config(cfg.sequence, n_features, k)
    loss_fn, pos, neg = stage_loss(cfg.sequence, labels, cfg.train.loss_weight_exp, exclusive)
    model.init_bias(pos, neg)
    return model, loss_fn


def out_of_fold_logits(
    cfg: DegConfig,
    items: list[SequenceItem],
    exclusive: bool,
    *,
    batch: int,
    device: torch.device,
    seed: int = 0,
) -> list[np.ndarray]:
    """``(T_i, K)`` logits of every video in ``items``, each from a model trained (the
    sequence budget, fixed LR) on the videos of the other folds; k = min(videos, 5).

    Videos are dealt round-robin to folds, so each fold holds whole videos, never frames."""
    n = len(items)
    if n < 2:
        raise ProjectError("out-of-fold decisions need at least two labelled videos")
    n_folds = min(n, MAX_DECISION_FOLDS)
    out: list[np.ndarray | None] = [None] * n
    for fold in range(n_folds):
        held = [i for i in range(n) if i % n_folds == fold]
        rest = [items[i] for i in range(n) if i % n_folds != fold]
        model = fit_fixed(cfg, rest, exclusive, batch=batch, device=device, seed=seed + 1 + fold)
        for i in held:
            out[i] = _video_logits(model, items[i].features, device)
    return [o for o in out if o is not None]


def fit_fixed(
    cfg: DegConfig,
    items: list[SequenceItem],
    exclusive: bool,
    *,
    batch: int,
    device: torch.device,
    seed: int = 0,
) -> torch.nn.Module:
    """A sequence model trained on ``items`` for the stage's budget (epochs x steps) at a
    fixed LR, without validation: the out-of-fold models and the self-training teacher.
    Returned in eval mode."""
    scfg = cfg.sequence
    seed_everything(seed)
    k = items[0].labels.shape[1]
    model, loss_fn = _model_and_loss(cfg, items, items[0].features.shape[1], k, exclusive)
    model.to(device)
    loss_fn.to(device)
    opt = common.adam(model.parameters(), lr=scfg.lr, weight_decay=scfg.weight_decay)
    data = WindowDataset(items, scfg.sequence_length, stride=scfg.sequence_length // 2)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(scfg.num_epochs):
        order = torch.randint(len(data), (scfg.steps_per_epoch, batch), generator=gen)
        for idx in order.tolist():
            b = [data[i] for i in idx]
            x = torch.stack([d["features"] for d in b]).to(device)
            y = torch.stack([d["labels"] for d in b]).to(device)
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


def pseudo_labels(logits: np.ndarray, exclusive: bool, confidence: float) -> np.ndarray:
    """``(T, K)`` int8 labels from a teacher's logits: a frame's class where the teacher's
    probability is at least ``confidence`` (exclusive: the winning class, background
    included, so every other behaviour is 0), per behaviour 1 / 0 where P >= confidence /
    P <= 1 - confidence (multi-label); -1 (unlabelled) elsewhere."""
    p = probabilities(logits, exclusive)
    if exclusive:
        full = np.concatenate([1.0 - p.sum(axis=1, keepdims=True), p], axis=1)
        cls, top = full.argmax(axis=1), full.max(axis=1)
        out = np.zeros(p.shape, np.int8)
        rows = np.flatnonzero(cls > 0)
        out[rows, cls[rows] - 1] = 1
        out[top < confidence] = -1
        return out
    out = np.full(p.shape, -1, np.int8)
    out[p >= confidence] = 1
    out[p <= 1.0 - confidence] = 0
    return out


def self_training_items(
    project: Project,
    cfg: DegConfig,
    feature_run: str,
    labelled: list[SequenceItem],
    skip: list[str],
    exclusive: bool,
    *,
    batch: int,
    device: torch.device,
    seed: int,
) -> list[SequenceItem]:
    """Pseudo-labelled items of the project's other videos (those with features of
    ``feature_run``; not in ``skip``): a teacher trained on ``labelled`` (:func:`fit_fixed`)
    labels its confident frames (``sequence.pseudo_confidence``, :func:`pseudo_labels`)."""
    scfg = cfg.sequence
    others: list[np.ndarray] = []
    for key in project.video_keys():
        if key in skip:
            continue
        try:
            others += features_or_explain(  # every stream (animal) of the video
                project,
                [key],
                feature_run,
                track=scfg.track_features,
                track_position=scfg.track_position,
                standardise=scfg.standardise_inputs,
                social=scfg.social_features,
            ).values()
        except ProjectError:  # no features of this run yet: nothing to learn from
            continue
    if not others:
        return []
    teacher = fit_fixed(cfg, labelled, exclusive, batch=batch, device=device, seed=seed + 101)
    items = []
    for f in others:
        labels = pseudo_labels(_video_logits(teacher, f, device), exclusive, scfg.pseudo_confidence)
        if (labels != -1).any():
            items.append(SequenceItem(f, labels))
    return items


@torch.no_grad()
def _video_logits(model: torch.nn.Module, features: np.ndarray, device: torch.device) -> np.ndarray:
    """``(T, K)`` float32 logits of one whole video's ``(T, D)`` features."""
    return model(torch.from_numpy(features).to(device)[None])[0].float().cpu().numpy()
