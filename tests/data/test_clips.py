"""Clip datasets: centre/edge indexing, identical augmentation across frames, batch order."""

from __future__ import annotations

import pickle

import numpy as np
import torch

from deg_core.config import AugsSection
from deg_core.data.clips import (
    ClipAugment,
    ClipDataset,
    EpochBatchSampler,
    VideoItem,
    clip_indices,
    denormalize,
    labelled_frames,
)


def test_clip_indices_centre_and_edges():
    np.testing.assert_array_equal(clip_indices(5, 5, 10), [3, 4, 5, 6, 7])
    np.testing.assert_array_equal(clip_indices(0, 5, 10), [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(clip_indices(9, 5, 10), [7, 8, 9, 9, 9])


def test_augmentation_is_identical_across_a_clips_frames():
    torch.manual_seed(0)
    aug = ClipAugment(AugsSection(LR=0.5, UD=0.5, degrees=20, grayscale=0.5))
    frame = torch.rand(1, 3, 32, 32)
    for _ in range(20):
        out = aug(frame.repeat(5, 1, 1, 1))
        assert (out - out[:1]).abs().max() == 0  # one draw for the whole clip
    # different frames get the same flip: a left-right ramp stays a ramp in every frame
    ramp = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(4, 3, 32, 32).clone()
    ramp[1:] *= 0.5
    flipped = ClipAugment(
        AugsSection(LR=1.0, degrees=0, brightness=0, contrast=0, saturation=0, hue=0, grayscale=0)
    )(ramp)
    assert (flipped[:, :, :, 0] > flipped[:, :, :, -1]).all()


def test_random_resize_shifts_and_scales_the_whole_clip_alike():
    torch.manual_seed(0)
    off = dict(LR=0.0, degrees=0, brightness=0, contrast=0, saturation=0, hue=0, grayscale=0)
    frame = torch.zeros(1, 3, 32, 32)
    frame[..., 12:20, 12:20] = 1.0  # a square in the middle
    aug = ClipAugment(AugsSection(**off, random_resize=True))
    moved = 0
    for _ in range(20):
        out = aug(frame.repeat(4, 1, 1, 1))
        assert (out - out[:1]).abs().max() == 0  # one draw for the whole clip
        moved += int(not torch.equal(out[0], frame[0]))
    assert moved >= 15  # it does jitter
    assert ClipAugment(AugsSection(**off)).transform is None  # off by default


def test_dataset_stacks_frames_and_normalises(make_video):
    path = make_video("a.mp4", n=20, h=32, w=32)
    labels = np.full((20, 2), -1, np.int8)
    labels[3:6] = [1, 0]
    item = VideoItem(path, 20, labels)
    samples = labelled_frames([item])
    np.testing.assert_array_equal(samples[:, 1], [3, 4, 5])
    ds = ClipDataset([item], samples, 3, (32, 32), [0.5] * 3, [0.25] * 3)
    out = ds[0]
    assert out["images"].shape == (9, 32, 32)
    assert out["labels"].tolist() == [1.0, 0.0]
    from deg_core.video import open_video

    with open_video(path) as r:
        raw = torch.from_numpy(r.get_batch([2, 3, 4])).permute(0, 3, 1, 2).float() / 255
    back = denormalize(out["images"][None], torch.tensor([0.5] * 3), torch.tensor([0.25] * 3))
    torch.testing.assert_close(back[0], raw.reshape(9, 32, 32))


def test_epoch_batches_are_seeded_and_resumable():
    full = list(EpochBatchSampler(100, 4, 6, seed=1, epoch=2))
    assert full == list(EpochBatchSampler(100, 4, 6, seed=1, epoch=2))
    assert full != list(EpochBatchSampler(100, 4, 6, seed=1, epoch=3))
    assert list(EpochBatchSampler(100, 4, 6, seed=1, epoch=2, start=4)) == full[4:]


def test_worker_processes_load_clips(make_video):
    from deg_core.train.common import epoch_loader

    path = make_video("w.mp4", n=12, h=32, w=32)
    ds = ClipDataset(
        [VideoItem(path, 12)], np.array([[0, 3], [0, 8]]), 3, (32, 32), [0.5] * 3, [0.25] * 3
    )
    (batch,) = list(epoch_loader(ds, batch=2, steps=1, seed=0, workers=1)(0, 0))
    assert batch["images"].shape == (2, 9, 32, 32)


def test_frame_cache_serves_the_same_clips_and_respects_its_budget(make_video):
    a, b = make_video("a.mp4", n=30, h=48, w=64, seed=1), make_video("b.mp4", n=30, seed=2)
    items = [VideoItem(a, 30), VideoItem(b, 30)]
    samples = np.array([[0, 0], [0, 17], [1, 29], [1, 5]])
    args = (items, samples, 5, (32, 48), [0.5] * 3, [0.25] * 3)
    plain = ClipDataset(*args)
    one_video = 30 * 32 * 48 * 3 / 2**20  # MB of one video's resized frames
    cached = ClipDataset(*args, cache_mb=1.5 * one_video)  # room for one video only
    for i in range(len(samples)):
        torch.testing.assert_close(cached[i]["images"], plain[i]["images"], rtol=0, atol=0)
    assert cached._cache[0] is not None and cached._cache[0].shape == (30, 32, 48, 3)
    assert cached._cache[1] is None  # did not fit next to the first: read per clip
    assert plain._cache == {0: None, 1: None}
    assert pickle.loads(pickle.dumps(cached))._cache == {}  # workers start empty
