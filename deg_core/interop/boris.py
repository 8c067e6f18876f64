"""BORIS (Behavioral Observation Research Interactive Software) event tables, in and out.

Read (CSV or TSV, told apart by the header line):

* the *tabular events* export: one row per event with columns ``Behavior``, ``Time``
  (seconds) and ``Behavior type`` (BORIS 8; ``Status`` in BORIS 7, whose export starts
  with a few lines of observation details that are skipped), each ``START``, ``STOP``
  or ``POINT``; optional ``Subject``, ``Observation id``, ``FPS``, ``Time offset (s)``,
  ``Modifier #N`` / ``Modifiers``. A state behaviour is a START..STOP pair, a point
  behaviour one frame.
* the *behaviors binary table*: a ``time`` column (seconds, a fixed step) and one column
  per behaviour, 1/0 for states and counts for points, one file per subject. Each row
  holds until the next one; frames past the table are left unlabelled (-1).

Seconds become frames at the *video's* fps (its record), rounding to the nearest frame:
an event at ``t`` s is frame ``floor(t * fps + 0.5)``; a state covers frames
``[frame(START), frame(STOP))`` and at least one. Modifiers are ignored (a binary
table's ``behaviour (modifier)`` columns are folded into ``behaviour``), with a note.
A file with events of several subjects needs ``subject``; names that are not the
project's behaviours are refused all in one line unless ``mapping`` renames them
(``{"Grooming": "groom"}``) or drops them (``{"walk": ""}``).

Write: the tabular events layout of BORIS 8 (CSV), one START and one STOP row per bout,
times in seconds to the millisecond, no focal subject.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from deg_core.errors import DegError, LabelError
from deg_core.fileio import atomic_write_text
from deg_core.interop.boris_tables import (
    BorisLabels,
    events_header,
    is_binary_table,
    read_binary,
    read_events,
    read_table,
)
from deg_core.labels.bouts import bout_table
from deg_core.project.project import Project

# the layout BORIS 8 writes for a one-video observation without independent variables
EXPORT_COLUMNS = [
    "Observation id",
    "Observation date",
    "Description",
    "Observation duration",
    "Observation type",
    "Source",
    "Time offset (s)",
    "Media duration (s)",
    "FPS",
    "Subject",
    "Behavior",
    "Behavioral category",
    "Behavior type",
    "Time",
    "Media file name",
    "Image index",
    "Image file path",
    "Comment",
]


def sniff(path: str | Path) -> str | None:
    """``"events"`` (tabular events), ``"binary"`` (behaviors binary table) or None."""
    try:
        rows = read_table(Path(path), head=True)  # a label file may have a million rows
    except LabelError:
        return None
    if events_header(rows) is not None:
        return "events"
    return "binary" if is_binary_table(rows) else None


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``["Grooming=groom", "walk="]`` -> ``{"Grooming": "groom", "walk": ""}`` ("" drops)."""
    mapping: dict[str, str] = {}
    for item in items:
        name, sep, target = item.partition("=")
        if not sep or not name.strip():
            raise DegError(f"--map {item!r}: expected BORIS_NAME=DEG_NAME (or BORIS_NAME= to drop)")
        mapping[name.strip()] = target.strip()
    return mapping


def read_boris(
    path: str | Path,
    behaviors: list[str],
    n_frames: int,
    fps: float,
    *,
    subject: str | None = None,
    mapping: dict[str, str] | None = None,
    unlabeled_outside_bouts: bool = False,
) -> BorisLabels:
    """Labels (``n_frames``, K) over ``behaviors`` from a BORIS tabular events export or
    behaviors binary table at ``fps``. Never writes; one-line LabelError naming the file."""
    path = Path(path)
    if not fps or not math.isfinite(fps) or fps <= 0:
        raise LabelError(f"the video's fps ({fps}) is unknown: cannot convert seconds", path)
    rows = read_table(path)
    if events_header(rows) is not None:
        return read_events(
            path, rows, behaviors, n_frames, fps, subject, mapping or {}, unlabeled_outside_bouts
        )
    if is_binary_table(rows):
        return read_binary(path, rows, behaviors, n_frames, fps, mapping or {})
    raise LabelError(
        "is not a BORIS export: no header with Behavior, Time and Behavior type (tabular "
        "events) nor a 'time' column first (behaviors binary table)",
        path,
    )


