"""What the networks see of a video: the whole frame, or a window that follows the animal.

``augs.crop: animal`` crops every frame to a fixed-size square around the animal
(deg_core.tracking.track: found without labels, smoothed over time) before resizing to
``augs.resize``. The crop happens inside the reader (:class:`CroppedReader`), so
flow training, feature training (random clips) and feature inference (sequential
chunks) read exactly the same pixels for a frame. The track is computed once per
video and cached beside it (``DATA/<key>/<key>_track.npz``).

The track itself (position, speed, body extent, motion) is also per-frame evidence
for the sequence model (``sequence.track_features``); with several animals, each animal's
own track and its relation to the nearest other one (``sequence.social_features``:
distance, approach, bearing; :mod:`deg_core.tracking.social`), :func:`animal_track_features`.

Several animals in a video (``project.animals`` > 1): every animal is a stream of its own,
seen through a fixed-size square window that follows it (:func:`animal_crop_boxes`, from
the video's :class:`~deg_core.tracking.animals.AnimalTracks`, whatever ``augs.crop`` says):
the window side is ``augs.crop_scale`` x the 90th percentile of the animal's size, as for
one animal; frames where its position is unknown take it interpolated between the known
ones (held before the first and after the last), then the centres are smoothed as one
animal's track is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.errors import ProjectError
from deg_core.project.project import Project
from deg_core.tracking.animals import AnimalTracks
from deg_core.tracking.project_tracks import animal_tracks
from deg_core.tracking.social import animal_features, as_tracks
from deg_core.tracking.track import (
    Track,
    _fill_missing,
    _smooth,
    _window,
    crop_frames,
    load_track,
    window_boxes,
)
from deg_core.video import Size, VideoReader, open_video

CROP_MODES = ("full", "animal")


def track_path(project: Project, key: str) -> Path:
    return project.record(key).folder / f"{key}_track.npz"


def video_track(project: Project, key: str, scale: float = 1.5) -> Track:
    """The cached track of video ``key`` (computed on first use)."""
    rec = project.record(key)
    if rec.video is None:
        raise ProjectError("no video file found in this folder", rec.folder)
    return load_track(rec.video, track_path(project, key), scale=scale)


def _augs_value(augs: Any, name: str, default: Any) -> Any:
    # a run's saved config is a plain dict; runs from before the crop have no key
    if isinstance(augs, Mapping):
        return augs.get(name, default)
    return getattr(augs, name, default)


def crop_boxes(project: Project, key: str, augs: Any) -> np.ndarray | None:
    """(T, 4) int64 crop boxes (x0, y0, x1, y1) of ``key`` under ``augs``, or None (full frame).

    ``augs``: an AugsSection or a run's saved ``augs`` dict.
    """
    mode = _augs_value(augs, "crop", "full")
    if mode == "full":
        return None
    if mode != "animal":  # config validation refuses this earlier; a hand-edited run
        raise ProjectError(f"augs.crop must be one of {', '.join(CROP_MODES)}, got {mode!r}")
    return video_track(project, key, float(_augs_value(augs, "crop_scale", 1.5))).boxes()


def animal_boxes(tracks: AnimalTracks, animal: int, scale: float = 1.5, fps: float = 25.0):
    """(T, 4) int64 crop boxes of a fixed square window centred on animal ``animal`` of
    ``tracks`` (see the module docstring): side ``scale`` x its size, unknown centres
    interpolated (held at the ends; the frame's centre if never known), smoothed over
    ~0.2 s like one animal's track."""
    if not 0 <= animal < tracks.n_animals:
        raise ValueError(f"animal must be in 0..{tracks.n_animals - 1}, got {animal}")
    h, w = tracks.frame_size
    center = tracks.center[:, animal].astype(np.float64)
    found = np.asarray(~np.isnan(center).any(axis=1), bool)
    center = _fill_missing(
        np.nan_to_num(center), found, np.array([(w - 1) / 2, (h - 1) / 2], np.float64)
    )
    mean = max(1, round(0.2 * (fps if fps > 0 else 25.0))) | 1
    center = _smooth(center, 5, mean)
    extent = tracks.extent[:, animal]
    known = extent[~np.isnan(extent).any(axis=1)]
    window = _window(known, scale, h, w)
    return window_boxes(center, window, (h, w))


def animal_crop_boxes(project: Project, key: str, augs: Any = None) -> list[np.ndarray]:
    """Per-animal (T, 4) crop boxes of video ``key`` (``project.n_animals(key)`` of them),
    from its stored tracks; ``augs`` gives ``crop_scale`` (default 1.5). A video without
    tracks is a one-line ProjectError naming the command that makes them."""
    tracks = checked_tracks(project, key)
    rec = project.record(key)
    scale = float(_augs_value(augs, "crop_scale", 1.5)) if augs is not None else 1.5
    fps = float(rec.fps or 25.0)
    return [animal_boxes(tracks, i, scale, fps) for i in range(tracks.n_animals)]


def checked_tracks(project: Project, key: str) -> AnimalTracks:
    """The stored animal tracks of video ``key``, checked against its frames and animals;
    a one-line ProjectError naming the command that makes them when absent or unfit."""
    n = project.n_animals(key)
    tracks = animal_tracks(project, key)
    if tracks is None:
        raise ProjectError(
            f"video {key} has {n} animals but no animal tracks: make them with "
            f"`deg tracks {project.root} {key} --compute` (or --import FILE)"
        )
    rec = project.record(key)
    if tracks.n_animals != n or tracks.n_frames != rec.n_frames():
        raise ProjectError(
            f"video {key}: tracks hold {tracks.n_animals} animals x {tracks.n_frames} frames, "
            f"the video has {n} x {rec.n_frames()}: redo them with "
            f"`deg tracks {project.root} {key} --compute` (or --import FILE)"
        )
    return tracks


class CroppedReader(VideoReader):
    """A reader whose frame ``t`` is ``base``'s frame ``t`` cropped to ``boxes[t]``.

    Same interface as any reader (``get_batch``, ``read_range``, ``iter_chunks``);
    ``size`` resizes the crop. Without a size, frames are ``window`` x ``window``.
    """

    def __init__(self, base: VideoReader, boxes: np.ndarray):
        boxes = np.asarray(boxes, dtype=np.int64)
        if boxes.shape != (len(base), 4):
            raise ValueError(f"boxes must be ({len(base)}, 4) for {base.path}, got {boxes.shape}")
        super().__init__(base.path, base.info)
        self.base = base
        self.boxes = boxes
        self.backend = base.backend  # type: ignore[misc]

    def _out_shape(self, n: int, size: Size | None) -> tuple[int, int, int, int]:
        if size is None:
            side = int(self.boxes[0, 2] - self.boxes[0, 0])
            return (n, side, side, 3)
        return (n, int(size[0]), int(size[1]), 3)

    def _frames_sorted(self, indices: np.ndarray, size: Size | None) -> Iterator[np.ndarray]:
        self.base._fork_guard()
        for t, frame in zip(indices.tolist(), self.base._frames_sorted(indices, None), strict=True):
            yield crop_frames(frame[None], self.boxes[t : t + 1], size)[0]

    def close(self) -> None:
        self.base.close()


def open_frames(path: Path, boxes: np.ndarray | None = None) -> VideoReader:
    """A reader of ``path``, cropped to ``boxes`` when given."""
    reader = open_video(path)
    return reader if boxes is None else CroppedReader(reader, boxes)


def track_features(project: Project, key: str) -> np.ndarray:
    """(T, F) float32 track features of ``key``, z-scored per video (robustly).

    Per-video scaling keeps what changes within a video (rearing raises the animal's
    centre, grooming stops it) and drops what differs between cameras.
    """
    return _robust_z(video_track(project, key).features().astype(np.float64))


def animal_track_features(project: Project, key: str, social: bool = True) -> list[np.ndarray]:
    """Per-animal (T, F) float32 track features of ``key`` (one array per animal; the
    columns of :func:`deg_core.tracking.social.animal_feature_names`), z-scored per video
    and animal as :func:`track_features` is. ``social``: with the social evidence columns.

    A video of several animals reads its stored tracks (:func:`checked_tracks`); a
    one-animal video (in a project where other videos hold several) its one-animal track,
    so every video of the project gives the same columns (the social ones 0).
    """
    rec = project.record(key)
    fps = float(rec.fps or 25.0)
    if project.n_animals(key) > 1:
        tracks = checked_tracks(project, key)
    else:
        tracks = as_tracks(video_track(project, key))
    return [
        _robust_z(animal_features(tracks, i, social, fps).astype(np.float64))
        for i in range(tracks.n_animals)
    ]


def _robust_z(f: np.ndarray) -> np.ndarray:
    """(T, F) float64 -> float32: each column minus its median over its MAD (x 1.4826;
    the sd where the MAD is 0), clipped to +-10."""
    med = np.median(f, axis=0)
    mad = np.median(np.abs(f - med), axis=0) * 1.4826
    scale = np.where(mad > 1e-6, mad, f.std(axis=0) + 1e-6)
    return np.clip((f - med) / scale, -10.0, 10.0).astype(np.float32)
