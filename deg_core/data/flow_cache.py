"""Feature training on cached flows: a frozen pairwise generator's flows computed once.

With a frozen flow generator, every training step of the feature stage recomputes the same
flows: 36% of a `lite` step on a 2-core CPU, plus decoding and augmenting all N frames of the
clip where the streams need only the centre one (benchmarks/RESULTS.md, "The training cache").
A pairwise generator (:class:`~deg_core.models.flow.PairFlowNet`, the `lite` preset) gives
each consecutive frame pair a flow that depends on that pair alone, so a video's flows are
T - 1 pair flows (and the two repeated-end pairs), computed once on the unaugmented frames:
exactly what feature inference feeds the flow stream.

Training then draws one augmentation per sample and applies it to the centre frame and to its
cached flows together. Flips, rotation and the random affine move the flow fields as they
move the image, and their vectors turn with them (a left-right flip negates dx, a rotation
turns (dx, dy) by the angle, a scale stretches them); the colour jitter and greyscale change
the centre frame only, where the uncached path also changed the frames the flows came from.

Shapes: a video's cache is ``(T + 1, 2, h, w)`` float16 rows (rows ``0..T-2``: pair t -> t+1;
row ``T-1``: frame 0 with itself; row ``T``: frame T-1 with itself), h, w = H/2, W/2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from deg_core.config import AugsSection
from deg_core.data.clips import ClipDataset, VideoItem, clip_indices, unit_frames
from deg_core.data.color import ClipColorJitter
from deg_core.models.flow.pair_flow import PairFlowNet, run_pair_sum

__all__ = [
    "CachedFlowClips",
    "FlowClipAugment",
    "PairFlowCache",
    "cache_bytes",
    "turn_flows",
    "video_key",
]


def video_key(item: VideoItem) -> tuple[str, int | None]:
    """What identifies one video's table: its path and the animal its window follows."""
    return str(item.path), item.animal


def cache_bytes(n_frames: Sequence[int], size: tuple[int, int]) -> int:
    """Bytes the cache takes for videos of ``n_frames`` at network input ``size`` (H, W)."""
    h, w = size[0] // 2, size[1] // 2
    return sum((int(t) + 1) * 2 * h * w * 2 for t in n_frames)


class PairFlowCache:
    """Every video's pair flows from a frozen pairwise generator (module doc for the rows).

    Tensors are float16 in shared memory, so DataLoader workers read them without a copy.
    """

    def __init__(self, tables: list[Tensor]):
        self.tables = tables

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        clips: ClipDataset,
        generator: nn.Module,
        device: torch.device | str = "cpu",
        chunk: int = 32,
        shared: dict[tuple[str, int | None], Tensor] | None = None,
    ) -> PairFlowCache:
        """Run ``generator`` (pairwise, eval mode) over every frame of ``clips``' videos,
        normalised as the clips are, each frame encoded once and each pair decoded once.
        ``shared``: tables by (video path, animal), reused and added to across datasets."""
        shared = {} if shared is None else shared
        if not getattr(generator, "pairwise", False):
            raise ValueError(f"{type(generator).__name__} is not a pairwise flow generator")
        was_training = generator.training
        generator.eval()
        tables = []
        try:
            for v, item in enumerate(clips.items):
                key = video_key(item)
                if key not in shared:
                    gen = cast(PairFlowNet, generator)
                    shared[key] = _video_table(clips, v, item.n_frames, gen, device, chunk)
                tables.append(shared[key])
        finally:
            generator.train(was_training)
        return cls(tables)

    def stacks(self, video: int, idx: np.ndarray) -> Tensor:
        """(N - 1, 2, h, w) float32 flows of the clip on frames ``idx`` (clip_indices)."""
        table = self.tables[video]
        t_all = len(table) - 1
        a, b = idx[:-1], idx[1:]
        rows = np.where(b == a + 1, a, np.where(a == 0, t_all - 1, t_all))
        return table[torch.from_numpy(rows)].float()


def _video_table(
    clips: ClipDataset, video: int, t_all: int, gen: PairFlowNet, device: Any, chunk: int
) -> Tensor:
    def normalised(idx: np.ndarray) -> Tensor:
        return clips.normalise(unit_frames(clips.frames(video, idx))).to(device)

    pairs: list[Tensor] = []
    for start in range(0, max(t_all - 1, 0), chunk):  # runs overlap by one frame
        stop = min(start + chunk + 1, t_all)
        flows = gen.decode(gen.encode(normalised(np.arange(start, stop))), run_pair_sum)[0]
        pairs.append(flows.half().cpu())
    ends = normalised(np.array([0, t_all - 1]))
    same = torch.cat([ends, ends], dim=1)  # (2, 6, H, W): each end frame with itself
    selfs = gen.forward_pairs(same)[0].half().cpu()
    return torch.cat([*pairs, selfs]).contiguous().share_memory_()