def import_boris(
    project: Project, video: str, path: str | Path, labeler: str | None = None, **kwargs
) -> BorisLabels:
    """Read a BORIS file for ``video`` (at its fps and frame count) and store the labels
    as the training label file (:meth:`Project.save_labels`) or as ``labeler``'s set,
    under the project lock; nothing is written on error. ``kwargs``: :func:`read_boris`'s."""
    rec = project.record(project.resolve_key(video))
    if labeler is not None:
        project.annotator_labels_path(rec.key, labeler)  # a bad name fails before reading
    n_frames = rec.n_frames()
    result = read_boris(path, project.behaviors, n_frames, float(rec.fps or 0), **kwargs)
    if labeler is None:
        project.save_labels(rec.key, result.labels)
    else:
        project.save_annotator_labels(rec.key, labeler, result.labels)
    return result


# --------------------------------------------------------------------------- writing


def boris_events_text(
    array: np.ndarray,
    behaviors: Sequence[str],
    fps: float,
    *,
    observation: str,
    media: str,
    description: str = "",
) -> str:
    """BORIS 8 tabular events (CSV) of ``array`` (T, K): a START and a STOP row per bout
    (runs of 1; 0 and -1 are both "not present"), sorted by time, STOP first on ties."""
    n_frames = int(np.asarray(array).shape[0])
    duration = f"{n_frames / fps:.3f}"
    events = []
    for bout in bout_table(np.asarray(array), list(behaviors)):
        k = list(behaviors).index(bout["behavior"])
        events.append((bout["start"], 1, k, "START"))
        events.append((bout["stop"], 0, k, "STOP"))
    events.sort()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for frame, _, k, status in events:
        writer.writerow(
            [observation, "", description, duration, "Media file(s)", f"player #1:{media}",
             "0.000", duration, f"{fps:.3f}", "", behaviors[k], "", status,
             f"{frame / fps:.3f}", media, frame, "NA", ""]
        )  # fmt: skip
    return out.getvalue()


def _video_events(project: Project, key: str, predictions: bool, run: str) -> tuple[str, str]:
    """(file name, BORIS events text) of one video's labels or predictions."""
    rec = project.record(key)
    fps = float(rec.probe().fps or 0)
    if fps <= 0:
        raise DegError(f"the fps of {key!r} is unknown: cannot write times", rec.folder)
    if predictions:
        from deg_core.interop.predictions import predicted

        pred = predicted(project, key, run)
        array, what = pred.ethogram, f"deg predictions of {pred.run}"
        name = f"{key}_predictions_boris.csv"
    else:
        if not rec.labels_path.exists():
            raise DegError(f"{key!r} has no labels to export", rec.labels_path)
        array, what, name = project.labels(key).array, "deg labels", f"{key}_boris.csv"
    media = rec.video_name or f"{key}.mp4"
    text = boris_events_text(
        array, project.behaviors, fps, observation=key, media=media, description=what
    )
    return name, text


def export_boris(
    project: Project,
    videos: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    *,
    predictions: bool = False,
    run: str = "latest",
) -> tuple[list[Path], list[str]]:
    """Write ``<out_dir>/<key>_boris.csv`` (labels) or ``<key>_predictions_boris.csv``
    (the sequence run's cleaned ethogram) per video; default out_dir: ``PROJECT/exports``.
    Returns (files written, "key: why" of each video skipped).

    Named ``videos`` must all have what is exported; without names, every video that has
    it is exported and the others are skipped. Everything is read before the first file
    is written, so an error writes nothing.
    """
    keys = [project.resolve_key(v) for v in videos] if videos else project.video_keys()
    out = Path(out_dir) if out_dir is not None else project.root / "exports"
    texts, skipped = {}, []
    for key in keys:
        try:
            name, text = _video_events(project, key, predictions, run)
        except DegError as e:
            if videos:
                raise
            skipped.append(f"{key}: {e.problem}")
            continue
        texts[out / name] = text
    if not texts:
        raise DegError(f"nothing to export ({'; '.join(skipped) or 'no videos'})", project.root)
    out.mkdir(parents=True, exist_ok=True)
    for path, text in texts.items():
        atomic_write_text(path, text)
    return list(texts), skipped
