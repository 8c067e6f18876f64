"""Real-video accuracy: three folds of the rat videos through the public pipeline.

Usage::

    uv run python benchmarks/bench_real.py                         # --preset lite, 3 folds
    uv run python benchmarks/bench_real.py --append benchmarks/RESULTS.md
    uv run python benchmarks/bench_real.py --folds 0 --set sequence.num_epochs=10
    uv run python benchmarks/bench_real.py --keep runs/ --label baseline
    uv run python benchmarks/bench_real.py --tabulate runs/ --label baseline   # re-score only
    uv run python benchmarks/bench_real.py --tabulate runs/ --resequence \
        --set sequence.track_features=false    # a sequence variant on the kept features

Data: ``../shared/data/ratclips/`` (see SOURCES.md): three videos of a rat with
per-frame labels for six behaviours. Fold k tests on video k (sorted: cage1, cage2,
other), validates on video (k+1) % 3 and trains on the third: split by video, never
by frame. Each fold is what a user does (deg_core's public API, the same calls the
CLI makes): create a project, add the videos, import the train and validation
labels, train flow -> features -> sequence, infer every video, evaluate the test
video with the thresholds and minimum bout lengths fitted on validation.

The test video's labels are imported only after inference, just before scoring, so
nothing the pipeline fits (thresholds, bout lengths, normalisation, the crop's
track) can read them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_features import commit, machine  # noqa: E402

from deg_core.evaluation.scoring import evaluate_project  # noqa: E402
from deg_core.infer.features import infer_features  # noqa: E402
from deg_core.infer.sequence import infer_sequence  # noqa: E402
from deg_core.labels.labels import read_labels  # noqa: E402
from deg_core.project.project import Project  # noqa: E402
from deg_core.train.features import train_features  # noqa: E402
from deg_core.train.flow import train_flow  # noqa: E402
from deg_core.train.pretrain import train_pretrain  # noqa: E402
from deg_core.train.sequence import train_sequence  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "ratclips"
STAGES = ("flow", "pretrain", "features", "infer features", "sequence", "infer sequence")


def fold_videos(data: Path, fold: int) -> dict[str, Path]:
    """{"train", "val", "test": video path} of ``fold`` (videos sorted by name)."""
    videos = sorted(data.glob("*.mp4"))
    if len(videos) != 3:
        raise SystemExit(f"{data}: expected 3 videos, found {len(videos)}")
    return {
        "test": videos[fold],
        "val": videos[(fold + 1) % 3],
        "train": videos[(fold + 2) % 3],
    }


def labels_of(video: Path) -> Path:
    return video.with_name(f"{video.stem}_labels.csv")


def run_fold(out: Path, fold: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train and score one fold in ``out``; returns {"test", "val", "seconds", "videos"}."""
    videos = fold_videos(args.data, fold)
    behaviors = read_labels(labels_of(videos["train"])).class_names[1:]
    project = Project.create(out, f"fold{fold}", behaviors, exclusive=args.exclusive)
    for split, path in videos.items():
        project.add_video(path, split=split)
    for split in ("train", "val"):  # the test labels wait until scoring
        project.import_labels(videos[split].stem, labels_of(videos[split]))
    cfg = project.resolve_config(args.set, preset=args.preset)
    kw: dict[str, Any] = {"device": args.device, "progress": False, "seed": args.seed}
    seconds: dict[str, float] = {}

    def timed(stage: str, fn, *a, **k):
        t0 = time.perf_counter()
        result = fn(*a, **k)
        seconds[stage] = time.perf_counter() - t0
        print(f"  fold {fold} {stage}: {seconds[stage]:.0f} s", flush=True)
        return result

    timed("flow", train_flow, project, cfg, **kw)
    if args.pretrain:  # self-supervised, every frame of the three videos; features start there
        timed("pretrain", train_pretrain, project, cfg, **kw)
    features = timed("features", train_features, project, cfg, **kw)
    timed("infer features", infer_features, project, features.name, **_no_seed(kw))
    sequence = timed("sequence", train_sequence, project, cfg, feature_run=features.name, **kw)
    timed("infer sequence", infer_sequence, project, sequence.name, device=args.device)
    project.import_labels(videos["test"].stem, labels_of(videos["test"]))
    result = score(project)
    result["seconds"] = seconds
    result["videos"] = {split: p.name for split, p in videos.items()}
    return result


def set_exclusive(project: Project, exclusive: bool) -> Project:
    """The kept project with ``project.exclusive`` set (the sequence stage's softmax and
    arg-max; the kept feature run stays as it was trained)."""
    from deg_core.fileio import load_yaml, save_yaml

    raw = load_yaml(project.config_path)
    raw.setdefault("project", {})["exclusive"] = bool(exclusive)
    save_yaml(project.config_path, raw)
    return Project.open(project.root)


