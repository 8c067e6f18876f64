"""MotionNet: the large 2-D flow generator of the hidden two-stream paper (~45.9M parameters).

Architecture from Zhu, Lan, Newsam & Hauptmann 2017 (arXiv:1704.00389) with DeepEthogram's layer
sizes: six encoder stages (two 3x3 convolutions each, 64 -> 1024 channels, full resolution down
to 1/32) and a FlowNet-style decoder that predicts flow at 1/32, 1/16, 1/8, 1/4 and 1/2. As in
DEG only the three finest (1/2, 1/4, 1/8) are returned and trained; the two coarsest still feed
the finer stages (upsampled, x2 in value, as extra decoder input).

The learnable tensors are one-to-one with DEG's MotionNet (same layers, shapes, biases, batch
norm, LeakyReLU(0.1); each up-convolution takes the previous stage's whole concatenation, and
skips concatenate as ``(encoder, decoder, flow)``). :meth:`MotionNet.map_deg_key` renames DEG's
keys (k = 1..6, L = 2..5 for deconv/xconv, 2..6 for predictions):

==================================  ===========================
DEG module (key prefix)             deg module
==================================  ===========================
``conv<k>``                         ``enc<k>.0``
``conv<k>_1``                       ``enc<k>.1``
``deconv<L>``                       ``deconv<L>``
``xconv<L>``                        ``fuse<L>``
``predict_flow<L>``                 ``predict<2^(L-1)>`` (``predict_flow6`` -> ``predict32``)
``upsampled_flow<L>_to_<L-1>``      ``upflow<2^(L-1)>`` (``upsampled_flow6_to_5`` -> ``upflow32``)
==================================  ===========================

The rest of each key (``.0.weight``, ``.1.running_var``, ...) is unchanged; keys already in deg's
naming pass through, anything else maps to None (reported as unexpected).

Flow upsampling is DEG's learned ``ConvTranspose2d(C, C, 4, 2, 1)`` times 2, initialised to
bilinear interpolation (see :mod:`.tiny_motionnet`; DEG started it from Xavier-random weights).
DEG also initialised its convolutions with Xavier-uniform weights and U(0, 1) biases; deg keeps
PyTorch's default initialisation. Sizes must be multiples of 32 (DEG cropped instead).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .tiny_motionnet import (
    FLOW_UP_GAIN,
    check_num_frames,
    check_stack,
    conv_bn,
    flow_head,
    flow_upsampler,
    rename_deg_key,
    up_conv,
)


def _double_conv(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """One encoder stage: a (possibly strided) 3x3 conv, then a 3x3 conv at that resolution."""
    return nn.Sequential(conv_bn(in_ch, out_ch, stride=stride), conv_bn(out_ch, out_ch))


def _deg_renames() -> tuple[tuple[str, str], ...]:
    renames: list[tuple[str, str]] = []
    for k in range(1, 7):
        renames += [(f"conv{k}_1.", f"enc{k}.1."), (f"conv{k}.", f"enc{k}.0.")]
    for level in range(2, 6):
        renames.append((f"xconv{level}.", f"fuse{level}."))
    for level in range(2, 7):
        scale = 2 ** (level - 1)
        renames.append((f"predict_flow{level}.", f"predict{scale}."))
        if level > 2:
            renames.append((f"upsampled_flow{level}_to_{level - 1}.", f"upflow{scale}."))
    return tuple(renames)


class MotionNet(nn.Module):
    """Large 2-D flow generator: (B, 3N, H, W) -> flows at 1/2, 1/4, 1/8 resolution.

    Same output contract as :class:`~.tiny_motionnet.TinyMotionNet`: each flow is
    (B, 2*(N-1), H/2^s, W/2^s), channels ``[dx_0, dy_0, dx_1, dy_1, ...]`` (pair ``i`` maps frame
    ``i+1`` onto frame ``i``), in pixels of that scale. H and W must be multiples of 32.
    """

    arch = "MotionNet"
    size_multiple = 32
    DEG_RENAMES = _deg_renames()  # DEG key prefix -> ours (module doc)

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
        self.upflow32 = flow_upsampler(n_out)
        self.upflow16 = flow_upsampler(n_out)
        self.upflow8 = flow_upsampler(n_out)
        self.upflow4 = flow_upsampler(n_out)

    def map_deg_key(self, key: str) -> str | None:
        """DEG MotionNet state-dict key -> this module's (table in the module doc)."""
        return rename_deg_key(key, self.DEG_RENAMES, self._modules)

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
        cat5 = torch.cat((e5, self.deconv5(e6), FLOW_UP_GAIN * self.upflow32(flow32)), dim=1)
        flow16 = self.predict16(self.fuse5(cat5))
        cat4 = torch.cat((e4, self.deconv4(cat5), FLOW_UP_GAIN * self.upflow16(flow16)), dim=1)
        flow8 = self.predict8(self.fuse4(cat4))
        cat3 = torch.cat((e3, self.deconv3(cat4), FLOW_UP_GAIN * self.upflow8(flow8)), dim=1)
        flow4 = self.predict4(self.fuse3(cat3))
        cat2 = torch.cat((e2, self.deconv2(cat3), FLOW_UP_GAIN * self.upflow4(flow4)), dim=1)
        flow2 = self.predict2(self.fuse2(cat2))
        return flow2, flow4, flow8
