"""Pipeline commands: train, infer, show-flow, tracks."""

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


def add_tracks_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "tracks",
        help="several animals in a video: show, import (SLEAP, DeepLabCut, CSV), compute, "
        "draw or fix (swap two identities) its tracks",
    )
    p.add_argument("project")
    p.add_argument("video", help="the video's key (or file name)")
    act = p.add_mutually_exclusive_group()
    act.add_argument(
        "--import",
        dest="import_file",
        metavar="FILE",
        default=None,
        help="read a SLEAP .slp/analysis .h5, DeepLabCut .h5/.csv or a CSV frame,animal,x,y[,w,h]",
    )
    act.add_argument(
        "--compute", action="store_true", help="track the animals with deg's own tracker"
    )
    act.add_argument(
        "--swap",
        nargs=2,
        metavar=("A", "B"),
        default=None,
        help="exchange two animals' identities (index or name) from --from on",
    )
    p.add_argument(
        "--format", choices=["auto", "sleap", "dlc", "csv"], default="auto", help="with --import"
    )
    p.add_argument("--from", dest="from_frame", type=int, default=0, metavar="FRAME")
    p.add_argument("--png", default=None, metavar="OUT", help="draw the tracks into this PNG")
    p.set_defaults(func=cmd_tracks)


def _animal_index(tracks, text: str) -> int:
    if text in tracks.names:
        return int(tracks.names.index(text))
    if text.isdigit() and int(text) < tracks.n_animals:
        return int(text)
    raise ConfigError(
        f"--swap: no animal {text!r} (0..{tracks.n_animals - 1} or {', '.join(tracks.names)})"
    )


def cmd_tracks(args: argparse.Namespace) -> int:
    from deg_core.errors import ProjectError
    from deg_core.tracking.project_tracks import (
        animal_tracks,
        import_animal_tracks,
        save_animal_tracks,
        tracks_path,
    )

    project = open_project(args.project)
    key = project.resolve_key(args.video)
    if args.format != "auto" and args.import_file is None:
        raise ConfigError("--format goes with --import FILE")
    if args.import_file is not None:
        tracks = import_animal_tracks(project, key, args.import_file, args.format)
        print(f"imported {args.import_file} -> {tracks_path(project, key)}")
    elif args.compute:
        from deg_core.tracking.multi import track_animals

        video = project.record(key).video
        if video is None:
            raise ProjectError(f"video {key} has no video file", project.data_dir / key)
        tracks = track_animals(video, project.n_animals(key), progress=True)
        save_animal_tracks(project, key, tracks)
        print(f"tracked {tracks.n_animals} animals -> {tracks_path(project, key)}")
    else:
        stored = animal_tracks(project, key)
        if stored is None:
            raise ProjectError(
                f"video {key} has no animal tracks yet (deg tracks {args.project} {key} "
                "--import FILE, or --compute)",
                tracks_path(project, key),
            )
        tracks = stored
        if args.swap is not None:
            a, b = (_animal_index(tracks, t) for t in args.swap)
            if a == b or not 0 <= args.from_frame < tracks.n_frames:
                raise ConfigError(
                    f"--swap needs two different animals and --from in 0..{tracks.n_frames - 1}"
                )
            tracks = tracks.swap(a, b, args.from_frame)
            save_animal_tracks(project, key, tracks)
            print(f"swapped {tracks.names[a]} and {tracks.names[b]} from frame {args.from_frame}")
    _print_tracks_summary(tracks)
    if args.png:
        _tracks_png(project, key, tracks, args.png)
    return 0


def _print_tracks_summary(tracks) -> None:
    found = tracks.found()
    print(
        f"{tracks.n_animals} animals, {tracks.n_frames} frames, source {tracks.source}, "
        f"{int(tracks.merged.sum())} merged frames"
    )
    for a, name in enumerate(tracks.names):
        n = int(found[:, a].sum())
        print(f"  {name}: known in {n}/{tracks.n_frames} frames ({tracks.n_frames - n} unknown)")
    try:
        from deg_core.tracking.multi import swap_candidates
    except ImportError:
        print("possible identity swaps: (deg_core.tracking.multi not available)")
        return
    frames = swap_candidates(tracks)
    shown = ", ".join(str(f) for f in frames[:50]) + (" ..." if len(frames) > 50 else "")
    print(f"possible identity swaps at {len(frames)} frames: {shown or 'none'}")


def _tracks_png(project: Project, key: str, tracks, out: str) -> None:
    from deg_core.errors import VideoError
    from deg_core.report.tracks_png import tracks_png

    background = None
    video = project.record(key).video
    if video is not None and video.exists():
        from deg_core.video import open_video

        try:
            with open_video(video) as reader:
                background = reader.get_batch([0])[0]
        except VideoError:
            background = None
    path = tracks_png(tracks, background).save(out)
    print(f"wrote {path}")
