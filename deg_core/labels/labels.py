"""Per-frame behaviour labels and DeepEthogram's label CSV format.

On disk (DEG's ``*_labels.csv``, written by ``pandas.DataFrame.to_csv``)::

    ,background,groom,rear
    0,1,0,0
    1,0,1,-1

a header whose first field names the (unnamed) frame index, then one column per
class with ``background`` first, then one row per frame. Values: 1 present,
0 absent, -1 unlabeled.

In memory, :class:`Labels` stores only the K behaviours; background is derived
(1 where every behaviour is 0) so it can never disagree with them. Reading is
lenient about the variants older DEG versions and other tools wrote (floats such
as ``1.0``, ``none`` instead of ``background``, no background column, a named
index column, CRLF, a UTF-8 BOM); writing always produces the canonical form,
atomically. Every error about a file is one :class:`LabelError` line naming the file.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from deg_core.errors import LabelError
from deg_core.fileio import atomic_open
from deg_core.labels.bouts import (
    find_animal_column,
    find_bout_columns,
    parse_bout_rows,
)
from deg_core.labels.csv_stream import CsvStream

__all__ = [
    "BACKGROUND",
    "Labels",
    "import_bout_animals",
    "import_labels",
    "read_labels",
    "write_labels",
]

BACKGROUND = "background"
# older DEG projects called the background class "none"
_BACKGROUND_NAMES = (BACKGROUND, "none")
# header names of a frame-index column (compared lower-cased); pandas' "Unnamed: 0" is by prefix
_INDEX_NAMES = {"", "index", "frame", "frames", "frame_index", "frame_idx", "idx"}
_ROWS_PER_WRITE = 8192


def _check_names(names: list[str]) -> list[str]:
    """Validate behaviour names (unique, non-empty, no padding, not background); return a copy."""
    names = list(names)
    for name in names:
        if not isinstance(name, str) or not name or name != name.strip():
            raise LabelError(
                f"invalid behaviour name {name!r}: must be non-empty text without padding"
            )
        if name in _BACKGROUND_NAMES:
            raise LabelError(f"{name!r} is not a behaviour: background is derived, never stored")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise LabelError(f"duplicate behaviour name(s): {', '.join(map(repr, dupes))}")
    return names


def _check_array(array: np.ndarray, n_behaviors: int) -> np.ndarray:
    """(T, K) values in {1, 0, -1} as int8 (no copy when already int8)."""
    a = np.asarray(array)
    if a.ndim != 2 or a.shape[1] != n_behaviors:
        raise ValueError(f"label array must have shape (T, {n_behaviors}), got {a.shape}")
    # integers: min/max make no temporaries (isin makes int64 copies, 8x a long video's labels)
    if np.issubdtype(a.dtype, np.integer):
        bad = bool(a.size) and (a.min() < -1 or a.max() > 1)
    else:
        bad = bool(a.size) and not np.isin(a, (-1, 0, 1)).all()
    if bad:
        raise ValueError("label values must be 1 (present), 0 (absent) or -1 (unlabeled)")
    return a if a.dtype == np.int8 else a.astype(np.int8)


@dataclass(eq=False)
class Labels:
    """Per-frame labels. ``array``: (T, K) int8 over the K behaviours (background NOT
    stored; derived). 1 present, 0 absent, -1 unlabeled.

    Editing methods return new objects and never modify ``self``; ``array`` itself may
    be edited in place (e.g. by a labelling widget) as long as values stay in {1, 0, -1}.
    """

    behaviors: list[str]
    array: np.ndarray

    def __post_init__(self) -> None:
        self.behaviors = _check_names(self.behaviors)
        self.array = _check_array(self.array, len(self.behaviors))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Labels):
            return NotImplemented
        return self.behaviors == other.behaviors and np.array_equal(self.array, other.array)

    @classmethod
    def empty(cls, n_frames: int, behaviors: list[str]) -> Labels:
        """All frames unlabeled (-1): (n_frames, K)."""
        return cls(list(behaviors), np.full((int(n_frames), len(behaviors)), -1, dtype=np.int8))

    @property
    def n_frames(self) -> int:
        return int(self.array.shape[0])

    @property
    def class_names(self) -> list[str]:
        """``["background", *behaviors]``: the column order on disk and of model outputs."""
        return [BACKGROUND, *self.behaviors]

    def background(self) -> np.ndarray:
        """(T,) int8: 1 where every behaviour is 0; 0 where any is 1; -1 otherwise.

        "Otherwise" is: no behaviour present but some unlabeled, so background is unknown.
        With K == 0 every frame is background.
        """
        bg = np.full(self.n_frames, -1, dtype=np.int8)
        bg[(self.array == 0).all(axis=1)] = 1
        bg[(self.array == 1).any(axis=1)] = 0
        return bg

    def with_background(self) -> np.ndarray:
        """(T, K+1) int8 with background first: the on-disk column layout."""
        return np.concatenate([self.background()[:, None], self.array], axis=1)

    def labeled_fraction(self) -> np.ndarray:
        """(K,) float64: fraction of frames that are not -1, per behaviour (0 when T == 0)."""
        if self.n_frames == 0:
            return np.zeros(len(self.behaviors))
        return (self.array != -1).mean(axis=0)

    def add_behavior(self, name: str) -> Labels:
        """New labels with ``name`` appended as an all-unlabeled (-1) column."""
        column = np.full((self.n_frames, 1), -1, dtype=np.int8)
        return Labels([*self.behaviors, name], np.concatenate([self.array, column], axis=1))

    def remove_behavior(self, name: str) -> Labels:
        """New labels without the column ``name``."""
        k = self._index(name)
        return Labels(self.behaviors[:k] + self.behaviors[k + 1 :], np.delete(self.array, k, 1))

    def rename_behavior(self, old: str, new: str) -> Labels:
        """New labels with column ``old`` renamed to ``new`` (same position, same values)."""
        k = self._index(old)
        names = list(self.behaviors)
        names[k] = new
        return Labels(names, self.array.copy())

    def finalize(self) -> Labels:
        """New labels with unlabeled (-1) set to absent (0): "everything not marked is absent"."""
        return Labels(list(self.behaviors), np.where(self.array == -1, 0, self.array))

    def _index(self, name: str) -> int:
        if name not in self.behaviors:
            raise LabelError(f"no behaviour {name!r} (behaviours: {', '.join(self.behaviors)})")
        return self.behaviors.index(name)


# --------------------------------------------------------------------------- reading


def _parse_value(text: str) -> int | None:
    """1, 0 or -1 from '1', '-1', '1.0', '-1.0', ' 0 '...; None for anything else."""
    text = text.strip()
    if text in ("1", "0", "-1"):
        return int(text)
    try:
        f = float(text)
    except ValueError:
        return None
    return int(f) if f in (1.0, 0.0, -1.0) else None


def _describe_bad_value(text: str) -> str:
    text = text.strip()
    if not text:
        return "empty value, expected 1, 0 or -1"
    try:
        float(text)
        shown = text  # numbers read as in the file: "value 2"
    except ValueError:
        shown = repr(text)
    return f"value {shown} is not 1, 0 or -1"


def _parse_values(
    path: Path, rows: list[list[str]], lines: list[int], row0: int, first: int, columns: list[str]
) -> np.ndarray:
    """(R, C) int8 from the cells of columns ``first:`` of ``rows`` (frames ``row0``...),
    named ``columns``; the first bad cell is reported by line and column."""
    n_rows, n_cols = len(rows), len(columns)
    cells = np.array(rows, dtype=str).reshape(n_rows, first + n_cols)[:, first:]
    values = np.full((n_rows, n_cols), 2, dtype=np.int8)  # 2: not parsed yet
    for text, value in (("1", 1), ("0", 0), ("-1", -1)):  # fast path: canonical integers
        values[cells == text] = value
    rest = np.flatnonzero(values.reshape(-1) == 2)
    if rest.size:
        # parse each distinct leftover string ("1.0", " 0", "x") once
        uniq, inverse = np.unique(cells.reshape(-1)[rest], return_inverse=True)
        parsed = [_parse_value(u) for u in uniq.tolist()]
        bad = [i for i, p in enumerate(parsed) if p is None]
        if bad:
            r, c = divmod(int(rest[np.isin(inverse.reshape(-1), bad)][0]), n_cols)
            problem = _describe_bad_value(str(cells[r, c]))
            where = f"line {lines[r]} (frame {row0 + r}), column {columns[c]!r}"
            raise LabelError(f"{where}: {problem}", path)
        values.reshape(-1)[rest] = np.array(parsed, dtype=np.int8)[inverse.reshape(-1)]
    return values


def _has_index_column(header: list[str], rows: list[list[str]], known: set[str]) -> bool:
    """Whether the first column is a frame index (pandas writes one) rather than a label
    column; ``rows``: the first chunk (a column counting 0, 1, 2 there holds no labels)."""
    first = header[0]
    if first in known or first in _BACKGROUND_NAMES:
        return False
    if first.lower() in _INDEX_NAMES or first.lower().startswith("unnamed:"):
        return True
    # an unfamiliar name: an index if it counts 0, 1, 2, ... (label values never do past 1)
    return [row[0].strip() for row in rows] == [str(i) for i in range(len(rows))]


def _labels_from_csv(
    path: Path,
    table: CsvStream,
    behaviors: list[str] | None,
    n_frames: int | None,
) -> Labels:
    """Parse the rows of a DEG per-frame label CSV, chunk by chunk (see :func:`read_labels`).
    Memory: the (T, K) result and one chunk, whatever the file's size."""
    header = table.header
    chunks = table.chunks()
    first_chunk = next(chunks, ([], []))
    has_index = _has_index_column(header, first_chunk[1], set(behaviors or ()))
    columns = header[1:] if has_index else header
    for j, name in enumerate(columns):
        if not name:
            raise LabelError(f"column {j + 1 + has_index} of the header has no name", path)
    dupes = sorted({n for n in columns if columns.count(n) > 1})
    if dupes:
        raise LabelError(f"duplicate column(s) {', '.join(map(repr, dupes))}", path)
    bg_columns = [n for n in columns if n in _BACKGROUND_NAMES]
    if len(bg_columns) > 1:
        raise LabelError("has both 'background' and 'none' columns", path)
    in_file = [n for n in columns if n not in _BACKGROUND_NAMES]
    if behaviors is not None:
        missing = [n for n in behaviors if n not in in_file]
        unknown = [n for n in in_file if n not in behaviors]
        problems = []
        if missing:
            problems.append(f"missing behaviour column(s) {', '.join(map(repr, missing))}")
        if unknown:
            problems.append(f"unknown behaviour column(s) {', '.join(map(repr, unknown))}")
        if problems:
            expected = ", ".join(behaviors) or "none"
            raise LabelError(f"{'; '.join(problems)} (project behaviours: {expected})", path)
    order = list(behaviors) if behaviors is not None else in_file
    pick = [columns.index(n) for n in order]
    # background values are checked like the others, then dropped: it is always re-derived
    # the length known: fill the result in place; else keep the chunks' arrays and join them
    out = np.empty((n_frames, len(order)), np.int8) if n_frames is not None else None
    parts: list[np.ndarray] = []
    n = 0
    for lines, rows in itertools.chain([first_chunk], chunks):
        if out is not None and n + len(rows) > len(out):  # count on, keep nothing
            total = n + len(rows) + table.count_rest()
            raise LabelError(f"has {total} rows, video has {n_frames} frames", path)
        if not rows:
            continue
        values = _parse_values(path, rows, lines, n, int(has_index), columns)[:, pick]
        if out is not None:
            out[n : n + len(rows)] = values
        else:
            parts.append(values)
        n += len(rows)
    if out is not None and n != len(out):
        raise LabelError(f"has {n} rows, video has {n_frames} frames", path)
    if out is None:
        out = np.concatenate(parts) if parts else np.zeros((0, len(order)), np.int8)
    return Labels(order, out)


