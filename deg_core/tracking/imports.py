"""Animal tracks from the files labs already have: SLEAP, DeepLabCut, a plain CSV.

:func:`read_tracks` reads one file into :class:`~deg_core.tracking.animals.AnimalTracks`
for one video (its frame count, number of animals, frame size and fps):

* SLEAP ``.slp`` (predictions or labels) and SLEAP analysis ``.h5``, through sleap-io
  (``uv sync --extra tracks`` / ``pip install deg[tracks]``). An animal's centre is the mean
  of its visible nodes, its box the nodes' extent. SLEAP's track ids fragment (a new id
  after animals touch), so the fragments are joined onto the video's animals greedily by
  continuity: a fragment continues the animal last seen nearest to where it starts.
* DeepLabCut predictions, ``.h5`` (pandas' table format, read with h5py: its column index
  is a pickle of plain lists and tuples, read with an unpickler that loads no classes) and
  ``.csv``: header rows scorer, [individuals,] bodyparts, coords (x, y, likelihood). A
  bodypart with likelihood < 0.5 counts as missing; an animal's centre is the mean of its
  bodyparts. Each DLC individual is one animal.
* A plain CSV ``frame,animal,x,y[,w,h]``: ``animal`` is 0..N-1 or a name.

Each format has its reader module (:mod:`~deg_core.tracking.import_sleap`,
:mod:`~deg_core.tracking.import_dlc`, :mod:`~deg_core.tracking.import_csv`); this one picks
the reader, checks what it read against the video and joins track fragments into animals.

A frame absent from the file is unknown (NaN; :meth:`AnimalTracks.found` says which).
Refused, each with one line naming the file (:class:`~deg_core.errors.DegError`): more
animals at once than the video has (naming the frame), frames past the video's end, a file
made for a video of another length, size or fps (where the file says), an unknown animal id.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from deg_core.tracking.animals import AnimalTracks
from deg_core.tracking.import_common import Points, TrackImportError
from deg_core.tracking.import_csv import read_plain
from deg_core.tracking.import_dlc import LIKELIHOOD, pandas_table, read_dlc
from deg_core.tracking.import_sleap import SLEAP_INSTALL as SLEAP_INSTALL  # defined here once
from deg_core.tracking.import_sleap import log as log
from deg_core.tracking.import_sleap import read_sleap

__all__ = ["FORMATS", "LIKELIHOOD", "TrackImportError", "detect_format", "read_tracks"]

FORMATS = ("auto", "sleap", "dlc", "csv")
_EDGE = 0.05  # positions this far (share of the frame) outside it: made for another video


# ------------------------------------------------------------------------------ entry


def detect_format(path: Path) -> str:
    """sleap, dlc or csv, from the file's suffix and first bytes."""
    suffix = path.suffix.lower()
    if suffix == ".slp":
        return "sleap"
    if suffix in (".h5", ".hdf5"):
        try:
            with h5py.File(path, "r") as h5:
                if "tracks" in h5 and "track_occupancy" in h5:
                    return "sleap"
                if any(
                    pandas_table(h5[k]) is not None for k in h5 if isinstance(h5[k], h5py.Group)
                ):
                    return "dlc"
        except OSError as e:
            raise TrackImportError(f"not an HDF5 file ({e})", path) from None
        raise TrackImportError(
            "an HDF5 file that is neither a SLEAP analysis file nor DeepLabCut predictions", path
        )
    if suffix == ".csv":
        first = _first_cell(path)
        return "dlc" if first.lower() == "scorer" else "csv"
    raise TrackImportError(
        "unknown track file type (SLEAP .slp/.h5, DeepLabCut .h5/.csv, or a CSV "
        "frame,animal,x,y); choose one with --format",
        path,
    )


def read_tracks(
    path: str | Path,
    *,
    n_frames: int,
    n_animals: int,
    frame_size: tuple[int, int],
    fps: float | None = None,
    format: str = "auto",
    names: Sequence[str] | None = None,
) -> AnimalTracks:
    """Read a track file for a video of ``n_frames`` frames, ``n_animals`` animals,
    ``frame_size`` (height, width) and ``fps``.

    ``format``: auto (from the file), sleap, dlc or csv. ``names``: the video's animal names
    where it has them (a plain CSV may use them as ids).

    Raises:
        TrackImportError: one line naming the file and the problem.
    """
    path = Path(path)
    if format not in FORMATS:
        raise TrackImportError(f"unknown format {format!r} (choose from {', '.join(FORMATS)})")
    if not path.is_file():
        raise TrackImportError("no such track file", path)
    if n_animals < 1 or n_frames < 1:
        raise ValueError(f"need n_animals, n_frames >= 1, got {n_animals}, {n_frames}")
    kind = detect_format(path) if format == "auto" else format
    height, width = frame_size
    if kind == "sleap":
        points, file_names = read_sleap(path, n_frames, n_animals, frame_size, fps)
    elif kind == "dlc":
        points, file_names = read_dlc(path)
    else:
        points, file_names = read_plain(path, n_animals, names)
    _check_frames(path, points, n_frames)
    _check_inside(path, points, width, height)
    if kind == "csv":  # ids are the animals
        columns = np.asarray(points.track, np.int64)
        out_names = file_names
    else:
        columns, out_names = _assign(path, points, n_animals, file_names)
    center = np.full((n_frames, n_animals, 2), np.nan, np.float32)
    extent = np.full((n_frames, n_animals, 2), np.nan, np.float32)
    if len(columns):
        center[points.frame, columns] = points.xy
        extent[points.frame, columns] = points.wh
    return AnimalTracks(center, extent, out_names, kind, (int(height), int(width)))


