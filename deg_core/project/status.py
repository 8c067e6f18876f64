"""What a project holds: per video and per behaviour (``deg status``, ProjectView), and
what its labels suggest about its settings (:func:`exclusive_suggestion`).

Only label files and records are read here, never torch: ``deg status`` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deg_core.errors import DegError
from deg_core.labels.bouts import count_bouts
from deg_core.labels.labels import Labels, read_labels
from deg_core.project.project import Project
from deg_core.project.records import ANIMALS_DIR, VideoRecord, animal_name


def output_groups(path: Path) -> list[str] | str:
    """Run names stored in an outputs HDF5 file, or a one-line problem if it cannot be read."""
    if not path.exists():
        return []
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return sorted(f.keys())
    except OSError as e:
        return f"unreadable ({' '.join(str(e).split())})"


def _read_counted(
    path: Path, behaviors: list[str], frames: int | None, totals: dict[str, dict[str, int]]
) -> Labels | str:
    """The labels of ``path``, their positive/labelled frames and bouts added to ``totals``;
    the one-line problem instead if the file cannot be read."""
    try:
        labels = read_labels(path, behaviors, frames)
    except DegError as e:
        return str(e)
    bouts = count_bouts(labels.array)
    for i, b in enumerate(behaviors):
        col = labels.array[:, i]
        totals[b]["positive_frames"] += int(np.sum(col == 1))
        totals[b]["labeled_frames"] += int(np.sum(col != -1))
        totals[b]["bouts"] += int(bouts[i])
    return labels


def _animal_labels(
    entry: dict[str, Any],
    rec: VideoRecord,
    n_animals: int,
    behaviors: list[str],
    totals: dict[str, dict[str, int]],
) -> list[str]:
    """Fill ``entry`` for a video of several animals: ``animals``, a row per animal
    ({"animal", "labels_file", "labeled_frames", "labeled_fraction"}), and over them all
    ``labels_file`` (any) and ``labeled_fraction`` (of animal-frames). Returns warnings."""
    warnings = []
    if rec.labels_path.exists():
        warnings.append(
            f"video {rec.key!r} has {n_animals} animals: its label file {rec.labels_path.name} "
            f"is not used (each animal's labels are in DATA/{rec.key}/{ANIMALS_DIR}/"
            "animal<i>/): move it into an animal's folder, or remove it"
        )
    extra = [i for i in rec.animal_folders() if i >= n_animals]
    if extra:
        warnings.append(
            f"video {rec.key!r} has {n_animals} animals (0..{n_animals - 1}), not the "
            f"folder(s) {', '.join(animal_name(i) for i in extra)} of its labels"
        )
    rows, fractions = [], []
    for i in range(n_animals):
        path = rec.animal_labels_path(i)
        row: dict[str, Any] = {"animal": i, "labels_file": path.exists(), "labeled_frames": 0}
        fraction = np.zeros(len(behaviors))
        if path.exists():
            labels = _read_counted(path, behaviors, rec.frames, totals)
            if isinstance(labels, str):
                row["error"] = labels
                warnings.append(labels)
            else:
                fraction = labels.labeled_fraction()
                row["labeled_frames"] = int((labels.array != -1).any(axis=1).sum())
        row["labeled_fraction"] = dict(zip(behaviors, fraction.tolist(), strict=True))
        rows.append(row)
        fractions.append(fraction)
    entry["animals"] = rows
    entry["labels_file"] = any(r["labels_file"] for r in rows)
    mean = np.mean(fractions, axis=0) if behaviors else np.zeros(0)
    entry["labeled_fraction"] = dict(zip(behaviors, mean.tolist(), strict=True))
    return warnings


def project_status(project: Project) -> dict[str, Any]:
    """A JSON-ready summary.

    Returns:
        {"project", "root", "behaviors", "videos": [per-video dicts], "behavior_totals":
        {name: {"positive_frames", "bouts", "labeled_frames"}}, "splits", "runs", "warnings"}
    """
    behaviors = project.behaviors
    table = project.splits()
    totals = {b: {"positive_frames": 0, "bouts": 0, "labeled_frames": 0} for b in behaviors}
    videos, warnings = [], list(table.warnings())
    for key in project.video_keys():
        entry: dict[str, Any] = {"key": key, "split": table.assignment.get(key)}
        try:
            rec = project.record(key).probe()
        except DegError as e:
            entry["error"] = str(e)
            warnings.append(str(e))
            videos.append(entry)
            continue
        entry.update(frames=rec.frames, fps=rec.fps, width=rec.width, height=rec.height)
        if entry["split"] is None:
            warnings.append(f"video {key!r} has no split yet (the next add-videos assigns one)")
        n_animals = project.n_animals(key)
        if n_animals > 1:
            warnings += _animal_labels(entry, rec, n_animals, behaviors, totals)
        else:
            labeled = dict.fromkeys(behaviors, 0.0)
            if rec.labels_path.exists():
                labels = _read_counted(rec.labels_path, behaviors, rec.frames, totals)
                if isinstance(labels, str):
                    entry["error"] = labels
                    warnings.append(labels)
                else:
                    labeled = dict(zip(behaviors, labels.labeled_fraction().tolist(), strict=True))
            entry["labels_file"] = rec.labels_path.exists()
            entry["labeled_fraction"] = labeled
        entry["outputs"] = output_groups(rec.outputs_path)
        entry["predictions"] = rec.predictions_path.exists()
        videos.append(entry)
    runs = [{k: v for k, v in r.items() if k != "path"} for r in project.model_runs()]
    for r in runs:
        if r["stale"]:
            warnings.append(f"model run {r['name']!r} is stale: trained for {r['behaviors']}")
    if project.ignored_keys:
        warnings.append("DeepEthogram settings deg ignores: " + ", ".join(project.ignored_keys))
    return {
        "project": project.name,
        "root": str(project.root),
        "behaviors": behaviors,
        "videos": videos,
        "behavior_totals": totals,
        "splits": table.counts(),
        "runs": runs,
        "warnings": warnings,
    }


def _single_behavior_frames(project: Project) -> int | None:
    """Labelled frames (any 0/1 entry) over the videos' label files (each animal's), or
    None as soon as a frame holds two behaviours or a file cannot be read (it might hold
    anything)."""
    labelled = 0
    for key in project.video_keys():
        try:
            rec, n = project.record(key), project.n_animals(key)
            paths = [rec.labels_path] if n == 1 else [rec.animal_labels_path(i) for i in range(n)]
            arrays = [read_labels(p, project.behaviors).array for p in paths if p.exists()]
        except DegError:  # status lists the problem; no suggestion on unknown labels
            return None
        for array in arrays:
            if ((array == 1).sum(axis=1) > 1).any():
                return None
            labelled += int((array != -1).any(axis=1).sum())
    return labelled


def exclusive_suggestion(project: Project) -> str | None:
    """One line suggesting ``project.exclusive`` when the labels already fit it, else None.

    Suggested when the project is not exclusive, has a labelled frame, and no labelled
    frame of any video's label file holds more than one behaviour (-1 entries ignored).
    Reads the label files only (``deg status`` and training both call it).
    """
    if project.exclusive or not _single_behavior_frames(project):
        return None
    # no command sets a project setting: the line says where the setting lives
    return (
        "every labelled frame holds at most one behaviour: `exclusive: true` under "
        f"`project:` in {project.config_path} (or `deg init --exclusive`) trains one "
        "softmax over background + behaviours and decides by arg-max"
    )


def format_status(status: dict[str, Any]) -> str:
    """Plain-text tables for the terminal."""
    lines = [f"project {status['project']}  ({status['root']})"]
    behaviors = status["behaviors"]
    lines.append("behaviours: " + ", ".join(behaviors))
    s = status["splits"]
    lines.append(
        f"videos: {len(status['videos'])}  (train {s['train']}, val {s['val']}, test {s['test']})"
    )
    if status["videos"]:
        width = max(8, *(len(v["key"]) for v in status["videos"]))
        head = f"  {'video':<{width}} {'frames':>7} {'fps':>6} {'split':<5}  labeled"
        lines += ["", head]
        for v in status["videos"]:
            if "frames" not in v:
                lines.append(f"  {v['key']:<{width}} {v.get('error', '')}")
                continue
            frac = v["labeled_fraction"]
            lab = " ".join(f"{b}:{frac[b]:.0%}" for b in behaviors) if v["labels_file"] else "-"
            outs = v["outputs"]
            extra = []
            if outs:
                extra.append("outputs: " + (", ".join(outs) if isinstance(outs, list) else outs))
            if v["predictions"]:
                extra.append("predictions")
            fps = f"{v['fps']:.2f}" if v["fps"] else "?"
            split = v["split"] or "-"
            lines.append(
                f"  {v['key']:<{width}} {v['frames']:>7} {fps:>6} {split:<5}  {lab}"
                + (f"  [{'; '.join(extra)}]" if extra else "")
            )
            for a in v.get("animals", []):
                frac = a["labeled_fraction"]
                lab = " ".join(f"{b}:{frac[b]:.0%}" for b in behaviors)
                what = a.get("error") or (
                    f"{a['labeled_frames']} frames labeled  {lab}" if a["labels_file"] else "-"
                )
                lines.append(f"    {animal_name(a['animal'])}: {what}")
    lines += ["", f"  {'behaviour':<20} {'positive':>9} {'bouts':>6} {'labeled':>9}"]
    for b, t in status["behavior_totals"].items():
        lines.append(
            f"  {b:<20} {t['positive_frames']:>9} {t['bouts']:>6} {t['labeled_frames']:>9}"
        )
    if status["runs"]:
        lines += ["", "model runs:"]
        for r in status["runs"]:
            lines.append(f"  {r['name']}" + ("  (stale)" if r["stale"] else ""))
    if status["warnings"]:
        lines += ["", "warnings:"] + [f"  - {w}" for w in status["warnings"]]
    return "\n".join(lines)
