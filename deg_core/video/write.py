"""Write videos with PyAV (test videos, the synthetic-data generator).

Writes are atomic: the file is encoded into a temporary sibling and renamed over
``path`` only when complete, so a crash never leaves a truncated video behind.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, cast

import numpy as np

from deg_core.fileio import atomic_open

_FORMATS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".avi": "avi",
    ".webm": "webm",
}
_CRF_CODECS = {"libx264", "libx265", "libvpx", "libvpx-vp9", "libsvtav1", "libaom-av1"}
_VFR_TIME_BASE = Fraction(1, 90000)


def write_video(
    path: str | Path,
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float = 30,
    codec: str = "libx264",
    *,
    gop: int | None = None,
    bframes: int | None = None,
    crf: int | None = None,
    pix_fmt: str = "yuv420p",
    timestamps: Sequence[float] | None = None,
    faststart: bool = False,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode ``frames`` into ``path`` (container from the suffix: mp4, mov, mkv, avi, webm).

    ``frames``: (T, H, W, 3) RGB or (T, H, W) grey uint8 array, or an iterable of
    (H, W, 3) / (H, W) uint8 frames. A (0, H, W[, 3]) array writes a video with zero
    frames (avi keeps the empty stream; mp4 drops it). ``gop``: max key-frame interval;
    ``bframes``: B-frames between references (encoder default: x264 uses 3); ``crf``:
    quality for x264/x265/vpx/av1 (0 = lossless for x264 with yuv444p); ``pix_fmt``:
    e.g. "yuv420p" (needs even width and height), "yuv444p" (any size), "gray" (with
    ffv1, png or rawvideo; libx264 stores grey as yuv420p), "bgr0" with ffv1 for
    lossless RGB. ``timestamps``: seconds per frame, strictly increasing, for a
    variable frame rate video (``fps`` is then only the nominal rate). ``faststart``:
    put the mp4 index before the data. ``options``: more encoder options.
    Returns the path. Raises ValueError for bad frames or settings the encoder refuses.
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown video suffix; use one of {sorted(_FORMATS)}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if fmt == "avi" and codec == "rawvideo" and pix_fmt == "rgb24":
        # ffmpeg's avi muxer tags raw rgb24 as BGR: it would read back channel-swapped
        raise ValueError("raw RGB in AVI reads back as BGR; use pix_fmt='bgr24'")
    opts = dict(options or {})
    if gop is not None:
        opts["g"] = str(gop)
    if bframes is not None:
        opts["bf"] = str(bframes)
    if crf is not None:
        if codec not in _CRF_CODECS:
            raise ValueError(f"crf is only for {sorted(_CRF_CODECS)}, not {codec}")
        opts["crf"] = str(crf)

    if isinstance(frames, np.ndarray):
        if frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[3] != 3):
            raise ValueError(f"frames must be (T, H, W, 3) or (T, H, W), got {frames.shape}")
        height, width = frames.shape[1:3]
        frame_iter: Iterator[np.ndarray] = iter(frames)
    else:
        frame_iter = iter(frames)
        first = next(frame_iter, None)
        if first is None:
            raise ValueError("no frames and no size: pass a (0, H, W, 3) array instead")
        height, width = np.asarray(first).shape[:2]
        frame_iter = itertools.chain([first], frame_iter)
    pts = None
    if timestamps is not None:
        pts = [round(float(t) / _VFR_TIME_BASE) for t in timestamps]
        if any(b <= a for a, b in itertools.pairwise(pts)):
            raise ValueError("timestamps must be strictly increasing (at 1/90000 s resolution)")

    spec = _Spec(fmt, codec, width, height, pix_fmt, fps, opts, pts, faststart, path)
    if not faststart:
        with atomic_open(path, "w+b") as f:
            _encode(f, spec, frame_iter)
        return path
    # the mp4 muxer's faststart pass reopens its output by file name, which a Python
    # file object does not have: encode into a named temporary file, then copy
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        encoded = Path(tmp) / f"video{path.suffix}"
        _encode(str(encoded), spec, frame_iter)
        with open(encoded, "rb") as src, atomic_open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return path


@dataclass(frozen=True)
class _Spec:
    fmt: str
    codec: str
    width: int
    height: int
    pix_fmt: str
    fps: float
    options: dict[str, str]
    pts: list[int] | None
    faststart: bool
    path: Path


def _encode(target: str | IO[bytes], spec: _Spec, frames: Iterator[np.ndarray]) -> None:
    import av

    container_opts = {"movflags": "+faststart"} if spec.faststart else {}
    container = av.open(target, mode="w", format=spec.fmt, options=container_opts)
    try:
        rate = Fraction(spec.fps).limit_denominator(10**6)
        stream = cast("av.VideoStream", container.add_stream(spec.codec, rate=rate))
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, spec.pix_fmt
        stream.options = dict[str, object](spec.options)
        pts = spec.pts
        if pts is not None:
            stream.codec_context.time_base = _VFR_TIME_BASE
        try:
            container.start_encoding()
        except av.FFmpegError as e:
            hint = ""
            if spec.width % 2 or spec.height % 2:
                hint = "; odd sizes need a pix_fmt without chroma subsampling, e.g. yuv444p"
            raise ValueError(
                f"{spec.path}: {spec.codec} cannot encode {spec.width}x{spec.height} "
                f"{spec.pix_fmt} ({e}){hint}"
            ) from None
        n = 0
        for img in frames:
            img = np.ascontiguousarray(img)
            if img.dtype != np.uint8 or img.shape[:2] != (spec.height, spec.width):
                raise ValueError(
                    f"frame {n}: expected uint8 of size {spec.height}x{spec.width}, "
                    f"got {img.dtype} {img.shape}"
                )
            frame = av.VideoFrame.from_ndarray(img, format="rgb24" if img.ndim == 3 else "gray")
            if pts is not None:
                if n >= len(pts):
                    raise ValueError(f"more frames than timestamps ({len(pts)})")
                frame.pts, frame.time_base = pts[n], _VFR_TIME_BASE
            for packet in stream.encode(frame):
                container.mux(packet)
            n += 1
        if pts is not None and n != len(pts):
            raise ValueError(f"{n} frames but {len(pts)} timestamps")
        for packet in stream.encode():
            container.mux(packet)
    except BaseException:
        with contextlib.suppress(Exception):  # keep the first error, not close()'s
            container.close()
        raise
    container.close()
