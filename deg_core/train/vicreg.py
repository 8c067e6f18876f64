"""VICReg (Bardes, Ponce & LeCun, 2022): the self-supervised objective of ``deg train pretrain``.

Two views of the same samples go through the network and a projector to embeddings
``z1, z2: (B, D)``; the loss pulls each pair together (invariance) while keeping every
embedding dimension spread over the batch (variance) and the dimensions decorrelated
(covariance), so nothing collapses without negatives — stable at the small batches a CPU
affords, where contrastive losses starve for negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Projector(nn.Module):
    """The VICReg expander: (B, in_dim) -> (B, out_dim), Linear-BN-ReLU then Linear.

    Used only while pretraining: the feature stage keeps the encoder's features, not these.
    """

    def __init__(self, in_dim: int = 1024, hidden: int = 512, out_dim: int = 512):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@dataclass(frozen=True)
class VICRegWeights:
    """The three terms' weights (the paper's 25 / 25 / 1)."""

    invariance: float = 25.0
    variance: float = 25.0
    covariance: float = 1.0

    @classmethod
    def from_config(cls, cfg: Any) -> VICRegWeights:
        """From a ``PretrainSection`` (invariance_weight, variance_weight, covariance_weight)."""
        return cls(cfg.invariance_weight, cfg.variance_weight, cfg.covariance_weight)


def vicreg_terms(z1: Tensor, z2: Tensor, eps: float = 1e-4) -> dict[str, Tensor]:
    """The unweighted terms for embeddings ``z1, z2: (B, D)`` of the same B samples, B >= 2.

    invariance: mean squared difference; variance: mean over dimensions and both views of
    ``relu(1 - std)``; covariance: summed squared off-diagonal covariances / D, both views.
    Computed in float32 (the covariance of half-precision embeddings overflows).
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(
            f"expected two (B, D) embeddings, got {tuple(z1.shape)}, {tuple(z2.shape)}"
        )
    b, d = z1.shape
    if b < 2:
        raise ValueError("VICReg needs at least 2 samples per batch (a std over the batch)")
    z1, z2 = z1.float(), z2.float()
    invariance = F.mse_loss(z1, z2)
    variance = z1.new_zeros(())
    covariance = z1.new_zeros(())
    for z in (z1, z2):
        z = z - z.mean(dim=0)
        std = torch.sqrt(z.var(dim=0) + eps)
        variance = variance + F.relu(1.0 - std).mean() / 2
        cov = (z.T @ z) / (b - 1)
        off = cov - torch.diag(torch.diagonal(cov))
        covariance = covariance + off.pow(2).sum() / d
    return {"invariance": invariance, "variance": variance, "covariance": covariance}


def vicreg_loss(z1: Tensor, z2: Tensor, weights: VICRegWeights) -> tuple[Tensor, dict[str, float]]:
    """(weighted loss, {term: unweighted value}) of :func:`vicreg_terms`."""
    terms = vicreg_terms(z1, z2)
    loss = (
        weights.invariance * terms["invariance"]
        + weights.variance * terms["variance"]
        + weights.covariance * terms["covariance"]
    )
    return loss, {k: float(v.detach()) for k, v in terms.items()}
