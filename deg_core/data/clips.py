"""Clip datasets for training: N consecutive frames around a centre frame.

A sample is the stack of ``num_frames`` frames centred on frame ``t`` (the centre is
position N//2; past either end of the video the first/last frame repeats), resized,
augmented with ONE random draw for the whole clip (a flip or a colour change that
differed between frames would look like motion to the flow generator), z-scored
with the project's per-channel statistics, and stacked frame-major into channels:
``(3N, H, W)``, channels ``3i..3i+2`` are frame ``i``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from deg_core.config import AugsSection
from deg_core.data.color import ClipColorJitter
from deg_core.video import VideoReader


@dataclass
class VideoItem:
    """One video for a dataset. ``labels``: (T, K) int8 in {1, 0, -1}, or None (flow).

    ``boxes``: (T, 4) per-frame crop boxes (deg_core.tracking.crop), or None for whole frames.
    ``animal``: which animal of a several-animal video the item follows (its labels, a window
    on it); None for a one-animal video.
    """

    path: Path
    n_frames: int
    labels: np.ndarray | None = None
    boxes: np.ndarray | None = None
    animal: int | None = None


def clip_indices(center: int, num_frames: int, n_frames: int) -> np.ndarray:
    """(num_frames,) frame indices of the clip centred on ``center``, edges repeated."""
    offsets = np.arange(num_frames) - num_frames // 2
    return np.clip(center + offsets, 0, n_frames - 1)


class ClipAugment:
    """Augmentations drawn once per clip and applied to all its frames.

    Input and output: (N, 3, H, W) float in [0, 1].
    """

    def __init__(self, cfg: AugsSection):
        from torchvision.transforms import v2

        steps: list[Any] = []
        if cfg.LR > 0:
            steps.append(v2.RandomHorizontalFlip(cfg.LR))
        if cfg.UD > 0:
            steps.append(v2.RandomVerticalFlip(cfg.UD))
        if cfg.degrees > 0:
            steps.append(v2.RandomRotation(cfg.degrees))
        if cfg.random_resize:  # the animal a little larger or smaller, off-centre
            steps.append(v2.RandomAffine(degrees=0.0, translate=(0.1, 0.1), scale=(0.85, 1.15)))
        if max(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue) > 0:  # not v2's: color.py
            steps.append(ClipColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue))
        if cfg.grayscale > 0:
            steps.append(v2.RandomGrayscale(cfg.grayscale))
        # v2 transforms draw their parameters once per call: one draw for the whole clip
        self.transform = v2.Compose(steps) if steps else None

    @classmethod
    def from_config(cls, cfg: AugsSection) -> ClipAugment:
        return cls(cfg)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        if self.transform is None:  # every augmentation switched off
            return clip
        # not in place: RandomGrayscale returns an expanded view
        return self.transform(clip).clamp(0.0, 1.0)


class ClipDataset(Dataset):
    """(video, centre frame) samples -> normalised clips (and centre-frame labels).

    Returns dicts: ``images`` (3N, H, W) float32; ``labels`` (K,) float32 with -1 for
    unlabeled (only when the videos have labels); ``video`` and ``frame`` ints.
    Readers open lazily in each DataLoader worker (they are not pickled).
    ``cache_mb``: videos whose resized frames fit in this budget (per process) are
    decoded once, sequentially, and served from memory: a random clip from a
    compressed video otherwise decodes from the previous key frame every time.
    """

    def __init__(
        self,
        items: Sequence[VideoItem],
        samples: np.ndarray,
        num_frames: int,
        size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        augment: ClipAugment | None = None,
        cache_mb: float = 0.0,
    ):
        self.items = list(items)
        self.samples = np.asarray(samples, dtype=np.int64).reshape(-1, 2)
        self.num_frames = num_frames
        self.size = (int(size[0]), int(size[1]))
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.augment = augment
        self._readers: dict[int, VideoReader] = {}
        self.cache_bytes = int(cache_mb * 2**20)
        self._cache: dict[int, np.ndarray | None] = {}  # None: too big for what is left

    def __len__(self) -> int:
        return len(self.samples)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_readers"] = {}
        state["_cache"] = {}
        return state

    def drop_frames(self) -> None:
        """Forget the decoded frames and close the readers (this process is done with them)."""
        self._cache.clear()
        for r in self._readers.values():
            r.close()
        self._readers.clear()

    def reader(self, video: int) -> VideoReader:
        if video not in self._readers:
            from deg_core.tracking.crop import open_frames  # lazy: crop imports the project store

            item = self.items[video]
            self._readers[video] = open_frames(item.path, item.boxes)
        return self._readers[video]

    def frames(self, video: int, idx: np.ndarray) -> np.ndarray:
        """(len(idx), H, W, 3) uint8 resized frames of one video, from the cache if it fits."""
        if video not in self._cache:
            h, w = self.size
            need = self.items[video].n_frames * h * w * 3
            used = sum(a.nbytes for a in self._cache.values() if a is not None)
            whole = None
            if need <= self.cache_bytes - used:
                whole = self.reader(video).read_range(0, self.items[video].n_frames, self.size)
            self._cache[video] = whole
        cached = self._cache[video]
        if cached is not None:
            return cached[idx]
        return self.reader(video).get_batch(idx, size=self.size)

    def clip(self, video: int, center: int) -> torch.Tensor:
        """(3N, H, W) float32: the clip of ``video`` centred on ``center``, augmented (one
        fresh draw per call) and normalised."""
        idx = clip_indices(center, self.num_frames, self.items[video].n_frames)
        clip = unit_frames(self.frames(video, idx))
        if self.augment is not None:
            clip = self.augment(clip)
        return self.normalise(clip).reshape(-1, *self.size)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> z-scored with the dataset's per-channel statistics."""
        return (x - self.mean) / self.std

    def sample(self, i: int) -> tuple[int, int]:
        """Sample ``i``'s (video, centre frame)."""
        video, center = (int(v) for v in self.samples[i])
        return video, center

    def with_labels(self, out: dict[str, Any], video: int, center: int) -> dict[str, Any]:
        """``out`` with the centre frame's ``labels`` (K,) float32 added, when there are labels."""
        labels = self.items[video].labels
        if labels is not None:
            out["labels"] = torch.from_numpy(labels[center].astype(np.float32))
        return out

    def __getitem__(self, i: int) -> dict[str, Any]:
        video, center = self.sample(i)
        out = {"images": self.clip(video, center), "video": video, "frame": center}
        return self.with_labels(out, video, center)


