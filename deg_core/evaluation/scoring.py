"""Score a trained model on a split of the project: ``deg evaluate``."""

from __future__ import annotations

from typing import Any

import numpy as np

from deg_core.errors import DegError, ProjectError
from deg_core.evaluation.decisions import decision_of
from deg_core.evaluation.evaluate import evaluate
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
    """
    stage = {"features": "features", "sequence": "sequence"}[model]
    info = load_run(run, project.models_dir, stage, behaviors=project.behaviors)
    run_dir = info.path
    keys = [k for k in split_keys(project)[split] if project.record(k).labels_path.exists()]
    if not keys:
        raise ProjectError(f"no labelled video in the {split} split to evaluate on")
    decision = decision_of(info)
    if model != "sequence":  # a feature run's predictions are thresholded, not cleaned
        decision.min_lengths = np.ones_like(decision.min_lengths)
    probs, labels, preds, missing = [], [], [], []
    for key in keys:
        try:
            g = read_group(project.record(key).outputs_path, run_dir.name, ("P", "logits"))
        except DegError:  # missing or unreadable group: not inferred yet
            missing.append(key)
            continue
        probs.append(g["P"])
        preds.append(decision.decide(g["logits"]))
        labels.append(project.labels(key).array)
    if missing:
        raise ProjectError(
            f"videos without outputs of {run_dir.name}: {', '.join(missing)}; make them with "
            f"`deg infer {stage} {project.root} --run {run_dir.name} --videos {' '.join(missing)}`"
        )
    thresholds = np.asarray(decision.thresholds, dtype=np.float32)
    min_lengths = decision.min_lengths if model == "sequence" else None
    result = evaluate(
        probs, labels, thresholds, project.behaviors, min_lengths=min_lengths, pred=preds
    )
    result.update(run=run_dir.name, split=split, videos=keys, decision=decision.to_dict())
    return result
