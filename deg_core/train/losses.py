"""Training losses for per-frame behaviour classification, with unlabelled frames masked out.

Labels follow DeepEthogram's convention: 1 present, 0 absent, -1 unlabelled. Unlabelled
entries (and the padding frames a sequence model sees past the ends of a video, which the
data pipeline labels -1) must not train the model, so every loss here drops them from both
the numerator and the denominator: the result is the mean over *labelled* entries only.

* :class:`MaskedBCELoss` — independent (multi-label) behaviours: sigmoid + binary cross
  entropy per behaviour, with optional positive-class weights, focal modulation and label
  smoothing (the options DEG offers).
* :func:`label_counts` / :func:`pos_weight_from_counts` — DEG's class-imbalance weighting,
  ``pos_weight = (neg / pos) ** beta`` with ``beta = 0.25`` by default.

Shape contract: the class axis is always the **last** axis. A model that emits
``(B, K, T)`` must be permuted to ``(B, T, K)`` by the caller (``x.transpose(1, 2)``).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from deg_core.evaluation.decisions import exclusive_targets
from deg_core.evaluation.metrics import label_masks

__all__ = [
    "MaskedBCELoss",
    "MaskedSoftmaxLoss",
    "class_weights_from_counts",
    "exclusive_counts",
    "label_counts",
    "pos_weight_from_counts",
    "stage_loss",
]


# --------------------------------------------------------------------------- class weights


def label_counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Count positive and negative *labelled* frames per behaviour.

    Args:
        labels: ``(T, K)`` integer array with values in {1, 0, -1}; -1 (unlabelled) is skipped.

    Returns:
        ``(pos, neg)``, each ``(K,)`` int64: frames labelled 1 and frames labelled 0.
    """
    is_pos, is_neg = label_masks(labels)
    pos = np.count_nonzero(is_pos, axis=0).astype(np.int64)
    neg = np.count_nonzero(is_neg, axis=0).astype(np.int64)
    return pos, neg


def pos_weight_from_counts(pos: Any, neg: Any, beta: float = 0.25) -> np.ndarray:
    """DEG's positive-class weight per behaviour: ``(neg / pos) ** beta``.

    A rare behaviour (few positives) gets weight > 1 so its positives are not drowned out;
    ``beta`` < 1 softens the correction (DEG paper: 0.25; ``beta = 0`` disables it).

    Where ``pos == 0`` or ``neg == 0`` the weight is 1.0: with no examples of one side there
    is nothing to rebalance, and the raw ratio would be 0 or inf (which poisons training).

    Args:
        pos, neg: ``(K,)`` non-negative counts, e.g. from :func:`label_counts`.
        beta: exponent.

    Returns:
        ``(K,)`` float32, always finite and > 0.
    """
    pos_a = np.asarray(pos, dtype=np.float64)
    neg_a = np.asarray(neg, dtype=np.float64)
    if pos_a.shape != neg_a.shape:
        raise ValueError(f"pos and neg must have the same shape, got {pos_a.shape}, {neg_a.shape}")
    if np.any(pos_a < 0) or np.any(neg_a < 0):
        raise ValueError("counts must be non-negative")
    valid = (pos_a > 0) & (neg_a > 0)
    # fill invalid slots with 1/1 first so no divide-by-zero warning is ever emitted
    ratio = np.where(valid, neg_a, 1.0) / np.where(valid, pos_a, 1.0)
    return np.where(valid, ratio**beta, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- helpers


def _cfg_value(cfg: Any, name: str, default: float) -> float:
    """``cfg.name``, else ``cfg.train.name``, else ``default`` (None counts as missing)."""
    for source in (cfg, getattr(cfg, "train", None)):
        value = getattr(source, name, None) if source is not None else None
        if value is not None:
            return float(value)
    return default


def _as_float_tensor(x: Tensor | np.ndarray | Any, name: str) -> Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
    t = t.detach().to(torch.float32).clone()
    if t.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per class), got shape {tuple(t.shape)}")
    if not torch.all(torch.isfinite(t)) or torch.any(t < 0):
        raise ValueError(f"{name} must be finite and non-negative")
    return t


def _masked_mean(per_entry: Tensor, mask: Tensor) -> Tensor:
    """Sum of ``per_entry`` where ``mask``, over the number of masked-in entries.

    ``torch.where`` (not a multiply) so a non-finite value at a masked entry cannot leak in;
    with nothing labelled the result is an exact 0 that still carries a (zero) gradient.
    """
    total = torch.where(mask, per_entry, torch.zeros_like(per_entry)).sum()
    return total / mask.sum().clamp(min=1).to(per_entry.dtype)