def unit_frames(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 frames -> (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)


def all_frames(items: Sequence[VideoItem]) -> np.ndarray:
    """(S, 2) every (video, frame) pair."""
    parts = [
        np.stack([np.full(it.n_frames, v), np.arange(it.n_frames)], 1) for v, it in enumerate(items)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)


def labelled_frames(items: Sequence[VideoItem]) -> np.ndarray:
    """(S, 2) (video, frame) pairs where at least one behaviour is labelled (not -1)."""
    parts = []
    for v, it in enumerate(items):
        if it.labels is None:
            continue
        frames = np.flatnonzero((it.labels != -1).any(axis=1))
        parts.append(np.stack([np.full(len(frames), v), frames], 1))
    return np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int64)


def evenly_spaced(samples: np.ndarray, n: int) -> np.ndarray:
    """At most ``n`` samples spread over the whole set (a fixed validation subset)."""
    if len(samples) <= n:
        return samples
    return samples[np.linspace(0, len(samples) - 1, n).round().astype(np.int64)]


class EpochBatchSampler(Sampler[list[int]]):
    """``steps`` batches of random dataset indices, reproducible per (seed, epoch).

    ``start`` skips the first batches without loading them, so a run resumed in the
    middle of an epoch sees the same batches it would have seen.
    """

    def __init__(self, n: int, batch_size: int, steps: int, seed: int, epoch: int, start: int = 0):
        self.n, self.batch_size, self.steps = n, batch_size, steps
        self.seed, self.epoch, self.start = seed, epoch, start

    def __len__(self) -> int:
        return max(self.steps - self.start, 0)

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        draws = torch.randint(self.n, (self.steps, self.batch_size), generator=g)
        for step in range(self.start, self.steps):
            yield draws[step].tolist()


def denormalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(B, 3N, H, W) z-scored clips -> the same clips in [0, 1] (what the flow loss compares).

    ``mean``/``std``: (3,) per-channel statistics used by :class:`ClipDataset`.
    """
    b, c, h, w = images.shape
    x = images.view(b, c // 3, 3, h, w) * std.view(1, 1, 3, 1, 1) + mean.view(1, 1, 3, 1, 1)
    return x.view(b, c, h, w)
