"""Flow generators, their self-supervised loss, and flow visualisation (CPU, tiny inputs)."""

from __future__ import annotations

import io
import math
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
    flow_to_rgb,
    ssim,
    warp,
)
from deg_core.models.flow.tiny_motionnet import FLOW_UP_GAIN
from deg_core.models.flow.viz import colour_wheel_legend, encode_png
from deg_core.models.weights import load_deg_pretrained

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


# --------------------------------------------------------------------------- DEG checkpoints
# DEG's flow generators written out independently from deepethogram/flow_generator/models/
# {TinyMotionNet,MotionNet,TinyMotionNet3D,components}.py: per module, its DEG key prefix, the
# key prefix it must land on in deg, and the tensors it holds ({suffix: shape}). DEG's `conv` and
# `i_conv` are Sequential(Conv2d with bias, BatchNorm2d[, LeakyReLU]); `deconv` is
# Sequential(ConvTranspose2d with bias, LeakyReLU); `predict_flow` a bare Conv2d without bias;
# `conv3d`/`deconv3d` are Sequential(conv, BatchNorm3d[, LeakyReLU]) (bias only where asked);
# `predict_flow_3d` is a one-layer Sequential(Conv3d with bias); the flow upsamplers are bare
# ConvTranspose2d/3d(C, C) with bias.

Spec = dict[str, tuple[int, ...]]
BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _kernel(k: int | tuple[int, ...], dims: int) -> tuple[int, ...]:
    return (k,) * dims if isinstance(k, int) else k


def conv_bn_spec(cin: int, cout: int, k, bias: bool = True, dims: int = 2) -> Spec:
    spec: Spec = {"0.weight": (cout, cin, *_kernel(k, dims))}
    if bias:
        spec["0.bias"] = (cout,)
    spec.update({f"1.{n}": (cout,) for n in ("weight", "bias", "running_mean", "running_var")})
    spec["1.num_batches_tracked"] = ()
    return spec


def deconv_spec(cin: int, cout: int) -> Spec:  # DEG deconv(): ConvTranspose2d(4, 2, 1) + act
    return {"0.weight": (cin, cout, 4, 4), "0.bias": (cout,)}


def deconv3d_bn_spec(cin: int, cout: int) -> Spec:  # deconv3d(bias=False), BN, act
    spec = conv_bn_spec(cin, cout, (1, 4, 4), bias=False, dims=3)
    spec["0.weight"] = (cin, cout, 1, 4, 4)
    return spec


def bare_spec(shape: tuple[int, ...], bias: int | None) -> Spec:
    return {"weight": shape} if bias is None else {"weight": shape, "bias": (bias,)}


def deg_tiny_motionnet(n: int) -> list[tuple[str, str, Spec]]:
    i, o = 3 * n, 2 * (n - 1)
    return [
        ("conv1.", "conv1.", conv_bn_spec(i, 64, 7)),
        ("conv2.", "conv2.", conv_bn_spec(64, 128, 5)),
        ("conv3.", "conv3.", conv_bn_spec(128, 256, 3)),
        ("conv4.", "conv4.", conv_bn_spec(256, 128, 3)),
        ("deconv3.", "deconv3.", deconv_spec(128, 128)),
        ("deconv2.", "deconv2.", deconv_spec(128, 64)),
        ("xconv3.", "fuse3.", conv_bn_spec(384 + o, 128, 3)),
        ("xconv2.", "fuse2.", conv_bn_spec(192 + o, 64, 3)),
        ("predict_flow4.", "predict8.", bare_spec((o, 128, 3, 3), None)),
        ("predict_flow3.", "predict4.", bare_spec((o, 128, 3, 3), None)),
        ("predict_flow2.", "predict2.", bare_spec((o, 64, 3, 3), None)),
        ("upsampled_flow4_to_3.", "upflow8.", bare_spec((o, o, 4, 4), o)),
        ("upsampled_flow3_to_2.", "upflow4.", bare_spec((o, o, 4, 4), o)),
    ]


