"""Accuracy ablation on synthetic data: what each part of the pipeline adds.

Usage::

    uv run python benchmarks/bench_accuracy.py                     # demo size, CPU settings
    uv run python benchmarks/bench_accuracy.py --append benchmarks/RESULTS.md
    uv run python benchmarks/bench_accuracy.py --seeds 0 1 2 --set feature_extractor.num_epochs=10

Builds a synthetic project like ``deg demo`` (deg_core.workflow.synthetic: walk, groom, rear,
turn; groom differs from rest only by motion), trains one flow generator, then
(a) a feature extractor whose fused output is the spatial stream alone
(``flow_weight=0``: the flow stream gets no gradient and no say), (b) the two-stream
feature extractor, (c) each sequence model on (b)'s features; and reports per-behaviour
F1 (validation thresholds, as ``deg evaluate``) on the held-out test videos, plus the
validation F1 the default sequence architecture is chosen by.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deg_core.evaluation.scoring import evaluate_project  # noqa: E402
from deg_core.infer.features import infer_features  # noqa: E402
from deg_core.infer.sequence import infer_sequence  # noqa: E402
from deg_core.project.project import Project  # noqa: E402
from deg_core.train.features import train_features  # noqa: E402
from deg_core.train.flow import train_flow  # noqa: E402
from deg_core.train.sequence import train_sequence  # noqa: E402
from deg_core.workflow.demo import DEMO_SETTINGS, DEMO_SIZE, demo_project  # noqa: E402

SEQUENCE_ARCHS = ("tgmj", "tcn")


def run_once(out: Path, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every variant on one synthetic project; {variant: {"test": eval, "val": eval}}."""
    project = demo_project(out, n_videos=args.videos, n_frames=args.frames, seed=seed)
    base = [*DEMO_SETTINGS, *args.set]
    cfg = project.resolve_config(base)
    kw: dict[str, Any] = {"device": args.device, "progress": False}
    t0 = time.perf_counter()
    train_flow(project, cfg, **kw)
    seconds = {"flow": time.perf_counter() - t0}
    t0 = time.perf_counter()
    spatial = train_features(
        project, project.resolve_config([*base, "feature_extractor.flow_weight=0"]), **kw
    )
    infer_features(project, spatial.name, **kw)
    seconds["spatial"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    two = train_features(project, cfg, **kw)
    infer_features(project, two.name, **kw)
    seconds["two-stream"] = time.perf_counter() - t0
    for arch in SEQUENCE_ARCHS:
        t0 = time.perf_counter()
        scfg = project.resolve_config([*base, f"sequence.arch={arch}"])
        seq = train_sequence(project, scfg, feature_run=two.name, **kw)
        infer_sequence(project, seq.name, device=args.device)
        seconds[arch] = time.perf_counter() - t0
    results = score_project(project)
    results["seconds"] = seconds
    (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return results


def score_project(project: Project) -> dict[str, Any]:
    """Val and test metrics of each variant's run in a project that run_once trained.

    The spatial-only run is the feature run trained with flow_weight 0; the two-stream run is
    the other one; each sequence architecture's latest run is (c).
    """
    from deg_core.project.runs import read_run_config

    features, sequences = {}, {}
    for run in sorted(p for p in project.models_dir.iterdir() if (p / "config.yaml").is_file()):
        info = read_run_config(run)
        if info["stage"] == "features":
            spatial = float(info["config"]["feature_extractor"]["flow_weight"]) == 0
            features["(a) spatial stream" if spatial else "(b) two-stream"] = run.name
        elif info["stage"] == "sequence":
            sequences[f"(c) two-stream + {info['arch']}"] = run.name

    def score(stage: str, run: str) -> dict[str, Any]:
        return {s: evaluate_project(project, s, stage, run) for s in ("val", "test")}

    results = {name: score("features", run) for name, run in sorted(features.items())}
    for name in (f"(c) two-stream + {arch}" for arch in SEQUENCE_ARCHS):
        if name in sequences:
            results[name] = score("sequence", sequences[name])
    return results


def table(runs: list[dict[str, Any]], behaviors: list[str]) -> str:
    """Markdown: per-behaviour test F1 (mean ± sd over seeds), macro test F1 and val F1."""
    variants = [k for k in runs[0] if k != "seconds"]
    head = ["variant", *behaviors, "macro F1 (test)", "macro F1 (val)", "AUROC (test)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(values: list[float]) -> str:
        v = np.asarray([np.nan if x is None else x for x in values], float)
        return f"{np.nanmean(v):.2f}" + (f" ± {np.nanstd(v):.2f}" if len(v) > 1 else "")

    for name in variants:
        test = [r[name]["test"] for r in runs]
        row = [name]
        row += [cell([t["f1"][b] for t in test]) for b in behaviors]
        row += [cell([t["macro"]["f1"] for t in test])]
        row += [cell([r[name]["val"]["macro"]["f1"] for r in runs])]
        row += [cell([t["macro"]["auroc"] for t in test])]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=DEMO_SIZE["n_videos"], help="per project")
    ap.add_argument("--frames", type=int, default=DEMO_SIZE["n_frames"], help="per video")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--set", action="append", default=[], help="config override key=value")
    ap.add_argument("--out", type=Path, default=None, help="keep the projects here")
    ap.add_argument("--append", type=Path, default=None, help="append the table to this file")
    ap.add_argument(
        "--tabulate", action="store_true", help="score the projects kept in --out; train nothing"
    )
    args = ap.parse_args(argv)
    runs = []
    if args.tabulate:  # re-score projects an earlier run kept with --out
        if args.out is None:
            ap.error("--tabulate needs --out DIR (the folder holding seed<N>/)")
        for seed in args.seeds:
            runs.append(score_project(Project.open(args.out / f"seed{seed}" / "demo_deepethogram")))
    with tempfile.TemporaryDirectory() as tmp:
        for seed in [] if args.tabulate else args.seeds:
            out = (args.out or Path(tmp)) / f"seed{seed}"
            out.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            runs.append(run_once(out, seed, args))
            print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", json.dumps(runs[-1]["seconds"]))
    behaviors = list(next(iter(runs[0].values()))["test"]["f1"])
    text = table(runs, behaviors)
    print(text)
    if args.append:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=ROOT).stdout.strip()  # fmt: skip
        note = (
            f"\n### Accuracy ablation ({dt.date.today()}, commit {commit}, "
            f"{platform.processor() or platform.machine()}, device {args.device})\n\n"
            f"{args.videos} synthetic videos x {args.frames} frames per seed "
            f"(train/val/test as `deg demo`), seeds {args.seeds}, settings: DEMO_SETTINGS "
            f"{' '.join(args.set)}. Test-video F1 with validation thresholds.\n\n{text}\n"
        )
        with open(args.append, "a", encoding="utf-8") as f:
            f.write(note)


if __name__ == "__main__":
    main()
