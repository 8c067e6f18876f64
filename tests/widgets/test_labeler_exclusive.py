"""Labeler (Python side) in an exclusive project: one behaviour (or background) per frame."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from deg_core.labels.labels import Labels, write_labels
from deg_core.project.project import Project
from deg_widgets.label_session import ExclusiveClash, LabelSession
from deg_widgets.labeler import Labeler

T = 40
BEHAVIORS = ["groom", "rear", "dig"]


def make_project(tmp_path, make_video, exclusive: bool) -> Project:
    """A project (groom, rear, dig) with one unlabelled video ``a``."""
    name = "ex" if exclusive else "plain"
    project = Project.create(tmp_path, name, BEHAVIORS, exclusive=exclusive)
    project.add_video(make_video("a.mp4", n=T))
    return project


@pytest.fixture
def make(tmp_path, make_video):
    """make(exclusive) -> a Labeler on video ``a`` (autosave off, frames not served)."""
    made: list[Labeler] = []

    def _make(exclusive: bool) -> Labeler:
        w = Labeler(make_project(tmp_path, make_video, exclusive), "a", autosave=False)
        made.append(w)
        return w

    yield _make
    for w in made:
        if w.server is not None:
            w.server.close()  # not close(): that would save what a test left unsaved


def msg(w: Labeler, **content) -> None:
    w._handle_custom_msg(content, [])  # the ipywidgets entry point of front-end messages


def labels_of(w: Labeler) -> np.ndarray:
    return np.frombuffer(w.labels, np.int8).reshape(w.n_frames, len(w.behaviors))


def csv_rows(w: Labeler) -> list[list[int]]:
    """The saved CSV's value rows, background first (index column dropped)."""
    with w.project.record("a").labels_path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["", "background", *BEHAVIORS]
    return [[int(v) for v in row[1:]] for row in rows[1:]]


def test_trait_follows_the_project(make):
    assert make(True).exclusive is True
    assert make(False).exclusive is False


def test_labelling_b_over_a_leaves_only_b(make):
    w = make(True)
    msg(w, type="set", behavior=0, start=0, stop=10, value=1)
    msg(w, type="set", behavior=1, start=5, stop=15, value=1)
    a = labels_of(w)
    assert a[:5].tolist() == [[1, 0, 0]] * 5
    assert a[5:15].tolist() == [[0, 1, 0]] * 10  # groom gone where rear was labelled
    assert (a[15:] == -1).all()
    msg(w, type="toggle", behavior=2, frame=7)  # a toggle on: the same rule
    assert labels_of(w)[7].tolist() == [0, 0, 1]
    msg(w, type="toggle", behavior=2, frame=7)  # a toggle off touches its own column only
    assert labels_of(w)[7].tolist() == [0, 0, 0]
    msg(w, type="set", behavior=0, start=12, stop=14, value=0)  # absent: others untouched
    assert labels_of(w)[12:14].tolist() == [[0, 1, 0]] * 2
    assert w.error == ""


def test_one_undo_step_restores_both(make):
    w = make(True)
    msg(w, type="set", behavior=0, start=0, stop=10, value=1)
    msg(w, type="set", behavior=1, start=5, stop=15, value=1)
    msg(w, type="undo")
    a = labels_of(w)
    assert a[:10].tolist() == [[1, 0, 0]] * 10 and (a[10:] == -1).all()


def test_non_exclusive_keeps_both(make):
    w = make(False)
    msg(w, type="set", behavior=0, start=0, stop=10, value=1)
    msg(w, type="set", behavior=1, start=5, stop=15, value=1)
    msg(w, type="toggle", behavior=2, frame=7)
    a = labels_of(w)
    assert a[5:10, :2].tolist() == [[1, 1]] * 5
    assert a[7].tolist() == [1, 1, 1]
    assert a[10:15].tolist() == [[-1, 1, -1]] * 5  # no 0 written where nothing was said


def test_every_behaviour_present_is_refused(make):
    w = make(True)
    msg(w, type="set", behavior=-1, start=0, stop=3, value=1)
    assert "exclusive" in w.error and (labels_of(w) == -1).all()
    msg(w, type="set", behavior=-1, start=0, stop=3, value=0)  # background: still fine
    assert w.error == "" and (labels_of(w)[:3] == 0).all()


