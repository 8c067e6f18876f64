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

* the *aggregated events* export: one row per bout, STATE (``Start (s)`` to ``Stop (s)``)
  or POINT, of one or several observations, subjects and media files: the rows of the
  video's media file are read (:mod:`deg_core.interop.boris_aggregated`).

Text may be UTF-8 or UTF-16 (Excel's "Unicode text"). Seconds become frames at the
*video's* fps (its record), rounding to the nearest frame, through
:func:`~deg_core.interop.boris_tables.seconds_to_frame` (and frames become seconds through
:func:`~deg_core.interop.boris_tables.frame_to_seconds`):
an event at ``t`` s is frame ``floor(t * fps + 0.5)``; a state covers frames
``[frame(START), frame(STOP))`` and at least one. Modifiers are ignored (a binary
table's ``behaviour (modifier)`` columns are folded into ``behaviour``), with a note.
A file with events of several subjects needs ``subject``; names that are not the
project's behaviours are refused all in one line unless ``mapping`` renames them
(``{"Grooming": "groom"}``) or drops them (``{"walk": ""}``).

Write: the tabular events layout of BORIS 8 (CSV), one START and one STOP row per bout,
or the aggregated events layout of BORIS 8.13+, one STATE row per bout; times in seconds
to the millisecond, the observation's date (when the video was added to the project) and
the subject (the video's ``subject_id`` in ``project.subject``; without one, none: "" in
the tabular layout, "No focal subject" in the aggregated one, as BORIS writes).

A video of several animals (``project.animals``) is one file with every animal a subject,
named as its tracks name it (else ``animal<i>``, :func:`~deg_core.interop.animals.animal_names`):
animal 0's rows, then animal 1's, ... (an animal without bouts has no rows). Reading such a
file back (:func:`import_boris_animals`) puts each subject named like one of the video's
animals onto that animal, so the export round-trips.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from deg_core.errors import DegError, LabelError
from deg_core.fileio import atomic_write_text, output_folder
from deg_core.interop.animals import animal_index, animal_names
from deg_core.interop.boris_aggregated import (
    _choose_media,
    _Table,
    aggregated_header,
    boris_aggregated_text,
    read_aggregated,
)
from deg_core.interop.boris_tables import (
    NO_FOCAL_SUBJECT,
    BorisLabels,
    events_header,
    frame_to_seconds,
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


LAYOUTS = ("tabular", "aggregated")  # what export_boris writes


def sniff(path: str | Path) -> str | None:
    """``"events"`` (tabular events), ``"aggregated"`` (aggregated events), ``"binary"``
    (behaviors binary table) or None; reads the file's first lines only."""
    try:
        rows = read_table(Path(path), head=True)  # a label file may have a million rows
    except LabelError:
        return None
    if events_header(rows) is not None:
        return "events"
    if aggregated_header(rows) is not None:
        return "aggregated"
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
    media: str | None = None,
    video: Sequence[str] = (),
) -> BorisLabels:
    """Labels (``n_frames``, K) over ``behaviors`` from a BORIS tabular events export,
    aggregated events export or behaviors binary table at ``fps``. ``media``: the media
    file whose events to read from an aggregated export (default: the one named like
    ``video``, the names the video goes by). Never writes; one-line LabelError naming
    the file."""
    path = Path(path)
    if not fps or not math.isfinite(fps) or fps <= 0:
        raise LabelError(f"the video's fps ({fps}) is unknown: cannot convert seconds", path)
    rows = read_table(path)
    if aggregated_header(rows) is not None:
        return read_aggregated(
            path, rows, behaviors, n_frames, fps, subject, mapping or {},
            unlabeled_outside_bouts, media, video,
        )  # fmt: skip
    kind = "events" if events_header(rows) is not None else "binary"
    if media is not None and (kind == "events" or is_binary_table(rows)):
        raise LabelError(
            f"--media chooses among the media files of an aggregated events export, not of "
            f"a {'tabular events export' if kind == 'events' else 'behaviors binary table'}",
            path,
        )
    if kind == "events":
        return read_events(
            path, rows, behaviors, n_frames, fps, subject, mapping or {}, unlabeled_outside_bouts
        )
    if is_binary_table(rows):
        return read_binary(path, rows, behaviors, n_frames, fps, mapping or {})
    raise LabelError(
        "is not a BORIS export: no header with Behavior, Time and Behavior type (tabular "
        "events) nor with Behavior type, Start (s) and Stop (s) (aggregated events) nor a "
        "'time' column first (behaviors binary table)",
        path,
    )


def boris_subjects(
    path: str | Path, media: str | None = None, video: Sequence[str] = ()
) -> list[str]:
    """The subjects of a BORIS export in order of first appearance (events without one:
    "No focal subject"); of ``media``'s rows (default: the video's) in an aggregated
    export; [] for a behaviors binary table (one subject's, unnamed). Never writes."""
    path = Path(path)
    rows = read_table(path)
    if aggregated_header(rows) is not None:
        table = _Table(path, rows)
        all_media = list(dict.fromkeys(m for _, r in table.data if (m := table.media(r))))
        chosen = _choose_media(path, all_media, media, video)
        picked = [r for _, r in table.data if chosen is None or table.media(r) == chosen]
        return list(dict.fromkeys(table.cell(r, "Subject") or NO_FOCAL_SUBJECT for r in picked))
    h = events_header(rows)
    if h is None:
        return []
    header = [c.strip() for c in rows[h]]
    if "Subject" not in header:
        return [NO_FOCAL_SUBJECT]
    j = header.index("Subject")
    subjects = (
        (row[j].strip() if j < len(row) else "") or NO_FOCAL_SUBJECT
        for row in rows[h + 1 :]
        if any(c.strip() for c in row)
    )
    return list(dict.fromkeys(subjects))


def _read_for(project: Project, key: str, path: str | Path, **kwargs) -> BorisLabels:
    """:func:`read_boris` of ``path`` at video ``key``'s fps and frame count."""
    rec = project.record(key)
    names = [rec.key, *([rec.video_name, Path(rec.video_name).stem] if rec.video_name else [])]
    kwargs.setdefault("video", names)  # to find its rows in an aggregated export
    return read_boris(path, project.behaviors, rec.n_frames(), rec.clock(), **kwargs)


def import_boris(
    project: Project,
    video: str,
    path: str | Path,
    labeler: str | None = None,
    animal: int | None = None,
    **kwargs,
) -> BorisLabels:
    """Read a BORIS file for ``video`` (at its fps and frame count) and store the labels
    as the training label file (:meth:`Project.save_labels`) or as ``labeler``'s set, of
    ``animal`` in a video of several (``subject`` chooses the BORIS subject), under the
    project lock; nothing is written on error. ``kwargs``: :func:`read_boris`'s."""
    key = project.resolve_key(video)
    project.annotator_labels_path(key, labeler, animal)  # bad names fail before reading
    result = _read_for(project, key, path, **kwargs)
    project.save_annotator_labels(key, labeler, result.labels, animal=animal)
    return result


def import_boris_animals(
    project: Project,
    video: str,
    path: str | Path,
    labeler: str | None = None,
    **kwargs,
) -> dict[int, tuple[str, BorisLabels]]:
    """Import every subject of a BORIS file into a video of several animals. Subjects that
    all name distinct animals of the video (their tracks' names or ``animal<i>``, as
    :func:`export_boris` writes them) go onto those animals, however many (the others are
    left as they are); otherwise the subjects, in order of first appearance, become animals
    0..N-1, which needs as many subjects as the video has animals (else a one-line error
    listing them: choose with ``subject`` and :func:`import_boris`'s ``animal``). All are
    read before the first file is written. Returns {animal: (subject, labels)}."""
    key = project.resolve_key(video)
    n = project.n_animals(key)
    if kwargs.get("subject") is not None or n == 1:
        project.check_animal(key, None)  # one subject: say which animal (one-line error)
        return {
            0: (kwargs.get("subject") or "", import_boris(project, key, path, labeler, **kwargs))
        }
    project.annotator_labels_path(key, labeler, 0)  # a bad name fails before reading
    rec = project.record(key)
    names = [rec.key, *([rec.video_name, Path(rec.video_name).stem] if rec.video_name else [])]
    subjects = boris_subjects(path, kwargs.get("media"), kwargs.get("video", names))
    known = animal_index(project, key)
    named = {known[s]: s for s in subjects if s in known}
    if subjects and len(named) == len(subjects):  # each subject names its own animal
        return _import_subjects(project, key, path, labeler, dict(sorted(named.items())), kwargs)
    if len(subjects) != n:
        held = f"subjects {', '.join(subjects)}" if subjects else "no named subjects"
        raise DegError(
            f"holds {held}, video {key} has {n} animals: import one subject at a time "
            "with --subject S --animal I",
            path,
        )
    return _import_subjects(project, key, path, labeler, dict(enumerate(subjects)), kwargs)


def _import_subjects(
    project: Project,
    key: str,
    path: str | Path,
    labeler: str | None,
    subjects: dict[int, str],
    kwargs: dict,
) -> dict[int, tuple[str, BorisLabels]]:
    """Read subject ``subjects[i]`` for each animal i, then store them all."""
    read = {
        i: (s, _read_for(project, key, path, **{**kwargs, "subject": s}))
        for i, s in subjects.items()
    }
    for i, (_, result) in read.items():
        project.save_annotator_labels(key, labeler, result.labels, animal=i)
    return read


# --------------------------------------------------------------------------- writing


def boris_events_text(
    array: np.ndarray,
    behaviors: Sequence[str],
    fps: float,
    *,
    observation: str,
    media: str,
    description: str = "",
    date: str = "",
    subject: str = "",
) -> str:
    """BORIS 8 tabular events (CSV) of ``array`` (T, K): a START and a STOP row per bout
    (runs of 1; 0 and -1 are both "not present"), sorted by time, STOP first on ties."""
    n_frames = int(np.asarray(array).shape[0])
    duration = f"{frame_to_seconds(n_frames, fps):.3f}"
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
            [observation, date, description, duration, "Media file(s)", f"player #1:{media}",
             "0.000", duration, f"{fps:.3f}", subject, behaviors[k], "", status,
             f"{frame_to_seconds(frame, fps):.3f}", media, frame, "NA", ""]
        )  # fmt: skip
    return out.getvalue()


def _observation_date(added: str | None) -> str:
    """The record's ``added`` (ISO) as BORIS writes an observation date, ``2024-05-02
    10:15:00``; "" if unknown."""
    try:
        return dt.datetime.fromisoformat(str(added)).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return ""


def _subject_id(project: Project, key: str) -> str:
    """The video's ``subject_id``: ``project.subject.videos[key]`` over ``project.subject``
    (null unsets it, as for NWB); "" if none."""
    cfg = project.config.project.subject
    value = (cfg.videos.get(key) or {}).get("subject_id", cfg.subject_id)
    return "" if value is None else str(value)


def _video_arrays(
    project: Project, key: str, predictions: bool, run: str, subject: str
) -> tuple[list[tuple[str, np.ndarray]], str]:
    """([(subject, (T, K) array)] of one video's labels or predictions, one per animal in a
    video of several, and what they are)."""
    rec = project.record(key)
    n = project.n_animals(key)
    animals: list[int | None] = [None] if n == 1 else list(range(n))
    subjects = [subject] if n == 1 else animal_names(project, key)
    if predictions:
        from deg_core.interop.predictions import predicted

        preds = [predicted(project, key, run, animal=a) for a in animals]
        arrays = [p.ethogram for p in preds]
        what = f"deg predictions of {preds[0].run}"
    else:
        paths = [project.label_path(key, a) for a in animals]
        if not any(p.exists() for p in paths):
            raise DegError(f"{key!r} has no labels to export", paths[0] if n == 1 else rec.folder)
        arrays, what = [project.labels(key, animal=a).array for a in animals], "deg labels"
    return list(zip(subjects, arrays, strict=True)), what


def _video_events(
    project: Project, key: str, predictions: bool, run: str, layout: str, subject: str
) -> tuple[str, str]:
    """(file name, BORIS events text in ``layout``) of one video's labels or predictions;
    a video of several animals: every animal a subject, one block of rows after another."""
    rec = project.record(key)
    fps = rec.clock()  # the mean rate, and a VFR video's frame times
    if fps <= 0:
        raise DegError(f"the fps of {key!r} is unknown: cannot write times", rec.folder)
    arrays, what = _video_arrays(project, key, predictions, run, subject)
    name = f"{key}_predictions_boris.csv" if predictions else f"{key}_boris.csv"
    media = rec.video_name or f"{key}.mp4"
    write = boris_aggregated_text if layout == "aggregated" else boris_events_text
    if layout == "aggregated":
        name = name.replace("_boris.csv", "_boris_aggregated.csv")
    date = _observation_date(rec.added)
    texts = [
        write(
            array,
            project.behaviors,
            fps,
            observation=key,
            media=media,
            description=what,
            date=date,
            subject=who,
        )
        for who, array in arrays
    ]
    # one header: the blocks after the first without theirs
    return name, texts[0] + "".join(t.partition("\n")[2] for t in texts[1:])


def export_boris(
    project: Project,
    videos: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    *,
    predictions: bool = False,
    run: str = "latest",
    layout: str = "tabular",
    subject: str | None = None,
) -> tuple[list[Path], list[str]]:
    """Write ``<out_dir>/<key>_boris.csv`` (labels) or ``<key>_predictions_boris.csv``
    (the sequence run's cleaned ethogram) per video; default out_dir: ``PROJECT/exports``.
    ``layout``: BORIS's ``"tabular"`` events or ``"aggregated"`` events (then the names end
    in ``_boris_aggregated.csv``); ``subject``: the subject of every one-animal video
    (default: each video's ``subject_id`` in ``project.subject``, else none); a video of
    several animals has its animals as subjects (see the module docstring).
    Returns (files written, "key: why" of each video skipped).

    Named ``videos`` must all have what is exported; without names, every video that has
    it is exported and the others are skipped. Everything is read before the first file
    is written, so an error writes nothing.
    """
    if layout not in LAYOUTS:
        raise DegError(f"unknown BORIS layout {layout!r} (known: {', '.join(LAYOUTS)})")
    keys = [project.resolve_key(v) for v in videos] if videos else project.video_keys()
    out = Path(out_dir) if out_dir is not None else project.root / "exports"
    texts, skipped = {}, []
    for key in keys:
        try:
            who = subject if subject is not None else _subject_id(project, key)
            name, text = _video_events(project, key, predictions, run, layout, who)
        except DegError as e:
            if videos:
                raise
            skipped.append(f"{key}: {e.problem}")
            continue
        texts[out / name] = text
    if not texts:
        raise DegError(f"nothing to export ({'; '.join(skipped) or 'no videos'})", project.root)
    with output_folder(out):  # no empty exports/ after a failure, no dead writers' temporaries
        for path, text in texts.items():
            atomic_write_text(path, text)
    return list(texts), skipped
