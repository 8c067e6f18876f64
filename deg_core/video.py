"""Video reading: one small interface, exact random access.

Every reader returns frames as ``(N, H, W, 3)`` uint8 RGB, and random access returns
bit-identical frames to a sequential decode of the same file. Two traps make that
non-trivial, both seen with decord 0.6:

- decoders keep state from the file's first packet (h264 reads the x264 version from
  an SEI and works around old x264 bugs), so a reader whose first action is a seek
  decodes different pixels: on ``openfield_mouse_640x480_30fps.mp4`` (x264 core 148,
  4:4:4) every frame decoded after such a seek comes out corrupt;
- decord returns wrong frames around open-GOP key frames after a seek.

``backend="auto"`` (= "pyav") uses :class:`deg_core.video_pyav.PyAVReader`, exact by
construction: it primes the decoder with the first packet, seeks only to key frames it
verifies, and names decoded frames by timestamp. It is as fast as decord at random
clips and opens in milliseconds. ``backend="decord"`` is primed the same way and must
pass a check against the PyAV reader at open time (about a second on long GOPs).

Frame ``i`` is the ``i``-th frame a sequential decode yields (presentation order, also
for variable frame rate files). Resizing decodes at full size, then calls
:func:`resize_frames` (bilinear with antialiasing), the same for every path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np

from deg_core.errors import DegError, VideoError
from deg_core.video_write import write_video

if TYPE_CHECKING:
    from deg_core.video_pyav import PyAVReader

__all__ = [
    "VideoInfo",
    "VideoReader",
    "channel_stats",
    "file_checksum",
    "open_video",
    "probe_video",
    "resize_frames",
    "write_video",
]

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
    reader after checking it against the PyAV one (VideoError if it disagrees).
    ``threads``: decoder threads (None: the decoder's default; use 1 in DataLoader
    workers). Opening scans the container's packets (no decoding): missing,
    truncated, zero-frame and non-video files raise VideoError here; damage that
    only decoding reveals raises VideoError when those frames are read (or use
    :func:`probe_video` to decode the whole file once).
    """
    from deg_core.video_pyav import PyAVReader

    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"backend must be 'auto', 'decord' or 'pyav', got {backend!r}")
    exact = PyAVReader.open(_check_path(path), threads=threads)
    if backend != "decord":
        return exact
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
    from deg_core.video_pyav import PyAVReader

    with PyAVReader.open(_check_path(path)) as reader:
        if decode:
            reader.verify_decode()
        if reader.info.frames < 2:  # nothing to classify over time; likely not a real video
            raise VideoError(f"has {reader.info.frames} frame; a video needs at least 2", path)
        return reader.info


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
