"""Labeler frame serving, Python side: milliseconds per JPEG as the front end sees them.

Usage::

    uv run python benchmarks/bench_frames.py                  # generated 3000-frame 640x480
    uv run python benchmarks/bench_frames.py --frames 1000 --video other.mp4

Measured with :class:`deg_widgets.frames.FrameServer` (decode + resize to 512 px + JPEG
encode + LRU cache), per video:

- cold random seek: a frame far from the last one, nothing cached (no prefetch);
- cached: the same frames again;
- step +1, no prefetch: the next frame, the reader already positioned (decode forward);
- step +1 at 30 Hz with prefetch: holding ArrowRight (one step per 33 ms, the playhead
  hint sent at each step as the Labeler does): mostly cache hits;
- step +1 back to back with prefetch: as fast as the requests come.

The generated video is x264 with the encoder's default key-frame interval (250), like a
camera file; openfield_mouse_640x480_30fps.mp4 in ../shared/data (key frames every
~200 frames) is measured too when present. Numbers depend on the CPU and its load.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deg_core.video import open_video, resize_frames, write_video  # noqa: E402
from deg_widgets.frames import FrameServer, encode_jpeg  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "openfield_mouse_640x480_30fps.mp4"


def textured_frames(n: int, h: int, w: int, seed: int = 0) -> Iterator[np.ndarray]:
    """An arena-like texture with camera noise and a moving dark blob (compresses like
    a real recording: mostly static, some motion)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 120 + 40 * np.sin(xx / 37.0) * np.cos(yy / 23.0) + rng.normal(0, 8, (h, w))
    for t in range(n):
        cx = w / 2 + w / 3 * np.sin(t / 40.0)
        cy = h / 2 + h / 3 * np.cos(t / 53.0)
        blob = np.exp(-(((xx - cx) / 30.0) ** 2 + ((yy - cy) / 18.0) ** 2))
        img = base - 90 * blob + rng.normal(0, 3, (h, w))
        grey = np.clip(img, 0, 255).astype(np.uint8)
        yield np.stack([grey, grey, (grey * 0.9).astype(np.uint8)], axis=-1)


