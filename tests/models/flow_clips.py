"""Synthetic clips and flows the flow-generator tests share."""

from __future__ import annotations

import torch
import torch.nn.functional as F

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEG_PARAMS = {"TinyMotionNet": 1.95e6, "MotionNet": 45.9e6, "TinyMotionNet3D": 0.44e6}


def texture(h: int, w: int, g: torch.Generator, blur: int = 5) -> torch.Tensor:
    """(3, h, w) smooth random texture in [0, 1], periodic so it can be rolled."""
    noise = torch.rand(1, 3, h, w, generator=g)
    p = blur // 2
    return F.avg_pool2d(F.pad(noise, (p, p, p, p), mode="circular"), blur, stride=1)[0]


def translating_clip(n: int, size: int, shift: int, g: torch.Generator) -> torch.Tensor:
    """(1, 3n, size, size): frame t+1 is frame t rolled right by ``shift`` pixels."""
    base = texture(size, size, g)
    return torch.cat([torch.roll(base, shift * t, dims=-1) for t in range(n)])[None]


def moving_square_clip(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """(3n, size, size): a bright textured square moving (+3, +2) px per frame over texture."""
    side = 3 * size // 8
    bg = 0.5 * texture(size, size, g)
    fg = 0.5 + 0.5 * texture(side, side, g)
    y0, x0 = (int(v) for v in torch.randint(4, size - side - 4 - 3 * n, (2,), generator=g))
    frames = []
    for t in range(n):
        f = bg.clone()
        y, x = y0 + 2 * t, x0 + 3 * t
        f[:, y : y + side, x : x + side] = fg
        frames.append(f)
    return torch.cat(frames)


def constant_flows(b: int, n: int, size: int, dx: float, dy: float = 0.0) -> tuple:
    """Full-resolution motion (dx, dy) px expressed at 1/2, 1/4, 1/8 (in those scales' pixels)."""
    out = []
    for s in (1, 2, 3):
        f = torch.zeros(b, 2 * (n - 1), size >> s, size >> s)
        f[:, 0::2] = dx / 2**s
        f[:, 1::2] = dy / 2**s
        out.append(f)
    return tuple(out)
