"""TinyMotionNet3D: a small 3-D-convolution flow generator (~0.44M parameters).

DeepEthogram's 3-D variant of TinyMotionNet: the N frames form a time axis, (B, 3, N, H, W),
and every convolution is 3-D. The encoder keeps all N time steps (stride 1 in time, widths
16/32/64); convolutions with a temporal kernel of 2 and no temporal padding turn N frame
positions into the N-1 frame *pairs* the flows live on, one flow per pair and scale.

The public contract is the same as the 2-D nets: the input is the frame-major stack
(B, 3N, H, W), reshaped internally, and each output is (B, 2*(N-1), h, w) with channels
``[dx_0, dy_0, dx_1, dy_1, ...]`` (pair ``i`` maps frame ``i+1`` onto frame ``i``), in pixels of
that scale. H and W must be multiples of 8. Flow upsampling is fixed bilinear (x2 in value), as
in :mod:`.tiny_motionnet`, instead of DEG's learned transposed convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tiny_motionnet import LEAKY_SLOPE, check_num_frames, check_stack

_Size3 = tuple[int, int, int]


def _conv3d(
    in_ch: int, out_ch: int, kernel: _Size3, stride: _Size3 = (1, 1, 1), act: bool = True
) -> nn.Sequential:
    """Conv3d + BatchNorm3d (+ LeakyReLU); 'same' padding, except none in time for even kernels.

    A temporal kernel of 2 with no temporal padding is what turns T steps into T-1 pairs.
    """
    padding = ((kernel[0] - 1) // 2, (kernel[1] - 1) // 2, (kernel[2] - 1) // 2)
    layers: list[nn.Module] = [
        nn.Conv3d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm3d(out_ch),
    ]
    if act:
        layers.append(nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
    return nn.Sequential(*layers)


def _up_conv3d(in_ch: int, out_ch: int) -> nn.Sequential:
    """x2 spatial (not temporal) upsampling: ConvTranspose3d (1, 4, 4) + BN + LeakyReLU."""
    return nn.Sequential(
        nn.ConvTranspose3d(
            in_ch, out_ch, (1, 4, 4), stride=(1, 2, 2), padding=(0, 1, 1), bias=False
        ),
        nn.BatchNorm3d(out_ch),
        nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
    )


def _upsample_flow3d(flow: Tensor) -> Tensor:
    """(B, 2, T, h, w) -> (B, 2, T, 2h, 2w), values x2 so they stay in (finer) pixels."""
    return 2.0 * F.interpolate(
        flow, scale_factor=(1.0, 2.0, 2.0), mode="trilinear", align_corners=False
    )


def _to_stacked(flow: Tensor) -> Tensor:
    """(B, 2, T, h, w) -> (B, 2T, h, w) with channels [dx_0, dy_0, dx_1, dy_1, ...]."""
    b, c, t, h, w = flow.shape
    return flow.permute(0, 2, 1, 3, 4).reshape(b, t * c, h, w)


class TinyMotionNet3D(nn.Module):
    """3-D-conv flow generator: (B, 3N, H, W) -> flows at 1/2, 1/4, 1/8 resolution."""

    arch = "TinyMotionNet3D"
    size_multiple = 8

    def __init__(self, num_frames: int = 11, channel_base: int = 16) -> None:
        super().__init__()
        self.num_frames = check_num_frames(num_frames, self.arch)
        c1, c2, c3 = channel_base, 2 * channel_base, 4 * channel_base

        # encoder over (T=N, H, W): full res -> 1/2 -> 1/4 -> 1/8, time kept
        self.conv1 = _conv3d(3, c1, (7, 7, 7))
        self.conv2 = _conv3d(c1, c2, (5, 5, 5), stride=(1, 2, 2))
        self.conv3 = _conv3d(c2, c3, (3, 3, 3), stride=(1, 2, 2))
        self.conv4 = _conv3d(c3, c2, (3, 3, 3), stride=(1, 2, 2))
        # frames -> pairs (T -> T-1) on the bottleneck and on both skip connections
        self.pair4 = _conv3d(c2, c2, (2, 3, 3))
        self.pair3 = _conv3d(c3, c3, (2, 3, 3))
        self.pair2 = _conv3d(c2, c2, (2, 3, 3))
        # decoder
        self.deconv3 = _up_conv3d(c2, c2)
        self.deconv2 = _up_conv3d(c2, c1)
        self.fuse3 = _conv3d(c3 + c2 + 2, c2, (3, 3, 3), act=False)
        self.fuse2 = _conv3d(c2 + c1 + 2, c1, (3, 3, 3), act=False)
        self.predict8 = nn.Conv3d(c2, 2, 3, padding=1)
        self.predict4 = nn.Conv3d(c2, 2, 3, padding=1)
        self.predict2 = nn.Conv3d(c1, 2, 3, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, 3N, H, W) -> (flow at 1/2, flow at 1/4, flow at 1/8), each (B, 2(N-1), h, w)."""
        check_stack(x, self.num_frames, self.size_multiple, self.arch)
        b, _, h, w = x.shape
        # frame-major channel stack -> (B, 3, T, H, W)
        clip = x.reshape(b, self.num_frames, 3, h, w).transpose(1, 2)
        c1 = self.conv1(clip)
        c2 = self.conv2(c1)  # 1/2
        c3 = self.conv3(c2)  # 1/4
        c4 = self.pair4(self.conv4(c3))  # 1/8, T-1

        flow8 = self.predict8(c4)
        cat3 = (self.pair3(c3), self.deconv3(c4), _upsample_flow3d(flow8))
        i3 = self.fuse3(torch.cat(cat3, dim=1))
        flow4 = self.predict4(i3)
        cat2 = (self.pair2(c2), self.deconv2(i3), _upsample_flow3d(flow4))
        i2 = self.fuse2(torch.cat(cat2, dim=1))
        flow2 = self.predict2(i2)
        return _to_stacked(flow2), _to_stacked(flow4), _to_stacked(flow8)
