"""Foreground on a fixed camera, shared by the one-animal tracker (track.py) and the
several-animal one (multi.py): a small working copy of the video, its per-pixel median
background and noise threshold, the difference image, a morphological opening, and the
largest connected blob of a mask."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deg_core.video import VideoInfo, VideoReader, open_video

__all__ = [
    "MIN_PIXELS",
    "background",
    "difference",
    "foreground_mask",
    "largest_component",
    "min_pixels",
    "open_mask",
    "small_reader",
    "small_size",
    "to_chw",
]

FLOOR = 20.0  # grey levels: below this a difference is compression noise or flicker
NOISE_K = 6.0  # threshold in units of the robust noise level of the difference image
MIN_PIXELS = 9  # at the working scale: one 3x3 opening kernel; smaller = not found


def small_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    f = min(1.0, max_side / max(height, width))
    return max(1, round(height * f)), max(1, round(width * f))


@contextmanager
def small_reader(
    path: str | Path, max_side: int
) -> Iterator[tuple[VideoReader, VideoInfo, tuple[int, int]]]:
    """The video's reader (closed on leaving), its info and the (h, w) of the working copy
    whose longest side is ``max_side`` px: how both trackers open a video."""
    reader = open_video(path)
    try:
        info = reader.info
        yield reader, info, small_size(info.height, info.width, max_side)
    finally:
        reader.close()


def background(
    reader: VideoReader, size: tuple[int, int], sample: int
) -> tuple[torch.Tensor, float]:
    """The per-pixel median of ``sample`` frames spread over the video (of >= 1 frame) at
    working ``size`` (h, w), as a (3, h, w) float32 image, and the foreground threshold on
    :func:`difference` from it: a multiple of the robust noise level, at least FLOOR."""
    t_all = reader.info.frames
    idx = np.unique(np.linspace(0, t_all - 1, max(1, min(sample, t_all))).round())
    bgs = to_chw(reader.get_batch(idx.astype(np.int64), size=size))
    bg = bgs.median(dim=0).values
    # robust noise level of |frame - background|: median abs deviation as sigma
    sigma = 1.4826 * float(difference(bgs, bg).median())
    return bg, max(FLOOR, NOISE_K * sigma)


def to_chw(frames: np.ndarray) -> torch.Tensor:
    """(n, h, w, 3) uint8 -> (n, 3, h, w) float32."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()


def difference(frames: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """(n, 3, h, w) frames, (3, h, w) background -> (n, h, w) absolute difference.

    Each frame's per-channel median difference is removed first, so a global change of
    exposure or lighting does not light up the whole frame; the max over channels keeps
    an animal that differs from the floor in colour more than in brightness.
    """
    d = frames - bg
    # the median of every 7th pixel is as good an offset and several times cheaper
    d = d - d.flatten(2)[:, :, ::7].median(dim=2).values[:, :, None, None]
    return d.abs().amax(dim=1)


def open_mask(mask: torch.Tensor) -> torch.Tensor:
    """Morphological 3x3 opening of a (n, h, w) float 0/1 mask: drops specks and thin lines."""
    m = mask[:, None]
    m = -F.max_pool2d(-m, 3, stride=1, padding=1)  # erosion
    return F.max_pool2d(m, 3, stride=1, padding=1)[:, 0]  # dilation


def foreground_mask(frames: torch.Tensor, bg: torch.Tensor, thr: float) -> torch.Tensor:
    """(n, 3, h, w) frames -> (n, h, w) float 0/1: pixels whose :func:`difference` from
    ``bg`` exceeds ``thr`` (from :func:`background`), opened."""
    return open_mask((difference(frames, bg) > thr).float())


def min_pixels(h: int, w: int) -> int:
    """The fewest pixels a blob of an (h, w) working copy needs to count as an animal."""
    return max(MIN_PIXELS, round(1e-4 * h * w))


def largest_component(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Largest 8-connected component of each (n, h, w) 0/1 mask.

    The nodes are runs (maximal foreground spans of a row), not pixels: two runs of adjacent
    rows join where they share a column or touch diagonally at an end. Union-find is done in
    bulk (Shiloach-Vishkin style) on the runs: every round hooks the root of each edge's
    larger end onto the smaller one, then pointer jumping flattens the trees; rounds grow
    ~log(blob size), not with blob diameter as plain label propagation does. Runs number
    ~1/10 of the pixels: 5x faster than the same on pixels, the same result.
    Returns (component (n, h, w) bool, its pixels (n,) long); ties: the lowest first pixel.
    """
    n, h, w = mask.shape
    m = mask.bool()
    comp = torch.zeros(n * h * w, dtype=torch.bool)
    pixels = torch.zeros(n, dtype=torch.long)
    start, end = m.clone(), m.clone()
    start[:, :, 1:] &= ~m[:, :, :-1]
    end[:, :, :-1] &= ~m[:, :, 1:]
    fg = m.flatten().nonzero()[:, 0]
    if len(fg) == 0:
        return comp.view(n, h, w), pixels
    run_of = torch.cumsum(start.flatten()[fg].long(), 0) - 1  # each pixel's run, in order
    k = int(run_of[-1]) + 1
    length = torch.bincount(run_of, minlength=k)
    label = torch.full((n, h, w), -1, dtype=torch.long)
    label.view(-1)[fg] = run_of
    up, down = label[:, :-1], label[:, 1:]
    a_parts, b_parts = [], []
    for touch, above, below in (
        (m[:, :-1] & m[:, 1:], up, down),  # a shared column
        (end[:, :-1, :-1] & m[:, 1:, 1:], up[:, :, :-1], down[:, :, 1:]),  # end, then x+1
        (start[:, :-1, 1:] & m[:, 1:, :-1], up[:, :, 1:], down[:, :, :-1]),  # start, x-1
    ):
        at = touch.nonzero(as_tuple=True)
        a_parts.append(above[at])
        b_parts.append(below[at])
    pairs = torch.unique(torch.cat(a_parts) * k + torch.cat(b_parts))
    a, b = pairs // k, pairs % k
    parent = torch.arange(k)
    while len(a):
        pa, pb = parent[a], parent[b]
        open_ = pa != pb
        if not bool(open_.any()):
            break
        a, b, pa, pb = a[open_], b[open_], pa[open_], pb[open_]
        # pa, pb are roots (trees are flat): hook the larger root below the smaller
        parent.scatter_reduce_(0, torch.maximum(pa, pb), torch.minimum(pa, pb), "amin")
        while True:
            jumped = parent[parent]
            if torch.equal(jumped, parent):
                break
            parent = jumped
    counts = torch.zeros(k, dtype=torch.long).scatter_add_(0, parent, length)
    frame = fg[torch.cumsum(length, 0) - length] // (h * w)  # each run's frame
    # per frame the root with most pixels (ties: lowest index), as one scatter-max
    score = counts[parent] * (k + 1) + (k - parent)
    best = torch.zeros(n, dtype=torch.long).scatter_reduce_(0, frame, score, "amax")
    win = score == best[frame]
    comp[fg[win[run_of]]] = True
    pixels.scatter_add_(0, frame[win], length[win])
    return comp.view(n, h, w), pixels
