"""What the guided notebooks and retrain reports show, and what they record.

Tables (:class:`Table`, HTML in a notebook, text elsewhere), pictures of runs and videos
(PNG, see :mod:`deg_core.report.charts`), and :func:`write_metrics`: the values a notebook
records in ``<project>/reports/<name>_metrics.json`` for tests, scripts and later runs.
Notebooks call these; they hold no logic themselves.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.errors import DegError
from deg_core.fileio import atomic_write_text, finite_or_none
from deg_core.labels.labels import read_labels
from deg_core.project.outputs import read_group
from deg_core.project.project import Project
from deg_core.project.runs import best_epoch, read_metrics
from deg_core.report import charts as plots
from deg_core.report.charts import Png
from deg_core.report.video_pictures import (  # noqa: F401 (re-exported: notebooks import them here)
    ethogram,
    example_frames,
    model_ethogram,
)

REPORTS = "reports"


# --------------------------------------------------------------------------- tables


class Table:
    """Rows of dicts shown as an HTML table in notebooks and as text elsewhere."""

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str] | None = None,
        caption: str = "",
        notes: Sequence[str] = (),
    ) -> None:
        """``notes``: lines shown under the table (warnings about what it shows)."""
        self.rows = [dict(r) for r in rows]
        cols: list[str] = list(columns or [])
        if not columns:
            for r in self.rows:
                cols += [c for c in r if c not in cols]
        self.columns = cols
        self.caption = caption
        self.notes = list(notes)

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def _cell(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return "–" if not math.isfinite(v) else f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
        if isinstance(v, (list, tuple)):
            return ", ".join(Table._cell(x) for x in v)
        return str(v)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(self._cell(r.get(c)))}</td>" for c in self.columns)
            + "</tr>"
            for r in self.rows
        )
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}"

    def __repr__(self) -> str:
        cells = [[self._cell(r.get(c)) for c in self.columns] for r in self.rows]
        widths = [
            max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(self.columns)
        ]
        line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True))  # noqa: E731
        out = [self.caption] if self.caption else []
        return "\n".join([*out, line(self.columns), *(line(row) for row in cells), *self.notes])


# --------------------------------------------------------------------------- recording


def reports_dir(project: Project) -> Path:
    """``<project>/reports/`` (created): notebook metrics, retrain reports and state."""
    path = project.root / REPORTS
    path.mkdir(exist_ok=True)
    return path


def json_safe(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays unwrapped, NaN and infinities -> None."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_metrics(
    project: Project, name: str, values: Mapping[str, Any], path: str | Path | None = None
) -> Path:
    """Record ``values`` as ``reports/<name>_metrics.json`` (or ``path``); returns the path."""
    out = Path(path) if path else reports_dir(project) / f"{name}_metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(json_safe(values), indent=2, allow_nan=False) + "\n")
    return out


# --------------------------------------------------------------------------- project tables


def video_table(project: Project) -> Table:
    """Per video: split, frames, fps, size, labelled fraction per behaviour, outputs."""
    from deg_core.project.status import project_status

    rows = []
    for v in project_status(project)["videos"]:
        frac = v.get("labeled_fraction") or {}
        outs = v.get("outputs")
        rows.append(
            {
                "video": v["key"],
                "split": v.get("split"),
                "frames": v.get("frames"),
                "fps": v.get("fps"),
                "size": f"{v.get('width')}x{v.get('height')}",
                "labelled": " ".join(f"{b} {f:.0%}" for b, f in frac.items()) or None,
                "model outputs": len(outs) if isinstance(outs, list) else outs,
                "predictions": "yes" if v.get("predictions") else "no",
            }
        )
    return Table(rows, caption=f"{project.name}: {len(rows)} videos")


def video_stats_table(project: Project) -> Table:
    """What ``add-videos`` measured: frames, fps, size, codec, per-channel mean and std."""
    rows = []
    for key in project.video_keys():
        rec = project.record(key).probe()
        stats = rec.stats or {}
        rows.append(
            {
                "video": key,
                "frames": rec.frames,
                "fps": rec.fps,
                "size": f"{rec.width}x{rec.height}",
                "codec": rec.codec,
                "mean RGB": [round(float(x), 3) for x in stats.get("mean", [])] or None,
                "std RGB": [round(float(x), 3) for x in stats.get("std", [])] or None,
            }
        )
    return Table(rows, caption="video statistics (pixel values in [0, 1])")


def behavior_table(project: Project) -> Table:
    """Per behaviour over all videos: labelled positive frames, bouts, labelled frames."""
    from deg_core.project.status import project_status

    totals = project_status(project)["behavior_totals"]
    rows = [{"behaviour": b, **t} for b, t in totals.items()]
    return Table(rows, caption="labels per behaviour")


def config_table(
    project: Project,
    stage: str | None = None,
    settings: Sequence[str] = (),
    preset: str | None = None,
) -> Table:
    """Every setting (of one stage's sections) with its value, whether it differs from the
    default, and its meaning: what ``settings=["section.key=value", ...]`` can change."""
    from deg_core.config import describe, stage_keys

    resolved = project.resolve_config(list(settings), preset=preset)
    keys = set(stage_keys(stage)) if stage else None
    rows = []
    for key, default, meaning in describe():
        if keys is not None and key not in keys:
            continue
        node: Any = resolved
        for part in key.split("."):
            node = getattr(node, part)
        rows.append(
            {
                "setting": key,
                "value": repr(node),
                "changed": "yes" if node != default else "",
                "meaning": meaning,
            }
        )
    return Table(rows, caption=f"settings{f' of the {stage} stage' if stage else ''}")


# --------------------------------------------------------------------------- runs


def best_record(run_dir: str | Path) -> dict[str, Any] | None:
    """The epoch record with the lowest finite validation loss (the kept best.pt), or None
    (:func:`deg_core.project.runs.best_epoch`)."""
    return best_epoch(read_metrics(Path(run_dir)))


def _num(v: Any) -> float:
    return float(v) if finite_or_none(v) is not None else float("nan")


def training_curves(run_dir: str | Path) -> list[Png]:
    """Loss per epoch (train, val, best marked) and, when recorded, validation F1 per epoch."""
    run_dir = Path(run_dir)
    history = read_metrics(run_dir)
    if not history:
        raise DegError("no epochs recorded yet", run_dir)
    epochs = np.array([int(r["epoch"]) + 1 for r in history], float)
    train = [_num(r.get("train_loss")) for r in history]
    val = [_num(r.get("val_loss")) for r in history]
    best = best_record(run_dir)
    marks = {} if best is None else {"best": (int(best["epoch"]) + 1, float(best["val_loss"]))}
    figs = [
        plots.line_chart(
            {"train": (epochs, train), "val": (epochs, val)},
            title=f"loss per epoch: {run_dir.name}",
            xlabel="epoch",
            ylabel="loss",
            marks=marks,
            integer_x=True,
        )
    ]
    names = [str(n) for n in (history[-1].get("f1") or {})]
    if names:
        series = {n: (epochs, [_num((r.get("f1") or {}).get(n)) for r in history]) for n in names}
        series["macro"] = (epochs, [_num(r.get("macro_f1")) for r in history])
        colours = {"macro": plots.INK}
        figs.append(
            plots.line_chart(
                series,
                title="validation F1 per epoch",
                xlabel="epoch",
                ylabel="F1",
                ylim=(0.0, 1.02),
                colours=colours,
                integer_x=True,
            )
        )
    return figs


def f1_bars(groups: Mapping[str, Mapping[str, float | None]], title: str = "F1") -> Png:
    """Per-behaviour F1, one bar series per group (e.g. {"val": {...}, "test": {...}})."""
    return plots.bar_chart(groups, title=title, ylabel="F1")


# --------------------------------------------------------------------------- outputs


def split_outputs(
    project: Project, run: str, split: str
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """P (T, K) and labels (T, K) of ``run`` for the labelled videos of ``split`` that have
    its outputs; returns (probs, labels, keys)."""
    from deg_core.project.project import split_keys

    probs, labels, keys = [], [], []
    for key in split_keys(project)[split]:
        rec = project.record(key)
        if not rec.labels_path.exists():
            continue
        try:
            g = read_group(rec.outputs_path, run, ("P",))
        except DegError:
            continue
        probs.append(g["P"])
        labels.append(project.labels(key).array)
        keys.append(key)
    return probs, labels, keys


def pr_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of ``scores > t`` for every distinct t, labelled frames only.

    scores, labels: (T,). Returns (recall, precision), recall ascending from 0.
    """
    keep = labels != -1
    s, y = scores[keep].astype(np.float64), labels[keep] == 1
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1] if len(s) else np.zeros(0, int)
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    n_pos = max(int(y.sum()), 1)
    recall = np.r_[0.0, tp / n_pos]
    precision = np.r_[1.0, tp / np.maximum(tp + fp, 1)]
    return recall, precision


