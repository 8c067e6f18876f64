"""Evaluation commands: evaluate (a model against the labels), agreement (between annotators)."""

from __future__ import annotations

import argparse
import json

from deg_core.cli.common import Subparsers, open_project


def add_evaluate_parser(sub: Subparsers) -> None:
    p = sub.add_parser("evaluate", help="F1, precision, recall, AUROC, bout F1 on a split")
    p.add_argument("project")
    p.add_argument("--split", choices=["train", "val", "test"], default="val")
    p.add_argument("--model", choices=["features", "sequence"], default="sequence")
    p.add_argument("--run", default="latest")
    p.add_argument("--json", default=None, metavar="OUT", help="also write every metric here")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from deg_core.evaluation.evaluate import overprediction_notes
    from deg_core.evaluation.scoring import evaluate_project

    result = evaluate_project(open_project(args.project), args.split, args.model, args.run)
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
    per_animal = result.get("per_animal") or {}
    if per_animal:  # videos of several animals: each animal's streams, then all pooled
        print(f"  {'animal':<20} {'macro F1':>8} {'frames':>8}")
        for name, part in [*per_animal.items(), ("pooled", result)]:
            print(f"  {name:<20}   {fmt(part['macro']['f1'])} {part.get('n_frames', 0):>8}")
    for note in overprediction_notes(result):
        print(f"  {note}")
    return 0


def add_agreement_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "agreement", help="agreement between annotators (and the model): kappa, bouts, confusion"
    )
    p.add_argument("project")
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="default: every video")
    p.add_argument("--labelers", nargs="+", default=None, metavar="NAME", help="default: all")
    p.add_argument("--model", action="store_true", help="also the latest sequence model")
    p.add_argument("--min-overlap", type=float, default=0.5, help="IoU at which two bouts match")
    p.add_argument(
        "--animal",
        type=int,
        default=None,
        metavar="I",
        help="videos of several animals: only animal I (default: each animal, labelled)",
    )
    p.add_argument("--json", default=None, metavar="OUT", help="also write every pair's rows here")
    p.set_defaults(func=cmd_agreement)


def cmd_agreement(args: argparse.Namespace) -> int:
    from deg_core.evaluation.agreement import format_agreement, project_agreement

    results = project_agreement(
        open_project(args.project),
        args.videos,
        args.labelers,
        model=args.model,
        min_overlap=args.min_overlap,
        animal=args.animal,
    )
    if args.json:
        from deg_core.fileio import atomic_write_text

        pairs = [r.to_json() for r in results]
        atomic_write_text(args.json, json.dumps({"pairs": pairs}, indent=2, allow_nan=False))
    print(format_agreement(results), end="")
    return 0
