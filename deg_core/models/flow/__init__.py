"""Stage 1: self-supervised optic-flow generators (TinyMotionNet, MotionNet, TinyMotionNet3D,
PairFlowNet).

Every generator maps a frame-major stack of N RGB frames, (B, 3N, H, W), to flows at three
scales, fine to coarse (1/2, 1/4, 1/8 of the input; PairFlowNet: 1/4, 1/8, 1/16), each
(B, 2*(N-1), h, w) with channels
``[dx_0, dy_0, dx_1, dy_1, ...]``: pair ``i`` maps frame ``i+1`` onto frame ``i``
(``frame_i(p) ≈ frame_{i+1}(p + flow_i(p))``), in pixels of that scale's resolution.
They are trained with :class:`~.losses.MotionNetLoss` (photometric + SSIM + smoothness).
"""

from __future__ import annotations

from torch import nn

from .motionnet import MotionNet
from .pair_flow import PairFlowNet, PairFlowStream
from .photometric import MotionNetLoss, charbonnier, ssim, warp
from .tiny_motionnet import TinyMotionNet
from .tiny_motionnet3d import TinyMotionNet3D
from .viz import flow_figure, flow_to_rgb

FLOW_ARCHS = ("TinyMotionNet", "MotionNet", "TinyMotionNet3D", "PairFlowNet")

_CLASSES: dict[str, type[nn.Module]] = {
    "TinyMotionNet": TinyMotionNet,
    "MotionNet": MotionNet,
    "TinyMotionNet3D": TinyMotionNet3D,
    "PairFlowNet": PairFlowNet,
}


def build_flow_generator(arch: str, num_frames: int = 11) -> nn.Module:
    """A freshly initialised flow generator ``arch`` (one of FLOW_ARCHS) for N = ``num_frames``.

    The module has ``num_frames``, ``arch`` and ``size_multiple`` (what H and W must be multiples
    of: 8 for the tiny nets, 16 for PairFlowNet, 32 for MotionNet) attributes; a ``pairwise``
    one (PairFlowNet) computes each frame pair's flow from that pair alone.
    """
    if arch not in _CLASSES:
        raise ValueError(f"unknown flow generator arch {arch!r}; choose one of {FLOW_ARCHS}")
    return _CLASSES[arch](num_frames=num_frames)


__all__ = [
    "FLOW_ARCHS",
    "MotionNet",
    "MotionNetLoss",
    "PairFlowNet",
    "PairFlowStream",
    "TinyMotionNet",
    "TinyMotionNet3D",
    "build_flow_generator",
    "charbonnier",
    "flow_figure",
    "flow_to_rgb",
    "ssim",
    "warp",
]
