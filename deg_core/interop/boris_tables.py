"""Parsing BORIS's exports into per-frame labels (the rules: :mod:`deg_core.interop.boris`).

Everything here reads; nothing writes. Errors are one-line LabelErrors naming the file
and, where there is one, the line.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deg_core.errors import LabelError
from deg_core.labels.labels import Labels
from deg_core.video.clock import FrameClock

NO_FOCAL_SUBJECT = "No focal subject"  # what BORIS calls events without a subject
_STATUS_COLUMNS = ("Behavior type", "Status")  # BORIS 8, BORIS 7
_STATUSES = ("START", "STOP", "POINT")
_HEADER_SCAN = 50  # BORIS 7 writes ~10 lines of observation details before the header
_HEAD_BYTES = 1 << 17  # where the header is looked for (and the encoding and delimiter)


@dataclass
class BorisLabels:
    """An imported BORIS file: ``labels`` (T, K) over the project's behaviours, and notes
    for the user (modifiers ignored, a different FPS in the file, ...)."""

    labels: Labels
    notes: list[str] = field(default_factory=list)


def seconds_to_frame(seconds: float, fps: float) -> int:
    """The frame nearest to ``seconds`` (halves round up, not to even). Every BORIS time
    becomes a frame through this function, the one place that knows how frames are timed:
    at a constant ``fps``, or through the frame times of a VFR video's
    :class:`~deg_core.video.clock.FrameClock` (what a project's record gives)."""
    if isinstance(fps, FrameClock):
        return fps.frame_at(seconds)
    return math.floor(seconds * fps + 0.5)


def frame_to_seconds(frame, fps: float):
    """When frame ``frame`` (an int or an array of them) starts, in seconds; every frame
    becomes a BORIS time through this function (the inverse of :func:`seconds_to_frame`)."""
    if isinstance(fps, FrameClock):
        return fps.seconds(frame)
    return frame / fps


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))  # fmt: skip


def text_encoding(sample: bytes) -> str | None:
    """The encoding of a text file from its first bytes: UTF-8 (with or without a BOM) or
    UTF-16 (a BOM, or no BOM and a NUL byte beside every ASCII character: Excel's "Unicode
    text"); None for binary data (NUL bytes in no UTF-16 pattern)."""
    for bom, encoding in _BOMS:
        if sample.startswith(bom):
            return encoding
    nuls = sample.count(0)
    if not nuls:
        return "utf-8-sig"
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if 4 * nuls >= len(sample) and max(even, odd) >= 0.95 * nuls:
        return "utf-16-le" if odd > even else "utf-16-be"
    return None


def _encoding_name(encoding: str) -> str:
    return "UTF-16" if encoding.startswith("utf-16") else "UTF-8"


def read_table(path: Path, head: bool = False) -> list[list[str]]:
    """The rows of a CSV or TSV text file, UTF-8 or UTF-16 (tabs or commas, whichever the
    first lines have more of); ``head``: only the first lines, where a header would be,
    reading at most :data:`_HEAD_BYTES`. One-line LabelError if it is not text."""
    if not path.is_file():
        raise LabelError("BORIS file not found", path)
    encoding, delimiter = "utf-8-sig", ","
    try:
        with open(path, "rb") as f:
            sample = f.read(_HEAD_BYTES)
            found = text_encoding(sample)
            if found is None:
                raise LabelError("is not a BORIS text export (binary data)", path)
            encoding = found
            at_end = len(sample) < _HEAD_BYTES
            text = codecs.getincrementaldecoder(encoding)().decode(sample, final=at_end)
            lines = text.splitlines(keepends=True)
            if not at_end and len(lines) > 1:
                lines.pop()  # maybe cut short by the sample's end
            lines = lines[:_HEADER_SCAN]
            if not "".join(lines).strip():
                raise LabelError("is not a BORIS text export (empty)", path)
            tabs = sum(line.count("\t") for line in lines)
            delimiter = "\t" if tabs > sum(line.count(",") for line in lines) else ","
            if head:
                source: Iterable[str] = lines
                return list(csv.reader(source, delimiter=delimiter, strict=True))
            f.seek(0)
            stream = io.TextIOWrapper(f, encoding=encoding, newline="")
            return list(csv.reader(stream, delimiter=delimiter, strict=True))
    except UnicodeDecodeError:
        raise LabelError(
            f"is not a BORIS text export (not {_encoding_name(encoding)} text)", path
        ) from None
    except OSError as e:
        raise LabelError(f"cannot read: {e.strerror or e}", path) from None
    except csv.Error as e:
        kind = "TSV" if delimiter == "\t" else "CSV"
        raise LabelError(f"unparseable {kind}: {e}", path) from None


