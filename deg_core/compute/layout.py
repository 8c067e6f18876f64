"""Memory layout: NHWC (``channels_last``) convolutions for 2-D models, in training and inference.

oneDNN (CPU) and cuDNN (GPU) run NHWC convolutions faster than NCHW ones; a 2-D model whose
weights and inputs are NHWC avoids a layout conversion around every convolution
(benchmarks/RESULTS.md: ~1.3x on TinyMotionNet training, nothing lost on the narrow PairFlowNet).
5-D (3-D convolution) weights and inputs keep their layout.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def memory_format(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def set_layout(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """Convert ``model``'s 4-D parameters to NHWC (or back) in place; returns ``model``.

    In place on ``.data``, so optimisers and DDP already holding the parameters keep them;
    state dicts are unaffected (loading copies values, whatever the layout).
    """
    fmt = memory_format(channels_last)
    for p in model.parameters():
        if p.dim() == 4:
            p.data = p.data.contiguous(memory_format=fmt)
    return model


def as_layout(x: Tensor, channels_last: bool = True) -> Tensor:
    """A 4-D batch (B, C, H, W) in NHWC (or NCHW) memory; other ranks unchanged."""
    return x.contiguous(memory_format=memory_format(channels_last)) if x.dim() == 4 else x


def is_2d(model: nn.Module) -> bool:
    """Whether NHWC suits ``model``: it has no 3-D convolution (5-D weight)."""
    return all(p.dim() != 5 for p in model.parameters())


def nhwc_if_2d(model: nn.Module) -> bool:
    """Convert a 2-D ``model`` to NHWC in place, as the trainers do; returns whether it was,
    i.e. whether its input batches should go through :func:`as_layout` too."""
    nhwc = is_2d(model)
    set_layout(model, nhwc)
    return nhwc