def read_labels(
    path: str | Path, behaviors: list[str] | None = None, n_frames: int | None = None
) -> Labels:
    """Read a DEG-format per-frame label CSV; the file is never modified.

    ``behaviors``: if given, the file's behaviour columns (background/none excluded)
    must be exactly this set, in any order; the result follows this order.
    ``n_frames``: if given, the file must have exactly this many rows.
    Any background column's values are checked to be 1/0/-1 and then ignored:
    background is re-derived from the behaviours. Raises one-line LabelError.
    """
    path = Path(path)
    if behaviors is not None:
        behaviors = _check_names(behaviors)
    with CsvStream(path) as table:
        bout_cols = find_bout_columns(table.header)
        if (
            bout_cols is not None
            and not set(_BACKGROUND_NAMES) & set(table.header)
            and not (behaviors and all(table.header[i] in behaviors for i in bout_cols))
        ):
            raise LabelError(
                "is a bout table (start/stop/behavior), not per-frame labels: use import_labels",
                path,
            )
        if n_frames is not None:
            table.check_size(n_frames)
        return _labels_from_csv(path, table, behaviors, n_frames)


def import_labels(
    path: str | Path,
    behaviors: list[str],
    n_frames: int,
    *,
    unlabeled_outside_bouts: bool = False,
) -> Labels:
    """Import labels from a DEG per-frame CSV or a bout table, detected from the header.

    A bout table has columns ``start``, ``stop`` (or ``end``) and ``behavior`` (or
    ``behaviour``/``label``/``class``), case-insensitive, in any order; other columns
    are ignored. One row per bout: frames ``start .. stop-1`` (stop is EXCLUSIVE,
    0-based) are 1 for that behaviour. A frame covered by at least one bout is 0 for
    every behaviour without a bout there. A frame covered by no bout is 0 (absent) for
    every behaviour, or -1 (unlabeled) with ``unlabeled_outside_bouts=True``.
    Otherwise the file is read as by :func:`read_labels` (same column/length checks).
    Raises one-line LabelError naming the file, the line and the problem.
    """
    path = Path(path)
    behaviors = _check_names(behaviors)
    with CsvStream(path) as table:
        table.check_size(n_frames)
        cols = find_bout_columns(table.header)
        if cols is None:
            return _labels_from_csv(path, table, behaviors, n_frames)
        rows = (pair for lines, chunk in table.chunks() for pair in zip(lines, chunk, strict=True))
        array = parse_bout_rows(path, cols, rows, behaviors, n_frames, unlabeled_outside_bouts)
    return Labels(behaviors, array)