def generated_video(n: int, h: int, w: int) -> Path:
    path = Path(tempfile.gettempdir()) / f"deg_bench_frames_{n}_{w}x{h}.mp4"
    if not path.exists():
        t0 = time.perf_counter()
        write_video(path, textured_frames(n, h, w), fps=30, crf=23)
        print(f"wrote {path} in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def ms(times: list[float]) -> str:
    a = np.asarray(times) * 1000
    return f"{np.median(a):8.2f} {np.percentile(a, 90):8.2f} {a.max():8.2f}"


def far_apart(n_frames: int, count: int, rng: np.random.Generator) -> list[int]:
    """Random frames, each >= 300 frames from the previous one (a real seek every time)."""
    out: list[int] = []
    while len(out) < count:
        i = int(rng.integers(0, n_frames))
        if not out or abs(i - out[-1]) >= 300:
            out.append(i)
    return out


def bench(path: Path, max_edge: int, quality: int, samples: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(0)
    rows = []
    s = FrameServer(path, max_edge=max_edge, quality=quality, prefetch=(0, 0))
    n = s.n_frames
    s.jpeg(0)  # open and prime the decoder, warm torch
    picks = far_apart(n, samples, rng)
    cold = []
    for i in picks:
        t0 = time.perf_counter()
        s.jpeg(i)
        cold.append(time.perf_counter() - t0)
    rows.append(("cold random seek", ms(cold)))
    hot = []
    for i in picks:
        t0 = time.perf_counter()
        s.jpeg(i)
        hot.append(time.perf_counter() - t0)
    rows.append(("cached frame", ms(hot)))
    start = int(rng.integers(0, n - 400))
    s.jpeg(start)
    step = []
    for i in range(start + 1, start + 301):
        t0 = time.perf_counter()
        s.jpeg(i)
        step.append(time.perf_counter() - t0)
    rows.append(("step +1, no prefetch", ms(step)))
    size = len(s.jpeg(start + 1))
    s.close()

    for label, period in (
        ("step +1 at 30 Hz, prefetch", 1 / 30),
        ("step +1 back to back, prefetch", 0),
    ):
        s = FrameServer(path, max_edge=max_edge, quality=quality)
        start = int(rng.integers(0, n - 400))
        s.hint(start)
        s.jpeg(start)
        s.idle()
        times = []
        for i in range(start + 1, start + 301):
            t_step = time.perf_counter()
            s.hint(i)  # the Labeler hints on every playhead change
            t0 = time.perf_counter()
            s.jpeg(i)
            times.append(time.perf_counter() - t0)
            left = period - (time.perf_counter() - t_step)
            if left > 0:
                time.sleep(left)
        rows.append((label, ms(times)))
        s.close()

    # where a decoded frame's time goes
    reader = open_video(path)
    frames = reader.read_range(start, start + 30)
    t0 = time.perf_counter()
    reader.read_range(start + 30, start + 90)
    dec = (time.perf_counter() - t0) / 60
    small = resize_frames(frames, s.size)
    t0 = time.perf_counter()
    resize_frames(frames, s.size)
    rs = (time.perf_counter() - t0) / len(frames)
    t0 = time.perf_counter()
    for f in small:
        encode_jpeg(f, quality)
    enc = (time.perf_counter() - t0) / len(small)
    reader.close()
    rows.append(("  decode+RGB per frame (sequential)", f"{dec * 1000:8.2f}"))
    rows.append((f"  resize to {s.size[1]}x{s.size[0]} per frame", f"{rs * 1000:8.2f}"))
    rows.append((f"  JPEG encode q{quality} ({size // 1024} KiB)", f"{enc * 1000:8.2f}"))
    return rows


def bench_edits(n_frames: int = 54_000, behaviors: int = 6) -> list[tuple[str, str]]:
    """Python-side cost of edits on a 30-min video (labels of n_frames x behaviors): the
    edit, its journal line and the bytes synced to the front end."""
    from deg_core.project.project import Project
    from deg_widgets.label_session import LabelSession

    with tempfile.TemporaryDirectory() as tmp:
        names = [f"b{k}" for k in range(behaviors)]
        project = Project.create(tmp, "bench", names)
        write_video(Path(tmp) / "v.mp4", textured_frames(4, 64, 64), fps=30)
        key = project.add_video(Path(tmp) / "v.mp4")
        rec = project.record(key)
        rec.frames = n_frames  # labels of a long video; frames are not read here
        rec.save()
        s = LabelSession(project, key)
        rows = []

        def timed(label: str, fn, reps: int) -> None:
            times = []
            for r in range(reps):
                t0 = time.perf_counter()
                fn(r)
                s.array.tobytes()  # what the Labeler syncs after every edit
                _ = s.dirty
                times.append(time.perf_counter() - t0)
            rows.append((label, ms(times)))

        timed("toggle", lambda r: s.toggle(r % behaviors, 1000 + r), 200)
        timed(
            "recording step (group grows 1 frame)",
            lambda r: s.set_range(0, 5000, 5001 + r, 1, group="g"),
            300,
        )
        timed("undo", lambda r: s.undo(), 50)
        timed("save (CSV, atomic)", lambda r: (s.toggle(1, r), s.save()), 5)
        timed("finalize (whole video)", lambda r: s.finalize(), 1)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3000, help="frames of the generated video")
    ap.add_argument("--size", default="640x480", help="generated video WxH")
    ap.add_argument("--video", type=Path, action="append", default=[], help="more videos")
    ap.add_argument("--max-edge", type=int, default=512)
    ap.add_argument("--quality", type=int, default=85)
    ap.add_argument("--samples", type=int, default=20, help="cold seeks measured")
    ap.add_argument("--edits-only", action="store_true", help="only the label-edit timings")
    args = ap.parse_args()
    if args.edits_only:
        for label, value in bench_edits():
            print(f"{label:38s} {value}")
        return
    w, h = (int(x) for x in args.size.split("x"))
    videos = [generated_video(args.frames, h, w), *args.video]
    if SHARED.exists() and SHARED not in videos:
        videos.append(SHARED)
    cpu = platform.processor() or platform.machine()
    print(f"# FrameServer latency, ms per JPEG (max edge {args.max_edge}, q{args.quality})")
    print(f"# {cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    for path in videos:
        info = open_video(path).info
        print(f"\n{path.name}: {info.frames} frames, {info.width}x{info.height}")
        print(f"{'':38s} {'median':>8s} {'p90':>8s} {'max':>8s}")
        for label, value in bench(path, args.max_edge, args.quality, args.samples):
            print(f"{label:38s} {value}")
    print("\nedits on a 30-min video's labels (54,000 x 6), ms")
    print(f"{'':38s} {'median':>8s} {'p90':>8s} {'max':>8s}")
    for label, value in bench_edits():
        print(f"{label:38s} {value}")


if __name__ == "__main__":
    main()
