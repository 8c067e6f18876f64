"""Unsupervised tracking: the track follows a blob on generated videos, whatever its contrast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import deg_core.tracking.track as track_mod
from deg_core.tracking.track import Track, compute_track, crop_frames, load_track
from deg_core.video import open_video, write_video

H, W, T, R = 120, 200, 60, 15  # frame size, frames, blob radius (px)
ABSENT = slice(25, 35)  # frames without the animal in the "gap" video
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def truth() -> np.ndarray:
    """(T, 2) x, y of the blob: left to right, gently up and down."""
    t = np.arange(T)
    return np.stack([40 + 2.0 * t, 60 + 15 * np.sin(t / 15)], 1)


def blob_frames(bright: bool, absent: slice | None = None, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8: a disk on a noisy floor (bright on dark, or dark on light)."""
    rng = np.random.default_rng(seed)
    lo, hi, animal = (20, 50, 225) if bright else (195, 230, 40)
    base = rng.integers(lo, hi, size=(H, W, 1)).astype(np.int16)
    yy, xx = np.mgrid[:H, :W]
    frames = np.empty((T, H, W, 3), np.uint8)
    for t, (x, y) in enumerate(truth()):
        f = base + rng.integers(-4, 5, size=(H, W, 1))
        if absent is None or not absent.start <= t < absent.stop:
            f[(xx - x) ** 2 + (yy - y) ** 2 <= R**2] = animal
        frames[t] = np.clip(f, 0, 255).astype(np.uint8)
    return frames


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    folder = tmp_path_factory.mktemp("track")
    out = {}
    for name, bright, absent in [
        ("bright", True, None),
        ("dark", False, None),
        ("gap", True, ABSENT),
    ]:
        frames = blob_frames(bright, absent)
        path = write_video(folder / f"{name}.mp4", frames, fps=30, crf=12)
        out[name] = (path, frames)
    return out


@pytest.fixture(scope="module")
def tracks(videos) -> dict[str, Track]:
    return {name: compute_track(path) for name, (path, _) in videos.items()}


@pytest.mark.parametrize("name", ["bright", "dark"])
def test_track_follows_blob(tracks, name):
    tr = tracks[name]
    assert tr.frame_size == (H, W)
    assert tr.center.shape == (T, 2) and tr.center.dtype == np.float32
    assert tr.extent.shape == (T, 2) and tr.area.shape == (T,) and tr.motion.shape == (T,)
    assert tr.found.all()
    err = np.abs(tr.center - truth()).max()
    assert err < 3.0, err
    # extent ~ blob diameter, window ~ scale x diameter
    assert np.allclose(np.median(tr.extent, 0), 2 * R + 1, atol=4)
    assert abs(tr.window - 1.5 * (2 * R + 1)) <= 6, tr.window
    assert np.allclose(np.median(tr.area), np.pi * R**2 / (H * W), rtol=0.25)
    assert tr.motion[0] == 0 and 0 < np.median(tr.motion) < 1
    boxes = tr.boxes()
    assert boxes.shape == (T, 4) and boxes.dtype == np.int64
    assert (boxes[:, 2] - boxes[:, 0] == tr.window).all()
    assert (boxes[:, 3] - boxes[:, 1] == tr.window).all()
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= W).all() and (boxes[:, 3] <= H).all()


