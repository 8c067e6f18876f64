"""The decord reader: primed like PyAV, checked against it when opened (see video.open).

decord is optional (``deg[decord]``: wheels exist only for x86-64 Linux and Windows), so it is
imported only when a decord reader first decodes; :func:`require_decord` says how to get it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.errors import VideoError
from deg_core.video.base import Size, VideoInfo, VideoReader, resize_frames

DECORD_MISSING = (
    "backend='decord' needs the optional decord package (wheels for x86-64 Linux and Windows "
    "only): `uv sync --extra decord` or `pip install 'deg[decord]'`; backend='pyav' (the "
    "default) needs nothing"
)


def decord_available() -> bool:
    return importlib.util.find_spec("decord") is not None


def require_decord(path: Path | None = None) -> None:
    """Raise a one-line VideoError naming the install command when decord is missing."""
    if not decord_available():
        raise VideoError(DECORD_MISSING, path)


class DecordReader(VideoReader):
    """decord-backed reader; only built by :func:`open_video` after a check that
    decord's random access agrees with the exact PyAV reader on this file."""

    backend = "decord"
    _handles = ("_vr",)

    def __init__(self, path: Path, info: VideoInfo, threads: int | None = None):
        super().__init__(path, info)
        self.threads = threads
        self._vr: Any = None

    def _reader(self) -> Any:
        if self._vr is None:
            import decord

            try:
                self._vr = decord.VideoReader(
                    str(self.path), ctx=decord.cpu(0), num_threads=self.threads or 0
                )
            except decord.DECORDError as e:
                raise VideoError(f"decord cannot open it: {str(e)[:200]}", self.path) from None
            self._owner_pid = os.getpid()
            # decode frame 0 first: like PyAVReader._prime, so the decoder has seen the
            # first packet's stream-level state (x264 version SEI) before any seek
            self._vr.get_batch([0])
            if len(self._vr) != self.info.frames:
                raise VideoError(
                    f"decord counts {len(self._vr)} frames, a sequential decode "
                    f"yields {self.info.frames}",
                    self.path,
                )
        return self._vr

    def _frames_sorted(self, indices: np.ndarray, size: Size | None) -> Iterator[np.ndarray]:
        vr = self._reader()
        for i in range(0, len(indices), 16):  # bounded memory for large frames
            batch = vr.get_batch([int(j) for j in indices[i : i + 16]]).asnumpy()
            yield from resize_frames(batch, size) if size is not None else batch
