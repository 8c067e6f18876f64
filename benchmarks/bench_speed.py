"""deg's default CPU preset against the classic ``fast`` preset, side by side (issue 25).

Usage::

    uv run python benchmarks/bench_speed.py                        # auto (lite on a CPU) vs fast
    uv run python benchmarks/bench_speed.py --frames 480 --append benchmarks/RESULTS.md
    uv run python benchmarks/bench_speed.py --mode options         # the default preset's options

Both presets are built as ``deg infer`` builds them (:func:`deg_core.infer.preset.preset_predictor`:
architectures, rgb_stride, crop, precision; random weights), each at its own input size
(``augs.resize``: what its users get) or all at one (``--size``; the crop and everything else
stay the preset's), on the same first ``--frames`` frames of one video, in one run, on one
machine. Per preset, per stage, ms per frame:

- track: the animal-crop pass (``compute_track``), when the preset crops;
- decode: decode, crop, resize and cut the frames into stacks (or pairwise runs);
- flow generator, spatial stream, flow stream: each network alone, on those batches (the
  model as inference runs it: folded batch norms, NHWC, the preset's precision);
- HDF5: writing the four datasets;
- end to end: track + ``write_video_outputs`` (decode-ahead overlapping compute), what
  ``deg infer features`` spends on a new video; its frames/s and the ratio of the two presets.

``--mode options``: the default preset end to end with one inference option changed at a
time from the float32 reference (decode-ahead, NHWC, folded batch norms, bf16 autocast —
emulated, and slower, on a CPU without native bf16 — and torch.compile), each with its
accuracy against the float32 reference: the largest |P - P_ref| and the features' relative
error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_features import commit, machine, publish  # noqa: E402
from deg_core.infer.feature_predictor import (  # noqa: E402
    REFERENCE,
    FeaturePredictor,
    InferenceOptions,
    _stack_batches,
)
from deg_core.infer.features import DATASETS, write_video_outputs  # noqa: E402
from deg_core.infer.preset import describe, preset_predictor  # noqa: E402
from deg_core.models.feature.two_stream import center_channels  # noqa: E402
from deg_core.models.flow import PairFlowStream  # noqa: E402
from deg_core.presets import AUTO, auto_preset  # noqa: E402
from deg_core.tracking.track import compute_track  # noqa: E402
from deg_core.video import open_video, write_video  # noqa: E402

DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "openfield_mouse_640x480_30fps.mp4"
K = 3
STAGES = ("track", "decode", "flow generator", "spatial stream", "flow stream", "HDF5")


def clip_of(video: Path, frames: int, folder: Path, name: str = "clip") -> Path:
    """The first ``frames`` frames of ``video`` as an mp4 of their own (source size)."""
    out = folder / f"{name}.mp4"
    parts = []
    with open_video(video) as r:
        fps = r.info.fps
        for _, chunk in r.iter_chunks(chunk=64, stop=frames):
            parts.append(chunk)
    write_video(out, np.concatenate(parts)[:frames], fps=fps)
    return out


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def stage_times(fm: FeaturePredictor, clip: Path, frames: int, batch: int) -> dict[str, float]:
    """Seconds per stage (see the module docstring), each run alone on the same frames."""
    out: dict[str, float] = {}
    boxes = None
    if fm.augs.get("crop") == "animal":
        track, out["track"] = _timed(lambda: compute_track(clip))
        boxes = track.boxes()
    else:
        out["track"] = 0.0
    model = fm.prepared(InferenceOptions())
    pairwise = bool(getattr(model.flow_generator, "pairwise", False))
    batches, out["decode"] = _timed(
        lambda: list(_stack_batches(fm, clip, frames, batch, False, boxes, runs=pairwise))
    )
    amp = fm.autocast_dtype(InferenceOptions())
    scale, shift = 1.0 / (255.0 * fm.std), -fm.mean / fm.std
    half = fm.n_rgb // 2
    inputs = []
    for _, x in batches:
        x = torch.addcmul(shift, x.movedim(-1, -3).float(), scale)
        inputs.append(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)
    ac = torch.autocast("cpu", dtype=amp) if amp is not None else nullcontext()
    with torch.no_grad(), ac:
        flows, rgbs = [], []
        t0 = time.perf_counter()
        stream = PairFlowStream(model.flow_generator, fm.n_rgb) if pairwise else None
        for x in inputs:
            if stream is not None:
                f = stream(x)
                rgbs.append(x[half : half + f.shape[0]])
            else:
                flat = x.flatten(1, 2).contiguous(memory_format=torch.channels_last)
                f = model.generate_flow(flat)
                rgbs.append(flat[:, center_channels(fm.n_rgb)])
            flows.append(f)
        out["flow generator"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for rgb in rgbs:
            model.spatial(F.avg_pool2d(rgb, model.rgb_stride) if model.rgb_stride > 1 else rgb)
        out["spatial stream"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for f in flows:
            model.flow(f)
        out["flow stream"] = time.perf_counter() - t0
    dims = {"spatial_features": 512, "flow_features": 512, "logits": K, "P": K}
    arrays = {n: np.random.default_rng(0).random((frames, d), np.float32) for n, d in dims.items()}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with h5py.File(Path(tmp) / "o.h5", "w") as h5:
            g = h5.create_group("run")
            for name in DATASETS:
                g.create_dataset(name, data=arrays[name])
        out["HDF5"] = time.perf_counter() - t0
    return out


def end_to_end(
    fm: FeaturePredictor, clip: Path, frames: int, batch: int, opts: InferenceOptions
) -> tuple[float, dict[str, np.ndarray]]:
    """(seconds, outputs) of track + ``write_video_outputs``, as ``deg infer features`` runs
    on a new video."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        boxes = compute_track(clip).boxes() if fm.augs.get("crop") == "animal" else None
        path = Path(tmp) / "out.h5"
        write_video_outputs(fm, "clip", clip, frames, path, batch, opts=opts, boxes=boxes)
        seconds = time.perf_counter() - t0
        with h5py.File(path, "r") as h5:
            g = h5[fm.run.name]
            got = {name: g[name][()] for name in DATASETS}
    return seconds, got


