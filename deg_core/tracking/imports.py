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

A frame absent from the file is unknown (NaN; :meth:`AnimalTracks.found` says which).
Refused, each with one line naming the file (:class:`~deg_core.errors.DegError`): more
animals at once than the video has (naming the frame), frames past the video's end, a file
made for a video of another length, size or fps (where the file says), an unknown animal id.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from deg_core.errors import DegError
from deg_core.tracking.animals import AnimalTracks

__all__ = ["FORMATS", "LIKELIHOOD", "TrackImportError", "detect_format", "read_tracks"]

FORMATS = ("auto", "sleap", "dlc", "csv")
LIKELIHOOD = 0.5  # DeepLabCut: a bodypart below this is missing (DLC's own pcutoff default)
SLEAP_INSTALL = "uv sync --extra tracks (or pip install 'deg[tracks]')"
log = logging.getLogger("deg_core.tracking")
_DLC_LEVELS = ("scorer", "individuals", "bodyparts", "coords")
_EDGE = 0.05  # positions this far (share of the frame) outside it: made for another video


class TrackImportError(DegError):
    """A track file that cannot be read, or that does not fit the video."""


@dataclass
class _Points:
    """Per-frame detections before they become columns: frame, track label, centre, box."""

    frame: np.ndarray  # (K,) int
    track: list[Any]  # (K,) a label per detection (None: untracked)
    xy: np.ndarray  # (K, 2)
    wh: np.ndarray  # (K, 2)


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
                    _pandas_table(h5[k]) is not None for k in h5 if isinstance(h5[k], h5py.Group)
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
        points, file_names = _read_sleap(path, n_frames, n_animals, frame_size, fps)
    elif kind == "dlc":
        points, file_names = _read_dlc(path)
    else:
        points, file_names = _read_plain(path, n_animals, names)
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


def _check_frames(path: Path, points: _Points, n_frames: int) -> None:
    if len(points.frame) and int(points.frame.min()) < 0:
        raise TrackImportError(f"negative frame number {int(points.frame.min())}", path)
    if len(points.frame) and int(points.frame.max()) >= n_frames:
        last = int(points.frame.max())
        raise TrackImportError(
            f"tracks reach frame {last} but the video has {n_frames} frames (0..{n_frames - 1})"
            ": a track file for another video?",
            path,
        )


def _check_inside(path: Path, points: _Points, width: int, height: int) -> None:
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
    path: Path, points: _Points, n_animals: int, file_names: list[str]
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


# ------------------------------------------------------------------------------ SLEAP


def _sleap_io() -> Any:
    try:
        import sleap_io
    except ImportError:
        raise TrackImportError(
            f"reading SLEAP files needs sleap-io: install it with {SLEAP_INSTALL}"
        ) from None
    return sleap_io


def _read_sleap(
    path: Path, n_frames: int, n_animals: int, frame_size: tuple[int, int], fps: float | None
) -> tuple[_Points, list[str]]:
    sio = _sleap_io()
    try:
        if path.suffix.lower() == ".slp":
            labels = sio.load_slp(str(path), open_videos=False)
        else:
            labels = sio.load_analysis_h5(str(path))
    except Exception as e:  # sleap-io raises whatever h5py or its parser does
        raise TrackImportError(f"unreadable SLEAP file ({type(e).__name__}: {e})", path) from None
    if len(labels.videos) > 1:
        raise TrackImportError(
            f"holds tracks of {len(labels.videos)} videos; export one video's file", path
        )
    if labels.videos:
        _check_sleap_video(path, labels.videos[0], n_frames, frame_size, fps)
    frames, tracks, xys, whs = [], [], [], []
    dropped, frames_dropped = 0, 0
    for lf in labels.labeled_frames:
        # SLEAP predicts spurious extra instances (the real two-fly file has them in 66
        # frames): keep the animals' count of best-scored ones, user-labelled ones first
        found = [inst for inst in lf.instances if not np.isnan(inst.numpy()[:, :2]).all()]
        found.sort(key=lambda inst: -float(getattr(inst, "score", math.inf) or 0.0))
        if len(found) > n_animals:
            dropped += len(found) - n_animals
            frames_dropped += 1
        for inst in found[:n_animals]:
            pts = np.asarray(inst.numpy(), np.float64)[:, :2]
            pts = pts[~np.isnan(pts).any(axis=1)]
            frames.append(int(lf.frame_idx))
            tracks.append(inst.track.name if inst.track is not None else None)
            xys.append(pts.mean(axis=0))
            whs.append(pts.max(axis=0) - pts.min(axis=0))
    if dropped:
        log.warning(
            "%s: %d frame(s) held more instances than the video's %d animals: kept the "
            "best-scored, left out %d",
            path,
            frames_dropped,
            n_animals,
            dropped,
        )
    return _points(frames, tracks, xys, whs), [t.name for t in labels.tracks]