def test_saved_csv_has_one_class_per_labelled_frame(make):
    w = make(True)
    msg(w, type="set", behavior=0, start=0, stop=10, value=1)
    msg(w, type="set", behavior=1, start=5, stop=15, value=1)
    msg(w, type="set", behavior=2, start=8, stop=9, value=1)
    msg(w, type="set", behavior=-1, start=20, stop=25, value=0)  # background
    msg(w, type="save")
    assert w.error == "" and not w.dirty
    rows = csv_rows(w)
    labelled = [r for r in rows if any(v != -1 for v in r)]
    assert len(labelled) == 20
    assert all(r.count(1) == 1 for r in labelled)
    assert rows[8] == [0, 0, 0, 1] and rows[20] == [1, 0, 0, 0]
    msg(w, type="finalize")  # unlabelled -> absent: background, one class again
    assert all(r.count(1) == 1 for r in csv_rows(w))


def test_non_exclusive_saves_both(make):
    w = make(False)
    msg(w, type="set", behavior=-1, start=0, stop=T, value=0)
    msg(w, type="set", behavior=0, start=0, stop=10, value=1)
    msg(w, type="set", behavior=1, start=5, stop=15, value=1)
    msg(w, type="save")
    assert csv_rows(w)[5] == [0, 1, 1, 0]


def test_import_predictions_keeps_frames_it_would_overlap(make):
    w = make(True)
    msg(w, type="set", behavior=0, start=0, stop=2, value=1)
    pred = np.zeros((T, 3), np.int8)
    pred[:, 1] = 1
    pred[30:, 2] = 1  # two behaviours predicted: such frames are not imported
    n = w._session.import_predictions(pred, overwrite=False)
    a = w._session.array
    assert a[:2].tolist() == [[1, 0, 0]] * 2  # labelled: kept (rear would overlap groom)
    assert a[2:30].tolist() == [[0, 1, 0]] * 28
    assert (a[30:] == -1).all()
    assert n == 28 * 3


def test_clashing_labels_from_before_are_never_saved(tmp_path, make_video):
    project = make_project(tmp_path, make_video, exclusive=True)
    old = np.zeros((T, 3), np.int8)
    old[3, :2] = 1  # labelled before the project became exclusive
    write_labels(project.record("a").labels_path, Labels(BEHAVIORS, old))
    w = Labeler(project, "a", autosave=False)
    try:
        assert "1 frame(s) (3)" in w.status
        msg(w, type="set", behavior=2, start=10, stop=12, value=1)
        msg(w, type="save")
        assert "ExclusiveClash" in w.error and "(3)" in w.error and w.dirty
        msg(w, type="save", force=True)  # force overrides a conflict, not this
        assert "ExclusiveClash" in w.error
        msg(w, type="set", behavior=1, start=3, stop=4, value=1)  # label one behaviour there
        msg(w, type="save")
        assert w.error == "" and not w.dirty
        assert all(r.count(1) == 1 for r in csv_rows(w))
    finally:
        w.server.close()


def test_session_without_widget(tmp_path, make_video):
    """The rule lives in LabelSession, whatever drives it."""
    project = make_project(tmp_path, make_video, exclusive=True)
    s = LabelSession(project, "a")
    assert s.exclusive
    s.set_range(0, 0, 5, 1)
    s.array[2, 1] = 1  # an edit around the methods: save still refuses it
    with pytest.raises(ExclusiveClash):
        s.save()
    assert not project.record("a").labels_path.exists()


def test_switching_away_from_a_clash_keeps_the_edits(tmp_path, make_video):
    project = make_project(tmp_path, make_video, exclusive=True)
    project.add_video(make_video("b.mp4", n=T, seed=1))
    old = np.zeros((T, 3), np.int8)
    old[3, :2] = 1
    write_labels(project.record("a").labels_path, Labels(BEHAVIORS, old))
    w = Labeler(project, "a", autosave=False)
    try:
        msg(w, type="set", behavior=2, start=10, stop=12, value=1)
        w.video = "b"  # the switch happens; the edits stay in a's journal
        assert w.video == "b" and w.error.startswith("ExclusiveClash: ")
        assert "a's edits are not saved" in w.error and "(3)" in w.error
        w.video = "a"
        assert w._session.array[10:12].tolist() == [[0, 0, 1]] * 2  # replayed
    finally:
        w.server.close()
