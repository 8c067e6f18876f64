"""Video reading: one small interface, exact random access.

Every reader returns frames as ``(N, H, W, 3)`` uint8 RGB, and random access returns
bit-identical frames to a sequential decode of the same file. Two traps make that
non-trivial, both seen with decord 0.6:

- decoders keep state from the file's first packet (h264 reads the x264 version from
  an SEI and works around old x264 bugs), so a reader whose first action is a seek
  decodes different pixels: on ``openfield_mouse_640x480_30fps.mp4`` (x264 core 148,
  4:4:4) every frame decoded after such a seek comes out corrupt;
- decord returns wrong frames around open-GOP key frames after a seek.

``backend="auto"`` (= "pyav") uses :class:`deg_core.video.pyav.PyAVReader`, exact by
construction: it primes the decoder with the first packet, seeks only to key frames it
verifies, and names decoded frames by timestamp. It is as fast as decord at random
clips and opens in milliseconds. ``backend="decord"`` is primed the same way and must
pass a check against the PyAV reader at open time (about a second on long GOPs).

Frame ``i`` is the ``i``-th frame a sequential decode yields (presentation order, also
for variable frame rate files). Resizing decodes at full size, then calls
:func:`resize_frames` (bilinear with antialiasing), the same for every path.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np

Backend = Literal["auto", "decord", "pyav"]
Size = tuple[int, int]


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds. ``frames`` counts the frames a sequential decode yields."""

    frames: int
    fps: float  # mean rate over the file (from timestamps); see variable_fps
    width: int
    height: int
    codec: str
    variable_fps: bool  # frame-to-frame timestamp steps differ
    backend: str  # the reader that serves this file: "pyav" or "decord"
    # the container's display matrix turns frames by this many degrees counter-clockwise
    # (a phone held upright: -90 or 90); frames are read turned, width and height are as shown
    rotation: int = 0


def resize_frames(frames: np.ndarray, size: Size) -> np.ndarray:
    """Resize ``(N, H, W, 3)`` uint8 frames to ``size=(height, width)``.

    Bilinear with antialiasing (torch's uint8 kernel): deterministic, and each frame's
    result does not depend on the batch it came in, so random and sequential reads
    resize identically. Returns: (N, height, width, 3) uint8.
    """
    import torch  # lazy: keep `import deg_core.video` light

    size = _check_size(size)
    if frames.shape[1:3] == size:
        return frames
    t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    out = torch.nn.functional.interpolate(t, size=size, mode="bilinear", antialias=True)
    return np.ascontiguousarray(out.permute(0, 2, 3, 1).numpy())


def _check_size(size: Any) -> Size:
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or not all(isinstance(s, int | np.integer) and s > 0 for s in size)
    ):
        raise ValueError(f"size must be (height, width) with positive ints, got {size!r}")
    return int(size[0]), int(size[1])


# Decoder handles a process inherited through fork(): never used, never freed (see
# VideoReader._fork_guard).
_INHERITED: list[tuple[Any, ...]] = []


class VideoReader(ABC):
    """Frame access to one video file. Subclasses implement ``_frames_sorted``.

    Readers pickle without their decoder handle (reopened lazily on first read), so
    they can be sent to torch DataLoader workers, and a reader inherited through
    fork() (DataLoader workers on Linux) reopens its decoder too. A reader is not
    thread-safe: use one per thread.
    """

    backend: ClassVar[str]
    _handles: ClassVar[tuple[str, ...]] = ()  # attributes dropped when pickling

    def __init__(self, path: Path, info: VideoInfo):
        self.path = path
        self.info = info
        self._owner_pid: int | None = None  # process that opened the handles

    def _fork_guard(self) -> None:
        """Forget handles opened by a parent process: a forked child has the decoder
        but not the decoder's threads, so decoding with it, or even freeing it, hangs."""
        if self._owner_pid is not None and self._owner_pid != os.getpid():
            _INHERITED.append(tuple(getattr(self, name) for name in self._handles))
            for name in self._handles:
                setattr(self, name, None)
            self._owner_pid = None

    def __len__(self) -> int:
        return self.info.frames

    def __repr__(self) -> str:
        i = self.info
        return f"{type(self).__name__}({str(self.path)!r}, {i.frames} frames, {i.width}x{i.height})"

    @abstractmethod
    def _frames_sorted(self, indices: np.ndarray, size: Size | None) -> Iterator[np.ndarray]:
        """Yield one ``(h, w, 3)`` uint8 frame per index of the sorted, unique ``indices``."""

    def _out_shape(self, n: int, size: Size | None) -> tuple[int, int, int, int]:
        h, w = _check_size(size) if size is not None else (self.info.height, self.info.width)
        return n, h, w, 3

    def _check_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.size == 0:
            return np.zeros(0, np.int64)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise TypeError(f"{self.path}: frame indices must be a 1-d sequence of ints")
        idx = idx.astype(np.int64)
        bad = idx[(idx < 0) | (idx >= len(self))]
        if bad.size:
            raise IndexError(
                f"{self.path}: frame index {int(bad[0])} out of range [0, {len(self)})"
            )
        return idx

    def get_batch(
        self, indices: Sequence[int] | np.ndarray, size: Size | None = None
    ) -> np.ndarray:
        """Frames at ``indices``, in that order (duplicates and any order allowed).

        Each distinct frame is decoded once; nearby indices share one seek.
        Returns: (N, H, W, 3) uint8 RGB, or (N, size[0], size[1], 3) when resized.
        """
        idx = self._check_indices(indices)
        out = np.empty(self._out_shape(len(idx), size), np.uint8)
        if len(idx) == 0:
            return out
        self._fork_guard()
        uniq, inverse, counts = np.unique(idx, return_inverse=True, return_counts=True)
        groups = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
        for positions, frame in zip(groups, self._frames_sorted(uniq, size), strict=True):
            out[positions] = frame
        return out

    def _check_range(self, start: int, stop: int | None) -> tuple[int, int]:
        stop = len(self) if stop is None else stop
        if not 0 <= start <= stop <= len(self):
            raise IndexError(f"{self.path}: frame range [{start}, {stop}) not in [0, {len(self)})")
        return int(start), int(stop)

    def read_range(self, start: int, stop: int, size: Size | None = None) -> np.ndarray:
        """Frames ``[start, stop)``. Returns: (stop - start, H, W, 3) uint8 RGB."""
        start, stop = self._check_range(start, stop)
        return self.get_batch(np.arange(start, stop), size)

    def iter_chunks(
        self, chunk: int = 64, size: Size | None = None, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Decode ``[start, stop)`` sequentially (one seek at most, none per frame).

        Yields: ``(first_index, frames)`` with frames (n <= chunk, H, W, 3) uint8 RGB.
        """
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        start, stop = self._check_range(start, stop)
        shape = self._out_shape(chunk, size)
        self._fork_guard()
        buf, first, n = np.empty(shape, np.uint8), start, 0
        for frame in self._frames_sorted(np.arange(start, stop), size):
            buf[n] = frame
            n += 1
            if n == chunk:
                yield first, buf
                buf, first, n = np.empty(shape, np.uint8), first + n, 0
        if n:
            yield first, buf[:n]

    def close(self) -> None:
        """Release the decoder; a later read reopens it."""
        self._fork_guard()
        for name in self._handles:
            setattr(self, name, None)
        self._owner_pid = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in self._handles:
            state[name] = None  # decoder handles do not pickle; reopened lazily
        state["_owner_pid"] = None
        return state
