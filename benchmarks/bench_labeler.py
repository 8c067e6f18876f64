"""Labeler latency in the browser: input event to the new frame painted on the canvas.

Usage::

    uv run python benchmarks/bench_labeler.py  # a generated 640x480 video
    uv run python benchmarks/bench_labeler.py --frames 3000 --seeks 40
    uv run python benchmarks/bench_labeler.py --video path/to/video.mp4
    uv run python benchmarks/bench_labeler.py --append benchmarks/RESULTS.md

A Labeler with ``debug_timing=True`` runs in JupyterLab in headless chromium (the fixtures
of tests/browser/conftest.py, loaded as a pytest plugin). With that flag the front end
stamps each seeking input (keydown, ruler click) with the event's time and, when the
frame for the new playhead is drawn on the canvas, pushes the elapsed milliseconds to
``window.__degLabelerTimings``. Three cases:

- step, first visit: ArrowRight through frames never shown before (what the prefetch of
  the next 30 frames buys while stepping through a video);
- step, cached: the same frames again (front-end ImageBitmap cache);
- random seek, cold: clicks on the timeline ruler at random frames at least
  ``--min-gap`` frames from every frame visited before (neither the browser's nor the
  kernel's cache holds them: decode from the previous key frame, resize, JPEG, transfer,
  decode, draw).

Each input waits for its frame to be painted before the next one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_features import commit, machine  # noqa: E402

CONFIG_ENV = "DEG_BENCH_LABELER"
TARGET_MS = 50.0
SECTION = """## Labeler (`bench_labeler.py`)

Latency from an input event (ArrowRight keydown, or a click on the timeline ruler) to the
frame for the new playhead drawn on the Labeler's canvas, measured in headless chromium
with `Labeler(debug_timing=True)` (the event's timestamp to the end of `drawImage`).
Target: the new frame within 50 ms. The last column splits the median of a cold seek:
when the frame's JPEG reached the browser (request, kernel decode + resize + JPEG, comm
transport) and when its ImageBitmap was decoded; the rest is waiting for the next
animation frame and drawing. "Timeline redraw" is one full redraw of the ethogram for a
30-min video (aggregated per pixel column), on a fake model in the same page.
"""
_PUSHED = "() => (window.__degLabelerTimings || []).length"


# --------------------------------------------------------------------------- inputs


def make_video(path: Path, n_frames: int, fps: float, gop: int | None, seed: int = 0) -> Path:
    """A 640x480 H.264 video: textured floor, a dark blob walking, camera noise."""
    from deg_core.video.write import write_video

    h, w = 480, 640
    rng = np.random.default_rng(seed)
    coarse = rng.integers(90, 200, size=(h // 16 + 1, w // 16 + 1, 1)).astype(np.float32)
    floor = np.kron(coarse, np.ones((16, 16, 1), np.float32))[:h, :w]
    floor = np.repeat(floor, 3, axis=2) * np.array([1.0, 0.95, 0.85], np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    def frames():  # type: ignore[no-untyped-def]
        for t in range(n_frames):
            cx = w / 2 + 0.35 * w * np.sin(t / 97.0) + 20 * np.sin(t / 7.0)
            cy = h / 2 + 0.35 * h * np.cos(t / 131.0)
            blob = ((xx - cx) / 40) ** 2 + ((yy - cy) / 22) ** 2 < 1
            img = floor.copy()
            img[blob] *= 0.25
            img += rng.normal(0, 3, size=(h, w, 1)).astype(np.float32)
            yield np.clip(img, 0, 255).astype(np.uint8)

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, frames(), fps=fps, gop=gop)


def make_project(workdir: Path, video: Path) -> Path:
    """A fresh project holding ``video`` (unlabelled), in ``workdir``."""
    from deg_core.project.project import Project

    parent = Path(tempfile.mkdtemp(prefix="proj_", dir=workdir))
    project = Project.create(parent, "bench", ["walk", "groom", "rear"])
    project.add_video(video, split="train")
    return project.root


# --------------------------------------------------------------------------- in the browser


def _wait_samples(page: Any, n: int, timeout_s: float = 30.0) -> None:
    page.wait_for_function(f"() => ({_PUSHED})() >= {n}", timeout=timeout_s * 1000, polling="raf")


def _ruler_x(page: Any, frame: int) -> tuple[float, float]:
    tl = page.locator(".deg-lab-timeline")
    box = tl.bounding_box()
    g = tl.evaluate("c => ({...c.dataset})")
    x = float(g["plotX"]) + (frame + 0.5 - float(g["viewStart"])) / float(g["viewSpan"]) * float(
        g["plotW"]
    )
    return box["x"] + x, box["y"] + 10  # the ruler is the top 20 px


def measure(page: Any, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Drive the Labeler in ``page``; return every timing sample with its case."""
    rng = np.random.default_rng(cfg["seed"])
    lab = page.locator(".deg-lab")
    lab.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => document.querySelector('.deg-lab').dataset.paintedFrame === '0'",
        timeout=60_000,
    )
    n_frames = int(str(lab.get_attribute("data-n-frames")))
    lab.focus()
    samples: list[dict[str, Any]] = []
    done = 0

    def take(case: str) -> None:
        nonlocal done
        got = page.evaluate("() => window.__degLabelerTimings")
        for s in got[done:]:
            samples.append({**s, "case": case})
        done = len(got)

    def step(case: str) -> None:
        nonlocal done
        page.keyboard.press("ArrowRight")
        _wait_samples(page, done + 1)
        take(case)
        page.wait_for_timeout(cfg["pause_ms"])

    page.evaluate("() => { window.__degLabelerTimings = []; }")
    for _ in range(cfg["steps"]):
        step("step, first visit")
    page.keyboard.press("Home")
    _wait_samples(page, done + 1)
    take("(home)")
    for _ in range(cfg["steps"]):
        step("step, cached")

    visited = list(range(cfg["steps"] + 1 + 40))  # stepped through, plus the prefetch
    gap = cfg["min_gap"]
    for _ in range(cfg["seeks"]):
        for _try in range(1000):
            f = int(rng.integers(0, n_frames))
            if min(abs(f - v) for v in visited) >= gap:
                break
        else:
            break  # the video is too short for more cold seeks
        visited.append(f)
        x, y = _ruler_x(page, f)
        page.mouse.click(x, y)
        _wait_samples(page, done + 1)
        take("random seek, cold")
        page.wait_for_timeout(cfg["seek_pause_ms"])
    return [s for s in samples if s["case"] != "(home)"]


