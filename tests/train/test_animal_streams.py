"""Several animals per video (issue 24): per-animal training streams, outputs and scores.

A video of N > 1 animals is N streams: animal i's labels seen through a window that follows
animal i (its stored tracks); its outputs go to ``<run>/animal<i>``. One-animal videos are
untouched (items, outputs as before).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from deg_core.errors import ProjectError
from deg_core.labels.labels import Labels
from deg_core.project.outputs import read_group
from deg_core.tracking.animals import AnimalTracks
from deg_core.tracking.crop import animal_boxes, animal_crop_boxes, crop_boxes
from deg_core.tracking.project_tracks import save_animal_tracks
from deg_core.train.common import video_items
from tests.animal_fixtures import (
    N_FRAMES,
    SIZE,
    synthetic_pair_project,
    truth_tracks,
    two_animal_project,
)
from tests.pipeline import NO_AUGS, TINY


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return synthetic_pair_project(tmp_path_factory.mktemp("pair"))


def test_items_are_animal_streams(pair):
    """Each 2-animal video gives two items: animal i's labels, a fixed window on animal i."""
    project, centres = pair
    cfg = project.resolve_config(TINY)
    keys = project.video_keys()
    items = video_items(project, keys, with_labels=True, augs=cfg.augs)
    assert [(it.path.stem, it.animal) for it in items] == [(k, a) for k in keys for a in (0, 1)]
    for it in items:
        key = it.path.stem
        assert it.animal is not None and it.boxes is not None
        np.testing.assert_array_equal(it.labels, project.labels(key, animal=it.animal).array)
        assert it.boxes.shape == (N_FRAMES, 4) and it.n_frames == N_FRAMES
        sides = it.boxes[:, 2:] - it.boxes[:, :2]
        assert (sides == sides[0]).all() and sides[0, 0] == sides[0, 1]  # fixed square
        # centred on the animal (up to smoothing and rounding), inside the frame
        mid = (it.boxes[:, :2] + it.boxes[:, 2:] - 1) / 2
        free = (it.boxes[:, :2] > 0) & (it.boxes[:, 2:] < SIZE)  # (T, 2) axis not clamped
        err = np.abs(mid - centres[key][:, it.animal])[free]
        assert free.sum() > N_FRAMES // 2 and np.median(err) < 2.5
        assert (it.boxes[:, :2] >= 0).all() and (it.boxes[:, 2:] <= SIZE).all()
    # the two animals' windows differ; without labels (flow) the same streams
    a0, a1 = items[0].boxes, items[1].boxes
    assert not np.array_equal(a0, a1)
    flow_items = video_items(project, keys, with_labels=False, augs=cfg.augs)
    assert [(it.path.stem, it.animal, it.labels) for it in flow_items] == [
        (k, a, None) for k in keys for a in (0, 1)
    ]
    np.testing.assert_array_equal(flow_items[1].boxes, a1)


def test_unlabelled_animal_is_dropped(tmp_path):
    project, _ = _one_video_pair(tmp_path, tracks=True)
    key = project.video_keys()[0]
    lab = Labels.empty(N_FRAMES, project.behaviors)
    project.save_labels(key, lab, animal=0)  # animal 0 all -1; animal 1 labelled
    lab.array[:5, 0] = 1
    project.save_labels(key, lab, animal=1)
    items = video_items(project, [key], with_labels=True, augs=project.resolve_config().augs)
    assert [it.animal for it in items] == [1]


def _one_video_pair(root, tracks: bool = False):
    from deg_core.workflow.synthetic_multi import MultiSpec, write_multi_video

    truth = write_multi_video(root / "x.mp4", MultiSpec(n_frames=N_FRAMES, size=SIZE))
    project = two_animal_project(root, "one", ["walk"], root / "x.mp4")
    if tracks:
        save_animal_tracks(project, "x", truth_tracks(truth.centers))
    return project, truth


