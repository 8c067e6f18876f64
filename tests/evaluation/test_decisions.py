"""Decisions: out-of-fold thresholds, the guard, per-video normalisation, exclusive arg-max."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deg_core.evaluation.decisions import (
    GUARD_FRACTION,
    Decision,
    clean_classes,
    exclusive_targets,
    fit_decision,
    probabilities,
    standardise,
)
from deg_core.evaluation.metrics import fit_thresholds
from deg_core.train.losses import MaskedSoftmaxLoss, class_weights_from_counts, exclusive_counts


def _video(rng, n: int, prevalence: float, shift: float, sign: float = 1.0):
    """(logits (n, 1), labels (n, 1)): positives score ``sign`` * 2 above negatives,
    everything shifted by ``shift`` (a video's scale)."""
    y = (rng.random(n) < prevalence).astype(np.int8)
    z = sign * 2.0 * (y - 0.5) + rng.normal(0, 0.7, n) + shift
    return z[:, None].astype(np.float32), y[:, None]


def test_val_only_thresholds_collapse_out_of_fold_do_not():
    """The validation video ranks the behaviour inverted: its max-F1 threshold falls to the
    floor and turns the behaviour on for every frame of the test video; pooled with the
    train video's out-of-fold predictions the threshold separates the test video."""
    rng = np.random.default_rng(0)
    train = _video(rng, 3000, 0.15, shift=0.0)
    val = _video(rng, 1000, 0.15, shift=0.0, sign=-1.0)  # the model failed on this video
    test = _video(rng, 3000, 0.15, shift=0.5)
    val_p = probabilities(val[0], exclusive=False)
    th_val, _, _ = fit_thresholds(val_p, val[1])
    test_p = probabilities(test[0], exclusive=False)
    assert (test_p > th_val).mean() > 0.95  # DEG's decision: on everywhere

    oof = fit_decision([train[0], val[0]], [train[1], val[1]], ["b"], source="out-of-fold")
    pred = oof.decide(test[0])
    assert pred.mean() < 0.4
    f1 = 2 * (pred[:, 0] & test[1][:, 0]).sum() / (pred.sum() + test[1].sum())
    baseline = 2 * 0.15 / 1.15
    assert f1 > baseline + 0.2


def test_guard_replaces_an_all_positive_threshold_with_the_prevalence_quantile():
    rng = np.random.default_rng(1)
    logits, labels = _video(rng, 2000, 0.1, shift=0.0, sign=-1.0)
    d = fit_decision([logits], [labels], ["rare"], smooth=0.0)
    share = (probabilities(logits, False)[:, 0] > d.thresholds[0]).mean()
    assert share < GUARD_FRACTION
    assert share == pytest.approx(0.1, abs=0.02)
    assert any("rare" in n and "prevalence quantile" in n for n in d.notes)
    # a common behaviour predicted everywhere is not refused: the labels say it is common
    y = np.ones((500, 1), np.int8)
    y[:20] = 0
    d2 = fit_decision([rng.normal(size=(500, 1)).astype(np.float32)], [y], ["common"])
    assert not any("prevalence quantile" in n for n in d2.notes)


def test_normalised_decision_equals_per_video_thresholds_on_p():
    rng = np.random.default_rng(2)
    videos = [_video(rng, 800, 0.3, shift=s) for s in (-2.0, 0.0, 3.0)]
    d = fit_decision([v[0] for v in videos], [v[1] for v in videos], ["b"], normalise=True)
    for logits, _ in videos:
        p = probabilities(logits, False)
        np.testing.assert_array_equal(d.raw(logits), (p > d.video_thresholds(logits)[None]))
    # the shift between videos no longer moves the decision
    a = d.raw(videos[0][0])
    b = d.raw(videos[0][0] + 5.0)
    np.testing.assert_array_equal(a, b)
    z = standardise(videos[2][0])
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-4


def test_decision_round_trips_through_its_record():
    d = Decision(True, np.array([0.3, 0.6]), np.array([0.5, -1.0]), np.array([3, 1]), True)
    d.notes.append("x")
    again = Decision.from_dict(d.to_dict())
    assert again.to_dict() == d.to_dict()


# --------------------------------------------------------------------------- exclusive


def test_exclusive_probabilities_are_the_softmax_with_background_at_zero():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 3, size=(50, 4)).astype(np.float32)
    p = probabilities(z, exclusive=True)
    full = torch.cat([torch.zeros(50, 1), torch.from_numpy(z)], 1).softmax(1)[:, 1:]
    np.testing.assert_allclose(p, full.numpy(), atol=1e-6)
    assert (p.sum(axis=1) < 1).all()
    assert np.isfinite(probabilities(z * 100, True)).all()


