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

from deg_core.config import DegConfig, build, check_resume, resolve, to_dict
from deg_core.errors import ConfigError, DegError, ProjectError
from deg_core.fileio import load_yaml
from deg_core.project.records import strip_background

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
    while True:
        try:  # mkdir itself decides: two processes in the same second get different folders
            run.mkdir(parents=True, exist_ok=False)
            return run
        except FileExistsError:
            n += 1
            run = base.with_name(f"{base.name}_{n}")


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
    return read_jsonl(run_dir / METRICS)


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file ([] if absent).

    A last line that does not decode is skipped: a process killed while appending it
    leaves half a record (its epoch is not in ``last.pt`` either). A bad line before
    the last is damage, not an interruption: DegError naming the file and line.
    """
    if not path.is_file():
        return []
    lines = [(i, line) for i, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    out = []
    for i, line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == lines[-1][0]:
                break
            raise DegError(f"line {i} is not a JSON record", path) from None
    return out


def read_run_config(run_dir: Path) -> dict:
    """The run's config.yaml as a dict."""
    data = load_yaml(run_dir / RUN_CONFIG, what="run config")
    if not isinstance(data, dict):
        raise ProjectError("run config must be a mapping", run_dir / RUN_CONFIG)
    return data


def resumable_run(models_dir: Path, name: str, stage: str) -> tuple[Path, dict]:
    """The folder and config.yaml record of run ``name`` to resume as a ``stage`` run."""
    run = models_dir / name
    if not (run / RUN_CONFIG).is_file():
        raise ProjectError(f"no run {name!r} to resume", models_dir)
    record = read_run_config(run)
    if record.get("stage", stage) != stage:
        raise ProjectError(f"run {name!r} is a {record['stage']} run, not {stage}", models_dir)
    return run, record


def run_settings(run_dir: Path) -> DegConfig:
    """The settings a run was trained with (the ``config`` section of its config.yaml)."""
    path = run_dir / RUN_CONFIG
    data = read_run_config(run_dir).get("config")
    if not isinstance(data, dict):
        raise ProjectError("no config section: the run's settings are unknown", path)
    try:  # keys an older deg wrote and this one dropped are not settings any more
        return build(DegConfig, data, unknown=[])
    except ConfigError as e:
        raise ConfigError(e.problem, path) from None


def resume_config(
    run_dir: Path,
    cfg: DegConfig | None = None,
    overrides: list[str] | None = None,
    preset: str | None = None,
) -> DegConfig:
    """The settings to resume ``run_dir`` with: its own, except where ``cfg`` (a whole
    config) or ``preset`` and ``overrides`` (``section.key=value``, applied over the
    run's settings) change a key of :data:`deg_core.config.RESUMABLE`, such as the
    number of epochs.

    Raises:
        ConfigError: one line naming a key they would change that is not resumable,
            with the run's value and the requested one.
    """
    saved = run_settings(run_dir)
    if cfg is None:
        cfg = resolve(to_dict(saved), overrides, preset)
    stage = read_run_config(run_dir).get("stage")
    check_resume(saved, cfg, run_dir.name, stage if isinstance(stage, str) else None)
    return cfg
