"""Helpers that more than one command module uses."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

from deg_core.presets import AUTO, PRESETS

if TYPE_CHECKING:
    from deg_core.project.project import Project

# what add_subparsers() returns; quoted: argparse's class is generic to type checkers only
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def open_project(path: str) -> Project:
    # imported here, not at the top: `deg --help` should not load the project code
    from deg_core.project.project import Project

    return Project.open(path)


def add_stage_options(
    p: argparse.ArgumentParser,
    set_help: str = "override a setting, e.g. feature_extractor.num_epochs=5 (see deg config)",
) -> None:
    """--preset and --set, shared by train, infer and config."""
    p.add_argument(
        "--preset",
        choices=[*PRESETS, AUTO],
        default=None,
        help="fast/medium/slow: DeepEthogram's presets; lite: deg's CPU preset (pairwise "
        "flow, 128x128 animal crop, short training; see README); cpu: fast's networks on a "
        "64x64 crop; auto: lite on a CPU, the project's settings on a GPU",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