def test_streams_need_tracks(tmp_path):
    """A 2-animal video without tracks: one line naming the command that makes them."""
    project, _ = _one_video_pair(tmp_path)
    key = project.video_keys()[0]
    with pytest.raises(ProjectError, match=rf"deg tracks \S+ {key} --compute") as e:
        video_items(project, [key], with_labels=False, augs=project.resolve_config().augs)
    assert "\n" not in str(e.value)


def test_animal_boxes_hold_unknown_centres():
    """NaN centres: interpolated between known frames, held before the first / after the last."""
    t = 30
    centre = np.zeros((t, 1, 2), np.float32)
    centre[:, 0, 0] = np.linspace(20, 80, t)
    centre[:, 0, 1] = 50
    centre[:5] = np.nan
    centre[12:18] = np.nan
    centre[25:] = np.nan
    extent = np.full((t, 1, 2), 20.0, np.float32)
    extent[:5] = np.nan
    tracks = AnimalTracks(centre, extent, ["a"], "csv", (100, 120))
    boxes = animal_boxes(tracks, 0, scale=2.0, fps=1.0)  # fps 1: no moving average
    assert boxes.shape == (t, 4) and (boxes[:, 2] - boxes[:, 0] == 40).all()
    mid = (boxes[:, 0] + boxes[:, 2] - 1) / 2
    x = np.linspace(20, 80, t)
    assert abs(mid[0] - x[5]) <= 1 and abs(mid[-1] - x[24]) <= 1  # held at the ends
    assert np.all(np.abs(mid[12:18] - x[12:18]) <= 1)  # interpolated
    assert (boxes[:, 1] == 50 - 20).all()


def test_one_animal_items_unchanged(tiny_project):
    """A one-animal project: the items are those the one-stream code made (labels, crop)."""
    for crop in ("full", "animal"):
        cfg = tiny_project.resolve_config([*TINY, f"augs.crop={crop}"])
        keys = tiny_project.video_keys()
        items = video_items(tiny_project, keys, with_labels=True, augs=cfg.augs)
        assert [it.path.stem for it in items] == keys
        for it, key in zip(items, keys, strict=True):
            rec = tiny_project.record(key)
            assert it.animal is None and it.path == rec.video and it.n_frames == rec.n_frames()
            np.testing.assert_array_equal(it.labels, tiny_project.labels(key).array)
            want = crop_boxes(tiny_project, key, cfg.augs)
            if want is None:
                assert it.boxes is None
            else:
                np.testing.assert_array_equal(it.boxes, want)


def test_one_animal_outputs_unchanged(tiny_project, feature_run):
    """A one-animal video's group: datasets directly under the run, no animal subgroups,
    equal to the features computed directly."""
    from deg_core.infer.features import (
        REFERENCE,
        FeaturePredictor,
        video_features,
        write_video_outputs,
    )

    key = tiny_project.video_keys()[0]
    rec = tiny_project.record(key)
    fm = FeaturePredictor.load(tiny_project, feature_run.name, "cpu")
    out = tiny_project.root / "one_outputs.h5"
    boxes = crop_boxes(tiny_project, key, fm.augs)
    write_video_outputs(fm, key, rec.video, rec.n_frames(), out, 8, opts=REFERENCE, boxes=boxes)
    with h5py.File(out, "r") as f:
        g = f[feature_run.name]
        assert "animals" not in g.attrs
        assert sorted(g) == sorted(
            ["spatial_features", "flow_features", "logits", "P", "thresholds", "class_names"]
        )
    got = read_group(out, feature_run.name, ("spatial_features", "P"))
    want = np.concatenate(
        [b["P"] for _, b in video_features(fm, rec.video, rec.n_frames(), 8, REFERENCE, boxes)]
    )
    np.testing.assert_array_equal(got["P"], want)
    with pytest.raises(Exception, match="no outputs of animal 0"):
        read_group(out, feature_run.name, ("P",), animal=0)


