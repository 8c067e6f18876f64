"""DeepLabCut predictions, ``.h5`` (pandas' table format) and ``.csv``.

The ``.h5`` is read with h5py: its column index is a pickle of plain lists and tuples,
read with an unpickler that loads no classes. Header rows scorer, [individuals,]
bodyparts, coords (x, y, likelihood); a bodypart with likelihood < LIKELIHOOD counts as
missing; an animal's centre is the mean of its bodyparts. Each individual is one animal.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from deg_core.tracking.import_common import Points, TrackImportError, csv_rows, to_points

__all__ = ["LIKELIHOOD", "pandas_table", "read_dlc"]

LIKELIHOOD = 0.5  # DeepLabCut: a bodypart below this is missing (DLC's own pcutoff default)
_DLC_LEVELS = ("scorer", "individuals", "bodyparts", "coords")


class _PlainUnpickler(pickle.Unpickler):
    """Reads pandas' column index (lists, tuples, text, numbers) and nothing else: a class
    or function in the pickle is refused, so a crafted file cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a track file")


def _plain_unpickle(raw: Any) -> Any:
    data = raw.tobytes() if isinstance(raw, np.ndarray) else bytes(raw)
    return _PlainUnpickler(io.BytesIO(data)).load()


def pandas_table(group: h5py.Group) -> h5py.Dataset | None:
    """The group's pandas table (how DeepLabCut writes its .h5), or None."""
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
                group = next(h5[k] for k in h5 if pandas_table(h5[k]) is not None)
            table = pandas_table(group)
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
    rows = csv_rows(path)
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


def read_dlc(path: Path) -> tuple[Points, list[str]]:
    """The file's detections (one per individual and frame) and its individuals' names."""
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
    return to_points(ff, tracks, xys, whs), list(table)