def deg_motionnet(n: int) -> list[tuple[str, str, Spec]]:
    i, o = 3 * n, 2 * (n - 1)
    widths = [i, 64, 128, 256, 512, 512, 1024]
    table = []
    for k in range(1, 7):
        table.append((f"conv{k}.", f"enc{k}.0.", conv_bn_spec(widths[k - 1], widths[k], 3)))
        table.append((f"conv{k}_1.", f"enc{k}.1.", conv_bn_spec(widths[k], widths[k], 3)))
    deconv_in = {5: 1024, 4: 1024 + o, 3: 768 + o, 2: 384 + o}
    deconv_out = {5: 512, 4: 256, 3: 128, 2: 64}
    xconv_in = {5: 1024 + o, 4: 768 + o, 3: 384 + o, 2: 192 + o}
    for level in (5, 4, 3, 2):
        table.append(
            (f"deconv{level}.", f"deconv{level}.", deconv_spec(deconv_in[level], deconv_out[level]))
        )
        table.append(
            (f"xconv{level}.", f"fuse{level}.", conv_bn_spec(xconv_in[level], deconv_out[level], 3))
        )
    for level, cin, scale in ((6, 1024, 32), (5, 512, 16), (4, 256, 8), (3, 128, 4), (2, 64, 2)):
        table.append((f"predict_flow{level}.", f"predict{scale}.", bare_spec((o, cin, 3, 3), None)))
    for level, scale in ((6, 32), (5, 16), (4, 8), (3, 4)):
        table.append(
            (
                f"upsampled_flow{level}_to_{level - 1}.",
                f"upflow{scale}.",
                bare_spec((o, o, 4, 4), o),
            )
        )
    return table


def deg_tiny_motionnet3d(n: int) -> list[tuple[str, str, Spec]]:
    del n  # DEG's 3-D net takes (B, 3, T, H, W): no layer depends on the number of frames
    c1, c2, c3 = 16, 32, 64

    def c3d(cin, cout, k, bias=False):
        return conv_bn_spec(cin, cout, k, bias=bias, dims=3)

    return [
        ("conv1.", "conv1.", c3d(3, c1, 7)),
        ("conv2.", "conv2.", c3d(c1, c2, 5)),
        ("conv3.", "conv3.", c3d(c2, c3, 3)),
        ("conv4.", "conv4.", c3d(c3, c2, 3)),
        ("conv5.", "pair4.", c3d(c2, c2, (2, 3, 3))),
        ("deconv3.", "deconv3.", deconv3d_bn_spec(c2, c2)),
        ("deconv2.", "deconv2.", deconv3d_bn_spec(c2, c1)),
        ("iconv3.", "pair3.", c3d(c3, c3, (2, 3, 3))),
        ("iconv2.", "pair2.", c3d(c2, c2, (2, 3, 3))),
        ("xconv3.", "fuse3.", c3d(c2 + c3 + 2, c2, 3, bias=True)),
        ("xconv2.", "fuse2.", c3d(c1 + c2 + 2, c1, 3, bias=True)),
        ("predict_flow4.0.", "predict8.", bare_spec((2, c2, 3, 3, 3), 2)),
        ("predict_flow3.0.", "predict4.", bare_spec((2, c2, 3, 3, 3), 2)),
        ("predict_flow2.0.", "predict2.", bare_spec((2, c1, 3, 3, 3), 2)),
        ("upsampled_flow4_to_3.", "upflow8.", bare_spec((2, 2, 1, 4, 4), 2)),
        ("upsampled_flow3_to_2.", "upflow4.", bare_spec((2, 2, 1, 4, 4), 2)),
    ]


DEG_TABLES = {
    "TinyMotionNet": deg_tiny_motionnet,
    "MotionNet": deg_motionnet,
    "TinyMotionNet3D": deg_tiny_motionnet3d,
}


