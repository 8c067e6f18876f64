"""Trained model runs under ``models/`` and whether they still fit the project.

A run folder holds a ``config.yaml`` with the class names it was trained for (deg
and DeepEthogram both write ``project.class_names``). When the project's behaviour
list changes, runs trained for another list are stale: listed as such, and refused
with a clear message when a later stage tries to use them. Staleness is derived
from the two lists, never stored, so it cannot go out of date.
"""

from __future__ import annotations

from pathlib import Path

from deg_core.errors import DegError, ProjectError
from deg_core.fileio import load_yaml
from deg_core.records import strip_background

RUN_CONFIG = "config.yaml"


def run_behaviors(run_dir: Path) -> list[str] | None:
    """The behaviours a run was trained for, from its config.yaml (None if unknown)."""
    cfg = run_dir / RUN_CONFIG
    if not cfg.is_file():
        return None
    try:
        data = load_yaml(cfg, what="run config") or {}
    except DegError:
        return None
    names = data.get("class_names")
    if names is None and isinstance(data.get("project"), dict):
        names = data["project"].get("class_names")
    return strip_background(names) if names is not None else None


def list_runs(models_dir: Path, behaviors: list[str]) -> list[dict]:
    """[{"name", "path", "behaviors", "stale"}] for every run folder (pretrained/ excluded)."""
    if not models_dir.is_dir():
        return []
    runs = []
    for d in sorted(p for p in models_dir.iterdir() if p.is_dir() and p.name != "pretrained"):
        trained = run_behaviors(d)
        runs.append(
            {
                "name": d.name,
                "path": d,
                "behaviors": trained,
                "stale": trained is not None and trained != behaviors,
            }
        )
    return runs


def check_run(run_dir: Path, behaviors: list[str]) -> Path:
    """Return ``run_dir``; ProjectError if missing or trained for other behaviours."""
    if not run_dir.is_dir():
        raise ProjectError("model run not found", run_dir)
    trained = run_behaviors(run_dir)
    if trained is not None and trained != behaviors:
        raise ProjectError(
            f"stale model: trained for behaviours {trained}, the project now has "
            f"{behaviors}; retrain this stage",
            run_dir,
        )
    return run_dir
