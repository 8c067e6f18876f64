"""Optic-flow pictures: a Middlebury-style colour coding and a frames-over-flows figure.

Colour coding (Baker et al., "A Database and Evaluation Methodology for Optical Flow", 2007):
hue gives the direction of motion from a 55-colour wheel (red, yellow, green, cyan, blue,
magenta), and the colour fades to **white for zero flow**, reaching full saturation at
``max_magnitude``; flows beyond it are drawn darker (x0.75). Image axes: dx > 0 is rightwards,
dy > 0 is downwards, so the legend's colour at a point is the colour of a flow pointing from
the legend's centre towards that point.

PNGs are written with a small numpy + zlib encoder (no imaging library needed), atomically.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from deg_core.fileio import atomic_open

# Middlebury wheel: colours per segment between successive primaries/secondaries; the uneven
# counts give perceptually more even hue steps.
_WHEEL_ANCHORS = np.array(
    [[255, 0, 0], [255, 255, 0], [0, 255, 0], [0, 255, 255], [0, 0, 255], [255, 0, 255]],
    dtype=np.float64,
)
_WHEEL_COUNTS = (15, 6, 4, 11, 13, 6)  # R->Y, Y->G, G->C, C->B, B->M, M->R


def _colour_wheel() -> np.ndarray:
    """(55, 3) float64 colours in [0, 1], linearly interpolated around the six anchors."""
    parts = []
    for k, count in enumerate(_WHEEL_COUNTS):
        start, end = _WHEEL_ANCHORS[k], _WHEEL_ANCHORS[(k + 1) % len(_WHEEL_ANCHORS)]
        frac = np.arange(count, dtype=np.float64)[:, None] / count
        parts.append(start + (end - start) * frac)
    return np.concatenate(parts) / 255.0


_WHEEL = _colour_wheel()


def _as_numpy(a: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().to("cpu", torch.float32).numpy()
    return np.asarray(a)


def flow_to_rgb(flow: np.ndarray | torch.Tensor, max_magnitude: float | None = None) -> np.ndarray:
    """Colour-code one flow field.

    Args:
        flow: (2, h, w), channel 0 = dx, channel 1 = dy (any units; pixels by convention).
        max_magnitude: magnitude drawn fully saturated; None uses this flow's largest magnitude
            (a flow that is zero everywhere is then drawn all white).

    Returns:
        (h, w, 3) uint8 RGB: white where the flow is zero, hue = direction,
        saturation = magnitude / max_magnitude (darkened beyond 1). NaNs count as zero flow.
    """
    f = _as_numpy(flow).astype(np.float64)
    if f.ndim != 3 or f.shape[0] != 2:
        raise ValueError(f"flow must be (2, h, w), got {f.shape}")
    u = np.nan_to_num(f[0], nan=0.0, posinf=0.0, neginf=0.0)
    v = np.nan_to_num(f[1], nan=0.0, posinf=0.0, neginf=0.0)
    mag = np.hypot(u, v)
    if max_magnitude is None:
        scale = float(mag.max()) if mag.size else 0.0
    else:
        if not max_magnitude > 0:
            raise ValueError(f"max_magnitude must be > 0, got {max_magnitude}")
        scale = float(max_magnitude)
    rad = mag / scale if scale > 0 else np.zeros_like(mag)

    n = len(_WHEEL)
    # angle in [-1, 1]; +x (rightwards) lands at both ends of the wheel, i.e. red
    angle = np.arctan2(-v, -u) / np.pi
    pos = (angle + 1.0) / 2.0 * (n - 1)
    k0 = np.floor(pos).astype(np.int64)
    k1 = (k0 + 1) % n
    frac = (pos - k0)[..., None]
    col = (1.0 - frac) * _WHEEL[k0] + frac * _WHEEL[k1]
    inside = (rad <= 1.0)[..., None]
    col = np.where(inside, 1.0 - rad[..., None] * (1.0 - col), col * 0.75)
    return np.floor(255.0 * np.clip(col, 0.0, 1.0)).astype(np.uint8)


def colour_wheel_legend(size: int = 64) -> np.ndarray:
    """(size, size, 3) uint8 legend: the disk of flow colours on white, with a grey rim."""
    c = (size - 1) / 2.0
    r = max(size / 2.0 - 1.0, 1.0)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    u, v = (xs - c) / r, (ys - c) / r
    img = flow_to_rgb(np.stack((u, v)), max_magnitude=1.0)
    rad = np.hypot(u, v)
    img[rad > 1.0] = 255
    img[(rad > 1.0) & (rad <= 1.0 + 1.5 / r)] = 128
    return img


def _resize_nearest(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of (h, w, C) with pixel-centre alignment."""
    h, w = img.shape[:2]
    rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64), w - 1)
    return img[rows][:, cols]


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (h, w, 3) or (h, w) uint8 image (8-bit RGB / greyscale, no filtering)."""
    img = np.ascontiguousarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(
            f"encode_png expects (h, w, 3) or (h, w) uint8, got {img.shape} {img.dtype}"
        )
    h, w = img.shape[:2]
    colour_type = 2 if img.ndim == 3 else 0
    rows = img.reshape(h, -1)
    # every scanline starts with filter type 0 (none)
    raw = np.concatenate((np.zeros((h, 1), np.uint8), rows), axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Write ``image`` (see :func:`encode_png`) to ``path`` atomically."""
    data = encode_png(image)
    with atomic_open(path, "wb") as f:
        f.write(data)


