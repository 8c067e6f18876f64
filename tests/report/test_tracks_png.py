"""The tracks picture: drawn at least MIN_SIDE (a small video's legend fits), at most
MAX_SIDE, the paths where the tracks are."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deg_core.report.tracks_png import MAX_SIDE, MIN_SIDE, tracks_png
from deg_core.tracking.animals import AnimalTracks


def _tracks(h: int, w: int) -> AnimalTracks:
    t = 30
    center = np.zeros((t, 2, 2), np.float32)
    center[:, 0] = np.c_[np.linspace(0.1 * w, 0.9 * w, t), np.full(t, 0.25 * h)]
    center[:, 1] = np.c_[np.full(t, 0.5 * w), np.linspace(0.9 * h, 0.6 * h, t)]
    extent = np.full((t, 2, 2), 0.1 * min(h, w), np.float32)
    return AnimalTracks(center, extent, ["alpha", "beta"], "csv", (h, w))


def _image(h: int, w: int) -> np.ndarray:
    png = tracks_png(_tracks(h, w), np.full((h, w, 3), 90, np.uint8))
    return np.asarray(Image.open(io.BytesIO(png.data)).convert("RGB"))


@pytest.mark.parametrize(("h", "w", "side"), [(96, 96, MIN_SIDE), (1200, 1600, MAX_SIDE)])
def test_the_picture_is_drawn_between_the_limits(h, w, side):
    img = _image(h, w)
    assert img.shape[1] == side  # the longest side is the frame's width here or square
    scale = side / max(h, w)
    # animal 1's path runs down the middle column: coloured, not the dimmed grey frame
    x = round(0.5 * w * scale)
    y = round(0.75 * h * scale)
    assert not np.allclose(img[y, x], img[5, 5])
