"""PyAV reader whose random access is bit-identical to a sequential decode.

How: opening scans the container's packets (no decoding) for their timestamps and
key-frame flags. Frame ``i`` is the frame with the ``i``-th smallest timestamp, which
is the ``i``-th frame a sequential decode yields. To read frame ``t`` the reader
seeks to the last key frame at or before ``t``, checks that the demuxer really
landed on a key frame no later than that (else it tries an earlier one, and in the
end decodes from the start of the file), and decodes forward naming every frame by
its timestamp. Frames shown before the key frame (leading pictures of an open GOP,
which reference the previous GOP) are dropped: they are never asked for from there.
Before its first seek the reader decodes the file's first packet once: decoders keep
stream-level state from it (h264 reads the x264 version from its SEI and works around
old x264 bugs; without it ``openfield_mouse_640x480_30fps.mp4``, x264 core 148 in
4:4:4, decodes to different, corrupt pixels after every seek; decord has this bug).
Requests sorted by index continue the running decode instead of seeking whenever
that is cheaper, so a batch of nearby indices costs one seek and a sequential read
costs none. Only requested frames are converted to RGB.

Files without usable timestamps (missing or repeated) are read by counting frames
from the start of the file: exact but slow for random access.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from deg_core.errors import VideoError
from deg_core.video.base import Size, VideoInfo, VideoReader, resize_frames


def _reason(e: BaseException) -> str:
    """ffmpeg's message for an error, with its last log line when PyAV kept one."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    log = getattr(e, "log", None)
    if isinstance(log, tuple) and len(log) == 3 and log[2]:
        text = f"{text} ({str(log[2]).strip()})"
    return text


def _open_container(path: Path) -> Any:
    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        head = b""
        with contextlib.suppress(OSError), open(path, "rb") as f:
            head = f.read(12)
        # an ISO-BMFF header means a real mp4/mov that lost its index or got damaged
        what = "truncated or corrupted mp4/mov" if head[4:8] == b"ftyp" else "not a readable video"
        raise VideoError(f"{what}: {_reason(e)}", path) from None


def _scan(path: Path, container: Any) -> tuple[VideoInfo, np.ndarray, np.ndarray, bool]:
    """Demux every packet (no decoding). Returns (info, sorted pts, key-frame indices, by_pts)."""
    if not container.streams.video:
        raise VideoError("no video stream (not a video, or a video with zero frames)", path)
    fmt = container.format.name or ""
    if fmt == "image2" or fmt.endswith("_pipe"):  # FFmpeg reads a still image as a 1-frame video
        raise VideoError(f"is a still image ({fmt.removesuffix('_pipe')}), not a video", path)
    stream = container.streams.video[0]
    pts: list[int | None] = []
    key_pts: list[int] = []
    n_packets = n_corrupt = 0
    try:
        for pkt in container.demux(stream):
            if pkt.size == 0:  # the end-of-stream flush packet
                continue
            n_packets += 1
            n_corrupt += pkt.is_corrupt
            if pkt.is_discard:  # decoded as a reference but never shown (edit lists)
                continue
            pts.append(pkt.pts)
            if pkt.is_keyframe and pkt.pts is not None:
                key_pts.append(pkt.pts)
    except av.FFmpegError as e:
        raise VideoError(
            f"truncated or corrupted: reading packets failed after {n_packets}: {_reason(e)}", path
        ) from None
    n, declared = len(pts), stream.frames
    if n == 0:
        raise VideoError("zero-frame video (no frames to read)", path)
    if n_corrupt:
        raise VideoError(f"truncated or corrupted: {n_corrupt} incomplete packet(s)", path)
    if declared and n_packets < declared:
        raise VideoError(
            f"truncated or corrupted: the container declares {declared} frames but holds "
            f"{n_packets}",
            path,
        )
    by_pts = None not in pts and len(set(pts)) == n
    if by_pts:
        order = np.sort(np.array(pts, dtype=np.int64))
        keys = np.searchsorted(order, np.array(key_pts, dtype=np.int64))
        keys = np.union1d([0], keys).astype(np.int64)  # 0: the start of the file
    else:
        order, keys = np.arange(n, dtype=np.int64), np.zeros(1, np.int64)
    fps, vfr = float(stream.average_rate or stream.guessed_rate or 0.0), False
    if by_pts and n > 1 and order[-1] > order[0]:
        fps = (n - 1) / float((order[-1] - order[0]) * stream.time_base)
        steps = np.diff(order)
        median = float(np.median(steps))
        # tolerate timestamps rounded to the time base (e.g. 33/34 ms at 30 fps)
        vfr = bool(np.any(np.abs(steps - median) > max(1.5, 0.02 * median)))
    cc = stream.codec_context
    rotation = _display_rotation(path)
    width, height = (cc.height, cc.width) if rotation % 180 else (cc.width, cc.height)
    info = VideoInfo(n, fps, width, height, cc.name, vfr, "pyav", rotation)
    return info, order, keys, by_pts


