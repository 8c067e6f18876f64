"""Flow generators (TinyMotionNet, MotionNet, TinyMotionNet3D, PairFlowNet): shapes, sizes,
initial flows; PairFlowNet's pairs depend on their two frames alone."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch

from deg_core.models.flow import (
    FLOW_ARCHS,
    MotionNetLoss,
    PairFlowNet,
    PairFlowStream,
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
    for scale, f in zip(getattr(model, "scales", (2, 4, 8)), flows, strict=True):
        assert f.shape == (2, 2 * (n - 1), h // scale, w // scale)
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


@pytest.mark.parametrize("arch", [a for a in FLOW_ARCHS if a in DEG_PARAMS])
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


# --------------------------------------------------------------------------- pairwise


def test_a_pair_flow_depends_on_its_two_frames_alone():
    """Pair i of a stack equals the pair computed on its own, whatever the other frames are."""
    model = PairFlowNet(num_frames=5).eval()
    stack = torch.rand(2, 15, 32, 48)
    other = stack.clone()
    other[:, 9:] = torch.rand(2, 6, 32, 48)  # frames 3 and 4 replaced: pairs 2 and 3 change
    with torch.no_grad():
        flows, changed = model(stack)[0], model(other)[0]
        alone = model.forward_pairs(stack[:, 3:9])[0]  # frames 1 and 2: pair 1
    torch.testing.assert_close(flows[:, 2:4], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(changed[:, :4], flows[:, :4], atol=1e-5, rtol=1e-5)
    assert (changed[:, 4:] - flows[:, 4:]).abs().max() > 1e-4


def test_pair_layers_match_a_convolution_of_the_concatenation_in_both_modes():
    """PairFuse = conv_bn(cat(frame t, frame t+1, rest)), with batch statistics in training
    and the folded running statistics in eval mode."""
    from deg_core.models.flow.pair_flow import PairFuse, run_pair_sum

    fuse = PairFuse(4, 6, rest_ch=3, kernel=3)
    with torch.no_grad():  # non-trivial running statistics and affine terms
        fuse.bn.running_mean.uniform_(-1, 1)
        fuse.bn.running_var.uniform_(0.5, 2)
        fuse.bn.weight.uniform_(0.5, 2)
        fuse.bn.bias.uniform_(-1, 1)
        fuse.bias.uniform_(-1, 1)
    feats, rest = torch.randn(5, 4, 8, 8), torch.randn(4, 3, 8, 8)
    conv = torch.nn.Conv2d(11, 6, 3, padding=1)
    with torch.no_grad():  # the same weights as one convolution over the concatenation
        w = fuse.frames.weight
        conv.weight.copy_(torch.cat((w[:6], w[6:], fuse.rest.weight), dim=1))
        conv.bias.copy_(fuse.bias)
    cat = torch.cat((feats[:-1], feats[1:], rest), dim=1)
    for mode in (False, True):
        fuse.train(mode)
        bn = fuse.bn
        with torch.no_grad():
            got = fuse(feats, run_pair_sum, rest)
            pre = conv(cat)
            if mode:
                want = (pre - pre.mean((0, 2, 3), keepdim=True)) / torch.sqrt(
                    pre.var((0, 2, 3), unbiased=False, keepdim=True) + bn.eps
                ) * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
            else:
                want = torch.nn.functional.batch_norm(
                    pre, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
                )
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("n", [2, 3, 11])
def test_streamed_pair_flows_equal_each_stack_and_ignore_batch_boundaries(n):
    """PairFlowStream over runs of frames gives every stack's flows exactly once, equal to the
    generator on that stack, however the runs are cut (time-equivariance of reused flows)."""
    model = PairFlowNet(num_frames=n).eval()
    t = 13
    frames = torch.rand(t + n - 1, 3, 32, 32)
    with torch.no_grad():
        stacks = frames.unfold(0, n, 1).permute(0, 4, 1, 2, 3).reshape(t, 3 * n, 32, 32)
        direct = model(stacks)[0]
        for batch in (1, 4, 13):
            stream, parts = PairFlowStream(model, n), []
            for start in range(0, t, batch):
                b = min(batch, t - start)
                parts.append(stream(frames[start : start + b + n - 1]))
            torch.testing.assert_close(torch.cat(parts), direct, atol=1e-5, rtol=1e-5)


def test_pair_flow_stream_refuses_a_stack_generator():
    with pytest.raises(ValueError, match="not a pairwise"):
        PairFlowStream(build_flow_generator("TinyMotionNet", num_frames=3), 3)
