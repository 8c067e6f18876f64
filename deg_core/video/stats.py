"""Per-channel pixel statistics and file checksums of videos."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.errors import DegError
from deg_core.video.base import Size, VideoReader
from deg_core.video.open import open_video


def channel_stats(
    source: str | Path | VideoReader, max_frames: int = 500, *, size: Size | None = None
) -> dict[str, Any]:
    """Per-channel mean and std of the pixels, on a 0..1 scale, in one streaming pass.

    Uses all frames when there are at most ``max_frames``, else ``max_frames`` evenly
    spaced ones, read in chunks. Each frame's moments are exact (integer sums from a
    histogram); frames are merged with Chan et al.'s pairwise update, which stays accurate where
    ``E[x^2] - E[x]^2`` would cancel. Returns: {"mean": [r, g, b], "std": [r, g, b],
    "n_frames": n} (population std).
    """
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    reader = source if isinstance(source, VideoReader) else open_video(source)
    try:
        n = len(reader)
        if n <= max_frames:
            chunks = (frames for _, frames in reader.iter_chunks(32, size))
        else:
            idx = np.unique(np.linspace(0, n - 1, max_frames).round().astype(np.int64))
            chunks = (reader.get_batch(idx[i : i + 32], size) for i in range(0, len(idx), 32))
        count, mean, m2, used = 0, np.zeros(3), np.zeros(3), 0
        for frames in chunks:
            for frame in frames:
                k = frame.shape[0] * frame.shape[1]
                # exact integer moments from a histogram (fast for uint8), then one
                # rounding each
                hists = [np.bincount(frame[..., c].ravel(), minlength=256) for c in range(3)]
                s1 = [int(h @ _LEVELS) for h in hists]
                s2 = [int(h @ _LEVELS_SQ) for h in hists]
                f_mean = np.array([a / k for a in s1])
                f_m2 = np.array([(k * b - a * a) / k for a, b in zip(s1, s2, strict=True)])
                total = count + k
                delta = f_mean - mean
                mean = mean + delta * (k / total)
                m2 = m2 + f_m2 + delta**2 * (count * k / total)
                count, used = total, used + 1
    finally:
        if reader is not source:
            reader.close()
    std = np.sqrt(np.maximum(m2, 0.0) / max(count, 1))
    return {
        "mean": [float(v) / 255 for v in mean],
        "std": [float(v) / 255 for v in std],
        "n_frames": used,
    }


_LEVELS = np.arange(256, dtype=np.int64)
_LEVELS_SQ = _LEVELS**2


def file_checksum(path: str | Path, algo: str = "sha256") -> str:
    """Streaming hash of a file's bytes, as ``"<algo>:<hex>"``."""
    path = Path(path)
    if not path.is_file():
        raise DegError("file not found", path)
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return f"{algo}:{h.hexdigest()}"
