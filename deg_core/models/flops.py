"""Arithmetic per frame: FLOPs of the flow generator and the feature extractor.

Counted with :class:`torch.utils.flop_counter.FlopCounterMode` on one example (a
multiply-add counts 2). Feature inference computes one N-frame stack per frame, so its
cost per frame is one forward of the whole two-stream model on one stack, except that a
pairwise flow generator computes only the frame's one new pair; training counts the
forward and backward of one clip. Shapes do not depend on weights, so
randomly initialised models give the real figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deg_core.config import resolve
from deg_core.models.feature import HiddenTwoStream
from deg_core.models.flow import PairFlowStream
from deg_core.models.network import feature_network


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


def preset_model(preset: str, num_classes: int = 4, num_frames: int = 11) -> HiddenTwoStream:
    """A randomly initialised two-stream model with ``preset``'s architecture settings."""
    return feature_network(resolve({}, preset=preset), num_classes, n_rgb=num_frames)


def feature_flops(model: HiddenTwoStream, size: tuple[int, int]) -> FrameFlops:
    """Per-frame FLOPs of ``model`` at input ``size`` (height, width).

    A pairwise flow generator encodes one frame and decodes one pair per frame in inference
    (each pair is reused by the N-1 stacks that hold it): counted on :class:`PairFlowStream`.
    """
    torch.manual_seed(0)
    model = model.eval()
    n = model.num_frames
    x = torch.zeros(1, 3 * n, *size)

    def forward(net: Callable[[torch.Tensor], Any], inp: torch.Tensor) -> None:
        with torch.no_grad():
            net(inp)

    def train_step(net: nn.Module, inp: torch.Tensor) -> None:
        net.train()
        out = net(inp)
        sum(v.float().sum() for v in out.values() if v.requires_grad).backward()

    stack_flow = count_flops(forward, model.flow_generator, x)
    streams = count_flops(forward, model, x) - stack_flow
    per_frame_flow = stack_flow
    if getattr(model.flow_generator, "pairwise", False):  # as inference streams it
        stream = PairFlowStream(model.flow_generator, n)
        frames = torch.zeros(n, 3, *size)
        forward(stream, frames)  # the first run; the next one has one new frame and pair
        per_frame_flow = count_flops(forward, stream, frames)
    return FrameFlops(
        flow_generator=per_frame_flow,
        inference=per_frame_flow + streams,
        # BatchNorm needs two samples to train: count a batch of 2, report one clip
        training_clip=count_flops(train_step, model, torch.cat([x, x])) // 2,
    )