@pytest.mark.parametrize("name", ["bright", "dark"])
def test_crop_window_follows_animal(videos, tracks, name):
    _, frames = videos[name]
    tr = tracks[name]
    crops = crop_frames(frames, tr.boxes(), None).astype(np.float32)
    n = tr.window
    assert crops.shape == (T, n, n, 3)
    q = n // 4
    centre = crops[:, n // 2 - q // 2 : n // 2 + q // 2, n // 2 - q // 2 : n // 2 + q // 2]
    border = np.concatenate([crops[:, :2].reshape(T, -1), crops[:, -2:].reshape(T, -1)], 1)
    contrast = centre.reshape(T, -1).mean(1) - border.mean(1)
    if name == "dark":
        contrast = -contrast
    assert (contrast > 100).all(), contrast.min()


def test_absent_frames_interpolated(tracks):
    tr = tracks["gap"]
    expect = np.ones(T, bool)
    expect[ABSENT] = False
    assert np.array_equal(tr.found, expect)
    assert (tr.area[ABSENT] == 0).all() and (tr.motion[ABSENT] == 0).all()
    # the blob moves on a smooth path: interpolating across the gap stays close to it
    assert np.abs(tr.center - truth())[:, 0].max() < 4
    feats = tr.features()
    assert feats.shape == (T, len(Track.feature_names())) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert (feats[:, Track.feature_names().index("found")] == expect).all()


def test_features_scale_free(tracks):
    tr = tracks["bright"]
    names = Track.feature_names()
    f = tr.features()
    col = {k: f[:, i] for i, k in enumerate(names)}
    assert np.allclose(col["x"], tr.center[:, 0] / W)
    # 2 px/frame along x; size ~ 31 px
    assert np.median(col["vx"]) == pytest.approx(2.0 / (2 * R + 1), rel=0.2)
    assert np.median(col["w"]) == pytest.approx(1.0, abs=0.1)
    assert np.abs(col["aspect"]).max() < 0.3 and np.abs(col["log_area"]).max() < 0.5
    assert np.isfinite(f).all()


def test_nothing_found_defaults(tmp_path):
    frames = np.full((12, 64, 96, 3), 90, np.uint8)
    path = write_video(tmp_path / "empty.mp4", frames, fps=25)
    tr = compute_track(path)
    assert not tr.found.any()
    assert np.allclose(tr.center, [(96 - 1) / 2, (64 - 1) / 2])
    assert np.allclose(tr.extent, [96, 64])
    assert tr.window == 96  # the full frame, capped at its longer side
    b = tr.boxes()
    assert (b[:, 0] == 0).all() and (b[:, 1] == -16).all() and (b[:, 3] - b[:, 1] == 96).all()
    assert np.isfinite(tr.features()).all()


def test_crop_frames_edge_padding_and_batch_invariance():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(5, 30, 40, 3), dtype=np.uint8)
    boxes = np.array(
        [[-10, -5, 14, 19], [30, 20, 54, 44], [8, 3, 32, 27], [-30, -30, -6, -6], [0, 0, 24, 24]]
    )
    crops = crop_frames(frames, boxes, None)
    assert crops.shape == (5, 24, 24, 3) and crops.dtype == np.uint8
    pad = 40
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        padded = np.pad(frames[i], ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        assert np.array_equal(crops[i], padded[y0 + pad : y1 + pad, x0 + pad : x1 + pad])
    resized = crop_frames(frames, boxes, (16, 12))
    assert resized.shape == (5, 16, 12, 3)
    one_by_one = np.concatenate(
        [crop_frames(frames[i : i + 1], boxes[i : i + 1], (16, 12)) for i in range(5)]
    )
    assert np.array_equal(resized, one_by_one)
    # boxes of different sizes are fine once resized to one size
    mixed = boxes.copy()
    mixed[0] = [0, 0, 10, 20]
    out = crop_frames(frames, mixed, (16, 12))
    assert np.array_equal(out[1:], resized[1:])
    with pytest.raises(ValueError, match="differ"):
        crop_frames(frames, mixed, None)


def test_load_track_caches(videos, tracks, tmp_path, monkeypatch):
    path, _ = videos["bright"]
    cache = tmp_path / "sub" / "bright_track.npz"
    calls = []

    def counting(video_path, *, scale=1.5):
        assert Path(video_path) == path
        calls.append(scale)
        return tracks["bright"]  # computed once by the fixture: keep this test fast

    monkeypatch.setattr(track_mod, "compute_track", counting)
    first = load_track(path, cache)
    assert calls == [1.5] and cache.exists()
    assert cache.stat().st_mode & 0o777 == 0o644 & ~_umask()

    def boom(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(track_mod, "compute_track", boom)
    again = load_track(path, cache)
    for field in ("center", "extent", "area", "motion", "found"):
        assert np.array_equal(getattr(first, field), getattr(again, field))
    assert (again.frame_size, again.window) == (first.frame_size, first.window)
    assert isinstance(again.window, int) and isinstance(again.frame_size[0], int)

    monkeypatch.setattr(track_mod, "compute_track", counting)
    cache.write_bytes(b"not an npz")
    assert load_track(path, cache).window == first.window
    assert len(calls) == 2
    load_track(path, cache)
    assert len(calls) == 2  # the rewritten cache is used again
    monkeypatch.setattr(track_mod, "TRACK_VERSION", track_mod.TRACK_VERSION + 1)
    load_track(path, cache)
    assert len(calls) == 3
    wider = load_track(path, cache, scale=2.0)
    assert len(calls) == 3  # another scale reuses the cache: only the window changes
    assert wider.window > first.window
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]  # no temp files left


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    ("name", "bright"),
    [("ratclips/ratclips_cage1.mp4", True), ("openfield_mouse_640x480_30fps.mp4", False)],
)
def test_real_video_sane(tmp_path, name, bright):
    src = SHARED / name
    if not src.exists():
        pytest.skip(f"{src} not available")
    # Frames spread over the whole video (in a short stretch the animal may sit still and
    # become background), each held for `rep` frames so that temporal smoothing leaves
    # the middle of each run at that frame's own position.
    n, rep = 12, 8
    with open_video(src) as reader:
        frames = reader.get_batch(np.linspace(0, len(reader) - 1, n).round().astype(int))
    path = write_video(tmp_path / "clip.mp4", np.repeat(frames, rep, 0), fps=25, crf=18)
    tr = compute_track(path, sample=n)
    h, w = frames.shape[1:3]
    assert tr.found.all()
    assert 64 <= tr.window <= max(h, w)
    assert np.isfinite(tr.features()).all()
    # the window holds the animal: most of the white rat's / black mouse's pixels
    grey = frames.mean(axis=3)
    animal = grey > 150 if bright else grey < 40
    inside = []
    for i, (x0, y0, x1, y1) in enumerate(tr.boxes()[rep // 2 :: rep]):
        box = animal[i, max(y0, 0) : y1, max(x0, 0) : x1]
        inside.append(box.sum() / animal[i].sum())
    assert min(inside) > 0.75, inside


def wedge_frames(mirror: bool = False, flip: bool = False, n: int = 16) -> np.ndarray:
    """(n, H, W, 3): a bright wedge (wide top, narrow bottom, leaning right) on a dark
    floor; ``mirror`` left-right, ``flip`` upside down. A posture, seen three ways."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:H, :W]
    rows = (yy - 30) / 60.0  # 0 at the top of the wedge, 1 at its bottom
    half = 25 * (1 - rows)
    body = (rows >= 0) & (rows <= 1) & (np.abs(xx - (90 + 20 * rows)) <= half + 2)
    if flip:
        body = body[::-1]
    if mirror:
        body = body[:, ::-1]
    frames = rng.integers(20, 40, size=(n, H, W, 3)).astype(np.uint8)
    for t in range(n):  # it moves, or the background model would absorb it
        frames[t, np.roll(body, 6 * t - 3 * n, axis=1)] = 220
    return frames


def test_shape_grids_describe_posture_whatever_the_facing(tmp_path):
    """The silhouette grid features are the same for a posture and its mirror image, and
    differ for another posture (upside down)."""
    grid = [i for i, n in enumerate(Track.feature_names()) if n.startswith("body_")]
    assert len(grid) == 2 * track_mod.GRID * track_mod.GRID // 2
    feats = {}
    for name, kw in {"a": {}, "mirror": {"mirror": True}, "flip": {"flip": True}}.items():
        path = write_video(tmp_path / f"{name}.mp4", wedge_frames(**kw), fps=30, crf=12)
        tr = compute_track(path, sample=16)
        assert tr.shape is not None and tr.shape.shape == (16, 2, track_mod.GRID, track_mod.GRID)
        feats[name] = tr.features()[:, grid].mean(axis=0)
    np.testing.assert_allclose(feats["a"], feats["mirror"], atol=0.08)
    assert np.abs(feats["a"] - feats["flip"]).max() > 0.3
    # the wedge's top rows are fuller than its bottom rows
    body = compute_track(tmp_path / "a.mp4", sample=16).shape[:, 0].mean(axis=0)
    assert body[0].mean() > body[-1].mean() + 0.2
