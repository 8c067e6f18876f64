"""What the track-file readers share: their error, the detections they return, CSV rows.

The readers (:mod:`~deg_core.tracking.import_sleap`, :mod:`~deg_core.tracking.import_dlc`,
:mod:`~deg_core.tracking.import_csv`) each return :class:`Points`; :mod:`deg_core.tracking.
imports` checks them against the video and turns them into AnimalTracks.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.errors import DegError

__all__ = ["Points", "TrackImportError", "csv_rows", "to_points"]


class TrackImportError(DegError):
    """A track file that cannot be read, or that does not fit the video."""


@dataclass
class Points:
    """Per-frame detections before they become columns: frame, track label, centre, box."""

    frame: np.ndarray  # (K,) int
    track: list[Any]  # (K,) a label per detection (None: untracked)
    xy: np.ndarray  # (K, 2)
    wh: np.ndarray  # (K, 2)


def to_points(frames: list, tracks: list, xys: list, whs: list) -> Points:
    """Lists of detections (frame, track label, (x, y), (w, h)) as Points, less those
    without a position."""
    n = len(frames)
    keep = [i for i in range(n) if not np.isnan(np.asarray(xys[i], np.float64)).any()]
    return Points(
        np.asarray([frames[i] for i in keep], np.int64).reshape(-1),
        [tracks[i] for i in keep],
        np.asarray([xys[i] for i in keep], np.float64).reshape(-1, 2),
        np.asarray([whs[i] for i in keep], np.float64).reshape(-1, 2),
    )


def csv_rows(path: Path) -> list[list[str]]:
    """Every row of a CSV file (UTF-8, BOM or not); one-line TrackImportError."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return [r for r in csv.reader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TrackImportError(f"unreadable CSV ({e})", path) from None
