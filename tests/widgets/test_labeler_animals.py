"""The Labeler on a video of several animals (kernel side): one label set, journal and undo
history per animal, the selected animal's rows and predictions, tracks and swap candidates,
the review queue across animals; a one-animal video unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from deg_core.errors import ProjectError
from deg_core.labels.labels import Labels, read_labels, write_labels
from deg_core.project.project import Project
from deg_core.tracking.animals import AnimalTracks
from deg_core.tracking.multi import swap_candidates
from deg_core.tracking.project_tracks import save_animal_tracks
from deg_widgets.label_review import next_animal_disagreement
from deg_widgets.labeler import Labeler

B = ["groom", "rear"]
T = 30


@pytest.fixture
def duo(tmp_path, make_video):
    """A project of 2 animals per video with one 30-frame 64x48 video m1."""
    p = Project.create(tmp_path, "duo", B)
    p.add_videos([make_video("m1.mp4", n=T)])
    raw = yaml.safe_load(p.config_path.read_text())
    raw["project"]["animals"] = 2
    p.config_path.write_text(yaml.safe_dump(raw))
    p.reload()
    return p


def _tracks() -> AnimalTracks:
    """Two animals; they touch on frames 10..14 and come apart on 15."""
    center = np.zeros((T, 2, 2), np.float32)
    center[:, 0] = np.c_[np.linspace(10, 30, T), np.full(T, 20)]
    center[:, 1] = np.c_[np.linspace(50, 34, T), np.full(T, 30)]
    extent = np.full((T, 2, 2), 8, np.float32)
    merged = np.zeros(T, bool)
    merged[10:15] = True
    return AnimalTracks(center, extent, ["animal0", "animal1"], "deg", (48, 64), merged)


def _array(w: Labeler, trait: str = "labels") -> np.ndarray:
    return np.frombuffer(getattr(w, trait), np.int8).reshape(w.n_frames, len(w.behaviors))


def test_each_animal_is_labelled_and_saved_on_its_own(duo):
    w = Labeler(duo.root, autosave=False)
    try:
        assert (w.n_animals, w.animal, w.animal_names) == (2, 0, ["animal0", "animal1"])
        assert w.tracks == b"" and w.follow is False and "no tracks" in w.status
        w.set_range(0, 2, 6, 1)
        w.animal = 1  # as the front end's selector does
        assert w.animal == 1 and (_array(w) == -1).all()  # animal 1's (empty) labels
        w.set_range(1, 20, 25, 1)
        w.animal = 0
        assert (_array(w)[2:6, 0] == 1).all() and (_array(w) == 1).sum() == 4
        both = np.frombuffer(w.animal_labels, np.int8).reshape(2, T, 2)  # as of the switch
        assert (both[0] == _array(w)).all() and (both[1, 20:25, 1] == 1).all()
        w.select_animal(1)
        w.undo()  # animal 1's step only
        assert (_array(w) == -1).all() and w.dirty  # animal 0's edit is still unsaved
        w.redo()
        w.save()
    finally:
        w.close()
    rec = duo.record("m1")
    a0 = read_labels(rec.animal_labels_path(0), B, T).array
    a1 = read_labels(rec.animal_labels_path(1), B, T).array
    assert (a0[2:6, 0] == 1).all() and (a0 == 1).sum() == 4
    assert (a1[20:25, 1] == 1).all() and (a1 == 1).sum() == 5
    assert not rec.labels_path.exists()  # the top-level file is not the animals'


def test_unsaved_edits_of_every_animal_come_back_from_their_journals(duo):
    w = Labeler(duo.root, autosave=False)
    w.set_range(0, 0, 3, 1)
    w.select_animal(1)
    w.set_range(1, 5, 9, 0)
    # the kernel dies: no save, no close; a new Labeler replays both journals
    w2 = Labeler(duo.root, autosave=False, animal=1)
    try:
        assert w2.animal == 1 and (_array(w2)[5:9, 1] == 0).all()
        w2.select_animal(0)
        assert (_array(w2)[0:3, 0] == 1).all()
        assert w2.dirty
    finally:
        w2.close()  # saves both
        w._closed = True  # the dead kernel's widget
    rec = duo.record("m1")
    assert (read_labels(rec.animal_labels_path(0), B, T).array[0:3, 0] == 1).all()
    assert (read_labels(rec.animal_labels_path(1), B, T).array[5:9, 1] == 0).all()


def test_a_bad_animal_is_one_line_and_changes_nothing(duo):
    with pytest.raises(ProjectError, match=r"animal 5.*has 2 animals"):
        Labeler(duo.root, animal=5)
    w = Labeler(duo.root, autosave=False)
    try:
        w.animal = 7
        assert w.animal == 0 and "animal 7" in w.error and "\n" not in w.error
        w.handle_message({"type": "swap_identities", "a": 0, "b": 0, "frame": 3})
        assert "no tracks" in w.error
    finally:
        w.close()
    assert not (duo.record("m1").folder / "animals").exists()


def test_tracks_outlines_swap_candidates_and_fixing_a_swap(duo):
    tracks = _tracks()
    save_animal_tracks(duo, "m1", tracks)
    w = Labeler(duo.root, autosave=False)
    try:
        boxes = np.frombuffer(w.tracks, np.float32).reshape(T, 2, 4)
        np.testing.assert_array_equal(boxes[:, :, :2], tracks.center)
        np.testing.assert_array_equal(boxes[:, :, 2:], tracks.extent)
        assert w.follow is True
        assert w.swap_frames == swap_candidates(tracks) and 15 in w.swap_frames
        w.handle_message({"type": "seek", "target": "swap", "direction": 1})
        assert w.frame == w.swap_frames[0] and "may have swapped" in w.status
        w.frame = T - 1
        w.handle_message({"type": "seek", "target": "swap", "direction": -1})
        assert w.frame == w.swap_frames[-1]
        w.handle_message({"type": "swap_identities", "a": 0, "b": 1, "frame": 15})
        assert w.error == "" and "swapped animal0 and animal1 from frame 15" in w.status
        boxes = np.frombuffer(w.tracks, np.float32).reshape(T, 2, 4)
        np.testing.assert_array_equal(boxes[15:, 0, :2], tracks.center[15:, 1])
        np.testing.assert_array_equal(boxes[:15, 0, :2], tracks.center[:15, 0])
    finally:
        w.close()
    saved = AnimalTracks.load(duo.record("m1").folder / "m1_animals.h5")
    np.testing.assert_array_equal(saved.center[15:, 0], tracks.center[15:, 1])


def test_disagreements_are_walked_across_animals(duo):
    rec = duo.record("m1")
    pred0 = np.zeros((T, 2), np.int8)
    pred1 = np.zeros((T, 2), np.int8)
    write_labels(rec.animal_predictions_path(0), Labels(B, pred0))
    write_labels(rec.animal_predictions_path(1), Labels(B, pred1))
    lab0 = np.full((T, 2), -1, np.int8)
    lab1 = np.full((T, 2), -1, np.int8)
    lab0[8:10, 0] = 1  # animal 0 disagrees from 8
    lab1[8:9, 1] = 1  # animal 1 too, on the same frame
    lab1[20:22, 0] = 1  # and from 20
    duo.save_labels("m1", Labels(B, lab0), animal=0)
    duo.save_labels("m1", Labels(B, lab1), animal=1)
    w = Labeler(duo.root, autosave=False)
    try:
        assert w.has_predictions and (_array(w, "predicted") == pred0).all()
        seen = []
        for _ in range(4):
            w.handle_message({"type": "seek", "target": "disagree", "direction": 1})
            seen.append((w.frame, w.animal))
        assert seen == [(8, 0), (8, 1), (20, 1), (20, 1)]
        assert "no next disagreement" in w.status
        w.handle_message({"type": "seek", "target": "disagree", "direction": -1})
        assert (w.frame, w.animal) == (8, 1)
        w.handle_message({"type": "seek", "target": "disagree", "direction": -1})
        assert (w.frame, w.animal) == (8, 0)
    finally:
        w.close()


def test_next_animal_disagreement_orders_by_frame_then_animal():
    starts = {0: np.array([3, 9]), 1: np.array([3, 5])}
    assert next_animal_disagreement(starts, 0, 0) == (3, 0)
    assert next_animal_disagreement(starts, 3, 0) == (3, 1)
    assert next_animal_disagreement(starts, 3, 1) == (5, 1)
    assert next_animal_disagreement(starts, 9, 0) is None
    assert next_animal_disagreement(starts, 5, 1, -1) == (3, 1)
    assert next_animal_disagreement({}, 0, 0) is None


def test_reference_annotator_follows_the_animal(duo):
    bob = np.full((T, 2), -1, np.int8)
    bob[4:7, 1] = 1
    duo.save_annotator_labels("m1", "bob", Labels(B, bob), animal=1)
    w = Labeler(duo.root, autosave=False, reference="bob")
    try:
        assert w.reference_labels == b"" and w.annotators == []  # animal 0: bob has none
        w.select_animal(1)
        assert w.annotators == ["bob"] and (_array(w, "reference_labels") == bob).all()
    finally:
        w.close()


def test_a_one_animal_video_is_unchanged(project, make_video):
    project.add_videos([make_video("m1.mp4", n=10)])
    w = Labeler(project.root, autosave=False)
    try:
        assert (w.n_animals, w.animal, w.animal_labels, w.tracks) == (1, 0, b"", b"")
        assert w.swap_frames == [] and w.follow is False and w.animal_names == ["animal0"]
        w.set_range(0, 0, 2, 1)
        w.save()
    finally:
        w.close()
    rec = project.record("m1")
    assert rec.labels_path.exists() and not (rec.folder / "animals").exists()


def test_tracks_that_do_not_fit_are_not_shown(duo):
    short = _tracks()
    cut = AnimalTracks(short.center[:20], short.extent[:20], short.names, "csv", (48, 64))
    cut.save(duo.record("m1").folder / "m1_animals.h5")  # as a stale file from an old video
    w = Labeler(duo.root, autosave=False)
    try:
        assert w.tracks == b"" and w.follow is False and w.swap_frames == []
        assert "tracks not shown: they hold 2 animals x 20 frames, the video 2 x 30" in w.status
    finally:
        w.close()
