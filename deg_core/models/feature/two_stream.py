"""Hidden two-stream feature extractor: a spatial CNN on RGB plus a flow CNN on generated flow.

Input: N frames stacked in channels, ``x: (B, 3N, H, W)`` (channels 3i..3i+2 are frame i), z-scored
with the project's statistics. Output: a dict of

    spatial_features (B, 512)   flow_features (B, 512)
    spatial_logits   (B, K)     flow_logits   (B, K)     logits (B, K)   (fused)

* Spatial stream (2-D archs): the centre frame's RGB, frame N//2 = channels
  ``3*(N//2) : 3*(N//2)+3`` (15:18 for N=11; DEG's Viewer took ``int(N/2*3)`` = 16:19, i.e. G, B of
  frame 5 and R of frame 6). For an even N the centre is the later of the two middle frames.
  With ``rgb_stride`` s > 1 the centre frame is average-pooled by s first: (B, 3, H/s, W/s).
* Flow stream: the flow generator's finest output (the first element of its tuple),
  ``(B, 2(N-1), H/2, W/2)`` with flow i in channels 2i (dx), 2i+1 (dy), in pixels (every
  generator, PairFlowNet included, outputs its finest flow at half resolution).
* 3-D archs (slow preset): the spatial stream sees all N frames as (B, 3, N, H, W) and the flow
  stream the N-1 flows as (B, 2, N-1, H/2, W/2).
* Each stream: 512-d features -> Dropout -> Linear(512, K). Fusion "average" (DEG's default):
  ``logits = (spatial_logits + w * flow_logits) / (1 + w)`` with ``w = flow_weight = 1.5``, DEG's
  value (from the hidden two-stream paper) and what its released weights were trained with.
  Fusion "concatenate": ``logits = Linear(1024, K)(Dropout([spatial_features ‖ flow_features]))``;
  the per-stream heads still exist there and give ``spatial_logits``/``flow_logits`` (trained
  only if the loss uses them).
* The flow generator is frozen by default: no gradients, run under ``torch.no_grad()``, kept in
  eval mode (BatchNorm statistics fixed) even after ``model.train()``.

``forward_streams(center_rgb, flow_half)`` is the same computation from already-computed inputs, so
inference can compute each frame's flows once and reuse them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deg_core.models.feature.resnet import ResNetFeatures
from deg_core.models.feature.resnet3d import resnet3d_34

FEATURE_ARCHS = ("resnet18", "resnet50", "resnet3d_34")
FUSIONS = ("average", "concatenate")
# init_bias clamps the positive fraction to [BIAS_EPS, 1 - BIAS_EPS]: a class with no positives
# (or no negatives) gets a finite bias of about -/+9.2 instead of DEG's -inf->0 / +inf.
BIAS_EPS = 1e-4


def center_channels(num_frames: int) -> slice:
    """Channels of the centre frame (index N//2) in a (B, 3N, H, W) stack: 15:18 for N=11."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    start = 3 * (num_frames // 2)
    return slice(start, start + 3)


def build_backbone(arch: str, in_channels: int) -> nn.Module:
    """A feature backbone of ``arch`` taking ``in_channels`` channels; outputs (B, 512)."""
    if arch == "resnet3d_34":
        return resnet3d_34(in_channels)
    if arch in ("resnet18", "resnet50"):
        return ResNetFeatures(arch, in_channels)
    raise ValueError(f"unknown feature extractor arch {arch!r}; expected one of {FEATURE_ARCHS}")


class HiddenTwoStream(nn.Module):
    """Flow generator + spatial and flow backbones + per-stream heads + fusion (see module doc).

    Submodules (and state-dict prefixes): ``flow_generator``, ``spatial``, ``flow``,
    ``spatial_head``, ``flow_head``, and ``fusion_head`` (concatenate fusion only).
    """

    feature_dim: int = 512

    def __init__(
        self,
        flow_generator: nn.Module,
        spatial: nn.Module,
        flow: nn.Module,
        num_classes: int,
        num_frames: int = 11,
        fusion: str = "average",
        flow_weight: float = 1.5,
        dropout: float = 0.25,
        freeze_flow_generator: bool = True,
        rgb_stride: int = 1,
    ):
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; expected one of {FUSIONS}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if num_frames < 2:
            raise ValueError(f"num_frames must be >= 2 (flow needs a pair), got {num_frames}")
        if flow_weight < 0:
            raise ValueError(f"flow_weight must be >= 0, got {flow_weight}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        is_3d = bool(getattr(spatial, "is_3d", False))
        if int(rgb_stride) != rgb_stride or rgb_stride < 1 or (is_3d and rgb_stride != 1):
            raise ValueError(f"rgb_stride must be a positive integer (1 for 3-D), got {rgb_stride}")
        if bool(getattr(flow, "is_3d", False)) != is_3d:
            raise ValueError("the spatial and flow backbones must both be 2-D or both be 3-D")
        generator_frames = getattr(flow_generator, "num_frames", None)
        if isinstance(generator_frames, int) and generator_frames != num_frames:
            raise ValueError(
                f"the flow generator was built for {generator_frames} frames, not {num_frames}"
            )
        rgb_in, flow_in = (3, 2) if is_3d else (3, 2 * (num_frames - 1))
        for name, backbone, wanted in (("spatial", spatial, rgb_in), ("flow", flow, flow_in)):
            got = getattr(backbone, "in_channels", None)
            if isinstance(got, int) and got != wanted:
                raise ValueError(f"the {name} backbone takes {got} channels; expected {wanted}")
        self.arch: str | None = getattr(spatial, "arch", None)
        self.num_classes = num_classes
        self.num_frames = num_frames
        self.fusion = fusion
        self.flow_weight = float(flow_weight)
        self.is_3d = is_3d
        self.freeze_flow_generator = freeze_flow_generator
        self.rgb_stride = int(rgb_stride)
        self.feature_dim = int(getattr(spatial, "out_features", 512))
        flow_dim = int(getattr(flow, "out_features", 512))

        self.flow_generator = flow_generator
        self.spatial = spatial
        self.flow = flow
        self.dropout = nn.Dropout(dropout)
        self.spatial_head = nn.Linear(self.feature_dim, num_classes)
        self.flow_head = nn.Linear(flow_dim, num_classes)
        self.fusion_head: nn.Linear | None = None
        if fusion == "concatenate":
            self.fusion_head = nn.Linear(self.feature_dim + flow_dim, num_classes)
        if freeze_flow_generator:
            self.flow_generator.requires_grad_(False)
            self.flow_generator.eval()

    @classmethod
    def build(
        cls,
        arch: str,
        flow_generator: nn.Module,
        num_classes: int,
        num_frames: int = 11,
        fusion: str = "average",
        dropout: float = 0.25,
        flow_weight: float = 1.5,
        freeze_flow_generator: bool = True,
        rgb_stride: int = 1,
    ) -> HiddenTwoStream:
        """Both streams of ``arch`` (one of FEATURE_ARCHS), randomly initialised.

        2-D: spatial conv1 has 3 channels, flow conv1 2(N-1). 3-D: 3 and 2 (time is a dimension).
        Load ImageNet or DEG weights afterwards with ``deg_core.models.weights``.
        """
        if arch not in FEATURE_ARCHS:
            raise ValueError(f"unknown feature extractor arch {arch!r}; expected {FEATURE_ARCHS}")
        flow_in = 2 if arch == "resnet3d_34" else 2 * (num_frames - 1)
        model = cls(
            flow_generator,
            build_backbone(arch, 3),
            build_backbone(arch, flow_in),
            num_classes,
            num_frames=num_frames,
            fusion=fusion,
            flow_weight=flow_weight,
            dropout=dropout,
            freeze_flow_generator=freeze_flow_generator,
            rgb_stride=rgb_stride,
        )
        model.arch = arch
        return model

    @classmethod
    def from_config(
        cls,
        cfg: Any,
        flow_generator: nn.Module,
        num_classes: int,
        num_frames: int,
        arch: str | None = None,
    ) -> HiddenTwoStream:
        """:meth:`build` from a ``FeatureExtractorSection`` (arch, fusion, dropout_p,
        flow_weight, rgb_stride); ``arch`` overrides ``cfg.arch`` (a run's recorded arch)."""
        return cls.build(
            arch or cfg.arch,
            flow_generator,
            num_classes=num_classes,
            num_frames=num_frames,
            fusion=cfg.fusion,
            dropout=cfg.dropout_p,
            flow_weight=cfg.flow_weight,
            rgb_stride=getattr(cfg, "rgb_stride", 1),  # runs from before rgb_stride: 1
        )

    def train(self, mode: bool = True) -> HiddenTwoStream:
        """As nn.Module.train, but a frozen flow generator stays in eval mode."""
        super().train(mode)
        if self.freeze_flow_generator:
            self.flow_generator.eval()
        return self

    def heads(self) -> list[nn.Linear]:
        """The linear layers that produce logits (their biases are set by ``init_bias``)."""
        out = [self.spatial_head, self.flow_head]
        if self.fusion_head is not None:
            out.append(self.fusion_head)
        return out

    @torch.no_grad()
    def init_bias(
        self, pos: np.ndarray | Sequence[float], neg: np.ndarray | Sequence[float]
    ) -> None:
        """Set every head's bias to log(pos_k / neg_k): sigmoid(bias_k) = pos_k / (pos_k + neg_k).

        pos, neg: (K,) counts of positive / negative labelled frames per class. The fraction is
        clamped to [BIAS_EPS, 1 - BIAS_EPS] so a class with no positives or no negatives gets a
        finite bias; a class with no labelled frames at all gets 0 (p = 0.5).
        """
        p_arr = np.asarray(pos, dtype=np.float64).reshape(-1)
        n_arr = np.asarray(neg, dtype=np.float64).reshape(-1)
        if p_arr.shape != (self.num_classes,) or n_arr.shape != (self.num_classes,):
            raise ValueError(
                f"pos and neg must have shape ({self.num_classes},), "
                f"got {p_arr.shape} and {n_arr.shape}"
            )
        if not (np.all(np.isfinite(p_arr)) and np.all(np.isfinite(n_arr))):
            raise ValueError("pos and neg must be finite counts")
        if (p_arr < 0).any() or (n_arr < 0).any():
            raise ValueError("pos and neg must be non-negative counts")
        total = p_arr + n_arr
        frac = np.divide(p_arr, total, out=np.full_like(total, 0.5), where=total > 0)
        frac = np.clip(frac, BIAS_EPS, 1.0 - BIAS_EPS)
        bias = torch.from_numpy(np.log(frac) - np.log1p(-frac))
        for head in self.heads():
            head.bias.copy_(bias.to(head.bias))

    def generate_flow(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3N, H, W) -> the flow generator's half-resolution flow (B, 2(N-1), H/2, W/2)."""
        if self.freeze_flow_generator:
            with torch.no_grad():
                out = self.flow_generator(x)
        else:
            out = self.flow_generator(x)
        return out[0] if isinstance(out, tuple | list) else out

    def forward(
        self, x: torch.Tensor, flows: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """x: (B, 3N, H, W) normalised frames -> dict of features and logits (module doc).

        With ``flows`` given, ``x`` is the centre frame and :meth:`forward_streams` runs on
        the two (a cache's flows; through ``forward`` so that DDP sees the call).
        """
        if flows is not None:
            return self.forward_streams(x, flows)
        if x.ndim != 4 or x.shape[1] != 3 * self.num_frames:
            raise ValueError(
                f"expected input (B, {3 * self.num_frames}, H, W) for {self.num_frames} frames, "
                f"got shape {tuple(x.shape)}"
            )
        flow_half = self.generate_flow(x)
        rgb = x if self.is_3d else x[:, center_channels(self.num_frames)]
        return self.forward_streams(rgb, flow_half)

    def forward_streams(
        self, center_rgb: torch.Tensor, flow_half: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Run both streams on precomputed inputs (no flow generator call).

        2-D: center_rgb (B, 3, H, W), flow_half (B, 2(N-1), H/2, W/2).
        3-D: center_rgb (B, 3, N, H, W) (a (B, 3N, H, W) stack is also accepted), flow_half
        (B, 2(N-1), H/2, W/2) or already (B, 2, N-1, H/2, W/2).
        """
        rgb, flows = center_rgb, flow_half
        if self.is_3d:
            rgb = _stack_to_clip(rgb, 3, self.num_frames, "center_rgb")
            flows = _stack_to_clip(flows, 2, self.num_frames - 1, "flow_half")
        elif rgb.ndim != 4 or rgb.shape[1] != 3:
            raise ValueError(f"center_rgb must be (B, 3, H, W), got shape {tuple(rgb.shape)}")
        elif self.rgb_stride > 1:
            rgb = F.avg_pool2d(rgb, self.rgb_stride)
        spatial_features = self.spatial(rgb)
        flow_features = self.flow(flows)
        spatial_logits = self.spatial_head(self.dropout(spatial_features))
        flow_logits = self.flow_head(self.dropout(flow_features))
        if self.fusion_head is None:
            w = self.flow_weight
            logits = (spatial_logits + w * flow_logits) / (1.0 + w)
        else:
            both = torch.cat([spatial_features, flow_features], dim=1)
            logits = self.fusion_head(self.dropout(both))
        return {
            "spatial_features": spatial_features,
            "flow_features": flow_features,
            "logits": logits,
            "spatial_logits": spatial_logits,
            "flow_logits": flow_logits,
        }


def _stack_to_clip(t: torch.Tensor, channels: int, steps: int, name: str) -> torch.Tensor:
    """(B, steps*channels, H, W) channel stack -> (B, channels, steps, H, W); 5-D passes through."""
    if t.ndim == 5 and t.shape[1] == channels and t.shape[2] == steps:
        return t
    if t.ndim == 4 and t.shape[1] == channels * steps:
        b, _, h, w = t.shape
        return t.reshape(b, steps, channels, h, w).transpose(1, 2)
    raise ValueError(
        f"{name} must be (B, {channels}, {steps}, H, W) or (B, {channels * steps}, H, W), "
        f"got shape {tuple(t.shape)}"
    )
