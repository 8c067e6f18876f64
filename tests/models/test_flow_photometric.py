"""The self-supervised loss: warping, Charbonnier, SSIM, MotionNetLoss."""

from __future__ import annotations

import pytest
import torch

from deg_core.models.flow import (
    MotionNetLoss,
    build_flow_generator,
    charbonnier,
    ssim,
    warp,
)
from tests.models.flow_clips import (
    constant_flows,
    moving_square_clip,
    texture,
    translating_clip,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --------------------------------------------------------------------------- warp / penalties


def test_warp_zero_flow_is_identity():
    img = torch.rand(2, 3, 16, 20)
    out = warp(img, torch.zeros(2, 2, 16, 20))
    torch.testing.assert_close(out, img, atol=1e-6, rtol=0)


def test_warp_integer_flow_shifts_exactly():
    img = torch.rand(1, 3, 16, 16)
    flow = torch.zeros(1, 2, 16, 16)
    flow[:, 0] = 3.0  # sample 3 px to the right
    flow[:, 1] = -2.0  # and 2 px up
    out = warp(img, flow)
    # out[y, x] = img[y - 2, x + 3] wherever that is inside the image
    torch.testing.assert_close(out[..., 2:, :-3], img[..., :-2, 3:], atol=1e-5, rtol=0)


def test_warp_sign_convention_recovers_previous_frame():
    """frame t+1 = frame t shifted right by 2 px -> flow_t = +2 (x) maps t+1 back onto t."""
    g = torch.Generator().manual_seed(1)
    clip = translating_clip(2, 32, 2, g)
    t0, t1 = clip[:, :3], clip[:, 3:]
    flow = torch.zeros(1, 2, 32, 32)
    flow[:, 0] = 2.0
    torch.testing.assert_close(warp(t1, flow)[..., :-2], t0[..., :-2], atol=1e-5, rtol=0)
    wrong = warp(t1, -flow)
    assert (wrong[..., 2:-2] - t0[..., 2:-2]).abs().mean() > 0.01


def test_warp_shape_errors():
    with pytest.raises(ValueError, match="match"):
        warp(torch.rand(1, 3, 8, 8), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="warp expects"):
        warp(torch.rand(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_charbonnier():
    x = torch.tensor([0.0, 3.0, -3.0])
    out = charbonnier(x, alpha=0.5, eps=1e-3)
    torch.testing.assert_close(out, torch.tensor([1e-3, 3.0, 3.0]), atol=1e-5, rtol=0)


def test_ssim_identity_and_noise():
    g = torch.Generator().manual_seed(2)
    x = texture(32, 32, g)[None]
    s = ssim(x, x)
    assert s.shape == x.shape
    torch.testing.assert_close(s, torch.ones_like(s), atol=1e-4, rtol=0)
    noise = torch.randn(x.shape, generator=g)
    means = [float(ssim(x, (x + sd * noise).clamp(0, 1)).mean()) for sd in (0.02, 0.1, 0.3)]
    assert 1.0 > means[0] > means[1] > means[2]
    # works on maps smaller than the window (coarse flow scales of small inputs)
    tiny = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(ssim(tiny, tiny), torch.ones_like(tiny), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="odd"):
        ssim(x, x, window=4)


# --------------------------------------------------------------------------- loss


def test_loss_prefers_true_flow():
    g = torch.Generator().manual_seed(3)
    n, size = 4, 64
    images = translating_clip(n, size, 2, g)
    loss_fn = MotionNetLoss(num_frames=n)
    true_loss, parts = loss_fn(images, constant_flows(1, n, size, dx=2.0))
    zero_loss, _ = loss_fn(images, constant_flows(1, n, size, dx=0.0))
    wrong_loss, _ = loss_fn(images, constant_flows(1, n, size, dx=-2.0))
    assert float(true_loss) < float(zero_loss) < float(wrong_loss)
    assert set(parts) == {"photometric", "ssim", "smoothness", "total"}
    assert all(isinstance(v, float) for v in parts.values())
    assert parts["total"] == pytest.approx(float(true_loss))


def test_loss_validates_shapes():
    loss_fn = MotionNetLoss(num_frames=3)
    flows = constant_flows(1, 3, 32, 0.0)
    with pytest.raises(ValueError, match="images"):
        loss_fn(torch.rand(1, 12, 32, 32), flows)
    with pytest.raises(ValueError, match="flow scales"):
        loss_fn(torch.rand(1, 9, 32, 32), flows[:2])


def test_loss_gradient_reaches_model():
    n = 3
    model = build_flow_generator("TinyMotionNet", num_frames=n)
    g = torch.Generator().manual_seed(4)
    images = torch.stack([moving_square_clip(n, 32, g) for _ in range(2)])
    loss, _ = MotionNetLoss(num_frames=n)(images, model(images))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert model.conv1[0].weight.grad.abs().sum() > 0


def test_training_reduces_loss_and_beats_zero_flow():
    """A few Adam steps on a moving textured square: the loss falls well below where it starts
    and below the zero-flow loss (i.e. the net has learned motion, not just to output zero)."""
    torch.manual_seed(0)
    n, size = 3, 64
    g = torch.Generator().manual_seed(0)
    images = torch.stack([moving_square_clip(n, size, g) for _ in range(2)])
    model = build_flow_generator("TinyMotionNet", num_frames=n)
    loss_fn = MotionNetLoss(num_frames=n)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    for _ in range(40):
        loss, parts = loss_fn(images, model(images))
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(parts["total"])
    zero_loss, _ = loss_fn(images, constant_flows(2, n, size, 0.0))
    final = min(history[-5:])
    assert final < 0.5 * history[0]
    assert final < 0.8 * float(zero_loss)
