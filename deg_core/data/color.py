"""Colour jitter for whole clips, without torchvision's per-pixel HSV round trip.

torchvision's ``ColorJitter`` shifts hue by converting every pixel to HSV and back: ~10 ms
of an 11-frame 128x128 clip's ~13 ms of augmentation on one core. On a 2-core machine the
data worker doing that competes with training for the CPU (benchmarks/RESULTS.md, "Clip
augmentation"). Here the hue shift is a rotation of the chroma plane about the grey axis
(in YIQ), one 3x3 colour matrix per clip, so the whole jitter is a few elementwise passes.

Brightness, contrast and saturation are torchvision's definitions (the same factors, the
per-frame grey mean for contrast, the same grey weights, a clamp to [0, 1] after each
adjustment, in a random order). Only hue differs: rotating the chroma keeps each pixel's
luma where the HSV shift keeps its value (its largest channel); both turn colours about the
grey axis by up to ``hue`` of a full turn and leave greys unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R BT.601 luma weights, as torchvision's rgb_to_grayscale
GREY = (0.299, 0.587, 0.114)
# RGB -> YIQ (FCC NTSC); Y is the luma above
_YIQ = torch.tensor(
    [GREY, [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]],
    dtype=torch.float64,
)
_RGB = torch.linalg.inv(_YIQ)


def hue_matrix(turns: float) -> Tensor:
    """(3, 3) float32 RGB -> RGB: the chroma rotated by ``turns`` of a full turn."""
    a = 2 * math.pi * turns
    c, s = math.cos(a), math.sin(a)
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=torch.float64)
    return (_RGB @ rot @ _YIQ).float()


def grey(clip: Tensor) -> Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma."""
    r, g, b = clip.unbind(-3)
    return (GREY[0] * r + GREY[1] * g + GREY[2] * b).unsqueeze(-3)


class ClipColorJitter:
    """Random brightness, contrast, saturation and hue, drawn once per clip.

    Input and output: (N, 3, H, W) float in [0, 1]. Factors are drawn as torchvision's
    ``ColorJitter(brightness, contrast, saturation, hue)`` draws them (uniform in
    ``[max(0, 1 - v), 1 + v]``; hue in ``[-hue, hue]`` turns) from torch's global generator,
    so DataLoader workers' seeding makes them reproducible.
    """

    def __init__(
        self,
        brightness: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
        hue: float = 0.0,
    ) -> None:
        if min(brightness, contrast, saturation, hue) < 0 or hue > 0.5:
            raise ValueError(
                "colour jitter needs brightness, contrast, saturation >= 0 and hue in [0, 0.5]"
            )
        self.brightness, self.contrast = float(brightness), float(contrast)
        self.saturation, self.hue = float(saturation), float(hue)

    @staticmethod
    def _factor(v: float) -> float | None:
        return float(torch.empty(1).uniform_(max(0.0, 1.0 - v), 1.0 + v)) if v > 0 else None

    def __call__(self, clip: Tensor) -> Tensor:
        if clip.ndim != 4 or clip.shape[1] != 3:
            raise ValueError(f"a clip must be (N, 3, H, W), got {tuple(clip.shape)}")
        # torchvision's draws, in its order: the order of the steps, then each factor
        order = torch.randperm(4).tolist()
        bright, contrast, sat = (
            self._factor(v) for v in (self.brightness, self.contrast, self.saturation)
        )
        hue = float(torch.empty(1).uniform_(-self.hue, self.hue)) if self.hue > 0 else None
        for step in order:
            if step == 0 and bright is not None:
                clip = (clip * bright).clamp(0.0, 1.0)
            elif step == 1 and contrast is not None:
                mean = grey(clip).mean(dim=(-3, -2, -1), keepdim=True)  # per frame
                clip = (clip * contrast + mean * (1.0 - contrast)).clamp(0.0, 1.0)
            elif step == 2 and sat is not None:
                clip = (clip * sat + grey(clip) * (1.0 - sat)).clamp(0.0, 1.0)
            elif step == 3 and hue is not None:
                m = hue_matrix(hue).to(clip.dtype)
                clip = F.conv2d(clip, m.view(3, 3, 1, 1)).clamp(0.0, 1.0)
        return clip
