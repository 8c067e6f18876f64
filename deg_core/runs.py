"""Trained model runs under ``models/`` and whether they still fit the project.

A run folder holds a ``config.yaml`` with the class names it was trained for (deg
and DeepEthogram both write ``project.class_names``). When the project's behaviour
list changes, runs trained for another list are stale: listed as such, and refused
with a clear message when a later stage tries to use them. Staleness is derived
from the two lists, never stored, so it cannot go out of date.
"""

from __future__ import annotations

import datetime as dt
import json
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


# ------------------------------------------------------------ creating and finding runs

STAGES = ("flow", "features", "sequence")


def new_run_dir(models_dir: Path, stage: str, arch: str, now: dt.datetime | None = None) -> Path:
    """Create ``models/<yymmdd_HHMMSS>_<stage>_<arch>/`` (a suffix keeps same-second runs apart)."""
    stamp = (now or dt.datetime.now()).strftime("%y%m%d_%H%M%S")
    base = models_dir / f"{stamp}_{stage}_{arch}"
    run, n = base, 1
    while run.exists():
        n += 1
        run = base.with_name(f"{base.name}_{n}")
    run.mkdir(parents=True)
    return run


def resolve_run(models_dir: Path, stage: str, name: str = "latest") -> Path:
    """``latest`` (newest run of the stage that has a best checkpoint) or an explicit run name."""
    if name != "latest":
        run = Path(name) if Path(name).is_absolute() else models_dir / name
        if not run.is_dir():
            raise ProjectError(f"no model run {name!r}", models_dir)
        return run
    candidates = sorted(
        p
        for p in (models_dir.iterdir() if models_dir.is_dir() else [])
        if p.is_dir() and f"_{stage}_" in p.name and (p / BEST).is_file()
    )
    if not candidates:
        raise ProjectError(
            f"no trained {stage} model yet: run `deg train {stage}` first", models_dir
        )
    return candidates[-1]


BEST = "best.pt"
LAST = "last.pt"
METRICS = "metrics.jsonl"


def read_metrics(run_dir: Path) -> list[dict]:
    """Per-epoch metric records of a run (metrics.jsonl), oldest first."""
    path = run_dir / METRICS
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def read_run_config(run_dir: Path) -> dict:
    """The run's config.yaml as a dict."""
    data = load_yaml(run_dir / RUN_CONFIG, what="run config")
    if not isinstance(data, dict):
        raise ProjectError("run config must be a mapping", run_dir / RUN_CONFIG)
    return data
