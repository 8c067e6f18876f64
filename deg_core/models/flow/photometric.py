"""Self-supervised flow losses: warping, generalised Charbonnier, SSIM and MotionNetLoss.

The flow generator never sees ground-truth flow. Instead each flow ``flow_t`` is used to warp
frame ``t+1`` back onto frame ``t`` (``warp(frame_{t+1}, flow_t) ≈ frame_t``) and is scored by
how well that reconstruction matches (photometric Charbonnier + SSIM) and by how smooth the flow
is (Charbonnier on its spatial gradients), at each of the three output scales — the
hidden two-stream / DeepEthogram recipe.

Coordinate convention (shared by every function here): pixel ``(x, y)`` is the *centre* of
column ``x`` and row ``y`` (0-based), which is ``grid_sample``'s ``align_corners=False``
convention; flows are in pixels of their own resolution, channel 0 = dx (right is positive),
channel 1 = dy (down is positive).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# SSIM stabilisers for images with a dynamic range of 1 (Wang et al. 2004: (0.01 L)^2, (0.03 L)^2)
_C1 = 0.01**2
_C2 = 0.03**2


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Sample ``image`` at ``p + flow(p)`` for every pixel ``p`` (bilinear, border padding).

    Args:
        image: (B, C, h, w).
        flow: (B, 2, h, w) in pixels, channel 0 = dx, channel 1 = dy.

    Returns:
        (B, C, h, w): ``out[..., y, x] = image(x + dx, y + dy)``. Pixel centres sit at integer
        coordinates (``align_corners=False``), so an integer flow reproduces a shifted image
        exactly; samples beyond the border take the nearest border pixel's value.
        With ``image = frame_{t+1}`` and ``flow = flow_t``, the result reconstructs ``frame_t``.
    """
    if image.ndim != 4 or flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(
            f"warp expects (B, C, h, w) and (B, 2, h, w), got {tuple(image.shape)} "
            f"and {tuple(flow.shape)}"
        )
    if image.shape[0] != flow.shape[0] or image.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"image {tuple(image.shape)} and flow {tuple(flow.shape)} do not match")
    _, _, h, w = image.shape
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w) + flow[:, 0]
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device).view(1, h, 1) + flow[:, 1]
    # pixel centre i -> normalised (2i + 1) / size - 1 under align_corners=False
    grid = torch.stack(((2 * xs + 1) / w - 1, (2 * ys + 1) / h - 1), dim=-1)
    return F.grid_sample(
        image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=False
    )


def charbonnier(x: Tensor, alpha: float, eps: float = 1e-3) -> Tensor:
    """Generalised Charbonnier penalty ``(x^2 + eps^2)^alpha``, elementwise (a robust |x|^(2a))."""
    return (x * x + eps * eps) ** alpha


def _gaussian_kernel(window: int, sigma: float, like: Tensor) -> Tensor:
    """Normalised 1-D Gaussian of length ``window`` centred on the middle tap."""
    r = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(r * r) / (2 * sigma * sigma))
    return (g / g.sum()).to(dtype=like.dtype, device=like.device)


