"""NWB (Neurodata Without Borders) files of a project's videos: ``deg export nwb``.

One file per video, ``<out>/<key>.nwb``, readable with plain pynwb (no extension needed):

* ``acquisition/video``: an ImageSeries whose ``external_file`` is the project's copy of
  the video, relative to the NWB file's folder (NWB's recommendation: the two move
  together), ``rate`` the video's fps, ``starting_frame`` [0].
* ``intervals/behavior_labels`` and ``intervals/behavior_predictions``: TimeIntervals,
  one row per bout with ``start_time``, ``stop_time`` (seconds; frame ``f`` starts at
  ``f / fps``, a bout of frames ``[a, b)`` is ``[a / fps, b / fps)``) and ``behavior``.
  Labels: the label file's 1s; predictions: the sequence run's cleaned ethogram.
* ``processing/behavior/behavior_probabilities``: a TimeSeries (T, K) of the run's
  per-frame probabilities at the video's rate; the K column names are in its
  ``comments`` (comma-separated) and the thresholds in its ``description``.

pynwb is an optional dependency (``uv sync --extra nwb`` / ``pip install deg[nwb]``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.errors import DegError
from deg_core.fileio import fault_point, temp_sibling
from deg_core.labels.bouts import bout_table
from deg_core.project.project import Project
from deg_core.project.records import VideoRecord

INSTALL_HINT = (
    "deg export nwb needs pynwb, an optional dependency: install it with "
    "`uv sync --extra nwb` (or `pip install deg[nwb]`)"
)


def require_pynwb() -> Any:
    """The pynwb module, or a one-line DegError saying how to install it."""
    try:
        import pynwb
    except ImportError:
        raise DegError(INSTALL_HINT) from None
    return pynwb


def _start_time(rec: VideoRecord) -> dt.datetime:
    """When the video was added (its record), else now; NWB needs an aware datetime."""
    try:
        when = dt.datetime.fromisoformat(str(rec.added))
    except ValueError:
        return dt.datetime.now(dt.UTC)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _bouts(pynwb: Any, name: str, what: str, array: np.ndarray, behaviors: list[str], fps: float):
    """A TimeIntervals table ``name``: one row per bout of ``array`` (T, K) (runs of 1)."""
    table = pynwb.epoch.TimeIntervals(name=name, description=what)
    bouts = bout_table(array, behaviors)
    # hdmf cannot infer the text type of a column that never gets a row: say it
    empty = {} if bouts else {"data": np.array([], dtype=str)}
    table.add_column(name="behavior", description="the behaviour of the bout", **empty)
    for bout in bouts:
        table.add_row(
            start_time=bout["start"] / fps, stop_time=bout["stop"] / fps, behavior=bout["behavior"]
        )
    return table


def video_nwb(project: Project, key: str, out: Path, run: str = "latest") -> tuple[Any, list[str]]:
    """The NWBFile of one video (to be written into ``out``) and notes on what it lacks."""
    pynwb = require_pynwb()
    rec = project.record(key).probe()
    fps, video = float(rec.fps or 0), rec.video
    if fps <= 0 or video is None:
        raise DegError(f"the video or fps of {key!r} is unknown", rec.folder)
    nwb = pynwb.NWBFile(
        session_description=f"deg project {project.name}, video {key}",
        identifier=str(uuid.uuid4()),
        session_start_time=_start_time(rec),
        source_script="deg export nwb",
        source_script_file_name="deg_core/interop/nwb.py",
    )
    nwb.add_acquisition(
        pynwb.image.ImageSeries(
            name="video",
            description=f"the video ({rec.frames} frames at {fps:g} fps)",
            external_file=[os.path.relpath(video.absolute(), out)],
            format="external",
            starting_frame=[0],
            num_samples=rec.n_frames(),  # the data live in the video file
            rate=fps,
            unit="n.a.",
        )
    )
    notes, behaviors = [], project.behaviors
    if rec.labels_path.exists():
        labels = project.labels(key).array
        nwb.add_time_intervals(
            _bouts(pynwb, "behavior_labels", "bouts labelled by hand", labels, behaviors, fps)
        )
    else:
        notes.append("no labels")
    from deg_core.interop.predictions import predicted

    try:
        pred = predicted(project, key, run)
    except DegError as e:
        notes.append(f"no predictions ({e.problem})")
    else:
        what = f"bouts predicted by {pred.run} (thresholded, short bouts removed)"
        nwb.add_time_intervals(
            _bouts(pynwb, "behavior_predictions", what, pred.ethogram, behaviors, fps)
        )
        module = nwb.create_processing_module(name="behavior", description="deg's outputs")
        thresholds = ", ".join(
            f"{b}={t:.4g}" for b, t in zip(behaviors, pred.thresholds, strict=True)
        )
        module.add(
            pynwb.TimeSeries(
                name="behavior_probabilities",
                description=f"per-frame P(behaviour) of {pred.run}; thresholds {thresholds}",
                comments=",".join(behaviors),
                data=pred.probs,
                unit="probability",
                rate=fps,
                starting_time=0.0,
            )
        )
    return nwb, notes


def export_nwb(
    project: Project,
    videos: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    *,
    run: str = "latest",
) -> dict[Path, list[str]]:
    """Write ``<out_dir>/<key>.nwb`` per video (default ``PROJECT/exports``), each atomically;
    {path: notes}. Every file is built in memory before the first is written."""
    pynwb = require_pynwb()
    keys = [project.resolve_key(v) for v in videos] if videos else project.video_keys()
    out = (Path(out_dir) if out_dir is not None else project.root / "exports").absolute()
    built = {out / f"{key}.nwb": video_nwb(project, key, out, run) for key in keys}
    out.mkdir(parents=True, exist_ok=True)
    for path, (nwb, _) in built.items():
        tmp = temp_sibling(path)
        try:
            with warnings.catch_warnings():  # about the temporary name, not the final one
                warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")
                with pynwb.NWBHDF5IO(str(tmp), "w") as io:
                    io.write(nwb)
            fault_point()
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return {path: notes for path, (_, notes) in built.items()}
