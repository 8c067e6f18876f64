"""ProjectView: a project at a glance (videos, labels, behaviours, model runs, warnings).

The tables are built in Python from :func:`deg_core.project.status.project_status` and each
run's ``metrics.jsonl``, and sent as one JSON-ready ``summary`` trait (small tables;
pixel or label arrays never travel this way). Clicking a video row sets ``selected``,
which a notebook can ``observe`` (e.g. to open a Labeler on that video).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import traitlets

from deg_core.errors import DegError
from deg_core.fileio import finite_or_none
from deg_core.project.project import Project
from deg_core.project.runs import STAGES, best_epoch, read_metrics, read_run_config
from deg_core.project.status import project_status
from deg_widgets.base import DegWidget, reported

_RUN_NAME = re.compile(r"^\d{6}_\d{6}_(?P<stage>[a-z]+)_(?P<arch>.+?)(?:_\d+)?$")


def run_stage_arch(run_dir: Path) -> tuple[str | None, str | None]:
    """(stage, arch) from the run's config.yaml, else parsed from its name, else None."""
    stage = arch = None
    try:
        cfg = read_run_config(run_dir)
        stage, arch = cfg.get("stage"), cfg.get("arch")
    except Exception:  # DEG runs or broken configs: fall back to the folder name
        pass
    m = _RUN_NAME.match(run_dir.name)
    if m:
        stage = stage or m["stage"]
        arch = arch or m["arch"]
    return (str(stage) if stage else None, str(arch) if arch else None)


def run_summary(run_dir: Path, stale: bool, behaviors: list[str] | None) -> dict[str, Any]:
    """One model-run row: stage, arch, epochs and the metrics of its best (kept) epoch:
    the lowest finite validation loss (:func:`deg_core.project.runs.best_epoch`).
    """
    stage, arch = run_stage_arch(run_dir)
    row: dict[str, Any] = {
        "name": run_dir.name,
        "stage": stage,
        "arch": arch,
        "stale": bool(stale),
        "behaviors": behaviors,
        "epochs": 0,
        "best_epoch": None,
        "best_val_loss": None,
        "macro_f1": None,
        "f1": {},
        "error": None,
    }
    try:
        records = read_metrics(run_dir)
    except (OSError, ValueError, DegError) as e:  # a damaged metrics.jsonl
        row["error"] = f"metrics.jsonl unreadable: {e}"
        return row
    row["epochs"] = len(records)
    best = best_epoch(records)
    if best is None:
        return row
    row["best_epoch"] = best.get("epoch")
    row["best_val_loss"] = finite_or_none(best.get("val_loss"))
    row["macro_f1"] = finite_or_none(best.get("macro_f1"))
    f1 = best.get("f1")
    if isinstance(f1, dict):
        row["f1"] = {str(k): finite_or_none(v) for k, v in f1.items()}
    return row


def _output_runs(outputs: list[str] | str) -> dict[str, Any]:
    """Split an outputs file's groups into feature / sequence / other runs."""
    if isinstance(outputs, str):  # unreadable file: status says why
        return {"features": [], "sequence": [], "other_outputs": [], "outputs_error": outputs}
    by: dict[str, list[str]] = {"features": [], "sequence": [], "other_outputs": []}
    for name in outputs:
        m = _RUN_NAME.match(name)
        stage = m["stage"] if m else None
        by[stage if stage in ("features", "sequence") else "other_outputs"].append(name)
    return {**by, "outputs_error": None}


def build_summary(project: Project) -> dict[str, Any]:
    """The JSON-ready tables ProjectView shows.

    Returns:
        {"project", "root", "behaviors", "splits": {split: n},
        "videos": [{"key", "frames", "fps", "width", "height", "split", "labels_file",
        "labeled" (0..1, mean over behaviours), "labeled_fraction": {behaviour: 0..1},
        "features": [run], "sequence": [run], "other_outputs": [run], "outputs_error",
        "predictions": bool, "error"}],
        "behavior_totals": [{"name", "positive_frames", "bouts", "labeled_frames"}],
        "runs": [run_summary rows], "warnings": [str], "updated": "HH:MM:SS"}
    """
    status = project_status(project)
    videos = []
    for v in status["videos"]:
        frac = {b: float(x) for b, x in v.get("labeled_fraction", {}).items()}
        row = {
            "key": v["key"],
            "frames": v.get("frames"),
            "fps": finite_or_none(v.get("fps")),
            "width": v.get("width"),
            "height": v.get("height"),
            "split": v.get("split"),
            "labels_file": bool(v.get("labels_file", False)),
            "labeled": sum(frac.values()) / len(frac) if frac else 0.0,
            "labeled_fraction": frac,
            "predictions": bool(v.get("predictions", False)),
            "error": v.get("error"),
            **_output_runs(v.get("outputs", [])),
        }
        videos.append(row)
    totals = [{"name": b, **t} for b, t in status["behavior_totals"].items()]
    runs = [
        run_summary(project.models_dir / r["name"], r["stale"], r["behaviors"])
        for r in status["runs"]
    ]
    runs.sort(key=lambda r: (STAGES.index(r["stage"]) if r["stage"] in STAGES else 9, r["name"]))
    return {
        "project": status["project"],
        "root": status["root"],
        "behaviors": status["behaviors"],
        "splits": status["splits"],
        "videos": videos,
        "behavior_totals": totals,
        "runs": runs,
        "warnings": status["warnings"],
        "updated": dt.datetime.now().strftime("%H:%M:%S"),
    }


class ProjectView(DegWidget):
    """A project at a glance; ``refresh()`` (or the refresh button) re-reads it from disk.

    Args:
        project: a :class:`~deg_core.project.project.Project` or the path of a project folder.

    Traits:
        summary: the tables of :func:`build_summary` (JSON, synced to the browser).
        selected: key of the video row last clicked ("" = none); observe it to react.
    """

    _module = "project_view"
    summary = traitlets.Dict().tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)

    def __init__(self, project: Project | str | Path, **kwargs: Any) -> None:
        root = project.root if isinstance(project, Project) else Path(project)
        self._project = project if isinstance(project, Project) else Project.open(root)
        super().__init__(**kwargs)
        self.summary = build_summary(self._project)
        self.on_msg(self._on_msg)

    @property
    def project(self) -> Project:
        return self._project

    @traitlets.validate("selected")
    def _valid_selected(self, proposal: dict[str, Any]) -> str:
        key = proposal["value"]
        keys = [v["key"] for v in self.summary.get("videos", [])]
        if key and keys and key not in keys:
            raise traitlets.TraitError(f"selected: no video {key!r} in this project")
        return str(key)

    def refresh(self) -> None:
        """Re-open the project (behaviours may have changed on disk) and rebuild the tables."""
        self._project = Project.open(self._project.root)
        self.summary = build_summary(self._project)
        if self.selected and self.selected not in self.video_keys():
            self.selected = ""

    def video_keys(self) -> list[str]:
        return [v["key"] for v in self.summary["videos"]]

    @reported
    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: list[Any]) -> None:
        if content.get("type") == "refresh":
            self.refresh()
