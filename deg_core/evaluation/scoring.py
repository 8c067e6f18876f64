"""Score a trained model on a split of the project: ``deg evaluate``."""

from __future__ import annotations

from typing import Any

import numpy as np

from deg_core.data.streams import (
    stream_has_labels,
    stream_labels,
    stream_name,
    video_streams,
)
from deg_core.errors import DegError, ProjectError
from deg_core.evaluation.decisions import decision_of
from deg_core.evaluation.evaluate import evaluate, evaluate_animals
from deg_core.project.outputs import read_group
from deg_core.project.project import Project, split_keys
from deg_core.project.runs import load_run


def evaluate_project(
    project: Project, split: str = "val", model: str = "sequence", run: str = "latest"
) -> dict[str, Any]:
    """Metrics of a feature or sequence run's stored outputs against the labels of ``split``.

    Uses the run's decision (thresholds or arg-max offsets fitted out of fold or on
    validation: test data never tunes them) and, for the sequence model, its minimum bout
    lengths. Videos without outputs are named in one error with the command that makes them.

    A video of several animals counts once per labelled animal (its stream, read from
    ``<run>/animal<i>``): the result is then pooled over every stream, with ``per_animal``
    (:func:`~deg_core.evaluation.evaluate.evaluate_animals`) and ``streams`` (their names).
    """
    stage = {"features": "features", "sequence": "sequence"}[model]
    info = load_run(run, project.models_dir, stage, behaviors=project.behaviors)
    run_dir = info.path
    keys = [
        k
        for k in split_keys(project)[split]
        if project.record(k).labels_path.exists()
        or (
            project.n_animals(k) > 1
            and any(stream_has_labels(project, s) for s in video_streams(project, k))
        )
    ]
    if not keys:
        raise ProjectError(f"no labelled video in the {split} split to evaluate on")
    decision = decision_of(info)
    if model != "sequence":  # a feature run's predictions are thresholded, not cleaned
        decision.min_lengths = np.ones_like(decision.min_lengths)
    probs, labels, preds, missing = [], [], [], []
    animals: list[int | None] = []
    names: list[str] = []
    for key in keys:
        streams = video_streams(project, key)
        if len(streams) > 1:
            streams = [s for s in streams if stream_has_labels(project, s)]
        try:
            groups = [
                read_group(
                    project.record(key).outputs_path, run_dir.name, ("P", "logits"), animal=s[1]
                )
                for s in streams
            ]
        except DegError:  # missing or unreadable group: not inferred yet
            missing.append(key)
            continue
        for s, g in zip(streams, groups, strict=True):
            probs.append(g["P"])
            preds.append(decision.decide(g["logits"]))
            labels.append(stream_labels(project, s))
            animals.append(s[1])
            names.append(stream_name(s))
    if missing:
        raise ProjectError(
            f"videos without outputs of {run_dir.name}: {', '.join(missing)}; make them with "
            f"`deg infer {stage} {project.root} --run {run_dir.name} --videos {' '.join(missing)}`"
        )
    thresholds = np.asarray(decision.thresholds, dtype=np.float32)
    min_lengths = decision.min_lengths if model == "sequence" else None
    if any(a is not None for a in animals):
        result = evaluate_animals(
            probs, labels, animals, thresholds, project.behaviors, min_lengths, pred=preds
        )
        result["streams"] = names
    else:  # one animal per video: exactly as before
        result = evaluate(
            probs, labels, thresholds, project.behaviors, min_lengths=min_lengths, pred=preds
        )
    result.update(run=run_dir.name, split=split, videos=keys, decision=decision.to_dict())
    return result
