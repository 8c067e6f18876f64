"""TinyMotionNet: the small 2-D encoder-decoder flow generator (deg's default, ~1.95M parameters).

Architecture from the hidden two-stream paper (Zhu, Lan, Newsam & Hauptmann 2017,
arXiv:1704.00389) with the layer sizes DeepEthogram uses: a 7x7 convolution over the stacked
frames at full resolution, three strided convolutions down to 1/8, then two transposed-conv
decoder stages with skip connections that refine the flow at 1/4 and 1/2.

The learnable tensors are one-to-one with DEG's TinyMotionNet (same layers, shapes, biases,
batch-norm placement, LeakyReLU(0.1), skip-concatenation order ``(encoder, decoder, flow)``), so
DEG's published ``checkpoint.pt`` loads completely (:func:`deg_core.models.weights.
load_deg_pretrained` renames its keys with :meth:`TinyMotionNet.map_deg_key`):

==================================  ===========================
DEG module (key prefix)             deg module
==================================  ===========================
``conv1`` .. ``conv4``              ``conv1`` .. ``conv4``
``deconv3``, ``deconv2``            ``deconv3``, ``deconv2``
``xconv3``, ``xconv2``              ``fuse3``, ``fuse2``
``predict_flow4`` (1/8)             ``predict8``
``predict_flow3`` (1/4)             ``predict4``
``predict_flow2`` (1/2)             ``predict2``
``upsampled_flow4_to_3``            ``upflow8`` (1/8 -> 1/4)
``upsampled_flow3_to_2``            ``upflow4`` (1/4 -> 1/2)
==================================  ===========================

Everything after the module name (``.0.weight``, ``.1.running_mean``, ...) is unchanged; keys
already in deg's naming pass through, anything else maps to None (reported as unexpected).

Coarse flows are upsampled, as in DEG, by a learned ``ConvTranspose2d(C, C, 4, stride=2,
padding=1)`` whose output is multiplied by 2 (a pixel at the coarse scale is two at the finer
one). deg initialises it to per-channel bilinear interpolation (the 4x4 bilinear kernel on the
channel diagonal, zeros elsewhere, bias 0), so at initialisation ``2 * upflow(flow)`` is bilinear
x2 upsampling in size and value, exact away from the border; the outermost row and column get
3/4 of the value, because the transposed convolution sees zeros beyond the edge. DEG started it
from random (Xavier) weights instead.

Also holds the small building blocks, input checks and key renaming shared with
:mod:`.motionnet` and :mod:`.tiny_motionnet3d` (one architecture per file; helpers live with the
simplest one).

Deliberate difference from DEG: inputs whose height or width is not a multiple of 8 are rejected
instead of cropped.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import TypeVar

import torch
from torch import Tensor, nn

LEAKY_SLOPE = 0.1  # DEG / FlowNet use LeakyReLU(0.1) throughout
FLOW_UP_GAIN = 2.0  # flow values double when the grid does (pixels of the finer scale)
# Why the flow heads start small: with torch's default init a fresh generator predicts flows
# of several pixels and its loss is ~16x that of zero flow, so the first few hundred steps
# only shrink them -- a short training (a CPU demo) ends near zero flow with the motion
# information erased (flow-stream val AUROC for walking 0.54, vs 0.98 for an untrained
# generator). Starting near zero, training refines instead (0.99). Measured on the
# synthetic demo project; see benchmarks/RESULTS.md, "Accuracy ablation".
FLOW_HEAD_INIT_GAIN = 0.02
_BILINEAR_TAPS = (0.25, 0.75, 0.75, 0.25)  # 1-D bilinear x2 kernel for k=4, stride 2, padding 1


def conv_bn(
    in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, act: bool = True
) -> nn.Sequential:
    """'Same'-padded Conv2d (with bias, as in DEG) + BatchNorm2d (+ LeakyReLU when ``act``)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=(kernel - 1) // 2),
        nn.BatchNorm2d(out_ch),
    ]
    if act:
        layers.append(nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
    return nn.Sequential(*layers)


def up_conv(in_ch: int, out_ch: int) -> nn.Sequential:
    """x2 spatial upsampling of features: ConvTranspose2d(k=4, s=2, p=1) + LeakyReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1),
        nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
    )


def flow_head(in_ch: int, out_ch: int) -> nn.Conv2d:
    """3x3 convolution predicting ``out_ch`` = 2*(N-1) flow channels (no bias, as in DEG).

    Its default random weights are scaled by FLOW_HEAD_INIT_GAIN, so a fresh generator
    emits small flows that are still random projections of its features (see the constant).
    """
    return shrink_flow_head_(nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False))


_Head = TypeVar("_Head", nn.Conv2d, nn.Conv3d)


def shrink_flow_head_(head: _Head) -> _Head:
    """Scale a fresh flow head's random weights by FLOW_HEAD_INIT_GAIN and zero its bias."""
    with torch.no_grad():
        head.weight.mul_(FLOW_HEAD_INIT_GAIN)
        if head.bias is not None:
            head.bias.zero_()
    return head


def init_bilinear_(layer: nn.ConvTranspose2d | nn.ConvTranspose3d) -> None:
    """Make a (C, C, [1,] 4, 4), stride-2, padding-1 transposed conv upsample each channel
    bilinearly (x2 in size, values unchanged): bilinear kernel on the diagonal, zeros off it,
    bias 0."""
    weight = layer.weight
    channels = weight.shape[0]
    if layer.groups != 1 or weight.shape[1] != channels or tuple(weight.shape[-2:]) != (4, 4):
        raise ValueError(f"expected a (C, C, ..., 4, 4) transposed conv, got {tuple(weight.shape)}")
    taps = torch.tensor(_BILINEAR_TAPS, dtype=weight.dtype, device=weight.device)
    kernel = torch.outer(taps, taps).reshape(weight.shape[2:])
    with torch.no_grad():
        weight.zero_()
        for c in range(channels):
            weight[c, c] = kernel
        if layer.bias is not None:
            layer.bias.zero_()


def flow_upsampler(channels: int) -> nn.ConvTranspose2d:
    """DEG's learned flow upsampling, ConvTranspose2d(C, C, 4, 2, 1), initialised to bilinear.

    Callers multiply its output by FLOW_UP_GAIN, as DEG does.
    """
    layer = nn.ConvTranspose2d(channels, channels, kernel_size=4, stride=2, padding=1)
    init_bilinear_(layer)
    return layer


def rename_deg_key(
    key: str, renames: Sequence[tuple[str, str]], own_modules: Container[str]
) -> str | None:
    """DEG flow-generator key -> ours: replace the first matching DEG prefix of ``renames``; a
    key whose first component is one of ``own_modules`` (already deg's naming) is kept; anything
    else is None."""
    for theirs, ours in renames:
        if key.startswith(theirs):
            return ours + key[len(theirs) :]
    return key if key.partition(".")[0] in own_modules else None


def check_stack(x: Tensor, num_frames: int, multiple: int, arch: str) -> None:
    """Raise ValueError unless ``x`` is (B, 3N, H, W) with H and W multiples of ``multiple``."""
    if x.ndim != 4 or x.shape[1] != 3 * num_frames:
        raise ValueError(
            f"{arch} expects (B, {3 * num_frames}, H, W) (N={num_frames} RGB frames stacked in "
            f"channels), got {tuple(x.shape)}"
        )
    h, w = x.shape[-2:]
    if h % multiple or w % multiple or h == 0 or w == 0:
        raise ValueError(
            f"{arch} needs height and width that are multiples of {multiple}, got {h}x{w}"
        )


def check_num_frames(num_frames: int, arch: str) -> int:
    """Validate N (at least two frames make one flow)."""
    if int(num_frames) != num_frames or num_frames < 2:
        raise ValueError(f"{arch} needs num_frames >= 2, got {num_frames!r}")
    return int(num_frames)


class TinyMotionNet(nn.Module):
    """Small 2-D flow generator: (B, 3N, H, W) -> flows at 1/2, 1/4, 1/8 resolution.

    Each returned flow is (B, 2*(N-1), H/2^s, W/2^s), channels ``[dx_0, dy_0, dx_1, dy_1, ...]``
    where pair ``i`` maps frame ``i+1`` onto frame ``i``
    (``frame_i(p) ≈ frame_{i+1}(p + flow_i(p))``), in pixels of that scale.
    H and W must be multiples of 8 (``size_multiple``).
    """

    arch = "TinyMotionNet"
    size_multiple = 8
    # DEG key prefix -> ours (module doc)
    DEG_RENAMES: tuple[tuple[str, str], ...] = (
        ("xconv3.", "fuse3."),
        ("xconv2.", "fuse2."),
        ("predict_flow4.", "predict8."),
        ("predict_flow3.", "predict4."),
        ("predict_flow2.", "predict2."),
        ("upsampled_flow4_to_3.", "upflow8."),
        ("upsampled_flow3_to_2.", "upflow4."),
    )

    def __init__(self, num_frames: int = 11) -> None:
        super().__init__()
        self.num_frames = check_num_frames(num_frames, self.arch)
        n_in, n_out = 3 * self.num_frames, 2 * (self.num_frames - 1)

        # encoder: full res -> 1/2 -> 1/4 -> 1/8
        self.conv1 = conv_bn(n_in, 64, kernel=7)
        self.conv2 = conv_bn(64, 128, kernel=5, stride=2)
        self.conv3 = conv_bn(128, 256, stride=2)
        self.conv4 = conv_bn(256, 128, stride=2)
        # decoder: features up x2, fused with the encoder skip and the upsampled coarser flow
        self.deconv3 = up_conv(128, 128)
        self.deconv2 = up_conv(128, 64)
        self.fuse3 = conv_bn(256 + 128 + n_out, 128, act=False)
        self.fuse2 = conv_bn(128 + 64 + n_out, 64, act=False)
        self.predict8 = flow_head(128, n_out)
        self.predict4 = flow_head(128, n_out)
        self.predict2 = flow_head(64, n_out)
        self.upflow8 = flow_upsampler(n_out)
        self.upflow4 = flow_upsampler(n_out)

    def map_deg_key(self, key: str) -> str | None:
        """DEG TinyMotionNet state-dict key -> this module's (table in the module doc)."""
        return rename_deg_key(key, self.DEG_RENAMES, self._modules)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, 3N, H, W) -> (flow at 1/2, flow at 1/4, flow at 1/8), each (B, 2(N-1), h, w)."""
        check_stack(x, self.num_frames, self.size_multiple, self.arch)
        c1 = self.conv1(x)
        c2 = self.conv2(c1)  # 1/2
        c3 = self.conv3(c2)  # 1/4
        c4 = self.conv4(c3)  # 1/8

        flow8 = self.predict8(c4)
        up8 = FLOW_UP_GAIN * self.upflow8(flow8)
        i3 = self.fuse3(torch.cat((c3, self.deconv3(c4), up8), dim=1))
        flow4 = self.predict4(i3)
        up4 = FLOW_UP_GAIN * self.upflow4(flow4)
        i2 = self.fuse2(torch.cat((c2, self.deconv2(i3), up4), dim=1))
        flow2 = self.predict2(i2)
        return flow2, flow4, flow8
