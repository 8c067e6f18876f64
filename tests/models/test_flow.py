"""Flow generators, their self-supervised loss, and flow visualisation (CPU, tiny inputs)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deg_core.models.flow import (
    FLOW_ARCHS,
    MotionNetLoss,
    build_flow_generator,
    charbonnier,
    flow_figure,
    flow_generator_from_config,
    flow_to_rgb,
    ssim,
    warp,
)
from deg_core.models.flow.viz import colour_wheel_legend, encode_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEG_PARAMS = {"TinyMotionNet": 1.95e6, "MotionNet": 45.9e6, "TinyMotionNet3D": 0.44e6}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def texture(h: int, w: int, g: torch.Generator, blur: int = 5) -> torch.Tensor:
    """(3, h, w) smooth random texture in [0, 1], periodic so it can be rolled."""
    noise = torch.rand(1, 3, h, w, generator=g)
    p = blur // 2
    return F.avg_pool2d(F.pad(noise, (p, p, p, p), mode="circular"), blur, stride=1)[0]


def translating_clip(n: int, size: int, shift: int, g: torch.Generator) -> torch.Tensor:
    """(1, 3n, size, size): frame t+1 is frame t rolled right by ``shift`` pixels."""
    base = texture(size, size, g)
    return torch.cat([torch.roll(base, shift * t, dims=-1) for t in range(n)])[None]


def moving_square_clip(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """(3n, size, size): a bright textured square moving (+3, +2) px per frame over texture."""
    side = 3 * size // 8
    bg = 0.5 * texture(size, size, g)
    fg = 0.5 + 0.5 * texture(side, side, g)
    y0, x0 = (int(v) for v in torch.randint(4, size - side - 4 - 3 * n, (2,), generator=g))
    frames = []
    for t in range(n):
        f = bg.clone()
        y, x = y0 + 2 * t, x0 + 3 * t
        f[:, y : y + side, x : x + side] = fg
        frames.append(f)
    return torch.cat(frames)


def constant_flows(b: int, n: int, size: int, dx: float, dy: float = 0.0) -> tuple:
    """Full-resolution motion (dx, dy) px expressed at 1/2, 1/4, 1/8 (in those scales' pixels)."""
    out = []
    for s in (1, 2, 3):
        f = torch.zeros(b, 2 * (n - 1), size >> s, size >> s)
        f[:, 0::2] = dx / 2**s
        f[:, 1::2] = dy / 2**s
        out.append(f)
    return tuple(out)


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

    model = flow_generator_from_config(Cfg())
    assert (model.arch, model.num_frames) == ("TinyMotionNet3D", 5)
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
    assert abs(n_params - DEG_PARAMS[arch]) / DEG_PARAMS[arch] < 0.10, n_params


def test_3d_pairs_follow_channel_order():
    """TinyMotionNet3D's (B, 2, T, h, w) flows become channels [dx_0, dy_0, dx_1, dy_1, ...]."""
    from deg_core.models.flow.tiny_motionnet3d import _to_stacked

    flow = torch.arange(2 * 3 * 1 * 1, dtype=torch.float32).reshape(1, 2, 3, 1, 1)
    stacked = _to_stacked(flow).flatten().tolist()
    # (c=dx/dy, t) -> channel 2t + c
    assert stacked == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


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


# --------------------------------------------------------------------------- viz


def test_flow_to_rgb_basics():
    zero = flow_to_rgb(np.zeros((2, 5, 7), np.float32))
    assert zero.shape == (5, 7, 3)
    assert zero.dtype == np.uint8
    assert (zero == 255).all()  # zero flow is white

    right = np.zeros((2, 4, 4), np.float32)
    right[0] = 1.0
    r = flow_to_rgb(right)[0, 0].astype(int)
    left = flow_to_rgb(-right)[0, 0].astype(int)
    down = flow_to_rgb(torch.from_numpy(np.stack((right[1], right[0]))))[0, 0].astype(int)
    assert np.abs(r - left).sum() > 200
    assert np.abs(r - down).sum() > 200
    assert tuple(r) == (255, 0, 0)  # Middlebury: rightwards motion is red
    # magnitude controls saturation; beyond max_magnitude colours darken
    half = flow_to_rgb(right, max_magnitude=2.0)[0, 0].astype(int)
    assert half.min() > r.min()
    assert flow_to_rgb(right, max_magnitude=0.5)[0, 0].max() < 255
    with pytest.raises(ValueError, match=r"\(2, h, w\)"):
        flow_to_rgb(np.zeros((3, 4, 4)))


def test_colour_wheel_legend():
    legend = colour_wheel_legend(33)
    assert legend.shape == (33, 33, 3)
    assert (legend[16, 16] >= 250).all()  # centre = zero flow = white
    assert len({tuple(legend[16, 30]), tuple(legend[16, 2]), tuple(legend[30, 16])}) == 3


def test_flow_figure_writes_png(tmp_path):
    n, h, w = 4, 24, 32
    frames = np.random.default_rng(0).integers(0, 255, (n, h, w, 3), dtype=np.uint8)
    flows = np.random.default_rng(1).normal(size=(n - 1, 2, h // 2, w // 2)).astype(np.float32)
    path = tmp_path / "flows.png"
    fig = flow_figure(frames, flows, path)
    pad = 4
    assert fig.shape == (2 * h + 3 * pad, n * w + (n + 1) * pad, 3)
    assert fig.dtype == np.uint8
    np.testing.assert_array_equal(fig[pad : pad + h, pad : pad + w], frames[0])
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary behind
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow normally comes with torchvision
        return
    with Image.open(io.BytesIO(data)) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), fig)
    with pytest.raises(ValueError, match="N-1"):
        flow_figure(frames, flows[:2])


def test_encode_png_greyscale_roundtrip():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data = encode_png(img)
    assert data.startswith(PNG_SIGNATURE)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return
    with Image.open(io.BytesIO(data)) as im:
        np.testing.assert_array_equal(np.asarray(im), img)
