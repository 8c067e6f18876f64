"""PairFlowNet: deg's pairwise flow generator, computed once per frame pair (the `lite` preset).

DeepEthogram's generators see a whole N-frame stack at once, so the flow between frames t and
t+1 depends on the other frames of the stack, and feature inference, which needs one stack per
frame, computes every pair's flow N-1 times (84% of the `fast` preset's arithmetic:
benchmarks/RESULTS.md, "Arithmetic per frame"). PairFlowNet's flow for a pair depends on that
pair alone. Inference computes each consecutive pair once and reuses it in the N-1 stacks that
contain it (:class:`PairFlowStream`); training and the loss see the same stack interface as
the other generators.

Each frame is encoded once (a strided encoder down to 1/16) and each pair decoded once (both
frames' features, refined from 1/16 up to 1/2). Like the stack generators', its outputs are
flows at 1/2, 1/4 and 1/8 of the input, the finest for the flow stream, and it trains with the
same loss and settings. Channels are narrow (16-96): about 1/50 of TinyMotionNet's arithmetic
per frame at 256x256.

No DeepEthogram weights exist for it; it starts small (FLOW_HEAD_INIT_GAIN), like the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tiny_motionnet import (
    FLOW_UP_GAIN,
    LEAKY_SLOPE,
    check_num_frames,
    check_stack,
    conv_bn,
    flow_head,
    flow_upsampler,
    up_conv,
)


class FoldedConvBN(nn.Sequential):
    """:func:`conv_bn`'s (Conv2d, BatchNorm2d[, LeakyReLU]) with the same state-dict keys, but
    in eval mode the batch norm is folded into the convolution's weights on the fly: one pass
    over the activations instead of three (a frozen generator is memory-bound on a CPU)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, act=True):
        super().__init__(*conv_bn(in_ch, out_ch, kernel, stride, act))

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return super().forward(x)
        conv = cast(nn.Conv2d, self[0])
        scale, shift = bn_affine(cast(nn.BatchNorm2d, self[1]))
        weight = conv.weight * scale.view(-1, 1, 1, 1)
        bias = shift if conv.bias is None else conv.bias * scale + shift
        y = F.conv2d(
            x, weight.to(x.dtype), bias.to(x.dtype), conv.stride, cast(tuple, conv.padding)
        )
        return self[2](y) if len(self) > 2 else y


