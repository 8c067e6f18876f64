"""Arithmetic per frame: FLOPs of the flow generator and the feature extractor.

Counted with :class:`torch.utils.flop_counter.FlopCounterMode` on one example (a
multiply-add counts 2). Feature inference computes one N-frame stack per frame, so its
cost per frame is one forward of the whole two-stream model on one stack; training
counts the forward and backward of one clip. Shapes do not depend on weights, so
randomly initialised models give the real figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deg_core.models.feature import HiddenTwoStream
from deg_core.models.flow import build_flow_generator


def count_flops(fn: Callable[..., Any], *args: Any) -> int:
    """FLOPs of ``fn(*args)`` (and of its backward when ``fn`` calls it)."""
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return int(counter.get_total_flops())


@dataclass(frozen=True)
class FrameFlops:
    """FLOPs per frame of feature inference and of one training clip (N frames)."""

    flow_generator: int  # one stack through the flow generator
    inference: int  # one stack through flow generator + both streams
    training_clip: int  # forward + backward of the feature model on one clip

    def row(self) -> dict[str, float]:
        return {
            "flow generator GFLOP/frame": self.flow_generator / 1e9,
            "feature inference GFLOP/frame": self.inference / 1e9,
            "feature training GFLOP/clip": self.training_clip / 1e9,
        }


def feature_flops(
    flow_arch: str, feature_arch: str, size: tuple[int, int], num_frames: int = 11, k: int = 4
) -> FrameFlops:
    """Per-frame FLOPs of a preset's models at input ``size`` (height, width)."""
    torch.manual_seed(0)
    flow = build_flow_generator(flow_arch, num_frames=num_frames)
    model = HiddenTwoStream.build(feature_arch, flow, k, num_frames).eval()
    x = torch.zeros(1, 3 * num_frames, *size)

    def forward(net: nn.Module, inp: torch.Tensor) -> None:
        with torch.no_grad():
            net(inp)

    def train_step(net: nn.Module, inp: torch.Tensor) -> None:
        net.train()
        out = net(inp)
        sum(v.float().sum() for v in out.values() if v.requires_grad).backward()

    return FrameFlops(
        flow_generator=count_flops(forward, model.flow_generator, x),
        inference=count_flops(forward, model, x),
        # BatchNorm needs two samples to train: count a batch of 2, report one clip
        training_clip=count_flops(train_step, model, torch.cat([x, x])) // 2,
    )
