"""Inference precision against accuracy on the demo (issue 25): is bf16 as accurate as float32?

Usage::

    uv run python benchmarks/bench_precision.py                      # trains the demo first
    uv run python benchmarks/bench_precision.py --demo DIR           # a finished `deg demo`
    uv run python benchmarks/bench_precision.py --append benchmarks/RESULTS.md

Trains ``deg demo`` (or takes a finished one), then for each ``compute.precision`` re-runs
feature inference and the same sequence run on the test videos of a copy of the project and
scores them as ``deg evaluate`` does: the test macro F1 and per-behaviour F1, and the
largest difference in the feature extractor's P from float32's. On a CPU without native bf16
the bf16 pass is emulated (slow): its accuracy is what a CPU with AMX/AVX512-BF16 gets,
its speed is not (benchmarks/bench_speed.py measures speed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_features import commit, machine, publish  # noqa: E402
from deg_core.evaluation.scoring import evaluate_project  # noqa: E402
from deg_core.fileio import load_yaml, save_yaml  # noqa: E402
from deg_core.infer.features import infer_features  # noqa: E402
from deg_core.infer.sequence import infer_sequence  # noqa: E402
from deg_core.project.project import Project, split_keys  # noqa: E402
from deg_core.project.runs import resolve_run  # noqa: E402
from deg_core.workflow.demo import run_demo  # noqa: E402


def score(demo: Path, precision: str, work: Path) -> tuple[dict, dict[str, np.ndarray], float]:
    """(evaluation, {key: features P}, seconds of feature inference) of the demo's test
    videos inferred in ``precision`` (a copy of the project; the demo's runs)."""
    root = work / precision
    shutil.copytree(demo, root)
    raw = load_yaml(root / "project_config.yaml")
    raw.setdefault("compute", {})["precision"] = precision
    save_yaml(root / "project_config.yaml", raw)
    project = Project.open(root)
    features = resolve_run(project.models_dir, "features", "latest").name
    sequence = resolve_run(project.models_dir, "sequence", "latest").name
    test = split_keys(project)["test"]
    t0 = time.perf_counter()
    infer_features(project, features, test, device="cpu", overwrite=True, progress=False)
    seconds = time.perf_counter() - t0
    infer_sequence(project, sequence, test, device="cpu", overwrite=True)
    probs = {}
    for key in test:
        with h5py.File(project.record(key).outputs_path, "r") as h5:
            probs[key] = h5[features]["P"][()]
    return evaluate_project(project, "test", "sequence", sequence), probs, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=None, help="a finished demo's output folder")
    ap.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--videos", type=int, default=None, help="demo videos (default: the demo's)")
    ap.add_argument("--frames", type=int, default=None, help="frames per demo video")
    ap.add_argument("--append", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.demo
        if out is None:
            out = Path(tmp) / "demo"
            run_demo(out, device="cpu", progress=False, n_videos=args.videos, n_frames=args.frames)
        demo = out / "demo_deepethogram"
        rows, ref = [], None
        for precision in args.precisions:
            result, probs, seconds = score(demo, precision, Path(tmp))
            if ref is None:
                ref = probs
            diff = max(float(np.abs(probs[k] - ref[k]).max()) for k in probs)
            f1 = result["f1"]  # {behaviour: F1}
            macro = float(result["macro"]["f1"])
            rows.append((precision, macro, f1, diff, seconds))
            print(precision, macro, diff, f"{seconds:.0f} s")
    lines = [
        "| compute.precision | test macro F1 | per behaviour F1 | max abs P diff vs float32 "
        "(features) | feature inference s |",
        "|---|---|---|---|---|",
    ]
    for precision, macro, f1, diff, seconds in rows:
        per = ", ".join(f"{k} {v:.3f}" for k, v in f1.items())
        lines.append(f"| {precision} | {macro:.3f} | {per} | {diff:.2e} | {seconds:.0f} |")
    text = (
        f"`benchmarks/bench_precision.py` on {machine()}, commit {commit()}, "
        f"{dt.date.today()}: `deg demo` (lite networks; {args.videos or 'default'} videos of "
        f"{args.frames or 'default'} frames), its test videos re-inferred in each precision "
        "with the same runs.\n\n" + "\n".join(lines) + "\n"
    )
    publish(text, args.append)


if __name__ == "__main__":
    main()
