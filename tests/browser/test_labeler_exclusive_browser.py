"""The Labeler of an exclusive project in a real JupyterLab: one behaviour per frame.

Two behaviours are labelled on the same frames through the page (number keys, then label
row drags); only the last one must remain, in the front end at once (its optimistic copy,
before Python answers), in Python, and in the saved CSV.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.browser.test_labeler_browser import (
    drag_row,
    fnv1a,
    go_to,
    press,
    root_data,
    wait_data,
)

pytestmark = pytest.mark.browser

N_FRAMES = 60
BEHAVIORS = ["walk", "groom", "rear"]


def make_project(parent: Path, make_video) -> Path:
    """An exclusive project with one unlabelled video."""
    from deg_core.project.project import Project

    project = Project.create(parent, "ex", BEHAVIORS, exclusive=True)
    project.add_video(make_video("a.mp4", n=N_FRAMES, h=64, w=64))
    return project.root


def test_last_behaviour_labelled_on_a_frame_wins(
    run_notebook, kernel_exec, page_errors, tmp_path, make_video
):
    from deg_core.project.project import Project

    root = make_project(tmp_path, make_video)
    page = run_notebook(
        [
            "from deg_widgets.labeler import Labeler\n"
            f"w = Labeler({str(root)!r}, autosave=False)\n"
            "w",
        ]
    )
    lab = page.locator(".deg-lab")
    lab.wait_for(timeout=30_000)
    wait_data(page, "painted-frame", "0", timeout=30)
    assert root_data(page, "exclusive") == "true"
    lab.focus()

    expected = np.full((N_FRAMES, len(BEHAVIORS)), -1, np.int8)
    # "1" at frame 10 marks walk (and records; "1" again stops), then "2" marks groom there
    go_to(page, 10)
    press(page, "1", "1")
    expected[10] = [1, 0, 0]
    wait_data(page, "labels-hash", fnv1a(expected))
    press(page, "2")
    expected[10] = [0, 1, 0]
    # read at once: the front end's own copy already holds only groom (Python's echo of
    # the edit cannot have arrived before the key handler returned)
    assert root_data(page, "labels-hash") == fnv1a(expected)
    press(page, "2")  # stop recording
    wait_data(page, "labels-hash", fnv1a(expected))

    # ranges: a drag on walk's row over 20..30, then one on rear's row over 25..35
    drag_row(page, 0, 20, 30)
    expected[20:31] = [1, 0, 0]
    drag_row(page, 2, 25, 35)
    expected[25:36] = [0, 0, 1]
    wait_data(page, "labels-hash", fnv1a(expected))

    press(page, "Control+s")
    wait_data(page, "dirty", "false")
    assert kernel_exec(page, "print(w.error == '', w.exclusive)").split() == ["True", "True"]
    project = Project.open(root)
    path = project.record(project.video_keys()[0]).labels_path
    with path.open(newline="") as f:
        rows = [[int(v) for v in r[1:]] for r in list(csv.reader(f))[1:]]
    on_disk = np.array(rows, np.int8)  # background first
    np.testing.assert_array_equal(on_disk[:, 1:], expected)
    labelled = (expected != -1).any(axis=1)
    assert ((on_disk[labelled] == 1).sum(axis=1) == 1).all()  # background included
    assert page.locator(".deg-lab-error").inner_text() == ""
    assert page_errors.unexpected() == []  # also checked at teardown, for every test
