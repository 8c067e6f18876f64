"""The training cache of a frozen pairwise generator's flows: the cached stacks are the
generator's own on every clip (ends included), and an augmentation moves the flows and turns
their vectors as it moves the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from deg_core.config import AugsSection
from deg_core.data.clips import ClipDataset, VideoItem
from deg_core.data.flow_cache import (
    CachedFlowClips,
    FlowClipAugment,
    PairFlowCache,
    cache_bytes,
    turn_flows,
)
from deg_core.models.flow import PairFlowNet
from deg_core.models.flow.tiny_motionnet import TinyMotionNet
from deg_core.video import write_video

N = 5
SIZE = (32, 32)
MEAN, STD = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> ClipDataset:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("fc") / "v.mp4"
    write_video(path, frames)
    t_all = 20
    samples = np.stack([np.zeros(t_all, int), np.arange(t_all)], 1)
    return ClipDataset([VideoItem(path, t_all)], samples, N, SIZE, MEAN, STD, cache_mb=64)


@pytest.fixture(scope="module")
def generator() -> PairFlowNet:
    torch.manual_seed(0)
    gen = PairFlowNet(num_frames=N).eval()
    # larger output weights than the small start, so the flows are not all near zero
    for head in (gen.predict2, gen.predict4, gen.predict8, gen.predict16):
        torch.nn.init.normal_(head.weight, std=0.5)
    return gen


def test_cached_stacks_equal_the_generator_on_each_clip(clips, generator):
    cache = PairFlowCache.build(clips, generator, chunk=7)  # runs that split the video
    assert cache.tables[0].shape == (21, 2, 16, 16) and cache.tables[0].dtype == torch.float16
    with torch.no_grad():
        for t in (0, 1, 9, 18, 19):  # both ends repeat frames: pairs of a frame with itself
            want = generator(clips.clip(0, t)[None])[0][0]
            got = cache.stacks(0, np.clip(t + np.arange(N) - N // 2, 0, 19)).reshape(want.shape)
            scale = float(want.abs().max())
            assert scale > 0.01
            torch.testing.assert_close(got, want, atol=2e-3 * scale, rtol=0, msg=f"frame {t}")


def test_dataset_gives_centre_frame_and_flows(clips, generator):
    cache = PairFlowCache.build(clips, generator)
    ds = CachedFlowClips(clips, cache)
    b = ds[7]
    assert b["rgb"].shape == (3, *SIZE) and b["flows"].shape == (2 * (N - 1), 16, 16)
    centre = clips.clip(0, 7).reshape(N, 3, *SIZE)[N // 2]
    torch.testing.assert_close(b["rgb"], centre)
    assert b["frame"] == 7 and b["video"] == 0


def test_shared_tables_are_computed_once(clips, generator):
    shared: dict = {}
    a = PairFlowCache.build(clips, generator, shared=shared)
    b = PairFlowCache.build(clips, generator, shared=shared)
    assert a.tables[0] is b.tables[0] and len(shared) == 1


def test_a_stack_generator_is_refused(clips):
    with pytest.raises(ValueError, match="not a pairwise"):
        PairFlowCache.build(clips, TinyMotionNet(num_frames=N))


def test_cache_bytes():
    assert cache_bytes([10, 20], (64, 32)) == (11 + 21) * 2 * 32 * 16 * 2


def _dot(shape, x, y):
    img = torch.zeros(1, *shape)
    img[0, y - 1 : y + 2, x - 1 : x + 2] = 1.0
    return img


def _centroid(img):
    ys, xs = torch.meshgrid(torch.arange(img.shape[-2]), torch.arange(img.shape[-1]), indexing="ij")
    m = img[0]
    return float((xs * m).sum() / m.sum()), float((ys * m).sum() / m.sum())


@pytest.mark.parametrize("angle", [90.0, -90.0, 30.0, 180.0])
def test_turned_vectors_follow_the_rotated_image(angle):
    # a dot moving by (6, 2) px; the rotated frames' dots move by the turned vector
    a, b = _dot((64, 64), 30, 30), _dot((64, 64), 36, 32)
    ra, rb = (TF.rotate(i, angle, InterpolationMode.BILINEAR) for i in (a, b))
    (xa, ya), (xb, yb) = _centroid(ra), _centroid(rb)
    flow = torch.tensor([6.0, 2.0]).view(1, 2, 1, 1)
    got = turn_flows(flow, angle).flatten()
    np.testing.assert_allclose(got.numpy(), [xb - xa, yb - ya], atol=0.15)


def test_flip_negates_the_horizontal_motion():
    aug = FlowClipAugment(
        AugsSection(LR=1.0, degrees=0, brightness=0, contrast=0, saturation=0, hue=0, grayscale=0)
    )
    rgb = torch.rand(1, 3, 8, 8)
    flows = torch.zeros(3, 2, 4, 4)
    flows[:, 0, :, 0] = 1.0  # rightwards motion in the leftmost column
    flows[:, 1, :, 0] = 2.0
    r2, f2 = aug(rgb, flows)
    torch.testing.assert_close(r2, rgb.flip(-1))
    assert (f2[:, 0, :, -1] == -1.0).all() and (f2[:, 1, :, -1] == 2.0).all()
    assert (f2[:, :, :, :-1] == 0).all()


def test_rotation_moves_and_turns_a_uniform_field():
    torch.manual_seed(3)
    aug = FlowClipAugment(
        AugsSection(LR=0.0, degrees=40, brightness=0, contrast=0, saturation=0, hue=0, grayscale=0)
    )
    flows = torch.zeros(1, 2, 33, 33)
    flows[:, 0] = 3.0  # everything moves right
    _, f2 = aug(torch.rand(1, 3, 66, 66), flows)
    c = f2[0, :, 16, 16]  # the centre stays inside the image at any angle
    assert abs(float(c.norm()) - 3.0) < 1e-3  # turned, not stretched
    assert abs(float(c[1])) > 0.01  # and turned: some vertical motion now
    # the corners rotated in from outside carry no motion
    assert float(f2[0, :, 0, 0].abs().max()) == 0.0


def test_random_resize_scales_the_vectors():
    torch.manual_seed(0)
    aug = FlowClipAugment(
        AugsSection(
            LR=0.0,
            degrees=0,
            random_resize=True,
            brightness=0,
            contrast=0,
            saturation=0,
            hue=0,
            grayscale=0,
        )
    )
    flows = torch.ones(2, 2, 32, 32)
    _, f2 = aug(torch.rand(1, 3, 64, 64), flows)
    inside = f2[0, 0, 14:18, 14:18]
    assert float(inside.min()) >= 0.85 - 1e-4 and float(inside.max()) <= 1.15 + 1e-4
    assert float((inside - 1).abs().max()) > 0  # scaled with the image
