"""Sequence inference: features -> per-frame probabilities -> the ethogram.

Per video this adds the run's group to ``<key>_outputs.h5`` (``logits`` (T, K),
``P`` (T, K), ``thresholds`` (K,), ``class_names`` (K,)) and writes
``<key>_predictions.csv`` in the label format: thresholded with the validation
thresholds, bouts shorter than each behaviour's minimum removed, background derived.
Whole videos run in chunks with enough overlap for the model's receptive field, so
an hour-long video needs memory for one chunk only.

A video of N > 1 animals is predicted per animal, from that animal's features: the run's
group gets subgroups ``animal<i>`` (``logits``, ``P`` and that animal's ``thresholds``;
deg_core.project.outputs) and each animal its own ``<key>_animal<i>_predictions.csv``
(:func:`predictions_path`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deg_core.compute import distributed
from deg_core.data.sequences import features_or_explain
from deg_core.data.streams import stream_name, video_streams
from deg_core.errors import ProjectError
from deg_core.evaluation.decisions import Decision, decision_of, probabilities
from deg_core.labels.labels import Labels, read_labels, write_labels
from deg_core.models.sequence import sequence_model_from_config
from deg_core.project.outputs import animal_group, has_group, writing_group
from deg_core.project.project import Project
from deg_core.project.runs import load_run
from deg_core.train.loop import pick_device


@dataclass
class SequencePredictor:
    """A trained sequence model ready for inference (its run, thresholds, bout lengths)."""

    model: torch.nn.Module
    run: Path
    feature_run: str
    thresholds: np.ndarray  # (K,)
    min_lengths: np.ndarray  # (K,) int
    behaviors: list[str]
    track_features: bool = False  # the run's inputs end with the animal-track features
    track_position: bool = True  # ... including where the animal is in the frame
    standardise_inputs: bool = False  # ... each column z-scored over its video
    social_features: bool = True  # several animals: ... with the evidence between them
    decision: Decision | None = None  # None: thresholds and min_lengths decide

    @classmethod
    def load(cls, project: Project, run: str = "latest", device: str = "cpu") -> SequencePredictor:
        info = load_run(run, project.models_dir, "sequence", behaviors=project.behaviors)
        behaviors = info.behaviors or []
        if info.upstream is None or info.num_features is None:
            raise ProjectError("not a sequence run (no feature run recorded)", info.path)
        model = sequence_model_from_config(
            info.config.sequence, info.num_features, len(behaviors), arch=info.arch
        )
        model.load_state_dict(info.checkpoint()["model"])
        model.eval().to(pick_device(device))
        if info.thresholds is None:
            raise ProjectError("the best checkpoint holds no fitted thresholds", info.path)
        min_lengths = info.min_lengths
        return cls(
            decision=decision_of(info),
            model=model,
            run=info.path,
            feature_run=info.upstream,
            thresholds=np.asarray(info.thresholds, dtype=np.float32),
            min_lengths=np.ones(len(behaviors), int) if min_lengths is None else min_lengths,
            behaviors=behaviors,
            track_features=info.config.sequence.track_features,
            track_position=info.config.sequence.track_position,
            standardise_inputs=info.config.sequence.standardise_inputs,
            social_features=info.config.sequence.social_features,
        )


def feature_run_of(project: Project, run: str = "latest") -> str:
    """The feature run a sequence run was trained on (whose features it predicts from),
    read from its config.yaml; ProjectError if the run is stale."""
    info = load_run(run, project.models_dir, "sequence", behaviors=project.behaviors)
    if info.upstream is None:
        raise ProjectError("not a sequence run (no feature run recorded)", info.path)
    return info.upstream


@torch.no_grad()
def sequence_logits(
    model: torch.nn.Module, features, chunk: int | None = None, autocast: bool = False
) -> np.ndarray:
    """(T, D) features -> (T, K) float32 logits, in overlapping chunks (exact in the interior).

    ``features`` may be any sliceable (T, D) array (numpy, an h5py dataset): only one
    chunk plus ``2 * receptive_field`` frames of it is on the device at a time, so an
    hour-long video needs memory for one chunk and the (T, K) result. ``autocast``:
    bf16/fp16 on CUDA (ignored on CPU). ``chunk`` None: 4,096 frames on CPU (TGMJ holds
    ~33 MB per 1,000 frames per layer; larger chunks were no faster on a 2-core CPU and
    took 3.9 GB at 20,000), 16,384 on CUDA (fewer launches, ~2 GB).
    """
    device = next(model.parameters()).device
    cuda = device.type == "cuda"
    chunk = chunk or (16_384 if cuda else 4_096)
    ctx = int(getattr(model, "receptive_field", 0))
    t = len(features)
    out: np.ndarray | None = None
    amp = torch.bfloat16 if not cuda or torch.cuda.is_bf16_supported() else torch.float16
    for start in range(0, t, chunk):
        lo, hi = max(start - ctx, 0), min(start + chunk + ctx, t)
        x = torch.from_numpy(np.ascontiguousarray(features[lo:hi], dtype=np.float32))
        if cuda:
            x = x.pin_memory().to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp, enabled=autocast and cuda):
            logits = model(x[None])[0]
        n = min(chunk, t - start)
        part = logits[start - lo : start - lo + n].float().cpu().numpy()
        if out is None:  # K is known after the first chunk
            out = np.empty((t, part.shape[1]), np.float32)
        out[start : start + n] = part
    return out if out is not None else np.zeros((0, 0), np.float32)


def infer_sequence(
    project: Project,
    run: str = "latest",
    keys: list[str] | None = None,
    *,
    device: str = "auto",
    overwrite: bool = False,
) -> dict[str, str]:
    """Predict every frame of ``keys`` (default: all videos); {key: "done" | "skipped"}."""
    sm = SequencePredictor.load(project, run, str(distributed.init(device)))  # torchrun: its GPU
    keys = [project.resolve_key(k) for k in keys] if keys else project.video_keys()
    keys = distributed.shard(keys)  # torchrun: this rank's videos; one writer per file
    todo = [
        k for k in keys if overwrite or not has_group(project.record(k).outputs_path, sm.run.name)
    ]
    # all missing named at once
    feats = features_or_explain(
        project,
        todo,
        sm.feature_run,
        track=sm.track_features,
        track_position=sm.track_position,
        standardise=sm.standardise_inputs,
        social=sm.social_features,
    )
    decision = sm.decision or Decision.thresholded(sm.thresholds, sm.min_lengths)
    for key in todo:
        rec = project.record(key)
        streams = video_streams(project, key)
        if len(streams) == 1:
            logits = sequence_logits(sm.model, feats[key])
            probs = probabilities(logits, decision.exclusive)
            # this video's thresholds on P (per-video normalised scores shift them per video)
            thresholds = decision.video_thresholds(logits)
            with writing_group(
                rec.outputs_path, sm.run.name, sm.behaviors, thresholds, video=key
            ) as g:
                g.create_dataset("logits", data=logits.astype(np.float32))
                g.create_dataset("P", data=probs.astype(np.float32))
            pred = decision.decide(logits)
            write_labels(rec.predictions_path, Labels(sm.behaviors, pred.astype(np.int8)))
            continue
        # several animals: one stream each, all in one group (subgroups animal<i>)
        logits_a = [sequence_logits(sm.model, feats[stream_name(s)]) for s in streams]
        with writing_group(
            rec.outputs_path,
            sm.run.name,
            sm.behaviors,
            decision.thresholds,
            video=key,
            animals=len(streams),
        ) as g:
            for i, logits in enumerate(logits_a):
                sub = g.create_group(animal_group(i))
                sub.create_dataset("logits", data=logits.astype(np.float32))
                sub.create_dataset(
                    "P", data=probabilities(logits, decision.exclusive).astype(np.float32)
                )
                sub.create_dataset(
                    "thresholds", data=np.asarray(decision.video_thresholds(logits), np.float32)
                )
        for i, logits in enumerate(logits_a):
            pred = decision.decide(logits)
            write_labels(
                predictions_path(project, key, i), Labels(sm.behaviors, pred.astype(np.int8))
            )
    return {k: ("done" if k in todo else "skipped") for k in keys}


def predictions_path(project: Project, key: str, animal: int | None = None) -> Path:
    """Where the sequence model's predictions of a video go: ``<key>_predictions.csv``, or
    for animal ``i`` of a several-animal video ``<key>_animal<i>_predictions.csv``."""
    rec = project.record(key)
    return rec.predictions_path if animal is None else rec.animal_predictions_path(animal)


def import_predictions(
    project: Project, video: str, overwrite: bool = False, animal: int | None = None
) -> Labels:
    """Copy a video's predictions into its labels: by default only onto unlabelled frames.
    A video of several animals: animal ``animal``'s predictions
    (``<key>_animal<i>_predictions.csv``) into its labels; None there is a one-line error
    saying which ones there are."""
    key = project.resolve_key(video)
    chosen = project.check_animal(key, animal)
    if project.n_animals(key) == 1:
        chosen = None  # animal 0 of a one-animal video: DeepEthogram's files
    path = predictions_path(project, key, chosen)
    if not path.exists():
        raise ProjectError(
            f"no predictions for {key!r} yet: run `deg infer sequence {project.root}`", path
        )
    pred = read_labels(path, project.behaviors, project.record(key).n_frames())
    labels = project.labels(key, animal=chosen)
    merged = labels.array.copy()
    take = np.ones_like(merged, dtype=bool) if overwrite else merged == -1
    merged[take] = pred.array[take]
    new = Labels(project.behaviors, merged)
    project.save_labels(key, new, animal=chosen)
    return new
