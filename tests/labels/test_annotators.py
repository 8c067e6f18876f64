"""Several annotators per video: file naming, the Project API, the CLI, the review queue."""

from __future__ import annotations

import numpy as np
import pytest

from deg_core.cli import main
from deg_core.errors import DegError, LabelError
from deg_core.labels.annotators import (
    annotator_of,
    annotator_path,
    check_labeler,
    is_annotator_file,
    list_annotator_files,
)
from deg_core.labels.labels import Labels, write_labels
from deg_core.labels.review import annotators_differ, review_queue
from tests.conftest import snapshot

T = 30


@pytest.fixture
def two(project, make_video):
    """The conftest project (labeler "tester"; groom, rear) with video m1 labelled by tester."""
    project.add_video(make_video("m1.mp4", n=T))
    arr = np.zeros((T, 2), np.int8)
    arr[5:15, 0] = 1
    project.save_labels("m1", Labels(["groom", "rear"], arr))
    return project


def test_names_and_paths(tmp_path):
    assert check_labeler("bob_2-x") == "bob_2-x"
    for bad in ("", "a b", "../x", "a.b", ".hidden", "x" * 65, None):
        with pytest.raises(LabelError) as e:
            check_labeler(bad)
        assert "\n" not in str(e.value)
    path = tmp_path / "m1_labels.csv"
    assert annotator_path(path, "bob") == tmp_path / "m1_labels.bob.csv"
    assert annotator_of("m1_labels.bob.csv") == "bob"
    assert not is_annotator_file("m1_labels.csv")
    assert not is_annotator_file("m1_predictions.csv")
    (tmp_path / "m1_labels.bob.csv").write_text("x")
    (tmp_path / "m1_labels.ana.csv").write_text("x")
    (tmp_path / "m10_labels.zed.csv").write_text("x")  # another video's annotator
    assert list(list_annotator_files(path)) == ["ana", "bob"]


def test_another_annotator_leaves_the_deg_file_alone(two):
    rec = two.record("m1")
    before = rec.labels_path.read_bytes()
    other = Labels.empty(T, two.behaviors)
    other.array[:, :] = 0
    other.array[0:3, 1] = 1
    path = two.save_annotator_labels("m1", "bob", other)
    assert path.name == "m1_labels.bob.csv"
    assert rec.labels_path.read_bytes() == before  # the training file is untouched
    assert two.annotators("m1") == ["tester", "bob"]
    assert two.annotator_labels("m1", "bob") == other
    assert two.labels("m1").array[:3, 1].tolist() == [0, 0, 0]
    # saving as the primary labeler (by name) writes the training file
    two.save_annotator_labels("m1", "tester", other)
    assert two.labels("m1") == other
    assert two.annotator_labels("m1", "nobody").array.min() == -1  # none yet: all unlabelled


def test_annotator_file_never_becomes_the_training_file(project, make_video):
    project.add_video(make_video("m1.mp4", n=T))
    project.save_annotator_labels("m1", "bob", Labels.empty(T, project.behaviors))
    assert project.record("m1").labels_path.name == "m1_labels.csv"  # not bob's
    assert project.annotators("m1") == ["bob"]


def test_bad_input_changes_nothing(two):
    before = snapshot(two.root)
    with pytest.raises(LabelError, match="unsafe in a file name"):
        two.save_annotator_labels("m1", "../evil", Labels.empty(T, two.behaviors))
    with pytest.raises(DegError, match="frames"):
        two.save_annotator_labels("m1", "bob", Labels.empty(T + 1, two.behaviors))
    assert snapshot(two.root) == before


def test_behaviour_changes_reach_every_annotator(two):
    two.save_annotator_labels("m1", "bob", Labels.empty(T, two.behaviors))
    two.add_behavior("dig")
    assert two.annotator_labels("m1", "bob").behaviors == ["groom", "rear", "dig"]
    two.remove_behavior("rear")
    assert two.annotator_labels("m1", "bob").behaviors == ["groom", "dig"]
    trash = sorted(p.name for p in (two.root / ".trash").rglob("*.csv"))
    assert trash == ["m1.bob.csv", "m1.csv"]  # one column copy per annotator


def test_cli_import_labels_as_annotator(two, tmp_path, capsys):
    csv = tmp_path / "bob.csv"
    csv.write_text("start,stop,behavior\n2,6,rear\n")
    before = two.record("m1").labels_path.read_bytes()
    code = main(["import-labels", str(two.root), "m1", str(csv), "--labeler", "bob"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "labeler bob" in out
    assert two.record("m1").labels_path.read_bytes() == before
    assert two.annotator_labels("m1", "bob").array[2:6, 1].tolist() == [1] * 4
    snap = snapshot(two.root)
    code = main(["import-labels", str(two.root), "m1", str(csv), "--labeler", "b/ob"])
    _, err = capsys.readouterr()
    assert code == 1 and len(err.strip().splitlines()) == 1 and "b/ob" in err
    assert snapshot(two.root) == snap


def test_review_queue_lists_annotator_disagreements():
    a = np.array([[1, 0], [1, 0], [0, -1], [0, 1]], np.int8)
    b = np.array([[1, 0], [0, 0], [1, 1], [-1, 0]], np.int8)
    assert annotators_differ(a, b).tolist() == [[0, 0], [1, 0], [1, 0], [0, 1]]
    items = review_queue(a, ["groom", "rear"], reference=b)
    got = [(it["start"], it["stop"], it["behavior"], it["kind"]) for it in items]
    assert got == [(1, 3, "groom", "annotators"), (3, 4, "rear", "annotators")]
    assert review_queue(a, ["groom", "rear"]) == []  # no reference: the old queue


def test_write_read_round_trip_of_an_annotator_file(tmp_path):
    path = annotator_path(tmp_path / "m1_labels.csv", "ana")
    write_labels(path, Labels(["g"], np.array([[1], [0], [-1]], np.int8)))
    assert path.read_text().splitlines()[0] == ",background,g"  # the same CSV format
