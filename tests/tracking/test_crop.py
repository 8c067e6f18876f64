"""The animal crop in the pipeline: training and inference read the same window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deg_core.config import ConfigError
from deg_core.data.clips import ClipDataset
from deg_core.infer.features import FeaturePredictor, infer_features, stacks
from deg_core.infer.sequence import infer_sequence
from deg_core.labels.labels import Labels
from deg_core.project.outputs import read_group
from deg_core.project.project import Project
from deg_core.tracking.crop import (
    CroppedReader,
    crop_boxes,
    open_frames,
    track_features,
    track_path,
)
from deg_core.train import common
from deg_core.train.features import train_features
from deg_core.train.flow import train_flow
from deg_core.train.sequence import train_sequence
from deg_core.video import open_video, write_video
from tests.pipeline import NO_AUGS, TINY

H, W, N = 72, 128, 48


def roaming_animal(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, H, W, 3) frames of a bright 14x10 blob crossing a dark noisy floor, and its
    (n, 2) centre x, y: an animal small in a wide arena."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(10, 30, size=(n, H, W, 3), dtype=np.uint8)
    xs = np.linspace(15, W - 15, n)
    ys = H / 2 + 18 * np.sin(np.linspace(0, 2 * np.pi, n))
    for t, (x, y) in enumerate(zip(xs, ys, strict=True)):
        xi, yi = round(x), round(y)
        frames[t, yi - 5 : yi + 5, xi - 7 : xi + 7] = 230
    return frames, np.stack([xs, ys], 1)


@pytest.fixture(scope="module")
def crop_project(tmp_path_factory) -> Project:
    root = tmp_path_factory.mktemp("crop")
    project = Project.create(root, "crop", ["left", "low"])
    for i, split in enumerate(["train", "val"]):
        frames, centre = roaming_animal(seed=i)
        path = root / f"r{i}.mp4"
        write_video(path, frames, fps=25)
        key = project.add_video(path, split=split)
        lab = Labels.empty(N, project.behaviors)
        lab.array[:, 0] = (centre[:, 0] < W / 2).astype(np.int8)
        lab.array[:, 1] = (centre[:, 1] > H / 2).astype(np.int8)
        project.save_labels(key, lab)
    return project


def test_crop_setting_is_validated(crop_project):
    with pytest.raises(ConfigError, match=r"augs\.crop"):
        crop_project.resolve_config(["augs.crop=mouse"])
    cfg = crop_project.resolve_config(["augs.crop=animal"])
    assert cfg.augs.crop == "animal" and cfg.sequence.track_features is False


def test_full_frame_has_no_boxes(crop_project):
    key = crop_project.video_keys()[0]
    assert crop_boxes(crop_project, key, crop_project.config.augs) is None
    assert isinstance(open_frames(crop_project.record(key).video), type(open_video(
        crop_project.record(key).video)))  # fmt: skip


def test_crop_window_follows_the_animal(crop_project):
    key = crop_project.video_keys()[0]
    augs = crop_project.resolve_config(["augs.crop=animal"]).augs
    boxes = crop_boxes(crop_project, key, augs)
    assert boxes is not None and boxes.shape == (N, 4)
    assert track_path(crop_project, key).is_file()  # cached beside the video
    with open_frames(crop_project.record(key).video, boxes) as reader:
        crops = reader.read_range(0, N, (32, 32))
    assert crops.shape == (N, 32, 32, 3)
    # the animal is in the middle of every crop, whatever its position in the frame
    centre = crops[:, 12:20, 12:20].mean(axis=(1, 2, 3))
    border = np.concatenate([crops[:, :3], crops[:, -3:]], axis=1).mean(axis=(1, 2, 3))
    assert (centre > 150).all() and (border < 60).all()
    # and the window is much smaller than the frame: more pixels on the animal
    assert (boxes[:, 2] - boxes[:, 0]).max() < W / 2


def test_random_and_sequential_reads_crop_identically(crop_project):
    key = crop_project.video_keys()[1]
    boxes = crop_boxes(crop_project, key, crop_project.resolve_config(["augs.crop=animal"]).augs)
    path = crop_project.record(key).video
    with open_frames(path, boxes) as reader:
        assert isinstance(reader, CroppedReader)
        seq = np.concatenate([c for _, c in reader.iter_chunks(chunk=7, size=(32, 32))])
    with open_frames(path, boxes) as reader:
        idx = np.array([40, 3, 17, 3, 46])
        rnd = reader.get_batch(idx, size=(32, 32))
    np.testing.assert_array_equal(rnd, seq[idx])


def test_training_clips_equal_inference_stacks(crop_project):
    """A training clip (random access, the dataset's frame cache) holds exactly the pixels
    feature inference stacks for the same centre frame (sequential decode)."""
    cfg = crop_project.resolve_config(["augs.crop=animal"])
    items = common.video_items(crop_project, crop_project.video_keys()[:1], True, cfg.augs)
    assert items[0].boxes is not None
    for cache_mb in (0.0, 64.0):
        ds = ClipDataset(items, np.array([[0, 20]]), 5, (32, 32), [0.0] * 3, [1.0] * 3, None,
                         cache_mb=cache_mb)  # fmt: skip
        clip = ds[0]["images"].view(5, 3, 32, 32)
        with open_frames(items[0].path, items[0].boxes) as reader:
            chunks = (c for _, c in reader.iter_chunks(chunk=16, size=(32, 32)))
            batches = list(stacks(chunks, N, 5, 64))
        stack = torch.from_numpy(batches[0][1][20]).permute(0, 3, 1, 2).float() / 255
        torch.testing.assert_close(clip, stack)


def test_pipeline_with_crop_and_track_features(crop_project):
    """flow -> features -> sequence with augs.crop=animal and sequence.track_features: the
    feature run remembers its crop, inference uses it, the sequence model sees the track."""
    cfg = crop_project.resolve_config(
        [
            *TINY,
            *NO_AUGS,
            "augs.resize=[32, 32]",
            "augs.crop=animal",
            "flow_generator.num_epochs=1",
            "flow_generator.steps_per_epoch=2",
            "feature_extractor.num_epochs=1",
            "feature_extractor.steps_per_epoch=2",
            "sequence.num_epochs=1",
            "sequence.steps_per_epoch=2",
            "sequence.sequence_length=16",
            "sequence.track_features=true",
        ]
    )
    train_flow(crop_project, cfg, device="cpu", progress=False)
    run = train_features(crop_project, cfg, device="cpu", progress=False)
    fm = FeaturePredictor.load(crop_project, run.name)
    assert fm.augs["crop"] == "animal"
    infer_features(crop_project, run.name, device="cpu", progress=False)
    key = crop_project.video_keys()[0]
    g = read_group(crop_project.record(key).outputs_path, run.name, ("spatial_features",))
    assert g["spatial_features"].shape == (N, 512)
    seq = train_sequence(crop_project, cfg, feature_run=run.name, device="cpu", progress=False)
    infer_sequence(crop_project, seq.name, device="cpu")
    n_track = track_features(crop_project, key).shape[1]
    from deg_core.project.runs import read_run_config

    assert read_run_config(seq)["num_features"] == 1024 + n_track
    p = read_group(crop_project.record(key).outputs_path, seq.name, ("P",))["P"]
    assert p.shape == (N, 2) and np.isfinite(p).all()
