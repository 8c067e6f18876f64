"""BORIS's *aggregated events* export, in (per-frame labels) and out (the text).

One row per bout: ``Behavior type`` STATE (``Start (s)`` to ``Stop (s)``) or POINT (the
frame at ``Start (s)``), with its observation, subject and media file. Two layouts:

* BORIS 7 to 8.6: ``Observation id, Observation date, Description, Media file, Total
  length, FPS, <independent variables>, Subject, Behavior, Behavioral category, Modifiers,
  Behavior type, Start (s), Stop (s), Duration (s), Comment start, Comment stop``;
* BORIS 8.13 on: ``Observation id, Observation date, Description, Observation type,
  Source, Time offset (s), Coding duration (Total duration before 8.27), Media duration
  (s), FPS (frame/s), <independent variables>, Subject, Observation duration by subject by
  observation, Behavior, Behavioral category, Modifier #1.., Behavior type, Start (s),
  Stop (s), Duration (s), Media file name, Image index start, Image index stop, Image file
  path start, Image file path stop, Comment start, Comment stop``.

A file may hold several observations and media files: the rows of one media file are
imported, the one named like the video (file name or stem, any folder) unless ``media``
names it. Times are the observation's: when it plays several media files one after
another (player #1), a time counts from the start of the first, so the durations of the
media files before the chosen one are subtracted (``Source`` and ``Media duration (s)``
give them; the old layout does not, so from it only an observation's first media file can
be imported), and so is the observation's ``Time offset (s)``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deg_core.errors import LabelError
from deg_core.interop.boris_tables import (
    _HEADER_SCAN,
    NO_FOCAL_SUBJECT,
    BorisLabels,
    FrameCanvas,
    _choose_subject,
    _resolve_names,
    _seconds,
    fps_notes,
    frame_to_seconds,
)
from deg_core.labels.bouts import bout_table
from deg_core.labels.labels import Labels

REQUIRED = ("Behavior", "Behavior type", "Start (s)", "Stop (s)")
_MEDIA_COLUMNS = ("Media file name", "Media file", "Media file path")  # 8.13 on, 7, -
_FPS_COLUMNS = ("FPS (frame/s)", "FPS")
_NO_MEDIA = {"", "NA", "NOT FOUND", "LIVE"}  # what BORIS writes when an event has none
_PLAYER_1 = re.compile(r"^\s*player\s*#\s*1\s*:(.*)$", re.IGNORECASE)

# the layout BORIS 8.13 on writes for a one-video observation without independent variables
AGGREGATED_COLUMNS = [
    "Observation id",
    "Observation date",
    "Description",
    "Observation type",
    "Source",
    "Time offset (s)",
    "Coding duration",
    "Media duration (s)",
    "FPS (frame/s)",
    "Subject",
    "Observation duration by subject by observation",
    "Behavior",
    "Behavioral category",
    "Behavior type",
    "Start (s)",
    "Stop (s)",
    "Duration (s)",
    "Media file name",
    "Image index start",
    "Image index stop",
    "Image file path start",
    "Image file path stop",
    "Comment start",
    "Comment stop",
]


def aggregated_header(rows: list[list[str]]) -> int | None:
    """Index of the aggregated-events header row (Behavior, Behavior type, Start (s) and
    Stop (s)), if any."""
    for i, row in enumerate(rows[:_HEADER_SCAN]):
        if set(REQUIRED) <= {c.strip() for c in row}:
            return i
    return None


def media_base(media: str) -> str:
    """``/data/m1.mp4``, ``C:\\data\\m1.mp4`` -> ``m1.mp4``."""
    return re.split(r"[\\/]", media.strip())[-1]


def _stem(name: str) -> str:
    base, dot, ext = name.rpartition(".")
    return base if dot and base and ext else name


def _is_named(media: str, name: str) -> bool:
    """Whether ``name`` (``--media``) names ``media``: the whole text, its file name or stem."""
    base = media_base(media).lower()
    name = name.strip()
    return (
        media.strip() == name
        or base in (media_base(name).lower(), name.lower())
        or (_stem(base) == name.lower())
    )


def _names_video(media: str, video: Sequence[str]) -> bool:
    """Whether ``media``'s file name or stem is one the video goes by (key, file name, stem)."""
    base = media_base(media).lower()
    return bool({base, _stem(base)} & {v.lower() for v in video if v})


def _listing(media: list[str], most: int = 10) -> str:
    """The media files by file name (whole paths where two share one), at most ``most``."""
    bases = [media_base(m) for m in media]
    shown = bases if len(set(bases)) == len(bases) else media
    more = f" and {len(shown) - most} more" if len(shown) > most else ""
    return ", ".join(shown[:most]) + more


