"""ethogram / model_ethogram: a one-animal video's picture as before; a video of several
animals draws each animal's labels and predictions, rows named by animal (or one animal's)."""

from __future__ import annotations

import numpy as np
import pytest

from deg_core.errors import ProjectError
from deg_core.labels.labels import Labels, write_labels
from deg_core.project.outputs import animal_group, writing_group
from deg_core.report.charts import ethogram_chart
from deg_core.report.notebook import ethogram, model_ethogram
from tests.animal_fixtures import two_animal_project

B = ["groom", "rear"]
T = 12


def _array(seed: int, unlabelled: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).integers(0, 2, (T, len(B))).astype(np.int8)
    a[:unlabelled] = -1
    return a


def _probs(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((T, len(B))).astype(np.float32)


@pytest.fixture
def solo(project, make_video):
    project.add_videos([make_video("m1.mp4", n=T)])
    return project


@pytest.fixture
def duo(tmp_path, make_video):
    return two_animal_project(tmp_path, "duo", B, make_video("m1.mp4", n=T))


def test_one_animal_picture_is_as_before(solo):
    """The rows the one-animal ethogram always drew: none (an empty labels row), labels,
    labels above predictions; ``animal=0`` on a one-animal video is the same picture."""
    blank = ethogram_chart([("labels", np.full((T, 2), -1, np.int8))], B, title="m1")
    assert ethogram(solo, "m1").data == blank.data
    labels = _array(0, unlabelled=3)
    solo.save_labels("m1", Labels(B, labels))
    assert ethogram(solo, "m1").data == ethogram_chart([("labels", labels)], B, title="m1").data
    pred = _array(1)
    write_labels(solo.record("m1").predictions_path, Labels(B, pred))
    want = ethogram_chart([("labels", labels), ("predictions", pred)], B, title="t")
    assert ethogram(solo, "m1", "t").data == want.data
    assert ethogram(solo, "m1", "t", animal=0).data == want.data
    with pytest.raises(ProjectError, match="animal 1: video m1 has 1 animal"):
        ethogram(solo, "m1", animal=1)


def test_every_animal_drawn(duo):
    rec = duo.record("m1")
    first, second, pred = _array(0, unlabelled=4), _array(2), _array(3)
    duo.save_labels("m1", Labels(B, first), animal=0)
    duo.save_labels("m1", Labels(B, second), animal=1)
    write_labels(rec.animal_predictions_path(1), Labels(B, pred))
    rows = [("animal0 labels", first), ("animal1 labels", second), ("animal1 predictions", pred)]
    got = ethogram(duo, "m1")
    assert got.data == ethogram_chart(rows, B, title="m1").data
    blank = ethogram_chart([("labels", np.full((T, 2), -1, np.int8))], B, title="m1")
    assert got.height > blank.height  # not the one empty row of before
    one = ethogram(duo, "m1", animal=1)
    assert one.data == ethogram_chart(rows[1:], B, title="m1").data
    with pytest.raises(ProjectError, match="animal 2: video m1 has 2 animals"):
        ethogram(duo, "m1", animal=2)


def test_an_animal_without_labels_is_a_grey_row(duo):
    """No label file yet: each animal still has its (unlabelled) row."""
    rows = [(f"animal{a} labels", np.full((T, 2), -1, np.int8)) for a in (0, 1)]
    assert ethogram(duo, "m1").data == ethogram_chart(rows, B, title="m1").data


def test_model_ethogram_one_animal_as_before(solo):
    labels, probs, thr = _array(0), _probs(1), np.array([0.3, 0.6], np.float32)
    solo.save_labels("m1", Labels(B, labels))
    with writing_group(solo.record("m1").outputs_path, "run1", B, thr, video="m1") as g:
        g.create_dataset("P", data=probs)
    pred = (probs > thr[None]).astype(np.int8)
    want = ethogram_chart([("labels", labels), ("P > threshold (run1)", pred)], B, title="m1")
    assert model_ethogram(solo, "m1", "run1").data == want.data


def test_model_ethogram_per_animal(duo):
    """Each animal's probabilities over its own thresholds, its labels where it has some."""
    probs = [_probs(5), _probs(6)]
    thr = [np.array([0.5, 0.5], np.float32), np.array([0.2, 0.8], np.float32)]
    labels = _array(7)
    duo.save_labels("m1", Labels(B, labels), animal=1)
    path = duo.record("m1").outputs_path
    with writing_group(path, "run1", B, thr[0], video="m1", animals=2) as g:
        for a in (0, 1):
            sub = g.create_group(animal_group(a))
            sub.create_dataset("P", data=probs[a])
            sub.create_dataset("thresholds", data=thr[a])
    pred = [(p > t[None]).astype(np.int8) for p, t in zip(probs, thr, strict=True)]
    rows = [
        ("animal0 P > threshold (run1)", pred[0]),
        ("animal1 labels", labels),
        ("animal1 P > threshold (run1)", pred[1]),
    ]
    assert model_ethogram(duo, "m1", "run1").data == ethogram_chart(rows, B, title="m1").data
    one = model_ethogram(duo, "m1", "run1", animal=1)
    assert one.data == ethogram_chart(rows[1:], B, title="m1").data
