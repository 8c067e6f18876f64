"""The feature stage's training cache (issue 25, item 3): `lite`'s feature training with and
without cached flows, side by side, on a real fold.

Usage::

    uv run python benchmarks/bench_train_cache.py                    # fold 0, 2 epochs each
    uv run python benchmarks/bench_train_cache.py --epochs 8 --append benchmarks/RESULTS.md

One rat fold's project is made as ``bench_real.py`` makes it (train and val videos, their
labels, `lite`), a flow run is trained for a few steps (its weights do not change the time),
then ``train_features`` runs twice from the same start with ``feature_extractor.flow_cache``
true and false: the preset's batch, steps per epoch, validation and data workers, ``--epochs``
epochs. Printed: each run's wall time (cache building included), seconds per training step
and the ratio, with the machine and commit. The accuracy side is ``bench_real.py``'s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_features import commit, machine, publish  # noqa: E402
from bench_real import DATA, fold_videos, labels_of  # noqa: E402

from deg_core.data.flow_cache import cache_bytes  # noqa: E402
from deg_core.labels.labels import read_labels  # noqa: E402
from deg_core.project.project import Project  # noqa: E402
from deg_core.train import common  # noqa: E402
from deg_core.train.features import train_features  # noqa: E402
from deg_core.train.flow import train_flow  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2, help="feature epochs per run")
    ap.add_argument("--set", action="append", default=[], help="override key=value (both runs)")
    ap.add_argument("--cached", choices=["both", "true", "false"], default="both")
    ap.add_argument("--append", type=Path, default=None)
    args = ap.parse_args(argv)

    videos = fold_videos(args.data, args.fold)
    behaviors = read_labels(labels_of(videos["train"])).class_names[1:]
    with tempfile.TemporaryDirectory() as tmp:
        project = Project.create(Path(tmp), "cache", behaviors, exclusive=True)
        for split in ("train", "val"):
            project.add_video(videos[split], split=split)
            project.import_labels(videos[split].stem, labels_of(videos[split]))
        over = ["flow_generator.steps_per_epoch=3", "flow_generator.val_steps=1"]
        cfg = project.resolve_config(over, preset="lite")
        flow = train_flow(project, cfg, device="cpu", progress=False, seed=0)  # tracks too
        ecfg = cfg.feature_extractor
        items = common.video_items(project, project.video_keys(), True, augs=cfg.augs)
        frames = sum(it.n_frames for it in items)
        mb = cache_bytes([it.n_frames for it in items], common.input_size(cfg)) / 2**20
        seconds: dict[bool, float] = {}
        modes = {"both": (True, False), "true": (True,), "false": (False,)}[args.cached]
        for cached in modes:
            run_cfg = project.resolve_config(
                [
                    *over,
                    *args.set,
                    f"feature_extractor.num_epochs={args.epochs}",
                    f"feature_extractor.flow_cache={str(cached).lower()}",
                ],
                preset="lite",
            )
            t0 = time.perf_counter()
            train_features(
                project, run_cfg, flow_run=flow.name, device="cpu", progress=False, seed=0
            )
            seconds[cached] = time.perf_counter() - t0
            print(f"flow_cache={cached}: {seconds[cached]:.1f} s", flush=True)
    if len(seconds) < 2:
        return
    steps = args.epochs * ecfg.steps_per_epoch
    head = (
        f"### {dt.date.today()} · commit {commit()} · {machine()}\n\n"
        f"`benchmarks/bench_train_cache.py --fold {args.fold} --epochs {args.epochs}`: "
        f"fold {args.fold} ({videos['train'].name} + {videos['val'].name}, {frames} frames), "
        f"`lite` at {common.input_size(cfg)[0]}², {args.epochs} epochs of "
        f"{ecfg.steps_per_epoch} steps (+ {ecfg.val_steps} validation batches each), "
        f"batch {ecfg.batch_size}; the cache holds {mb:.0f} MB.\n\n"
    )
    rows = [
        "| feature training | wall (s) | s / step (validation included) | × |",
        "|---|---|---|---|",
        f"| every step's flows (before) | {seconds[False]:.1f} | "
        f"{seconds[False] / steps:.2f} | 1.00 |",
        f"| cached flows (now) | {seconds[True]:.1f} | {seconds[True] / steps:.2f} | "
        f"{seconds[False] / seconds[True]:.2f} |",
    ]
    publish(head + "\n".join(rows) + "\n", args.append)


if __name__ == "__main__":
    main()