# ------------------------------------------------------------------------------ checks


def _check_frames(path: Path, points: Points, n_frames: int) -> None:
    if len(points.frame) and int(points.frame.min()) < 0:
        raise TrackImportError(f"negative frame number {int(points.frame.min())}", path)
    if len(points.frame) and int(points.frame.max()) >= n_frames:
        last = int(points.frame.max())
        raise TrackImportError(
            f"tracks reach frame {last} but the video has {n_frames} frames (0..{n_frames - 1})"
            ": a track file for another video?",
            path,
        )


def _check_inside(path: Path, points: Points, width: int, height: int) -> None:
    if not len(points.xy):
        return
    x, y = points.xy[:, 0], points.xy[:, 1]
    mx, my = _EDGE * width, _EDGE * height
    out = (x < -mx) | (x > width + mx) | (y < -my) | (y > height + my)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise TrackImportError(
            f"position ({x[i]:.0f}, {y[i]:.0f}) in frame {int(points.frame[i])} lies outside "
            f"the video's {width}x{height} frame: a track file for another video?",
            path,
        )


def _too_many(path: Path, frame: int, count: int, n_animals: int) -> TrackImportError:
    return TrackImportError(
        f"frame {frame} holds {count} animals at once but the video has {n_animals} "
        "(project.animals / project.animals_per_video; or remove the extra instances)",
        path,
    )


# ------------------------------------------------------------------------------ identities


def _assign(
    path: Path, points: Points, n_animals: int, file_names: list[str]
) -> tuple[np.ndarray, list[str]]:
    """Each detection's animal column: a track label keeps its animal; a new label goes to
    the free animal last seen nearest (one never seen yet is free and far)."""
    order = np.argsort(points.frame, kind="stable")
    columns = np.full(len(points.frame), -1, np.int64)
    owner: dict[Any, int] = {}  # track label -> animal
    last = np.full((n_animals, 2), np.nan)
    labels_of: list[set[Any]] = [set() for _ in range(n_animals)]
    starts = np.flatnonzero(np.r_[True, np.diff(points.frame[order]) != 0])
    bounds = np.r_[starts, len(order)]
    for s, e in itertools.pairwise(bounds):
        idx = order[s:e]
        frame = int(points.frame[idx[0]])
        if len(idx) > n_animals:
            raise _too_many(path, frame, len(idx), n_animals)
        taken: set[int] = set()
        pending: list[int] = []
        for i in idx:
            a = owner.get(points.track[i]) if points.track[i] is not None else None
            if a is not None and a not in taken:
                columns[i] = a
                taken.add(a)
            else:
                pending.append(int(i))
        free = [a for a in range(n_animals) if a not in taken]
        pairs = []
        for i in pending:
            for a in free:
                d = np.hypot(*(points.xy[i] - last[a]))
                pairs.append((math.inf if np.isnan(d) else float(d), a, i))
        pairs.sort(key=lambda p: (p[0], p[1]))
        done: set[int] = set()
        for _, a, i in pairs:
            if i in done or a in taken:
                continue
            columns[i] = a
            taken.add(a)
            done.add(i)
            label = points.track[i]
            if label is not None:
                for old in [k for k, v in owner.items() if v == a]:
                    del owner[old]
                owner[label] = a
        for i in idx:
            last[columns[i]] = points.xy[i]
            labels_of[columns[i]].add(points.track[i])
    # a file whose labels map one to one onto the animals keeps its names
    names = [f"animal{a}" for a in range(n_animals)]
    for a, labels in enumerate(labels_of):
        if len(labels) == 1:
            (label,) = labels
            if label is not None and str(label) not in names:
                names[a] = str(label)
    if len(set(names)) != n_animals:
        names = [f"animal{a}" for a in range(n_animals)]
    del file_names
    return columns, names


def _first_cell(path: Path) -> str:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            row = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TrackImportError(f"unreadable CSV ({e})", path) from None
    return row[0].strip() if row else ""