def bn_affine(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """An eval-mode batch norm as ``x * scale + shift``, each (C,)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("a batch norm without running statistics cannot be folded")
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


PairSum = Callable[[Tensor, Tensor], Tensor]


def stack_pair_sum(num_frames: int) -> PairSum:
    """For features of whole N-frame stacks, (B*N, C, h, w): ``a[t] + b[t+1]`` for the N-1
    pairs of each stack -> (B*(N-1), C, h, w)."""

    def pair_sum(a: Tensor, b: Tensor) -> Tensor:
        a5, b5 = a.unflatten(0, (-1, num_frames)), b.unflatten(0, (-1, num_frames))
        return (a5[:, :-1] + b5[:, 1:]).flatten(0, 1)

    return pair_sum


def run_pair_sum(a: Tensor, b: Tensor) -> Tensor:
    """For features of a run of consecutive frames, (F, C, h, w): ``a[t] + b[t+1]`` for its
    F-1 pairs."""
    return a[:-1] + b[1:]


class PairFuse(nn.Module):
    """conv_bn over ``cat(frame t, frame t+1[, rest])`` without building the concatenation.

    A convolution is linear, so its output is a term of frame t's features plus one of frame
    t+1's (plus one of ``rest``, the pair's own inputs): the frame terms are computed once per
    frame, as one convolution with both halves' weights, and summed per pair (``pair_sum``).
    In eval mode the batch norm is folded into the weights.
    """

    def __init__(
        self, frame_ch: int, out_ch: int, rest_ch: int = 0, kernel: int = 1, act: bool = False
    ) -> None:
        super().__init__()
        self.out_ch, self.padding = out_ch, (kernel - 1) // 2
        self.frames = nn.Conv2d(frame_ch, 2 * out_ch, kernel, padding=self.padding, bias=False)
        self.rest = (
            nn.Conv2d(rest_ch, out_ch, kernel, padding=self.padding, bias=False)
            if rest_ch
            else None
        )
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.LeakyReLU(LEAKY_SLOPE, inplace=True) if act else None

    def forward(self, feats: Tensor, pair_sum: PairSum, rest: Tensor | None = None) -> Tensor:
        """feats: (F, frame_ch, h, w) per frame; rest: (P, rest_ch, h, w) per pair or None
        -> (P, out_ch, h, w)."""
        w_frames, w_rest, bias = self.frames.weight, None, cast(Tensor, self.bias)
        if self.rest is not None:
            w_rest = self.rest.weight
        if not self.training:
            scale, shift = bn_affine(self.bn)
            w_frames = w_frames * scale.repeat(2).view(-1, 1, 1, 1)
            w_rest = None if w_rest is None else w_rest * scale.view(-1, 1, 1, 1)
            bias = bias * scale + shift
        dtype = feats.dtype
        both = F.conv2d(feats, w_frames.to(dtype), None, padding=self.padding)
        y = pair_sum(both[:, : self.out_ch], both[:, self.out_ch :])
        if rest is not None and w_rest is not None:
            y = y + F.conv2d(rest, w_rest.to(dtype), bias.to(dtype), padding=self.padding)
        else:
            y = y + bias.to(dtype).view(1, -1, 1, 1)
        if self.training:
            y = self.bn(y)
        return self.act(y) if self.act is not None else y


class PairFlowNet(nn.Module):
    """Pairwise 2-D flow generator: (B, 3N, H, W) -> flows at 1/2, 1/4, 1/8 resolution.

    Each returned flow is (B, 2*(N-1), H/s, W/s), channels ``[dx_0, dy_0, dx_1, ...]`` where
    pair ``i`` maps frame ``i+1`` onto frame ``i``, in pixels of that scale, exactly as the
    stack generators; but pair ``i``'s flow depends on frames i and i+1 alone (``pairwise``).
    A per-frame encoder (:meth:`encode`, once per frame) feeds a pair decoder
    (:meth:`decode`) whose layers that see both frames are :class:`PairFuse`: their per-frame
    halves are also computed once per frame. H and W must be multiples of 16.
    """

    arch = "PairFlowNet"
    size_multiple = 16
    pairwise = True  # inference may compute each pair once (PairFlowStream)
    scales = (2, 4, 8)  # output i is at 1/scales[i] of the input, as the stack generators

    def __init__(self, num_frames: int = 11) -> None:
        super().__init__()
        self.num_frames = check_num_frames(num_frames, self.arch)
        # per-frame encoder: RGB -> 1/2 -> 1/4 -> 1/8 -> 1/16
        self.enc2 = FoldedConvBN(3, 16, stride=2)
        self.enc4 = FoldedConvBN(16, 32, stride=2)
        self.enc8 = FoldedConvBN(32, 48, stride=2)
        self.enc16 = FoldedConvBN(48, 64, stride=2)
        # pair decoder: both frames at 1/16, then up to 1/8, 1/4, 1/2 fusing both frames' skips,
        # the upsampled decoder features and the upsampled coarser flow
        self.dec16 = PairFuse(64, 96, kernel=3, act=True)
        self.deconv8 = up_conv(96, 48)
        self.deconv4 = up_conv(48, 24)
        self.deconv2 = up_conv(24, 16)
        self.fuse8 = PairFuse(48, 48, rest_ch=48 + 2)
        self.fuse4 = PairFuse(32, 24, rest_ch=24 + 2)
        self.fuse2 = PairFuse(16, 16, rest_ch=16 + 2)
        self.predict16 = flow_head(96, 2)
        self.predict8 = flow_head(48, 2)
        self.predict4 = flow_head(24, 2)
        self.predict2 = flow_head(16, 2)
        self.upflow16 = flow_upsampler(2)
        self.upflow8 = flow_upsampler(2)
        self.upflow4 = flow_upsampler(2)

    def map_deg_key(self, key: str) -> str | None:
        """No DeepEthogram checkpoint has this architecture: every DEG key is unexpected."""
        return None

    def encode(self, frames: Tensor) -> list[Tensor]:
        """frames: (F, 3, H, W) -> features at 1/2, 1/4, 1/8, 1/16: (F, 16|32|48|64, h, w)."""
        check_stack(frames, 1, self.size_multiple, self.arch)
        f2 = self.enc2(frames)
        f4 = self.enc4(f2)
        f8 = self.enc8(f4)
        return [f2, f4, f8, self.enc16(f8)]

    def decode(self, feats: list[Tensor], pair_sum: PairSum) -> tuple[Tensor, Tensor, Tensor]:
        """Per-frame features (:meth:`encode`) and how frames pair up (:func:`stack_pair_sum`
        or :func:`run_pair_sum`) -> flows (P, 2, H/s, W/s), s = 2, 4, 8, of frame t+1 onto
        frame t, for the P pairs."""
        f2, f4, f8, f16 = feats
        d16 = self.dec16(f16, pair_sum)
        flow16 = self.predict16(d16)
        up16 = FLOW_UP_GAIN * self.upflow16(flow16)
        i8 = self.fuse8(f8, pair_sum, torch.cat((self.deconv8(d16), up16), dim=1))
        flow8 = self.predict8(i8)
        up8 = FLOW_UP_GAIN * self.upflow8(flow8)
        i4 = self.fuse4(f4, pair_sum, torch.cat((self.deconv4(i8), up8), dim=1))
        flow4 = self.predict4(i4)
        up4 = FLOW_UP_GAIN * self.upflow4(flow4)
        i2 = self.fuse2(f2, pair_sum, torch.cat((self.deconv2(i4), up4), dim=1))
        return self.predict2(i2), flow4, flow8

    def forward_pairs(self, pairs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """pairs: (P, 6, H, W), frame t's RGB then frame t+1's -> flows (P, 2, H/s, W/s)."""
        check_stack(pairs, 2, self.size_multiple, self.arch)
        feats = self.encode(pairs.reshape(-1, 3, *pairs.shape[-2:]))  # (2P, ...): t, t+1, ...
        return self.decode(feats, stack_pair_sum(2))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, 3N, H, W) -> (flow at 1/2, 1/4, 1/8), each (B, 2(N-1), h, w): every frame
        encoded once, the N-1 pairs decoded as one batch."""
        check_stack(x, self.num_frames, self.size_multiple, self.arch)
        b, _, h, w = x.shape
        n = self.num_frames
        flows = self.decode(self.encode(x.reshape(b * n, 3, h, w)), stack_pair_sum(n))
        return tuple(  # type: ignore[return-value]
            f.reshape(b, 2 * (n - 1), *f.shape[-2:]) for f in flows
        )


