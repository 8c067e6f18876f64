"""Tests for deg_core.evaluation.metrics: masked confusion counts, F1, thresholds, summaries."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from deg_core.evaluation.metrics import (
    binary_counts,
    f1_score,
    fit_thresholds,
    nan_mean,
    per_class_metrics,
    precision_recall,
    threshold_grid,
)

# Two behaviours, 6 frames; -1 frames must be ignored whatever is predicted there.
LABELS = np.array([[1, 0], [1, 1], [0, -1], [0, 0], [-1, 1], [1, 0]], dtype=np.int8)
PRED = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [1, 0]], dtype=np.uint8)
# col 0 (row 4 ignored): tp rows 0,5; fp row 2; fn row 1; tn row 3
# col 1 (row 2 ignored): tp row 1; fp none; fn row 4; tn rows 0,3,5


def test_binary_counts_by_hand():
    c = binary_counts(PRED, LABELS)
    np.testing.assert_array_equal(c["tp"], [2, 1])
    np.testing.assert_array_equal(c["fp"], [1, 0])
    np.testing.assert_array_equal(c["fn"], [1, 1])
    np.testing.assert_array_equal(c["tn"], [1, 3])
    # boolean predictions work the same
    c2 = binary_counts(PRED.astype(bool), LABELS)
    assert all(np.array_equal(c[k], c2[k]) for k in c)


def test_f1_precision_recall_by_hand():
    np.testing.assert_allclose(f1_score(PRED, LABELS), [2 / 3, 2 / 3])  # 4/6 and 2/3
    precision, recall = precision_recall(PRED, LABELS)
    np.testing.assert_allclose(precision, [2 / 3, 1.0])
    np.testing.assert_allclose(recall, [2 / 3, 0.5])


def test_undefined_metrics_are_nan_and_silent():
    labels = np.array([[0, 0, 1], [0, 0, 1], [-1, -1, 0]])
    pred = np.array([[0, 1, 0], [0, 0, 0], [1, 1, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f1 = f1_score(pred, labels)
        precision, recall = precision_recall(pred, labels)
    # col 0: no positives, no predictions -> everything undefined
    assert np.isnan(f1[0]) and np.isnan(precision[0]) and np.isnan(recall[0])
    # col 1: no positives but a false alarm -> F1 0, precision 0, recall undefined
    assert f1[1] == 0.0 and precision[1] == 0.0 and np.isnan(recall[1])
    # col 2: positives but nothing predicted -> F1 0, precision undefined, recall 0
    assert f1[2] == 0.0 and np.isnan(precision[2]) and recall[2] == 0.0


def test_shape_and_value_checks():
    with pytest.raises(ValueError, match="same"):
        binary_counts(PRED[:, :1], LABELS)
    with pytest.raises(ValueError, match="only contain"):
        f1_score(PRED, LABELS * 2)
    with pytest.raises(ValueError, match=r"\(T, K\)"):
        f1_score(PRED[:, 0], LABELS[:, 0])


def test_nan_mean():
    assert nan_mean([np.nan, 1.0, 0.0]) == 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(nan_mean([np.nan, np.nan]))
        assert np.isnan(nan_mean([]))


# --------------------------------------------------------------------------- thresholds


def test_threshold_grid_is_degs():
    grid = threshold_grid()
    assert grid.shape == (200,)
    assert grid[0] == pytest.approx(1e-4) and grid[-1] == 1.0
    with pytest.raises(ValueError, match="n_steps"):
        threshold_grid(0)


def test_fit_thresholds_separating_example():
    probs = np.array([0.7, 0.8, 0.9, 0.1, 0.2, 0.3, 0.95, 0.05])[:, None]
    labels = np.array([1, 1, 1, 0, 0, 0, -1, -1])[:, None]  # unlabelled probs are decoys
    th, f1, warns = fit_thresholds(probs, labels)
    assert 0.3 < th[0] <= 0.7
    # the middle of the flat optimum, not its lower edge (DEG would pick ~0.30)
    assert 0.45 < th[0] < 0.55
    assert f1[0] == 1.0
    assert warns == []
    assert f1_score(probs > th, labels)[0] == 1.0


def test_fit_thresholds_matches_brute_force():
    rng = np.random.default_rng(3)
    labels = (rng.random((500, 3)) < 0.3).astype(np.int8)
    labels[rng.random((500, 3)) < 0.2] = -1
    probs = np.clip(0.35 * labels + rng.random((500, 3)) * 0.65, 0, 1).astype(np.float32)
    grid = threshold_grid(50)
    th, f1, warns = fit_thresholds(probs, labels, n_steps=50)
    brute = np.stack([f1_score(probs > g, labels) for g in grid])  # (n_steps, K)
    np.testing.assert_allclose(f1, brute.max(axis=0), rtol=1e-12)
    for k in range(3):
        assert th[k] in grid
        np.testing.assert_allclose(f1_score(probs > th, labels)[k], brute[:, k].max())
    assert warns == []


def test_fit_thresholds_clamps_low_threshold():
    # only a threshold below 0.003 separates: the grid's 1e-4 wins, then it is clamped up
    probs = np.array([0.003, 0.004, 0.00005, 0.00002])[:, None]
    labels = np.array([1, 1, 0, 0])[:, None]
    th, f1, _ = fit_thresholds(probs, labels, min_threshold=0.01)
    assert th[0] == 0.01
    assert f1[0] == 0.0  # F1 reported at the threshold actually returned


def test_fit_thresholds_low_f1_falls_back_with_warning():
    probs = np.concatenate([[0.1], np.full(100, 0.9)])[:, None]
    labels = np.concatenate([[1], np.zeros(100)])[:, None].astype(np.int8)
    th, _, warns = fit_thresholds(probs, labels, class_names=["sniff"])
    assert th[0] == 0.5
    assert len(warns) == 1 and "sniff" in warns[0] and "F1" in warns[0]


def test_fit_thresholds_no_positives_or_no_labels():
    rng = np.random.default_rng(0)
    probs = rng.random((50, 3))
    labels = np.ones((50, 3), dtype=np.int8)
    labels[::2, 0] = 0
    labels[:, 1] = 0  # never present: DEG's threshold search can hang on this
    labels[:, 2] = -1  # never labelled
    th, f1, warns = fit_thresholds(probs, labels, class_names=["groom", "rear", "dig"])
    assert th[1] == 0.5 and th[2] == 0.5
    assert f1[1] == 0.0  # some probabilities > 0.5 are false alarms
    assert np.isnan(f1[2])
    assert any("rear" in w and "positive" in w for w in warns)
    assert any("dig" in w and "no labelled frames" in w for w in warns)
    assert not any("groom" in w for w in warns)


def test_fit_thresholds_default_names_and_empty_input():
    th, f1, warns = fit_thresholds(np.zeros((0, 2)), np.zeros((0, 2), dtype=np.int8))
    np.testing.assert_array_equal(th, [0.5, 0.5])
    assert np.all(np.isnan(f1))
    assert len(warns) == 2 and "behaviour 1" in warns[1]


def test_fit_thresholds_no_negatives_and_nan_probs():
    probs = np.array([[0.8, np.nan], [0.9, 0.9], [0.7, 0.1], [0.6, 0.8]])
    labels = np.array([[1, 1], [1, 1], [1, 0], [1, 0]])
    th, f1, warns = fit_thresholds(probs, labels, class_names=["a", "b"])
    assert f1[0] == 1.0 and th[0] < 0.6
    assert any(w.startswith("a:") and "negative" in w for w in warns)
    assert any(w.startswith("b:") and "NaN" in w for w in warns)
    # the NaN frame counts as a miss: best is tp 1, fp 0, fn 1 (threshold in [0.8, 0.9))
    assert f1[1] == pytest.approx(2 / 3) and 0.8 <= th[1] < 0.9


def test_fit_thresholds_checks_input():
    with pytest.raises(ValueError, match="same"):
        fit_thresholds(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="class names"):
        fit_thresholds(np.zeros((3, 2)), np.zeros((3, 2)), class_names=["x"])


def test_fit_thresholds_large_input_runs():
    rng = np.random.default_rng(1)
    t, k = 200_000, 5
    labels = (rng.random((t, k)) < 0.1).astype(np.int8)
    labels[rng.random((t, k)) < 0.3] = -1
    probs = np.clip(labels * 0.4 + rng.random((t, k)) * 0.6, 0, 1).astype(np.float32)
    th, f1, warns = fit_thresholds(probs, labels)
    assert th.shape == (k,) and f1.shape == (k,) and warns == []
    assert np.all((th > 0.3) & (th < 0.8)) and np.all(f1 > 0.5)


# --------------------------------------------------------------------------- summary


def test_per_class_metrics_by_hand():
    labels = np.concatenate([LABELS, np.zeros((6, 1), dtype=np.int8)], axis=1)
    pred = np.concatenate([PRED, np.zeros((6, 1), dtype=np.uint8)], axis=1)
    probs = np.where(pred == 1, 0.8, 0.2)
    names = ["groom", "rear", "dig"]
    m = per_class_metrics(probs, labels, np.array([0.5, 0.5, 0.5]), names)
    assert m["f1"]["groom"] == pytest.approx(2 / 3) and m["f1"]["rear"] == pytest.approx(2 / 3)
    assert m["f1"]["dig"] is None  # no positives, no predictions
    assert m["precision"] == {"groom": pytest.approx(2 / 3), "rear": 1.0, "dig": None}
    assert m["recall"] == {"groom": pytest.approx(2 / 3), "rear": 0.5, "dig": None}
    assert m["accuracy"] == {"groom": 0.6, "rear": 0.8, "dig": 1.0}
    assert m["support"] == {"groom": 3, "rear": 2, "dig": 0}
    assert m["macro_f1"] == pytest.approx(2 / 3)  # dig (no positives) left out
    json.dumps(m, allow_nan=False)
    assert all(type(v) is float for v in m["precision"].values() if v is not None)


def test_per_class_metrics_macro_excludes_false_alarm_only_behaviour():
    probs = np.array([[0.9, 0.9], [0.1, 0.1]])
    labels = np.array([[1, 0], [0, 0]])
    m = per_class_metrics(probs, labels, [0.5, 0.5], ["a", "b"])
    assert m["f1"] == {"a": 1.0, "b": 0.0}
    assert m["macro_f1"] == 1.0
    m = per_class_metrics(probs, np.zeros((2, 2)), [0.5, 0.5], None)
    assert m["macro_f1"] is None and "behaviour 0" in m["f1"]


def test_per_class_metrics_checks_thresholds():
    with pytest.raises(ValueError, match="thresholds"):
        per_class_metrics(np.zeros((2, 2)), np.zeros((2, 2)), [0.5], ["a", "b"])


def test_smoothed_thresholds_survive_a_confidence_shift():
    """Validation: a few short bouts, all very confident (P 0.95-0.98), negatives up to
    0.85. The plain maximum sits in the gap, just below the positives; a new video whose
    positives score a little lower (0.86-0.87) then gets no detection at all. The
    smoothed fit steps back from that cliff and still finds them."""
    rng = np.random.default_rng(0)
    # most negatives score low, a tail reaches 0.85 (as a model's do)
    neg = np.concatenate([rng.uniform(0.0, 0.3, 570), rng.uniform(0.3, 0.85, 30)])
    pos = rng.uniform(0.95, 0.98, 15)
    probs = np.concatenate([neg, pos])[:, None]
    labels = np.concatenate([np.zeros(600), np.ones(15)]).astype(np.int8)[:, None]
    plain, _, _ = fit_thresholds(probs, labels)
    smooth, f1_at, _ = fit_thresholds(probs, labels, smooth=1.0)
    assert smooth[0] < plain[0] - 0.02 and plain[0] > 0.87
    assert 0.5 < smooth[0] < 0.86 and f1_at[0] > 0.5  # still a good threshold on validation
    test_pos = rng.uniform(0.86, 0.87, 15)
    test_neg = rng.uniform(0.0, 0.5, 600)
    test = np.concatenate([test_neg, test_pos])
    truth = np.concatenate([np.zeros(600), np.ones(15)]).astype(bool)
    assert not (test > plain[0]).any()  # F1 0 with the plain threshold
    hits = test > smooth[0]
    assert hits[truth].all() and not hits[~truth].any()


def test_smoothing_keeps_fallbacks_and_clamps():
    probs = np.array([[0.2, 0.001], [0.3, 0.002], [0.9, 0.003]])
    labels = np.array([[0, 1], [0, 1], [1, 1]], dtype=np.int8)
    th, _, warns = fit_thresholds(probs, labels, smooth=1.0, class_names=["a", "b"])
    assert 0.3 <= th[0] < 0.9
    assert th[1] >= 0.01  # clamped like the plain fit
    assert any("no labelled negative" in w for w in warns)
