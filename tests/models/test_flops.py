"""deg_core.models.flops: FLOPs per frame, counted on the real modules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deg_core.models.flops import count_flops, feature_flops


def test_a_convolution_counts_two_flops_per_multiply_add():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.zeros(1, 3, 8, 8)
    assert count_flops(conv, x) == 2 * (3 * 9) * 8 * 8 * 8


def test_preset_flops_scale_with_pixels_and_add_up():
    small = feature_flops("TinyMotionNet", "resnet18", (64, 64), num_frames=5)
    large = feature_flops("TinyMotionNet", "resnet18", (128, 128), num_frames=5)
    assert 0 < small.flow_generator < small.inference < small.training_clip
    # convolutions dominate: four times the pixels, about four times the arithmetic
    assert large.inference / small.inference == pytest.approx(4.0, rel=0.1)
    assert set(small.row()) == {
        "flow generator GFLOP/frame",
        "feature inference GFLOP/frame",
        "feature training GFLOP/clip",
    }