def _check_sleap_video(
    path: Path, video: Any, n_frames: int, frame_size: tuple[int, int], fps: float | None
) -> None:
    """What the file says of its video: its frame count and size (when sleap-io knows them
    without opening the video) and fps, against this video's."""
    shape = video.shape or video.backend_metadata.get("shape")
    if shape is not None and len(shape) >= 3:
        frames, height, width = (int(v) for v in shape[:3])
        if frames != n_frames:
            raise TrackImportError(
                f"made for a video of {frames} frames, this one has {n_frames}", path
            )
        if (height, width) != tuple(frame_size):
            raise TrackImportError(
                f"made for a {width}x{height} video, this one is {frame_size[1]}x{frame_size[0]}",
                path,
            )
    file_fps = getattr(video, "fps", None) or video.backend_metadata.get("fps")
    if file_fps and fps and abs(float(file_fps) - float(fps)) > 0.01 * float(fps):
        raise TrackImportError(f"made for a {file_fps:g} fps video, this one has {fps:g}", path)


# ------------------------------------------------------------------------------ DeepLabCut


class _PlainUnpickler(pickle.Unpickler):
    """Reads pandas' column index (lists, tuples, text, numbers) and nothing else: a class
    or function in the pickle is refused, so a crafted file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a track file")


def _plain_unpickle(raw: Any) -> Any:
    data = raw.tobytes() if isinstance(raw, np.ndarray) else bytes(raw)
    return _PlainUnpickler(io.BytesIO(data)).load()


def _pandas_table(group: h5py.Group) -> h5py.Dataset | None:
    table = group.get("table")
    if isinstance(table, h5py.Dataset) and group.attrs.get("pandas_type") == b"frame_table":
        return table
    return None


def _dlc_columns_from_h5(path: Path) -> tuple[np.ndarray, np.ndarray, list[tuple[str, ...]]]:
    """(frames, values (T, C), column tuples) of a DLC predictions .h5 (pandas table)."""
    try:
        with h5py.File(path, "r") as h5:
            group = h5.get("df_with_missing")
            if group is None:
                group = next(h5[k] for k in h5 if _pandas_table(h5[k]) is not None)
            table = _pandas_table(group)
            if table is None:
                raise TrackImportError("not a pandas table (DeepLabCut's format)", path)
            rows = table[()]
            blocks = [str(v) for v in _plain_unpickle(group.attrs["values_cols"])]
            frames = np.asarray(rows["index"])
            values, columns = [], []
            for block in blocks:
                kind = _plain_unpickle(table.attrs[f"{block}_kind"])
                values.append(np.asarray(rows[block], np.float64).reshape(len(rows), -1))
                columns += [tuple(str(c) for c in col) for col in kind]
    except (OSError, KeyError, StopIteration, pickle.UnpicklingError, ValueError) as e:
        raise TrackImportError(
            f"unreadable DeepLabCut .h5 ({type(e).__name__}: {e})", path
        ) from None
    if frames.dtype.kind not in "iu":  # labelled-data files: image paths, not predictions
        raise TrackImportError(
            "rows are not frame numbers (a DeepLabCut labelled-data file, not predictions?)", path
        )
    return frames.astype(np.int64), np.concatenate(values, axis=1), columns


def _dlc_columns_from_csv(path: Path) -> tuple[np.ndarray, np.ndarray, list[tuple[str, ...]]]:
    rows = _csv_rows(path)
    header = []
    while rows and rows[0] and rows[0][0].strip().lower() in _DLC_LEVELS:
        header.append(rows.pop(0))
    levels = [h[0].strip().lower() for h in header]
    if levels not in (["scorer", "bodyparts", "coords"], list(_DLC_LEVELS)):
        raise TrackImportError(
            f"DeepLabCut header rows are {levels}, expected scorer, [individuals,] bodyparts, "
            "coords",
            path,
        )
    index_name_row = rows and rows[0] and rows[0][0].strip().lower() in ("", "frame", "index")
    if index_name_row and all(c.strip() == "" for c in rows[0][1:]):  # pandas' index name
        rows.pop(0)
    columns = list(zip(*(h[1:] for h in header), strict=False))
    try:
        frames = np.array([int(r[0]) for r in rows], np.int64)
        values = np.array(
            [[float(v) if v.strip() else math.nan for v in r[1 : len(columns) + 1]] for r in rows],
            np.float64,
        ).reshape(len(rows), len(columns))
    except ValueError as e:
        raise TrackImportError(
            f"DeepLabCut rows must be a frame number and numbers ({e}; a labelled-data file, "
            "not predictions?)",
            path,
        ) from None
    return frames, values, [tuple(c.strip() for c in col) for col in columns]


def _read_dlc(path: Path) -> tuple[_Points, list[str]]:
    if path.suffix.lower() in (".h5", ".hdf5"):
        frames, values, columns = _dlc_columns_from_h5(path)
    else:
        frames, values, columns = _dlc_columns_from_csv(path)
    if not columns or len(columns[0]) not in (3, 4):
        raise TrackImportError(
            "DeepLabCut columns must be scorer, [individual,] bodypart, coord", path
        )
    multi = len(columns[0]) == 4
    # individual -> bodypart -> coord -> column
    table: dict[str, dict[str, dict[str, int]]] = {}
    for c, col in enumerate(columns):
        who, part, coord = (col[1], col[2], col[3]) if multi else ("animal0", col[1], col[2])
        table.setdefault(who, {}).setdefault(part, {})[coord.lower()] = c
    ff, tracks, xys, whs = [], [], [], []
    for who, parts in table.items():
        xs, ys = [], []
        for part, coords in parts.items():
            if "x" not in coords or "y" not in coords:
                raise TrackImportError(f"bodypart {part!r} of {who!r} has no x and y columns", path)
            x, y = values[:, coords["x"]].copy(), values[:, coords["y"]].copy()
            if "likelihood" in coords:
                low = ~(values[:, coords["likelihood"]] >= LIKELIHOOD)
                x[low], y[low] = np.nan, np.nan
            xs.append(x)
            ys.append(y)
        px, py = np.stack(xs, 1), np.stack(ys, 1)  # (T, parts)
        seen = ~(np.isnan(px) | np.isnan(py))
        known = seen.any(axis=1)
        px, py = np.where(seen, px, np.nan), np.where(seen, py, np.nan)
        with np.errstate(invalid="ignore"):
            cx, cy = np.nanmean(px[known], 1), np.nanmean(py[known], 1)
            w = np.nanmax(px[known], 1) - np.nanmin(px[known], 1)
            h = np.nanmax(py[known], 1) - np.nanmin(py[known], 1)
        ff += frames[known].tolist()
        tracks += [who] * int(known.sum())
        xys += list(np.stack([cx, cy], 1))
        whs += list(np.stack([w, h], 1))
    return _points(ff, tracks, xys, whs), list(table)


# ------------------------------------------------------------------------------ plain CSV


def _read_plain(
    path: Path, n_animals: int, names: Sequence[str] | None
) -> tuple[_Points, list[str]]:
    rows = _csv_rows(path)
    if not rows:
        raise TrackImportError("empty track file", path)
    head = [h.strip().lower() for h in rows[0]]
    if head[:4] != ["frame", "animal", "x", "y"] or head[4:] not in ([], ["w", "h"]):
        raise TrackImportError(
            f"columns must be frame,animal,x,y[,w,h], got {','.join(head)}", path
        )
    ids: list[str] = [r[1].strip() for r in rows[1:] if r]
    known = list(names) if names else []
    numeric = all(i.lstrip("-").isdigit() for i in ids)
    if numeric:
        out_names = known if len(known) == n_animals else [f"animal{a}" for a in range(n_animals)]
    elif known:
        out_names = known
    else:  # names in the order they first appear
        out_names = list(dict.fromkeys(ids))[: n_animals + 1]
        if len(out_names) > n_animals:
            raise TrackImportError(
                f"animal {out_names[-1]!r} is one more than the video's {n_animals}", path
            )
        out_names += [f"animal{a}" for a in range(len(out_names), n_animals)]
    frames, tracks, xys, whs = [], [], [], []
    for line, r in enumerate(rows[1:], start=2):
        if not r or all(not c.strip() for c in r):
            continue
        if len(r) != len(head):
            raise TrackImportError(f"line {line} has {len(r)} values, expected {len(head)}", path)
        who = r[1].strip()
        if numeric and 0 <= int(who) < n_animals:
            col = int(who)
        elif who in out_names:
            col = out_names.index(who)
        else:
            expected = f"0..{n_animals - 1}"
            if known:
                expected += f" or one of {', '.join(out_names)}"
            raise TrackImportError(f"line {line}: animal {who!r} is not {expected}", path)
        try:
            frame = int(r[0])
            vals = [float(v) if v.strip() else math.nan for v in r[2:]]
        except ValueError:
            raise TrackImportError(
                f"line {line}: frame and positions must be numbers", path
            ) from None
        frames.append(frame)
        tracks.append(col)
        xys.append(vals[:2])
        whs.append(vals[2:4] if len(vals) == 4 else [math.nan, math.nan])
    points = _points(frames, tracks, xys, whs)
    if len(points.frame):
        pairs = points.frame * n_animals + np.asarray(tracks, np.int64)
        uniq, counts = np.unique(pairs, return_counts=True)
        if (counts > 1).any():
            dup = int(uniq[counts > 1][0])
            raise TrackImportError(
                f"frame {dup // n_animals} lists animal {out_names[dup % n_animals]} twice", path
            )
    return points, out_names


# ------------------------------------------------------------------------------ helpers


def _points(frames: list, tracks: list, xys: list, whs: list) -> _Points:
    n = len(frames)
    keep = [i for i in range(n) if not np.isnan(np.asarray(xys[i], np.float64)).any()]
    return _Points(
        np.asarray([frames[i] for i in keep], np.int64).reshape(-1),
        [tracks[i] for i in keep],
        np.asarray([xys[i] for i in keep], np.float64).reshape(-1, 2),
        np.asarray([whs[i] for i in keep], np.float64).reshape(-1, 2),
    )


def _csv_rows(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return [r for r in csv.reader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TrackImportError(f"unreadable CSV ({e})", path) from None


def _first_cell(path: Path) -> str:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            row = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TrackImportError(f"unreadable CSV ({e})", path) from None
    return row[0].strip() if row else ""
