"""Per-animal track features of a several-animal video, with social evidence between them.

What the sequence model sees of animal ``i``'s track (``sequence.track_features`` on a video
of N > 1 animals), computed from the video's :class:`~deg_core.tracking.animals.AnimalTracks`:

- its own movement, as the one-animal track gives it (:meth:`deg_core.tracking.track.Track.
  features`): position as a fraction of the frame, velocity and speed, box width, height,
  aspect and log area, in units of the animal's usual size (median over frames of the larger
  side of its box); whether it was found in that frame, and whether the tracker saw animals
  touching (``merged``);
- with ``social`` (``sequence.social_features``), its relation to the *nearest* other animal
  in that frame: the distance between them in units of animal ``i``'s size; how fast that
  distance shrinks (approach speed, positive when they close in), split into ``i``'s own
  share (its velocity towards the other) and the other's share (the other's velocity towards
  ``i``); the bearing of the other seen from ``i`` (cos and sin of the angle between ``i``'s
  heading and the direction to the other), the other's bearing of ``i`` (cos) and the
  other's speed.

A heading is the direction of motion (of the smoothed track), held through frames where the
animal stands still (back-filled before its first move; 0 when it never moves). Unknown
positions and boxes (NaN) are interpolated between known frames and held at the ends (the
frame's centre if never known), as the animal's crop window does; so every value is finite.
The columns do not depend on N: the nearest other animal is one animal whatever N is.
"""

from __future__ import annotations

import numpy as np

from deg_core.tracking.animals import AnimalTracks
from deg_core.tracking.track import MOTION_NAMES, Track, _fill_missing, _smooth, motion_columns

__all__ = ["OWN_NAMES", "SOCIAL_NAMES", "animal_feature_names", "animal_features", "as_tracks"]

OWN_NAMES = [*MOTION_NAMES, "found", "merged"]
SOCIAL_NAMES = [
    "near_distance",
    "approach",
    "own_approach",
    "other_approach",
    "bearing_cos",
    "bearing_sin",
    "other_bearing_cos",
    "other_speed",
]
_STILL = 0.02  # body sizes per frame: slower than this keeps the last heading


def animal_feature_names(social: bool = True) -> list[str]:
    """Names of the columns of :func:`animal_features`, in order (x, y first)."""
    return OWN_NAMES + (SOCIAL_NAMES if social else [])


