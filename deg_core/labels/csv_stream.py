"""A label CSV or bout table read as a stream: the header at once, the rows in chunks.

Memory holds one chunk of rows whatever the file's size, and a file far larger than its
video's frames could fill is refused before it is parsed. Shared by the per-frame label
reader and the bout-table importers of :mod:`deg_core.labels.labels`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from deg_core.errors import LabelError

__all__ = ["CsvStream"]


def _is_blank(row: list[str]) -> bool:
    """A blank or whitespace-only line (csv yields [] or one empty-ish field)."""
    return not row or (len(row) == 1 and not row[0].strip())


# a label CSV is read in chunks of rows: memory holds one chunk, whatever the file's size
_CHUNK_ROWS = 1 << 14
_SNIFF_BYTES = 1 << 16
# the most bytes a row of a label file or bout table plausibly takes: a fixed part (an
# index, a line end) and one per column (a value like "-1.000000" with spaces); a file past
# that for its video's frames is refused before it is parsed
_ROW_BYTES, _CELL_BYTES = 64, 24


class CsvStream:
    """A CSV file as a stream: its header at once, its rows in chunks (:meth:`chunks`), each
    row checked to have the header's width. Never writes; one-line LabelErrors."""

    def __init__(self, path: Path):
        if not path.exists():
            raise LabelError("label file not found", path)
        if not path.is_file():
            raise LabelError("is not a file", path)
        self.path = path
        try:
            self.size = path.stat().st_size
            with open(path, "rb") as f:
                head = f.read(_SNIFF_BYTES)
            self._file = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
        except OSError as e:
            raise LabelError(f"cannot read: {e.strerror or e}", path) from None
        if b"\x00" in head:
            self._file.close()
            raise LabelError("is not a CSV text file (binary data)", path)
        self._reader = csv.reader(self._file, strict=True)
        first = next(self._rows(), None)
        if first is None:
            self._file.close()
            raise LabelError("is empty", path)
        self.header_line, row = first
        self.header = [h.strip() for h in row]
        if len(self.header) == 1 and any(sep in self.header[0] for sep in "\t;"):
            self._file.close()
            raise LabelError(
                "is not comma-separated (found tabs or semicolons in the header)", path
            )

    def __enter__(self) -> CsvStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line, row) of every row but blank ones at the end; a blank one before another
        row is an error."""
        blank_at = None
        try:
            for row in self._reader:
                if _is_blank(row):
                    blank_at = blank_at or self._reader.line_num
                    continue
                if blank_at is not None:
                    raise LabelError(f"line {blank_at} is blank", self.path)
                yield self._reader.line_num, row
        except csv.Error as e:
            raise LabelError(
                f"unparseable CSV at line {self._reader.line_num}: {e}", self.path
            ) from None
        except UnicodeDecodeError:
            raise LabelError("is not a CSV text file (not UTF-8 text)", self.path) from None

    def check_size(self, n_frames: int) -> None:
        """Refuse a file far larger than one for ``n_frames`` frames could be, unread."""
        most = _SNIFF_BYTES + n_frames * (_ROW_BYTES + _CELL_BYTES * len(self.header))
        if self.size > most:
            raise LabelError(
                f"is {self.size / 1e6:.1f} MB, far more than labels of {n_frames} frames "
                f"in {len(self.header)} columns can take (at most {most / 1e6:.1f} MB): is it "
                "the file of this video?",
                self.path,
            )

    def chunks(self) -> Iterator[tuple[list[int], list[list[str]]]]:
        """(lines, rows) of up to ``_CHUNK_ROWS`` data rows at a time."""
        width = len(self.header)
        lines: list[int] = []
        rows: list[list[str]] = []
        for lineno, row in self._rows():
            if len(row) != width:
                raise LabelError(
                    f"line {lineno} has {len(row)} fields, the header has {width}", self.path
                )
            lines.append(lineno)
            rows.append(row)
            if len(rows) == _CHUNK_ROWS:
                yield lines, rows
                lines, rows = [], []
        if rows:
            yield lines, rows

    def count_rest(self) -> int:
        """How many rows are left (read, not kept)."""
        return sum(len(rows) for _, rows in self.chunks())