def side_by_side(args, clip: Path) -> str:
    presets = [auto_preset("cpu", False) if p == AUTO else p for p in args.presets]
    rows, totals, sizes = {}, {}, {}
    for preset in presets:
        fm = preset_predictor(preset, K, size=_size(args))
        end_to_end(fm, args.warm, args.warm_frames, args.batch, InferenceOptions())  # warm-up
        rows[preset] = stage_times(fm, clip, args.frames, args.batch)
        sizes[preset] = "x".join(map(str, fm.size))
        totals[preset], _ = end_to_end(fm, clip, args.frames, args.batch, InferenceOptions())
        print(f"{preset}: {describe(fm)}; end to end {args.frames / totals[preset]:.1f} frames/s")
    head = "| stage (ms / frame) | " + " | ".join(presets) + " |"
    lines = [head, "|---" * (len(presets) + 1) + "|"]
    lines.append("| network input | " + " | ".join(sizes[p] for p in presets) + " |")
    for stage in STAGES:
        cells = [f"{1000 * rows[p][stage] / args.frames:.2f}" for p in presets]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines.append(
        "| **end to end** (track + deg infer features) | "
        + " | ".join(f"**{1000 * totals[p] / args.frames:.2f}**" for p in presets)
        + " |"
    )
    lines.append(
        "| frames / s end to end | "
        + " | ".join(f"{args.frames / totals[p]:.1f}" for p in presets)
        + " |"
    )
    first, *rest = presets
    ratios = "; ".join(f"{first} / {p}: x{totals[p] / totals[first]:.2f}" for p in rest)
    return (
        f"`benchmarks/bench_speed.py --frames {args.frames} --size {args.size}` on "
        f"{machine()}, commit {commit()}, {dt.date.today()}: the first {args.frames} frames "
        f"of {args.video.name}, {_size_text(args)}, batch {args.batch}, "
        f"presets as `deg infer` builds them. Speed-up {ratios}.\n\n" + "\n".join(lines) + "\n"
    )


