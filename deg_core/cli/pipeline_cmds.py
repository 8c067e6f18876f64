"""Pipeline commands: train, infer, show-flow."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from deg_core.cli.common import Subparsers, add_stage_options, open_project
from deg_core.errors import ConfigError

if TYPE_CHECKING:
    from deg_core.config import DegConfig
    from deg_core.project.project import Project


def add_train_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "train",
        help="train a stage: flow, then features, then sequence (pretrain, after flow: the "
        "feature extractor self-supervised on every video, the start of features)",
    )
    p.add_argument("stage", choices=["flow", "pretrain", "features", "sequence"])
    p.add_argument("project")
    add_stage_options(p)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--run", default=None, help="resume this interrupted run instead of a new one")
    p.add_argument("--flow-run", default="latest", help="pretrain, features: the flow run to use")
    p.add_argument("--feature-run", default="latest", help="sequence: the feature run to use")
    p.set_defaults(func=cmd_train)


def _stage_config(args: argparse.Namespace) -> tuple[Project, DegConfig]:
    project = open_project(args.project)
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
    if args.stage in ("features", "sequence") and not cfg.project.exclusive:
        from deg_core.project.status import exclusive_suggestion

        hint = exclusive_suggestion(project)
        if hint:
            print(f"suggestion: {hint}")
    if args.stage == "flow":
        from deg_core.train.flow import train_flow

        run = train_flow(project, cfg, device=args.device, resume=args.run)
    elif args.stage == "pretrain":
        from deg_core.train.pretrain import train_pretrain

        run = train_pretrain(
            project, cfg, flow_run=args.flow_run, device=args.device, resume=args.run
        )
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
    decision = run / "decision.yaml"
    if decision.is_file():  # what the out-of-fold fit refused or replaced
        from deg_core.fileio import load_yaml

        for note in load_yaml(decision).get("notes", []):
            print(f"decision: {note}")
    if best is not None:
        line = f"best epoch {best['epoch'] + 1}: val_loss {best['val_loss']:.4f}"
        if best.get("f1"):
            line += "  F1 " + " ".join(
                f"{k}:{'-' if v is None else f'{v:.2f}'}" for k, v in best["f1"].items()
            )
        print(line)
    return 0


def add_infer_parser(sub: Subparsers) -> None:
    p = sub.add_parser("infer", help="run a trained stage over videos")
    p.add_argument("stage", choices=["features", "sequence", "all"])
    p.add_argument("project")
    p.add_argument("--videos", nargs="*", default=None, metavar="KEY")
    p.add_argument("--run", default="latest", help="latest or a run folder name")
    p.add_argument("--device", default="auto", help="auto (compute.device), cpu, cuda, cuda:N")
    add_stage_options(
        p, "a compute.* setting, e.g. compute.batch_size=64 (model settings: the run's)"
    )
    p.add_argument("--overwrite", action="store_true", help="recompute videos already done")
    p.set_defaults(func=cmd_infer)


def cmd_infer(args: argparse.Namespace) -> int:
    from deg_core.compute import distributed
    from deg_core.infer.features import infer_features
    from deg_core.infer.sequence import feature_run_of, infer_sequence

    project = open_project(args.project)
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


def add_show_flow_parser(sub: Subparsers) -> None:
    p = sub.add_parser("show-flow", help="PNG of a clip and the flows a flow run computes")
    p.add_argument("project")
    p.add_argument("--run", default="latest")
    p.add_argument("--video", default=None)
    p.add_argument("--frame", type=int, default=None)
    p.add_argument("--out", default=None, help="PNG path (default: <run>/flow_preview.png)")
    p.set_defaults(func=cmd_show_flow)


def cmd_show_flow(args: argparse.Namespace) -> int:
    from deg_core.report.flow_preview import flow_preview

    path = flow_preview(open_project(args.project), args.run, args.video, args.frame, args.out)
    print(f"wrote {path}")
    return 0
