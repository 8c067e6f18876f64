"""Bouts (runs of frames where a behaviour is present) and bout tables.

A bout is a half-open frame interval ``(start, stop)``: frames ``start, ..., stop - 1``.
Half-open intervals make ``stop - start`` the length, let adjacent bouts share an
endpoint without overlapping, and match Python slicing (``v[start:stop]``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from deg_core.errors import LabelError
from deg_core.fileio import atomic_open

# bout-table column synonyms, compared lower-cased; the first match wins
_START_NAMES = ("start",)
_STOP_NAMES = ("stop", "end")
_BEHAVIOR_NAMES = ("behavior", "behaviour", "label", "class")
# a bout table's optional column naming the animal of each bout (several animals per video)
ANIMAL_COLUMN_NAMES = ("animal", "subject", "individual")


def bouts_from_vector(v: np.ndarray) -> list[tuple[int, int]]:
    """Runs of ``v == 1`` as half-open ``(start, stop)`` pairs, in frame order.

    ``v``: (T,) per-frame values (1 present; anything else, including -1, is not a bout).
    """
    v = np.asarray(v)
    if v.ndim != 1:
        raise ValueError(f"expected a 1-D vector, got shape {v.shape}")
    # pad with "absent" on both sides so runs touching frame 0 or frame T-1 still have two edges
    present = np.concatenate(([False], v == 1, [False]))
    edges = np.flatnonzero(np.diff(present.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def vector_from_bouts(bouts: Iterable[tuple[int, int]], n_frames: int, fill: int = 0) -> np.ndarray:
    """(T,) int8 vector: 1 inside any bout, ``fill`` (0 absent, or -1 unlabeled) elsewhere.

    Overlapping bouts are merged. Raises ValueError for a bout outside ``[0, n_frames]``
    or with ``stop <= start``.
    """
    if fill not in (0, -1):
        raise ValueError(f"fill must be 0 or -1, got {fill}")
    v = np.full(int(n_frames), fill, dtype=np.int8)
    for start, stop in bouts:
        if not 0 <= start < stop <= n_frames:
            raise ValueError(
                f"bout ({start}, {stop}) is not within 0 <= start < stop <= {n_frames}"
            )
        v[start:stop] = 1
    return v


def bout_table(array: np.ndarray, behaviors: Sequence[str]) -> list[dict]:
    """Every bout of ``array`` (T, K) as ``{"behavior", "start", "stop"}`` (stop exclusive),
    sorted by start then behaviour order."""
    rows = [
        (start, k, stop)
        for k in range(len(behaviors))
        for start, stop in bouts_from_vector(array[:, k])
    ]
    rows.sort()
    return [{"behavior": behaviors[k], "start": s, "stop": e} for s, k, e in rows]


def count_bouts(array: np.ndarray) -> np.ndarray:
    """(K,) int64: number of bouts (runs of 1) per column of ``array`` (T, K)."""
    present = np.asarray(array) == 1
    if present.shape[0] == 0:
        return np.zeros(present.shape[1], dtype=np.int64)
    rising = present[1:] & ~present[:-1]
    return (present[0] + rising.sum(axis=0)).astype(np.int64)


def write_bout_table(path: str | Path, array: np.ndarray, behaviors: Sequence[str]) -> None:
    """Atomically write :func:`bout_table` as CSV ``behavior,start,stop`` (stop exclusive);
    ``import_labels`` reads it back."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["behavior", "start", "stop"])
        rows = bout_table(array, behaviors)
        writer.writerows([r["behavior"], r["start"], r["stop"]] for r in rows)


def find_bout_columns(header: list[str]) -> tuple[int, int, int] | None:
    """Positions of the (start, stop, behaviour) columns if ``header`` is a bout table's.

    Case-insensitive; ``end`` is accepted for stop and ``behaviour``/``label``/``class``
    for behavior. None when any of the three is missing.
    """
    lower = [h.strip().lower() for h in header]
    found = []
    for synonyms in (_START_NAMES, _STOP_NAMES, _BEHAVIOR_NAMES):
        hits = [lower.index(s) for s in synonyms if s in lower]
        if not hits:
            return None
        found.append(hits[0])
    return found[0], found[1], found[2]


def find_animal_column(header: list[str]) -> int | None:
    """Position of a bout table's animal column (``animal``, ``subject`` or ``individual``,
    case-insensitive; the first of these found), else None."""
    lower = [h.strip().lower() for h in header]
    hits = [lower.index(s) for s in ANIMAL_COLUMN_NAMES if s in lower]
    return hits[0] if hits else None


def _parse_frame(text: str) -> int | None:
    """A frame index from '12' or '12.0'; None if not a whole number."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        f = float(text)
    except ValueError:
        return None
    return int(f) if f.is_integer() else None


def parse_bout_rows(
    path: Path,
    columns: tuple[int, int, int],
    rows: Iterable[tuple[int, list[str]]],
    behaviors: list[str],
    n_frames: int,
    unlabeled_outside_bouts: bool = False,
) -> np.ndarray:
    """(n_frames, K) int8 labels from bout-table ``rows``, (line, fields) pairs read one at a
    time (``columns`` from find_bout_columns).

    Frames ``start .. stop-1`` of each bout (stop EXCLUSIVE, 0-based) are 1 for its
    behaviour; other behaviours are 0 on frames some bout covers. Frames no bout covers
    are 0, or -1 with ``unlabeled_outside_bouts``. Raises one-line LabelError naming
    ``path`` and the line for unknown behaviours, non-integer frames, stop <= start or
    bouts outside ``[0, n_frames]``.
    """
    start_col, stop_col, behavior_col = columns
    array = np.zeros((n_frames, len(behaviors)), dtype=np.int8)
    covered = np.zeros(n_frames, dtype=bool)
    for lineno, row in rows:
        name = row[behavior_col].strip()
        if name not in behaviors:
            expected = ", ".join(behaviors) or "none"
            raise LabelError(
                f"line {lineno}: unknown behaviour {name!r} (expected: {expected})", path
            )
        bounds = []
        for col, what in ((start_col, "start"), (stop_col, "stop")):
            frame = _parse_frame(row[col])
            if frame is None:
                raise LabelError(
                    f"line {lineno}: {what} {row[col].strip()!r} is not a whole frame number", path
                )
            bounds.append(frame)
        start, stop = bounds
        if stop <= start:
            raise LabelError(
                f"line {lineno}: stop {stop} <= start {start} (stop is exclusive)", path
            )
        if start < 0 or stop > n_frames:
            raise LabelError(
                f"line {lineno}: bout {start}-{stop} is outside the video "
                f"(need 0 <= start < stop <= {n_frames}; stop is exclusive)",
                path,
            )
        array[start:stop, behaviors.index(name)] = 1
        covered[start:stop] = True
    if unlabeled_outside_bouts:
        array[~covered] = -1
    return array