def _filled(tracks: AnimalTracks, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(T, N, 2) centres (interpolated, held, smoothed over ~0.2 s) and (T, N, 2) extents
    (interpolated, held; at least 1 px) without NaN."""
    h, w = tracks.frame_size
    t, n = tracks.n_frames, tracks.n_animals
    mean = max(1, round(0.2 * (fps if fps > 0 else 25.0))) | 1
    center = np.zeros((t, n, 2))
    extent = np.zeros((t, n, 2))
    for a in range(n):
        c = tracks.center[:, a].astype(np.float64)
        found = np.asarray(~np.isnan(c).any(axis=1), bool)
        c = _fill_missing(np.nan_to_num(c), found, np.array([(w - 1) / 2, (h - 1) / 2]))
        center[:, a] = _smooth(c, 5, mean)
        e = tracks.extent[:, a].astype(np.float64)
        known = np.asarray(~np.isnan(e).any(axis=1), bool)
        extent[:, a] = _fill_missing(np.nan_to_num(e), known, np.full(2, 0.1 * max(h, w)))
    return center, np.maximum(extent, 1.0)


def _size(tracks: AnimalTracks, animal: int) -> float:
    """The animal's usual size: median over its known frames of its box's larger side."""
    e = tracks.extent[:, animal].astype(np.float64)
    known = e[~np.isnan(e).any(axis=1)]
    return max(float(np.median(known.max(axis=1))), 1.0) if len(known) else 1.0


def _heading(vel: np.ndarray) -> np.ndarray:
    """(T, 2) unit direction of motion from per-frame velocity (body sizes / frame), held
    where slower than _STILL, back-filled before the first move, 0 if it never moves."""
    speed = np.hypot(vel[:, 0], vel[:, 1])
    moving = speed > _STILL
    if not moving.any():
        return np.zeros_like(vel)
    idx = np.where(moving, np.arange(len(vel)), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = int(np.argmax(moving))
    return vel[idx] / speed[idx, None]


def animal_features(
    tracks: AnimalTracks, animal: int, social: bool = True, fps: float = 25.0
) -> np.ndarray:
    """(T, F) float32 raw (not z-scored) track features of animal ``animal`` of ``tracks``
    (:func:`animal_feature_names`; the module docstring). ``social`` with one animal: the
    social columns are 0."""
    if not 0 <= animal < tracks.n_animals:
        raise ValueError(f"animal must be in 0..{tracks.n_animals - 1}, got {animal}")
    t = tracks.n_frames
    names = animal_feature_names(social)
    if t == 0:
        return np.zeros((0, len(names)), np.float32)
    center, extent = _filled(tracks, fps)
    size = _size(tracks, animal)
    c, ext = center[:, animal], extent[:, animal]
    area = ext[:, 0] * ext[:, 1]  # of the box: an imported track has no foreground mask
    log_area = np.log(area / max(float(np.median(area)), 1e-6))
    cols = [
        *motion_columns(c, ext, size, tracks.frame_size, log_area),
        tracks.found()[:, animal].astype(np.float64),
        tracks.merged.astype(np.float64),
    ]
    if social:
        cols += _social(center, animal, size)
    out = np.stack(cols, axis=1)
    return np.nan_to_num(out.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def _social(center: np.ndarray, animal: int, size: float) -> list[np.ndarray]:
    """SOCIAL_NAMES' columns of ``animal`` from filled centres (T, N, 2); zeros if N == 1."""
    t, n = center.shape[:2]
    if n < 2:
        return [np.zeros(t) for _ in SOCIAL_NAMES]
    others = [j for j in range(n) if j != animal]
    c = center[:, animal]
    rel = center[:, others] - c[:, None]  # (T, N-1, 2) from the animal to each other one
    dist_all = np.hypot(rel[..., 0], rel[..., 1])
    near = dist_all.argmin(axis=1)  # (T,) index into others
    rows = np.arange(t)
    other = center[rows, np.asarray(others)[near]]  # (T, 2)
    d = other - c
    dist = dist_all[rows, near]
    u = d / np.maximum(dist, 1e-6)[:, None]  # unit vector animal -> other (0 where they coincide)
    u[dist < 1e-6] = 0.0
    vel = np.diff(c, axis=0, prepend=c[:1]) / size
    # the other's velocity: of the animal nearest now, across the frame before
    prev = center[np.maximum(rows - 1, 0), np.asarray(others)[near]]
    ovel = (other - prev) / size
    head, ohead = _heading(vel), _heading_of(center, np.asarray(others)[near], size)
    dist_n = dist / size
    approach = -np.diff(dist_n, prepend=dist_n[:1])
    return [
        dist_n,
        approach,
        (vel * u).sum(axis=1),
        -(ovel * u).sum(axis=1),
        (head * u).sum(axis=1),
        head[:, 0] * u[:, 1] - head[:, 1] * u[:, 0],
        -(ohead * u).sum(axis=1),
        np.hypot(ovel[:, 0], ovel[:, 1]),
    ]


def _heading_of(center: np.ndarray, which: np.ndarray, size: float) -> np.ndarray:
    """(T, 2) heading of animal ``which[t]`` in frame t (each animal's own held heading)."""
    out = np.zeros((len(center), 2))
    for j in np.unique(which):
        cj = center[:, j]
        hj = _heading(np.diff(cj, axis=0, prepend=cj[:1]) / size)
        out[which == j] = hj[which == j]
    return out


def as_tracks(track: Track) -> AnimalTracks:
    """A one-animal :class:`Track` as one-animal AnimalTracks (NaN where not found), so a
    one-animal video in a project of several-animal videos gets the same columns."""
    center = track.center.astype(np.float32)[:, None].copy()
    extent = track.extent.astype(np.float32)[:, None].copy()
    center[~track.found] = np.nan
    extent[~track.found] = np.nan
    return AnimalTracks(center, extent, ["animal0"], "deg", track.frame_size)
