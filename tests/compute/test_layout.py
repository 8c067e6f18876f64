"""NHWC memory layout for 2-D models (deg_core.compute.layout), in the trainers too."""

from __future__ import annotations

import torch
from torch import nn

from deg_core.compute.layout import as_layout, is_2d, nhwc_if_2d, set_layout
from deg_core.models.weights import load_checkpoint
from deg_core.project.runs import BEST

NHWC = torch.channels_last


def test_set_layout_converts_4d_weights_only_and_keeps_values():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv3d(4, 4, 3), nn.Linear(4, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = list(model.parameters())
    set_layout(model)
    assert model[0].weight.is_contiguous(memory_format=NHWC)
    assert not model[0].weight.is_contiguous()
    assert model[1].weight.is_contiguous()  # 5-D: left alone
    assert all(a is b for a, b in zip(model.parameters(), params, strict=True))  # in place
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    set_layout(model, channels_last=False)
    assert model[0].weight.is_contiguous()


def test_as_layout_and_is_2d():
    x = torch.randn(2, 6, 5, 5)
    y = as_layout(x)
    assert y.is_contiguous(memory_format=NHWC) and torch.equal(x, y)
    assert as_layout(y, channels_last=False).is_contiguous()
    v = torch.randn(2, 3, 4, 5, 5)
    assert as_layout(v) is v
    assert is_2d(nn.Conv2d(3, 4, 3)) and not is_2d(nn.Conv3d(3, 4, 3))
    conv2d, conv3d = nn.Conv2d(3, 4, 3), nn.Conv3d(3, 4, 3)
    assert nhwc_if_2d(conv2d) and conv2d.weight.is_contiguous(memory_format=NHWC)
    assert not nhwc_if_2d(conv3d) and conv3d.weight.is_contiguous()


def test_a_2d_nhwc_model_computes_what_the_nchw_one_does():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Conv2d(8, 2, 1))
    x = torch.randn(2, 3, 16, 16)
    expected = model(x)
    got = set_layout(model)(as_layout(x))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_the_trainers_train_2d_networks_in_nhwc(flow_run, feature_run):
    flow = load_checkpoint(flow_run / BEST)["model"]
    feats = load_checkpoint(feature_run / BEST)["model"]
    for state in (flow, feats):  # saved tensors keep the layout they trained in
        convs = [v for v in state.values() if v.dim() == 4 and v.shape[-1] > 1]
        assert convs and all(v.is_contiguous(memory_format=NHWC) for v in convs)
