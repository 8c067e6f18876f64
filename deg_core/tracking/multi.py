"""Several animals in one fixed-camera video, tracked without labels under stable identities.

The foreground is found as :mod:`deg_core.tracking.foreground` finds it (a per-video median
background, a robust threshold, an opening), on a small copy of the video. Every frame's
blobs are its largest connected components; identities are then carried frame to frame
by the cheapest assignment of animals to blobs on position (predicted at constant
velocity), size and appearance (mean grey level). When fewer blobs than animals are seen
the animals touch: the frame is marked ``merged``, the animals sharing a blob keep their
identities by splitting its pixels with k-means started from their predicted positions,
and when they separate size, grey level and motion re-assign them. The first frame with
as many blobs as animals starts the tracks (animal0 the largest); the tracker runs forward
and backward from it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deg_core.tracking.animals import AnimalTracks
from deg_core.tracking.foreground import (
    background,
    foreground_mask,
    largest_component,
    min_pixels,
    small_reader,
    to_chw,
)
from deg_core.video.ahead import decode_ahead

__all__ = ["best_assignment", "identity_switches", "swap_candidates", "switch_frames",
           "track_animals"]  # fmt: skip

_MAX_POINTS = 256  # pixels kept per blob, enough for k-means to split a merged blob
_EXTRA_BLOBS = 2  # blobs looked for beyond n_animals: spurious ones must not hide animals
_MIN_SHARE = 0.25  # a blob under this share of the smallest animal's usual size is noise
_GREY_SCALE = 8.0  # grey levels that cost as much as one body width of distance
_SIZE_WEIGHT = 2.0  # cost of a factor e between a blob's size and the animal's usual size
_LEARN = 0.05  # per-frame update of an animal's usual size and grey level
_MAX_PERMUTATIONS = 5040


@dataclass
class _Blob:
    """One foreground component of one frame, in working-copy pixels."""

    center: np.ndarray  # (2,) x, y
    lo: np.ndarray  # (2,) x, y of its box's first pixel
    hi: np.ndarray  # (2,) x, y of its box's last pixel
    area: float  # pixels
    grey: float  # mean grey level of its pixels
    points: np.ndarray  # (k, 2) float64 x, y of (at most _MAX_POINTS of) its pixels


def best_assignment(cost: np.ndarray) -> np.ndarray:
    """Columns for the rows of an (N, M) cost matrix, N <= M, all distinct, of least total.

    Exact over all N-permutations of the M columns while there are at most 5040 of them
    (N <= 4 with a few spare columns); greedy (cheapest pair first) beyond. Returns (N,) int.
    """
    cost = np.asarray(cost, np.float64)
    n, m = cost.shape
    if n > m:
        raise ValueError(f"need rows <= columns, got {cost.shape}")
    if n == 0:
        return np.zeros(0, np.int64)
    if math.perm(m, n) <= _MAX_PERMUTATIONS:
        perms = np.array(list(itertools.permutations(range(m), n)), np.int64)
        return perms[cost[np.arange(n), perms].sum(1).argmin()]
    out = np.full(n, -1, np.int64)
    c = cost.copy()
    for _ in range(n):
        i, j = np.unravel_index(np.argmin(c), c.shape)
        out[i] = j
        c[i, :], c[:, j] = np.inf, np.inf
    return out


# --------------------------------------------------------------------------- detection
def _blobs_of(mask: np.ndarray, grey: np.ndarray, rng: np.random.Generator) -> _Blob:
    ys, xs = np.nonzero(mask)
    pts = np.stack([xs, ys], 1).astype(np.float64)
    lo, hi = pts.min(0), pts.max(0)
    keep = pts if len(pts) <= _MAX_POINTS else pts[rng.choice(len(pts), _MAX_POINTS, False)]
    return _Blob(pts.mean(0), lo, hi, float(len(pts)), float(grey[ys, xs].mean()), keep)


def _detect(
    video: Path, n_blobs: int, max_side: int, link: int, progress: bool
) -> tuple[list[list[_Blob]], tuple[int, int], tuple[int, int]]:
    """Up to ``n_blobs`` largest foreground blobs of every frame, largest first.

    Returns: blobs per frame, (height, width) of the video and of the working copy.
    """
    rng = np.random.default_rng(0)  # subsampling of blob pixels: deterministic
    with small_reader(video, max_side) as (reader, info, (h, w)):
        big_h, big_w = info.height, info.width
        t_all = info.frames
        out: list[list[_Blob]] = [[] for _ in range(t_all)]
        if t_all == 0:
            return out, (big_h, big_w), (h, w)
        bg, thr = background(reader, (h, w), 200)
        min_px = min_pixels(h, w)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=t_all, desc=f"tracking {video.name}", unit="frame")
        with torch.inference_mode():
            chunks = decode_ahead(reader.iter_chunks(chunk=64, size=(h, w)), 2)
            for first, chunk in chunks:  # decoding overlaps the blob arithmetic
                f = to_chw(chunk)
                mask = foreground_mask(f, bg, thr)
                # fragments ``link`` px apart are one animal for the labelling; a small
                # link keeps two animals a few px apart as two blobs
                rest = F.max_pool2d(mask[:, None], link, stride=1, padding=link // 2)[:, 0]
                rest = rest.bool()
                grey = f.mean(dim=1).numpy()
                fg = mask.bool()
                for _ in range(n_blobs):  # peel off the largest component, n_blobs times
                    comp, pixels = largest_component(rest)
                    if not bool((pixels > 0).any()):
                        break
                    rest &= ~comp
                    body = (comp & fg).numpy()
                    for i in np.nonzero(body.reshape(len(body), -1).sum(1) >= min_px)[0]:
                        out[first + i].append(_blobs_of(body[i], grey[i], rng))
                if bar is not None:
                    bar.update(len(f))
        if bar is not None:
            bar.close()
    for blobs in out:  # a component's core after the link may be smaller than the next one
        blobs.sort(key=lambda b: -b.area)
    return out, (big_h, big_w), (h, w)


# --------------------------------------------------------------------------- tracking
@dataclass
class _State:
    pos: np.ndarray  # (n, 2)
    vel: np.ndarray  # (n, 2)
    area: np.ndarray  # (n,) usual size, pixels
    grey: np.ndarray  # (n,) usual mean grey level


def _kmeans(points: np.ndarray, init: np.ndarray, steps: int = 10) -> np.ndarray:
    """(k, 2) labels of ``points`` (p, 2) for k centres started at ``init``; returns (p,)."""
    centres = init.astype(np.float64).copy()
    labels = np.zeros(len(points), np.int64)
    for _ in range(steps):
        d = ((points[:, None] - centres[None]) ** 2).sum(-1)
        labels = d.argmin(1)
        for j in range(len(centres)):
            if (labels == j).any():
                centres[j] = points[labels == j].mean(0)
    return labels


def _step(state: _State, blobs: list[_Blob], unit: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """One frame: assign the animals to ``blobs``, update ``state`` in place.

    Returns: centre (n, 2) and extent (n, 2) in working pixels (NaN: not seen) and
    whether animals shared a blob.
    """
    n = len(state.pos)
    pred = state.pos + state.vel
    centre = np.full((n, 2), np.nan)
    extent = np.full((n, 2), np.nan)
    m = len(blobs)
    if m == 0:  # nobody seen: hold the animals where they are
        state.vel *= 0.5
        return centre, extent, False
    b_c = np.stack([b.center for b in blobs])
    b_area = np.array([b.area for b in blobs])
    b_grey = np.array([b.grey for b in blobs])
    if m >= n:
        dist = np.linalg.norm(pred[:, None] - b_c[None], axis=2) / unit
        size = _SIZE_WEIGHT * np.abs(np.log(b_area[None] / state.area[:, None]))
        look = np.abs(b_grey[None] - state.grey[:, None]) / _GREY_SCALE
        pick = best_assignment(dist + size + look)
        for i, j in enumerate(pick):
            b = blobs[j]
            centre[i], extent[i] = b.center, b.hi - b.lo + 1
        state.vel = 0.5 * state.vel + 0.5 * (centre - state.pos)
        state.pos = centre.copy()
        state.area += _LEARN * (b_area[pick] - state.area)
        state.grey += _LEARN * (b_grey[pick] - state.grey)
        return centre, extent, False
    # fewer blobs than animals: some share one. Every animal goes to one blob (each blob
    # gets one at least), by nearness to the blob's pixels and the sizes that add up
    near = (
        np.stack(
            [np.sqrt(((b.points[None] - pred[:, None]) ** 2).sum(-1)).min(1) for b in blobs], 1
        )
        / unit
    )  # (n, m)
    best, best_cost = None, np.inf
    for combo in itertools.product(range(m), repeat=n):
        owners = np.array(combo)
        if len(set(combo)) < m:
            continue
        total = state.area @ (owners[:, None] == np.arange(m)[None])  # (m,) summed sizes
        c = near[np.arange(n), owners].sum() + _SIZE_WEIGHT * np.abs(np.log(b_area / total)).sum()
        if c < best_cost:
            best, best_cost = owners, c
    assert best is not None
    for j, b in enumerate(blobs):
        who = np.nonzero(best == j)[0]
        if len(who) == 1:
            centre[who[0]], extent[who[0]] = b.center, b.hi - b.lo + 1
            continue
        # the animals in this blob keep their identities: k-means started at each one's
        # prediction keeps cluster k with animal who[k]
        parts = _kmeans(b.points, pred[who])
        for k, a in enumerate(who):
            p = b.points[parts == k]
            if len(p) == 0:
                centre[a], extent[a] = pred[a], b.hi - b.lo + 1
            else:
                centre[a], extent[a] = p.mean(0), p.max(0) - p.min(0) + 1
    # positions inside a merge are estimates: motion is damped, sizes and greys not learnt
    state.vel = 0.25 * state.vel + 0.25 * (centre - state.pos)
    state.pos = centre.copy()
    return centre, extent, True


def _run(frames: list[list[_Blob]], order: range, init: _State, unit: float, out: tuple) -> None:
    center, extent, merged = out
    state = _State(init.pos.copy(), np.zeros_like(init.vel), init.area.copy(), init.grey.copy())
    for t in order:
        center[t], extent[t], merged[t] = _step(state, frames[t], unit)


def track_animals(
    video: Path, n_animals: int, *, max_side: int = 160, progress: bool = False
) -> AnimalTracks:
    """Track ``n_animals`` animals of a fixed-camera video under stable identities.

    Returns AnimalTracks with ``center`` and ``extent`` (T, n_animals, 2) in full-frame
    pixels (NaN in frames where the animal's blob was not seen), names ``animal0``... with
    animal0 the largest where the tracks start, source "deg" and ``merged`` (T,) True where
    animals shared a blob (their positions there are k-means estimates). If no frame shows
    ``n_animals`` blobs, only as many animals as the busiest frame shows are tracked; the
    others are NaN throughout.
    """
    if int(n_animals) != n_animals or n_animals < 1:
        raise ValueError(f"n_animals must be a positive integer, got {n_animals}")
    n_animals = int(n_animals)
    video = Path(video)
    link = 5 if n_animals == 1 else 3  # one animal: link fragments as track.py does
    frames, (big_h, big_w), (h, w) = _detect(
        video, n_animals + _EXTRA_BLOBS, max_side, link, progress
    )
    t_all = len(frames)
    center = np.full((t_all, n_animals, 2), np.nan)
    extent = np.full((t_all, n_animals, 2), np.nan)
    merged = np.zeros(t_all, bool)
    counts = np.array([len(b) for b in frames], np.int64)
    n = int(min(n_animals, counts.max(initial=0)))
    if n > 0:
        # usual animal size: the n largest blobs of frames showing n or more; far smaller
        # blobs are noise (specks, reflections) and are dropped everywhere
        full = [b[:n] for b in frames if len(b) >= n]
        sizes = np.sort(np.array([[x.area for x in b] for b in full]), axis=1)[:, ::-1]
        usual = np.median(sizes, axis=0)  # (n,) largest first
        frames = [[x for x in b if x.area >= _MIN_SHARE * usual[-1]] for b in frames]
        counts = np.array([len(b) for b in frames], np.int64)
        n = int(min(n, counts.max(initial=0)))
    if n > 0:
        exact = np.nonzero(counts == n)[0]
        t0 = int(exact[0]) if len(exact) else int(np.nonzero(counts >= n)[0][0])
        first = frames[t0][:n]  # largest first
        init = _State(
            pos=np.stack([b.center for b in first]),
            vel=np.zeros((n, 2)),
            area=np.array([b.area for b in first]),
            grey=np.array([b.grey for b in first]),
        )
        unit = max(1.0, float(np.sqrt(np.median(usual))))  # about a body width, px
        c, e = np.full((t_all, n, 2), np.nan), np.full((t_all, n, 2), np.nan)
        _run(frames, range(t0, t_all), init, unit, (c, e, merged))
        _run(frames, range(t0 - 1, -1, -1), init, unit, (c, e, merged))
        sx, sy = big_w / w, big_h / h
        # working-copy pixel centres -> full-frame pixel centres
        center[:, :n] = (c + 0.5) * (sx, sy) - 0.5
        extent[:, :n] = e * (sx, sy)
    return AnimalTracks(
        center=center.astype(np.float32),
        extent=extent.astype(np.float32),
        names=[f"animal{i}" for i in range(n_animals)],
        source="deg",
        frame_size=(big_h, big_w),
        merged=merged,
    )


# --------------------------------------------------------------------------- checks
def swap_candidates(tracks: AnimalTracks, *, jump: float = 0.75) -> list[int]:
    """Frames where identities may have swapped, sorted: the first frame after every
    merged stretch (animals separating) and frames where an animal moved more than
    ``jump`` x its usual size (median larger side of its box) since the frame before."""
    t = tracks.n_frames
    m = tracks.merged
    out = set(np.nonzero(m[:-1] & ~m[1:])[0] + 1) if t > 1 else set()
    if t > 1 and tracks.n_animals:
        step = np.linalg.norm(np.diff(tracks.center.astype(np.float64), axis=0), axis=2)
        size = _usual_sizes(tracks.extent)  # NaN for an animal never found: no jumps
        with np.errstate(invalid="ignore"):
            big = step > jump * size[None]  # NaN steps and sizes compare False
        out |= set(np.nonzero(big.any(axis=1))[0] + 1)
    return sorted(int(i) for i in out)


def _usual_sizes(extent: np.ndarray) -> np.ndarray:
    """(N,) each animal's median larger box side over the frames it was found in; NaN for
    an animal never found (without numpy's all-NaN warnings)."""
    larger = np.fmax(extent[..., 0], extent[..., 1]).astype(np.float64)  # (T, N)
    found = ~np.isnan(larger)
    return np.array(
        [
            np.median(larger[found[:, i], i]) if found[:, i].any() else np.nan
            for i in range(larger.shape[1])
        ]
    )


def switch_frames(pred_center: np.ndarray, true_center: np.ndarray) -> np.ndarray:
    """Frames where the best matching of predicted to true identities changes.

    ``pred_center``, ``true_center``: (T, N, 2). Per frame the matching of least summed
    distance (exact over all N! matchings); frames with any NaN in either are skipped, and
    each valid frame is compared with the valid frame before it. Returns: (S,) int64.
    """
    pred = np.asarray(pred_center, np.float64)
    true = np.asarray(true_center, np.float64)
    if pred.shape != true.shape or pred.ndim != 3 or pred.shape[2] != 2:
        raise ValueError(f"need two (T, N, 2) arrays of one shape, got {pred.shape}, {true.shape}")
    ok = ~(np.isnan(pred).any(axis=(1, 2)) | np.isnan(true).any(axis=(1, 2)))
    n = pred.shape[1]
    if n < 2 or ok.sum() < 2:
        return np.zeros(0, np.int64)
    perms = np.array(list(itertools.permutations(range(n))), np.int64)  # (P, N)
    frames = np.nonzero(ok)[0]
    d = np.linalg.norm(pred[ok][:, :, None] - true[ok][:, None, :], axis=3)  # (t, N, N)
    best = d[:, np.arange(n)[None], perms].sum(2).argmin(1)  # (t,) over the P matchings
    return frames[1:][best[1:] != best[:-1]]


def identity_switches(pred_center: np.ndarray, true_center: np.ndarray) -> int:
    """How many frames :func:`switch_frames` finds: the identity-switch count."""
    return len(switch_frames(pred_center, true_center))