def _display_rotation(path: Path) -> int:
    """The quarter turn the container's display matrix asks for (degrees counter-clockwise,
    -90, 90 or 180; 0 without one), from the first decoded frame, which carries it.
    VideoError for any other angle: deg does not resample frames to show them tilted."""
    with contextlib.suppress(av.FFmpegError, StopIteration), av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        angle = float(frame.rotation or 0)
        if angle % 90:
            raise VideoError(
                f"its display matrix turns frames by {angle:g} degrees and deg reads only "
                "quarter turns: re-encode it upright (e.g. ffmpeg -i IN -vf rotate=... OUT)",
                path,
            )
        turn = round(angle) % 360  # 0, 90, 180, 270 -> 0, 90, 180, -90
        return turn - 360 if turn > 180 else turn
    return 0


class PyAVReader(VideoReader):
    """Exact reader (see module docstring). Build with :meth:`open`."""

    backend = "pyav"
    _handles = ("_container", "_stream", "_frames")

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        pts: np.ndarray,
        keyframes: np.ndarray,
        by_pts: bool,
        threads: int | None = None,
    ):
        super().__init__(path, info)
        self.pts = pts  # (N,) int64 presentation timestamps, frame i has pts[i]
        self.keyframes = keyframes  # (K,) int64 frame indices decoding may start at
        self.by_pts = by_pts
        self.threads = threads
        self.first_decode_error: str | None = None
        self._container: Any = None
        self._stream: Any = None
        self._frames: Iterator[tuple[int, Any]] | None = None  # the running decode
        self._next = -1  # frame index the running decode yields next
        self._primed = False  # the open decoder has decoded the file's first packet

    @classmethod
    def open(cls, path: Path, threads: int | None = None) -> PyAVReader:
        """Scan ``path``'s packets; VideoError if it is not a readable, complete video."""
        container = _open_container(path)
        try:
            info, pts, keys, by_pts = _scan(path, container)
        finally:
            container.close()
        return cls(path, info, pts, keys, by_pts, threads)

    @property
    def frame_times(self) -> np.ndarray:
        """(N,) float64 seconds at which each frame is shown, from the first frame's (the
        container's timestamps; ``i / fps`` for a file without usable ones)."""
        if not self.by_pts:
            return np.arange(len(self.pts), dtype=np.float64) / (self.info.fps or 1.0)
        with av.open(str(self.path)) as container:
            base = container.streams.video[0].time_base
        return (self.pts - self.pts[0]).astype(np.float64) * float(base or 0)

    def close(self) -> None:
        self._fork_guard()
        if self._frames is not None:
            self._frames.close()  # type: ignore[attr-defined]
        if self._container is not None:
            self._container.close()
        super().close()
        self._next = -1

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._next = -1

    # -- positioning ---------------------------------------------------------------

    def _open(self) -> None:
        self.close()
        self._container = _open_container(self.path)
        self._owner_pid = os.getpid()
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        if self.threads:
            self._stream.thread_count = self.threads
        self._primed = False

    def _restart(self) -> None:
        """(Re)open the file; decoding from here is the plain sequential decode."""
        self._open()
        self._frames = self._decode(self._container.demux(self._stream), None)
        self._next = 0

    def _prime(self) -> None:
        """Reopen and decode the first packet, so the decoder holds the stream-level state
        a sequential decode has (see module docstring); the seek then flushes its output."""
        self._open()
        for pkt in self._container.demux(self._stream):
            if pkt.size:
                with contextlib.suppress(av.FFmpegError):
                    self._stream.decode(pkt)
                break
        self._primed = True

    def _seek(self, key: int) -> bool:
        """Start decoding at key frame ``key`` (or an earlier one); False if the demuxer
        did not land on a key frame at or before it."""
        if self._frames is not None:
            self._frames.close()  # type: ignore[attr-defined]
        self._frames, self._next = None, -1
        target = int(self.pts[key])
        try:
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        except av.FFmpegError:
            return False
        packets = self._container.demux(self._stream)
        first = next((p for p in packets if p.size), None)
        if first is None or not first.is_keyframe or first.pts is None or first.pts > target:
            return False
        start = int(np.searchsorted(self.pts, first.pts))
        if start >= len(self.pts) or self.pts[start] != first.pts:
            return False
        self._frames = self._decode(itertools.chain([first], packets), int(first.pts))
        self._next = start
        return True

    def _position(self, t: int) -> None:
        """Make the running decode yield frame ``t`` soon: keep decoding forward when
        that is cheaper than seeking, else seek to the last key frame <= t."""
        pos = int(np.searchsorted(self.keyframes, t, side="right")) - 1
        if self._frames is not None and self.keyframes[pos] <= self._next <= t:
            return
        if pos > 0 and self.by_pts:
            if self._container is None or not self._primed:
                self._prime()
            for p in range(pos, max(pos - 3, 0), -1):  # a few earlier key frames, then the start
                if self._seek(int(self.keyframes[p])):
                    return
        self._restart()

    # -- decoding -----------------------------------------------------------------

    def _decode(self, packets: Iterable[Any], min_pts: int | None) -> Iterator[tuple[int, Any]]:
        """Yield (frame index, av.VideoFrame) in presentation order from ``packets``."""
        count = 0
        for pkt in packets:
            try:
                frames = self._stream.decode(pkt)
                self._primed = True  # (after a restart) the decoder has seen packet 0
            except av.FFmpegError as e:
                # skip the damaged packet, as ffmpeg does; frames it held go missing and
                # reading them raises "truncated or corrupted"
                self.first_decode_error = self.first_decode_error or _reason(e)
                continue
            for frame in frames:
                if not self.by_pts:
                    count += 1
                    yield count - 1, frame
                    continue
                if frame.pts is None:
                    raise VideoError("decoded a frame without a timestamp", self.path)
                if min_pts is not None and frame.pts < min_pts:
                    continue  # leading picture of an open GOP: needs the previous GOP
                i = int(np.searchsorted(self.pts, frame.pts))
                if i == len(self.pts) or self.pts[i] != frame.pts:
                    raise VideoError(
                        f"decoded a frame (pts {frame.pts}) that the container index lacks",
                        self.path,
                    )
                yield i, frame

    def _advance(self, t: int) -> Any:
        """Decode forward to frame ``t``; returns its av.VideoFrame."""
        assert self._frames is not None
        try:
            for i, frame in self._frames:
                self._next = i + 1
                if i == t:
                    return frame
                if i > t:
                    break
        except BaseException:
            self._frames, self._next = None, -1
            raise
        self._frames, self._next = None, -1
        hint = f"; decoder: {self.first_decode_error}" if self.first_decode_error else ""
        raise VideoError(
            f"truncated or corrupted: frame {t} of {len(self)} does not decode{hint}", self.path
        )

    def _convert(self, frame: Any, size: Size | None) -> np.ndarray:
        """av.VideoFrame -> (h, w, 3) uint8 RGB (grey and YUV alike, via swscale)."""
        rgb = frame.to_ndarray(format="rgb24")
        if self.info.rotation:  # np.rot90 turns counter-clockwise for k > 0, as the matrix
            rgb = np.ascontiguousarray(np.rot90(rgb, k=self.info.rotation // 90))
        if rgb.shape[:2] != (self.info.height, self.info.width):
            raise VideoError(
                f"frame size changed mid-stream to {rgb.shape[1]}x{rgb.shape[0]}", self.path
            )
        return resize_frames(rgb[None], size)[0] if size is not None else rgb

    def _frames_sorted(self, indices: np.ndarray, size: Size | None) -> Iterator[np.ndarray]:
        for t in indices.tolist():
            self._position(t)
            yield self._convert(self._advance(t), size)

    def verify_decode(self) -> None:
        """Decode every frame once from the start (no RGB conversion); VideoError unless
        exactly frames 0..N-1 come out in order."""
        self._restart()
        assert self._frames is not None
        good = 0
        try:
            for i, _ in self._frames:
                if i != good:
                    break
                good += 1
        finally:
            self.close()
        if good != len(self):
            hint = f"; decoder: {self.first_decode_error}" if self.first_decode_error else ""
            raise VideoError(
                f"truncated or corrupted: only the first {good} of {len(self)} frames decode{hint}",
                self.path,
            )
