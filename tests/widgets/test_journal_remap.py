"""The crash journal survives `deg behaviors add/remove/rename`: edits replay by name, and
whatever cannot be replayed is reported, with the journal kept."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from deg_core.labels.labels import Labels, read_labels
from deg_widgets.label_journal import Journal
from deg_widgets.label_session import LabelSession
from deg_widgets.labeler import Labeler

T = 60


@pytest.fixture
def vp(project, make_video):
    """The conftest project (groom, rear) with video a, labelled on frames 0..19."""
    project.add_video(make_video("a.mp4", n=T))
    arr = np.full((T, 2), -1, np.int8)
    arr[:20] = 0
    arr[5:10, 0] = 1
    project.save_labels("a", Labels(["groom", "rear"], arr))
    return project


def crash_with_edits(vp) -> tuple[np.ndarray, np.ndarray]:
    """Edit groom on 30..35 and rear on 40..50, then drop the session unsaved: the
    expected (groom, rear) columns."""
    s = LabelSession(vp, "a")
    s.set_range(0, 30, 35, 1)
    s.set_range(1, 40, 50, 1)
    s.toggle(1, 45)  # 1 -> 0
    groom, rear = s.array[:, 0].copy(), s.array[:, 1].copy()
    assert s.journal.path.exists()
    del s  # the kernel dies: no save
    return groom, rear


def kept_copies(session):
    path = session.journal.path
    return sorted(path.parent.glob(f"{path.name}.not-replayed-*"))


def column(session, name):
    return session.array[:, session.behaviors.index(name)]


def on_disk(vp, name):
    rec = vp.record("a")
    return read_labels(rec.labels_path, vp.behaviors, T).array[:, vp.behaviors.index(name)]


def test_added_behaviour_keeps_the_edits_on_their_columns(vp):
    groom, rear = crash_with_edits(vp)
    vp.add_behavior("sniff")
    t = LabelSession(vp, "a")
    assert t.behaviors == ["groom", "rear", "sniff"]
    assert np.array_equal(column(t, "groom"), groom) and np.array_equal(column(t, "rear"), rear)
    assert (column(t, "sniff") == -1).all()
    assert t.warnings == [] and "restored 3 unsaved edit(s)" in t.notes[0]
    assert not kept_copies(t)
    t.save()
    assert np.array_equal(on_disk(vp, "rear"), rear)


def test_removing_another_behaviour_shifts_nothing(vp):
    s = LabelSession(vp, "a")
    s.set_range(1, 40, 50, 1)  # rear only
    rear = s.array[:, 1].copy()
    del s
    vp.remove_behavior("groom")  # rear moves from column 1 to 0
    t = LabelSession(vp, "a")
    assert t.behaviors == ["rear"] and np.array_equal(column(t, "rear"), rear)
    assert t.warnings == [] and not kept_copies(t)


def test_reordered_behaviours_replay_by_name(vp):
    s = LabelSession(vp, "a")
    path = s.journal.path
    path.write_text(  # a session of a project that listed rear first
        json.dumps({"s": "old", "behaviors": ["rear", "groom"], "n_frames": T, "pid": 1})
        + "\n"
        + json.dumps({"s": "old", "runs": [[0, 50, 55, 1], [1, 56, 58, 0]]})
        + "\n"
    )
    t = LabelSession(vp, "a")
    assert (column(t, "rear")[50:55] == 1).all() and (column(t, "groom")[56:58] == 0).all()
    assert (column(t, "groom")[50:55] == -1).all() and t.warnings == []


def test_removed_behaviour_is_reported_and_the_journal_kept(vp):
    groom, _ = crash_with_edits(vp)
    path = vp.record("a").folder / ".a_labels.journal"
    text = path.read_text()
    vp.remove_behavior("rear")
    t = LabelSession(vp, "a")
    assert t.behaviors == ["groom"] and np.array_equal(column(t, "groom"), groom)  # replayed
    (kept,) = kept_copies(t)
    assert kept.read_text() == text  # every line, the replayed ones too
    (warning,) = t.warnings
    assert "not replayed" in warning and "'rear' on 10 frame(s)" in warning
    assert str(kept) in warning and warning in t.notes
    assert "restored 1 unsaved edit(s)" in " ".join(t.notes)
    t.save()  # the live journal goes with the save; the copy stays
    assert not path.exists() and kept.exists()
    u = LabelSession(vp, "a")  # nothing left to report
    assert u.notes == [] and kept_copies(u) == [kept]


def test_renamed_behaviour_follows_the_rename(vp):
    groom, rear = crash_with_edits(vp)
    vp.rename_behavior("rear", "stand")
    vp.add_behavior("rear")  # a new behaviour that reuses the old name gets none of them
    t = LabelSession(vp, "a")
    assert t.behaviors == ["groom", "stand", "rear"]
    assert np.array_equal(column(t, "stand"), rear) and np.array_equal(column(t, "groom"), groom)
    assert (column(t, "rear") == -1).all()
    assert t.warnings == [] and not kept_copies(t)


def test_other_frame_count_and_malformed_lines_are_reported(vp):
    path = vp.record("a").folder / ".a_labels.journal"
    lines = [
        {"s": "short", "behaviors": ["groom", "rear"], "n_frames": T - 10, "pid": 1},
        {"s": "short", "runs": [[0, 0, 5, 1]]},
        {"s": "ok", "behaviors": ["groom", "rear"], "n_frames": T, "pid": 1},
        {"s": "ok", "runs": [[0, 50, 52, 1], [1, 5, 2, 1], [7, 0, 1, 1], [0, 53, 54, 9]]},
        {"s": "ok", "runs": "nonsense"},
        {"s": "nohead", "runs": [[0, 0, 1, 1]]},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"s": "ok", "runs": [[0\n')
    t = LabelSession(vp, "a")
    assert (column(t, "groom")[50:52] == 1).all()  # the well-formed run is replayed
    assert column(t, "groom")[53] == -1 and (column(t, "groom")[:5] == 0).all()
    (warning,) = t.warnings
    for part in (
        "1 edit(s) made when the video had 50 frames, not 60",
        "2 malformed edit line(s)",
        "1 edit line(s) without their session's header",
        "1 unreadable line(s)",
    ):
        assert part in warning
    (kept,) = kept_copies(t)
    assert str(kept) in warning and len(kept.read_text().splitlines()) == len(lines) + 1


def test_labeler_shows_what_was_not_replayed(vp, caplog):
    _, rear = crash_with_edits(vp)
    vp.remove_behavior("groom")
    w = Labeler(vp, "a", autosave=False)
    try:
        labels = np.frombuffer(w.labels, np.int8).reshape(T, 1)
        assert w.behaviors == ["rear"] and np.array_equal(labels[:, 0], rear)
        (kept,) = kept_copies(w.session)
        assert w.status.startswith("not replayed from the journal: edits of 'groom'")
        assert str(kept) in w.status and "restored" in w.status
        assert str(kept) in caplog.text
    finally:
        w.server.close()


def test_rewrite_is_atomic_and_keeps_the_files_mode(tmp_path):
    path = tmp_path / ".a_labels.journal"
    j = Journal(path, "s1", ["groom"], 10)
    j.append([[0, 0, 2, 1]])
    os.chmod(path, 0o640)  # e.g. a group-readable lab share
    other = Journal(path, "s2", ["groom"], 10)
    other.append([[0, 5, 6, 1]])
    j.drop_own()
    assert [e["s"] for e in j.entries()] == ["s2", "s2"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left