def _choose_media(
    path: Path, all_media: list[str], wanted: str | None, video: Sequence[str]
) -> str | None:
    """The media file whose rows to import (None: the file names no media files)."""
    listing = _listing(all_media)
    if wanted is not None:
        if not all_media:
            raise LabelError(f"--media {wanted!r}: the file names no media files", path)
        hits = [m for m in all_media if _is_named(m, wanted)]
        if not hits:
            raise LabelError(f"no events of media file {wanted!r} (media files: {listing})", path)
        if len(hits) > 1:
            raise LabelError(
                f"--media {wanted!r} names several media files ({', '.join(hits)}): give "
                "more of the path",
                path,
            )
        return hits[0]
    if len(all_media) <= 1:
        return all_media[0] if all_media else None
    hits = [m for m in all_media if _names_video(m, video)]
    if len(hits) == 1:
        return hits[0]
    video_name = video[0] if video else "the video"
    if hits:
        raise LabelError(
            f"several media files are named like {video_name!r} ({_listing(hits)}): choose "
            "one with --media PATH",
            path,
        )
    raise LabelError(
        f"holds events of several media files ({listing}), none named like {video_name!r}: "
        "choose one with --media NAME",
        path,
    )


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class _Table:
    """The data rows of an aggregated export and accessors to their cells by column name."""

    def __init__(self, path: Path, rows: list[list[str]]):
        h = aggregated_header(rows)
        assert h is not None
        header = [c.strip() for c in rows[h]]
        self.col = {name: header.index(name) for name in header if name}
        self.media_col = next((self.col[c] for c in _MEDIA_COLUMNS if c in self.col), None)
        self.fps_col = next((c for c in _FPS_COLUMNS if c in self.col), None)
        self.modifier_cols = [
            j for name, j in self.col.items() if name.startswith(("Modifiers", "Modifier #"))
        ]
        self.data: list[tuple[int, list[str]]] = []
        for i, row in enumerate(rows[h + 1 :], start=h + 2):
            if not any(c.strip() for c in row):
                continue
            if len(row) < len(header):
                raise LabelError(
                    f"line {i} has {len(row)} fields, the header has {len(header)}", path
                )
            self.data.append((i, row))

    def cell(self, row: list[str], name: str) -> str:
        return row[self.col[name]].strip() if name in self.col else ""

    def media(self, row: list[str]) -> str:
        m = row[self.media_col].strip() if self.media_col is not None else ""
        return "" if m.upper() in _NO_MEDIA else m

    def has_modifiers(self, row: list[str]) -> bool:
        parts = (p.strip() for j in self.modifier_cols for p in row[j].split("|"))
        return any(p and p not in ("None", "NA") for p in parts)

    def player1(self, row: list[str]) -> tuple[list[str], list[str], list[str]] | None:
        """(media files, durations, fps) of player #1, from Source, Media duration (s) and
        FPS (frame/s) (BORIS 8.13 on; None in the old layout or for a live observation)."""
        m = _PLAYER_1.match(self.cell(row, "Source").split("|")[0])
        if m is None or "Media duration (s)" not in self.col:
            return None
        files = [f.strip() for f in m.group(1).split(";")]
        durations = self.cell(row, "Media duration (s)").split("|")[0].split(";")
        fps = self.cell(row, self.fps_col).split("|")[0].split(";") if self.fps_col else []
        return files, [d.strip() for d in durations], [f.strip() for f in fps]


def _index_of(media: str, files: list[str]) -> int | None:
    """Where ``media`` is in player #1's list: the same text, else the one same file name."""
    if media in files:
        return files.index(media)
    bases = [media_base(f) for f in files]
    return bases.index(media_base(media)) if bases.count(media_base(media)) == 1 else None


def _media_start(
    path: Path, table: _Table, chosen: str, observation: str, first: list[str]
) -> tuple[float, int | None]:
    """When ``chosen`` starts in its observation's time (s), and its index in player #1."""
    player1 = table.player1(first)
    if player1 is not None:
        files, durations, _ = player1
        index = _index_of(chosen, files)
        if index == 0 or (index is None and len(files) == 1):
            return 0.0, 0
        values = [_float(d) for d in durations[: index or 0]]
        if index is None or len(values) < index or None in values:
            raise LabelError(
                f"cannot tell where {media_base(chosen)!r} starts in observation "
                f"{observation!r}: player #1 plays {';'.join(files)!r} for "
                f"{';'.join(durations)!r} s",
                path,
            )
        return float(sum(v for v in values if v is not None)), index
    # the old layout: the observation's media files, in the order of their first events
    starts: dict[str, float] = {}
    for lineno, row in table.data:
        m = table.media(row)
        if m and table.cell(row, "Observation id") == observation:
            t = _seconds(path, row[table.col["Start (s)"]], lineno, "start")
            starts[m] = min(t, starts.get(m, t))
    if len(starts) > 1 and min(starts, key=lambda m: starts[m]) != chosen:
        others = ", ".join(media_base(m) for m in starts)
        raise LabelError(
            f"observation {observation!r} plays several media files ({others}) and its times "
            f"count from the start of the first; this layout (BORIS 7) does not give their "
            f"durations, so {media_base(chosen)!r} cannot be placed: export the aggregated "
            "events again with BORIS 8.13 or later",
            path,
        )
    return 0.0, None