@pytest.mark.filterwarnings("ignore:behaviour 'turn' has no positive frames")
def test_two_animals_end_to_end(pair):
    """flow -> features -> per-animal feature outputs -> sequence -> per-animal predictions
    and scores, on a tiny 2-animal project."""
    from deg_core.evaluation.scoring import evaluate_project
    from deg_core.infer.features import infer_features
    from deg_core.infer.sequence import infer_sequence, predictions_path
    from deg_core.train.features import train_features
    from deg_core.train.flow import train_flow
    from deg_core.train.sequence import train_sequence

    project, _ = pair
    base = [*TINY, *NO_AUGS]
    cfg = project.resolve_config(
        [*base, "flow_generator.num_epochs=1", "flow_generator.steps_per_epoch=2"]
    )
    flow = train_flow(project, cfg, device="cpu", progress=False)
    cfg = project.resolve_config(
        [*base, "feature_extractor.num_epochs=1", "feature_extractor.steps_per_epoch=3"]
    )
    feats = train_features(project, cfg, flow_run=flow.name, device="cpu", progress=False)
    keys = project.video_keys()
    assert infer_features(project, feats.name, device="cpu", progress=False) == dict.fromkeys(
        keys, "done"
    )
    out0 = project.record(keys[0]).outputs_path
    with h5py.File(out0, "r") as f:
        g = f[feats.name]
        assert g.attrs["animals"] == 2 and g.attrs["complete"]
        assert {"animal0", "animal1", "thresholds", "class_names"} <= set(g)
        assert "spatial_features" not in g
        for a in ("animal0", "animal1"):
            assert g[a]["spatial_features"].shape == (N_FRAMES, 512)
            assert g[a]["P"].shape == (N_FRAMES, 3)
        # each animal's features come from its own window
        assert not np.array_equal(g["animal0"]["P"][()], g["animal1"]["P"][()])
    with pytest.raises(Exception, match="per animal"):
        read_group(out0, feats.name, ("P",))

    seq_cfg = project.resolve_config(
        [
            *TINY,
            "sequence.sequence_length=16",
            "sequence.batch_size=4",
            "sequence.num_epochs=2",
            "sequence.steps_per_epoch=3",
        ]
    )
    seq = train_sequence(project, seq_cfg, feature_run=feats.name, device="cpu", progress=False)
    assert infer_sequence(project, seq.name, device="cpu") == dict.fromkeys(keys, "done")
    with h5py.File(out0, "r") as f:
        g = f[seq.name]
        assert g.attrs["animals"] == 2
        for a in ("animal0", "animal1"):
            assert g[a]["logits"].shape == (N_FRAMES, 3) and g[a]["thresholds"].shape == (3,)
    for a in (0, 1):
        path = predictions_path(project, keys[0], a)
        assert path.exists() and path.name == f"{keys[0]}_animal{a}_predictions.csv"
    result = evaluate_project(project, "val", "sequence", seq.name)
    assert result["streams"] == [f"{keys[2]}#animal0", f"{keys[2]}#animal1"]
    assert set(result["per_animal"]) == {"animal0", "animal1"}
    assert result["n_frames"] == 2 * N_FRAMES
    assert result["per_animal"]["animal1"]["n_frames"] == N_FRAMES
    assert len(animal_crop_boxes(project, keys[0], seq_cfg.augs)) == 2
    # out-of-fold decisions: one fold member per animal stream, named <key>#animal<i>
    oof_cfg = project.resolve_config(
        [
            *TINY,
            "sequence.sequence_length=16",
            "sequence.batch_size=4",
            "sequence.num_epochs=1",
            "sequence.steps_per_epoch=2",
            "sequence.decisions=out_of_fold",
        ]
    )
    run = train_sequence(project, oof_cfg, feature_run=feats.name, device="cpu", progress=False)
    assert sorted(np.load(run / "oof_logits.npz")) == sorted(
        f"{k}#animal{a}" for k in keys for a in (0, 1)
    )