def events_header(rows: list[list[str]]) -> int | None:
    """Index of the tabular-events header row (Behavior, Time and a status column), if any."""
    for i, row in enumerate(rows[:_HEADER_SCAN]):
        names = {c.strip() for c in row}
        if {"Behavior", "Time"} <= names and names & set(_STATUS_COLUMNS):
            return i
    return None


def is_binary_table(rows: list[list[str]]) -> bool:
    """A behaviors binary table: ``time`` first, then behaviours; times are seconds, not an
    index 0, 1, 2 (a DEG label file with a frame column named ``time``)."""
    if not rows or len(rows[0]) < 2 or rows[0][0].strip() != "time":
        return False
    if {"background", "none", "start", "stop"} & {c.strip().lower() for c in rows[0]}:
        return False
    times = [r[0].strip() for r in rows[1:] if r and r[0].strip()]
    return bool(times) and times != [str(i) for i in range(len(times))]


def _resolve_names(
    path: Path, names: Sequence[str], behaviors: Sequence[str], mapping: dict[str, str]
) -> tuple[dict[str, int | None], list[str]]:
    """BORIS name -> project column (None: dropped), and notes; unmatched names: one error."""
    project = ", ".join(behaviors) or "none"
    bad_targets = [f"{n}={t}" for n, t in mapping.items() if t and t not in behaviors]
    if bad_targets:  # a --map to a name the project lacks: name that target, not the source
        raise LabelError(
            f"--map {', '.join(bad_targets)}: "
            f"{', '.join(repr(t.partition('=')[2]) for t in bad_targets)} "
            f"{'is not a behaviour' if len(bad_targets) == 1 else 'are not behaviours'} of "
            f"the project ({project})",
            path,
        )
    unknown = [n for n in names if n not in mapping and n not in behaviors]
    if unknown:
        raise LabelError(
            f"behaviours not in the project: {', '.join(map(repr, unknown))} (project: "
            f"{project}); map them with --map BORIS_NAME=DEG_NAME "
            "or drop them with --map BORIS_NAME=",
            path,
        )
    columns = {
        n: (behaviors.index(mapping.get(n, n)) if mapping.get(n, n) else None) for n in names
    }
    notes = []
    dropped = [n for n, k in columns.items() if k is None]
    if dropped:
        notes.append(f"dropped (mapped to nothing): {', '.join(dropped)}")
    unused = sorted(set(mapping) - set(names))
    if unused:
        notes.append(f"--map names not in the file: {', '.join(unused)}")
    return columns, notes


