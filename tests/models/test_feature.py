"""Hidden two-stream feature extractor: shapes, centre-frame slicing, frozen flow generator,
forward_streams, bias init and parameter counts. Tiny inputs; fake flow generators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deg_core.models.feature import (
    BIAS_EPS,
    FEATURE_ARCHS,
    HiddenTwoStream,
    ResNet3d,
    ResNetFeatures,
    center_channels,
)

N = 5  # frames per stack in most tests
K = 3  # classes
HW = 32


class FakeFlow(nn.Module):
    """Stands in for a flow generator: (B, 3N, H, W) -> 3 flows (B, 2(N-1), H/2^s, W/2^s).

    It has parameters and a BatchNorm, so freezing (no grads, fixed running stats) is observable.
    """

    def __init__(self, num_frames: int = N):
        super().__init__()
        self.conv = nn.Conv2d(3 * num_frames, 2 * (num_frames - 1), 3, padding=1)
        self.bn = nn.BatchNorm2d(2 * (num_frames - 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        half = F.avg_pool2d(self.bn(self.conv(x)), 2)
        return half, F.avg_pool2d(half, 2), F.avg_pool2d(half, 4)


class Tiny3d(nn.Module):
    """A cheap 3-D backbone (is_3d, out_features protocol): (B, C, T, H, W) -> (B, 512)."""

    is_3d = True
    out_features = 512

    def __init__(self, in_channels: int):
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, 8, 3, padding=1)
        self.fc = nn.Linear(8, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv1(x).mean(dim=(2, 3, 4)))


def frames(b: int = 2, n: int = N, hw: int = HW, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, 3 * n, hw, hw, generator=torch.Generator().manual_seed(seed))


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_center_channels():
    assert center_channels(11) == slice(15, 18)
    assert center_channels(5) == slice(6, 9)
    assert center_channels(3) == slice(3, 6)
    assert center_channels(10) == slice(15, 18)  # even N: the later of the two middle frames


@pytest.mark.parametrize(
    ("arch", "fusion", "n"),
    [
        ("resnet18", "average", N),
        ("resnet18", "concatenate", N),
        ("resnet50", "average", 3),
        ("resnet3d_34", "concatenate", 3),
    ],
)
def test_output_shapes(arch, fusion, n):
    model = HiddenTwoStream.build(arch, FakeFlow(n), K, num_frames=n, fusion=fusion).eval()
    assert model.arch == arch
    with torch.no_grad():
        out = model(frames(n=n))
    assert set(out) == {
        "spatial_features",
        "flow_features",
        "logits",
        "spatial_logits",
        "flow_logits",
    }
    assert out["spatial_features"].shape == (2, 512)
    assert out["flow_features"].shape == (2, 512)
    for key in ("logits", "spatial_logits", "flow_logits"):
        assert out[key].shape == (2, K)
    assert all(torch.isfinite(v).all() for v in out.values())
    assert model.feature_dim == 512


def test_backbone_input_channels():
    """2-D: spatial conv1 takes RGB, flow conv1 takes 2(N-1) flow channels; 3-D: 3 and 2."""
    model = HiddenTwoStream.build("resnet18", FakeFlow(11), K, num_frames=11)
    assert isinstance(model.spatial, ResNetFeatures)
    assert model.spatial.conv1.in_channels == 3
    assert model.flow.conv1.in_channels == 20
    assert isinstance(model.spatial.compression_fc, nn.Identity)
    r50 = ResNetFeatures("resnet50", in_channels=4).eval()
    assert r50.conv1.in_channels == 4
    assert r50(torch.randn(1, 4, 32, 32)).shape == (1, 512)
    # DEG's compression layer: Linear(2048, 512) + ReLU, under DEG's parameter names
    assert r50.state_dict()["compression_fc.0.weight"].shape == (512, 2048)


def test_resnet3d_34_blocks_and_clip_shapes():
    net = ResNet3d(in_channels=2).eval()
    assert [len(s) for s in (net.layer1, net.layer2, net.layer3, net.layer4)] == [3, 4, 6, 3]
    assert net(torch.randn(1, 2, 10, 32, 32)).shape == (1, 512)
    with pytest.raises(ValueError, match="B, C, T, H, W"):
        net(torch.randn(1, 2, 32, 32))


def test_parameter_counts_match_deg_presets():
    """DEG paper Table 2: fast ~24.5M incl. TinyMotionNet (1.95M) -> ~22.5M for the two streams."""
    fast = HiddenTwoStream.build("resnet18", FakeFlow(11), K, num_frames=11)
    streams = n_params(fast) - n_params(fast.flow_generator)
    assert streams == pytest.approx(22.5e6, rel=0.10)
    # medium: ~95M incl. MotionNet (45.9M) -> ~49M for two ResNet-50s with 2048->512 compression
    medium = HiddenTwoStream.build("resnet50", FakeFlow(11), K, num_frames=11)
    assert n_params(medium) - n_params(medium.flow_generator) == pytest.approx(49e6, rel=0.10)


def test_parameter_count_slow_preset():
    """slow: ~128M incl. TinyMotionNet3D (0.44M) -> ~127.5M for two 3-D ResNet-34s."""
    assert 2 * n_params(ResNet3d(in_channels=3)) == pytest.approx(127.5e6, rel=0.10)


def _capture_input(module: nn.Module) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    module.register_forward_hook(lambda _m, args, _out: seen.append(args[0].detach().clone()))
    return seen


@pytest.mark.parametrize("n", [N, 11])
def test_spatial_stream_gets_exactly_the_centre_frame(n):
    model = HiddenTwoStream.build("resnet18", FakeFlow(n), K, num_frames=n).eval()
    seen = _capture_input(model.spatial)
    centre = slice(3 * (n // 2), 3 * (n // 2) + 3)
    x = torch.zeros(1, 3 * n, 32, 32)
    x[:, centre] = torch.rand(1, 3, 32, 32) + 1.0  # only the centre frame is non-zero
    with torch.no_grad():
        model(x)
    assert torch.equal(seen[0], x[:, centre])
    # DEG's Viewer started at int(N / 2 * 3): for odd N that straddles two frames
    deg_start = int(n / 2 * 3)
    assert deg_start != centre.start
    assert not torch.equal(seen[0], x[:, deg_start : deg_start + 3])
    assert (x[:, deg_start : deg_start + 3] == 0).any()


def test_3d_streams_get_all_frames_and_all_flows():
    fg = FakeFlow(N)
    model = HiddenTwoStream(fg, Tiny3d(3), Tiny3d(2), K, num_frames=N).eval()
    rgb_seen, flow_seen = _capture_input(model.spatial), _capture_input(model.flow)
    x = frames()
    with torch.no_grad():
        out = model(x)
        flow_half = fg(x)[0]
    assert out["logits"].shape == (2, K)
    assert rgb_seen[0].shape == (2, 3, N, HW, HW)
    assert flow_seen[0].shape == (2, 2, N - 1, HW // 2, HW // 2)
    for i in range(N):
        assert torch.equal(rgb_seen[0][:, :, i], x[:, 3 * i : 3 * i + 3])
    for i in range(N - 1):
        assert torch.equal(flow_seen[0][:, :, i], flow_half[:, 2 * i : 2 * i + 2])


def test_mismatched_backbones_and_bad_inputs_raise():
    with pytest.raises(ValueError, match="both be 2-D or both be 3-D"):
        HiddenTwoStream(FakeFlow(N), Tiny3d(3), ResNetFeatures("resnet18", 8), K, num_frames=N)
    with pytest.raises(ValueError, match="fusion"):
        HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N, fusion="max")
    with pytest.raises(ValueError, match="arch"):
        HiddenTwoStream.build("vgg16", FakeFlow(N), K, num_frames=N)
    with pytest.raises(ValueError, match="backbone takes 8 channels; expected 4"):
        HiddenTwoStream(
            FakeFlow(3), ResNetFeatures("resnet18"), ResNetFeatures("resnet18", 8), K, 3
        )
    generator = FakeFlow(N)
    generator.num_frames = 11
    with pytest.raises(ValueError, match="built for 11 frames, not 5"):
        HiddenTwoStream.build("resnet18", generator, K, num_frames=N)
    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N)
    with pytest.raises(ValueError, match=r"\(B, 15, H, W\)"):
        model(torch.randn(1, 12, 32, 32))


def test_flow_generator_frozen_and_in_eval_mode_while_training():
    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N)
    fg = model.flow_generator
    assert not any(p.requires_grad for p in fg.parameters())
    model.train()
    assert model.training and model.spatial.training and model.flow.training
    assert not fg.training and not fg.bn.training
    fg_before = {k: v.clone() for k, v in fg.state_dict().items()}
    spatial_before = model.spatial.conv1.weight.detach().clone()
    flow_before = model.flow.conv1.weight.detach().clone()

    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(frames(b=4, hw=32))
    loss = F.binary_cross_entropy_with_logits(out["logits"], torch.ones(4, K))
    loss.backward()
    opt.step()

    assert all(p.grad is None for p in fg.parameters())
    for key, value in fg.state_dict().items():  # weights and BN running statistics
        assert torch.equal(value, fg_before[key]), key
    assert not torch.equal(model.spatial.conv1.weight, spatial_before)
    assert not torch.equal(model.flow.conv1.weight, flow_before)


def test_unfrozen_flow_generator_trains():
    model = HiddenTwoStream.build(
        "resnet18", FakeFlow(N), K, num_frames=N, freeze_flow_generator=False
    )
    model.train()
    assert model.flow_generator.training
    out = model(frames(b=2, hw=32))
    out["logits"].sum().backward()
    assert model.flow_generator.conv.weight.grad is not None


@pytest.mark.parametrize("fusion", ["average", "concatenate"])
def test_forward_streams_equals_forward(fusion):
    fg = FakeFlow(N)
    model = HiddenTwoStream.build("resnet18", fg, K, num_frames=N, fusion=fusion).eval()
    x = frames()
    with torch.no_grad():
        full = model(x)
        flow_half = fg(x)[0]
        split = model.forward_streams(x[:, center_channels(N)], flow_half)
    for key in full:
        torch.testing.assert_close(split[key], full[key], rtol=0, atol=0)


def test_forward_streams_equals_forward_3d():
    fg = FakeFlow(N)
    model = HiddenTwoStream(fg, Tiny3d(3), Tiny3d(2), K, num_frames=N).eval()
    x = frames()
    with torch.no_grad():
        full = model(x)
        flow_half = fg(x)[0]
        clip = x.reshape(2, N, 3, HW, HW).transpose(1, 2)  # (B, 3, N, H, W)
        split = model.forward_streams(clip, flow_half)
        flow_clip = flow_half.reshape(2, N - 1, 2, HW // 2, HW // 2).transpose(1, 2)
        split5 = model.forward_streams(clip, flow_clip)
    for key in full:
        torch.testing.assert_close(split[key], full[key])
        torch.testing.assert_close(split5[key], full[key])


def test_average_fusion_uses_flow_weight():
    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N, flow_weight=1.5).eval()
    with torch.no_grad():
        out = model(frames(hw=32))
    expected = (out["spatial_logits"] + 1.5 * out["flow_logits"]) / 2.5
    torch.testing.assert_close(out["logits"], expected)


@pytest.mark.parametrize("fusion", ["average", "concatenate"])
def test_init_bias_matches_label_frequencies(fusion):
    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N, fusion=fusion)
    pos = np.array([10, 1, 500])
    neg = np.array([90, 999, 500])
    model.init_bias(pos, neg)
    heads = model.heads()
    assert len(heads) == (3 if fusion == "concatenate" else 2)
    for head in heads:
        torch.testing.assert_close(
            torch.sigmoid(head.bias.double()),
            torch.tensor(pos / (pos + neg), dtype=torch.float64),
            rtol=1e-5,
            atol=1e-7,
        )
    # with zero features the fused logit is the bias too, for both fusion styles
    if fusion == "average":
        expected = (heads[0].bias + 1.5 * heads[1].bias) / 2.5
        torch.testing.assert_close(expected, heads[0].bias)


def test_init_bias_degenerate_counts_are_finite():
    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N)
    model.init_bias(np.array([0, 7, 0]), np.array([12, 0, 0]))  # no pos / no neg / no labels
    bias = model.spatial_head.bias.double()
    assert torch.isfinite(bias).all()
    p = torch.sigmoid(bias)
    torch.testing.assert_close(
        p, torch.tensor([BIAS_EPS, 1 - BIAS_EPS, 0.5], dtype=torch.float64), rtol=1e-4, atol=1e-7
    )
    with pytest.raises(ValueError, match="shape"):
        model.init_bias(np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="non-negative"):
        model.init_bias(np.array([-1, 1, 1]), np.ones(3))


def test_feature_archs_contract():
    assert FEATURE_ARCHS == ("resnet18", "resnet50", "resnet3d_34")
