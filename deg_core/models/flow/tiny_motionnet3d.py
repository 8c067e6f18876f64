"""TinyMotionNet3D: a small 3-D-convolution flow generator (~0.44M parameters).

DeepEthogram's 3-D variant of TinyMotionNet: the N frames form a time axis, (B, 3, N, H, W),
and every convolution is 3-D. The encoder keeps all N time steps (stride 1 in time, widths
16/32/64); convolutions with a temporal kernel of 2 and no temporal padding turn N frame
positions into the N-1 frame *pairs* the flows live on, one flow per pair and scale.

The public contract is the same as the 2-D nets: the input is the frame-major stack
(B, 3N, H, W), reshaped internally to DEG's (B, 3, N, H, W), and each output is
(B, 2*(N-1), h, w) with channels ``[dx_0, dy_0, dx_1, dy_1, ...]`` (pair ``i`` maps frame ``i+1``
onto frame ``i``), in pixels of that scale; DEG returned (B, 2, N-1, h, w), the same numbers.
H and W must be multiples of 8 (DEG cropped instead).

The learnable tensors are one-to-one with DEG's TinyMotionNet3D (channel_base 16): like DEG, the
convolutions followed by batch norm have no bias, except the two fusion convolutions
(``xconv*``), which DEG built with one; the flow heads are Conv3d with bias and no norm.
:meth:`TinyMotionNet3D.map_deg_key` renames DEG's keys:

==================================  ===========================
DEG key prefix                      deg key prefix
==================================  ===========================
``conv1.`` .. ``conv4.``            ``conv1.`` .. ``conv4.``
``conv5.`` (1/8, frames -> pairs)   ``pair4.``
``iconv3.`` (1/4 skip -> pairs)     ``pair3.``
``iconv2.`` (1/2 skip -> pairs)     ``pair2.``
``deconv3.``, ``deconv2.``          ``deconv3.``, ``deconv2.``
``xconv3.``, ``xconv2.``            ``fuse3.``, ``fuse2.``
``predict_flow4.0.`` (1/8)          ``predict8.``
``predict_flow3.0.`` (1/4)          ``predict4.``
``predict_flow2.0.`` (1/2)          ``predict2.``
``upsampled_flow4_to_3.``           ``upflow8.``
``upsampled_flow3_to_2.``           ``upflow4.``
==================================  ===========================

(DEG wraps each flow head in a one-layer Sequential, hence its extra ``.0``.) Keys already in
deg's naming pass through, anything else maps to None (reported as unexpected).

Flow upsampling is DEG's learned ``ConvTranspose3d(2, 2, (1, 4, 4), stride (1, 2, 2), padding
(0, 1, 1))`` times 2, initialised here to per-channel bilinear interpolation in space (see
:mod:`.tiny_motionnet`; DEG started it from random weights).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .tiny_motionnet import (
    FLOW_UP_GAIN,
    LEAKY_SLOPE,
    check_num_frames,
    check_stack,
    init_bilinear_,
    rename_deg_key,
    shrink_flow_head_,
)

_Size3 = tuple[int, int, int]


def _conv3d(
    in_ch: int,
    out_ch: int,
    kernel: _Size3,
    stride: _Size3 = (1, 1, 1),
    act: bool = True,
    bias: bool = False,
) -> nn.Sequential:
    """Conv3d + BatchNorm3d (+ LeakyReLU); 'same' padding, except none in time for even kernels.

    A temporal kernel of 2 with no temporal padding is what turns T steps into T-1 pairs.
    """
    padding = ((kernel[0] - 1) // 2, (kernel[1] - 1) // 2, (kernel[2] - 1) // 2)
    layers: list[nn.Module] = [
        nn.Conv3d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=bias),
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


def _flow_upsampler3d() -> nn.ConvTranspose3d:
    """DEG's learned spatial x2 flow upsampling for (B, 2, T, h, w), initialised to bilinear."""
    layer = nn.ConvTranspose3d(2, 2, (1, 4, 4), stride=(1, 2, 2), padding=(0, 1, 1))
    init_bilinear_(layer)
    return layer


def _to_stacked(flow: Tensor) -> Tensor:
    """(B, 2, T, h, w) -> (B, 2T, h, w) with channels [dx_0, dy_0, dx_1, dy_1, ...]."""
    b, c, t, h, w = flow.shape
    return flow.permute(0, 2, 1, 3, 4).reshape(b, t * c, h, w)


class TinyMotionNet3D(nn.Module):
    """3-D-conv flow generator: (B, 3N, H, W) -> flows at 1/2, 1/4, 1/8 resolution."""

    arch = "TinyMotionNet3D"
    size_multiple = 8
    # DEG key prefix -> ours (module doc)
    DEG_RENAMES: tuple[tuple[str, str], ...] = (
        ("conv5.", "pair4."),
        ("iconv3.", "pair3."),
        ("iconv2.", "pair2."),
        ("xconv3.", "fuse3."),
        ("xconv2.", "fuse2."),
        ("predict_flow4.0.", "predict8."),
        ("predict_flow3.0.", "predict4."),
        ("predict_flow2.0.", "predict2."),
        ("upsampled_flow4_to_3.", "upflow8."),
        ("upsampled_flow3_to_2.", "upflow4."),
    )

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
        self.fuse3 = _conv3d(c3 + c2 + 2, c2, (3, 3, 3), act=False, bias=True)
        self.fuse2 = _conv3d(c2 + c1 + 2, c1, (3, 3, 3), act=False, bias=True)
        self.predict8 = shrink_flow_head_(nn.Conv3d(c2, 2, 3, padding=1))
        self.predict4 = shrink_flow_head_(nn.Conv3d(c2, 2, 3, padding=1))
        self.predict2 = shrink_flow_head_(nn.Conv3d(c1, 2, 3, padding=1))
        self.upflow8 = _flow_upsampler3d()
        self.upflow4 = _flow_upsampler3d()

    def map_deg_key(self, key: str) -> str | None:
        """DEG TinyMotionNet3D state-dict key -> this module's (table in the module doc)."""
        return rename_deg_key(key, self.DEG_RENAMES, self._modules)

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
        cat3 = (self.pair3(c3), self.deconv3(c4), FLOW_UP_GAIN * self.upflow8(flow8))
        i3 = self.fuse3(torch.cat(cat3, dim=1))
        flow4 = self.predict4(i3)
        cat2 = (self.pair2(c2), self.deconv2(i3), FLOW_UP_GAIN * self.upflow4(flow4))
        i2 = self.fuse2(torch.cat(cat2, dim=1))
        flow2 = self.predict2(i2)
        return _to_stacked(flow2), _to_stacked(flow4), _to_stacked(flow8)