def _seconds(path: Path, text: str, lineno: int, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise LabelError(f"line {lineno}: {what} {text.strip()!r} is not a number of seconds", path)
    return value


def _choose_subject(path: Path, subjects: list[str], subject: str | None) -> str:
    if subject is not None:
        if subject not in subjects:
            raise LabelError(
                f"no events of subject {subject!r} (subjects: {', '.join(subjects)})", path
            )
        return subject
    if len(subjects) > 1:
        raise LabelError(
            f"holds events of several subjects ({', '.join(subjects)}): choose one with "
            "--subject NAME",
            path,
        )
    return subjects[0]


def fps_notes(file_fps: str, fps: float) -> list[str]:
    """A note when the file's FPS differs from the video's ("NA", "": none)."""
    try:
        value = float(file_fps)
    except ValueError:
        return []  # "NA" or several media files: the video's fps is what counts anyway
    if math.isfinite(value) and abs(value - fps) > 0.01:
        return [f"the file says {value:g} fps; times converted at the video's {fps:g} fps"]
    return []


class FrameCanvas:
    """(T, K) labels painted bout by bout from times in seconds (less ``offset``), and
    which frames some bout covered (the others may be left unlabelled)."""

    def __init__(
        self,
        path: Path,
        n_behaviors: int,
        columns: dict[str, int | None],
        n_frames: int,
        fps: float,
        offset: float = 0.0,
    ):
        self.path, self.columns, self.n_frames, self.fps = path, columns, n_frames, fps
        self.offset = offset
        self._array = np.zeros((n_frames, n_behaviors), dtype=np.int8)
        self._covered = np.zeros(n_frames, dtype=bool)

    def frame(self, lineno: int, seconds: float, stop: bool) -> int:
        """The frame of a time on line ``lineno``; a stop may be the frame past the end."""
        f = seconds_to_frame(seconds - self.offset, self.fps)
        n = self.n_frames
        if f < 0 or f > n or (f == n and not stop):
            end = frame_to_seconds(n, self.fps)
            into = f" ({seconds - self.offset:g} s into the video)" if self.offset else ""
            raise LabelError(
                f"line {lineno}: time {seconds:g} s{into} is outside the video "
                f"(0 to {end:g} s, {n} frames at {self.fps:g} fps)",
                self.path,
            )
        return f

    def mark(self, name: str, start: int, stop: int) -> None:
        """Frames ``[start, stop)`` are ``name`` (a bout shorter than a frame: one frame)."""
        stop = min(max(stop, start + 1), self.n_frames)
        self._covered[start:stop] = True
        k = self.columns[name]
        if k is not None:
            self._array[start:stop, k] = 1

    def array(self, unlabeled_outside_bouts: bool) -> np.ndarray:
        if unlabeled_outside_bouts:
            self._array[~self._covered] = -1
        return self._array


def read_events(
    path: Path,
    rows: list[list[str]],
    behaviors: list[str],
    n_frames: int,
    fps: float,
    subject: str | None,
    mapping: dict[str, str],
    unlabeled_outside_bouts: bool,
) -> BorisLabels:
    """(T, K) labels from a tabular events export (see the module docstring)."""
    h = events_header(rows)
    assert h is not None
    header = [c.strip() for c in rows[h]]
    col = {name: header.index(name) for name in header if name}
    status_col = col[next(c for c in _STATUS_COLUMNS if c in col)]
    # (line, subject, behaviour, status, seconds, modifier text) of every data row
    events = []
    for i, row in enumerate(rows[h + 1 :], start=h + 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise LabelError(f"line {i} has {len(row)} fields, the header has {len(header)}", path)
        status = row[status_col].strip().upper()
        if status not in _STATUSES:
            raise LabelError(
                f"line {i}: behaviour type {row[status_col].strip()!r} is not START, STOP or POINT",
                path,
            )
        subj = row[col["Subject"]].strip() if "Subject" in col else ""
        modifiers = "".join(
            row[j].strip() for name, j in col.items() if name.startswith("Modifier")
        )
        time = _seconds(path, row[col["Time"]], i, "time")
        events.append(
            (i, subj or NO_FOCAL_SUBJECT, row[col["Behavior"]].strip(), status, time, modifiers)
        )
    if not events:
        raise LabelError("holds no events", path)
    notes: list[str] = []
    obs_col = col.get("Observation id")
    observations = sorted(
        {rows[e[0] - 1][obs_col].strip() for e in events} - {""} if obs_col is not None else set()
    )
    if len(observations) > 1:
        raise LabelError(
            f"holds several observations ({', '.join(observations)}): export each to its own "
            "file in BORIS",
            path,
        )
    chosen = _choose_subject(path, list(dict.fromkeys(e[1] for e in events)), subject)
    events = [e for e in events if e[1] == chosen]
    names = list(dict.fromkeys(e[2] for e in events))
    columns, name_notes = _resolve_names(path, names, behaviors, mapping)
    notes += name_notes
    offset = 0.0
    if "Time offset (s)" in col:  # BORIS adds the offset to the media time of every event
        offset_text = rows[events[0][0] - 1][col["Time offset (s)"]]
        try:
            offset = float(offset_text or 0)
        except ValueError:
            offset = 0.0
        if offset:
            notes.append(f"time offset {offset:g} s subtracted from every event")
    if "FPS" in col:
        notes += fps_notes(rows[events[0][0] - 1][col["FPS"]], fps)
    with_modifiers = sum(bool(e[5]) for e in events)
    if with_modifiers:
        notes.append(f"modifiers ignored ({with_modifiers} events carry some)")

    canvas = FrameCanvas(path, len(behaviors), columns, n_frames, fps, offset)
    open_at: dict[str, tuple[int, int]] = {}  # behaviour -> (line, start frame) of its START
    for lineno, _, name, status, seconds, _ in events:
        if status == "POINT":
            f = canvas.frame(lineno, seconds, stop=False)
            canvas.mark(name, f, f + 1)
        elif status == "START":
            if name in open_at:
                raise LabelError(
                    f"line {lineno}: START of {name!r} while its START on line "
                    f"{open_at[name][0]} has no STOP yet",
                    path,
                )
            open_at[name] = (lineno, canvas.frame(lineno, seconds, stop=False))
        else:
            if name not in open_at:
                raise LabelError(f"line {lineno}: STOP of {name!r} without a START", path)
            _, start = open_at.pop(name)
            canvas.mark(name, start, canvas.frame(lineno, seconds, stop=True))
    if open_at:
        name, (lineno, _) = next(iter(open_at.items()))
        raise LabelError(f"line {lineno}: START of {name!r} has no STOP", path)
    return BorisLabels(Labels(list(behaviors), canvas.array(unlabeled_outside_bouts)), notes)


_MODIFIER_SUFFIX = re.compile(r"^(.*\S) \((.*)\)$")


def read_binary(
    path: Path,
    rows: list[list[str]],
    behaviors: list[str],
    n_frames: int,
    fps: float,
    mapping: dict[str, str],
) -> BorisLabels:
    """(T, K) labels from a behaviors binary table (see the module docstring)."""
    header = [c.strip() for c in rows[0]]
    data = [(i, r) for i, r in enumerate(rows[1:], start=2) if any(c.strip() for c in r)]
    if not data:
        raise LabelError("holds no rows", path)
    notes: list[str] = []
    # "groom (left paw)": BORIS's column for a behaviour with a modifier; folded into groom
    bases, folded = [], []
    for name in header[1:]:
        m = _MODIFIER_SUFFIX.match(name)
        if m and name not in mapping and name not in behaviors:
            bases.append(m.group(1))
            folded.append(name)
        else:
            bases.append(name)
    if folded:
        notes.append(f"modifiers folded into their behaviour: {', '.join(folded)}")
    columns, name_notes = _resolve_names(path, list(dict.fromkeys(bases)), behaviors, mapping)
    notes += name_notes
    times = np.empty(len(data))
    values = np.zeros((len(data), len(bases)), dtype=bool)
    for j, (lineno, row) in enumerate(data):
        if len(row) != len(header):
            raise LabelError(
                f"line {lineno} has {len(row)} fields, the header has {len(header)}", path
            )
        times[j] = _seconds(path, row[0], lineno, "time")
        for c, text in enumerate(row[1:]):
            try:
                v = float(text)
            except ValueError:
                v = math.nan
            if not (math.isfinite(v) and v >= 0):
                raise LabelError(
                    f"line {lineno}, column {header[c + 1]!r}: value {text.strip()!r} is not "
                    "0/1 or a count",
                    path,
                )
            values[j, c] = v > 0
    step = float(times[1] - times[0]) if len(times) > 1 else frame_to_seconds(1, fps)
    if step <= 0 or not np.allclose(np.diff(times), step, rtol=1e-6, atol=1e-6):
        raise LabelError("the time column does not advance by a fixed step", path)
    # the row that holds when a frame starts is the last one at or before it
    frame_times = frame_to_seconds(np.arange(n_frames), fps)
    row_of = np.floor((frame_times - times[0]) / step + 1e-6).astype(np.int64)
    inside = (row_of >= 0) & (row_of < len(times))
    array = np.full((n_frames, len(behaviors)), -1, dtype=np.int8)
    array[inside] = 0
    for c, base in enumerate(bases):
        k = columns[base]
        if k is not None:
            hit = inside.copy()
            hit[inside] = values[row_of[inside], c]
            array[hit, k] = 1
    if not inside.all():
        notes.append(f"{int((~inside).sum())} frames outside the table left unlabelled")
    return BorisLabels(Labels(list(behaviors), array), notes)