def read_aggregated(
    path: Path,
    rows: list[list[str]],
    behaviors: list[str],
    n_frames: int,
    fps: float,
    subject: str | None,
    mapping: dict[str, str],
    unlabeled_outside_bouts: bool,
    media: str | None = None,
    video: Sequence[str] = (),
) -> BorisLabels:
    """(T, K) labels from an aggregated events export (see the module docstring).
    ``video``: the names the video goes by (key, file name, stem), to find its rows."""
    table = _Table(path, rows)
    if not table.data:
        raise LabelError("holds no events", path)
    notes: list[str] = []
    all_media = list(dict.fromkeys(m for _, r in table.data if (m := table.media(r))))
    chosen = _choose_media(path, all_media, media, video)
    picked = table.data
    if chosen is not None:
        picked = [(i, r) for i, r in table.data if table.media(r) == chosen]
        if media is None and video and not _names_video(chosen, video):
            notes.append(f"the events are of {media_base(chosen)!r}, imported into {video[0]!r}")
        without = len(table.data) - sum(bool(table.media(r)) for _, r in table.data)
        if without:
            notes.append(f"{without} events name no media file: skipped")
    observations = sorted({table.cell(r, "Observation id") for _, r in picked} - {""})
    if len(observations) > 1:
        where = f"the events of {media_base(chosen)!r} are in" if chosen else "holds"
        raise LabelError(
            f"{where} several observations ({', '.join(observations)}): export each to its "
            "own file in BORIS",
            path,
        )
    first = picked[0][1]
    offset, index = (
        _media_start(path, table, chosen, observations[0] if observations else "", first)
        if chosen is not None
        else (0.0, None)
    )
    if offset:
        notes.append(
            f"{media_base(chosen or '')!r} starts {offset:g} s into its observation: "
            "subtracted from every time"
        )
    time_offset = _float(table.cell(first, "Time offset (s)") or "0") or 0.0
    if time_offset:
        notes.append(f"time offset {time_offset:g} s subtracted from every event")
    if table.fps_col is not None:
        player1 = table.player1(first)
        if player1 is not None and index is not None and index < len(player1[2]):
            notes += fps_notes(player1[2][index], fps)
        else:
            notes += fps_notes(table.cell(first, table.fps_col), fps)

    subjects = [table.cell(r, "Subject") or NO_FOCAL_SUBJECT for _, r in picked]
    who = _choose_subject(path, list(dict.fromkeys(subjects)), subject)
    picked = [e for e, s in zip(picked, subjects, strict=True) if s == who]
    names = list(dict.fromkeys(table.cell(r, "Behavior") for _, r in picked))
    columns, name_notes = _resolve_names(path, names, behaviors, mapping)
    notes += name_notes
    with_modifiers = sum(table.has_modifiers(r) for _, r in picked)
    if with_modifiers:
        notes.append(f"modifiers ignored ({with_modifiers} events carry some)")

    canvas = FrameCanvas(path, len(behaviors), columns, n_frames, fps, offset + time_offset)
    for lineno, row in picked:
        name, kind = table.cell(row, "Behavior"), table.cell(row, "Behavior type").upper()
        start = _seconds(path, row[table.col["Start (s)"]], lineno, "start")
        if kind.startswith("POINT"):
            f = canvas.frame(lineno, start, stop=False)
            canvas.mark(name, f, f + 1)
        elif kind.startswith("STATE"):
            stop = _seconds(path, row[table.col["Stop (s)"]], lineno, "stop")
            if stop < start:
                raise LabelError(
                    f"line {lineno}: stop {stop:g} s is before start {start:g} s", path
                )
            begin = canvas.frame(lineno, start, stop=False)
            canvas.mark(name, begin, canvas.frame(lineno, stop, stop=True))
        else:
            raise LabelError(
                f"line {lineno}: behaviour type {table.cell(row, 'Behavior type')!r} is not "
                "STATE or POINT",
                path,
            )
    return BorisLabels(Labels(list(behaviors), canvas.array(unlabeled_outside_bouts)), notes)


# --------------------------------------------------------------------------- writing


def boris_aggregated_text(
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
    """BORIS 8.13+ aggregated events (CSV) of ``array`` (T, K): one STATE row per bout (runs
    of 1; 0 and -1 are both "not present"), sorted by start time."""
    behaviors = list(behaviors)
    n_frames = int(np.asarray(array).shape[0])
    duration = f"{frame_to_seconds(n_frames, fps):.3f}"
    bouts = sorted(
        (b["start"], behaviors.index(b["behavior"]), b["stop"])
        for b in bout_table(np.asarray(array), behaviors)
    )
    times = [(frame_to_seconds(a, fps), k, frame_to_seconds(b, fps)) for a, k, b in bouts]
    total = sum(t1 - t0 for t0, _, t1 in times)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(AGGREGATED_COLUMNS)
    for (start, k, stop), (t0, _, t1) in zip(bouts, times, strict=True):
        writer.writerow(
            [observation, date, description, "Media file", f"player #1:{media}", "0.000",
             duration, duration, f"{fps:.3f}", subject or NO_FOCAL_SUBJECT, f"{total:.3f}",
             behaviors[k], "", "STATE", f"{t0:.3f}", f"{t1:.3f}", f"{t1 - t0:.3f}", media,
             start, stop, "NA", "NA", "", ""]
        )  # fmt: skip
    return out.getvalue()
