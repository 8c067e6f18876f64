"""LabelSession: editing, undo groups, journal, saving, conflicts, and the review seeks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deg_core.errors import LabelError
from deg_core.labels.labels import Labels, read_labels
from deg_widgets.label_journal import apply_runs, diff_runs
from deg_widgets.label_review import next_bout, next_disagreement, next_uncertain
from deg_widgets.label_session import LabelConflict, LabelSession

T = 60


@pytest.fixture
def vp(project, make_video):
    """The conftest project (groom, rear) with videos a (labelled) and b (no labels)."""
    for name, seed in (("a.mp4", 0), ("b.mp4", 1)):
        project.add_video(make_video(name, n=T, seed=seed))
    arr = np.full((T, 2), -1, np.int8)
    arr[10:20, 0] = 1
    arr[0:10, 0] = 0
    arr[30:35, 1] = 1
    project.save_labels("a", Labels(["groom", "rear"], arr))
    return project


def on_disk(project, key="a"):
    return read_labels(project.record(key).labels_path, project.behaviors, T).array


def journal_lines(session):
    path = session.journal.path
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


# ------------------------------------------------------------------ editing, undo


def test_opens_with_the_files_labels_and_unlabelled_when_there_is_none(vp):
    s = LabelSession(vp, "a")
    assert np.array_equal(s.array, on_disk(vp)) and not s.dirty and not s.can_undo
    b = LabelSession(vp, "b")
    assert (b.array == -1).all() and b.array.shape == (T, 2)
    assert not vp.record("b").labels_path.exists()  # opening never writes


def test_set_range_toggle_and_all_behaviours(vp):
    s = LabelSession(vp, "b")
    s.set_range(1, 5, 8, 1)
    assert s.array[5:8, 1].tolist() == [1, 1, 1] and s.array[8, 1] == -1  # stop exclusive
    assert (s.array[:, 0] == -1).all()
    s.set_range(-1, 6, 7, 0)
    assert s.array[6].tolist() == [0, 0]
    assert [s.toggle(0, 6), s.toggle(0, 6), s.toggle(0, 40)] == [1, 0, 1]  # 0->1->0, -1->1
    assert s.dirty


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((2, 0, 5, 1), "behaviour index 2 out of range"),
        ((-2, 0, 5, 1), "behaviour index -2 out of range"),
        ((0, 5, 2, 1), r"frame range \[5, 2\)"),
        ((0, 0, T + 1, 1), "not within"),
        ((0, -1, 3, 1), "not within"),
        ((0, 0, 5, 2), "value must be 1, 0 or -1"),
        ((0, 0.5, 5, 1), "start must be an int"),
    ],
)
def test_bad_edits_raise_and_change_nothing(vp, args, match):
    s = LabelSession(vp, "a")
    before = s.array.copy()
    with pytest.raises(LabelError, match=match):
        s.set_range(*args)
    assert np.array_equal(s.array, before) and not s.can_undo and not journal_lines(s)


def test_undo_redo_and_coalesced_groups(vp):
    s = LabelSession(vp, "a")
    orig = s.array.copy()
    s.set_range(1, 40, 42, 1, group="rec1")  # a recording grows ...
    s.set_range(1, 40, 46, 1, group="rec1")
    s.set_range(0, 50, 52, 0, group="rec1")  # ... and touches rows it did not cover yet
    s.set_range(0, 25, 27, 1, group="rec1")
    grown = s.array.copy()
    s.set_range(0, 0, 3, -1, group="rec2")  # another group: its own step
    s.toggle(1, 0)
    assert len(s._undo) == 3
    s.undo()
    s.undo()
    assert np.array_equal(s.array, grown)
    s.undo()  # the whole recording in one step
    assert np.array_equal(s.array, orig) and not s.can_undo and not s.dirty
    assert s.undo() is None
    s.redo()
    assert np.array_equal(s.array, grown)
    s.set_range(1, 0, 1, 0)  # a new edit clears redo
    assert not s.can_redo


def test_same_group_after_undo_is_a_new_step(vp):
    s = LabelSession(vp, "b")
    s.set_range(0, 0, 2, 1, group="g")
    s.undo()
    s.redo()
    s.set_range(0, 2, 4, 1, group="g")  # redo closed the group
    s.undo()
    assert s.array[:4, 0].tolist() == [1, 1, -1, -1]


def test_unchanged_edit_is_no_step(vp):
    s = LabelSession(vp, "a")
    s.set_range(0, 10, 20, 1)  # already 1
    assert not s.can_undo and not journal_lines(s)


def test_finalize_and_import_predictions(vp):
    s = LabelSession(vp, "a")
    orig = s.array.copy()
    n = s.finalize()
    assert n == int((orig == -1).sum()) and not (s.array == -1).any()
    assert np.array_equal(s.array[orig != -1], orig[orig != -1])
    s.undo()
    assert np.array_equal(s.array, orig)
    pred = np.zeros((T, 2), np.int8)
    pred[::2] = 1
    s.import_predictions(pred)
    assert np.array_equal(s.array, np.where(orig == -1, pred, orig))
    s.undo()
    s.import_predictions(pred, overwrite=True)
    assert np.array_equal(s.array, pred)
    s.undo()
    assert np.array_equal(s.array, orig)
    with pytest.raises(LabelError, match="shape"):
        s.import_predictions(pred[:10])


# ------------------------------------------------------------------ saving, journal


def test_save_writes_the_csv_and_clears_the_journal(vp):
    s = LabelSession(vp, "a")
    s.set_range(1, 50, 55, 0)
    assert len(journal_lines(s)) == 2  # header + the edit, before any save
    assert s.save() is True
    assert np.array_equal(on_disk(vp), s.array) and not s.dirty
    assert not s.journal.path.exists()
    assert s.save() is False  # nothing new


def test_failed_write_keeps_the_file_and_the_journal(vp, monkeypatch):
    s = LabelSession(vp, "a")
    before = vp.record("a").labels_path.read_bytes()
    s.toggle(0, 40)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("deg_core.fileio.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        s.save()
    monkeypatch.undo()
    assert vp.record("a").labels_path.read_bytes() == before
    assert s.dirty and len(journal_lines(s)) == 2
    assert not list(vp.record("a").folder.glob("*.tmp"))


def test_journal_replays_after_a_crash(vp):
    s = LabelSession(vp, "a")
    s.set_range(1, 40, 45, 1)
    s.toggle(0, 3)
    s.undo()  # undo is journaled too: the replay gives exactly the state at the crash
    s.set_range(-1, 58, 60, 0, group="x")
    expected = s.array.copy()
    del s  # "crash": never saved
    t = LabelSession(vp, "a")
    assert np.array_equal(t.array, expected) and t.dirty
    assert "restored" in " ".join(t.notes)
    assert {e["s"] for e in journal_lines(t)} == {t.session}  # adopted
    t.undo()  # one step back to the file
    assert np.array_equal(t.array, on_disk(vp))
    t.redo()
    t.save()
    assert np.array_equal(on_disk(vp), expected)
    assert LabelSession(vp, "a").notes == []


def test_journal_line_cut_short_by_a_crash_is_skipped(vp):
    s = LabelSession(vp, "a")
    s.toggle(1, 0)
    with open(s.journal.path, "a") as f:
        f.write('{"s": "zz", "runs": [[0, 1')
    t = LabelSession(vp, "a")
    assert t.array[0, 1] == 1 and t.array[1, 0] == 0


def test_journal_for_other_behaviours_is_kept_and_reported(vp):
    s = LabelSession(vp, "a")
    path = s.journal.path
    text = (
        json.dumps({"s": "old", "behaviors": ["x"], "n_frames": T, "pid": 1})
        + "\n"
        + json.dumps({"s": "old", "runs": [[0, 0, 5, 1]]})
        + "\n"
    )
    path.write_text(text)
    t = LabelSession(vp, "a")
    assert np.array_equal(t.array, on_disk(vp)) and not t.dirty
    (kept,) = path.parent.glob(f"{path.name}.not-replayed-*")
    assert "'x'" in t.notes[0] and str(kept) in t.notes[0] and t.warnings == t.notes
    assert kept.read_text() == text and not path.exists()  # nothing left to replay


def test_runs_roundtrip():
    rng = np.random.default_rng(0)
    a = rng.integers(-1, 2, (200, 3)).astype(np.int8)
    b = a.copy()
    b[rng.random(b.shape) < 0.2] = 1
    b[50:90, 1] = -1
    runs = diff_runs(a, b)
    c = a.copy()
    apply_runs(c, runs)
    assert np.array_equal(c, b)
    assert diff_runs(a, a) == []
    assert diff_runs(a[:2], b[:2] * 0, offset=7)[0][1] >= 7
    with pytest.raises(LabelError, match="does not fit"):
        apply_runs(c, [[3, 0, 1, 1]])


# ------------------------------------------------------------------ conflicts


def test_two_sessions_conflict_reload_merges_and_force_overwrites(vp):
    a, b = LabelSession(vp, "a"), LabelSession(vp, "a")
    a.set_range(1, 40, 45, 1)
    b.set_range(0, 50, 55, 1)
    assert a.save()
    a_file = vp.record("a").labels_path.read_bytes()
    with pytest.raises(LabelConflict, match="changed on disk since this Labeler loaded it"):
        b.save()
    assert vp.record("a").labels_path.read_bytes() == a_file  # refused: nothing written
    b.reload()  # A's saved edits + B's own unsaved ones
    assert b.array[40:45, 1].tolist() == [1] * 5 and b.array[50:55, 0].tolist() == [1] * 5
    assert b.save()
    assert on_disk(vp)[40:45, 1].tolist() == [1] * 5
    # force: a third session overwrites whatever is on disk
    c = LabelSession(vp, "a")
    b.toggle(0, 0)
    b.save()
    c.set_range(-1, 0, T, 0)
    with pytest.raises(LabelConflict):
        c.save()
    assert c.save(force=True)
    assert (on_disk(vp) == 0).all()


def test_touched_but_unchanged_file_is_no_conflict(vp):
    import os

    s = LabelSession(vp, "a")
    s.toggle(0, 40)
    path = vp.record("a").labels_path
    os.utime(path, ns=(1, 1))
    assert s.save()


# ------------------------------------------------------------------ seeks


def test_next_bout_exact():
    lab = np.full((20, 2), -1, np.int8)
    lab[2:5, 0] = 1
    lab[5:8, 0] = 0
    lab[10:12, 0] = 1
    lab[4:9, 1] = 1
    assert next_bout(lab, 0, 1, 0) == 2
    assert next_bout(lab, 2, 1, 0) == 10
    assert next_bout(lab, 10, 1, 0) is None
    assert next_bout(lab, 11, -1, 0) == 10  # mid-bout: back to its start
    assert next_bout(lab, 10, -1, 0) == 2
    assert next_bout(lab, 2, -1, 0) is None
    assert next_bout(lab, 2, 1, None) == 4  # any behaviour: rear starts at 4
    pred = np.zeros((20, 2), np.int8)
    pred[15:18, 0] = 1  # unlabelled there: the predictions count
    pred[6, 0] = 1  # labelled absent there: the label wins
    assert next_bout(lab, 10, 1, 0, pred) == 15
    assert next_bout(lab, 5, 1, 0, pred) == 10


def test_next_uncertain_exact():
    thr = np.array([0.5, 0.3], np.float32)
    p = np.zeros((20, 2), np.float32)
    p[:, 1] = 0.95  # far from 0.3: never uncertain
    p[3:7, 0] = [0.40, 0.48, 0.45, 0.35]  # stretch 3..6, closest at 4
    p[12:15, 0] = [0.62, 0.55, 0.68]  # stretch 12..14, closest at 13
    assert next_uncertain(p, thr, 0) == 4
    assert next_uncertain(p, thr, 4) == 13  # skips the stretch holding the playhead
    assert next_uncertain(p, thr, 3) == 13
    assert next_uncertain(p, thr, 13) is None
    assert next_uncertain(p, thr, 19, -1) == 13
    assert next_uncertain(p, thr, 13, -1) == 4
    assert next_uncertain(p, thr, 5, -1) is None
    assert next_uncertain(p, thr, 0, margin=0.01) is None
    p[9, 1] = 0.31  # the other behaviour counts too
    assert next_uncertain(p, thr, 5) == 9


def test_next_disagreement_exact():
    lab = np.full((20, 2), -1, np.int8)
    pred = np.zeros((20, 2), np.int8)
    pred[5:9, 0] = 1  # unlabelled there: no disagreement
    lab[10:16, 0] = 0
    pred[11:13, 0] = 1  # 11..12 differ
    pred[14, 0] = 1  # 14 differs, a new stretch
    lab[18, 1] = 1  # 18 differs
    assert next_disagreement(lab, pred, 0) == 11
    assert next_disagreement(lab, pred, 11) == 14
    assert next_disagreement(lab, pred, 14) == 18
    assert next_disagreement(lab, pred, 18) is None
    assert next_disagreement(lab, pred, 14, -1) == 11
    assert next_disagreement(lab, pred, 11, -1) is None
