"""Pipeline throughput, stage by stage, per preset at 256x256 (issue 7); one command.

Usage::

    uv run python benchmarks/bench_pipeline.py                           # every preset, auto device
    uv run python benchmarks/bench_pipeline.py --presets fast --frames 64 --device cpu
    uv run python benchmarks/bench_pipeline.py --mode optimisations      # each optimisation's gain
    uv run python benchmarks/bench_pipeline.py --append benchmarks/RESULTS.md

Throughput mode, on each video (../shared/data/*.mp4 when present, and a generated
256x256 video of ``--long-frames`` frames):

- decode: sequential decode + resize to 256x256, frames/s (preset-independent);
- per preset: FLOPs per frame (``deg_core.models.flops``: inference, flow generator, one
  training clip), flow-generator inference frames/s (frames in memory: compute only; a
  pairwise generator streams each pair once, as inference does),
  feature inference end to end (mp4 in, HDF5 out: ``deg_core.infer.features.write_video_outputs``
  on the first ``--frames`` frames), sequence inference frames/s (random (T, 1024)
  features), and training steps/s and clips/s for the flow, feature and sequence stages,
  with the fraction of training time spent waiting on the data loader (GPU idle); the
  training clips come from the frame cache and the networks train in NHWC, as in the
  trainers; the flow and feature stages train at ``--size`` and again at the preset's own
  input (its ``augs.resize``, else a new project's 224x224);
- each with peak host RSS (VmHWM, reset per measurement through /proc/self/clear_refs)
  and, on CUDA, peak device memory (torch.cuda.max_memory_allocated).

Optimisations mode: end-to-end feature inference of the fast preset, adding one
optimisation at a time to the float32 synchronous reference: decode-ahead thread,
channels_last, batched HDF5 writes, autocast (bf16/fp16), torch.compile (CUDA only).
Weights are random: throughput does not depend on them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_features import commit, machine, publish  # noqa: E402
from deg_core.compute.layout import as_layout, nhwc_if_2d  # noqa: E402
from deg_core.config import AugsSection, ComputeSection, SequenceSection  # noqa: E402
from deg_core.data.clips import ClipAugment, ClipDataset, VideoItem, denormalize  # noqa: E402
from deg_core.infer.features import (  # noqa: E402
    REFERENCE,
    FeaturePredictor,
    InferenceOptions,
    frame_runs,
    stacks,
    write_video_outputs,
)
from deg_core.infer.preset import preset_predictor  # noqa: E402
from deg_core.infer.sequence import sequence_logits  # noqa: E402
from deg_core.models.flops import feature_flops, preset_model  # noqa: E402
from deg_core.models.flow import PairFlowStream  # noqa: E402
from deg_core.models.flow.photometric import MotionNetLoss  # noqa: E402
from deg_core.models.sequence import sequence_model_from_config  # noqa: E402
from deg_core.presets import PRESETS  # noqa: E402
from deg_core.train.losses import MaskedBCELoss  # noqa: E402
from deg_core.video import open_video, probe_video, write_video  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
N_RGB, K, D_SEQ = 11, 3, 1024
NORM = {"mean": [0.45, 0.45, 0.45], "std": [0.25, 0.25, 0.25]}


# ----------------------------------------------------------------------------- measuring


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peaks(device: torch.device) -> None:
    with suppress(OSError):  # "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peaks(device: torch.device) -> tuple[float, float]:
    """(peak host RSS MiB, peak device MiB or nan)."""
    rss = float("nan")
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    except OSError:
        pass
    dev = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return rss, dev


@dataclass
class Row:
    video: str
    preset: str
    stage: str
    value: float  # frames/s or steps/s
    unit: str
    rss_mb: float
    dev_mb: float
    note: str = ""


def measure(device, fn: Callable[[], tuple[float, str, str]], video, preset, stage) -> Row:
    """Run ``fn`` (a partial: bound now, not late) with fresh memory peaks; print the row."""
    reset_peaks(device)
    value, unit, note = fn()
    rss, dev = peaks(device)
    row = Row(video, preset, stage, value, unit, rss, dev, note)
    print(
        f"  {preset:<6} {stage:<34} {value:10.2f} {unit:<9} rss {rss:7.0f} MiB  "
        f"dev {dev:7.0f} MiB  {note}",
        flush=True,
    )
    return row


# ----------------------------------------------------------------------------- models


def feature_model(preset: str, device: torch.device, size: int) -> FeaturePredictor:
    """The preset's predictor as ``deg infer`` builds it (deg_core.infer.preset: archs,
    rgb_stride, crop, precision), random weights, at ``size`` x ``size`` input."""
    return preset_predictor(preset, K, size=(size, size), device=str(device), normalization=NORM)


# ----------------------------------------------------------------------------- stages


def bench_decode(video: Path, frames: int, size: int) -> tuple[float, str, str]:
    frames = min(frames, probe_video(video).frames)
    t0, done = time.perf_counter(), 0
    with open_video(video) as r:
        for _, chunk in r.iter_chunks(chunk=64, size=(size, size), stop=frames):
            done += len(chunk)
    return done / (time.perf_counter() - t0), "frames/s", f"{done} frames"


def bench_flow_inference(fm, video, frames, batch, amp) -> tuple[float, str, str]:
    """The flow generator alone on decoded stacks already in memory (compute only)."""
    device = fm.device
    with open_video(video) as r:
        decoded = np.concatenate([c for _, c in r.iter_chunks(64, fm.size, stop=frames)])
    net = fm.model.flow_generator
    pairwise = getattr(net, "pairwise", False)  # each pair once: runs of frames, not stacks
    scale = (1.0 / (255.0 * fm.std)).to(device)
    shift = (-fm.mean / fm.std).to(device)
    cut = frame_runs if pairwise else stacks
    batches = [(s, np.array(a)) for s, a in cut(iter([decoded]), len(decoded), N_RGB, batch)]

    def run(items):
        flows = PairFlowStream(net, N_RGB) if pairwise else net
        for _, s in items:
            x = torch.from_numpy(s).to(device).movedim(-1, -3).float()
            x = torch.addcmul(shift, x, scale)
            x = x if pairwise else x.flatten(1, 2)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.no_grad(), autocast(device, amp):
                flows(x)

    run(batches[:1])  # warm-up (allocator, cuDNN autotune)
    sync(device)
    t0 = time.perf_counter()
    run(batches)
    sync(device)
    return len(decoded) / (time.perf_counter() - t0), "frames/s", f"batch {batch}"


def bench_flops(preset: str, size: int) -> tuple[float, str, str]:
    """FLOPs per frame beside the timings (the same on every machine)."""
    f = feature_flops(preset_model(preset, K, N_RGB), (size, size))
    note = (
        f"flow generator {f.flow_generator / 1e9:.2f} GFLOP/frame, "
        f"feature training {f.training_clip / 1e9:.2f} GFLOP/clip"
    )
    return f.inference / 1e9, "GFLOP/frame", note


def clip(video: Path, frames: int, tmp: Path) -> Path:
    """The first ``frames`` frames of ``video`` as an mp4 at its own size (so the
    end-to-end run covers a whole video: decode, stacks, model, HDF5)."""
    if probe_video(video).frames <= frames:
        return video
    with open_video(video) as r:
        data = np.concatenate([c for _, c in r.iter_chunks(64, stop=frames)])
    out = tmp / f"{video.stem}_{frames}.mp4"
    write_video(out, data, fps=30)
    return out


def bench_feature_inference(fm, video, batch, opts, tmp) -> tuple[float, str, str]:
    n = probe_video(video).frames
    out = tmp / f"out_{time.monotonic_ns()}.h5"
    if fm.device.type == "cuda":  # warm-up: compile, cuDNN autotune, allocator
        warm = clip(video, min(n, 2 * batch), tmp)
        write_video_outputs(fm, "w", warm, probe_video(warm).frames, out, batch, opts=opts)
        out.unlink()
    else:  # CPU: one batch through the model (layout conversion, oneDNN primitives)
        fm.prepared(opts)
    sync(fm.device)
    t0 = time.perf_counter()
    write_video_outputs(fm, "v", video, n, out, batch, opts=opts)
    sync(fm.device)
    fps = n / (time.perf_counter() - t0)
    out.unlink()
    return fps, "frames/s", f"{n} frames, batch {batch}"


def bench_sequence_inference(device, t_frames, amp: bool) -> tuple[float, str, str]:
    torch.manual_seed(0)
    model = sequence_model_from_config(SequenceSection(), D_SEQ, K).to(device).eval()
    feats = np.random.default_rng(0).normal(size=(t_frames, D_SEQ)).astype(np.float32)
    sequence_logits(model, feats[:1000], autocast=amp)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    sequence_logits(model, feats, autocast=amp)
    sync(device)
    return t_frames / (time.perf_counter() - t0), "frames/s", f"T={t_frames}, D={D_SEQ}"


def timed_steps(loader, step, device, steps) -> tuple[float, float, int]:
    """(steps/s, fraction of the time waiting on the loader, clips) over steps after a warm-up."""
    it = iter(loader)
    step(next(it))  # warm-up
    sync(device)
    wait, clips, t0 = 0.0, 0, time.perf_counter()
    for _ in range(steps):
        w0 = time.perf_counter()
        b = next(it)
        wait += time.perf_counter() - w0
        clips += step(b)
    sync(device)
    total = time.perf_counter() - t0
    return steps / total, wait / total, clips


def bench_training(preset, stage, video, size, batch, steps, device, workers, amp):
    n = probe_video(video).frames
    item = VideoItem(path=video, n_frames=n, labels=np.zeros((n, K), np.int8))
    rng = np.random.default_rng(0)
    count = batch * (steps + 1)
    samples = np.stack([np.zeros(count, int), rng.integers(0, n, count)], 1)
    data = ClipDataset(
        [item],
        samples,
        N_RGB,
        (size, size),
        NORM["mean"],
        NORM["std"],
        ClipAugment(AugsSection()),
        cache_mb=ComputeSection().frame_cache_mb,  # as the trainers: decoded once, in memory
    )
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=batch,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        multiprocessing_context="forkserver" if workers else None,
    )
    model = feature_model(preset, device, size).model.train()
    mean = torch.tensor(NORM["mean"], device=device)
    std = torch.tensor(NORM["std"], device=device)
    if stage == "flow":
        net = model.flow_generator.train().requires_grad_(True)
        loss_fn: torch.nn.Module = MotionNetLoss(num_frames=N_RGB).to(device)
    else:
        net, loss_fn = model, MaskedBCELoss().to(device)
    nhwc = nhwc_if_2d(net)  # as the trainers: deg_core.compute.layout
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4)

    def step(b) -> int:
        x = b["images"].to(device, non_blocking=True)
        with autocast(device, amp):
            if stage == "flow":
                loss, _ = loss_fn(denormalize(x, mean, std), net(as_layout(x, nhwc)))
            else:
                loss = loss_fn(net(as_layout(x, nhwc))["logits"].float(), b["labels"].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return len(x)

    sps, idle, _ = timed_steps(loader, step, device, steps)
    note = f"batch {batch}, {sps * batch:.2f} clips/s, loader wait {100 * idle:.0f} %"
    return sps, "steps/s", note


def bench_sequence_training(device, batch, steps, amp):
    torch.manual_seed(0)
    cfg = SequenceSection()
    model = sequence_model_from_config(cfg, D_SEQ, K).to(device).train()
    loss_fn = MaskedBCELoss().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    data = [
        {
            "features": torch.randn(batch, cfg.sequence_length, D_SEQ, generator=g),
            "labels": (torch.rand(batch, cfg.sequence_length, K, generator=g) > 0.5).float(),
        }
        for _ in range(steps + 1)
    ]

    def step(b) -> int:
        x, y = b["features"].to(device), b["labels"].to(device)
        with autocast(device, amp):
            loss = loss_fn(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return len(x)

    sps, _, _ = timed_steps(data, step, device, steps)
    note = f"batch {batch}x{cfg.sequence_length}, {sps * batch:.1f} windows/s (data in memory)"
    return sps, "steps/s", note


def autocast(device: torch.device, amp: torch.dtype | None):
    return torch.autocast(device.type, dtype=amp) if amp is not None else nullcontext()


# ----------------------------------------------------------------------------- modes


def preset_resize(preset: str) -> tuple[int, int] | None:
    """The preset's own ``augs.resize``, or None where it sets none."""
    resize = PRESETS[preset].get("augs", {}).get("resize")
    return None if resize is None else (int(resize[0]), int(resize[1]))


