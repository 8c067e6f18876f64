"""Per-animal track features with social evidence (sequence.track_features on N > 1 videos).

Each animal's own track (as one animal's) plus its relation to the nearest other animal
(distance, approach, bearing; sequence.social_features); one-animal projects unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest

from deg_core.tracking.animals import AnimalTracks
from deg_core.tracking.social import (
    OWN_NAMES,
    SOCIAL_NAMES,
    animal_feature_names,
    animal_features,
    as_tracks,
)
from tests.animal_fixtures import N_FRAMES, synthetic_pair_project
from tests.pipeline import NO_AUGS, TINY

T = 40


def _col(f: np.ndarray, name: str) -> np.ndarray:
    return f[:, animal_feature_names(True).index(name)]


def _pair(t: int = T) -> AnimalTracks:
    """Animal 0 walks right along y=50 from x=10 to x=50; animal 1 stands at (90, 50),
    10 px boxes."""
    c = np.zeros((t, 2, 2), np.float32)
    c[:, 0, 0] = np.linspace(10, 50, t)
    c[:, 0, 1] = 50
    c[:, 1] = (90, 50)
    e = np.full((t, 2, 2), 10.0, np.float32)
    return AnimalTracks(c, e, ["a", "b"], "csv", (100, 120))


def test_shapes_and_names():
    tracks = _pair()
    for social in (True, False):
        names = animal_feature_names(social)
        assert names[:2] == ["x", "y"]
        assert len(names) == len(OWN_NAMES) + (len(SOCIAL_NAMES) if social else 0)
        for a in (0, 1):
            f = animal_features(tracks, a, social, fps=1.0)
            assert f.shape == (T, len(names)) and f.dtype == np.float32
            assert np.isfinite(f).all()
    # three animals: the same columns (the nearest other one)
    c = np.concatenate([tracks.center, np.full((T, 1, 2), 5.0, np.float32)], axis=1)
    e = np.full((T, 3, 2), 10.0, np.float32)
    three = AnimalTracks(c, e, ["a", "b", "c"], "csv", (100, 120))
    assert animal_features(three, 2, fps=1.0).shape == (T, len(animal_feature_names()))
    with pytest.raises(ValueError, match="animal must be"):
        animal_features(tracks, 2)


def test_social_values_on_a_hand_made_pair():
    """Distance in body sizes, approach > 0 when closing (animal 0's doing, not 1's), the
    other straight ahead of the walker (bearing cos 1, sin 0)."""
    tracks = _pair()
    f0 = animal_features(tracks, 0, fps=1.0)  # fps 1: no moving average, median 5 only
    f1 = animal_features(tracks, 1, fps=1.0)
    x0 = np.linspace(10, 50, T)
    np.testing.assert_allclose(_col(f0, "near_distance"), (90 - x0) / 10, atol=1e-4)
    np.testing.assert_allclose(_col(f1, "near_distance"), _col(f0, "near_distance"))
    step = 40 / (T - 1) / 10  # body sizes per frame
    np.testing.assert_allclose(_col(f0, "approach")[1:], step, atol=1e-4)
    np.testing.assert_allclose(_col(f0, "own_approach")[1:], step, atol=1e-4)
    np.testing.assert_allclose(_col(f0, "other_approach"), 0, atol=1e-6)
    np.testing.assert_allclose(_col(f1, "own_approach"), 0, atol=1e-6)
    np.testing.assert_allclose(_col(f1, "other_approach")[1:], step, atol=1e-4)
    np.testing.assert_allclose(_col(f0, "bearing_cos"), 1, atol=1e-6)
    np.testing.assert_allclose(_col(f0, "bearing_sin"), 0, atol=1e-6)
    np.testing.assert_allclose(_col(f1, "other_bearing_cos"), 1, atol=1e-6)  # walks at 1
    np.testing.assert_allclose(_col(f1, "bearing_cos"), 0, atol=1e-6)  # 1 never moves
    # walking away: approach < 0; the other behind: bearing cos -1
    away = AnimalTracks(tracks.center[::-1].copy(), tracks.extent, ["a", "b"], "csv", (100, 120))
    fa = animal_features(away, 0, fps=1.0)
    assert (_col(fa, "approach")[1:] < 0).all() and np.allclose(_col(fa, "bearing_cos"), -1)
    # the other to the walker's side: bearing sin +-1, cos 0
    side = tracks.center.copy()
    side[:, 1] = side[:, 0] + np.array([0, 30], np.float32)  # 30 px below, moving along
    fs = animal_features(AnimalTracks(side, tracks.extent, ["a", "b"], "csv", (100, 120)), 0)
    np.testing.assert_allclose(np.abs(_col(fs, "bearing_sin")), 1, atol=1e-5)
    np.testing.assert_allclose(_col(fs, "bearing_cos"), 0, atol=1e-5)
    np.testing.assert_allclose(_col(fs, "approach"), 0, atol=1e-5)
    # social off: the own columns unchanged
    np.testing.assert_array_equal(animal_features(tracks, 0, False, 1.0), f0[:, : len(OWN_NAMES)])


def test_unknown_positions_are_held_and_interpolated():
    """NaN centres and boxes: every value finite, distances interpolated across the gap,
    found 0 there; an animal never found still gives finite values."""
    tracks = _pair()
    c, e = tracks.center.copy(), tracks.extent.copy()
    c[10:20, 0] = np.nan
    e[10:20, 0] = np.nan
    c[:5, 1] = np.nan
    f = animal_features(AnimalTracks(c, e, ["a", "b"], "csv", (100, 120)), 0, fps=1.0)
    assert np.isfinite(f).all()
    assert (_col(f, "found")[10:20] == 0).all() and (_col(f, "found")[20:] == 1).all()
    want = (90 - np.linspace(10, 50, T)) / 10
    np.testing.assert_allclose(_col(f, "near_distance"), want, atol=0.05)
    c[:, 1] = np.nan
    e[:, 1] = np.nan
    lost = AnimalTracks(c, e, ["a", "b"], "csv", (100, 120))
    for a in (0, 1):
        assert np.isfinite(animal_features(lost, a)).all()
    assert np.isfinite(
        animal_features(AnimalTracks(c[:1], e[:1], ["a", "b"], "csv", (9, 9)), 0)
    ).all()


def test_one_animal_as_tracks_has_zero_social_columns(tiny_project):
    from deg_core.tracking.crop import video_track

    track = video_track(tiny_project, tiny_project.video_keys()[0])
    f = animal_features(as_tracks(track), 0)
    assert f.shape == (len(track.center), len(animal_feature_names()))
    assert (f[:, len(OWN_NAMES) :] == 0).all()


@pytest.fixture(scope="module")
def with_features(tiny_project, feature_run):
    from deg_core.infer.features import infer_features

    infer_features(tiny_project, feature_run.name, device="cpu", progress=False)
    return feature_run


def test_one_animal_inputs_unchanged(tiny_project, with_features):
    """A one-animal project: the track columns are exactly crop.track_features (as before),
    whatever sequence.social_features says."""
    from deg_core.data.sequences import features_or_explain
    from deg_core.tracking.crop import track_features

    keys = tiny_project.video_keys()
    plain = features_or_explain(tiny_project, keys, with_features.name)
    for social in (True, False):
        got = features_or_explain(tiny_project, keys, with_features.name, track=True, social=social)
        for key in keys:
            want = np.concatenate([plain[key], track_features(tiny_project, key)], axis=1)
            np.testing.assert_array_equal(got[key], want)


@pytest.fixture(scope="module")
def pair_features(tmp_path_factory):
    """A tiny 2-animal project with a (minimal) feature run."""
    from deg_core.infer.features import infer_features
    from deg_core.train.features import train_features
    from deg_core.train.flow import train_flow

    project, _ = synthetic_pair_project(tmp_path_factory.mktemp("social"))
    base = [*TINY, *NO_AUGS]
    cfg = project.resolve_config(
        [*base, "flow_generator.num_epochs=1", "flow_generator.steps_per_epoch=1"]
    )
    flow = train_flow(project, cfg, device="cpu", progress=False)
    cfg = project.resolve_config(
        [*base, "feature_extractor.num_epochs=1", "feature_extractor.steps_per_epoch=1"]
    )
    feats = train_features(project, cfg, flow_run=flow.name, device="cpu", progress=False)
    infer_features(project, feats.name, device="cpu", progress=False)
    return project, feats.name


@pytest.mark.filterwarnings("ignore:behaviour 'turn' has no positive frames")
def test_per_animal_inputs(pair_features):
    from deg_core.data.sequences import features_or_explain
    from deg_core.tracking.crop import animal_track_features

    project, run = pair_features
    keys = project.video_keys()
    plain = features_or_explain(project, keys, run)
    on = features_or_explain(project, keys, run, track=True)
    off = features_or_explain(project, keys, run, track=True, social=False)
    nopos = features_or_explain(project, keys, run, track=True, track_position=False)
    d = plain[f"{keys[0]}#animal0"].shape[1]
    n_own, n_all = len(OWN_NAMES), len(animal_feature_names())
    for key in keys:
        tf = animal_track_features(project, key)
        for a in (0, 1):
            name = f"{key}#animal{a}"
            assert on[name].shape == (N_FRAMES, d + n_all)
            assert off[name].shape == (N_FRAMES, d + n_own)
            assert nopos[name].shape == (N_FRAMES, d + n_all - 2)
            np.testing.assert_array_equal(on[name][:, d:], tf[a])
            np.testing.assert_array_equal(off[name][:, d:], tf[a][:, :n_own])
            assert np.isfinite(on[name]).all()
        # the two animals' social views differ (each its own approach and bearing)
        assert not np.array_equal(tf[0][:, n_own:], tf[1][:, n_own:])


@pytest.mark.filterwarnings("ignore:behaviour 'turn' has no positive frames")
def test_cpu_preset_trains_a_two_animal_sequence(pair_features):
    """The cpu preset's sequence settings (track features on) on a 2-animal project: the
    sequence stage trains and predicts (it used to stop), with and without social features."""
    from deg_core.infer.sequence import SequencePredictor, infer_sequence
    from deg_core.presets import preset_overrides
    from deg_core.train.sequence import train_sequence

    project, run = pair_features
    cpu = preset_overrides("cpu")["sequence"]
    assert cpu["track_features"] is True
    for social in ("true", "false"):
        cfg = project.resolve_config(
            [
                *TINY,
                *(f"sequence.{k}={v}" for k, v in cpu.items()),
                "sequence.sequence_length=16",
                "sequence.num_epochs=1",
                "sequence.steps_per_epoch=2",
                "sequence.batch_size=4",
                f"sequence.social_features={social}",
            ]
        )
        assert cfg.sequence.track_features
        seq = train_sequence(project, cfg, feature_run=run, device="cpu", progress=False)
        sm = SequencePredictor.load(project, seq.name)
        assert sm.track_features and sm.social_features is (social == "true")
        keys = project.video_keys()
        assert infer_sequence(project, seq.name, device="cpu") == dict.fromkeys(keys, "done")
