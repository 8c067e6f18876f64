"""MotionNet: the large 2-D flow generator of the hidden two-stream paper (~45.9M parameters).

Architecture from Zhu, Lan, Newsam & Hauptmann 2017 (arXiv:1704.00389) with DeepEthogram's layer
sizes: six encoder stages (two 3x3 convolutions each, 64 -> 1024 channels, full resolution down
to 1/32) and a FlowNet-style decoder that predicts flow at 1/32, 1/16, 1/8, 1/4 and 1/2. As in
DEG only the three finest (1/2, 1/4, 1/8) are returned and trained; the two coarsest still feed
the finer stages (upsampled, x2 in value, as extra decoder input).

Deliberate differences from DEG are those listed in :mod:`.tiny_motionnet` (fixed bilinear flow
upsampling, no bias before batch norm, sizes must be multiples of 32 rather than being cropped).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .tiny_motionnet import (
    check_num_frames,
    check_stack,
    conv_bn,
    flow_head,
    up_conv,
    upsample_flow,
)


def _double_conv(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """One encoder stage: a (possibly strided) 3x3 conv, then a 3x3 conv at that resolution."""
    return nn.Sequential(conv_bn(in_ch, out_ch, stride=stride), conv_bn(out_ch, out_ch))


class MotionNet(nn.Module):
    """Large 2-D flow generator: (B, 3N, H, W) -> flows at 1/2, 1/4, 1/8 resolution.

    Same output contract as :class:`~.tiny_motionnet.TinyMotionNet`: each flow is
    (B, 2*(N-1), H/2^s, W/2^s), channels ``[dx_0, dy_0, dx_1, dy_1, ...]`` (pair ``i`` maps frame
    ``i+1`` onto frame ``i``), in pixels of that scale. H and W must be multiples of 32.
    """

    arch = "MotionNet"
    size_multiple = 32

    def __init__(self, num_frames: int = 11) -> None:
        super().__init__()
        self.num_frames = check_num_frames(num_frames, self.arch)
        n_in, n_out = 3 * self.num_frames, 2 * (self.num_frames - 1)

        self.enc1 = _double_conv(n_in, 64, stride=1)  # 1
        self.enc2 = _double_conv(64, 128, stride=2)  # 1/2
        self.enc3 = _double_conv(128, 256, stride=2)  # 1/4
        self.enc4 = _double_conv(256, 512, stride=2)  # 1/8
        self.enc5 = _double_conv(512, 512, stride=2)  # 1/16
        self.enc6 = _double_conv(512, 1024, stride=2)  # 1/32

        # Decoder stage k: up-convolve the previous stage's concatenation (DEG/FlowNet feed the
        # whole concat, not the fused features, to the next up-conv), concatenate with the
        # encoder skip and the upsampled coarser flow, fuse, predict.
        self.deconv5 = up_conv(1024, 512)
        self.deconv4 = up_conv(512 + 512 + n_out, 256)
        self.deconv3 = up_conv(512 + 256 + n_out, 128)
        self.deconv2 = up_conv(256 + 128 + n_out, 64)
        self.fuse5 = conv_bn(512 + 512 + n_out, 512, act=False)
        self.fuse4 = conv_bn(512 + 256 + n_out, 256, act=False)
        self.fuse3 = conv_bn(256 + 128 + n_out, 128, act=False)
        self.fuse2 = conv_bn(128 + 64 + n_out, 64, act=False)
        self.predict32 = flow_head(1024, n_out)
        self.predict16 = flow_head(512, n_out)
        self.predict8 = flow_head(256, n_out)
        self.predict4 = flow_head(128, n_out)
        self.predict2 = flow_head(64, n_out)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, 3N, H, W) -> (flow at 1/2, flow at 1/4, flow at 1/8), each (B, 2(N-1), h, w)."""
        check_stack(x, self.num_frames, self.size_multiple, self.arch)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        e5 = self.enc5(e4)
        e6 = self.enc6(e5)

        flow32 = self.predict32(e6)
        cat5 = torch.cat((e5, self.deconv5(e6), upsample_flow(flow32)), dim=1)
        flow16 = self.predict16(self.fuse5(cat5))
        cat4 = torch.cat((e4, self.deconv4(cat5), upsample_flow(flow16)), dim=1)
        flow8 = self.predict8(self.fuse4(cat4))
        cat3 = torch.cat((e3, self.deconv3(cat4), upsample_flow(flow8)), dim=1)
        flow4 = self.predict4(self.fuse3(cat3))
        cat2 = torch.cat((e2, self.deconv2(cat3), upsample_flow(flow4)), dim=1)
        flow2 = self.predict2(self.fuse2(cat2))
        return flow2, flow4, flow8
