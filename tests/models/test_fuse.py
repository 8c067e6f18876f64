"""Batch norms folded into convolutions for inference: the same outputs, fewer passes, the
trained model untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from deg_core.infer.feature_predictor import InferenceOptions
from deg_core.infer.preset import preset_predictor
from deg_core.models.flow import build_flow_generator
from deg_core.models.fuse import fuse_conv_bn


def _randomise_norms(model: nn.Module) -> None:
    """Non-trivial running statistics and affine terms (fresh ones fold to the identity)."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize("preset", ["fast", "lite"])
def test_folded_two_stream_gives_the_same_outputs(preset):
    fm = preset_predictor(preset, 3, size=(64, 64))
    _randomise_norms(fm.model)
    keys = list(fm.model.state_dict())
    x = torch.randn(2, 3 * fm.n_rgb, 64, 64)
    with torch.no_grad():
        want = fm.model(x)
        folded = fm.prepared(InferenceOptions(fuse=True, channels_last=False))
        got = folded(x)
    assert folded is not fm.model and list(fm.model.state_dict()) == keys  # a copy was folded

    def norms(net: nn.Module) -> int:
        return sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())

    assert norms(fm.model.spatial) == norms(fm.model.flow) == 20  # resnet18's
    assert norms(folded.spatial) == norms(folded.flow) == 0
    if preset == "fast":  # TinyMotionNet too; PairFlowNet folds its own on the fly
        assert norms(folded.flow_generator) == 0
    for name in ("spatial_features", "flow_features", "logits"):
        np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), rtol=1e-4, atol=1e-4)


def test_tiny_motionnet_folds_every_block():
    net = build_flow_generator("TinyMotionNet", num_frames=5).eval()
    _randomise_norms(net)
    x = torch.randn(1, 15, 64, 64)
    with torch.no_grad():
        want = net(x)
        assert fuse_conv_bn(net) > 0
        got = net(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    for w, g in zip(want, got, strict=True):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-4, atol=1e-5)


def test_folding_in_training_mode_is_refused():
    with pytest.raises(ValueError, match="eval mode"):
        fuse_conv_bn(build_flow_generator("TinyMotionNet", num_frames=5).train())
