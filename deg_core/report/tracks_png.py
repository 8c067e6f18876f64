"""A picture of several animals' tracks: each animal's path in its own colour, over the
video's first frame (dimmed) or a blank canvas of the frame's size (``deg tracks --png``)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from deg_core.report.charts import INK, Png, _font, colour
from deg_core.tracking.animals import AnimalTracks

MAX_SIDE = 800
MIN_SIDE = 480  # a small video is drawn larger: its legend must fit and its paths show


def tracks_png(tracks: AnimalTracks, background: np.ndarray | None = None) -> Png:
    """``background``: (H, W, 3) uint8 RGB, the video's first frame; None: white."""
    height, width = tracks.frame_size
    longest = max(height, width)
    scale = MAX_SIDE / longest if longest > MAX_SIDE else max(1.0, MIN_SIDE / longest)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if background is not None:
        base = Image.fromarray(np.ascontiguousarray(background, np.uint8)).resize(size)
        image = Image.blend(base.convert("RGB"), Image.new("RGB", size, "white"), 0.45)
    else:
        image = Image.new("RGB", size, "white")
    legend = 20 * tracks.n_animals + 8
    canvas = Image.new("RGB", (size[0], size[1] + legend), "white")
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    found = tracks.found()
    for a in range(tracks.n_animals):
        xy = tracks.center[:, a] * scale
        # one polyline per run of consecutive known frames (a gap is not drawn across)
        known = found[:, a]
        edges = np.flatnonzero(np.diff(np.r_[0, known.astype(np.int8), 0]))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            points = [(float(x), float(y)) for x, y in xy[start:stop]]
            if len(points) > 1:
                draw.line(points, fill=colour(a), width=2)
            else:
                x, y = points[0]
                draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=colour(a))
        row = size[1] + 4 + 20 * a
        draw.rectangle((8, row + 4, 22, row + 14), fill=colour(a))
        n = int(known.sum())
        text = f"{tracks.names[a]}: {n}/{tracks.n_frames} frames ({tracks.source})"
        draw.text((28, row + 2), text, fill=INK, font=_font(12))
    return Png.from_image(canvas)
