"""Unsupervised animal tracking: find the animal in every frame of a fixed-camera video.

One animal in an arena, camera fixed: a per-video background (temporal median of
frames sampled over the whole video) leaves the animal as the largest foreground blob,
whatever its colour against the floor (white rat on black, dark mouse on white). The
track is computed on a small copy of the video (longest side ``max_side`` px), smoothed
over time and returned in full-frame pixels, so the pipeline can cut one fixed-size
window around the animal and use the track itself as per-frame features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deg_core.fileio import atomic_open
from deg_core.tracking.foreground import (
    background,
    foreground_mask,
    largest_component,
    min_pixels,
    small_reader,
    to_chw,
)
from deg_core.video import resize_frames
from deg_core.video.ahead import decode_ahead

__all__ = [
    "MOTION_NAMES",
    "TRACK_VERSION",
    "Track",
    "compute_track",
    "crop_frames",
    "load_track",
    "motion_columns",
    "window_boxes",
]

TRACK_VERSION = 2

_MIN_WINDOW = 32
GRID = 4  # the silhouette and its motion in GRID x GRID cells of the animal's own box
# the movement columns one animal's track gives, alone (Track) or among others (social.py)
MOTION_NAMES = ["x", "y", "vx", "vy", "speed", "w", "h", "aspect", "log_area"]


def motion_columns(
    center: np.ndarray,
    extent: np.ndarray,
    size: float,
    frame_size: tuple[int, int],
    log_area: np.ndarray,
) -> list[np.ndarray]:
    """The :data:`MOTION_NAMES` columns, each (T,) float64, of one animal's track.

    ``center``: (T, 2) float64 x, y in full-frame px (no NaN); ``extent``: (T, 2) float64
    width, height of its box, at least 1 px; ``size``: its usual size in px (velocity and
    extent are in these units, so they transfer across cameras); ``frame_size``: (height,
    width); ``log_area``: (T,) log of its area over its usual area, clipped here to +-5
    (an absent animal's area 0 would be -inf).
    """
    h, w = frame_size
    vel = np.diff(center, axis=0, prepend=center[:1]) / size
    return [
        center[:, 0] / w,
        center[:, 1] / h,
        vel[:, 0],
        vel[:, 1],
        np.hypot(vel[:, 0], vel[:, 1]),
        extent[:, 0] / size,
        extent[:, 1] / size,
        np.log(extent[:, 1] / extent[:, 0]),
        np.clip(log_area, -5.0, 5.0),
    ]


@dataclass
class Track:
    """Per-frame animal track of one video (full-frame pixel units)."""

    center: np.ndarray  # (T, 2) float32 x, y of the animal, smoothed over time
    extent: np.ndarray  # (T, 2) float32 width, height of its foreground box, smoothed
    area: np.ndarray  # (T,) float32 foreground fraction of the frame (raw)
    motion: np.ndarray  # (T,) float32 fraction of foreground pixels changed since t-1
    found: np.ndarray  # (T,) bool foreground found (else values interpolated / held)
    frame_size: tuple[int, int]  # (height, width) of the video
    window: int  # side of the fixed square crop window, full-frame pixels
    # (T, 2, GRID, GRID) float32: share of each cell of the animal's box that is animal
    # (its silhouette: posture) and that changed since t-1 (where it moves); 0 if not found
    shape: np.ndarray | None = None

    def boxes(self) -> np.ndarray:
        """(T, 4) int64 x0, y0, x1, y1, each ``window`` wide and high, centred on ``center``.

        Shifted to stay inside the frame; where ``window`` exceeds a frame dimension the
        box is centred on the frame in that dimension (and extends beyond it).
        """
        return window_boxes(self.center, self.window, self.frame_size)

    @staticmethod
    def feature_names() -> list[str]:
        """Names of the columns of :meth:`features`, in order."""
        grid = [
            f"{what}_r{r}_{part}"
            for what in ("body", "moving")
            for r in range(GRID)
            for part in ("outer", "inner", "outer_asym", "inner_asym")
        ]
        return [*MOTION_NAMES, "motion", "found", *grid]

    def features(self) -> np.ndarray:
        """(T, F) float32 scale-free per-frame features (see :meth:`feature_names`).

        Position as a fraction of the frame; velocity and extent in units of the median
        animal size (median over frames of the larger side of its box), so they transfer
        across cameras and resolutions; area as log of its ratio to the median area.
        """
        t = len(self.center)
        if t == 0:
            return np.zeros((0, len(self.feature_names())), np.float32)
        c = self.center.astype(np.float64)
        ext = np.maximum(self.extent.astype(np.float64), 1.0)
        size = max(float(np.median(ext.max(axis=1))), 1.0)
        ok = self.found & (self.area > 0)
        med_area = float(np.median(self.area[ok])) if ok.any() else 1.0
        log_area = np.log(np.maximum(self.area, 1e-6) / max(med_area, 1e-6))
        cols = [
            *motion_columns(c, ext, size, self.frame_size, log_area),
            self.motion,
            self.found,
        ]
        out = np.concatenate([np.stack(cols, axis=1), self._grid_features(t)], axis=1)
        return np.nan_to_num(out.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)

    def _grid_features(self, t: int) -> np.ndarray:
        """(T, 2 * GRID * GRID): the shape grids folded left-right, so an animal facing
        left and one facing right give the same values: per row, the sums of mirrored
        cells (outer pair, inner pair) and their absolute differences (asymmetry)."""
        g = np.zeros((t, 2, GRID, GRID)) if self.shape is None else self.shape.astype(np.float64)
        left, right = g[..., : GRID // 2], g[..., ::-1][..., : GRID // 2]
        folded = np.concatenate([left + right, np.abs(left - right)], axis=-1)
        return folded.reshape(t, -1)


def window_boxes(center: np.ndarray, window: int, frame_size: tuple[int, int]) -> np.ndarray:
    """(T, 4) int64 x0, y0, x1, y1 of ``window``-sided squares centred on ``center`` (T, 2)
    (x, y, full-frame px, no NaN); ``frame_size``: (height, width). See :meth:`Track.boxes`."""
    n = window
    h, w = frame_size
    out = np.empty((len(center), 4), np.int64)
    for axis, size in ((0, w), (1, h)):
        if n <= size:
            # pixel-centre convention: a box [x0, x0 + n) is centred on x0 + (n - 1) / 2
            lo = np.rint(center[:, axis] - (n - 1) / 2).astype(np.int64)
            lo = np.clip(lo, 0, size - n)
        else:
            lo = np.full(len(center), (size - n) // 2, np.int64)
        out[:, axis] = lo
        out[:, axis + 2] = lo + n
    return out


def _fill_missing(x: np.ndarray, found: np.ndarray, default: np.ndarray) -> np.ndarray:
    """(T, k) values: rows where ``found`` is False linearly interpolated (held at ends)."""
    if not found.any():
        return np.repeat(default[None].astype(np.float64), len(x), axis=0)
    t = np.arange(len(x))
    out = x.astype(np.float64).copy()
    for j in range(x.shape[1]):
        out[:, j] = np.interp(t, t[found], x[found, j])
    return out


def _smooth(x: np.ndarray, median: int, mean: int) -> np.ndarray:
    """(T, k): running median of ``median`` frames, then a moving average of ``mean``.

    Edges are padded by replication, so the length and the ends are kept.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    for size, fn in ((median, np.median), (mean, np.mean)):
        if size > 1 and len(x) > 1:
            pad = size // 2
            xp = np.pad(x, ((pad, size - 1 - pad), (0, 0)), mode="edge")
            x = fn(sliding_window_view(xp, size, axis=0), axis=-1)
    return x


def compute_track(
    path: str | Path, *, scale: float = 1.5, max_side: int = 160, sample: int = 200
) -> Track:
    """Track the single animal of a fixed-camera video, without labels.

    ``scale``: crop window side / the animal's size (90th percentile over frames of the
    larger side of its box). ``max_side``: longest side of the working copy in px.
    ``sample``: frames (evenly spread) whose per-pixel median is the background.
    """
    with small_reader(path, max_side) as (reader, info, (h, w)):
        big_h, big_w = info.height, info.width
        t_all = info.frames
        center = np.zeros((t_all, 2), np.float64)
        extent = np.zeros((t_all, 2), np.float64)
        area = np.zeros(t_all, np.float32)
        motion = np.zeros(t_all, np.float32)
        found = np.zeros(t_all, bool)
        shape = np.zeros((t_all, 2, GRID, GRID), np.float32)
        if t_all > 0:
            bg, thr = background(reader, (h, w), sample)
            xs = torch.arange(w, dtype=torch.float32)
            ys = torch.arange(h, dtype=torch.float32)
            prev: torch.Tensor | None = None
            with torch.inference_mode():
                # decoding (PyAV releases the GIL) overlaps the masks' arithmetic
                chunks = decode_ahead(reader.iter_chunks(chunk=64, size=(h, w)), 2)
                for first, chunk in chunks:
                    f = to_chw(chunk)
                    n = len(f)
                    sl = slice(first, first + n)
                    mask = foreground_mask(f, bg, thr)
                    # connect fragments a few px apart (dark body, bright paws) for the
                    # labelling only; the component keeps just the real foreground pixels
                    near = F.max_pool2d(mask[:, None], 5, stride=1, padding=2)[:, 0]
                    comp, _ = largest_component(near)
                    comp &= mask.bool()
                    pixels = comp.flatten(1).sum(1)
                    ok = pixels >= min_pixels(h, w)
                    px = pixels.clamp(min=1).float()
                    compf = comp.float()
                    col = compf.sum(dim=1)  # (n, w) pixels per column
                    row = compf.sum(dim=2)  # (n, h)
                    cx = (col * xs).sum(dim=1) / px
                    cy = (row * ys).sum(dim=1) / px
                    colx, rowy = col > 0, row > 0
                    bw = w - colx.int().argmax(1) - colx.flip(1).int().argmax(1)
                    bh = h - rowy.int().argmax(1) - rowy.flip(1).int().argmax(1)
                    # motion: share of the animal's pixels that changed since the last frame
                    before = torch.cat([f[:1] if prev is None else prev, f[:-1]])
                    changed = (f - before).abs().amax(dim=1) > thr
                    mot = (changed & comp).flatten(1).sum(1).float() / px
                    if prev is None:
                        mot[0] = 0.0
                    prev = f[-1:]
                    shape[sl] = _shape_grids(compf, changed.float(), colx, rowy, ok).numpy()
                    center[sl] = torch.stack([cx, cy], 1).numpy()
                    extent[sl] = torch.stack([bw, bh], 1).float().numpy()
                    area[sl] = (pixels.float() / (h * w) * ok).numpy()
                    motion[sl] = (mot * ok).numpy()
                    found[sl] = ok.numpy()
        fps = info.fps if info.fps > 0 else 25.0

    sx, sy = big_w / w, big_h / h
    # small-image pixel centres -> full-frame pixel centres
    center = (center + 0.5) * (sx, sy) - 0.5
    extent = extent * (sx, sy)
    center = _fill_missing(center, found, np.array([(big_w - 1) / 2, (big_h - 1) / 2]))
    extent = _fill_missing(extent, found, np.array([big_w, big_h], np.float64))
    mean = max(1, round(0.2 * fps)) | 1  # ~0.2 s, odd so it stays centred
    center = _smooth(center, 5, mean).astype(np.float32)
    extent = _smooth(extent, 5, mean).astype(np.float32)
    return Track(
        center=center,
        extent=extent,
        area=area,
        motion=motion,
        found=found,
        frame_size=(big_h, big_w),
        window=_window(extent, scale, big_h, big_w),
        shape=shape,
    )


def _shape_grids(
    body: torch.Tensor, changed: torch.Tensor, colx: torch.Tensor, rowy: torch.Tensor, ok
) -> torch.Tensor:
    """(n, 2, GRID, GRID): mean of ``body`` and ``changed`` (n, h, w) masks in a GRID x GRID
    division of each frame's foreground box (columns ``colx``, rows ``rowy`` (n, w)/(n, h)
    bool); zeros where ``ok`` is False."""
    from torchvision.ops import roi_align

    n, h, w = body.shape
    x0 = colx.int().argmax(1).float()
    x1 = w - colx.flip(1).int().argmax(1).float()
    y0 = rowy.int().argmax(1).float()
    y1 = h - rowy.flip(1).int().argmax(1).float()
    rois = torch.stack([torch.arange(n, dtype=torch.float32), x0, y0, x1, y1], 1)
    both = torch.stack([body, changed], 1)  # (n, 2, h, w)
    grids = roi_align(both, rois, (GRID, GRID), spatial_scale=1.0, sampling_ratio=0, aligned=True)
    return grids * ok.float().view(n, 1, 1, 1)


def _window(extent: np.ndarray, scale: float, height: int, width: int) -> int:
    """One crop side per video: ``scale`` x the 90th percentile of the animal's size."""
    if len(extent) == 0:
        return max(_MIN_WINDOW, min(height, width))
    size = float(np.percentile(extent.max(axis=1), 90))
    return max(_MIN_WINDOW, min(round(scale * size), max(height, width)))


def crop_frames(frames: np.ndarray, boxes: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Cut each frame to its box, then resize.

    ``frames``: (N, H, W, 3) uint8; ``boxes``: (N, 4) int x0, y0, x1, y1 (may reach
    beyond the frame: outside pixels replicate the nearest edge pixel). ``size``:
    (h, w) output size, or None for the crops at box size (all boxes must then be the
    same size). Each frame's result depends only on that frame and its box, so single
    and batched calls give identical crops. Returns: (N, h, w, 3) uint8.
    """
    frames = np.asarray(frames)
    boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(boxes) != len(frames):
        raise ValueError(
            f"need (N, H, W, 3) frames and (N, 4) boxes, got {frames.shape} and {boxes.shape}"
        )
    n, big_h, big_w = frames.shape[:3]
    sides = np.stack([boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]], 1)
    if (sides < 1).any():
        raise ValueError("boxes must have x1 > x0 and y1 > y0")
    if size is None:
        if n and (sides != sides[0]).any():
            raise ValueError("boxes differ in size: pass size to resize them to one")
        out_h, out_w = (int(sides[0, 0]), int(sides[0, 1])) if n else (0, 0)
    else:
        out_h, out_w = size
    out = np.empty((n, out_h, out_w, 3), np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        yy = np.clip(np.arange(y0, y1), 0, big_h - 1)
        xx = np.clip(np.arange(x0, x1), 0, big_w - 1)
        crop = frames[i][yy[:, None], xx[None, :]]
        out[i] = crop if size is None else resize_frames(crop[None], (out_h, out_w))[0]
    return out


def _fingerprint(path: Path) -> np.ndarray:
    st = path.stat()
    return np.array([st.st_size, st.st_mtime_ns], np.int64)


def load_track(video_path: str | Path, cache: str | Path, *, scale: float = 1.5) -> Track:
    """The track of ``video_path``, computed once and cached in the .npz file ``cache``.

    The cache is reused when its track version and the video's size and modification
    time match (``scale`` only sizes the window, derived from the cached extent);
    otherwise, or when it is unreadable, it is recomputed and rewritten atomically.
    """
    video_path, cache = Path(video_path), Path(cache)
    fp = _fingerprint(video_path)
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if int(z["version"]) == TRACK_VERSION and np.array_equal(z["fingerprint"], fp):
                    fs = z["frame_size"]
                    extent = z["extent"].astype(np.float32)
                    return Track(
                        center=z["center"].astype(np.float32),
                        extent=extent,
                        area=z["area"].astype(np.float32),
                        motion=z["motion"].astype(np.float32),
                        found=z["found"].astype(bool),
                        shape=z["shape"].astype(np.float32) if z["shape"].size else None,
                        frame_size=(int(fs[0]), int(fs[1])),
                        # the window follows from the extent: one cache serves every scale
                        window=_window(extent, scale, int(fs[0]), int(fs[1])),
                    )
        except Exception:  # corrupt / truncated / foreign file: recompute below
            pass
    track = compute_track(video_path, scale=scale)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(cache, "wb") as f:
        np.savez(
            f,
            center=track.center,
            extent=track.extent,
            area=track.area,
            motion=track.motion,
            found=track.found,
            shape=track.shape if track.shape is not None else np.zeros((0,), np.float32),
            frame_size=np.array(track.frame_size, np.int64),
            window=np.int64(track.window),
            version=np.int64(TRACK_VERSION),
            scale=np.float64(scale),
            fingerprint=fp,
        )
    return track
