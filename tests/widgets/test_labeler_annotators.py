"""The Labeler with several annotators: who labels, the reference row, disagreement stepping."""

from __future__ import annotations

import numpy as np
import pytest

from deg_core.labels.labels import Labels
from deg_widgets.label_review import next_annotator_disagreement
from deg_widgets.labeler import Labeler

T = 40


@pytest.fixture
def ann(project, make_video):
    """Video a: tester (the project's labeler) and bob label groom; they differ on 10..14
    and 30..32; frames 20..24 bob left unlabelled (never a disagreement)."""
    project.add_video(make_video("a.mp4", n=T))
    mine = np.zeros((T, 2), np.int8)
    mine[5:15, 0] = 1
    mine[20:25, 0] = 1
    bob = np.zeros((T, 2), np.int8)
    bob[5:10, 0] = 1
    bob[30:33, 0] = 1
    bob[20:25, 0] = -1
    project.save_labels("a", Labels(["groom", "rear"], mine))
    project.save_annotator_labels("a", "bob", Labels(["groom", "rear"], bob))
    return project


@pytest.fixture
def make(ann):
    made: list[Labeler] = []

    def _make(**kw):
        kw.setdefault("autosave", False)
        w = Labeler(ann, "a", **kw)
        w.send = lambda content, buffers=None: None
        made.append(w)
        return w

    yield _make
    for w in made:
        if w.server is not None:
            w.server.close()


def test_next_annotator_disagreement_pure():
    a = np.zeros((10, 1), np.int8)
    b = np.zeros((10, 1), np.int8)
    a[2:4] = 1
    b[7] = 1
    a[5] = -1
    b[5] = 1  # unlabelled on one side: not a disagreement
    assert next_annotator_disagreement(a, b, 0) == 2
    assert next_annotator_disagreement(a, b, 2) == 7
    assert next_annotator_disagreement(a, b, 7) is None
    assert next_annotator_disagreement(a, b, 7, -1) == 2


def test_reference_row_and_stepping(make, ann):
    w = make(reference="bob")
    assert w.labeler == "tester" and w.annotators == ["tester", "bob"]
    assert w.reference == "bob"
    ref = w.reference_array()
    assert ref is not None and ref[20, 0] == -1 and ref[30, 0] == 1
    w._handle_custom_msg({"type": "seek", "target": "annotators", "direction": 1}, [])
    assert w.frame == 10 and not w.error
    w.seek_annotator_disagreement(1)
    assert w.frame == 30  # 20..24 skipped: bob left them unlabelled
    w.seek_annotator_disagreement(1)
    assert w.frame == 30 and "no next disagreement" in w.status
    w.seek_annotator_disagreement(-1)
    assert w.frame == 10
    # the reference is read-only: edits and saves go to tester's (training) file only
    bob_before = ann.annotator_labels_path("a", "bob").read_bytes()
    w.set_range(1, 0, 3, 1)
    w.save()
    assert ann.labels("a").array[:3, 1].tolist() == [1, 1, 1]
    assert ann.annotator_labels_path("a", "bob").read_bytes() == bob_before
    w._handle_custom_msg({"type": "reference", "labeler": None}, [])
    assert w.reference == "" and w.reference_labels == b""
    w.seek_annotator_disagreement(1)
    assert "no reference" in w.status


def test_labelling_as_another_annotator(make, ann):
    training = ann.record("a").labels_path.read_bytes()
    w = make(labeler="carol", reference="tester")
    assert w.labeler == "carol"
    assert np.frombuffer(w.labels, np.int8).min() == -1  # carol starts from nothing
    w.set_range(0, 0, 5, 1)
    w.save()
    assert ann.record("a").labels_path.read_bytes() == training
    assert ann.annotator_labels("a", "carol").array[:5, 0].tolist() == [1] * 5
    assert ann.annotators("a") == ["tester", "bob", "carol"]
    w.show_reference("carol")  # oneself is no reference
    assert "labeler here" in w.error


def test_bad_labeler_name_fails_in_one_line(ann):
    with pytest.raises(Exception, match="unsafe in a file name") as e:
        Labeler(ann, "a", labeler="no/slash", autosave=False)
    assert "\n" not in str(e.value)


def test_reload_rereads_the_reference_row(make, ann):
    w = make(reference="bob")
    assert w.reference_array()[0, 1] == 0
    newer = ann.annotator_labels("a", "bob").array.copy()
    newer[0:4, 1] = 1  # bob saves meanwhile, from another Labeler or process
    ann.save_annotator_labels("a", "bob", Labels(["groom", "rear"], newer))
    ann.save_annotator_labels("a", "carol", Labels(["groom", "rear"], newer))
    assert w.reference_array()[0, 1] == 0  # not re-read behind the user's back
    w.reload()
    assert w.reference_array()[:4, 1].tolist() == [1, 1, 1, 1]
    assert "carol" in w.annotators