def flow_figure(
    frames: np.ndarray,
    flows: np.ndarray | torch.Tensor,
    path: str | Path | None = None,
    pad: int = 4,
) -> np.ndarray:
    """A grid picture of a clip and its flows.

    Args:
        frames: (N, H, W, 3) uint8 RGB (or (N, H, W) greyscale).
        flows: (N-1, 2, h, w); flow ``i`` (between frames ``i`` and ``i+1``) is drawn under
            frame ``i``, nearest-resized to H x W.
        path: if given, the picture is also saved there as a PNG (atomically).
        pad: white gap between cells, in pixels.

    Returns:
        (2H + 3 pad, N W + (N+1) pad, 3) uint8: frames on top, flows below, and the colour-wheel
        legend in the free bottom-right cell. All flows share one colour scale (the largest
        magnitude in ``flows``) so they can be compared.
    """
    fr = np.asarray(frames)
    if fr.ndim == 3:
        fr = np.repeat(fr[..., None], 3, axis=-1)
    if fr.ndim != 4 or fr.shape[-1] != 3 or fr.dtype != np.uint8:
        raise ValueError(f"frames must be (N, H, W, 3) uint8, got {fr.shape} {fr.dtype}")
    fl = _as_numpy(flows)
    n, height, width = fr.shape[:3]
    if n < 2 or fl.ndim != 4 or fl.shape[:2] != (n - 1, 2):
        raise ValueError(f"flows must be (N-1, 2, h, w) = ({n - 1}, 2, h, w), got {fl.shape}")

    magnitudes = np.hypot(fl[:, 0], fl[:, 1])
    finite = magnitudes[np.isfinite(magnitudes)]
    peak = float(finite.max()) if finite.size else 0.0
    scale = peak if peak > 0 else 1.0

    canvas = np.full((2 * height + 3 * pad, n * width + (n + 1) * pad, 3), 255, np.uint8)

    def cell(row: int, col: int) -> tuple[int, int]:
        return pad + row * (height + pad), pad + col * (width + pad)

    for i in range(n):
        y, x = cell(0, i)
        canvas[y : y + height, x : x + width] = fr[i]
    for i in range(n - 1):
        y, x = cell(1, i)
        rgb = flow_to_rgb(fl[i], max_magnitude=scale)
        canvas[y : y + height, x : x + width] = _resize_nearest(rgb, height, width)
    side = min(height, width)
    y, x = cell(1, n - 1)
    y, x = y + (height - side) // 2, x + (width - side) // 2
    canvas[y : y + side, x : x + side] = colour_wheel_legend(side)

    if path is not None:
        save_png(path, canvas)
    return canvas