def turn_flows(flows: Tensor, degrees: float) -> Tensor:
    """Flow vectors (.., 2, h, w) as seen in the image rotated by ``degrees`` counter-clockwise
    on screen (torchvision's rotate): in pixel axes (x right, y down) a displacement (u, v)
    becomes (u cos a + v sin a, -u sin a + v cos a)."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    u, v = flows[..., 0, :, :], flows[..., 1, :, :]
    return torch.stack([u * c + v * s, -u * s + v * c], dim=-3)


class FlowClipAugment:
    """:class:`~deg_core.data.clips.ClipAugment`'s augmentations, one draw per sample, on a
    centre frame and its cached flows (module doc). ``rgb``: (1, 3, H, W) in [0, 1];
    ``flows``: (P, 2, H/2, W/2) in pixels of that scale. Returns both transformed."""

    def __init__(self, cfg: AugsSection):
        self.lr, self.ud, self.degrees = float(cfg.LR), float(cfg.UD), float(cfg.degrees)
        self.random_resize = bool(cfg.random_resize)
        jitter = max(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue) > 0
        self.color = (
            ClipColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)
            if jitter
            else None
        )
        self.grayscale = float(cfg.grayscale)

    @classmethod
    def from_config(cls, cfg: AugsSection) -> FlowClipAugment:
        return cls(cfg)

    def __call__(self, rgb: Tensor, flows: Tensor) -> tuple[Tensor, Tensor]:
        if self.lr > 0 and float(torch.rand(1)) < self.lr:
            rgb, flows = rgb.flip(-1), flows.flip(-1)
            flows = torch.stack([-flows[:, 0], flows[:, 1]], dim=1)
        if self.ud > 0 and float(torch.rand(1)) < self.ud:
            rgb, flows = rgb.flip(-2), flows.flip(-2)
            flows = torch.stack([flows[:, 0], -flows[:, 1]], dim=1)
        if self.degrees > 0:  # v2.RandomRotation: uniform angle, nearest, no expand, fill 0
            angle = float(torch.empty(1).uniform_(-self.degrees, self.degrees))
            rgb = TF.rotate(rgb, angle, interpolation=InterpolationMode.NEAREST)
            flows = turn_flows(_rotate_field(flows, angle), angle)
        if self.random_resize:  # v2.RandomAffine(translate=(0.1, 0.1), scale=(0.85, 1.15))
            rgb, flows = _affine(rgb, flows)
        if self.color is not None:
            rgb = self.color(rgb)
        if self.grayscale > 0 and float(torch.rand(1)) < self.grayscale:
            rgb = TF.rgb_to_grayscale(rgb, num_output_channels=3)
        return rgb.clamp(0.0, 1.0), flows


def _rotate_field(flows: Tensor, angle: float) -> Tensor:
    p, c, h, w = flows.shape
    out = TF.rotate(flows.reshape(p * c, 1, h, w), angle, InterpolationMode.BILINEAR)
    return out.reshape(p, c, h, w)


def _affine(rgb: Tensor, flows: Tensor) -> tuple[Tensor, Tensor]:
    h_big, w_big = rgb.shape[-2:]
    tx = round(float(torch.empty(1).uniform_(-0.1 * w_big, 0.1 * w_big)))
    ty = round(float(torch.empty(1).uniform_(-0.1 * h_big, 0.1 * h_big)))
    scale = float(torch.empty(1).uniform_(0.85, 1.15))
    rgb = TF.affine(rgb, angle=0.0, translate=[tx, ty], scale=scale, shear=[0.0, 0.0])
    p, c, h, w = flows.shape
    field = TF.affine(
        flows.reshape(p * c, 1, h, w),
        angle=0.0,
        translate=[tx * w / w_big, ty * h / h_big],
        scale=scale,
        shear=[0.0, 0.0],
        interpolation=InterpolationMode.BILINEAR,
    )
    return rgb, field.reshape(p, c, h, w) * scale  # a stretched image stretches its motion


class CachedFlowClips(Dataset):
    """A :class:`ClipDataset`'s samples as the streams' inputs: ``rgb`` (3, H, W), the
    augmented and normalised centre frame, and ``flows`` (2(N-1), H/2, W/2) from the cache,
    augmented with the same draw; ``labels``, ``video`` and ``frame`` as the clips'."""

    def __init__(
        self, clips: ClipDataset, cache: PairFlowCache, augment: FlowClipAugment | None = None
    ):
        self.clips, self.cache, self.augment = clips, cache, augment

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, Any]:
        clips = self.clips
        video, center = clips.sample(i)
        idx = clip_indices(center, clips.num_frames, clips.items[video].n_frames)
        rgb = unit_frames(clips.frames(video, idx[len(idx) // 2 : len(idx) // 2 + 1]))
        flows = self.cache.stacks(video, idx)
        if self.augment is not None:
            rgb, flows = self.augment(rgb, flows)
        out = {
            "rgb": clips.normalise(rgb)[0],
            "flows": flows.reshape(-1, *flows.shape[-2:]),
            "video": video,
            "frame": center,
        }
        return clips.with_labels(out, video, center)