def deg_state_dict(table, seed: int) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Random tensors in DEG's key layout (every tensor distinct; weights scaled by fan-in so a
    forward pass stays finite), and the deg key each must land on."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    names: dict[str, str] = {}
    for theirs, ours, spec in table:
        for suffix, shape in spec.items():
            if suffix.endswith("num_batches_tracked"):
                value = torch.randint(1, 10**6, (), generator=g)
            elif suffix.endswith("running_var"):
                value = 0.5 + torch.rand(shape, generator=g)
            elif len(shape) > 1:
                fan_in = math.prod(shape) // shape[0]
                value = torch.randn(shape, generator=g) / math.sqrt(fan_in)
            else:
                value = 0.1 * torch.randn(shape, generator=g)
            state[theirs + suffix] = value
            names[theirs + suffix] = ours + suffix
    return state, names


def deg_checkpoint(state: dict, arch: str, n: int) -> dict:
    """What DEG's utils.checkpoint saved (hyperparameters: its config, here a plain dict)."""
    hyper = {"flow_generator": {"arch": arch, "n_rgb": n, "loss": "MotionNet"}, "compute": {}}
    return {"epoch": 17, "state_dict": state, "optimizer": None, "hyperparameters": hyper}


# DEG's forward passes, written against its state dict with torch.nn.functional only.


def _bn(sd, p, x):
    return F.batch_norm(
        x, sd[p + "running_mean"], sd[p + "running_var"], sd[p + "weight"], sd[p + "bias"]
    )


