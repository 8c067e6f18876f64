"""Tests for deg_core.train.losses: masked BCE / softmax CE and DEG's class-imbalance weights."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deg_core.train.losses import (
    MaskedBCELoss,
    label_counts,
    pos_weight_from_counts,
)

LOG2 = math.log(2.0)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _bce(x: float, y: float, w: float = 1.0) -> float:
    """Hand BCE with logits: -(w y log p + (1 - y) log(1 - p))."""
    p = _sigmoid(x)
    return -(w * y * math.log(p) + (1 - y) * math.log(1 - p))


# --------------------------------------------------------------------------- class weights


def test_label_counts_ignores_unlabelled():
    labels = np.array([[1, 0], [0, -1], [1, 1], [-1, 0], [-1, -1]], dtype=np.int8)
    pos, neg = label_counts(labels)
    np.testing.assert_array_equal(pos, [2, 1])
    np.testing.assert_array_equal(neg, [1, 2])
    assert pos.dtype == np.int64


def test_label_counts_rejects_bad_input():
    with pytest.raises(ValueError, match="only contain"):
        label_counts(np.array([[2, 0]]))
    with pytest.raises(ValueError, match=r"\(T, K\)"):
        label_counts(np.array([1, 0, -1]))


def test_pos_weight_from_counts_values():
    w = pos_weight_from_counts(np.array([1, 4, 2]), np.array([16, 4, 162]))
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, [2.0, 1.0, 3.0], rtol=1e-6)  # 16^.25, 1, 81^.25
    np.testing.assert_allclose(pos_weight_from_counts([1], [9], beta=0.5), [3.0])
    np.testing.assert_allclose(pos_weight_from_counts([5], [50], beta=0.0), [1.0])


def test_pos_weight_from_counts_zero_counts_give_one():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero RuntimeWarning either
        w = pos_weight_from_counts(np.array([0, 5, 0, 3]), np.array([10, 0, 0, 3]))
    np.testing.assert_array_equal(w, [1.0, 1.0, 1.0, 1.0])
    assert np.all(np.isfinite(w))


def test_pos_weight_from_counts_rejects_bad_counts():
    with pytest.raises(ValueError, match="non-negative"):
        pos_weight_from_counts([-1], [3])
    with pytest.raises(ValueError, match="same shape"):
        pos_weight_from_counts([1, 2], [3])


def test_pos_weight_pipeline_from_labels():
    labels = np.zeros((17, 1), dtype=np.int8)
    labels[0] = 1
    labels[-1] = -1  # 1 positive, 15 negatives labelled
    w = pos_weight_from_counts(*label_counts(labels))
    np.testing.assert_allclose(w, [15**0.25], rtol=1e-6)


# --------------------------------------------------------------------------- MaskedBCELoss


def test_bce_hand_value_and_masking():
    # logit 0 -> p = 0.5 -> log 2 for either target; the -1 entry (logit 2) is dropped
    loss = MaskedBCELoss()(torch.tensor([[0.0, 2.0, 0.0]]), torch.tensor([[1, -1, 0]]))
    assert loss.item() == pytest.approx(LOG2)


def test_bce_matches_torch_on_labelled_subset():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g)
    targets = torch.randint(0, 2, (6, 4), generator=g).to(torch.int8)
    targets[0, :] = -1
    targets[2, 1] = -1
    targets[5, 3] = -1
    mask = targets != -1
    expected = F.binary_cross_entropy_with_logits(logits[mask], targets[mask].float())
    manual = np.mean(
        [
            _bce(float(x), float(y))
            for x, y, m in zip(logits.flatten(), targets.flatten(), mask.flatten(), strict=True)
            if m
        ]
    )
    got = MaskedBCELoss()(logits, targets)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    assert got.item() == pytest.approx(manual, rel=1e-6)


def test_bce_sequence_shape_equals_flattened():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 3, generator=g)  # (B, T, K)
    targets = torch.randint(-1, 2, (2, 5, 3), generator=g).float()
    crit = MaskedBCELoss(pos_weight=np.array([1.0, 2.0, 0.5]), focal_gamma=1.0)
    a = crit(logits, targets)
    b = crit(logits.reshape(-1, 3), targets.reshape(-1, 3))
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_bce_gradient_zero_on_masked_entries():
    logits = torch.tensor([[0.3, -1.2], [2.0, 50.0]], requires_grad=True)
    targets = torch.tensor([[1.0, -1.0], [0.0, -1.0]])
    crit = MaskedBCELoss(pos_weight=torch.tensor([2.0, 3.0]), focal_gamma=1.0, label_smoothing=0.05)
    crit(logits, targets).backward()
    assert logits.grad is not None
    assert logits.grad[0, 1].item() == 0.0
    assert logits.grad[1, 1].item() == 0.0
    assert logits.grad[0, 0].item() != 0.0
    assert logits.grad[1, 0].item() != 0.0


def test_bce_all_masked_is_zero_with_grad():
    logits = torch.tensor([[1e4, -1e4], [0.0, 3.0]], requires_grad=True)
    targets = torch.full((2, 2), -1)
    for crit in (MaskedBCELoss(), MaskedBCELoss(np.array([4.0, 4.0]), 2.0, 0.1)):
        loss = crit(logits, targets)
        assert loss.item() == 0.0
        assert not torch.isnan(loss)
        loss.backward()
        assert logits.grad is not None
        assert torch.all(logits.grad == 0)
        logits.grad = None


def test_bce_empty_batch_is_zero():
    loss = MaskedBCELoss()(torch.zeros(0, 3, requires_grad=True), torch.zeros(0, 3))
    assert loss.item() == 0.0


def test_bce_pos_weight_scales_positive_term_only():
    logits = torch.tensor([[0.0], [0.0], [1.0]])
    targets = torch.tensor([[1], [0], [-1]])
    loss = MaskedBCELoss(pos_weight=np.array([3.0]))(logits, targets)
    assert loss.item() == pytest.approx((3 * LOG2 + LOG2) / 2)  # mean over the 2 labelled
    # same as torch's pos_weight on the labelled subset
    torch_loss = F.binary_cross_entropy_with_logits(
        logits[:2], targets[:2].float(), pos_weight=torch.tensor([3.0])
    )
    assert loss.item() == pytest.approx(torch_loss.item())


def test_bce_pos_weight_is_a_buffer_and_checked():
    crit = MaskedBCELoss(pos_weight=np.array([2.0, 1.0]))
    assert "pos_weight" in crit.state_dict()
    assert crit.to(torch.float64).pos_weight is not None
    with pytest.raises(ValueError, match="pos_weight has 2 entries"):
        crit(torch.zeros(4, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="non-negative"):
        MaskedBCELoss(pos_weight=np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="1-D"):
        MaskedBCELoss(pos_weight=np.ones((2, 2)))


def test_bce_focal_matches_formula_and_reduces_easy_examples():
    x = torch.tensor([[4.0], [-4.0], [-3.0]])  # easy positive, hard positive, easy negative
    y = torch.tensor([[1.0], [1.0], [0.0]])
    plain = [MaskedBCELoss()(x[i : i + 1], y[i : i + 1]).item() for i in range(3)]
    focal = [MaskedBCELoss(focal_gamma=1.0)(x[i : i + 1], y[i : i + 1]).item() for i in range(3)]
    p = [_sigmoid(4.0), _sigmoid(-4.0), _sigmoid(-3.0)]
    # (1 - p)^gamma for positives, p^gamma for negatives
    assert focal[0] == pytest.approx((1 - p[0]) * _bce(4.0, 1.0), rel=1e-5)
    assert focal[1] == pytest.approx((1 - p[1]) * _bce(-4.0, 1.0), rel=1e-5)
    assert focal[2] == pytest.approx(p[2] * _bce(-3.0, 0.0), rel=1e-5)
    assert focal[0] < 0.05 * plain[0]  # easy examples are strongly down-weighted
    assert focal[1] > 0.9 * plain[1]  # hard ones hardly at all
    g2 = MaskedBCELoss(focal_gamma=2.0)(x[:1], y[:1]).item()
    assert g2 == pytest.approx((1 - p[0]) ** 2 * _bce(4.0, 1.0), rel=1e-5)


def test_bce_focal_gradient_finite_at_extreme_logits():
    logits = torch.tensor([[100.0, -100.0]], requires_grad=True)
    MaskedBCELoss(focal_gamma=1.0)(logits, torch.tensor([[1.0, 0.0]])).backward()
    assert logits.grad is not None
    assert torch.all(torch.isfinite(logits.grad))


def test_bce_label_smoothing_targets():
    eps = 0.05
    x = torch.tensor([[0.7], [-1.3]])
    got = MaskedBCELoss(label_smoothing=eps)(x, torch.tensor([[1], [0]]))
    expected = (_bce(0.7, 1 - eps) + _bce(-1.3, eps)) / 2
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # the loss is minimised (zero gradient) at p = 1 - eps for a positive
    best = torch.tensor([[math.log((1 - eps) / eps)]], requires_grad=True)
    MaskedBCELoss(label_smoothing=eps)(best, torch.tensor([[1.0]])).backward()
    assert best.grad is not None
    assert abs(best.grad.item()) < 1e-6


def test_bce_from_config():
    crit = MaskedBCELoss.from_config(SimpleNamespace(focal_gamma=1, label_smoothing=0.05))
    assert (crit.focal_gamma, crit.label_smoothing) == (1.0, 0.05)
    crit = MaskedBCELoss.from_config(SimpleNamespace(), pos_weight=np.array([2.0]))
    assert (crit.focal_gamma, crit.label_smoothing) == (0.0, 0.0)
    assert crit.pos_weight is not None
    nested = SimpleNamespace(train=SimpleNamespace(focal_gamma=1.0, label_smoothing=None))
    crit = MaskedBCELoss.from_config(nested)
    assert (crit.focal_gamma, crit.label_smoothing) == (1.0, 0.0)


def test_bce_rejects_bad_arguments():
    with pytest.raises(ValueError, match="focal_gamma"):
        MaskedBCELoss(focal_gamma=-1)
    with pytest.raises(ValueError, match="label_smoothing"):
        MaskedBCELoss(label_smoothing=0.5)
    with pytest.raises(ValueError, match="same shape"):
        MaskedBCELoss()(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(TypeError, match="floating"):
        MaskedBCELoss()(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3))
