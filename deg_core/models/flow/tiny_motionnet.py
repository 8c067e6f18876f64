"""TinyMotionNet: the small 2-D encoder-decoder flow generator (deg's default, ~1.94M parameters).

Architecture from the hidden two-stream paper (Zhu, Lan, Newsam & Hauptmann 2017,
arXiv:1704.00389) with the layer sizes DeepEthogram uses: a 7x7 convolution over the stacked
frames at full resolution, three strided convolutions down to 1/8, then two transposed-conv
decoder stages with skip connections that refine the flow at 1/4 and 1/2.

Also holds the small 2-D building blocks and input checks shared with :mod:`.motionnet` and
:mod:`.tiny_motionnet3d` (one architecture per file; helpers live with the simplest one).

Differences from DEG, all deliberate:

* coarse flows are upsampled with fixed bilinear interpolation (x2 in size *and* value, so they
  stay in pixels of the finer grid) instead of a learned transposed convolution;
* convolutions followed by batch norm have no bias (it would be cancelled by the norm);
* inputs whose height or width is not a multiple of 8 are rejected instead of cropped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LEAKY_SLOPE = 0.1  # DEG / FlowNet use LeakyReLU(0.1) throughout


def conv_bn(
    in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, act: bool = True
) -> nn.Sequential:
    """'Same'-padded Conv2d + BatchNorm2d (+ LeakyReLU when ``act``)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False),
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
    """3x3 convolution predicting ``out_ch`` = 2*(N-1) flow channels (no bias, as in DEG)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False)


def upsample_flow(flow: Tensor) -> Tensor:
    """(B, C, h, w) -> (B, C, 2h, 2w): bilinear x2, values doubled to stay in (finer) pixels."""
    return 2.0 * F.interpolate(flow, scale_factor=2.0, mode="bilinear", align_corners=False)


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

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, 3N, H, W) -> (flow at 1/2, flow at 1/4, flow at 1/8), each (B, 2(N-1), h, w)."""
        check_stack(x, self.num_frames, self.size_multiple, self.arch)
        c1 = self.conv1(x)
        c2 = self.conv2(c1)  # 1/2
        c3 = self.conv3(c2)  # 1/4
        c4 = self.conv4(c3)  # 1/8

        flow8 = self.predict8(c4)
        i3 = self.fuse3(torch.cat((c3, self.deconv3(c4), upsample_flow(flow8)), dim=1))
        flow4 = self.predict4(i3)
        i2 = self.fuse2(torch.cat((c2, self.deconv2(i3), upsample_flow(flow4)), dim=1))
        flow2 = self.predict2(i2)
        return flow2, flow4, flow8