def _conv(sd, p, x, stride=1, act=True):
    """DEG conv / i_conv / conv3d: conv ('same' padding, none for even kernels) + BN [+ act]."""
    w = sd[p + "0.weight"]
    conv = F.conv2d if w.ndim == 4 else F.conv3d
    pad = [(k - 1) // 2 for k in w.shape[2:]]
    y = _bn(sd, p + "1.", conv(x, w, sd.get(p + "0.bias"), stride=stride, padding=pad))
    return F.leaky_relu(y, 0.1) if act else y


def _deconv(sd, p, x):
    w = sd[p + "0.weight"]
    if w.ndim == 4:
        y = F.conv_transpose2d(x, w, sd[p + "0.bias"], stride=2, padding=1)
    else:
        y = _bn(sd, p + "1.", F.conv_transpose3d(x, w, stride=(1, 2, 2), padding=(0, 1, 1)))
    return F.leaky_relu(y, 0.1)


def _up_flow(sd, p, flow):
    w, b = sd[p + "weight"], sd[p + "bias"]
    if w.ndim == 4:
        return 2 * F.conv_transpose2d(flow, w, b, stride=2, padding=1)
    return 2 * F.conv_transpose3d(flow, w, b, stride=(1, 2, 2), padding=(0, 1, 1))


def deg_forward_tiny(sd, x):
    c1 = _conv(sd, "conv1.", x)
    c2 = _conv(sd, "conv2.", c1, 2)
    c3 = _conv(sd, "conv3.", c2, 2)
    c4 = _conv(sd, "conv4.", c3, 2)
    f4 = F.conv2d(c4, sd["predict_flow4.weight"], padding=1)
    up4 = _up_flow(sd, "upsampled_flow4_to_3.", f4)
    i3 = _conv(sd, "xconv3.", torch.cat((c3, _deconv(sd, "deconv3.", c4), up4), 1), act=False)
    f3 = F.conv2d(i3, sd["predict_flow3.weight"], padding=1)
    up3 = _up_flow(sd, "upsampled_flow3_to_2.", f3)
    i2 = _conv(sd, "xconv2.", torch.cat((c2, _deconv(sd, "deconv2.", i3), up3), 1), act=False)
    return F.conv2d(i2, sd["predict_flow2.weight"], padding=1), f3, f4


def deg_forward_motionnet(sd, x):
    enc, out = {}, x
    for k in range(1, 7):
        out = _conv(sd, f"conv{k}_1.", _conv(sd, f"conv{k}.", out, 1 if k == 1 else 2))
        enc[k] = out
    flows = {6: F.conv2d(out, sd["predict_flow6.weight"], padding=1)}
    features = enc[6]
    for level in (5, 4, 3, 2):
        up = _up_flow(sd, f"upsampled_flow{level + 1}_to_{level}.", flows[level + 1])
        concat = torch.cat((enc[level], _deconv(sd, f"deconv{level}.", features), up), 1)
        fused = _conv(sd, f"xconv{level}.", concat, act=False)
        flows[level] = F.conv2d(fused, sd[f"predict_flow{level}.weight"], padding=1)
        features = concat  # DEG up-convolves the whole concatenation
    return flows[2], flows[3], flows[4]


def deg_forward_3d(sd, x, n):
    b, _, h, w = x.shape
    clip = x.reshape(b, n, 3, h, w).transpose(1, 2)  # DEG's input: (B, 3, T, H, W)

    def predict(p, t):
        return F.conv3d(t, sd[p + "0.weight"], sd[p + "0.bias"], padding=1)

    s = (1, 2, 2)
    c2 = _conv(sd, "conv2.", _conv(sd, "conv1.", clip), s)
    c3 = _conv(sd, "conv3.", c2, s)
    c5 = _conv(sd, "conv5.", _conv(sd, "conv4.", c3, s))
    f4 = predict("predict_flow4.", c5)
    cat3 = (
        _conv(sd, "iconv3.", c3),
        _deconv(sd, "deconv3.", c5),
        _up_flow(sd, "upsampled_flow4_to_3.", f4),
    )
    i3 = _conv(sd, "xconv3.", torch.cat(cat3, 1), act=False)
    f3 = predict("predict_flow3.", i3)
    cat2 = (
        _conv(sd, "iconv2.", c2),
        _deconv(sd, "deconv2.", i3),
        _up_flow(sd, "upsampled_flow3_to_2.", f3),
    )
    f2 = predict("predict_flow2.", _conv(sd, "xconv2.", torch.cat(cat2, 1), act=False))
    # DEG's (B, 2, T-1, h, w), read pair-major as its Reconstructor does: [dx_0, dy_0, dx_1, ...]
    return tuple(f.transpose(1, 2).reshape(b, -1, *f.shape[-2:]) for f in (f2, f3, f4))


DEG_INPUT_SIZE = {"TinyMotionNet": (32, 48), "MotionNet": (64, 32), "TinyMotionNet3D": (24, 32)}


@pytest.mark.parametrize("arch", FLOW_ARCHS)
def test_deg_checkpoint_every_tensor_lands(arch, tmp_path):
    """A checkpoint in DEG's exact key layout (N=11, as released) loads one-to-one: every DEG
    tensor lands on the matching deg tensor, none of ours is left out, and the loaded model
    computes what DEG's network computes with those weights."""
    n = 11
    theirs, names = deg_state_dict(DEG_TABLES[arch](n), seed=FLOW_ARCHS.index(arch))
    path = tmp_path / "checkpoint.pt"
    torch.save(deg_checkpoint(theirs, arch, n), path)

    model = build_flow_generator(arch, num_frames=n)
    ours_before = model.state_dict()
    assert len(set(names.values())) == len(names)  # the table is one-to-one
    assert set(names.values()) == set(ours_before)  # ... and covers all of ours
    for key, value in theirs.items():
        assert ours_before[names[key]].shape == value.shape, key

    report = load_deg_pretrained(model, path, "flow_generator")
    assert report == {"loaded": len(theirs), "missing": [], "unexpected": [], "skipped": []}
    ours = model.state_dict()
    for key, value in theirs.items():
        assert torch.equal(ours[names[key]], value), key
        assert model.map_deg_key(key) == names[key]
    n_deg_params = sum(v.numel() for k, v in theirs.items() if not k.endswith(BN_BUFFERS))
    assert sum(p.numel() for p in model.parameters()) == n_deg_params

    # the weights work: same outputs as DEG's forward pass (eval mode: BN running statistics)
    model.eval()
    h, w = DEG_INPUT_SIZE[arch]
    x = torch.rand(2, 3 * n, h, w, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        mine = model(x)
        if arch == "TinyMotionNet":
            ref = deg_forward_tiny(theirs, x)
        elif arch == "MotionNet":
            ref = deg_forward_motionnet(theirs, x)
        else:
            ref = deg_forward_3d(theirs, x, n)
    for s, (a, b) in enumerate(zip(mine, ref, strict=True), start=1):
        assert a.shape == b.shape == (2, 2 * (n - 1), h >> s, w >> s)
        assert b.abs().max() > 1e-3  # not trivially zero
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


def test_deg_lightning_layout(tmp_path):
    """DEG's Lightning checkpoints prefix keys with "model."; they still land."""
    n = 3
    theirs, names = deg_state_dict(deg_tiny_motionnet(n), seed=11)
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in theirs.items()}, "epoch": 1}, path)
    model = build_flow_generator("TinyMotionNet", num_frames=n)
    report = load_deg_pretrained(model, path, "flow_generator")
    assert (report["loaded"], report["missing"], report["unexpected"]) == (len(theirs), [], [])
    ours = model.state_dict()
    assert all(torch.equal(ours[names[k]], v) for k, v in theirs.items())