def _size(args) -> tuple[int, int] | None:
    """The network input every preset runs at: None is each preset's own (``augs.resize``)."""
    return (args.size, args.size) if args.size else None


def _size_text(args) -> str:
    return f"{args.size}x{args.size} network input" if args.size else "each preset's own input"


def options(args, clip: Path) -> str:
    preset = auto_preset("cpu", False) if args.presets[0] == AUTO else args.presets[0]
    fm = preset_predictor(preset, K, size=_size(args))
    base = REFERENCE
    variants = [
        ("float32 reference (inline decode, NCHW, unfolded, one write per batch)", base),
        ("+ decode-ahead thread, batched writes", replace(base, prefetch=4, write_frames=2048)),
        (
            "+ NHWC (channels_last)",
            replace(base, prefetch=4, write_frames=2048, channels_last=True),
        ),
        ("+ folded batch norms (default)", InferenceOptions(autocast=False)),
        ("+ bf16 autocast", InferenceOptions(autocast=True)),
        ("+ torch.compile", InferenceOptions(autocast=False, compile=True)),
    ]
    ref_out: dict[str, np.ndarray] = {}
    lines = [
        "| options | frames / s | x reference | max abs P error | features rel. error |",
        "|---|---|---|---|---|",
    ]
    ref_seconds = 0.0
    for name, opts in variants:
        try:
            end_to_end(fm, args.warm, args.warm_frames, args.batch, opts)  # warm-up
            seconds, got = end_to_end(fm, clip, args.frames, args.batch, opts)
        except Exception as e:  # e.g. torch.compile without a C++ compiler
            lines.append(f"| {name} | failed: {type(e).__name__}: {str(e)[:80]} | | | |")
            continue
        if not ref_out:
            ref_out, ref_seconds = got, seconds
        p_err = float(np.abs(got["P"] - ref_out["P"]).max())
        feats = np.concatenate([got["spatial_features"], got["flow_features"]], 1)
        ref_f = np.concatenate([ref_out["spatial_features"], ref_out["flow_features"]], 1)
        rel = float(np.linalg.norm(feats - ref_f) / max(np.linalg.norm(ref_f), 1e-12))
        lines.append(
            f"| {name} | {args.frames / seconds:.1f} | {ref_seconds / seconds:.2f} | "
            f"{p_err:.2e} | {rel:.2e} |"
        )
        print(lines[-1])
    native = bool(fm.autocast_dtype(InferenceOptions(autocast=None)) is not None) or _bf16()
    return (
        f"`benchmarks/bench_speed.py --mode options --frames {args.frames} --size {args.size}` "
        f"on {machine()}, commit {commit()}, {dt.date.today()}: {preset} "
        f"({describe(fm)}), end to end (track + deg infer features); bf16 native on this CPU: "
        f"{native}.\n\n" + "\n".join(lines) + "\n"
    )


def _bf16() -> bool:
    from deg_core.infer.feature_predictor import _cpu_has_bf16

    return _cpu_has_bf16()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument(
        "--size",
        type=int,
        default=0,
        help="one network input side for every preset (0: each "
        "preset's own augs.resize, what a user of it gets)",
    )
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--presets", nargs="+", default=[AUTO, "fast"])
    ap.add_argument("--mode", choices=["side-by-side", "options"], default="side-by-side")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--append", type=Path, default=None, help="append the table to this file")
    args = ap.parse_args()
    if not args.video.is_file():
        sys.exit(f"{args.video}: video not found (the real videos live in ../shared/data)")
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        clip = clip_of(args.video, args.frames, Path(tmp))
        args.warm_frames = min(args.frames, 2 * args.batch)
        args.warm = clip_of(args.video, args.warm_frames, Path(tmp), "warm")
        text = side_by_side(args, clip) if args.mode == "side-by-side" else options(args, clip)
    publish(text, args.append)


if __name__ == "__main__":
    main()