# A second Labeler view on a fake model (no kernel): a 30-min video's worth of labels,
# P and predictions, to time the timeline's full redraw (aggregated per pixel column).
_JS_TIMELINE = """async ([src, n, K, redraws]) => {
  const url = URL.createObjectURL(new Blob([src], {type: "text/javascript"}));
  const mod = await import(url);
  let seed = 1;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const bouts = (fill) => {  // runs of 1..300 frames: present, absent, unlabelled
    const a = new Int8Array(n * K);
    for (let k = 0; k < K; k++) {
      for (let f = 0; f < n; ) {
        const len = 1 + Math.floor(rand() * 300), v = fill(rand());
        for (let i = f; i < Math.min(n, f + len); i++) a[i * K + k] = v;
        f += len;
      }
    }
    return new DataView(a.buffer);
  };
  const state = {
    videos: ["long"], video: "long", behaviors: Array.from({length: K}, (_, k) => "b" + k),
    n_frames: n, fps: 30, frame_width: 640, frame_height: 480, frame: 0,
    labels: bouts((r) => (r < 0.3 ? 1 : r < 0.6 ? 0 : -1)), has_predictions: true,
    probs: bouts((r) => Math.floor(r * 255) - 128), predicted: bouts((r) => (r < 0.4 ? 1 : 0)),
    thresholds: [], playing: false, speed: 1, dirty: false, saved_at: "", can_undo: false,
    can_redo: false, status: "", error: "", lock_conflict: false, debug_timing: true,
  };
  const handlers = {};
  const model = {
    get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes() {}, send() {},
    on(ev, cb) { for (const e of ev.split(" ")) (handlers[e] = handlers[e] || []).push(cb); },
    off() {},
  };
  const el = document.createElement("div");
  el.style.width = "1200px";
  document.body.append(el);
  const cleanup = mod.default.render({model, el});
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  await frame(); await frame();
  window.__degLabelerDrawTimings = [];
  for (let i = 0; i < redraws; i++) {
    state.labels = bouts((r) => (r < 0.3 ? 1 : r < 0.6 ? 0 : -1));
    for (const cb of handlers["change:labels"] || []) cb();
    await frame();
  }
  const out = window.__degLabelerDrawTimings.map((t) => t.ms);
  cleanup();
  el.remove();
  return out;
}"""


def timeline_redraws(page: Any, n: int, k: int, redraws: int) -> list[float]:
    """Milliseconds per full timeline redraw of an ``n``-frame, ``k``-behaviour video."""
    src = (ROOT / "deg_widgets" / "static" / "labeler.js").read_text()
    return [float(x) for x in page.evaluate(_JS_TIMELINE, [src, n, k, redraws])]


def test_bench_labeler(run_notebook: Any) -> None:
    """Not a test: the benchmark, run through pytest for the browser fixtures."""
    cfg = json.loads(os.environ[CONFIG_ENV])
    page = run_notebook(
        [
            "from deg_widgets.labeler import Labeler\n"
            f"w = Labeler({cfg['project']!r}, frame_size={cfg['frame_size']}, "
            "autosave=False, debug_timing=True)\n"
            "w",
        ],
        viewport=(1400, 900),
        timeout=300,
    )
    samples = measure(page, cfg)
    page.locator(".deg-lab").screenshot(path=cfg["screenshot"])
    n, k = cfg["timeline_frames"], cfg["timeline_behaviors"]
    case = f"timeline redraw, {n:,} frames × {k} behaviours (+ P, predictions)"
    for ms in timeline_redraws(page, n, k, 30):
        samples.append({"case": case, "ms": ms, "cached": False, "frame": -1})
    cfg_out = {"samples": samples, "chromium": page.context.browser.version}
    Path(cfg["out"]).write_text(json.dumps(cfg_out))