def test_exclusive_decoding_gives_exactly_one_class_per_frame():
    rng = np.random.default_rng(4)
    z = rng.normal(0, 2, size=(400, 3)).astype(np.float32)
    for ml in ([1, 1, 1], [5, 2, 9]):
        d = Decision(True, np.full(3, 0.5), np.array([0.5, 0.0, -0.5]), np.array(ml))
        pred = d.decide(z)
        assert pred.shape == (400, 3)
        assert (pred.sum(axis=1) <= 1).all()  # one behaviour, or background
        cls = np.where(pred.any(axis=1), pred.argmax(axis=1) + 1, 0)
        runs = np.split(cls, np.flatnonzero(np.diff(cls)) + 1)
        if ml != [1, 1, 1]:
            mins = np.r_[1, ml]
            # every run but a video's first/last may keep its length only if long enough
            assert all(len(r) >= mins[r[0]] for r in runs[1:-1])


def test_clean_classes_merges_short_runs_into_the_favoured_neighbour():
    cls = np.array([1, 1, 1, 1, 2, 1, 1, 3, 3, 3, 3])
    scores = np.zeros((11, 4))
    scores[4, 1] = 1.0  # frame 4 favours class 1 over its neighbours' others
    out = clean_classes(cls, scores, np.array([1, 1, 3, 1]))
    assert out.tolist() == [1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3]


def test_exclusive_offsets_correct_a_scale_shift():
    """Behaviour 2's scores sit 3 logits too low: the plain arg-max never picks it; the
    fitted offsets do, and the macro F1 of the decision rises."""
    rng = np.random.default_rng(5)
    n = 3000
    cls = rng.integers(0, 3, n)  # background, b1, b2
    z = rng.normal(0, 1, (n, 2)) + 3.0 * np.stack([cls == 1, cls == 2], 1)
    z[:, 1] -= 3.0
    labels = np.stack([cls == 1, cls == 2], 1).astype(np.int8)
    plain = Decision(True, np.full(2, 0.5), np.zeros(2), np.ones(2, np.int64))
    d = fit_decision([z.astype(np.float32)], [labels], ["b1", "b2"], exclusive=True)
    assert d.offsets[1] > 1.0

    def f1(pred):
        tp = (pred & labels).sum(0)
        return (2 * tp / (pred.sum(0) + labels.sum(0))).mean()

    assert f1(d.decide(z)) > f1(plain.decide(z)) + 0.2


def test_exclusive_targets_and_softmax_loss_ignore_partial_and_multi_frames():
    y = np.array([[0, 0], [1, 0], [0, 1], [-1, 0], [1, 1]], np.int8)
    assert exclusive_targets(y).tolist() == [0, 1, 2, -1, -1]
    assert exclusive_counts(y).tolist() == [1, 1, 1]
    logits = torch.randn(5, 2, requires_grad=True)
    loss = MaskedSoftmaxLoss()(logits, torch.from_numpy(y).float())
    full = torch.cat([torch.zeros(3, 1), logits[:3]], 1)
    expect = torch.nn.functional.cross_entropy(full, torch.tensor([0, 1, 2]))
    assert loss.item() == pytest.approx(expect.item(), rel=1e-6)
    loss.backward()
    assert logits.grad is not None and logits.grad[3:].abs().sum() == 0
    w = class_weights_from_counts([10, 90, 0])
    assert w[0] > w[1] and w[2] == 1.0