# --------------------------------------------------------------------------- losses


class MaskedBCELoss(nn.Module):
    """Binary cross entropy with logits over multi-label targets, ignoring unlabelled entries.

    Per labelled entry, with ``p = sigmoid(logit)``, smoothed target ``y'`` and positive
    weight ``w`` (1 if none)::

        bce   = -(w * y' * log p + (1 - y') * log(1 - p))
        focal = (1 - p) ** gamma   if the label is positive,   p ** gamma   if negative
        loss  = mean over labelled entries of focal * bce

    Entries whose target is -1 (or any negative value, or NaN) contribute nothing: not to
    the sum and not to the count. Note the mean divides by the number of labelled entries,
    not by the sum of weights, so ``pos_weight`` genuinely up-weights positives.

    Args:
        pos_weight: ``(K,)`` weight on the positive term per behaviour (see
            :func:`pos_weight_from_counts`); None = 1 everywhere.
        focal_gamma: focal-loss exponent (Lin et al. 2017); 0 = plain BCE, DEG offers 1.
            Down-weights easy, confidently-correct entries.
        label_smoothing: ``eps`` in [0, 0.5): targets 1 -> 1 - eps and 0 -> eps (DEG's
            convention; DEG's option is 0.05). The focal factor uses the unsmoothed label.

    Shapes:
        ``forward(logits, targets)``: both ``(..., K)`` with the same shape, e.g. ``(B, K)``
        for per-frame models or ``(B, T, K)`` for sequence models. ``targets`` may be any
        float or integer dtype. Returns a scalar.
    """

    pos_weight: Tensor | None

    def __init__(
        self,
        pos_weight: Tensor | np.ndarray | None = None,
        focal_gamma: float = 0.0,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        if not focal_gamma >= 0:
            raise ValueError(f"focal_gamma must be >= 0, got {focal_gamma}")
        if not 0 <= label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
        self.focal_gamma = float(focal_gamma)
        self.label_smoothing = float(label_smoothing)
        # a buffer so .to(device) and state_dict carry it along with the model
        pw = None if pos_weight is None else _as_float_tensor(pos_weight, "pos_weight")
        self.register_buffer("pos_weight", pw)

    @classmethod
    def from_config(cls, cfg: Any, pos_weight: Tensor | np.ndarray | None = None) -> MaskedBCELoss:
        """Build from any object with ``focal_gamma`` / ``label_smoothing`` attributes.

        Looked up on ``cfg`` itself, then on ``cfg.train``; missing or None -> the default.
        """
        return cls(
            pos_weight=pos_weight,
            focal_gamma=_cfg_value(cfg, "focal_gamma", 0.0),
            label_smoothing=_cfg_value(cfg, "label_smoothing", 0.0),
        )

    def extra_repr(self) -> str:
        k = None if self.pos_weight is None else self.pos_weight.numel()
        return (
            f"focal_gamma={self.focal_gamma}, label_smoothing={self.label_smoothing}, "
            f"pos_weight={'None' if k is None else f'({k},)'}"
        )

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Scalar mean loss over labelled entries (0.0, with a gradient, if none are)."""
        if logits.shape != targets.shape:
            raise ValueError(
                f"logits and targets must have the same shape (..., K), "
                f"got {tuple(logits.shape)} and {tuple(targets.shape)}"
            )
        if not logits.is_floating_point():
            raise TypeError(f"logits must be a floating-point tensor, got {logits.dtype}")
        targets = targets.to(device=logits.device, dtype=logits.dtype)
        mask = targets >= 0  # False for -1 and for NaN
        # masked entries get a harmless dummy target so nothing non-finite is computed there
        hard = torch.where(mask, targets, torch.zeros_like(targets))

        pos_weight = None
        if self.pos_weight is not None:
            if logits.ndim == 0 or self.pos_weight.numel() != logits.shape[-1]:
                raise ValueError(
                    f"pos_weight has {self.pos_weight.numel()} entries but logits have "
                    f"{logits.shape[-1] if logits.ndim else 0} classes (last axis)"
                )
            pos_weight = self.pos_weight.to(device=logits.device, dtype=logits.dtype)

        eps = self.label_smoothing
        soft = hard * (1 - 2 * eps) + eps if eps > 0 else hard
        per_entry = F.binary_cross_entropy_with_logits(
            logits, soft, pos_weight=pos_weight, reduction="none"
        )
        if self.focal_gamma > 0:
            # (1-p)^g for positives, p^g for negatives, via log-sigmoid: exact and stable,
            # with no pow-of-zero NaN gradients (DEG clamps p instead)
            z = torch.where(hard >= 0.5, -logits, logits)
            per_entry = per_entry * torch.exp(self.focal_gamma * F.logsigmoid(z))
        return _masked_mean(per_entry, mask)


class MaskedSoftmaxLoss(nn.Module):
    """Cross entropy over background + K exclusive behaviours, background's logit fixed at 0.

    The model keeps its K outputs (log-odds of each behaviour against background, see
    :mod:`deg_core.evaluation.decisions`); a frame's class is background when every behaviour
    is labelled 0, behaviour k when exactly k is 1. Frames with an unlabelled entry or with
    several behaviours are ignored (not in the sum, not in the count).

    Args:
        class_weight: ``(K + 1,)`` weight per class, background first (see
            :func:`class_weights_from_counts`); None = 1 everywhere.
        label_smoothing: as :class:`torch.nn.CrossEntropyLoss`'s.

    Shapes:
        ``forward(logits, targets)``: both ``(..., K)``; returns a scalar.
    """

    def __init__(
        self, class_weight: Tensor | np.ndarray | None = None, label_smoothing: float = 0.0
    ) -> None:
        super().__init__()
        w = None if class_weight is None else _as_float_tensor(class_weight, "class_weight")
        self.register_buffer("class_weight", w)
        self.label_smoothing = float(label_smoothing)

    @classmethod
    def from_config(
        cls, cfg: Any, class_weight: Tensor | np.ndarray | None = None
    ) -> MaskedSoftmaxLoss:
        return cls(class_weight, _cfg_value(cfg, "label_smoothing", 0.0))

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        k = logits.shape[-1]
        z = logits.reshape(-1, k).float()
        y = targets.reshape(-1, k)
        labelled = (y >= 0).all(dim=1)
        n_pos = (y == 1).sum(dim=1)
        ok = labelled & (n_pos <= 1)
        cls = torch.where(n_pos == 0, 0, y.argmax(dim=1) + 1)
        full = torch.cat([torch.zeros_like(z[:, :1]), z], dim=1)
        per = F.cross_entropy(
            full,
            torch.where(ok, cls, 0).long(),
            weight=cast(Tensor | None, self.class_weight),
            reduction="none",
            label_smoothing=self.label_smoothing,
        )
        return _masked_mean(per, ok)


def class_weights_from_counts(counts: Any, beta: float = 0.25) -> np.ndarray:
    """``(C,)`` float32 softmax class weights ``((N - n_c) / n_c) ** beta`` (DEG's weighting,
    one class against the rest); 1 for a class without frames."""
    n = np.asarray(counts, dtype=np.float64)
    return pos_weight_from_counts(n, n.sum() - n, beta=beta)


def exclusive_counts(labels: np.ndarray) -> np.ndarray:
    """``(K + 1,)`` int64 frames per class (background first) of ``(T, K)`` labels; frames
    not fully labelled or with several behaviours are not counted."""
    t = exclusive_targets(labels)
    return np.bincount(t[t >= 0], minlength=labels.shape[1] + 1).astype(np.int64)


def stage_loss(
    section: Any, labels: np.ndarray, beta: float, exclusive: bool
) -> tuple[nn.Module, np.ndarray, np.ndarray]:
    """A stage's loss for its training labels ``(T, K)`` and the ``(pos, neg)`` counts its
    model's ``init_bias`` takes: weighted BCE per behaviour, or (exclusive) the weighted
    softmax over background + K whose biases start at log(n_k / n_background) (a training
    set without background frames counts one)."""
    if exclusive:
        counts = exclusive_counts(labels)
        loss: nn.Module = MaskedSoftmaxLoss.from_config(
            section, class_weight=class_weights_from_counts(counts, beta=beta)
        )
        k = labels.shape[1]
        return loss, counts[1:], np.full(k, max(int(counts[0]), 1), np.int64)
    pos, neg = label_counts(labels)
    loss = MaskedBCELoss.from_config(section, pos_weight=pos_weight_from_counts(pos, neg, beta))
    return loss, pos, neg
