"""Multi-animal tracking: identities through touching and crossing, on generated videos."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from deg_core.tracking.multi import (
    best_assignment,
    identity_switches,
    swap_candidates,
    switch_frames,
    track_animals,
)
from deg_core.tracking.track import compute_track
from deg_core.workflow.synthetic_multi import (
    MULTI_BEHAVIORS,
    MultiSpec,
    multi_truth,
    write_multi_video,
)

TWO = MultiSpec(n_animals=2, n_frames=200, size=96, seed=1)


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """A 2-animal video with touches and crossings, its truth and its tracks."""
    path = tmp_path_factory.mktemp("multi") / "two.mp4"
    truth = write_multi_video(path, TWO)
    return path, truth, track_animals(path, 2)


def _stretch_ends(mask: np.ndarray) -> np.ndarray:
    """Frames right after each True stretch of a (T,) bool mask."""
    return np.nonzero(mask[:-1] & ~mask[1:])[0] + 1


def test_generator_shapes_and_determinism():
    spec = MultiSpec(n_animals=3, n_frames=40, size=64, seed=3)
    a, b = multi_truth(spec), multi_truth(spec)
    assert a.centers.shape == (40, 3, 2) and a.labels.shape == (40, 3, len(MULTI_BEHAVIORS))
    assert a.contact.shape == (40,) and a.labels.sum(axis=2).max() <= 1
    np.testing.assert_array_equal(a.centers, b.centers)
    with pytest.raises(ValueError, match="n_animals"):
        MultiSpec(n_animals=4)


def test_identities_kept_through_crossings(two):
    _, truth, tracks = two
    assert truth.contact.any() and len(_stretch_ends(truth.contact)) >= 2  # the hard case
    assert tracks.center.shape == (TWO.n_frames, 2, 2) and tracks.names == ["animal0", "animal1"]
    assert tracks.source == "deg" and tracks.frame_size == (TWO.size, TWO.size)
    apart = tracks.center.copy()
    apart[tracks.merged] = np.nan  # inside a merge positions are estimates
    assert identity_switches(apart, truth.centers) == 0
    # identity order is the tracker's: compare under the one fixed matching
    order = best_assignment(
        np.nansum(np.linalg.norm(apart[:, :, None] - truth.centers[:, None], axis=3), axis=0)
    )
    err = np.linalg.norm(apart - truth.centers[:, order], axis=2)
    assert np.nanmedian(err) < 1.5 and np.nanmax(err) < 6


def test_merged_flagged_at_touching(two):
    _, truth, tracks = two
    assert tracks.merged[truth.contact].mean() > 0.9
    assert tracks.found()[tracks.merged].all()  # held identities still have positions


def test_swap_candidates_point_at_touching(two):
    _, truth, tracks = two
    cands = np.array(swap_candidates(tracks))
    assert len(cands)
    for t in _stretch_ends(truth.contact):  # every separation is flagged, give or take
        assert np.abs(cands - t).min() <= 3
    near_merge = [tracks.merged[max(0, t - 3) : t + 1].any() for t in cands]
    assert np.mean(near_merge) >= 0.8


def test_swap_candidates_cover_the_true_switches(two):
    """Every frame where the tracks' identities change against the truth has a candidate
    within 3 frames after it, or lies in a merged stretch whose end is a candidate (the
    tracker swaps only inside merges and re-assigns at the separation on generated videos)."""
    _, truth, tracks = two
    cands = set(swap_candidates(tracks))
    switches = switch_frames(tracks.center, truth.centers)
    assert len(switches)
    for s in switches:
        end = s + int(np.argmin(tracks.merged[s:])) if tracks.merged[s:].any() else s
        assert cands & set(range(s, s + 4)) or end in cands, (s, sorted(cands))


def test_an_animal_never_found_gives_no_jumps_and_no_warning():
    """swap_candidates with animal 1 never found (all NaN): animal 0's jump is a candidate,
    animal 1 contributes none, and numpy warns nothing (no all-NaN median)."""
    from deg_core.tracking.animals import AnimalTracks

    centre = np.full((12, 2, 2), np.nan, np.float32)
    centre[:, 0] = [[10.0, 10.0]] * 6 + [[40.0, 10.0]] * 6  # a 30 px jump at frame 6
    extent = np.where(np.isnan(centre), np.nan, 8.0).astype(np.float32)
    extent[3, 0, 1] = np.nan  # a half-known box counts by its known side
    tracks = AnimalTracks(centre, extent, ["animal0", "animal1"], "csv", (64, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert swap_candidates(tracks) == [6]
        nobody = AnimalTracks(
            np.full_like(centre, np.nan),
            np.full_like(extent, np.nan),
            ["animal0", "animal1"],
            "csv",
            (64, 64),
        )
        assert swap_candidates(nobody) == []


def test_one_animal_matches_single_tracker(tmp_path):
    path = tmp_path / "one.mp4"
    write_multi_video(path, MultiSpec(n_animals=1, n_frames=120, size=64, seed=2))
    multi = track_animals(path, 1)
    single = compute_track(path)
    assert multi.center.shape == (120, 1, 2) and not multi.merged.any()
    seen = multi.found()[:, 0]
    assert (seen == single.found).all() and seen.mean() > 0.8
    d = np.linalg.norm(multi.center[seen, 0] - single.center[seen], axis=1)
    assert np.median(d) < 1.0 and d.max() < 4.0  # the single tracker smooths over time


def test_bad_inputs(two):
    path, _, _ = two
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="n_animals"):
            track_animals(path, bad)  # type: ignore[arg-type]
    more = track_animals(path, 4)  # never 4 blobs: the 2 seen are tracked, the rest unknown
    assert more.center.shape == (TWO.n_frames, 4, 2)
    assert np.isnan(more.center[:, 2:]).all() and more.found()[:, :2].all()


def test_identity_switches_and_assignment():
    t = np.arange(10.0)
    true = np.stack([np.stack([t, 0 * t], 1), np.stack([t, 0 * t + 10], 1)], 1)  # (10, 2, 2)
    pred = true.copy()
    assert identity_switches(pred, true) == 0
    pred[6:] = pred[6:, ::-1]  # a swap from frame 6 on
    pred[3] = np.nan  # skipped
    assert identity_switches(pred, true) == 1
    with pytest.raises(ValueError, match="one shape"):
        identity_switches(pred[:, :1], true)
    cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0]])
    np.testing.assert_array_equal(best_assignment(cost), [1, 0])
    with pytest.raises(ValueError, match="rows <= columns"):
        best_assignment(cost.T)
