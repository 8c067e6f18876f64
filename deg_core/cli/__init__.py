"""The ``deg`` command line. Each command is a thin wrapper over the Python API.

Bad input prints one line (``deg: error: <file>: <problem>``) to stderr and exits
with status 1, having changed nothing on disk.

Layout: each command is a ``cmd_<name>`` function next to the ``add_<name>_parser`` that
registers its arguments, in the module of the part of deg it wraps:

- ``project_cmds``: init, add-videos, remove-video, split, behaviors, animals, status, config
- ``pipeline_cmds``: train, infer, show-flow, tracks
- ``evaluation_cmds``: evaluate, agreement
- ``interop_cmds``: import-labels (DEG CSV, bout tables, BORIS), import-predictions,
  export, weights
- ``workflow_cmds``: demo, retrain
- ``common``: what several of them share (opening a project, --preset/--set)

Only this module imports the command modules, never the reverse. The commands import
the rest of deg inside their functions, so that ``deg --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from deg_core.cli import (
    evaluation_cmds,
    interop_cmds,
    pipeline_cmds,
    project_cmds,
    workflow_cmds,
)
from deg_core.errors import DegError
from deg_core.fileio import FULL_DISK

# in the order `deg --help` lists the commands
_PARSERS = (
    project_cmds.add_init_parser,
    project_cmds.add_add_videos_parser,
    project_cmds.add_remove_video_parser,
    project_cmds.add_split_parser,
    interop_cmds.add_import_labels_parser,
    project_cmds.add_behaviors_parser,
    project_cmds.add_animals_parser,
    project_cmds.add_status_parser,
    pipeline_cmds.add_train_parser,
    pipeline_cmds.add_infer_parser,
    evaluation_cmds.add_evaluate_parser,
    evaluation_cmds.add_agreement_parser,
    interop_cmds.add_export_parser,
    interop_cmds.add_import_predictions_parser,
    pipeline_cmds.add_show_flow_parser,
    pipeline_cmds.add_tracks_parser,
    project_cmds.add_config_parser,
    workflow_cmds.add_demo_parser,
    workflow_cmds.add_retrain_parser,
    interop_cmds.add_weights_parser,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deg",
        description="Behaviour classification from raw video (DeepEthogram, in notebooks).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in _PARSERS:
        add_parser(sub)  # each sets func=its cmd_* function
    return parser


def disk_full_message(e: OSError) -> str:
    """One line for a write that ran out of space (or quota): the file and the free space
    left where it was going (the saves are atomic, so nothing half-written stays)."""
    target = Path(e.filename) if e.filename else None
    where = f"cannot write {target}" if target else "cannot write"
    free = ""
    if target is not None:
        folder = next((p for p in (target, *target.parents) if p.exists()), None)
        if folder is not None:
            free = f" ({shutil.disk_usage(folder).free / 1e6:.0f} MB free there)"
    return f"{where}: no space left on the device{free}; free some space and run it again"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # deg's modules report through logging (e.g. "no ImageNet weights, training from scratch")
    logging.basicConfig(level=logging.INFO, format="deg: %(message)s")
    logging.captureWarnings(True)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in Python's exit flush
        return code
    except DegError as e:
        print(f"deg: error: {e}", file=sys.stderr)
        return 1
    except PermissionError as e:  # a read-only project or file a check did not foresee
        print(f"deg: error: cannot write {e.filename}: permission denied", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `deg status | head`: the reader has what it wanted
        # further writes to the closed pipe (Python's own flush at exit) must not raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a pipe writer stopped by SIGPIPE
    except FileExistsError as e:
        print(f"deg: error: {e.filename} already exists: choose another path", file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno not in FULL_DISK:
            raise
        print(f"deg: error: {disk_full_message(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("deg: interrupted", file=sys.stderr)
        return 130
