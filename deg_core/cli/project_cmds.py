"""Project commands: init, add-videos, remove-video, split, behaviors, animals, status, config."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from deg_core.cli.common import Subparsers, add_stage_options, open_project
from deg_core.errors import DegError


def add_init_parser(sub: Subparsers) -> None:
    p = sub.add_parser("init", help="create a project folder <PARENT>/<name>_deepethogram")
    p.add_argument("parent")
    p.add_argument("--name", required=True)
    p.add_argument("--behaviors", required=True, help="comma-separated, e.g. groom,rear,walk")
    p.add_argument("--labeler", default=None)
    p.add_argument(
        "--exclusive",
        action="store_true",
        help="one behaviour (or background) per frame: the Labeler keeps one per frame, and "
        "training uses one softmax over background + behaviours, deciding by arg-max "
        "(project.exclusive; default: behaviours may overlap, one sigmoid each)",
    )
    p.add_argument(
        "--animals",
        type=int,
        default=1,
        metavar="N",
        help="animals in each video (project.animals; default 1; later: deg animals)",
    )
    p.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from deg_core.project.project import Project

    behaviors = [b.strip() for b in args.behaviors.split(",")]
    project = Project.create(
        args.parent,
        args.name,
        behaviors,
        labeler=args.labeler,
        exclusive=args.exclusive,
        animals=args.animals,
    )
    print(f"created {project.root}")
    print(f"behaviours: {', '.join(project.behaviors)} (background is implicit)")
    if project.exclusive:
        print("exclusive: one behaviour (or background) per frame")
    if project.config.project.animals > 1:
        print(f"animals: {project.config.project.animals} in each video")
    print(f"next: deg add-videos {project.root} VIDEO...")
    return 0


def add_add_videos_parser(sub: Subparsers) -> None:
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


def cmd_add_videos(args: argparse.Namespace) -> int:
    project = open_project(args.project)
    keys = project.add_videos(args.videos, split=args.split, skip_existing=args.skip_existing)
    table = project.splits()
    for key in keys:
        rec = project.record(key)
        print(
            f"added {key}: {rec.frames} frames, {rec.fps:.2f} fps, "
            f"{rec.width}x{rec.height}, split {table.assignment.get(key)}"
        )
        if rec.rotation:
            print(f"  {key}: shown turned by {rec.rotation} degrees (display matrix): read so")
        if rec.frame_times:
            times = rec.clock().times
            assert times is not None
            steps = np.diff(times) * 1000
            print(
                f"  {key}: variable frame rate (frame steps {steps.min():.1f} to "
                f"{steps.max():.1f} ms): its frame times are kept in {rec.frame_times}, and "
                "seconds (BORIS, NWB, bout tables) convert through them"
            )
    for w in table.warnings():
        print(f"warning: {w}", file=sys.stderr)
    return 0


def add_remove_video_parser(sub: Subparsers) -> None:
    p = sub.add_parser("remove-video", help="remove a video (moved to the project's .trash/)")
    p.add_argument("project")
    p.add_argument("video")
    p.set_defaults(func=cmd_remove_video)


def cmd_remove_video(args: argparse.Namespace) -> int:
    project = open_project(args.project)
    moved = project.remove_video(args.video)
    print(f"removed {args.video}; its folder was moved to {moved}")
    return 0


def add_split_parser(sub: Subparsers) -> None:
    p = sub.add_parser("split", help="move a video to train, val or test")
    p.add_argument("project")
    p.add_argument("video")
    p.add_argument("split", choices=["train", "val", "test"])
    p.set_defaults(func=cmd_split)


def cmd_split(args: argparse.Namespace) -> int:
    project = open_project(args.project)
    for w in project.set_split(args.video, args.split):
        print(f"warning: {w}", file=sys.stderr)
    print(f"{project.resolve_key(args.video)} -> {args.split}")
    return 0


def add_behaviors_parser(sub: Subparsers) -> None:
    p = sub.add_parser("behaviors", help="add, remove or rename behaviours")
    p.add_argument("project")
    p.add_argument("action", choices=["add", "remove", "rename", "list"])
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_behaviors)


def cmd_behaviors(args: argparse.Namespace) -> int:
    project = open_project(args.project)
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


def add_animals_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "animals", help="the number of animals in each video: show it, or set it (N)"
    )
    p.add_argument("project")
    p.add_argument("n", nargs="?", type=int, default=None, metavar="N", help="set it to N")
    p.add_argument(
        "--video",
        default=None,
        help="this video's number (project.animals_per_video; default: the project's, "
        "project.animals, which every video without its own number has)",
    )
    p.set_defaults(func=cmd_animals)


def cmd_animals(args: argparse.Namespace) -> int:
    project = open_project(args.project)
    if args.n is not None:
        project.set_animals(args.n, args.video)
    keys = [project.resolve_key(args.video)] if args.video else project.video_keys()
    if not args.video:
        print(f"project: {project.config.project.animals} animals per video")
    own = project.config.project.animals_per_video
    for key in keys:
        mark = "   (its own number)" if key in own else ""
        print(f"{key}: {project.n_animals(key)}{mark}")
    return 0


def add_status_parser(sub: Subparsers) -> None:
    p = sub.add_parser("status", help="videos, splits, labels, outputs and models")
    p.add_argument("project")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    from deg_core.project.status import exclusive_suggestion, format_status, project_status

    project = open_project(args.project)
    status = project_status(project)
    status["suggestion"] = exclusive_suggestion(project)
    try:  # which weights training would start from, and how to get better ones
        from deg_core.project.start_weights import start_weights_lines

        status["start_weights"] = start_weights_lines(
            project.resolve_config(), project.models_dir / "pretrained"
        )
    except DegError:
        pass  # a config problem: the status above already shows the project
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    if not args.json:
        for line in status.get("start_weights", {}).values():
            print(f"start weights: {line}")
        if status["suggestion"] is not None:
            print(f"suggestion: {status['suggestion']}")
    return 0


def add_config_parser(sub: Subparsers) -> None:
    p = sub.add_parser("config", help="the resolved configuration with each key's meaning")
    p.add_argument("project")
    p.add_argument("--stage", choices=["flow", "pretrain", "features", "sequence"], default=None)
    add_stage_options(p)
    p.set_defaults(func=cmd_config)


def cmd_config(args: argparse.Namespace) -> int:
    from deg_core.config import describe, stage_keys

    project = open_project(args.project)
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
