"""Opening and validating videos: the exact PyAV reader, or decord checked against it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from deg_core.errors import VideoError
from deg_core.video.base import Backend, VideoInfo, VideoReader
from deg_core.video.decord import DecordReader, require_decord
from deg_core.video.pyav import PyAVReader


def _check_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise VideoError("file not found", path)
    if path.is_dir():
        raise VideoError("is a directory, not a video file", path)
    if path.stat().st_size == 0:
        raise VideoError("empty file (0 bytes), not a video", path)
    return path


def _check_decord(reader: DecordReader, exact: PyAVReader) -> None:
    """Raise VideoError unless decord returns the exact frames around key frames.

    Seeking to key frames is where decord goes wrong (open GOPs; a decoder that has
    not seen the first packet). Groups are read last to first, one call each, so
    every group makes decord seek.
    """
    n, keys = len(exact), exact.keyframes[exact.keyframes > 0]
    picks = keys[np.unique(np.linspace(0, len(keys) - 1, min(6, len(keys))).astype(int))]
    groups = [[n - 1]] + [[int(k) - 1, int(k), min(int(k) + 1, n - 1)] for k in picks[::-1]]
    for group in groups:
        for i, a, b in zip(group, reader.get_batch(group), exact.get_batch(group), strict=True):
            if not np.array_equal(a, b):
                raise VideoError(
                    f"decord returns a wrong frame at index {i} (differs from a sequential "
                    "decode); use backend='pyav'",
                    reader.path,
                )


def open_video(
    path: str | Path, backend: Backend = "auto", *, threads: int | None = None
) -> VideoReader:
    """Open a video for exact random and sequential access.

    ``backend``: "auto" and "pyav" give the PyAV reader; "decord" gives a decord
    reader after checking it against the PyAV one (VideoError if it disagrees, or if the
    optional decord package is not installed).
    ``threads``: decoder threads (None: the decoder's default; use 1 in DataLoader
    workers). Opening scans the container's packets (no decoding): missing,
    truncated, zero-frame and non-video files raise VideoError here; damage that
    only decoding reveals raises VideoError when those frames are read (or use
    :func:`probe_video` to decode the whole file once).
    """
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"backend must be 'auto', 'decord' or 'pyav', got {backend!r}")
    if backend == "decord":
        require_decord(Path(path))
    exact = PyAVReader.open(_check_path(path), threads=threads)
    if backend != "decord":
        return exact
    if exact.info.rotation:
        exact.close()
        raise VideoError(
            f"is shown turned by {exact.info.rotation} degrees (display matrix), which decord "
            "ignores: use backend='pyav'",
            exact.path,
        )
    info = dataclasses.replace(exact.info, backend="decord")
    reader = DecordReader(exact.path, info, threads=threads)
    try:
        _check_decord(reader, exact)
    finally:
        exact.close()
    return reader


def probe_video(path: str | Path, *, decode: bool = True) -> VideoInfo:
    """Validate a video and describe it.

    With ``decode=True`` (default) every frame is decoded once (no pixel conversion,
    ~2000+ frames/s at 640x480), so ``frames`` is the count a sequential decode
    really yields and a file that loses frames raises VideoError "truncated or
    corrupted". ``decode=False`` only scans packets (what :func:`open_video` does).
    Raises VideoError for a missing path, a directory, a non-video file (a still
    image included), a truncated or corrupted file and a video of fewer than 2 frames.
    """
    with PyAVReader.open(_check_path(path)) as reader:
        if decode:
            reader.verify_decode()
        if reader.info.frames < 2:  # nothing to classify over time; likely not a real video
            raise VideoError(f"has {reader.info.frames} frame; a video needs at least 2", path)
        return reader.info
