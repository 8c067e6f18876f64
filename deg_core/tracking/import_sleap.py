"""SLEAP tracks (``.slp`` predictions or labels, analysis ``.h5``), read through sleap-io.

An animal's centre is the mean of its visible nodes, its box the nodes' extent; frames with
more instances than the video's animals keep the best-scored ones. sleap-io is optional
(``uv sync --extra tracks`` / ``pip install deg[tracks]``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.tracking.import_common import Points, TrackImportError, to_points

__all__ = ["SLEAP_INSTALL", "read_sleap"]

SLEAP_INSTALL = "uv sync --extra tracks (or pip install 'deg[tracks]')"
log = logging.getLogger("deg_core.tracking")


def _sleap_io() -> Any:
    try:
        import sleap_io
    except ImportError:
        raise TrackImportError(
            f"reading SLEAP files needs sleap-io: install it with {SLEAP_INSTALL}"
        ) from None
    return sleap_io


def read_sleap(
    path: Path, n_frames: int, n_animals: int, frame_size: tuple[int, int], fps: float | None
) -> tuple[Points, list[str]]:
    """The file's detections and its track names; the file must be of one video, and of
    this one where it says (frames, size, fps)."""
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
    return to_points(frames, tracks, xys, whs), [t.name for t in labels.tracks]


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