class PairFlowStream:
    """A video's per-frame flow stacks from a pairwise generator, each pair computed once.

    Feed consecutive runs of normalised frames, (B + N - 1, 3, H, W), where each run starts
    N - 1 frames before the previous one ended (the frames of B consecutive N-frame stacks,
    as :func:`deg_core.infer.features.frame_runs` yields them). Each call returns the B stacks'
    finest flows, (B, 2(N-1), h, w), the same as the generator's first output on each stack;
    each frame is encoded once and each pair decoded once (the N - 2 pairs a run shares with
    the previous one are carried over), so a frame's flows do not depend on where its batch
    starts.
    """

    def __init__(self, generator: nn.Module, num_frames: int) -> None:
        if not getattr(generator, "pairwise", False):
            raise ValueError(f"{type(generator).__name__} is not a pairwise flow generator")
        self.generator = cast(PairFlowNet, generator)
        self.num_frames = num_frames
        self._carry: Tensor | None = None  # the previous run's last N-2 pair flows
        self._last: list[Tensor] | None = None  # its last frame, encoded

    def __call__(self, frames: Tensor) -> Tensor:
        n = self.num_frames
        if frames.ndim != 4 or frames.shape[0] < n or frames.shape[1] != 3:
            raise ValueError(f"frames must be (B + {n - 1}, 3, H, W), got {tuple(frames.shape)}")
        b = frames.shape[0] - n + 1
        gen = self.generator
        if self._last is None:
            feats = gen.encode(frames)
        else:  # frames before N-1 were encoded in the previous run; its last one is carried
            fresh = gen.encode(frames[n - 1 :])
            feats = [
                torch.cat((old.to(f.dtype), f)) for old, f in zip(self._last, fresh, strict=True)
            ]
        flows = gen.decode(feats, run_pair_sum)[0]
        if self._carry is not None:
            flows = torch.cat((self._carry.to(flows.dtype), flows))
        self._last = [f[-1:] for f in feats]
        self._carry = flows[flows.shape[0] - (n - 2) :]
        # stack i holds pairs i .. i+N-2: (B, N-1, 2, h, w) -> (B, 2(N-1), h, w)
        windows = flows.unfold(0, n - 1, 1).permute(0, 4, 1, 2, 3)
        return windows.reshape(b, 2 * (n - 1), *flows.shape[-2:])
