"""``deg init --exclusive`` and the status line suggesting ``project.exclusive``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from deg_core.cli import main
from deg_core.fileio import load_yaml
from deg_core.labels.labels import Labels, write_labels
from deg_core.project.project import Project
from deg_core.project.status import exclusive_suggestion


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def init(capsys, tmp_path, *extra) -> Project:
    code, _, err = run(
        capsys, "init", tmp_path, "--name", "exp", "--behaviors", "groom,rear", *extra
    )
    assert code == 0, err
    return Project.open(tmp_path / "exp_deepethogram")


def test_init_exclusive(capsys, tmp_path):
    code, out, _ = run(
        capsys, "init", tmp_path, "--name", "exp", "--behaviors", "groom,rear", "--exclusive"
    )
    assert code == 0 and "exclusive: one behaviour (or background) per frame" in out
    project = Project.open(tmp_path / "exp_deepethogram")
    assert project.exclusive
    assert load_yaml(project.config_path)["project"]["exclusive"] is True


def test_init_default_is_not_exclusive(capsys, tmp_path):
    project = init(capsys, tmp_path)
    assert not project.exclusive
    assert "exclusive" not in load_yaml(project.config_path)["project"]  # DEG's file


def test_init_help_says_what_exclusive_means(capsys):
    with pytest.raises(SystemExit):
        main(["init", "--help"])
    assert "one behaviour (or background) per frame" in capsys.readouterr().out


def _with_labels(project: Project, make_video, *arrays: np.ndarray) -> Project:
    """Add one 10-frame video per array, with that array as its labels (None: no file)."""
    for i, a in enumerate(arrays):
        key = project.add_videos([make_video(f"m{i}.mp4", n=10, seed=i)])[0]
        if a is not None:
            write_labels(project.record(key).labels_path, Labels(project.behaviors, a))
    return project


def _labels(*rows: tuple[int, int]) -> np.ndarray:
    """10 frames: ``rows`` first, the rest unlabelled."""
    a = np.full((10, 2), -1, np.int8)
    if rows:
        a[: len(rows)] = rows
    return a


def test_status_suggests_exclusive_when_labels_fit(capsys, tmp_path, make_video):
    # one behaviour or background per frame; -1 beside a 1 is ignored; a video w/o labels
    fits = _labels((1, 0), (0, 1), (0, 0), (1, -1), (-1, 0))
    project = _with_labels(init(capsys, tmp_path), make_video, fits, None)
    line = exclusive_suggestion(project)
    assert line is not None and "\n" not in line
    assert "at most one behaviour" in line and "deg init --exclusive" in line
    assert str(project.config_path) in line  # where to set it: no command writes settings
    code, out, _ = run(capsys, "status", project.root)
    assert code == 0 and f"suggestion: {line}" in out.splitlines()
    code, out, _ = run(capsys, "status", project.root, "--json")
    assert code == 0 and json.loads(out)["suggestion"] == line


@pytest.mark.parametrize(
    "case", ["overlap", "already exclusive", "no labels", "only unlabelled", "unreadable"]
)
def test_status_does_not_suggest(capsys, tmp_path, make_video, case):
    project = init(capsys, tmp_path, *(["--exclusive"] if case == "already exclusive" else []))
    fits = _labels((1, 0), (0, 1))
    arrays = {
        "overlap": [fits, _labels((0, 0), (1, 1))],  # one frame of one video holds both
        "already exclusive": [fits],
        "no labels": [None],
        "only unlabelled": [_labels()],
        "unreadable": [fits, fits],
    }[case]
    _with_labels(project, make_video, *arrays)
    if case == "unreadable":
        project.record(project.video_keys()[1]).labels_path.write_text("not,a\nlabel,file\n")
    assert exclusive_suggestion(project) is None
    code, out, _ = run(capsys, "status", project.root)
    assert code == 0 and "suggestion:" not in out


def test_status_module_does_not_load_torch():
    """The suggestion stays cheap: label files only (training calls it too)."""
    code = (
        "import sys; from deg_core.project.status import exclusive_suggestion; "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