def operating_point(scores: np.ndarray, labels: np.ndarray, t: float) -> tuple[float, float]:
    """(recall, precision) of ``scores > t`` on labelled frames (NaN when undefined)."""
    keep = labels != -1
    pred, y = scores[keep] > t, labels[keep] == 1
    tp = float((pred & y).sum())
    r = tp / y.sum() if y.sum() else float("nan")
    p = tp / pred.sum() if pred.sum() else float("nan")
    return r, p


def pr_figure(
    probs: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    thresholds: Sequence[float],
    behaviors: Sequence[str],
    title: str = "precision-recall (validation)",
) -> Png:
    """Precision-recall curves per behaviour with the model's threshold marked."""
    p, y = np.concatenate(probs), np.concatenate(labels)
    curves, chosen = {}, {}
    for k, name in enumerate(behaviors):
        if not (y[:, k] == 1).any():
            continue  # no labelled positives: no curve
        curves[name] = pr_curve(p[:, k], y[:, k])
        r, pr = operating_point(p[:, k], y[:, k], float(thresholds[k]))
        chosen[name] = (r, pr, float(thresholds[k]))
    return plots.pr_chart(curves, chosen, title=title)


def threshold_table(project: Project, run: str | Path, stage: str) -> Table:
    """Per behaviour: a run's decision (the threshold, or for an exclusive project the
    arg-max offset) and (sequence runs) the minimum bout length its predictions keep; the
    caption says what the decision was fitted on, the notes what its guard replaced."""
    from deg_core.evaluation.decisions import decision_of
    from deg_core.project.runs import load_run

    info = load_run(run, project.models_dir, stage)
    try:
        d = decision_of(info)
    except ValueError:  # a run without a fitted decision yet
        rows = [{"behaviour": b, "threshold": None} for b in project.behaviors]
        return Table(rows, caption=f"{info.name}: no decision fitted yet")
    rows = []
    for k, b in enumerate(project.behaviors):
        row: dict[str, Any] = {"behaviour": b}
        if d.exclusive:
            row["arg-max offset (logits)"] = float(d.offsets[k])
        else:
            row["threshold"] = float(d.thresholds[k])
        if stage == "sequence":
            row["min bout (frames)"] = int(d.min_lengths[k])
        rows.append(row)
    how = "arg-max over background + behaviours" if d.exclusive else "per-behaviour thresholds"
    scaled = ", scores standardised per video" if d.normalise else ""
    caption = f"{info.name}: {how}{scaled}, fitted on {d.source}"
    return Table(rows, caption=caption, notes=d.notes)


