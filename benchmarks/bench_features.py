"""Feature-extractor throughput: end-to-end inference (mp4 in, HDF5 out) and training clips/s.

Usage::

    uv run python benchmarks/bench_features.py                       # all presets, 256x256
    uv run python benchmarks/bench_features.py --presets fast --frames 2330 --device cuda
    uv run python benchmarks/bench_features.py --append benchmarks/RESULTS.md

Inference decodes the video sequentially, builds each frame's N-frame stack once, runs
flow generator + both streams, and writes the HDF5 datasets — the code path of
``deg infer features`` (deg_core.infer.features) on the first ``--frames`` frames. Weights are
random: throughput does not depend on them. Training measures optimisation steps over
random clips of the same video (random access, augmentation, forward, backward).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deg_core.config import AugsSection  # noqa: E402
from deg_core.data.clips import ClipAugment, ClipDataset, VideoItem, denormalize  # noqa: E402
from deg_core.infer.features import FeaturePredictor, video_features  # noqa: E402
from deg_core.infer.preset import preset_predictor  # noqa: E402
from deg_core.models.flow.photometric import MotionNetLoss  # noqa: E402
from deg_core.train.losses import MaskedBCELoss  # noqa: E402
from deg_core.video import channel_stats, probe_video  # noqa: E402

DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "openfield_mouse_640x480_30fps.mp4"
N_RGB, K = 11, 3


def machine(device: torch.device | None = None) -> str:
    """CPU model, cores and torch version, plus the GPU's name when ``device`` is CUDA."""
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"
    if device is not None and device.type == "cuda":
        desc += f", {torch.cuda.get_device_name(device)}"
    return desc


def publish(text: str, append: Path | None) -> None:
    """Print a results block and, with ``--append FILE``, add it to FILE after a blank line."""
    print(text)
    if append:
        with open(append, "a", encoding="utf-8") as f:
            f.write("\n" + text)


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def build(preset: str, device: torch.device, size: int, norm: dict) -> FeaturePredictor:
    """The preset's predictor as ``deg infer`` builds it (deg_core.infer.preset: archs,
    rgb_stride, crop, precision), random weights, at ``size`` x ``size`` input."""
    return preset_predictor(preset, K, size=(size, size), device=str(device), normalization=norm)


def sync(device: torch.device) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_inference(preset, video, n_frames, frames, size, batch, device, norm) -> float:
    fm = build(preset, device, size, norm)
    with tempfile.TemporaryDirectory() as tmp, h5py.File(Path(tmp) / "out.h5", "w") as f:
        ds = {
            name: f.create_dataset(name, (frames, dim), dtype="float32")
            for name, dim in [
                ("spatial_features", 512),
                ("flow_features", 512),
                ("logits", K),
                ("P", K),
            ]
        }
        # one warm-up batch (allocator, cudnn autotune) outside the timing
        next(iter(video_features(fm, video, n_frames, batch)))
        sync(device)
        t0, done = time.perf_counter(), 0
        for start, arrays in video_features(fm, video, n_frames, batch):
            take = min(len(arrays["P"]), frames - start)
            for name, arr in arrays.items():
                ds[name][start : start + take] = arr[:take]
            done = start + take
            if done >= frames:
                break
        sync(device)
        return done / (time.perf_counter() - t0)


def bench_training(
    preset, video, n_frames, size, batch, steps, device, norm
) -> tuple[float, float]:
    """(flow-generator clips/s, feature-extractor clips/s)."""
    item = VideoItem(path=video, n_frames=n_frames, labels=np.zeros((n_frames, K), np.int8))
    rng = np.random.default_rng(0)
    samples = np.stack(
        [np.zeros(batch * (steps + 1), int), rng.integers(0, n_frames, batch * (steps + 1))], 1
    )
    data = ClipDataset(
        [item], samples, N_RGB, (size, size), norm["mean"], norm["std"], ClipAugment(AugsSection())
    )
    loader = torch.utils.data.DataLoader(
        data, batch_size=batch, num_workers=min(4, os.cpu_count() or 1)
    )
    mean = torch.tensor(norm["mean"], device=device)
    std = torch.tensor(norm["std"], device=device)
    results = []
    for stage in ("flow", "features"):
        model = build(preset, device, size, norm).model.train()
        if stage == "flow":
            net = model.flow_generator.train()
            for p in net.parameters():
                p.requires_grad_(True)
            loss_fn = MotionNetLoss(num_frames=N_RGB).to(device)
        else:
            net = model
            loss_fn = MaskedBCELoss().to(device)
        opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4)
        clips, t0 = 0, None
        for i, b in enumerate(loader):
            if i == 1:  # the first step warms up; time the rest
                sync(device)
                t0, clips = time.perf_counter(), 0
            x = b["images"].to(device)
            if stage == "flow":
                loss, _ = loss_fn(denormalize(x, mean, std), net(x))
            else:
                loss = loss_fn(net(x)["logits"], b["labels"].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            clips += len(x)
        sync(device)
        results.append(clips / (time.perf_counter() - t0) if t0 else float("nan"))
    return results[0], results[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--presets", nargs="+", default=["fast", "medium", "slow"])
    ap.add_argument(
        "--frames", type=int, default=None, help="frames to infer (default: CPU 64, GPU all)"
    )
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=None, help="inference batch (CPU 8, GPU 64)")
    ap.add_argument("--train-batch", type=int, default=None, help="CPU 2, GPU 32")
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--append", type=Path, default=None, help="append the table to this file")
    args = ap.parse_args()
    if not args.video.is_file():
        sys.exit(f"{args.video}: video not found (the real videos live in ../shared/data)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    gpu = device.type == "cuda"
    info = probe_video(args.video)
    frames = min(args.frames or (info.frames if gpu else 64), info.frames)
    batch = args.batch or (64 if gpu else 8)
    train_batch = args.train_batch or (32 if gpu else 2)
    norm = channel_stats(args.video, max_frames=100)
    rows = []
    for preset in args.presets:
        fps = bench_inference(
            preset, args.video, info.frames, frames, args.size, batch, device, norm
        )
        flow_cps, feat_cps = bench_training(
            preset, args.video, info.frames, args.size, train_batch, args.train_steps, device, norm
        )
        rows.append(
            f"| {preset} | {device.type} | {args.size}x{args.size} | {frames} | {batch} "
            f"| {fps:.2f} | {train_batch} | {flow_cps:.2f} | {feat_cps:.2f} |"
        )
        print(rows[-1], flush=True)
    header = [
        f"### {dt.date.today()} · commit {commit()} · {args.video.name}",
        f"Machine: {machine(device)}",
        "",
        "| preset | device | input | frames | batch | inference frames/s (mp4→HDF5) "
        "| train batch | flow train clips/s | feature train clips/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    publish("\n".join(header + rows) + "\n", args.append)


if __name__ == "__main__":
    main()