def import_bout_animals(
    path: str | Path,
    behaviors: list[str],
    n_frames: int,
    *,
    unlabeled_outside_bouts: bool = False,
) -> dict[str, Labels] | None:
    """{animal id: Labels} of a bout table with an animal column (``animal``, ``subject`` or
    ``individual``), one entry per id (as written, stripped) in order of first appearance,
    each built from that animal's rows as :func:`import_labels` builds a table's; None when
    the file is not a bout table with such a column. One-line LabelError as there; a row
    with an empty animal cell is an error."""
    path = Path(path)
    behaviors = _check_names(behaviors)
    with CsvStream(path) as table:
        cols = find_bout_columns(table.header)
        animal_col = find_animal_column(table.header)
        if cols is None or animal_col is None:
            return None
        table.check_size(n_frames)
        groups: dict[str, list[tuple[int, list[str]]]] = {}
        for lines, chunk in table.chunks():
            for lineno, row in zip(lines, chunk, strict=True):
                who = row[animal_col].strip()
                if not who:
                    raise LabelError(f"line {lineno}: the animal cell is empty", path)
                groups.setdefault(who, []).append((lineno, row))
    return {
        who: Labels(
            behaviors,
            parse_bout_rows(path, cols, rows, behaviors, n_frames, unlabeled_outside_bouts),
        )
        for who, rows in groups.items()
    }