def evaluate_splits(
    project: Project,
    run: str = "latest",
    splits: Sequence[str] = ("val", "test"),
    model: str = "sequence",
    skip_missing: bool = False,
) -> dict[str, dict[str, Any]]:
    """``deg evaluate`` on every split that has labelled videos: {split: result}.

    ``skip_missing``: leave out (instead of failing on) splits whose labelled videos do not
    all have the run's outputs yet.
    """
    from deg_core.evaluation.scoring import evaluate_project
    from deg_core.project.outputs import has_group
    from deg_core.project.project import split_keys
    from deg_core.project.runs import resolve_run

    stage = "sequence" if model == "sequence" else "features"
    name = resolve_run(project.models_dir, stage, run).name
    keys = split_keys(project)
    out = {}
    for s in splits:
        recs = [project.record(k) for k in keys[s]]
        labelled = [r for r in recs if r.labels_path.exists()]
        if not labelled:
            continue
        if skip_missing and not all(has_group(r.outputs_path, name) for r in labelled):
            continue
        out[s] = evaluate_project(project, s, model, name)
    return out


def metrics_table(results: Mapping[str, Mapping[str, Any]]) -> Table:
    """Per split and behaviour: F1, precision, recall, AUROC, bout F1, the all-positive
    baseline F1 and the best F1 of any threshold on these frames (diagnosis only), with
    ``evaluate.overprediction_notes`` lines (prefixed by the split) under the table."""
    from deg_core.evaluation.evaluate import overprediction_notes

    rows = []
    notes = []
    for split, r in results.items():
        notes += [f"{split}: {n}" for n in overprediction_notes(dict(r))]
        for b in [*r["class_names"], "macro"]:
            get = (lambda m: r["macro"].get(m)) if b == "macro" else (lambda m: r[m][b])  # noqa: B023
            rows.append(
                {
                    "split": split,
                    "behaviour": b,
                    "F1": get("f1"),
                    "precision": get("precision"),
                    "recall": get("recall"),
                    "AUROC": get("auroc"),
                    "bout F1": get("bout_f1"),
                    "all-positive F1": get("baseline_f1"),
                    "best-threshold F1": get("oracle_f1"),
                }
            )
    return Table(rows, caption="evaluation (validation thresholds, bouts cleaned)", notes=notes)


def prediction_table(project: Project, keys: Sequence[str]) -> Table:
    """Per video and behaviour: share of frames predicted present and number of bouts."""
    from deg_core.labels.bouts import bouts_from_vector

    rows = []
    for key in keys:
        rec = project.record(key)
        if not rec.predictions_path.exists():
            rows.append({"video": key, "predictions": "none yet"})
            continue
        pred = read_labels(rec.predictions_path, project.behaviors, rec.n_frames()).array
        row: dict[str, Any] = {"video": key, "frames": len(pred)}
        for k, b in enumerate(project.behaviors):
            row[b] = f"{(pred[:, k] == 1).mean():.0%}, {len(bouts_from_vector(pred[:, k]))} bouts"
        rows.append(row)
    return Table(rows, caption="predicted: share of frames, bouts")
