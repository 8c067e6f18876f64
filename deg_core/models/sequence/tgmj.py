"""TGMJ: DeepEthogram's temporal-Gaussian-mixture sequence model (Piergiovanni & Ryoo 2019).

Shape contract: ``forward(x: (B, T, D)) -> logits (B, T, K)`` for any ``T >= 1``.

* Three TGM layers smooth every feature dimension over time with the *same* learned kernels
  (depthwise in D). A layer holds ``n_filters`` Cauchy-shaped kernels of ``filter_length`` taps,
  ``f(t) ∝ 1 / (π γ (1 + ((t - c) / γ)²))`` normalised to sum 1, with a learned centre
  ``c = (L-1)(tanh(center)+1)/2 ∈ [0, L-1]`` and width ``γ = exp(1.5 - 2|tanh(width)|)``.
  Each of its ``c_out`` output channels convolves each of its ``c_in`` input channels with a
  softmax-weighted mixture of those kernels, then (``c_in > 1``) sums the inputs with softmax
  weights (DEG's ``soft_attn: true``). Layers are linear, with no nonlinearity between them.
* The ``c_out = 8`` channels of the last layer are reduced by a max (DEG's paper; ``mean`` too).
* Two heads, ``Linear(D, 128) -> ReLU -> Dropout(0.5) -> Linear(128, K)`` (1×1 convolutions), one
  on the raw features and one on the smoothed ones, each after input dropout 0.5; logits are the
  mean of the two.

Edges: every TGM layer zero-pads ``(L-1)//2`` frames before and ``L-1-(L-1)//2`` after (as DEG),
so the model is time-translation equivariant more than ``receptive_field = num_layers *
(L-1-(L-1)//2)`` frames (21 for DEG's settings) from either end of the input.
Memory: the TGM stack holds ``B * D * c_out * T`` floats per layer (about 33 MB per 1,000
frames for D=1024, B=1), so run very long videos in chunks overlapping by ``receptive_field``.

Parameters for D=1024 and DEG's settings: ``263,664 + 258 K``, i.e. 265,212 for K = 6. DEG's
TGMJ has 263,688 + 258 K: ≈265k is its count for K = 5-6 (a handful of behaviours plus
background). Deliberate differences from DEG:

* DEG's second head reused the first head's hidden layer (its ``h2`` was built, counted, never
  used); here each head has its own, as the two-head design intends (same count).
* DEG's ``delta`` parameter (multiplied by zeros: never any gradient) is dropped: 24 fewer.
* DEG shared one bias tensor between both heads; here each has its own, both set by
  :meth:`SequenceModel.init_bias` (the mean of the logits then starts at the same bias).

This file also holds :class:`SequenceModel`, the base class every sequence arch shares
(``init_bias``, ``from_config``, input checks); ``tcn.py`` imports it from here.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

# init_bias clamps the positive fraction to [BIAS_EPS, 1 - BIAS_EPS] (as the feature extractor):
# a class with no positives (or no negatives) gets a finite bias of about -/+9.2.
BIAS_EPS = 1e-4
REDUCTIONS = ("max", "mean")


def bias_from_counts(
    pos: np.ndarray | Sequence[float], neg: np.ndarray | Sequence[float], num_classes: int
) -> Tensor:
    """(K,) float64 logit of the clamped positive fraction: log(pos/neg) when both are > 0.

    A class with no labelled frames at all gets 0 (p = 0.5).
    """
    p = np.asarray(pos, dtype=np.float64).reshape(-1)
    n = np.asarray(neg, dtype=np.float64).reshape(-1)
    if p.shape != (num_classes,) or n.shape != (num_classes,):
        raise ValueError(
            f"pos and neg must have shape ({num_classes},), got {p.shape} and {n.shape}"
        )
    if not (np.isfinite(p).all() and np.isfinite(n).all()) or (p < 0).any() or (n < 0).any():
        raise ValueError("pos and neg must be finite, non-negative counts")
    total = p + n
    frac = np.divide(p, total, out=np.full_like(total, 0.5), where=total > 0)
    frac = np.clip(frac, BIAS_EPS, 1.0 - BIAS_EPS)
    return torch.from_numpy(np.log(frac) - np.log1p(-frac))


class SequenceModel(nn.Module):
    """Base of the sequence archs: ``(B, T, D)`` features -> ``(B, T, K)`` logits.

    Subclasses set ``arch`` and ``receptive_field`` (frames of context each side that an output
    frame depends on: chunked inference overlapping chunks by it matches whole-sequence output)
    and implement ``heads()`` (the final layers whose biases ``init_bias`` sets).
    """

    arch: str = ""
    receptive_field: int = 0

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        if num_features < 1 or num_classes < 1:
            raise ValueError(
                f"num_features and num_classes must be >= 1, got {num_features}, {num_classes}"
            )
        self.num_features = int(num_features)
        self.num_classes = int(num_classes)

    @classmethod
    def from_config(cls, cfg: Any, num_features: int, num_classes: int) -> Self:
        """Build with the constructor kwargs found on ``cfg`` (attributes or mapping keys).

        Missing or None -> the constructor default; other attributes of ``cfg`` are ignored.
        """
        kwargs: dict[str, Any] = {}
        for name in list(inspect.signature(cls.__init__).parameters)[3:]:
            value = cfg.get(name) if isinstance(cfg, Mapping) else getattr(cfg, name, None)
            if value is not None:
                kwargs[name] = value
        return cls(num_features, num_classes, **kwargs)

    def heads(self) -> list[nn.Linear]:
        """The layers that produce logits (their biases are set by ``init_bias``)."""
        raise NotImplementedError

    @torch.no_grad()
    def init_bias(
        self, pos: np.ndarray | Sequence[float], neg: np.ndarray | Sequence[float]
    ) -> None:
        """Set every head's bias so sigmoid(bias_k) = pos_k / (pos_k + neg_k), clamped.

        pos, neg: (K,) counts of positive / negative labelled frames per class.
        """
        bias = bias_from_counts(pos, neg, self.num_classes)
        for head in self.heads():
            head.bias.copy_(bias.to(head.bias))

    def check_input(self, x: Tensor) -> None:
        """Raise ValueError unless ``x`` is ``(B, T, num_features)`` with ``T >= 1``."""
        if x.ndim != 3 or x.shape[2] != self.num_features or x.shape[1] < 1:
            raise ValueError(
                f"{self.arch}: expected input (B, T >= 1, {self.num_features}), "
                f"got shape {tuple(x.shape)}"
            )


def _xavier_normal_std(rows: int, cols: int) -> float:
    """Std of torch's xavier_normal_ for a (rows, cols) matrix (DEG's init of its mixtures)."""
    return math.sqrt(2.0 / (rows + cols))


class TGMLayer(nn.Module):
    """One temporal-Gaussian-mixture layer: ``(N, c_in, T) -> (N, c_out, T)`` (module doc).

    ``N`` is batch x feature dimensions: every feature is smoothed independently with the same
    ``(c_out, c_in, L)`` effective kernel, zero-padded at the edges.
    """

    def __init__(self, c_in: int, c_out: int, n_filters: int = 8, filter_length: int = 15):
        super().__init__()
        if min(c_in, c_out, n_filters, filter_length) < 1:
            raise ValueError("c_in, c_out, n_filters and filter_length must be >= 1")
        self.c_in, self.c_out = c_in, c_out
        self.n_filters, self.filter_length = n_filters, filter_length
        self.pad = ((filter_length - 1) // 2, filter_length - 1 - (filter_length - 1) // 2)
        # DEG's init: centres spread around the middle tap, widths start at their maximum
        self.center = nn.Parameter(torch.randn(n_filters) * 0.5)
        self.width = nn.Parameter(torch.randn(n_filters) * 1e-4)
        std = _xavier_normal_std(c_out * c_in, n_filters)
        self.mix = nn.Parameter(torch.randn(c_out, c_in, n_filters) * std)
        self.channel_mix: nn.Parameter | None = None
        if c_in > 1:
            self.channel_mix = nn.Parameter(
                torch.randn(c_out, c_in) * _xavier_normal_std(c_out, c_in)
            )

    def kernels(self) -> Tensor:
        """(n_filters, L) Cauchy kernels, each summing to ~1."""
        length = self.filter_length
        centers = (length - 1) * (torch.tanh(self.center) + 1.0) / 2.0
        gammas = torch.exp(1.5 - 2.0 * torch.abs(torch.tanh(self.width)))
        taps = torch.arange(length, device=centers.device, dtype=centers.dtype)
        z = (taps[None, :] - centers[:, None]) / gammas[:, None]
        f = 1.0 / (math.pi * gammas[:, None] * (1.0 + z**2))
        return f / (f.sum(dim=1, keepdim=True) + 1e-6)

    def weight(self) -> Tensor:
        """(c_out, c_in, L) effective convolution kernel (mixtures x channel weights)."""
        w = torch.einsum("oin,nl->oil", F.softmax(self.mix, dim=-1), self.kernels())
        if self.channel_mix is not None:
            w = w * F.softmax(self.channel_mix, dim=1)[:, :, None]
        return w

    def forward(self, x: Tensor) -> Tensor:
        # cross-correlation like DEG's conv2d: the centre tap (L-1)/2 means no shift
        return F.conv1d(F.pad(x, self.pad), self.weight().to(x.dtype))


class TGMJ(SequenceModel):
    """DEG's default sequence model (module doc). ``forward(x: (B, T, D)) -> (B, T, K)``."""

    arch = "tgmj"

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        n_filters: int = 8,
        filter_length: int = 15,
        num_layers: int = 3,
        c_out: int = 8,
        head_hidden: int = 128,
        input_dropout: float = 0.5,
        dropout_p: float = 0.5,
        reduction: str = "max",
    ):
        super().__init__(num_features, num_classes)
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}; expected one of {REDUCTIONS}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.reduction = reduction
        self.tgm = nn.Sequential(
            *(
                TGMLayer(1 if i == 0 else c_out, c_out, n_filters, filter_length)
                for i in range(num_layers)
            )
        )
        self.receptive_field = num_layers * (filter_length - 1 - (filter_length - 1) // 2)
        self.input_dropout = nn.Dropout(input_dropout)
        self.raw_hidden = nn.Linear(num_features, head_hidden)
        self.smooth_hidden = nn.Linear(num_features, head_hidden)
        self.dropout = nn.Dropout(dropout_p)
        self.raw_head = nn.Linear(head_hidden, num_classes)
        self.smooth_head = nn.Linear(head_hidden, num_classes)

    def heads(self) -> list[nn.Linear]:
        return [self.raw_head, self.smooth_head]

    def smooth(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, T, D): the TGM stack reduced over its output channels."""
        b, t, d = x.shape
        # every feature dimension is an independent 1-channel signal: (B*D, 1, T)
        y = self.tgm(x.transpose(1, 2).reshape(b * d, 1, t))
        y = y.amax(dim=1) if self.reduction == "max" else y.mean(dim=1)
        return y.reshape(b, d, t).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, D) float features -> (B, T, K) logits."""
        self.check_input(x)
        smoothed = self.smooth(x)
        raw = F.relu(self.raw_hidden(self.input_dropout(x)))
        smo = F.relu(self.smooth_hidden(self.input_dropout(smoothed)))
        return (self.raw_head(self.dropout(raw)) + self.smooth_head(self.dropout(smo))) / 2
