"""Commands that exchange data with other tools: import-labels (DEG CSV, bout tables,
BORIS), import-predictions, export (BORIS, NWB), weights (ImageNet, DeepEthogram's)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from deg_core.cli.common import Subparsers, open_project
from deg_core.errors import DegError

if TYPE_CHECKING:
    from deg_core.labels.labels import Labels
    from deg_core.project.project import Project


def add_import_labels_parser(sub: Subparsers) -> None:
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
        help="deg: DEG label CSV or bout table; boris: BORIS tabular events, aggregated "
        "events or behaviors binary table (CSV/TSV, UTF-8 or UTF-16); auto: BORIS files are "
        "recognised by their header",
    )
    p.add_argument(
        "--animal",
        type=int,
        default=None,
        metavar="I",
        help="a video of several animals: import as animal I's labels (0..N-1; "
        "DATA/<key>/animals/animal<I>/). Without it, a bout table with an animal column "
        "(animal, subject or individual: I or animal<I>) fills every animal it names, and a "
        "BORIS file's subjects become animals 0..N-1 in order of first appearance when they "
        "are as many as the animals",
    )
    p.add_argument(
        "--subject",
        default=None,
        help="BORIS: the subject whose events to import (with --animal: into that animal)",
    )
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="BORIS_NAME=DEG_NAME",
        help="BORIS: rename a behaviour to the project's name (BORIS_NAME= drops it)",
    )
    p.add_argument(
        "--media",
        default=None,
        metavar="NAME",
        help="BORIS aggregated events: the media file whose events to import (file name, stem "
        "or path; default: the one named like the video)",
    )
    p.set_defaults(func=cmd_import_labels)


def _import_boris(
    project: Project, args: argparse.Namespace
) -> dict[int | None, tuple[str, Labels]] | None:
    """The labels of a BORIS export (``--format boris``, or auto-detected) by animal (None:
    a one-animal video) with their subjects, else None."""
    from deg_core.interop import boris

    kind = args.format if args.format != "auto" else ("boris" if boris.sniff(args.csv) else "deg")
    if kind != "boris":
        if args.format == "deg" and boris.sniff(args.csv):
            raise DegError("this looks like a BORIS export: use --format boris", args.csv)
        if args.subject is not None or args.map or args.media is not None:
            raise DegError(
                "--subject, --map and --media apply to BORIS files only (--format boris)"
            )
        return None
    options = dict(
        subject=args.subject,
        mapping=boris.parse_mapping(args.map),
        media=args.media,
        unlabeled_outside_bouts=args.unlabeled_outside_bouts,
    )
    key = project.resolve_key(args.video)
    if args.animal is not None or project.n_animals(key) == 1:
        result = boris.import_boris(
            project, key, args.csv, labeler=args.labeler, animal=args.animal, **options
        )
        read = {args.animal: (args.subject or "", result)}
    else:  # subjects onto animals 0..N-1
        read = dict(boris.import_boris_animals(project, key, args.csv, args.labeler, **options))
    for _, result in read.values():
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
    return {i: (subject, result.labels) for i, (subject, result) in read.items()}


def cmd_import_labels(args: argparse.Namespace) -> int:
    project = open_project(args.project)
    key = project.resolve_key(args.video)
    if args.animal is not None:  # a bad index fails before anything is read
        project.check_animal(key, args.animal)
    imported = _import_boris(project, args)  # None: a DEG label CSV or a bout table
    if imported is None:
        common = dict(labeler=args.labeler, unlabeled_outside_bouts=args.unlabeled_outside_bouts)
        if args.animal is None and project.n_animals(key) > 1:
            per = project.import_labels_per_animal(key, args.csv, **common)
            imported = {i: ("", labels) for i, labels in per.items()}
        else:
            labels = project.import_labels(key, args.csv, animal=args.animal, **common)
            imported = {args.animal: ("", labels)}
    whose = f", labeler {args.labeler}" if args.labeler else ""
    for animal, (subject, labels) in imported.items():
        frac = labels.labeled_fraction()
        pos = (labels.array == 1).sum(axis=0)
        into = key if animal is None else f"{key} animal{animal}"
        of = f", subject {subject}" if subject and animal is not None else ""
        print(f"imported {args.csv} -> {into} ({labels.n_frames} frames{whose}{of})")
        for b, f, p in zip(labels.behaviors, frac, pos, strict=True):
            print(f"  {b}: {p} positive frames, {f:.0%} labeled")
    return 0


def add_export_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "export",
        help="labels/predictions for other tools: BORIS event tables, NWB files",
        description="boris: a BORIS tabular events file (CSV; aggregated events with --layout "
        "aggregated) per video, of the labels or, with --predictions, of the sequence run's "
        "ethogram, with the video's subject_id (project.subject) as the subject (a video of "
        "several animals: every animal a subject, named as its tracks name it, else "
        "animal<i>). nwb: an NWB file per video with the bouts as time intervals, the "
        "probabilities and the video (several animals: per-animal tables, "
        "behavior_labels_animal<i>..., or with --per-animal a file per animal with its own "
        "Subject; needs pynwb: uv sync --extra nwb).",
    )
    p.add_argument("format", choices=["boris", "nwb"])
    p.add_argument("project")
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="default: every video")
    p.add_argument("--out", default=None, metavar="DIR", help="default: PROJECT/exports")
    p.add_argument("--predictions", action="store_true", help="boris: the model's ethogram")
    p.add_argument("--run", default="latest", help="the sequence run whose predictions to use")
    p.add_argument(
        "--layout",
        choices=["tabular", "aggregated"],
        default="tabular",
        help="boris: BORIS's tabular events (START/STOP rows) or aggregated events (a row "
        "per bout)",
    )
    for field, meaning in _SUBJECT_OPTIONS.items():
        p.add_argument(_option(field), default=None, help=f"nwb: {meaning} (over project.subject)")
    p.add_argument(
        "--per-animal",
        action="store_true",
        help="nwb: a video of several animals gives one file per animal, <key>_animal<i>.nwb, "
        "whose Subject is that animal (project.subject.animals / videos.<key>.animals)",
    )
    p.set_defaults(func=cmd_export)


# deg export nwb's options for NWB's Subject: --subject-id, --species, --sex, --age
_SUBJECT_OPTIONS = {
    "subject_id": "the animal's id, in every exported file",
    "species": "Latin binomial, e.g. 'Mus musculus'",
    "sex": "M, F, U (unknown) or O (other)",
    "age": "ISO 8601 duration at recording, e.g. P90D (90 days), P12W",
}


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


def _nwb_subject(args: argparse.Namespace) -> dict[str, str]:
    """The subject options given, {field: value}; a one-line error names a bad one."""
    from deg_core.config import ConfigError, subject_problem

    given = {f: getattr(args, f) for f in _SUBJECT_OPTIONS if getattr(args, f) is not None}
    if (given or args.per_animal) and args.format != "nwb":
        options = ", ".join([*map(_option, _SUBJECT_OPTIONS), "--per-animal"])
        raise ConfigError(f"{options} apply to nwb only (deg export nwb)")
    problem = subject_problem(given, _option)
    if problem:
        raise ConfigError(problem)
    return given


def cmd_export(args: argparse.Namespace) -> int:
    subject = _nwb_subject(args)
    project = open_project(args.project)
    if args.format == "boris":
        from deg_core.interop.boris import export_boris

        paths, skipped = export_boris(
            project,
            args.videos,
            args.out,
            predictions=args.predictions,
            run=args.run,
            layout=args.layout,
        )
        for path in paths:
            print(f"wrote {path}")
        for why in skipped:
            print(f"skipped {why}", file=sys.stderr)
        return 0
    from deg_core.interop.nwb import export_nwb

    written = export_nwb(
        project, args.videos, args.out, run=args.run, subject=subject, per_animal=args.per_animal
    )
    for path, notes in written.items():
        print(f"wrote {path}" + (f" ({'; '.join(notes)})" if notes else ""))
    return 0


def add_import_predictions_parser(sub: Subparsers) -> None:
    p = sub.add_parser(
        "import-predictions", help="copy predictions into the labels (unlabelled frames only)"
    )
    p.add_argument("project")
    p.add_argument("video")
    p.add_argument("--overwrite", action="store_true", help="also replace existing labels")
    p.add_argument(
        "--animal",
        type=int,
        default=None,
        metavar="I",
        help="a video of several animals: animal I's predictions into its labels (0..N-1; "
        "required there)",
    )
    p.set_defaults(func=cmd_import_predictions)


def cmd_import_predictions(args: argparse.Namespace) -> int:
    from deg_core.infer.sequence import import_predictions

    project = open_project(args.project)
    key = project.resolve_key(args.video)
    animal = project.check_animal(key, args.animal)  # one line: which animals there are
    if project.n_animals(key) == 1:
        animal = None
    before = project.labels(key, animal=animal).array
    after = import_predictions(project, key, overwrite=args.overwrite, animal=animal)
    changed = int((before != after.array).any(axis=1).sum())
    into = key if animal is None else f"{key} animal{animal}"
    print(f"{into}: predictions copied onto {changed} frames")
    return 0


def add_weights_parser(sub: Subparsers) -> None:
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
        open_project(args.project).models_dir / "pretrained"
        if args.project is not None
        else download.user_pretrained_dir()
    )
    added, source = download.download_deepethogram(target, archive=args.archive, progress=progress)
    print(f"DeepEthogram's pretrained models from {source} -> {target}")
    print(f"added: {', '.join(added)}" if added else "all were already there (left as they were)")
    return 0
