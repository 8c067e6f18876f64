"""deg_core.models.flops: FLOPs per frame, counted on the real modules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from deg_core.models.feature import HiddenTwoStream
from deg_core.models.flops import count_flops, feature_flops, preset_model
from deg_core.models.flow import PairFlowNet, TinyMotionNet


def test_a_convolution_counts_two_flops_per_multiply_add():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.zeros(1, 3, 8, 8)
    assert count_flops(conv, x) == 2 * (3 * 9) * 8 * 8 * 8


def test_preset_flops_scale_with_pixels_and_add_up():
    model = HiddenTwoStream.build("resnet18", TinyMotionNet(5), 4, num_frames=5)
    small = feature_flops(model, (64, 64))
    large = feature_flops(model, (128, 128))
    assert 0 < small.flow_generator < small.inference < small.training_clip
    # convolutions dominate: four times the pixels, about four times the arithmetic
    assert large.inference / small.inference == pytest.approx(4.0, rel=0.1)
    assert set(small.row()) == {
        "flow generator GFLOP/frame",
        "feature inference GFLOP/frame",
        "feature training GFLOP/clip",
    }


def test_a_pairwise_generator_costs_one_pair_per_frame():
    model = HiddenTwoStream.build("resnet18", PairFlowNet(5), 4, num_frames=5)
    flops = feature_flops(model, (64, 64))
    pair = count_flops(model.flow_generator.forward_pairs, torch.zeros(1, 6, 64, 64))
    # one new frame encoded and one pair decoded per frame: less than a pair on its own
    # (two frames encoded), far less than the 4 pairs of a stack
    assert pair / 2 < flops.flow_generator < pair


def test_lite_costs_a_fraction_of_fast_at_the_same_input():
    fast = feature_flops(preset_model("fast", num_frames=11), (128, 128))
    lite = feature_flops(preset_model("lite", num_frames=11), (128, 128))
    assert preset_model("lite").rgb_stride == 2
    assert lite.inference < fast.inference / 10
    assert lite.training_clip < fast.training_clip / 3