def ssim(x: Tensor, y: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-pixel SSIM map between images in [0, 1]; the caller reduces (e.g. ``.mean()``).

    Args:
        x, y: (B, C, h, w) with values in [0, 1] (the stabilising constants assume that range).
        window: odd side of the Gaussian window; sigma: its standard deviation.

    Returns:
        (B, C, h, w) SSIM per pixel and channel (1 where x == y). Local statistics use a
        separable Gaussian with replicate padding, so the map has the input size at any h, w
        (DEG zero-pads, which biases the border; this does not).
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(
            f"ssim expects two equal (B, C, h, w) tensors, got {tuple(x.shape)} "
            f"and {tuple(y.shape)}"
        )
    if window < 1 or window % 2 == 0:
        raise ValueError(f"ssim window must be a positive odd integer, got {window}")
    c = x.shape[1]
    # one grouped blur for all five local moments
    stack = torch.cat((x, y, x * x, y * y, x * y), dim=1)
    g = _gaussian_kernel(window, sigma, x)
    pad = window // 2
    stack = F.pad(stack, (pad, pad, pad, pad), mode="replicate")
    stack = F.conv2d(stack, g.view(1, 1, 1, window).expand(5 * c, 1, 1, window), groups=5 * c)
    stack = F.conv2d(stack, g.view(1, 1, window, 1).expand(5 * c, 1, window, 1), groups=5 * c)
    mu_x, mu_y, e_xx, e_yy, e_xy = stack.split(c, dim=1)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    num = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    den = (mu_x * mu_x + mu_y * mu_y + _C1) * (var_x + var_y + _C2)
    return num / den


def _smoothness(flow: Tensor, alpha: float) -> Tensor:
    """Mean Charbonnier of forward differences in x plus in y (valid differences only)."""
    dx = flow[..., :, 1:] - flow[..., :, :-1]
    dy = flow[..., 1:, :] - flow[..., :-1, :]
    zero = flow.new_zeros(())
    sx = charbonnier(dx, alpha).mean() if dx.numel() else zero
    sy = charbonnier(dy, alpha).mean() if dy.numel() else zero
    return sx + sy


class MotionNetLoss(nn.Module):
    """Unsupervised multi-scale flow loss (DeepEthogram's MotionNetLoss, re-derived).

    For each output scale ``s`` (flows at 1/2, 1/4, 1/8) the clip is area-downsampled to the
    flow's size, frame ``t+1`` is warped onto frame ``t`` with ``flow_t`` and

    * ``photometric_s = mean charbonnier(warped - frame_t, photo_alpha)``
    * ``ssim_s = mean(1 - SSIM(warped, frame_t))`` — DEG's form, *not* halved
      (the Monodepth-style ``(1 - SSIM) / 2`` is not used; ``ssim_weight`` rescales it)
    * ``smoothness_s = smooth_weights[s] * (mean charbonnier(d flow/dx, smooth_alpha)
      + mean charbonnier(d flow/dy, smooth_alpha))``

    Each term is summed over scales (as DEG does) and
    ``total = photo_weight * photometric + ssim_weight * ssim + smoothness``.
    Everything is computed in float32 (autocast off): tiny Charbonnier ``eps`` values and SSIM
    variances underflow in half precision. The Charbonnier ``eps`` is the module default (1e-3)
    for both terms, where DEG uses 1e-4 / 1e-7; the difference is a near-constant offset.

    Images must be in [0, 1] (un-normalised): SSIM's constants assume that range.
    """

    def __init__(
        self,
        num_frames: int = 11,
        photo_alpha: float = 0.4,
        smooth_alpha: float = 0.3,
        smooth_weights: Sequence[float] = (0.01, 0.02, 0.04),
        ssim_weight: float = 1.0,
        photo_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if num_frames < 2:
            raise ValueError(f"MotionNetLoss needs num_frames >= 2, got {num_frames}")
        self.num_frames = int(num_frames)
        self.photo_alpha = float(photo_alpha)
        self.smooth_alpha = float(smooth_alpha)
        self.smooth_weights = tuple(float(v) for v in smooth_weights)
        self.ssim_weight = float(ssim_weight)
        self.photo_weight = float(photo_weight)

    @classmethod
    def from_config(cls, cfg: Any) -> MotionNetLoss:
        """Build from any object with (some of) the constructor's attribute names.

        Missing attributes take the defaults; ``n_rgb`` (the config's name for N) is accepted
        in place of ``num_frames``.
        """
        kwargs: dict[str, Any] = {}
        for name in ("photo_alpha", "smooth_alpha", "ssim_weight", "photo_weight"):
            if getattr(cfg, name, None) is not None:
                kwargs[name] = float(getattr(cfg, name))
        if getattr(cfg, "smooth_weights", None) is not None:
            kwargs["smooth_weights"] = tuple(cfg.smooth_weights)
        num_frames = getattr(cfg, "num_frames", None) or getattr(cfg, "n_rgb", None)
        if num_frames is not None:
            kwargs["num_frames"] = int(num_frames)
        return cls(**kwargs)

    def extra_repr(self) -> str:
        return (
            f"num_frames={self.num_frames}, photo_alpha={self.photo_alpha}, "
            f"smooth_alpha={self.smooth_alpha}, smooth_weights={self.smooth_weights}, "
            f"ssim_weight={self.ssim_weight}, photo_weight={self.photo_weight}"
        )

    def _check(self, images: Tensor, flows: Sequence[Tensor]) -> None:
        n = self.num_frames
        if images.ndim != 4 or images.shape[1] != 3 * n:
            raise ValueError(f"images must be (B, {3 * n}, H, W), got {tuple(images.shape)}")
        if len(flows) != len(self.smooth_weights):
            raise ValueError(
                f"expected {len(self.smooth_weights)} flow scales (one per smooth weight), "
                f"got {len(flows)}"
            )
        for flow in flows:
            if flow.ndim != 4 or flow.shape[:2] != (images.shape[0], 2 * (n - 1)):
                raise ValueError(
                    f"each flow must be (B, {2 * (n - 1)}, h, w) for B={images.shape[0]}, "
                    f"got {tuple(flow.shape)}"
                )

    def forward(self, images: Tensor, flows: Sequence[Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Loss of ``flows`` for the clip ``images``.

        Args:
            images: (B, 3N, H, W) frame-major RGB stack in [0, 1].
            flows: the generator's outputs, fine to coarse, each (B, 2(N-1), h_s, w_s).

        Returns:
            ``(total, parts)``: the scalar loss (lower is better, differentiable) and python
            floats ``{"photometric", "ssim", "smoothness", "total"}`` — photometric and ssim
            unweighted, smoothness already scaled by ``smooth_weights``, all summed over scales.
            Non-finite values are returned as they are; the caller decides what to do.
        """
        self._check(images, flows)
        b, _, height, width = images.shape
        n = self.num_frames
        with torch.autocast(device_type=images.device.type, enabled=False):
            images = images.float()
            photo = images.new_zeros(())
            dissim = images.new_zeros(())
            smooth = images.new_zeros(())
            for flow, weight in zip(flows, self.smooth_weights, strict=True):
                h, w = flow.shape[-2:]
                scaled = images
                if (h, w) != (height, width):
                    scaled = F.interpolate(images, size=(h, w), mode="area")
                frames = scaled.reshape(b, n, 3, h, w)
                t0 = frames[:, :-1].reshape(b * (n - 1), 3, h, w)
                t1 = frames[:, 1:].reshape(b * (n - 1), 3, h, w)
                pair_flow = flow.float().reshape(b * (n - 1), 2, h, w)
                recon = warp(t1, pair_flow)
                photo = photo + charbonnier(recon - t0, self.photo_alpha).mean()
                dissim = dissim + (1.0 - ssim(recon, t0)).mean()
                smooth = smooth + weight * _smoothness(pair_flow, self.smooth_alpha)
            total = self.photo_weight * photo + self.ssim_weight * dissim + smooth
        parts = {
            "photometric": float(photo.detach()),
            "ssim": float(dissim.detach()),
            "smoothness": float(smooth.detach()),
            "total": float(total.detach()),
        }
        return total, parts
