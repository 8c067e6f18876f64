"""Frame server for the Labeler: decode, resize, JPEG-encode, cache, prefetch.

The front end asks for frames by index and gets one JPEG per frame. Three things keep
stepping and scrubbing fast:

- an LRU cache of encoded JPEGs (bounded in bytes);
- neighbouring frames are decoded in one sequential pass (``read_range`` for runs,
  ``get_batch`` on sorted indices otherwise), never one seek per frame;
- a background thread decodes around the playhead whenever it moves (:meth:`hint`),
  so the next frames are usually cached before they are asked for.

Readers are not thread-safe: the caller's thread and the prefetch thread each own one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from deg_core.video import VideoReader, open_video

__all__ = ["FrameServer", "encode_jpeg", "fit_size"]


def fit_size(height: int, width: int, max_edge: int) -> tuple[int, int]:
    """(h, w) scaled so the longer edge is <= ``max_edge`` (never upscaled; >= 1 px)."""
    scale = min(1.0, max_edge / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def encode_jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes (torchvision's libjpeg-turbo)."""
    import torch
    from torchvision.io import encode_jpeg as _encode

    chw = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).contiguous()
    return bytes(_encode(chw, quality=quality).numpy().tobytes())


class _LRU:
    """Thread-safe index -> JPEG cache, evicting least recently used past ``max_bytes``."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[int, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, index: int) -> bytes | None:
        with self._lock:
            data = self._items.get(index)
            if data is not None:
                self._items.move_to_end(index)
            return data

    def __contains__(self, index: int) -> bool:
        with self._lock:
            return index in self._items

    def put(self, index: int, data: bytes) -> None:
        with self._lock:
            old = self._items.pop(index, None)
            if old is not None:
                self._bytes -= len(old)
            self._items[index] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


def _runs(indices: Sequence[int], max_gap: int) -> list[list[int]]:
    """Sorted unique indices split where the gap exceeds ``max_gap``."""
    out: list[list[int]] = []
    for i in sorted(set(indices)):
        if out and i - out[-1][-1] <= max_gap:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def _block(wanted: list[int], size: int) -> list[int]:
    """The contiguous stretch of ``wanted`` around ``wanted[0]`` (at most ``size``), sorted."""
    pool = set(wanted)
    lo = hi = wanted[0]
    while hi - lo + 1 < size and (hi + 1 in pool or lo - 1 in pool):
        if hi + 1 in pool:
            hi += 1
        else:
            lo -= 1
    return list(range(lo, hi + 1))


class FrameServer:
    """JPEGs of one video's frames, resized so the longer edge is <= ``max_edge``.

    Args:
        video: the video file.
        max_edge: longest edge of served frames in pixels (frames are never upscaled).
        quality: JPEG quality 1..100.
        cache_bytes: LRU cache budget.
        prefetch: frames ahead of / behind the playhead the background thread keeps cached
            (0, 0 disables the thread).
    """

    #: frames decoded per prefetch step; the thread re-reads the playhead between steps
    CHUNK = 8
    #: indices at most this far apart are decoded in one forward pass instead of a seek
    MAX_GAP = 12

    def __init__(
        self,
        video: str | Path,
        max_edge: int = 512,
        quality: int = 85,
        cache_bytes: int = 96 * 2**20,
        prefetch: tuple[int, int] = (48, 12),
    ):
        if not 1 <= quality <= 100:
            raise ValueError(f"jpeg quality must be in 1..100, got {quality}")
        if max_edge < 16:
            raise ValueError(f"frame size must be >= 16 pixels, got {max_edge}")
        self.path = Path(video)
        self.quality = int(quality)
        self._reader = open_video(self.path)  # the calling thread's reader
        info = self._reader.info
        self.n_frames = len(self._reader)
        self.size = fit_size(info.height, info.width, max_edge)  # (h, w) served
        self._resize: tuple[int, int] | None = (
            None if self.size == (info.height, info.width) else self.size
        )
        self.cache = _LRU(cache_bytes)
        self.ahead, self.behind = prefetch
        self._lock = threading.Lock()  # guards the caller's reader
        self._playhead = 0
        self._ahead_now = self.ahead
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._demand = threading.Event()  # set while a request decodes: prefetch waits
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ serving
    def check(self, indices: Iterable[int]) -> list[int]:
        """The indices as ints; IndexError naming the first one out of range."""
        out = []
        for i in indices:
            if isinstance(i, bool) or not isinstance(i, int | np.integer):
                raise TypeError(f"frame index must be an int, got {i!r}")
            if not 0 <= i < self.n_frames:
                raise IndexError(f"frame {i} out of range [0, {self.n_frames})")
            out.append(int(i))
        return out

    def jpeg(self, index: int) -> bytes:
        """The JPEG of frame ``index`` (cached, else decoded now)."""
        return self.jpegs([index])[0]

    def jpegs(self, indices: Sequence[int]) -> list[bytes]:
        """JPEGs of ``indices`` in that order (duplicates allowed)."""
        got: dict[int, bytes] = {}
        for part in self.serve(indices):
            got.update(part)
        return [got[i] for i in self.check(indices)]

    def serve(self, indices: Sequence[int]) -> Iterator[dict[int, bytes]]:
        """Yield {index: JPEG} parts covering ``indices``: the cached ones at once,
        then each run of neighbouring missing frames as soon as it is decoded."""
        wanted = self.check(indices)
        cached = {i: data for i in dict.fromkeys(wanted) if (data := self.cache.get(i))}
        if cached:
            yield cached
        missing = [i for i in dict.fromkeys(wanted) if i not in cached]
        if not missing:
            return
        self._demand.set()
        try:
            with self._lock:
                for run in _runs(missing, self.MAX_GAP):
                    yield self._decode(self._reader, run)
        finally:
            self._demand.clear()

    def _decode(self, reader: VideoReader, run: list[int]) -> dict[int, bytes]:
        """Decode sorted ``run`` in one forward pass; cache and return its JPEGs."""
        if run[-1] - run[0] + 1 == len(run):
            frames = reader.read_range(run[0], run[-1] + 1, self._resize)
        else:
            frames = reader.get_batch(run, self._resize)
        out = {}
        for i, frame in zip(run, frames, strict=True):
            out[i] = encode_jpeg(frame, self.quality)
            self.cache.put(i, out[i])
        return out

    # ------------------------------------------------------------------ prefetch
    def hint(self, playhead: int, playing_speed: float = 0.0) -> None:
        """The playhead moved: prefetch around it (further ahead while playing)."""
        self._playhead = min(max(int(playhead), 0), self.n_frames - 1)
        boost = int(self.ahead * max(0.0, playing_speed))
        self._ahead_now = self.ahead + boost
        if self.ahead + self.behind <= 0:
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._prefetch_loop, name=f"deg-frames-{self.path.stem}", daemon=True
            )
            self._thread.start()
        self._wake.set()

    def _wanted(self) -> list[int]:
        """Uncached frames near the playhead: ahead first (nearest first), then behind."""
        p, n = self._playhead, self.n_frames
        ahead = range(p, min(n, p + self._ahead_now + 1))
        behind = range(p - 1, max(-1, p - self.behind - 1), -1)
        return [i for i in [*ahead, *behind] if i not in self.cache]

    def _prefetch_loop(self) -> None:
        reader = open_video(self.path)  # this thread's own reader
        try:
            while not self._stop.is_set():
                self._wake.wait()
                self._wake.clear()
                while not self._stop.is_set():
                    if self._demand.is_set():  # a request is decoding: do not compete
                        self._demand_wait()
                        continue
                    wanted = self._wanted()
                    if not wanted:
                        break
                    self._decode(reader, _block(wanted, self.CHUNK))
                    if self._wake.is_set():  # moved meanwhile: recompute around it
                        self._wake.clear()
        except Exception:  # prefetch is an optimisation: a failure only costs speed
            import logging

            logging.getLogger(__name__).exception("frame prefetch stopped")
        finally:
            reader.close()

    def _demand_wait(self) -> None:
        while self._demand.is_set() and not self._stop.is_set():
            self._stop.wait(0.002)

    def idle(self, timeout: float = 5.0) -> bool:
        """Wait until the prefetch thread has nothing left to do (for tests, benchmarks)."""
        import time

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self._wanted() or self._thread is None:
                return True
            time.sleep(0.002)
        return False

    def close(self) -> None:
        """Stop the prefetch thread and release the decoders."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            self._reader.close()
        self.cache.clear()