def _no_seed(kw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kw.items() if k != "seed"}


def score(project: Project, sequence: str = "latest", features: str = "latest") -> dict[str, Any]:
    """Test and validation metrics of a sequence run and a feature run (default: the latest)."""
    return {
        "test": evaluate_project(project, "test", "sequence", sequence),
        "val": evaluate_project(project, "val", "sequence", sequence),
        "features_test": evaluate_project(project, "test", "features", features),
    }


def threshold_study(
    project: Project, sigmas: list[float], run_name: str = "latest"
) -> dict[float, dict[str, Any]]:
    """Test-video metrics of a sequence run with thresholds refitted on its stored
    validation probabilities, for each ``train.threshold_smoothing`` value in ``sigmas``."""
    from deg_core.evaluation.evaluate import evaluate
    from deg_core.evaluation.metrics import fit_thresholds
    from deg_core.models.weights import load_checkpoint
    from deg_core.project.outputs import read_group
    from deg_core.project.project import split_keys
    from deg_core.project.runs import BEST, resolve_run

    run = resolve_run(project.models_dir, "sequence", run_name)
    min_lengths = load_checkpoint(run / BEST)["extra"]["min_lengths"]

    def pooled(split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
        keys = split_keys(project)[split]
        probs = [read_group(project.record(k).outputs_path, run.name, ("P",))["P"] for k in keys]
        return probs, [project.labels(k).array for k in keys]

    (vp, vy), (tp, ty) = pooled("val"), pooled("test")
    out = {}
    for sigma in sigmas:
        th, _, _ = fit_thresholds(np.concatenate(vp), np.concatenate(vy), smooth=sigma)
        out[sigma] = evaluate(tp, ty, th, project.behaviors, min_lengths=min_lengths)
    return out


def _cell(values: list[Any]) -> str:
    v = np.asarray([np.nan if x is None else x for x in values], float)
    if np.isnan(v).all():
        return "-"
    return f"{np.nanmean(v):.2f}" + (f" ± {np.nanstd(v):.2f}" if len(v) > 1 else "")


def table(folds: dict[int, dict[str, Any]]) -> str:
    """Markdown: one row per fold and a mean ± sd row; F1 per behaviour, macro F1, its
    all-positive baseline and best-threshold diagnosis, AUROC, bout F1, feature-stage macro
    F1, and wall time per stage (minutes)."""
    first = next(iter(folds.values()))
    behaviors = first["test"]["class_names"]
    head = ["fold (test video)", *behaviors, "macro F1", "all-positive F1"]
    head += ["best-threshold F1 (diagnosis)", "AUROC", "bout F1"]
    head += ["features F1", *(f"{s} (min)" for s in STAGES), "total (min)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(name: str, rs: list[dict[str, Any]]) -> str:
        cells = [name]
        cells += [_cell([r["test"]["f1"][b] for r in rs]) for b in behaviors]
        for metric in ("f1", "baseline_f1", "oracle_f1", "auroc", "bout_f1"):
            cells.append(_cell([r["test"]["macro"].get(metric) for r in rs]))
        cells.append(_cell([r["features_test"]["macro"]["f1"] for r in rs]))
        cells += [_cell([r["seconds"].get(s, np.nan) / 60 for r in rs]) for s in STAGES]
        cells.append(_cell([sum(r["seconds"].values()) / 60 for r in rs]))
        return "| " + " | ".join(cells) + " |"

    for k, r in sorted(folds.items()):
        lines.append(row(f"{k} ({r['videos']['test']})", [r]))
    if len(folds) > 1:
        lines.append(row("**mean ± sd**", list(folds.values())))
    return "\n".join(lines)


def study_table(kept: Path, folds: list[int], sigmas: list[float]) -> str:
    """Markdown: test macro F1 (and its lowest behaviour) per threshold smoothing value."""
    rows = {s: [] for s in sigmas}  # type: dict[float, list[dict[str, Any]]]
    for k in folds:
        fold_dir = kept / f"fold{k}"
        run = json.loads((fold_dir / "results.json").read_text("utf-8"))["test"]["run"]
        study = threshold_study(Project.open(fold_dir / f"fold{k}_deepethogram"), sigmas, run)
        for s, r in study.items():
            rows[s].append(r)
    lines = ["| threshold_smoothing | macro F1 (test) | lowest behaviour F1 | macro F1 per fold |"]
    lines.append("|---|---|---|---|")
    for s, rs in rows.items():
        macro = [r["macro"]["f1"] for r in rs]
        low = [min(v for v in r["f1"].values() if v is not None) for r in rs]
        per = ", ".join(f"{m:.2f}" for m in macro)
        lines.append(f"| {s:g} | {_cell(macro)} | {_cell(low)} | {per} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder with the 3 videos + labels")
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--preset", default="lite", help="config preset (default: lite)")
    ap.add_argument("--set", action="append", default=[], help="config override key=value")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--label", default="", help="name of this configuration in the table")
    ap.add_argument(
        "--pretrain",
        action="store_true",
        help="run deg train pretrain after the flow stage (the feature stage starts from it)",
    )
    ap.add_argument(
        "--exclusive",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one behaviour per frame (deg init --exclusive; the rat labels are, and deg status "
        "suggests it): softmax + arg-max in both trained stages (with --resequence: the "
        "sequence stage only, on the kept features); --no-exclusive: per-behaviour sigmoids",
    )
    ap.add_argument("--keep", type=Path, default=None, help="keep the fold projects here")
    ap.add_argument("--tabulate", type=Path, default=None, help="re-score kept projects only")
    ap.add_argument("--append", type=Path, default=None, help="append the table to this file")
    ap.add_argument(
        "--resequence",
        action="store_true",
        help="with --tabulate: train and score a new sequence run (--set) on the kept features "
        "(the train and val labels only; thresholds from val)",
    )
    ap.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        default=None,
        help="with --tabulate: also refit thresholds with these threshold_smoothing values",
    )
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: no such folder (the rat videos: see SOURCES.md)")
    folds: dict[int, dict[str, Any]] = {}
    t_start = time.perf_counter()
    if args.tabulate:
        for k in args.folds:
            fold_dir = args.tabulate / f"fold{k}"
            kept = json.loads((fold_dir / "results.json").read_text(encoding="utf-8"))
            project = Project.open(fold_dir / f"fold{k}_deepethogram")
            seconds = dict(kept["seconds"])
            if args.resequence and args.exclusive != project.exclusive:
                project = set_exclusive(project, args.exclusive)
            if args.resequence:  # a sequence variant on the kept features (ablation)
                cfg = project.resolve_config(args.set, preset=args.preset)
                t0 = time.perf_counter()
                run = train_sequence(
                    project,
                    cfg,
                    feature_run=kept["features_test"]["run"],
                    device=args.device,
                    progress=False,
                    seed=args.seed,
                )
                seconds["sequence"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                infer_sequence(project, run.name, device=args.device)
                seconds["infer sequence"] = time.perf_counter() - t0
                runs = ("latest", kept["features_test"]["run"])
            else:  # the runs the benchmark trained
                runs = (kept["test"]["run"], kept["features_test"]["run"])
            folds[k] = {**score(project, *runs), "seconds": seconds, "videos": kept["videos"]}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for k in args.folds:
                out = (args.keep or Path(tmp)) / f"fold{k}"
                out.mkdir(parents=True, exist_ok=True)
                print(f"fold {k}: {fold_videos(args.data, k)['test'].name} held out", flush=True)
                folds[k] = run_fold(out, k, args)
                (out / "results.json").write_text(json.dumps(folds[k], indent=1), "utf-8")
                m = folds[k]["test"]["macro"]
                print(f"fold {k}: macro F1 {m['f1']:.3f}, AUROC {m['auroc']:.3f}", flush=True)
    text = table(folds)
    if args.tabulate and args.thresholds:
        text += "\n\n" + study_table(args.tabulate, args.folds, args.thresholds)
    print(text)
    if args.append:
        settings = " ".join(f"`{s}`" for s in args.set) or "none"
        note = (
            f"\n### Real-video benchmark{': ' + args.label if args.label else ''} "
            f"({time.strftime('%Y-%m-%d')}, commit {commit()})\n\n"
            f"Machine: {machine()}. Command: `bench_real.py --preset {args.preset}"
            f"{' --exclusive' if args.exclusive else ''}{' --pretrain' if args.pretrain else ''}"
            f"{' --resequence' if args.resequence else ''}` with "
            f"overrides {settings}, seed {args.seed}, folds {args.folds}; "
            f"{(time.perf_counter() - t_start) / 60:.0f} min in all. Test-video scores with "
            "validation thresholds and minimum bout lengths (postprocessed); "
            "time per stage in minutes.\n\n"
            f"{text}\n"
        )
        with open(args.append, "a", encoding="utf-8") as f:
            f.write(note)


if __name__ == "__main__":
    main()
