"""``deg demo``: the whole pipeline on a synthetic project, sized for a laptop CPU.

Builds a project of synthetic behaviour videos with known labels (deg_core.workflow.synthetic),
trains flow generator -> feature extractor -> sequence model, predicts every frame,
and reports per-behaviour F1 on the held-out test videos, with an ethogram PNG
(of the first test video).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deg_core.errors import ProjectError
from deg_core.evaluation.scoring import evaluate_project
from deg_core.infer.features import infer_features
from deg_core.infer.sequence import infer_sequence
from deg_core.project.project import Project
from deg_core.report.notebook import ethogram
from deg_core.train.features import train_features
from deg_core.train.flow import train_flow
from deg_core.train.sequence import train_sequence
from deg_core.workflow.synthetic import SyntheticSpec, make_synthetic_project

# CPU-sized: the lite preset's networks (pairwise flow, spatial stream at half resolution) at
# 128x128, short epochs. Every value can be changed with --set. Measured against the fast
# preset's networks at 64x64 with the same steps: macro F1 0.92 vs 0.75 (benchmarks/RESULTS.md,
# "The lite preset").
DEMO_SETTINGS = [
    "augs.resize=[128, 128]",
    "flow_generator.arch=PairFlowNet",
    "feature_extractor.rgb_stride=2",
    "flow_generator.weights=scratch",
    "flow_generator.num_epochs=3",
    "flow_generator.steps_per_epoch=30",
    "flow_generator.val_steps=4",
    "flow_generator.batch_size=8",
    "feature_extractor.weights=scratch",
    "feature_extractor.num_epochs=6",
    "feature_extractor.steps_per_epoch=30",
    "feature_extractor.val_steps=8",
    "feature_extractor.batch_size=16",
    "feature_extractor.lr=1e-3",
    # the val videos train the features too (rat folds: test macro F1 0.39 -> 0.52, 0.55 -> 0.53)
    "feature_extractor.fit_on=train+val",
    "sequence.sequence_length=90",
    "sequence.num_epochs=20",
    "sequence.steps_per_epoch=20",
    "sequence.batch_size=8",
    "sequence.lr=1e-3",
    # the animal's track beside the image features (measured: groom F1 0.52 -> 0.91)
    "sequence.track_features=true",
]


# project size: enough bouts per split that held-out scores mean something
DEMO_SIZE = {"n_videos": 10, "n_frames": 600}


def demo_splits(n_videos: int) -> tuple[str, ...]:
    """About 60 % train, 20 % val, 20 % test (at least one val and one test video)."""
    n_val = n_test = max(1, round(0.2 * n_videos))
    return ("train",) * (n_videos - n_val - n_test) + ("val",) * n_val + ("test",) * n_test


def demo_project(out: str | Path, *, n_videos: int, n_frames: int, seed: int = 0) -> Project:
    """The synthetic project the demo trains on, in ``out``."""
    if n_videos < 3:
        raise ValueError(f"the demo needs >= 3 videos (train, val, test), got {n_videos}")
    return make_synthetic_project(
        out,
        "demo",
        n_videos=n_videos,
        spec=SyntheticSpec(n_frames=n_frames, seed=seed),
        splits=demo_splits(n_videos),
        # one behaviour per frame, as `deg status` suggests for these labels; measured on one
        # demo run's features: macro F1 0.63 (sigmoids, val thresholds) -> 0.68 (arg-max)
        exclusive=True,
    )


def run_demo(
    out: str | Path = "deg_demo",
    *,
    device: str = "auto",
    overrides: list[str] | None = None,
    n_videos: int | None = None,
    n_frames: int | None = None,
    progress: bool = True,
    log=print,
) -> dict[str, Any]:
    """Run the demo in ``out``; returns the test-split evaluation (deg_core.evaluation.evaluate).

    ``n_videos``/``n_frames``: the synthetic project's size (None: DEMO_SIZE).
    """
    n_videos = n_videos or DEMO_SIZE["n_videos"]
    n_frames = n_frames or DEMO_SIZE["n_frames"]
    out = Path(out).expanduser()
    if (out / "demo_deepethogram").exists():
        raise ProjectError("a demo project is already here: choose another --out", out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def step(msg: str) -> None:
        log(f"[{time.perf_counter() - t0:6.0f} s] {msg}")

    step(f"making {n_videos} synthetic videos of {n_frames} frames")
    project = demo_project(out, n_videos=n_videos, n_frames=n_frames)
    cfg = project.resolve_config([*DEMO_SETTINGS, *(overrides or [])])
    kw: dict[str, Any] = {"device": device, "progress": progress}
    step("training the flow generator")
    train_flow(project, cfg, **kw)
    step("training the feature extractor")
    features = train_features(project, cfg, **kw)
    step("extracting features from every video")
    infer_features(project, features.name, **kw)
    step("training the sequence model")
    sequence = train_sequence(project, cfg, feature_run=features.name, **kw)
    step("predicting every frame")
    infer_sequence(project, sequence.name, device=device)
    result = evaluate_project(project, "test", "sequence", sequence.name)
    key = result["videos"][0]
    title = f"{key} (held-out test video): labels above predictions"
    result["ethogram"] = str(ethogram(project, key, title=title).save(out / "ethogram.png"))
    result["project"] = str(project.root)
    result["seconds"] = time.perf_counter() - t0
    step("done")
    return result
