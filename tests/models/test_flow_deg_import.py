"""DeepEthogram's flow-generator checkpoints load into deg's nets, tensor by tensor."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from deg_core.models.flow import (
    FLOW_ARCHS,
    build_flow_generator,
)
from deg_core.models.flow.tiny_motionnet import FLOW_UP_GAIN
from deg_core.models.weights import load_deg_pretrained


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


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
DEG_ARCHS = [a for a in FLOW_ARCHS if a in DEG_TABLES]  # PairFlowNet is deg's own


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


@pytest.mark.parametrize("arch", DEG_ARCHS)
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


@pytest.mark.parametrize("arch", DEG_ARCHS)
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


@pytest.mark.parametrize("arch", DEG_ARCHS)
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
