"""Frame server for the Labeler: decode, resize, JPEG-encode, cache, prefetch.

The front end asks for frames by index and gets one JPEG per frame. What keeps
stepping and scrubbing fast:

- an LRU cache of encoded JPEGs (bounded in bytes);
- neighbouring frames are decoded in one sequential pass (``read_range`` for runs,
  ``get_batch`` on sorted indices otherwise), never one seek per frame;
- ONE decode thread with ONE reader serves both requests (first) and prefetching
  around the playhead (:meth:`FrameServer.hint`), so after a jump the reader is already
  positioned: frames after the playhead decode forward with no second seek (two
  readers would each pay the key-frame decode of every jump).

The caller's thread never touches the reader (readers are not thread-safe): it waits for
the decode thread's results.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from deg_core.video import open_video

__all__ = ["FrameServer", "encode_jpeg", "fit_size"]
log = logging.getLogger(__name__)


def fit_size(height: int, width: int, max_edge: int) -> tuple[int, int]:
    """(h, w) scaled so the longer edge is <= ``max_edge`` (never upscaled; >= 1 px)."""
    scale = min(1.0, max_edge / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def encode_jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes.

    Pillow (libjpeg-turbo; installed with torchvision, which requires it), not
    ``torchvision.io.encode_jpeg``: that build encodes a 512x384 frame in 12-30 ms against
    Pillow's 1-1.5 ms on the same machine, and torchvision deprecates its image codecs.
    """
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame), "RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


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
        prefetch: (ahead, behind) frames around the playhead kept cached after
            :meth:`hint`; (0, 0) disables prefetching.
    """

    #: frames decoded per prefetch step; a request waits at most one step (~2 frames)
    CHUNK = 2
    #: requested indices at most this far apart are decoded in one forward pass
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
        self._reader = open_video(self.path)  # used by the decode thread only
        self.info = self._reader.info
        self.n_frames = len(self._reader)
        self.size = fit_size(self.info.height, self.info.width, max_edge)  # (h, w) served
        self._resize: tuple[int, int] | None = (
            None if self.size == (self.info.height, self.info.width) else self.size
        )
        self.cache = _LRU(cache_bytes)
        self.ahead, self.behind = prefetch
        self._playhead = 0
        self._ahead_now = self.ahead
        self._failed: set[int] = set()  # frames prefetch could not decode: not retried
        self._jobs: deque[tuple[list[int], Future[dict[int, bytes]]]] = deque()
        self._gen = 0  # bumped by hint(): the decode thread recomputes what to prefetch
        self._busy = False  # the decode thread is working (for idle())
        self._cv = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ serving
    def check(self, indices: Iterable[int]) -> list[int]:
        """The indices as ints; TypeError / IndexError naming the first bad one."""
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
        """Yield {index: JPEG} parts covering ``indices``: the cached ones at once, then
        each run of neighbouring missing frames as soon as the decode thread has it."""
        wanted = list(dict.fromkeys(self.check(indices)))
        cached = {i: data for i in wanted if (data := self.cache.get(i)) is not None}
        if cached:
            yield cached
        missing = [i for i in wanted if i not in cached]
        if not missing:
            return
        futures = [self._submit(run) for run in _runs(missing, self.MAX_GAP)]
        for fut in futures:
            yield fut.result()

    def _submit(self, run: list[int]) -> Future[dict[int, bytes]]:
        fut: Future[dict[int, bytes]] = Future()
        with self._cv:
            if self._stop:
                raise RuntimeError(f"{self.path.name}: the frame server is closed")
            self._jobs.append((run, fut))
            self._start()
            self._cv.notify_all()
        return fut

    def _job(self, run: list[int]) -> dict[int, bytes]:
        """A request's run: frames prefetched since it was queued come from the cache
        (decoding them again would cost the reader a seek back)."""
        out = {i: data for i in run if (data := self.cache.get(i)) is not None}
        rest = [i for i in run if i not in out]
        if rest:
            out.update(self._decode(rest))
        return {i: out[i] for i in run}

    def _decode(self, run: list[int]) -> dict[int, bytes]:
        """Decode sorted ``run`` in one forward pass; cache and return its JPEGs."""
        if run[-1] - run[0] + 1 == len(run):
            frames = self._reader.read_range(run[0], run[-1] + 1, self._resize)
        else:
            frames = self._reader.get_batch(run, self._resize)
        out = {}
        for i, frame in zip(run, frames, strict=True):
            out[i] = encode_jpeg(frame, self.quality)
            self.cache.put(i, out[i])
        return out

    # ------------------------------------------------------------------ prefetch
    def hint(self, playhead: int, playing_speed: float = 0.0) -> None:
        """The playhead moved: prefetch around it (further ahead while playing)."""
        self._playhead = min(max(int(playhead), 0), self.n_frames - 1)
        self._ahead_now = self.ahead + int(self.ahead * max(0.0, playing_speed))
        if self.ahead + self.behind <= 0:
            return
        with self._cv:
            if self._stop:
                return
            self._gen += 1
            self._start()
            self._cv.notify_all()

    def _wanted(self) -> list[int]:
        """Uncached frames near the playhead: ahead first (nearest first), then behind."""
        if self.ahead + self.behind <= 0:
            return []
        p, n = self._playhead, self.n_frames
        ahead = range(p, min(n, p + self._ahead_now + 1))
        behind = range(p - 1, max(-1, p - self.behind - 1), -1)
        return [i for i in (*ahead, *behind) if i not in self.cache and i not in self._failed]

    def _start(self) -> None:
        """Start the decode thread (caller holds the condition)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name=f"deg-frames-{self.path.stem}", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        idle_gen = -1  # the hint generation whose window is fully cached
        while True:
            with self._cv:
                self._busy = False
                self._cv.notify_all()
                while not (self._stop or self._jobs or self._gen != idle_gen):
                    self._cv.wait()
                if self._stop:
                    break
                job = self._jobs.popleft() if self._jobs else None
                gen = self._gen
                self._busy = True
            if job is not None:
                run, fut = job
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(self._job(run))
                    except BaseException as exc:
                        fut.set_exception(exc)
                continue
            wanted = self._wanted()
            if not wanted:
                idle_gen = gen
                continue
            block = _block(wanted, self.CHUNK)
            try:
                self._decode(block)
            except Exception:  # prefetch only saves time: a request reports the problem
                log.warning("prefetch: cannot decode frames %s of %s", block, self.path)
                self._failed.update(block)
        with self._cv:
            for _, fut in self._jobs:
                fut.cancel()
            self._jobs.clear()
            self._busy = False
            self._cv.notify_all()
        self._reader.close()

    def idle(self, timeout: float = 10.0) -> bool:
        """Wait until the decode thread has nothing left to do (tests, benchmarks)."""
        end = time.monotonic() + timeout
        with self._cv:
            while self._thread is not None and (
                self._busy or self._jobs or (self._wanted() and not self._stop)
            ):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.05))
        return True

    def close(self) -> None:
        """Stop the decode thread (pending requests are cancelled) and free the decoder."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        else:
            self._reader.close()
        self.cache.clear()
