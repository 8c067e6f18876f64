"""Synthetic behaviour videos: determinism, bouts, imbalance, the motion-only pair, projects."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from deg_core.labels.bouts import bouts_from_vector
from deg_core.labels.labels import read_labels
from deg_core.video import open_video
from deg_core.workflow.synthetic import (
    BEHAVIORS,
    POSE_FIELDS,
    SyntheticSpec,
    SyntheticTrace,
    default_splits,
    make_synthetic_project,
    render_arena,
    synthetic_clip,
    synthetic_trace,
    write_synthetic_video,
)

GROOM = BEHAVIORS.index("groom")
SETTLED = 8  # frames after a state change before the pose has relaxed (0.6**8 < 2 %)


def _settled(state: np.ndarray) -> np.ndarray:
    """(T,) bool: the state has not changed during the last SETTLED frames."""
    ok = np.zeros(len(state), bool)
    for t in range(SETTLED, len(state)):
        ok[t] = (state[t - SETTLED : t + 1] == state[t]).all()
    return ok


def _near(shape: tuple[int, ...], x: float, y: float, radius: float) -> np.ndarray:
    """(H, W) bool: pixels within ``radius`` of (x, y)."""
    yy, xx = np.mgrid[0 : shape[1], 0 : shape[2]]
    return (xx - x) ** 2 + (yy - y) ** 2 < radius**2


def _animal_diff(frames: np.ndarray, trace: SyntheticTrace, radius: float) -> np.ndarray:
    """(T,) mean |frame t - frame t-1| near the animal (0 for frame 0)."""
    f = frames.astype(np.float64)
    out = np.zeros(len(f))
    for t in range(1, len(f)):
        near = _near(f.shape, trace.pose("x")[t], trace.pose("y")[t], radius)
        out[t] = np.abs(f[t] - f[t - 1])[near].mean()
    return out


# ---------------------------------------------------------------- basics


def test_deterministic_and_seeded():
    spec = SyntheticSpec(n_frames=60)
    f1, l1 = synthetic_clip(spec)
    f2, l2 = synthetic_clip(spec)
    assert np.array_equal(f1, f2) and np.array_equal(l1, l2)
    f3, _ = synthetic_clip(dataclasses.replace(spec, seed=1))
    assert not np.array_equal(f1, f3)
    assert not np.array_equal(
        synthetic_trace(spec).poses, synthetic_trace(dataclasses.replace(spec, seed=1)).poses
    )


def test_shapes_and_values():
    spec = SyntheticSpec(n_frames=50, size=96, behaviors=("groom", "walk"))  # rare: unused
    frames, labels = synthetic_clip(spec)
    assert frames.shape == (50, 96, 96, 3) and frames.dtype == np.uint8
    assert labels.shape == (50, 2) and labels.dtype == np.int8
    assert set(np.unique(labels)) <= {0, 1}
    assert labels.sum(1).max() <= 1  # mutually exclusive bouts
    trace = synthetic_trace(spec)
    assert trace.poses.shape == (50, len(POSE_FIELDS))
    assert np.array_equal(trace.labels, labels)
    assert render_arena(spec).shape == (96, 96, 3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"behaviors": ("walk", "fly")},
        {"behaviors": ("walk", "walk")},
        {"behaviors": ()},
        {"size": 63},
        {"bout_frames": (1, 10)},
        {"rare": "fly"},
        {"rare_rate": 1.0},
    ],
)
def test_spec_validation(kwargs):
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        SyntheticSpec(**kwargs)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_every_behaviour_in_bouts(seed):
    labels = synthetic_trace(SyntheticSpec(seed=seed)).labels
    for k, name in enumerate(BEHAVIORS):
        bouts = bouts_from_vector(labels[:, k])
        assert bouts, f"{name} missing for seed {seed}"
        complete = [b - a for a, b in bouts if b < len(labels)]
        assert min(complete, default=10) >= 10  # bouts, not flickering frames
    assert (labels.sum(1) == 0).sum() > 0.2 * len(labels)  # background between bouts


def test_rare_behaviour_is_rarer():
    totals = sum(synthetic_trace(SyntheticSpec(seed=s)).labels.sum(0) for s in range(8))
    rare = BEHAVIORS.index("rear")
    others = np.delete(totals, rare)
    assert totals[rare] < 0.6 * others.min(), totals


# ---------------------------------------------------------------- groom vs background


def test_groom_and_rest_share_poses():
    """Pose level: settled groom and rest frames have the same pose distribution."""
    for seed in range(3):
        trace = synthetic_trace(SyntheticSpec(n_frames=3000, seed=seed))
        ok = _settled(trace.state)
        groom, rest = ok & (trace.state == GROOM), ok & (trace.state == -1)
        for name in ("length", "width", "head", "bend", "stride", "look", "bright"):
            v = trace.pose(name)
            assert np.ptp(np.r_[v[groom], v[rest]]) < 0.03, name  # both neutral
        # the only free pose variable, the head phase: same (uniform) distribution
        grid = np.linspace(0, 2 * np.pi, 50)
        cdf_g = np.searchsorted(np.sort(trace.pose("phase")[groom]), grid) / groom.sum()
        cdf_r = np.searchsorted(np.sort(trace.pose("phase")[rest]), grid) / rest.sum()
        assert np.abs(cdf_g - cdf_r).max() < 0.2  # Kolmogorov-Smirnov distance
        # and both stand still: x, y, heading do not change within settled frames
        for name in ("x", "y", "heading"):
            step = np.abs(np.diff(trace.pose(name)))[(groom | rest)[1:] & (groom | rest)[:-1]]
            assert step.max() < 1e-9, name


def test_groom_separable_only_by_motion():
    """Pixel level: each settled rest frame just before a groom bout (same spot) has a
    near-twin among that bout's frames, so no single-frame cue tells them apart; but
    groom's frame-to-frame differences are several times rest's."""
    twin_gaps, groom_steps, rest_steps = [], [], []
    for seed in range(4):
        spec = SyntheticSpec(seed=seed, noise=0.0)
        trace = synthetic_trace(spec)
        frames, _ = synthetic_clip(spec)
        f, radius = frames.astype(np.float64), 0.24 * spec.size
        diff = _animal_diff(frames, trace, radius)
        ok = _settled(trace.state)
        groom_steps += list(diff[ok & (trace.state == GROOM)])
        rest_steps += list(diff[ok & (trace.state == -1)])
        for start, stop in bouts_from_vector(trace.labels[:, GROOM]):
            for t in (t for t in range(start - 3, start) if ok[t]):
                near = _near(f.shape, trace.pose("x")[t], trace.pose("y")[t], radius)
                twin_gaps.append(min(np.abs(f[g] - f[t])[near].mean() for g in range(start, stop)))
    assert len(twin_gaps) >= 8 and len(groom_steps) >= 100
    # a rest frame is nearer its groom twin than groom frames are to their neighbours
    assert np.median(twin_gaps) < 0.3 * np.median(groom_steps), (twin_gaps, groom_steps)
    # motion separates them: the quietest groom frames move more than most rest frames
    assert np.percentile(groom_steps, 10) > 3 * np.percentile(rest_steps, 50)
    assert np.percentile(groom_steps, 10) > np.percentile(rest_steps, 90)


def test_written_video_keeps_the_motion_cue(tmp_path):
    """After camera noise and H.264, groom bouts still move more than background stretches."""
    spec = SyntheticSpec(seed=5, size=64)
    path = tmp_path / "clip.mp4"
    labels = write_synthetic_video(path, spec)
    trace = synthetic_trace(spec)
    assert np.array_equal(labels, trace.labels)
    with open_video(path) as reader:
        assert len(reader) == spec.n_frames
        frames = reader.read_range(0, spec.n_frames)
    diff = _animal_diff(frames, trace, 0.24 * spec.size)
    ok = _settled(trace.state)

    def medians(stretches: list[tuple[int, int]]) -> list[float]:  # of well-settled stretches
        return [float(np.median(diff[a:b][ok[a:b]])) for a, b in stretches if ok[a:b].sum() >= 5]

    groom = medians(bouts_from_vector(labels[:, GROOM]))
    rest = medians(bouts_from_vector((trace.state == -1).astype(np.int8)))
    assert groom and rest and min(groom) > 2 * max(rest), (groom, rest)


# ---------------------------------------------------------------- projects


def test_default_splits():
    assert default_splits(6) == ("train",) * 4 + ("val", "test")
    assert default_splits(2) == ("train", "val")
    assert default_splits(3) == ("train", "train", "val")


def test_make_synthetic_project(tmp_path):
    spec = SyntheticSpec(n_frames=80, behaviors=("groom", "rear"))
    splits = ("train", "val", "test")
    project = make_synthetic_project(tmp_path, "syn", 3, spec, splits, labeled_fraction=0.6)
    assert project.behaviors == ["groom", "rear"] and not project.exclusive
    keys = project.video_keys()
    assert keys == ["syn_00", "syn_01", "syn_02"]
    assert project.splits().assignment == dict(zip(keys, splits, strict=True))
    for key in keys:
        assert project.record(key).frames == 80
        labels = project.labels(key).array
        assert labels.shape == (80, 2)
        unlabeled = (labels == -1).all(1)
        assert ((labels == -1).any(1) == unlabeled).all()  # whole frames are unlabeled
        assert unlabeled.sum() == 80 - round(0.6 * 80)
        assert 1 <= len(bouts_from_vector(unlabeled.astype(int))) <= 2  # contiguous stretches
        truth = read_labels(tmp_path / "_synthetic_videos" / f"{key}_truth.csv", ["groom", "rear"])
        assert np.array_equal(labels[~unlabeled], truth.array[~unlabeled])
    # each video has its own seed
    a, b = (project.labels(k).array for k in keys[:2])
    assert not np.array_equal(a, b) or a.sum() == 0


def test_make_synthetic_project_full_and_empty_labels(tmp_path):
    spec = SyntheticSpec(n_frames=40, behaviors=("walk",), rare=None)
    full = make_synthetic_project(tmp_path, "full", 2, spec, exclusive=True)
    assert full.exclusive
    assert all((full.labels(k).array >= 0).all() for k in full.video_keys())
    none = make_synthetic_project(tmp_path, "none", 2, spec, labeled_fraction=0.0)
    for key in none.video_keys():
        assert not none.record(key).labels_path.exists()


@pytest.mark.parametrize(
    ("n", "splits", "fraction"),
    [(1, None, 1.0), (2, ("train", "train"), 1.0), (2, ("train", "dev"), 1.0), (2, None, 1.5)],
)
def test_make_synthetic_project_refuses(tmp_path, n, splits, fraction):
    with pytest.raises(ValueError):  # noqa: PT011
        make_synthetic_project(tmp_path, "x", n, SyntheticSpec(n_frames=20), splits, fraction)
    assert list(tmp_path.iterdir()) == []
