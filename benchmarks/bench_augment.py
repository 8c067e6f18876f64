"""Clip augmentation cost on one core: what a data worker spends per training clip.

Usage::

    uv run python benchmarks/bench_augment.py                 # 128x128 and 224x224
    uv run python benchmarks/bench_augment.py --append benchmarks/RESULTS.md

Times, per 11-frame float clip (the default ``augs``: flip, rotation, colour jitter,
grayscale), torchvision's ``ColorJitter`` against deg's ``ClipColorJitter``
(deg_core/data/color.py) and the whole ``ClipAugment`` the trainers use, single-threaded as
in a DataLoader worker. On a 2-core machine the worker shares the cores with training, so
every millisecond here is taken from the training step.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_features import commit, machine, publish  # noqa: E402
from deg_core.config import AugsSection  # noqa: E402
from deg_core.data.clips import ClipAugment  # noqa: E402
from deg_core.data.color import ClipColorJitter  # noqa: E402

N_RGB = 11


def ms_per_call(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1e3


def rows(size: int, repeats: int) -> list[tuple[str, float]]:
    from torchvision.transforms import v2

    cfg = AugsSection()
    torch.manual_seed(0)
    clip = torch.rand(N_RGB, 3, size, size)
    jitter = (cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)
    return [
        ("torchvision ColorJitter", ms_per_call(lambda: v2.ColorJitter(*jitter)(clip), repeats)),
        ("deg ClipColorJitter", ms_per_call(lambda: ClipColorJitter(*jitter)(clip), repeats)),
        ("ClipAugment (all augs.*)", ms_per_call(lambda: ClipAugment(cfg)(clip), repeats)),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--append", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)  # as a DataLoader worker
    lines = [
        f"### {dt.date.today()} · commit {commit()} · clip augmentation, one thread",
        f"Machine: {machine()}",
        "Command: `uv run python benchmarks/bench_augment.py " + " ".join(sys.argv[1:]) + "`",
        "",
        "| input | step | ms per 11-frame clip |",
        "|---|---|---|",
    ]
    for size in args.sizes:
        for name, ms in rows(size, args.repeats):
            lines.append(f"| {size}x{size} | {name} | {ms:.2f} |")
            print(f"{size}x{size}  {name:<28} {ms:7.2f} ms", flush=True)
    text = "\n".join(lines) + "\n"
    publish(text, args.append)


if __name__ == "__main__":
    main()
