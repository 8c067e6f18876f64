"""``deg retrain``: execute ``notebooks/retrain.ipynb`` headless with papermill.

The executed notebook, with its tables and plots, is saved as
``<project>/reports/<yymmdd_HHMMSS>_retrain.ipynb`` whether or not a step fails (papermill
saves after every cell), next to the values it recorded (``..._retrain_metrics.json``).
Every code cell of the notebook carries a ``step:<name>`` tag, so a failure is reported
as the step it happened in.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from deg_core.errors import DegError
from deg_core.project.project import Project
from deg_core.report.notebook import reports_dir

# a checkout's notebooks/ first (what users edit), else the copy a wheel install carries
NOTEBOOK_CANDIDATES = (
    Path(__file__).resolve().parents[2] / "notebooks" / "retrain.ipynb",
    Path(__file__).resolve().parents[1] / "notebooks" / "retrain.ipynb",  # deg_core/notebooks
)


def default_notebook() -> Path:
    """The retrain notebook `deg retrain` runs when no --notebook is given."""
    return next((p for p in NOTEBOOK_CANDIDATES if p.is_file()), NOTEBOOK_CANDIDATES[0])


STEP_TAG = "step:"
SET_BY_RUNNER = ("project_path", "metrics_path")


class RetrainFailed(DegError):
    """A step of the retrain notebook raised; ``step`` names it, ``report`` is the notebook."""

    def __init__(self, step: str, error: str, report: Path):
        self.step, self.report = step, report
        super().__init__(f"retrain step {step!r} failed: {error} (executed notebook: {report})")


def parse_parameters(pairs: Sequence[Sequence[str]]) -> dict[str, Any]:
    """``[(NAME, VALUE), ...]`` -> {NAME: value}, each value read as YAML (2, true, [a, b])."""
    out: dict[str, Any] = {}
    for name, text in pairs:
        try:
            out[name] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise DegError(f"parameter {name}: {text!r} is not a YAML value") from None
    return out


def report_path(project: Project, now: dt.datetime | None = None) -> Path:
    """A new ``reports/<yymmdd_HHMMSS>_retrain.ipynb`` (suffixed when that second is taken)."""
    stamp = (now or dt.datetime.now()).strftime("%y%m%d_%H%M%S")
    folder = reports_dir(project)
    path, n = folder / f"{stamp}_retrain.ipynb", 1
    while path.exists():
        n += 1
        path = folder / f"{stamp}_retrain_{n}.ipynb"  # sorts after the first
    return path


def failed_step(notebook: dict[str, Any]) -> str:
    """The ``step:`` tag of the cell that failed (or was running when the kernel died)."""
    cells = notebook.get("cells", [])

    def failed(cell: dict[str, Any]) -> bool:
        meta = cell.get("metadata", {}).get("papermill", {})
        errors = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
        return bool(meta.get("exception")) or errors

    for pick in (
        failed,
        lambda c: c.get("metadata", {}).get("papermill", {}).get("status") == "running",
    ):
        for cell in cells:
            if cell.get("cell_type") == "code" and pick(cell):
                for tag in cell.get("metadata", {}).get("tags", []):
                    if tag.startswith(STEP_TAG):
                        return tag[len(STEP_TAG) :]
                return "untagged cell"
    return "unknown"


def run_retrain(
    project_path: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    notebook: str | Path | None = None,
    kernel_name: str = "python3",
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Execute the retrain notebook on a project; returns {"report", "metrics_path", "metrics"}.

    Raises RetrainFailed (a DegError) naming the failing step; the report is still written.
    """
    import papermill  # type: ignore[import-untyped]
    from papermill.exceptions import PapermillExecutionError  # type: ignore[import-untyped]

    project = Project.open(project_path)
    nb_path = Path(notebook) if notebook is not None else default_notebook()
    if not nb_path.is_file():
        raise DegError("retrain notebook not found (pass --notebook PATH)", nb_path)
    params = dict(parameters or {})
    logging.getLogger("papermill").setLevel(logging.WARNING)  # no per-cell chatter
    known = papermill.inspect_notebook(str(nb_path))
    unknown = sorted(set(params) - set(known) | set(params) & set(SET_BY_RUNNER))
    if unknown:
        settable = ", ".join(k for k in known if k not in SET_BY_RUNNER)
        raise DegError(f"unknown or reserved parameter(s) {unknown}; the notebook takes {settable}")
    report = report_path(project, now)
    metrics = report.with_name(report.stem + "_metrics.json")
    params.update(project_path=str(project.root), metrics_path=str(metrics))
    try:
        papermill.execute_notebook(
            str(nb_path),
            str(report),
            parameters=params,
            kernel_name=kernel_name,
            progress_bar=False,
            cwd=str(project.root),
        )
    except PapermillExecutionError as e:
        step = failed_step(json.loads(report.read_text()))
        evalue = " ".join(str(e.evalue).split())
        raise RetrainFailed(step, f"{e.ename}: {evalue}", report) from None
    except (RuntimeError, OSError, KeyError) as e:  # kernel died, missing or failed to start
        step = failed_step(json.loads(report.read_text())) if report.exists() else "start"
        raise RetrainFailed(step, f"{type(e).__name__}: {e}", report) from None
    values = json.loads(metrics.read_text()) if metrics.exists() else {}
    return {"report": report, "metrics_path": metrics, "metrics": values}