@pytest.mark.parametrize("arch", FLOW_ARCHS)
def test_map_deg_key_passes_own_names_and_drops_unknown(arch):
    model = build_flow_generator(arch, num_frames=3)
    for key in model.state_dict():
        assert model.map_deg_key(key) == key
    assert model.map_deg_key("criterion.smoothness.weight") is None
    assert model.map_deg_key("flow_classifier.0.conv1.weight") is None
    assert model.map_deg_key("predict_flow9.weight") is None


def test_motionnet_deg_key_examples():
    model = build_flow_generator("MotionNet", num_frames=3)
    assert model.map_deg_key("conv1.0.weight") == "enc1.0.0.weight"
    assert model.map_deg_key("conv1_1.1.running_var") == "enc1.1.1.running_var"
    assert model.map_deg_key("conv6_1.0.bias") == "enc6.1.0.bias"
    assert model.map_deg_key("predict_flow6.weight") == "predict32.weight"
    assert model.map_deg_key("upsampled_flow6_to_5.bias") == "upflow32.bias"
    assert model.map_deg_key("xconv5.1.num_batches_tracked") == "fuse5.1.num_batches_tracked"


@pytest.mark.parametrize("arch", FLOW_ARCHS)
def test_learned_flow_upsampling_starts_bilinear(arch):
    """At init the learned flow upsamplers (times 2, as in the forward pass) are bilinear x2
    upsampling, per channel, in size and value; exact away from the one-pixel border."""
    model = build_flow_generator(arch, num_frames=4)
    ups = [m for name, m in model.named_children() if name.startswith("upflow")]
    assert len(ups) == (4 if arch == "MotionNet" else 2)
    flow = torch.randn(2, 6, 5, 7)
    expected = 2.0 * F.interpolate(flow, scale_factor=2.0, mode="bilinear", align_corners=False)
    for layer in ups:
        assert not layer.bias.any()
        with torch.no_grad():
            if arch == "TinyMotionNet3D":  # (B, 2, T, h, w), T = 3 pairs
                clip = flow.reshape(2, 3, 2, 5, 7).transpose(1, 2)
                out = FLOW_UP_GAIN * layer(clip)
                out = out.transpose(1, 2).reshape(2, 6, 10, 14)
            else:
                out = FLOW_UP_GAIN * layer(flow)
        torch.testing.assert_close(out[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1])
        # the border sees zeros beyond the edge: 3/4 of the value there
        torch.testing.assert_close(out[..., 0, 1:-1], 0.75 * expected[..., 0, 1:-1])


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
