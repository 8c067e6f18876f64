"""Two views of each clip, for self-supervised pretraining (``deg train pretrain``).

A sample of :class:`TwoViews` is a (video, centre) pair of a :class:`ClipDataset`
seen twice: the clip under one augmentation draw, and the clip centred up to
``max_shift`` frames away (clamped to the video; 0: the same clip) under another,
independent draw. Whatever the two views share (the animal, its posture, what it
is doing over a fraction of a second) is what the objective teaches the network to
keep; what differs (flips, rotation, colour, the exact moment) what it learns to
ignore.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset

from deg_core.data.clips import ClipDataset


class TwoViews(Dataset):
    """(video, centre) samples of ``clips`` -> two augmented clips.

    Returns dicts: ``view1``, ``view2`` (3N, H, W) float32 (normalised as ``clips`` does);
    ``video``, ``frame`` (the first view's centre) and ``shift`` (the second's offset) ints.

    ``seed`` None: draws from torch's generator (each DataLoader worker has its own);
    an int: sample ``i``'s shift and augmentations are fixed by (seed, i), so a validation
    set is the same clips under the same draws every epoch, whatever the loader order.
    """

    def __init__(self, clips: ClipDataset, max_shift: int = 0, seed: int | None = None):
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0, got {max_shift}")
        self.clips = clips
        self.max_shift = int(max_shift)
        self.seed = seed

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, Any]:
        video, center = self.clips.sample(i)
        with self._draws(i):
            shift = 0
            if self.max_shift > 0:
                shift = int(torch.randint(-self.max_shift, self.max_shift + 1, ()).item())
            last = self.clips.items[video].n_frames - 1
            second = min(max(center + shift, 0), last)
            view1 = self.clips.clip(video, center)
            view2 = self.clips.clip(video, second)
        return {
            "view1": view1,
            "view2": view2,
            "video": video,
            "frame": center,
            "shift": second - center,
        }

    @contextlib.contextmanager
    def _draws(self, i: int) -> Iterator[None]:
        if self.seed is None:
            yield
            return
        # a private stream: the global generator (training's draws) is left where it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1_000_003 + i)
            yield
