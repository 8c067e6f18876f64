"""Pipeline steps shared by the guided notebooks and ``deg retrain`` (thin compositions of
the core calls, so the notebooks hold parameters and narrative only)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.errors import DegError
from deg_core.project.project import Project
from deg_core.project.runs import load_run, resolve_run

# the setting each trained stage reads its number of epochs from
EPOCH_SETTINGS = {
    "flow": "flow_generator.num_epochs",
    "features": "feature_extractor.num_epochs",
    "sequence": "sequence.num_epochs",
}


def epoch_settings(epochs: int | None, stages: Sequence[str] = tuple(EPOCH_SETTINGS)) -> list[str]:
    """``["<section>.num_epochs=N", ...]`` for the given stages; [] when ``epochs`` is None."""
    if epochs is None:
        return []
    if int(epochs) < 1:
        raise DegError(f"epochs must be >= 1, got {epochs}")
    return [f"{EPOCH_SETTINGS[s]}={int(epochs)}" for s in stages if s in EPOCH_SETTINGS]


def latest_run(project: Project, stage: str) -> str | None:
    """Name of the newest finished run of a stage, or None when there is none."""
    try:
        return resolve_run(project.models_dir, stage, "latest").name
    except DegError:
        return None


def run_thresholds(project: Project, run: str | Path, stage: str) -> np.ndarray:
    """(K,) thresholds a feature or sequence run fitted on validation (its best epoch)."""
    thresholds = load_run(run, project.models_dir, stage).thresholds
    if thresholds is None:
        return np.full(len(project.behaviors), 0.5, np.float32)
    return thresholds.astype(np.float32)


def predict(
    project: Project,
    videos: Sequence[str] | None = None,
    run: str = "latest",
    *,
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, str]:
    """Predict every frame of ``videos`` (default: all) with a sequence run, computing first
    the features of the feature run it was trained on; {key: "done" | "skipped"}."""
    from deg_core.infer.features import infer_features
    from deg_core.infer.sequence import feature_run_of, infer_sequence

    keys = [project.resolve_key(v) for v in videos] if videos else None
    feature_run = feature_run_of(project, run)
    kw: dict[str, Any] = {"device": device, "overwrite": overwrite}
    infer_features(project, feature_run, keys, progress=progress, **kw)
    return infer_sequence(project, run, keys, **kw)