# --------------------------------------------------------------------------- writing


def _write_rows(f: IO[str], labels: Labels) -> None:
    array = _check_array(labels.array, len(labels.behaviors))  # may have been edited in place
    labels = Labels(labels.behaviors, array)
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(["", *labels.class_names])
    full = labels.with_background().astype(np.intp) + 1  # 0, 1, 2 index the texts below
    text_of = np.array(["-1", "0", "1"])
    f.write(header.getvalue())
    # chunked so a 1e6-frame file never holds all its cells as Python strings at once
    for lo in range(0, labels.n_frames, _ROWS_PER_WRITE):
        chunk = text_of[full[lo : lo + _ROWS_PER_WRITE]].tolist()
        f.write("".join(f"{lo + i},{','.join(r)}\n" for i, r in enumerate(chunk)))


def write_labels(path: str | Path, labels: Labels) -> None:
    """Write ``labels`` in DEG's format, atomically (a crash leaves the old file intact).

    Header ``,background,<behaviours...>``; rows ``<frame>,<background>,<values...>``;
    integers; ``\\n`` line endings; names quoted only when CSV requires it.
    """
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        _write_rows(f, labels)


def labels_text(labels: Labels) -> str:
    """The label file's text, exactly as :func:`write_labels` writes it."""
    out = io.StringIO()
    _write_rows(out, labels)
    return out.getvalue()
