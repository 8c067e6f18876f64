"""Flow generators (TinyMotionNet, MotionNet, TinyMotionNet3D): shapes, sizes, initial flows."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch

from deg_core.models.flow import (
    FLOW_ARCHS,
    MotionNetLoss,
    build_flow_generator,
)
from tests.models.flow_clips import (
    DEG_PARAMS,
    constant_flows,
    moving_square_clip,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("arch", FLOW_ARCHS)
@pytest.mark.parametrize(("n", "h", "w"), [(11, 64, 64), (3, 32, 96)])
def test_output_shapes(arch, n, h, w):
    model = build_flow_generator(arch, num_frames=n)
    assert model.arch == arch
    assert model.num_frames == n
    with torch.no_grad():
        flows = model(torch.rand(2, 3 * n, h, w))
    assert isinstance(flows, tuple)
    assert len(flows) == 3
    for s, f in enumerate(flows, start=1):
        assert f.shape == (2, 2 * (n - 1), h >> s, w >> s)
        assert torch.isfinite(f).all()


@pytest.mark.parametrize("arch", FLOW_ARCHS)
def test_bad_inputs_raise(arch):
    model = build_flow_generator(arch, num_frames=3)
    bad = 16 if model.size_multiple == 32 else 36  # not a multiple of what the arch needs
    with pytest.raises(ValueError, match="multiple"):
        model(torch.rand(1, 9, bad, 64))
    with pytest.raises(ValueError, match=r"\(B, 9, H, W\)"):
        model(torch.rand(1, 12, 64, 64))
    with pytest.raises(ValueError, match="num_frames"):
        build_flow_generator(arch, num_frames=1)


def test_unknown_arch():
    with pytest.raises(ValueError, match="FlowNet2"):
        build_flow_generator("FlowNet2")


def test_from_config():
    @dataclass
    class Cfg:
        arch: str = "TinyMotionNet3D"
        n_rgb: int = 5
        smooth_weights: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3])
        photo_alpha: float = 0.5

    loss = MotionNetLoss.from_config(Cfg())
    assert loss.num_frames == 5
    assert loss.smooth_weights == (0.1, 0.2, 0.3)
    assert loss.photo_alpha == 0.5
    assert loss.smooth_alpha == 0.3  # missing -> default
    assert MotionNetLoss.from_config(object()).num_frames == 11


@pytest.mark.parametrize("arch", FLOW_ARCHS)
def test_parameter_counts_match_deg(arch):
    model = build_flow_generator(arch, num_frames=11)
    n_params = sum(p.numel() for p in model.parameters())
    assert abs(n_params - DEG_PARAMS[arch]) / DEG_PARAMS[arch] < 0.02, n_params


def test_3d_pairs_follow_channel_order():
    """TinyMotionNet3D's (B, 2, T, h, w) flows become channels [dx_0, dy_0, dx_1, dy_1, ...]."""
    from deg_core.models.flow.tiny_motionnet3d import _to_stacked

    flow = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).reshape(1, 2, 3, 1, 1)
    stacked = _to_stacked(flow).flatten().tolist()
    # (c=dx/dy, t) -> channel 2t + c
    assert stacked == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


@pytest.mark.parametrize("arch", FLOW_ARCHS)
def test_fresh_generator_starts_near_zero_flow_but_not_at_it(arch):
    """Flow heads start small: a fresh generator's flows are a fraction of a pixel (torch's
    default init gives flows of pixels whose loss is far above zero flow's, and a short training
    then only shrinks them, erasing the motion the flow stream needs), yet depend on the input."""
    torch.manual_seed(0)
    n, size = 5, 64
    g = torch.Generator().manual_seed(1)
    images = torch.stack([moving_square_clip(n, size, g) for _ in range(2)])
    model = build_flow_generator(arch, num_frames=n).train()  # batch statistics, as in training
    with torch.no_grad():
        flows, other = model(images), model(images.flip(-1))
    for f in flows:
        assert 0 < float(f.abs().mean()) < 0.05
    # the finest flow (the one the flow stream reads) still varies with the input
    assert float((flows[0] - other[0]).abs().mean()) > 0.01 * float(flows[0].abs().mean())
    if arch == "TinyMotionNet":  # the demo's generator: its loss starts near zero flow's
        loss, _ = MotionNetLoss(num_frames=n)(images, flows)
        zero, _ = MotionNetLoss(num_frames=n)(images, constant_flows(2, n, size, 0.0))
        assert float(loss) < 1.2 * float(zero)
