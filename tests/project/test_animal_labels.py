"""Per-animal labels: a video of several animals keeps animal i's label sets in
DATA/<key>/animals/animal<i>/ (DEG's format and names); a one-animal video stays laid out
as DeepEthogram's; bad animals -> one-line ProjectError, nothing changed."""

from __future__ import annotations

import numpy as np
import pytest

from deg_core.errors import ProjectError
from deg_core.labels.labels import Labels, read_labels
from deg_core.project.project import Project
from deg_core.project.status import exclusive_suggestion, format_status, project_status
from tests.conftest import snapshot

B = ["groom", "rear"]


@pytest.fixture
def duo(tmp_path, make_video):
    """Video m1 (20 frames) with 2 animals, video solo (20 frames) with one."""
    p = Project.create(tmp_path, "duo", B, labeler="tester")
    p.add_videos([make_video("m1.mp4", n=20), make_video("solo.mp4", n=20, seed=1)])
    p.set_animals(2, video="m1")
    return p


def _labels(rows: dict[int, int]) -> Labels:
    """20 frames, 0 everywhere but groom (column 0) on the given frames -> value."""
    a = np.zeros((20, 2), np.int8)
    for frame, v in rows.items():
        a[frame, 0] = v
    return Labels(B, a)


def _write(tmp_path, text: str, name: str = "bouts.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_one_animal_video_is_laid_out_as_deepethogram(duo):
    top = duo.data_dir / "solo" / "solo_labels.csv"
    assert duo.label_path("solo") == duo.label_path("solo", 0) == top
    assert duo.animal_labels_path("solo", 0) == top
    assert duo.save_labels("solo", _labels({3: 1})) == top
    assert duo.labels("solo") == _labels({3: 1}) == duo.labels("solo", animal=0)
    assert not (duo.data_dir / "solo" / "animals").exists()
    assert duo.annotator_labels_path("solo", "bob") == top.with_name("solo_labels.bob.csv")
    with pytest.raises(ProjectError, match=r"video solo has 1 animal \(0..0\)"):
        duo.labels("solo", animal=1)


def test_each_animal_has_its_own_label_file(duo):
    one = duo.save_labels("m1", _labels({5: 1}), animal=1)
    assert one == duo.data_dir / "m1" / "animals" / "animal1" / "m1_labels.csv"
    assert duo.animal_labels_path("m1", 1) == one == duo.label_path("m1", 1)
    assert read_labels(one, B) == _labels({5: 1})  # DEG's format
    assert duo.labels("m1", animal=1) == _labels({5: 1})
    assert (duo.labels("m1", animal=0).array == -1).all()  # no file yet
    assert not (duo.data_dir / "m1" / "m1_labels.csv").exists()


@pytest.mark.parametrize("animal", [2, -1, True, "0"])
def test_an_animal_outside_the_video_is_one_line_error(duo, animal):
    with pytest.raises(ProjectError, match=r"video m1 has 2 animals \(0..1\)") as e:
        duo.save_labels("m1", _labels({}), animal=animal)
    assert "\n" not in str(e.value)
    assert not (duo.data_dir / "m1" / "animals").exists()


def test_a_video_of_several_animals_needs_one_named(duo):
    for call in (
        lambda: duo.labels("m1"),
        lambda: duo.save_labels("m1", _labels({})),
        lambda: duo.label_path("m1"),
        lambda: duo.annotator_labels("m1", "bob"),
    ):
        with pytest.raises(ProjectError, match=r"video m1 has 2 animals \(0..1\): say which"):
            call()


def test_annotators_per_animal(duo):
    path = duo.save_annotator_labels("m1", "bob", _labels({1: 1}), animal=0)
    assert path == duo.data_dir / "m1" / "animals" / "animal0" / "m1_labels.bob.csv"
    duo.save_labels("m1", _labels({2: 1}), animal=0)
    assert duo.annotators("m1", animal=0) == ["tester", "bob"]
    assert duo.annotators("m1", animal=1) == []
    assert duo.annotator_labels("m1", "bob", animal=0) == _labels({1: 1})
    files = duo.label_set_files("m1")
    assert [p.name for p in files] == ["m1_labels.csv", "m1_labels.bob.csv"]


def test_import_a_deg_csv_into_one_animal(duo, tmp_path):
    src = tmp_path / "in.csv"
    from deg_core.labels.labels import write_labels

    write_labels(src, _labels({7: 1}))
    duo.import_labels("m1", src, animal=1)
    assert duo.labels("m1", animal=1) == _labels({7: 1})
    with pytest.raises(ProjectError, match="say which"):
        duo.import_labels("m1", src)


def test_bout_table_with_an_animal_column_imports_every_animal(duo, tmp_path):
    src = _write(tmp_path, "behavior,start,stop,animal\ngroom,0,4,0\nrear,2,6,animal1\n")
    got = duo.import_labels_per_animal("m1", src)
    assert sorted(got) == [0, 1]
    assert duo.labels("m1", animal=0).array[:4, 0].tolist() == [1, 1, 1, 1]
    assert duo.labels("m1", animal=1).array[2:6, 1].tolist() == [1, 1, 1, 1]
    assert duo.labels("m1", animal=1).array[:, 0].max() == 0
    # one animal's rows only
    src2 = _write(tmp_path, "Subject,start,stop,behaviour\n1,10,12,groom\n0,0,1,rear\n", "b2.csv")
    duo.import_labels("m1", src2, animal=1)
    assert duo.labels("m1", animal=1).array[10:12, 0].tolist() == [1, 1]
    assert duo.labels("m1", animal=0).array[:4, 0].tolist() == [1, 1, 1, 1]  # untouched


def test_an_unknown_animal_in_a_bout_table_changes_nothing(duo, tmp_path):
    before = snapshot(duo.root)
    for text in (
        "behavior,start,stop,individual\ngroom,0,4,0\ngroom,0,4,animal2\n",
        "behavior,start,stop,animal\ngroom,0,4,bob\n",
        "behavior,start,stop,animal\ngroom,0,4,0\ngroom,5,6,animal0\n",
    ):
        src = _write(tmp_path, text)
        with pytest.raises(ProjectError) as e:
            duo.import_labels_per_animal("m1", src)
        assert "\n" not in str(e.value)
    src = _write(tmp_path, "behavior,start,stop\ngroom,0,4\n")
    with pytest.raises(ProjectError, match=r"not a bout table with an animal column"):
        duo.import_labels_per_animal("m1", src)
    assert snapshot(duo.root) == before


def test_one_animal_video_ignores_an_animal_column_as_before(duo, tmp_path):
    src = _write(tmp_path, "behavior,start,stop,subject\ngroom,0,4,mouseA\nrear,3,5,mouseB\n")
    labels = duo.import_labels("solo", src)
    assert labels.array[:4, 0].tolist() == [1, 1, 1, 1] and labels.array[3:5, 1].tolist() == [1, 1]


def test_status_counts_labelled_frames_per_animal(duo):
    duo.save_labels("m1", Labels(B, np.full((20, 2), -1, np.int8)), animal=0)
    a = np.full((20, 2), -1, np.int8)
    a[:5] = 0
    a[2, 0] = 1
    duo.save_labels("m1", Labels(B, a), animal=1)
    status = project_status(duo)
    m1 = next(v for v in status["videos"] if v["key"] == "m1")
    assert [(r["animal"], r["labels_file"], r["labeled_frames"]) for r in m1["animals"]] == [
        (0, True, 0),
        (1, True, 5),
    ]
    assert m1["labels_file"] is True
    assert m1["labeled_fraction"]["groom"] == pytest.approx(5 / 40)
    assert status["behavior_totals"]["groom"] == {
        "positive_frames": 1,
        "bouts": 1,
        "labeled_frames": 5,
    }
    solo = next(v for v in status["videos"] if v["key"] == "solo")
    assert "animals" not in solo
    text = format_status(status)
    assert "animal1: 5 frames labeled" in text and "animal0: 0 frames labeled" in text
    assert not any("is not used" in w for w in status["warnings"])
    assert exclusive_suggestion(duo) is not None  # animal 1's frames count


def test_status_says_a_top_level_file_is_unused(duo):
    top = duo.data_dir / "m1" / "m1_labels.csv"
    from deg_core.labels.labels import write_labels

    write_labels(top, _labels({1: 1}))
    status = project_status(duo)
    assert any("m1_labels.csv is not used" in w for w in status["warnings"])
    assert (duo.labels("m1", animal=0).array == -1).all()  # never read as an animal's


def test_behaviour_changes_reach_every_animal_file(duo):
    duo.save_labels("m1", _labels({1: 1}), animal=0)
    duo.save_annotator_labels("m1", "bob", _labels({2: 1}), animal=1)
    duo.rename_behavior("groom", "lick")
    assert read_labels(duo.animal_labels_path("m1", 0)).behaviors == ["lick", "rear"]
    bob = duo.annotator_labels_path("m1", "bob", animal=1)
    assert read_labels(bob).behaviors == ["lick", "rear"]
    duo.remove_behaviors(["rear"])
    assert duo.labels("m1", animal=0).behaviors == ["lick"]
    trash = [p.name for p in (duo.root / ".trash").rglob("*.csv")]
    assert "m1.animal0.csv" in trash and "m1.animal1.bob.csv" in trash
