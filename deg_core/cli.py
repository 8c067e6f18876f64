"""The ``deg`` command line. Each command is a thin wrapper over the Python API.

Bad input prints one line (``deg: error: <file>: <problem>``) to stderr and exits
with status 1, having changed nothing on disk.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from deg_core.errors import ConfigError, DegError
from deg_core.presets import AUTO, PRESETS


def _project(path: str):
    from deg_core.project.project import Project

    return Project.open(path)


def cmd_init(args: argparse.Namespace) -> int:
    from deg_core.project.project import Project

    behaviors = [b.strip() for b in args.behaviors.split(",")]
    project = Project.create(args.parent, args.name, behaviors, labeler=args.labeler)
    print(f"created {project.root}")
    print(f"behaviours: {', '.join(project.behaviors)} (background is implicit)")
    print(f"next: deg add-videos {project.root} VIDEO...")
    return 0


def cmd_add_videos(args: argparse.Namespace) -> int:
    project = _project(args.project)
    keys = project.add_videos(args.videos, split=args.split, skip_existing=args.skip_existing)
    table = project.splits()
    for key in keys:
        rec = project.record(key)
        print(
            f"added {key}: {rec.frames} frames, {rec.fps:.2f} fps, "
            f"{rec.width}x{rec.height}, split {table.assignment.get(key)}"
        )
    for w in table.warnings():
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_remove_video(args: argparse.Namespace) -> int:
    project = _project(args.project)
    moved = project.remove_video(args.video)
    print(f"removed {args.video}; its folder was moved to {moved}")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    project = _project(args.project)
    for w in project.set_split(args.video, args.split):
        print(f"warning: {w}", file=sys.stderr)
    print(f"{project.resolve_key(args.video)} -> {args.split}")
    return 0


def _import_boris(project, args: argparse.Namespace):
    """The labels of a BORIS export (``--format boris``, or auto-detected), else None."""
    from deg_core.interop import boris

    kind = args.format if args.format != "auto" else ("boris" if boris.sniff(args.csv) else "deg")
    if kind != "boris":
        if args.subject is not None or args.map:
            raise DegError("--subject and --map apply to BORIS files only (--format boris)")
        return None
    result = boris.import_boris(
        project,
        args.video,
        args.csv,
        labeler=args.labeler,
        subject=args.subject,
        mapping=boris.parse_mapping(args.map),
        unlabeled_outside_bouts=args.unlabeled_outside_bouts,
    )
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return result.labels


def cmd_import_labels(args: argparse.Namespace) -> int:
    project = _project(args.project)
    labels = _import_boris(project, args)  # None: a DEG label CSV or a bout table
    if labels is None:
        labels = project.import_labels(
            args.video,
            args.csv,
            labeler=args.labeler,
            unlabeled_outside_bouts=args.unlabeled_outside_bouts,
        )
    frac = labels.labeled_fraction()
    pos = (labels.array == 1).sum(axis=0)
    whose = f", labeler {args.labeler}" if args.labeler else ""
    key = project.resolve_key(args.video)
    print(f"imported {args.csv} -> {key} ({labels.n_frames} frames{whose})")
    for b, f, p in zip(labels.behaviors, frac, pos, strict=True):
        print(f"  {b}: {p} positive frames, {f:.0%} labeled")
    return 0


def cmd_behaviors(args: argparse.Namespace) -> int:
    project = _project(args.project)
    if args.action == "add":  # all names checked before anything is written
        project.add_behaviors(args.names)
    elif args.action == "remove":
        project.remove_behaviors(args.names)
    elif args.action == "rename":
        if len(args.names) != 2:
            raise DegError("rename takes two names: OLD NEW")
        project.rename_behavior(*args.names)
    print("behaviours: " + ", ".join(project.behaviors))
    stale = [r["name"] for r in project.model_runs() if r["stale"]]
    if stale:
        print(f"warning: model runs now stale (retrain them): {', '.join(stale)}", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from deg_core.project.status import format_status, project_status

    project = _project(args.project)
    status = project_status(project)
    try:  # which weights training would start from, and how to get better ones
        from deg_core.train.pretrained import start_weights_lines

        status["start_weights"] = start_weights_lines(
            project.resolve_config(), project.models_dir / "pretrained"
        )
    except DegError:
        pass  # a config problem: the status above already shows the project
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    if not args.json:
        for line in status.get("start_weights", {}).values():
            print(f"start weights: {line}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from deg_core.models.weights import download

    progress = not args.no_progress
    if args.source == "imagenet":
        if args.project is not None:
            raise DegError(
                "ImageNet weights go to torch's cache, shared by every project: drop PROJECT"
            )
        for path in download.download_imagenet(
            args.arch or ["resnet18", "resnet50"], progress=progress
        ):
            print(f"ImageNet weights: {path}")
        return 0
    if args.arch:
        raise DegError("--arch is for imagenet; deepethogram installs the whole release")
    target = (
        _project(args.project).models_dir / "pretrained"
        if args.project is not None
        else download.user_pretrained_dir()
    )
    added, source = download.download_deepethogram(target, archive=args.archive, progress=progress)
    print(f"DeepEthogram's pretrained models from {source} -> {target}")
    print(f"added: {', '.join(added)}" if added else "all were already there (left as they were)")
    return 0


def _stage_config(args: argparse.Namespace):
    project = _project(args.project)
    if getattr(args, "run", None) is None:
        return project, project.resolve_config(args.set, preset=args.preset)
    # resume: the run's own settings; --set/--preset may change only resumable ones
    # (the project's config may have moved on since the run started)
    from deg_core.project.runs import resumable_run, resume_config

    run, _ = resumable_run(project.models_dir, args.run, args.stage)
    return project, resume_config(run, overrides=args.set, preset=args.preset)


def cmd_train(args: argparse.Namespace) -> int:
    from deg_core.config import device_problem

    problem = device_problem(args.device, "--device")
    if problem:  # before anything is read or written
        raise ConfigError(problem)
    project, cfg = _stage_config(args)
    if args.stage == "flow":
        from deg_core.train.flow import train_flow

        run = train_flow(project, cfg, device=args.device, resume=args.run)
    elif args.stage == "features":
        from deg_core.train.features import train_features

        run = train_features(
            project, cfg, flow_run=args.flow_run, device=args.device, resume=args.run
        )
    else:
        from deg_core.train.sequence import train_sequence

        run = train_sequence(
            project, cfg, feature_run=args.feature_run, device=args.device, resume=args.run
        )
    from deg_core.compute import distributed
    from deg_core.project.runs import best_epoch, read_metrics

    if not distributed.is_main():  # under torchrun rank 0 reports for all
        return 0
    best = best_epoch(read_metrics(run))
    print(f"trained {run.name}")
    if best is not None:
        line = f"best epoch {best['epoch'] + 1}: val_loss {best['val_loss']:.4f}"
        if best.get("f1"):
            line += "  F1 " + " ".join(
                f"{k}:{'-' if v is None else f'{v:.2f}'}" for k, v in best["f1"].items()
            )
        print(line)
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    from deg_core.compute import distributed
    from deg_core.infer.features import infer_features
    from deg_core.infer.sequence import feature_run_of, infer_sequence

    project = _project(args.project)
    # the model's own settings come from its run; inference changes only how it computes
    not_compute = [s for s in args.set if not s.strip().startswith("compute.")]
    if not_compute:
        raise ConfigError(
            f"deg infer takes only compute.* settings (the model's come from its run): "
            f"{', '.join(not_compute)}",
            project.config_path,
        )
    compute = project.resolve_config(args.set, preset=args.preset).compute
    device = compute.device if args.device == "auto" else args.device
    videos, kw = args.videos or None, {"device": device, "overwrite": args.overwrite}
    batch = compute.batch_size  # auto: the largest that fits the GPU (16 on CPU)
    # under torchrun each rank takes its share of the videos (deg_core.compute.distributed.shard);
    # rank 0 prints the summary of all of them
    if args.stage == "features":
        result = infer_features(project, args.run, videos, batch_size=batch, **kw)
    elif args.stage == "sequence":
        result = infer_sequence(project, args.run, videos, **kw)
    else:  # all: the features the sequence run was trained on, then the sequence model
        feature_run = feature_run_of(project, args.run)
        # the same shard both times: a rank's sequence inputs are the features it wrote
        states = distributed.merged(
            infer_features(project, feature_run, videos, batch_size=batch, **kw)
        )
        for key, state in states.items():
            if distributed.is_main():
                print(f"{key}: features {state}")
        result = infer_sequence(project, args.run, videos, **kw)
    result = distributed.merged(result)
    if distributed.is_main():
        for key, state in result.items():
            print(f"{key}: {args.stage if args.stage != 'all' else 'sequence'} {state}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from deg_core.evaluation.scoring import evaluate_project

    result = evaluate_project(_project(args.project), args.split, args.model, args.run)
    if args.json:
        from deg_core.fileio import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=2, allow_nan=False))
    print(f"{result['run']} on {args.split} ({len(result['videos'])} videos)")
    print(f"  {'behaviour':<20} {'F1':>6} {'prec':>6} {'recall':>6} {'AUROC':>6} {'bout F1':>8}")
    fmt = lambda v: "     -" if v is None else f"{v:6.3f}"  # noqa: E731
    for b in result["class_names"]:
        print(
            f"  {b:<20} {fmt(result['f1'][b])} {fmt(result['precision'][b])} "
            f"{fmt(result['recall'][b])} {fmt(result['auroc'][b])}   {fmt(result['bout_f1'][b])}"
        )
    print(f"  macro F1 {fmt(result['macro']['f1'])}")
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    from deg_core.evaluation.agreement import format_agreement, project_agreement

    results = project_agreement(
        _project(args.project),
        args.videos,
        args.labelers,
        model=args.model,
        min_overlap=args.min_overlap,
    )
    print(format_agreement(results), end="")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    project = _project(args.project)
    if args.format == "boris":
        from deg_core.interop.boris import export_boris

        paths, skipped = export_boris(
            project, args.videos, args.out, predictions=args.predictions, run=args.run
        )
        for path in paths:
            print(f"wrote {path}")
        for why in skipped:
            print(f"skipped {why}", file=sys.stderr)
        return 0
    from deg_core.interop.nwb import export_nwb

    for path, notes in export_nwb(project, args.videos, args.out, run=args.run).items():
        print(f"wrote {path}" + (f" ({'; '.join(notes)})" if notes else ""))
    return 0


def cmd_import_predictions(args: argparse.Namespace) -> int:
    from deg_core.infer.sequence import import_predictions

    project = _project(args.project)
    before = project.labels(args.video).array
    after = import_predictions(project, args.video, overwrite=args.overwrite)
    changed = int((before != after.array).any(axis=1).sum())
    print(f"{project.resolve_key(args.video)}: predictions copied onto {changed} frames")
    return 0


def cmd_show_flow(args: argparse.Namespace) -> int:
    from deg_core.report.flow_preview import flow_preview

    path = flow_preview(_project(args.project), args.run, args.video, args.frame, args.out)
    print(f"wrote {path}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from deg_core.config import describe, stage_keys

    project = _project(args.project)
    resolved = project.resolve_config(args.set, preset=args.preset)
    keys = set(stage_keys(args.stage)) if args.stage else None
    for key, default, meaning in describe():
        if keys is not None and key not in keys:
            continue
        node = resolved
        for part in key.split("."):
            node = getattr(node, part)
        mark = "" if node == default else "   (project override)"
        print(f"{key} = {node!r}{mark}\n    {meaning}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from deg_core.workflow.demo import run_demo

    result = run_demo(
        args.out, device=args.device, overrides=args.set, n_videos=args.videos, n_frames=args.frames
    )
    print(f"\nheld-out test videos {', '.join(result['videos'])}: per-behaviour F1")
    for name, f1 in result["f1"].items():
        print(f"  {name:<10} {'-' if f1 is None else f'{f1:.3f}'}")
    macro = result["macro"]["f1"]
    print(f"  macro F1   {'-' if macro is None else f'{macro:.3f}'}")
    print(f"ethogram (labels above predictions): {result['ethogram']}")
    print(f"project: {result['project']}  ({result['seconds'] / 60:.1f} min)")
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from deg_core.workflow.retrain_runner import parse_parameters, run_retrain

    result = run_retrain(
        args.project,
        parse_parameters(args.parameters),
        notebook=args.notebook,
        kernel_name=args.kernel,
    )
    for stage, r in result["metrics"].get("stages", {}).items():
        run = f" -> {r['run']}" if r.get("run") and r["action"] == "ran" else ""
        print(f"{stage:<9} {r['action']}: {r['reason']}{run}")
    print(f"report: {result['report']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deg",
        description="Behaviour classification from raw video (DeepEthogram, in notebooks).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create a project folder <PARENT>/<name>_deepethogram")
    p.add_argument("parent")
    p.add_argument("--name", required=True)
    p.add_argument("--behaviors", required=True, help="comma-separated, e.g. groom,rear,walk")
    p.add_argument("--labeler", default=None)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("add-videos", help="copy videos into the project and measure them")
    p.add_argument("project")
    p.add_argument("videos", nargs="+")
    p.add_argument("--split", choices=["train", "val", "test"], default=None)
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip videos already in the project (to finish an interrupted batch)",
    )
    p.set_defaults(func=cmd_add_videos)

    p = sub.add_parser("remove-video", help="remove a video (moved to the project's .trash/)")
    p.add_argument("project")
    p.add_argument("video")
    p.set_defaults(func=cmd_remove_video)

    p = sub.add_parser("split", help="move a video to train, val or test")
    p.add_argument("project")
    p.add_argument("video")
    p.add_argument("split", choices=["train", "val", "test"])
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("import-labels", help="import a label CSV (DEG format or bout table)")
    p.add_argument("project")
    p.add_argument("video")
    p.add_argument("csv")
    p.add_argument(
        "--unlabeled-outside-bouts",
        action="store_true",
        help="bout tables: frames outside every bout are unlabeled (-1), not absent (0)",
    )
    p.add_argument(
        "--labeler",
        default=None,
        metavar="NAME",
        help="import as this annotator's set (<key>_labels.NAME.csv); the project's labeler "
        "(default) writes the label file that trains",
    )
    p.add_argument(
        "--format",
        choices=["auto", "deg", "boris"],
        default="auto",
        help="deg: DEG label CSV or bout table; boris: BORIS tabular events or behaviors "
        "binary table (CSV/TSV); auto: BORIS files are recognised by their header",
    )
    p.add_argument("--subject", default=None, help="BORIS: the subject whose events to import")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="BORIS_NAME=DEG_NAME",
        help="BORIS: rename a behaviour to the project's name (BORIS_NAME= drops it)",
    )
    p.set_defaults(func=cmd_import_labels)

    p = sub.add_parser("behaviors", help="add, remove or rename behaviours")
    p.add_argument("project")
    p.add_argument("action", choices=["add", "remove", "rename", "list"])
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_behaviors)

    p = sub.add_parser("status", help="videos, splits, labels, outputs and models")
    p.add_argument("project")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)

    def stage_options(
        p: argparse.ArgumentParser,
        set_help: str = "override a setting, e.g. feature_extractor.num_epochs=5 (see deg config)",
    ) -> None:
        p.add_argument(
            "--preset",
            choices=[*PRESETS, AUTO],
            default=None,
            help="fast/medium/slow: DeepEthogram's presets; lite: deg's CPU preset (pairwise "
            "flow, 128x128 animal crop, short training; see README); cpu: fast's networks on a "
            "64x64 crop; auto: lite on a CPU, the project's settings on a GPU",
        )
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)

    p = sub.add_parser("train", help="train a stage: flow, then features, then sequence")
    p.add_argument("stage", choices=["flow", "features", "sequence"])
    p.add_argument("project")
    stage_options(p)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--run", default=None, help="resume this interrupted run instead of a new one")
    p.add_argument("--flow-run", default="latest", help="features: the flow run to use")
    p.add_argument("--feature-run", default="latest", help="sequence: the feature run to use")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("infer", help="run a trained stage over videos")
    p.add_argument("stage", choices=["features", "sequence", "all"])
    p.add_argument("project")
    p.add_argument("--videos", nargs="*", default=None, metavar="KEY")
    p.add_argument("--run", default="latest", help="latest or a run folder name")
    p.add_argument("--device", default="auto", help="auto (compute.device), cpu, cuda, cuda:N")
    stage_options(p, "a compute.* setting, e.g. compute.batch_size=64 (model settings: the run's)")
    p.add_argument("--overwrite", action="store_true", help="recompute videos already done")
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("evaluate", help="F1, precision, recall, AUROC, bout F1 on a split")
    p.add_argument("project")
    p.add_argument("--split", choices=["train", "val", "test"], default="val")
    p.add_argument("--model", choices=["features", "sequence"], default="sequence")
    p.add_argument("--run", default="latest")
    p.add_argument("--json", default=None, metavar="OUT", help="also write every metric here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "agreement", help="agreement between annotators (and the model): kappa, bouts, confusion"
    )
    p.add_argument("project")
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="default: every video")
    p.add_argument("--labelers", nargs="+", default=None, metavar="NAME", help="default: all")
    p.add_argument("--model", action="store_true", help="also the latest sequence model")
    p.add_argument("--min-overlap", type=float, default=0.5, help="IoU at which two bouts match")
    p.set_defaults(func=cmd_agreement)

    p = sub.add_parser(
        "export",
        help="labels/predictions for other tools: BORIS event tables, NWB files",
        description="boris: a BORIS tabular event file (CSV) per video, of the labels or, "
        "with --predictions, of the sequence run's ethogram. nwb: an NWB file per video with "
        "the bouts as time intervals, the probabilities and the video (needs pynwb: "
        "uv sync --extra nwb).",
    )
    p.add_argument("format", choices=["boris", "nwb"])
    p.add_argument("project")
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="default: every video")
    p.add_argument("--out", default=None, metavar="DIR", help="default: PROJECT/exports")
    p.add_argument("--predictions", action="store_true", help="boris: the model's ethogram")
    p.add_argument("--run", default="latest", help="the sequence run whose predictions to use")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import-predictions", help="copy predictions into the labels (unlabelled frames only)"
    )
    p.add_argument("project")
    p.add_argument("video")
    p.add_argument("--overwrite", action="store_true", help="also replace existing labels")
    p.set_defaults(func=cmd_import_predictions)

    p = sub.add_parser("show-flow", help="PNG of a clip and the flows a flow run computes")
    p.add_argument("project")
    p.add_argument("--run", default="latest")
    p.add_argument("--video", default=None)
    p.add_argument("--frame", type=int, default=None)
    p.add_argument("--out", default=None, help="PNG path (default: <run>/flow_preview.png)")
    p.set_defaults(func=cmd_show_flow)

    p = sub.add_parser("config", help="the resolved configuration with each key's meaning")
    p.add_argument("project")
    p.add_argument("--stage", choices=["flow", "features", "sequence"], default=None)
    stage_options(p)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("demo", help="the whole pipeline on synthetic videos, with F1")
    p.add_argument("--out", default="deg_demo", help="folder for the demo project and PNG")
    p.add_argument("--videos", type=int, default=None, help="synthetic videos (default 10)")
    p.add_argument("--frames", type=int, default=None, help="frames per video (default 600)")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "retrain",
        help="run notebooks/retrain.ipynb headless; report in PROJECT/reports/",
        description="Retrain the stages whose inputs changed (flow, features, sequence, infer) "
        "by executing the retrain notebook with papermill; the executed notebook, with its "
        "tables and plots, is saved as PROJECT/reports/<yymmdd_HHMMSS>_retrain.ipynb.",
    )
    p.add_argument("project")
    p.add_argument(
        "-p",
        "--parameter",
        dest="parameters",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a notebook parameter, the value read as YAML: -p stages [sequence,infer] "
        "-p epochs 5 -p device cuda -p videos [mouse3] -p force true",
    )
    p.add_argument("--notebook", default=None, help="another retrain notebook to execute")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel to run it with")
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("weights", help="download start weights (ImageNet, DeepEthogram's)")
    wsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = wsub.add_parser(
        "download",
        help="imagenet: torchvision's files into torch's cache; deepethogram: DEG's "
        "pretrained models into PROJECT/models/pretrained or deg's user cache",
    )
    p.add_argument("source", choices=["imagenet", "deepethogram"])
    p.add_argument(
        "project",
        nargs="?",
        default=None,
        help="deepethogram only: install into this project (default: ~/.cache/deg/pretrained, "
        "which weights: auto of every project also searches)",
    )
    p.add_argument("--arch", action="append", choices=["resnet18", "resnet50"], default=None)
    p.add_argument("--archive", default=None, help="install a pretrained_models.zip you have")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_weights)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # deg's modules report through logging (e.g. "no ImageNet weights, training from scratch")
    logging.basicConfig(level=logging.INFO, format="deg: %(message)s")
    logging.captureWarnings(True)
    try:
        return args.func(args)
    except DegError as e:
        print(f"deg: error: {e}", file=sys.stderr)
        return 1
    except PermissionError as e:  # a read-only project or file a check did not foresee
        print(f"deg: error: cannot write {e.filename}: permission denied", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("deg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