# --------------------------------------------------------------------------- report


def summarize(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    cases = list(dict.fromkeys(s["case"] for s in samples))
    for case in cases:
        ms = np.array([s["ms"] for s in samples if s["case"] == case], float)
        if not len(ms):
            continue
        cached = sum(1 for s in samples if s["case"] == case and s["cached"])
        reply = [s["reply_ms"] for s in samples if s["case"] == case and s.get("reply_ms")]
        decoded = [s["decoded_ms"] for s in samples if s["case"] == case and s.get("decoded_ms")]
        rows.append(
            {
                "case": case,
                "n": len(ms),
                "in_js_cache": cached,
                "median": float(np.median(ms)),
                "p95": float(np.percentile(ms, 95)),
                "max": float(ms.max()),
                "within_target": int((ms <= TARGET_MS).sum()),
                "reply": float(np.median(reply)) if reply else None,
                "decoded": float(np.median(decoded)) if decoded else None,
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| case | samples | median ms | p95 ms | max ms | ≤ 50 ms | median: JPEG in / decoded |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        split = "–"
        if r["reply"] is not None and r["decoded"] is not None:
            split = f"{r['reply']:.1f} / {r['decoded']:.1f}"
        lines.append(
            f"| {r['case']} | {r['n']} | {r['median']:.1f} | {r['p95']:.1f} | {r['max']:.1f} "
            f"| {r['within_target']}/{r['n']} | {split} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, help="use this video instead of a generated one")
    ap.add_argument("--frames", type=int, default=3000, help="generated video length")
    ap.add_argument("--gop", type=int, default=None, help="key-frame interval (x264: 250)")
    ap.add_argument("--frame-size", type=int, default=512, help="Labeler(frame_size=...)")
    ap.add_argument("--steps", type=int, default=100, help="ArrowRight presses per pass")
    ap.add_argument("--seeks", type=int, default=40, help="random cold seeks")
    ap.add_argument("--min-gap", type=int, default=64, help="frames from any visited frame")
    ap.add_argument("--pause-ms", type=int, default=30, help="idle time after each step")
    ap.add_argument("--seek-pause-ms", type=int, default=1000, help="idle time after a seek")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "deg_bench_labeler"
    )
    ap.add_argument("--append", type=Path, help="append the table to this RESULTS.md")
    args = ap.parse_args()

    import pytest

    args.workdir.mkdir(parents=True, exist_ok=True)
    video = args.video
    if video is None:
        video = args.workdir / f"walk_640x480_{args.frames}f_gop{args.gop or 'x264'}.mp4"
        if not video.exists():
            print(f"writing {video} ...", flush=True)
            make_video(video, args.frames, 30.0, args.gop)
    from deg_core.video import probe_video

    info = probe_video(video)
    print(f"video {video.name}: {info.width}x{info.height}, {info.frames} frames", flush=True)
    root = make_project(args.workdir, video)
    out = args.workdir / "timings.json"
    shot = args.workdir / "labeler_bench.png"
    cfg = {
        "project": str(root),
        "frame_size": args.frame_size,
        "steps": args.steps,
        "seeks": args.seeks,
        "min_gap": args.min_gap,
        "pause_ms": args.pause_ms,
        "seek_pause_ms": args.seek_pause_ms,
        "seed": args.seed,
        "timeline_frames": 54_000,
        "timeline_behaviors": 5,
        "out": str(out),
        "screenshot": str(shot),
    }
    os.environ[CONFIG_ENV] = json.dumps(cfg)
    out.unlink(missing_ok=True)
    code = pytest.main(
        [
            f"{Path(__file__).resolve()}::test_bench_labeler",
            "-p",
            "tests.browser.conftest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            f"--basetemp={args.workdir / 'pytest'}",
        ]
    )
    if code != 0 or not out.exists():
        sys.exit(f"benchmark run failed (pytest exit code {code})")
    result = json.loads(out.read_text())
    rows = summarize(result["samples"])
    text = table(rows)
    print(text)
    print(f"screenshot: {shot}")
    if args.append:
        head = (
            f"### {dt.date.today().isoformat()} · commit {commit()} · "
            f"{video.name} ({info.width}x{info.height}, {info.frames} frames)\n"
            f"Machine: {machine()}, no GPU used; headless chromium {result['chromium']}, "
            f"JupyterLab server, kernel and browser on the same cores. "
            f"Labeler(frame_size={args.frame_size}).\n\n"
        )
        command = " ".join(["uv run python benchmarks/bench_labeler.py", *sys.argv[1:]])
        intro = "" if "## Labeler" in args.append.read_text() else f"\n{SECTION}"
        with args.append.open("a") as f:
            f.write(f"{intro}\n{head}{text}\n\nCommand: `{command}`.\n")


if __name__ == "__main__":
    main()
