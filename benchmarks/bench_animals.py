"""Several animals per video: per-animal streams with and without social track features,
against the one-stream baseline DEG users have (issue 24).

Usage::

    uv run python benchmarks/bench_animals.py                  # print the figures
    uv run python benchmarks/bench_animals.py --append benchmarks/RESULTS.md

Three generated 2-animal videos (deg_core.workflow.synthetic_multi; train, val, test),
tracked by deg's tracker (track_animals; its identities mapped to the true animals by the
matching of least mean distance). One flow and one feature run, small and fast, then:

(a) per-animal streams, sequence.track_features with sequence.social_features;
(b) the same without social features;
(c) one label stream per video (the one-animal project DEG users are stuck with), behaviour
    ``interacting`` = the animals touch (truth.contact); its F1 on ``interacting``.

Reported: per-animal macro F1 on the test video for (a) and (b), F1 of (c), and the
tracker's identity switches per 1,000 frames on the three videos.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deg_core.evaluation.scoring import evaluate_project  # noqa: E402
from deg_core.infer.features import infer_features  # noqa: E402
from deg_core.infer.sequence import infer_sequence  # noqa: E402
from deg_core.labels.labels import Labels  # noqa: E402
from deg_core.project.project import Project  # noqa: E402
from deg_core.tracking.multi import best_assignment, identity_switches, track_animals  # noqa: E402
from deg_core.tracking.project_tracks import save_animal_tracks  # noqa: E402
from deg_core.train.features import train_features  # noqa: E402
from deg_core.train.flow import train_flow  # noqa: E402
from deg_core.train.sequence import train_sequence  # noqa: E402
from deg_core.workflow.synthetic_multi import (  # noqa: E402
    MULTI_BEHAVIORS,
    MultiSpec,
    MultiTruth,
    write_multi_video,
)

SPLITS = ["train", "val", "test"]
BASE = [
    "augs.resize=[64, 64]",
    "compute.num_workers=0",
    "augs.LR=0",
    "flow_generator.arch=TinyMotionNet",
    "flow_generator.weights=scratch",
    "flow_generator.n_rgb=5",
    "flow_generator.num_epochs=1",
    "flow_generator.steps_per_epoch=15",
    "flow_generator.batch_size=4",
    "flow_generator.val_steps=2",
    "feature_extractor.arch=resnet18",
    "feature_extractor.weights=scratch",
    "feature_extractor.num_epochs=3",
    "feature_extractor.steps_per_epoch=15",
    "feature_extractor.batch_size=8",
    "feature_extractor.val_steps=4",
    "feature_extractor.lr=1e-3",
]
SEQ = [
    "compute.num_workers=0",
    "sequence.sequence_length=90",
    "sequence.batch_size=8",
    "sequence.num_epochs=15",
    "sequence.steps_per_epoch=15",
    "sequence.lr=1e-3",
]


def _project(root: Path, name: str, behaviors: list[str], animals: int) -> Project:
    return Project.create(root, name, behaviors, animals=animals)


def _aligned(tracks, truth: MultiTruth):
    """The tracker's identities renamed to the true animals they follow most (least mean
    distance over frames both know)."""
    n = tracks.n_animals
    d = np.linalg.norm(tracks.center[:, :, None] - truth.centers[:, None], axis=3)  # (T, n, n)
    order = best_assignment(np.nanmean(d, axis=0))  # tracker identity -> true animal
    if (order == np.arange(n)).all():
        return tracks, order
    return tracks.swap(0, 1) if n == 2 else tracks, order


def _stages(project: Project, log: dict) -> str:
    t0 = time.perf_counter()
    flow = train_flow(project, project.resolve_config(BASE), device="cpu", progress=False)
    feats = train_features(
        project, project.resolve_config(BASE), flow_run=flow.name, device="cpu", progress=False
    )
    infer_features(project, feats.name, device="cpu", progress=False)
    log[f"{project.root.name} flow+features (min)"] = (time.perf_counter() - t0) / 60
    return feats.name


def _sequence(project: Project, feats: str, extra: list[str], seed: int) -> dict:
    cfg = project.resolve_config([*SEQ, *extra])
    run = train_sequence(project, cfg, feature_run=feats, device="cpu", progress=False, seed=seed)
    infer_sequence(project, run.name, device="cpu")
    return evaluate_project(project, "test", "sequence", run.name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=450)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--append", type=Path)
    ap.add_argument("--budget", type=int, default=1, help="multiplies every stage's steps")
    args = ap.parse_args()
    if args.budget != 1:  # later settings win in resolve_config
        steps = 15 * args.budget
        BASE.extend(
            [
                f"flow_generator.steps_per_epoch={steps}",
                f"feature_extractor.steps_per_epoch={steps}",
            ]
        )
        SEQ.append(f"sequence.steps_per_epoch={steps}")
    start = time.perf_counter()
    log: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        pair = _project(tmp_path, "pair", list(MULTI_BEHAVIORS), 2)
        single = _project(tmp_path, "single", ["interacting"], 1)
        switches = frames = 0
        contact = []
        for i, split in enumerate(SPLITS):
            path = tmp_path / f"pair{i}.mp4"
            spec = MultiSpec(n_animals=2, n_frames=args.frames, size=args.size, seed=10 + i)
            truth = write_multi_video(path, spec)
            tracks = track_animals(path, 2)
            switches += identity_switches(tracks.center, truth.centers)
            frames += args.frames
            tracks, _ = _aligned(tracks, truth)
            pair.add_videos([path], split=split)
            key = pair.video_keys()[-1]
            save_animal_tracks(pair, key, tracks)
            for a in range(2):
                pair.save_labels(
                    key, Labels(pair.behaviors, truth.labels[:, a].astype(np.int8)), animal=a
                )
            single.add_videos([path], split=split)
            skey = single.video_keys()[-1]
            single.save_labels(
                skey, Labels(single.behaviors, truth.contact.astype(np.int8)[:, None])
            )
            contact.append(float(truth.contact.mean()))
        log["identity switches / 1,000 frames"] = 1000 * switches / frames
        log["contact share"] = float(np.mean(contact))
        feats = _stages(pair, log)
        rows = {}
        for name, extra in (
            ("(a) per-animal, social", ["sequence.track_features=true"]),
            ("(b) per-animal, no social", ["sequence.track_features=true",
                                           "sequence.social_features=false"]),
        ):  # fmt: skip
            f1 = []
            for seed in args.seeds:
                r = _sequence(pair, feats, extra, seed)
                f1.append(
                    [r["per_animal"][f"animal{a}"]["macro"]["f1"] for a in (0, 1)]
                    + [r["macro"]["f1"]]
                )
            rows[name] = np.mean(np.asarray(f1, float), axis=0)
            print(name, rows[name], flush=True)
        sfeats = _stages(single, log)
        f1c = []
        for seed in args.seeds:
            r = _sequence(single, sfeats, [], seed)
            f1c.append(r["f1"]["interacting"])
        log["(c) one stream, interacting F1"] = float(np.mean(f1c))
    log["total (min)"] = (time.perf_counter() - start) / 60
    for k, v in log.items():
        print(f"{k}: {v:.3f}")
    table = [
        "| run | animal0 macro F1 | animal1 macro F1 | pooled macro F1 |",
        "|---|---|---|---|",
        *(f"| {k} | {v[0]:.2f} | {v[1]:.2f} | {v[2]:.2f} |" for k, v in rows.items()),
    ]
    print("\n".join(table))
    if args.append:
        cpu = (
            subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True)
            .stdout.split(":")[-1]
            .strip()
        )
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        with open(args.append, "a") as f:
            f.write(
                f"\n## Social track features (issue 24)\n\n`uv run python benchmarks/"
                f"bench_animals.py` on {cpu}, 2 cores (shared); commit {rev} plus the "
                f"uncommitted work. 3 generated 2-animal videos x {args.frames} frames at "
                f"{args.size} px (train, val, test), tracks by track_animals, seeds "
                f"{args.seeds}.\n\n"
                + "\n".join(table)
                + "\n\n"
                + "\n".join(f"- {k}: {v:.2f}" for k, v in log.items())
                + "\n"
            )


if __name__ == "__main__":
    main()