def own_input(preset: str) -> int:
    """The side a preset trains at: its own ``augs.resize``, else a new project's (224)."""
    h, w = preset_resize(preset) or AugsSection().resize
    if h != w:
        raise ValueError(f"{preset}: the benchmark trains square inputs, not {h}x{w}")
    return int(h)


def throughput(args, device, videos, tmp, amp) -> list[Row]:
    rows = []
    gpu = device.type == "cuda"
    workers = (
        args.workers if args.workers is not None else min(8, max((os.cpu_count() or 1) - 1, 0))
    )
    for video in videos:
        name = video.name
        print(f"{name}: {probe_video(video).frames} frames", flush=True)
        rows.append(
            measure(
                device,
                partial(bench_decode, video, args.decode_frames, args.size),
                name,
                "-",
                "decode 256x256",
            )
        )
        short = clip(video, args.frames, tmp)
        for preset in args.presets:
            heavy = preset in ("medium", "slow")
            few = max(args.frames // args.heavy_div, N_RGB) if heavy else args.frames
            vid = short if few == args.frames else clip(video, few, tmp)
            fm = feature_model(preset, device, args.size)
            batch = args.batch or (fm.auto_batch() if gpu else 8)
            rows.append(
                measure(device, partial(bench_flops, preset, args.size), name, preset, "arithmetic")
            )
            opts = InferenceOptions(autocast=amp is not None)
            rows.append(
                measure(
                    device,
                    partial(bench_flow_inference, fm, vid, few, batch, amp),
                    name,
                    preset,
                    "flow inference",
                )
            )
            rows.append(
                measure(
                    device,
                    partial(bench_feature_inference, fm, vid, batch, opts, tmp),
                    name,
                    preset,
                    "feature inference mp4->HDF5",
                )
            )
            del fm
            tb = args.train_batch or (32 if gpu else 2)
            own = own_input(preset)
            for size in dict.fromkeys((args.size, own)):  # and at the preset's own input
                where = "" if size == args.size else f" at {size}x{size} (the preset's input)"
                for stage in ("flow", "features"):
                    rows.append(
                        measure(
                            device,
                            partial(
                                bench_training,
                                preset,
                                stage,
                                video,
                                size,
                                tb,
                                args.train_steps,
                                device,
                                workers,
                                amp,
                            ),
                            name,
                            preset,
                            f"{stage} training{where}",
                        )
                    )
        rows.append(
            measure(
                device,
                partial(bench_sequence_inference, device, args.seq_frames, amp is not None),
                name,
                "-",
                "sequence inference",
            )
        )
        rows.append(
            measure(
                device,
                partial(bench_sequence_training, device, 32 if gpu else 8, args.train_steps, amp),
                name,
                "-",
                "sequence training",
            )
        )
    return rows


def optimisations(args, device, videos, tmp) -> list[Row]:
    """Cumulative: each step adds one optimisation to the float32 synchronous reference."""
    video = clip(videos[0], args.frames, tmp)
    gpu = device.type == "cuda"
    fm = feature_model("fast", device, args.size)
    batch = args.batch or (fm.auto_batch() if gpu else 8)
    steps = [
        ("baseline: float32, sync decode, 1 write/batch", REFERENCE),
        ("+ decode-ahead thread", replace(REFERENCE, prefetch=4)),
        ("+ channels_last", replace(REFERENCE, prefetch=4, channels_last=True)),
        ("+ batched HDF5 writes", InferenceOptions(autocast=False)),
        ("+ autocast (bf16/fp16)", InferenceOptions(autocast=True)),
    ]
    if gpu:
        steps.append(("+ torch.compile", InferenceOptions(autocast=True, compile=True)))
    rows: list[Row] = []
    base = prev = None
    for label, opts in steps:
        row = measure(
            device,
            partial(bench_feature_inference, fm, video, batch, opts, tmp),
            videos[0].name,
            "fast",
            label,
        )
        base = base or row.value
        if prev:
            gain = f"x{row.value / prev:.2f} vs previous, x{row.value / base:.2f} vs baseline"
            row.note = f"{row.note}; {gain}"
        prev = row.value
        rows.append(row)
    return rows


def table(rows: list[Row], device: torch.device) -> str:
    lines = [
        "| video | preset | stage | throughput | peak host RSS MiB | peak device MiB | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        dev = "-" if np.isnan(r.dev_mb) else f"{r.dev_mb:.0f}"
        lines.append(
            f"| {r.video} | {r.preset} | {r.stage} | {r.value:.2f} {r.unit} "
            f"| {r.rss_mb:.0f} | {dev} | {r.note} |"
        )
    return "\n".join(lines)


def flops_table(presets: list[str], size: int) -> str:
    """FLOPs per frame of each preset's flow generator and feature extractor (issue 15)."""

    lines = [
        f"### {dt.date.today()} · commit {commit()} · FLOPs per frame",
        f"Command: `uv run python benchmarks/bench_pipeline.py --mode flops --size {size}`; "
        f"N={N_RGB}, K={K}; a multiply-add counts 2 (torch.utils.flop_counter)",
        "",
        "| preset | input | flow generator GFLOP/frame | feature inference GFLOP/frame "
        "| share in the flow generator | feature training GFLOP/clip |",
        "|---|---|---|---|---|---|",
    ]
    sizes = [(p, (size, size)) for p in presets]
    for p in presets:  # and at the preset's own input, where it sets one
        own = preset_resize(p)
        if own is not None and own != (size, size):
            sizes.append((p, own))
    for preset, resize in sizes:
        f = feature_flops(preset_model(preset, K, N_RGB), resize)
        lines.append(
            f"| {preset} | {resize[0]}x{resize[1]} | {f.flow_generator / 1e9:.2f} "
            f"| {f.inference / 1e9:.2f} | {f.flow_generator / f.inference:.0%} "
            f"| {f.training_clip / 1e9:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--mode", choices=["throughput", "optimisations", "flops", "all"], default="throughput"
    )
    ap.add_argument("--presets", nargs="+", default=["fast", "medium", "slow"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--frames", type=int, default=None, help="frames per video (CPU 32, GPU 4096)")
    ap.add_argument("--heavy-div", type=int, default=4, help="medium/slow get frames / this")
    ap.add_argument(
        "--long-frames", type=int, default=None, help="generated video (CPU 64, GPU 20000)"
    )
    ap.add_argument(
        "--videos",
        nargs="*",
        default=None,
        help="paths, and/or 'generated' (default: ../shared/data/*.mp4 when present + generated)",
    )
    ap.add_argument("--decode-frames", type=int, default=None, help="CPU 600, GPU all")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=None, help="inference batch (CPU 8, GPU auto)")
    ap.add_argument("--train-batch", type=int, default=None, help="CPU 2, GPU 32")
    ap.add_argument("--train-steps", type=int, default=None, help="CPU 3, GPU 30")
    ap.add_argument("--seq-frames", type=int, default=None, help="CPU 50000, GPU 1000000")
    ap.add_argument("--workers", type=int, default=None, help="training loader workers")
    ap.add_argument(
        "--amp", action="store_true", help="autocast in throughput mode (default on CUDA)"
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--append", type=Path, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mode == "flops":  # arithmetic only: the same on every machine, no timing
        publish(flops_table(args.presets, args.size) + "\n", args.append)
        return
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    gpu = device.type == "cuda"
    args.frames = args.frames or (4096 if gpu else 32)
    args.long_frames = args.long_frames or (20_000 if gpu else 64)
    args.train_steps = args.train_steps or (30 if gpu else 3)
    args.decode_frames = args.decode_frames or (10**9 if gpu else 600)
    args.seq_frames = args.seq_frames or (1_000_000 if gpu else 50_000)
    amp_on = gpu or args.amp
    amp = (
        (torch.bfloat16 if not gpu or torch.cuda.is_bf16_supported() else torch.float16)
        if amp_on
        else None
    )
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        videos: list[Path] = []
        for v in args.videos or ["shared", "generated"]:
            if v == "shared":
                shared = sorted(SHARED.glob("*.mp4"))
                if not gpu:  # a CPU does a few frames/s: the design's reference video only
                    shared = [v for v in shared if v.name.startswith("openfield")][:1]
                videos += shared
            elif v == "generated":
                gen = tmp / f"generated_{args.long_frames}.mp4"
                from deg_core.workflow.synthetic import SyntheticSpec, write_synthetic_video

                t0 = time.perf_counter()
                write_synthetic_video(gen, SyntheticSpec(n_frames=args.long_frames, size=args.size))
                print(f"generated {gen.name} in {time.perf_counter() - t0:.1f} s", flush=True)
                videos.append(gen)
            else:
                videos.append(Path(v))
        rows = []
        if args.mode in ("throughput", "all"):
            rows += throughput(args, device, videos, tmp, amp)
        if args.mode in ("optimisations", "all"):
            rows += optimisations(args, device, videos, tmp)
    cmd = "uv run python benchmarks/bench_pipeline.py " + " ".join(sys.argv[1:])
    text = (
        "\n".join(
            [
                f"### {dt.date.today()} · commit {commit()} · {args.mode} · {device.type}",
                f"Machine: {machine(device)}; torch threads {torch.get_num_threads()}",
                f"Command: `{cmd}`",
                f"Settings: {args.size}x{args.size}, N={N_RGB}, K={K}, autocast "
                f"{amp if args.mode != 'optimisations' else 'per row'}, random weights",
                "",
                table(rows, device),
            ]
        )
        + "\n"
    )
    publish(text, args.append)


if __name__ == "__main__":
    main()
