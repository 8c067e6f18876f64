"""A plain CSV of tracks: ``frame,animal,x,y[,w,h]``, ``animal`` 0..N-1 or a name."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deg_core.tracking.import_common import Points, TrackImportError, csv_rows, to_points

__all__ = ["read_plain"]


def read_plain(path: Path, n_animals: int, names: Sequence[str] | None) -> tuple[Points, list[str]]:
    """The file's detections, each labelled with its animal's column, and the animals'
    names (``names``, the video's, where ids are numbers or those names; else the ids in
    order of first appearance, then animal<i>)."""
    rows = csv_rows(path)
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
    points = to_points(frames, tracks, xys, whs)
    if len(points.frame):
        pairs = points.frame * n_animals + np.asarray(tracks, np.int64)
        uniq, counts = np.unique(pairs, return_counts=True)
        if (counts > 1).any():
            dup = int(uniq[counts > 1][0])
            raise TrackImportError(
                f"frame {dup // n_animals} lists animal {out_names[dup % n_animals]} twice", path
            )
    return points, out_names
