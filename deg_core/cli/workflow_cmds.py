"""Whole-pipeline commands (deg_core.workflow): demo, retrain."""

from __future__ import annotations

import argparse

from deg_core.cli.common import Subparsers


def add_demo_parser(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="the whole pipeline on synthetic videos, with F1")
    p.add_argument("--out", default="deg_demo", help="folder for the demo project and PNG")
    p.add_argument("--videos", type=int, default=None, help="synthetic videos (default 10)")
    p.add_argument("--frames", type=int, default=None, help="frames per video (default 600)")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=cmd_demo)


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


def add_retrain_parser(sub: Subparsers) -> None:
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
