"""Tests for deg_core.evaluation.evaluate: AUROC / AP, bout F1, confusion matrix, evaluate()."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from deg_core.evaluation.evaluate import (
    auroc,
    auroc_per_class,
    average_precision,
    average_precision_per_class,
    bout_f1,
    confusion,
    evaluate,
)
from deg_core.evaluation.metrics import f1_score

# --------------------------------------------------------------------------- AUROC / AP


def test_auroc_ap_by_hand():
    # scikit-learn's documentation example
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    # positive 0.35 beats 1 of 2 negatives, 0.8 beats 2 -> 3 / 4
    assert auroc(s, y) == pytest.approx(0.75)
    # descending: 0.8 (+) P=1 R=.5; 0.4 (-) R unchanged; 0.35 (+) P=2/3 R=1 -> .5 + .5 * 2/3
    assert average_precision(s, y) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_auroc_ap_ties():
    y = np.array([1, 0, 0, 1])
    s = np.array([0.5, 0.5, 0.5, 0.9])
    # 0.5 (+) ties both negatives: 1/2 + 1/2; 0.9 (+) beats both: 2 -> 3 / 4
    assert auroc(s, y) == pytest.approx(0.75)
    # thresholds 0.9: tp 1 fp 0, P 1, R .5; 0.5: tp 2 fp 2 (tied frames enter together), P .5
    assert average_precision(s, y) == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    # everything tied: chance AUROC, AP = prevalence
    assert auroc(np.full(4, 0.3), y) == pytest.approx(0.5)
    assert average_precision(np.full(4, 0.3), y) == pytest.approx(0.5)


def test_auroc_ap_ignore_unlabelled_and_rank_nan_lowest():
    y = np.array([0, 0, 1, 1, -1, -1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 1.0, -5.0])
    assert auroc(s, y) == pytest.approx(0.75)
    assert average_precision(s, y) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # NaN ranks below the negative 0.2: AUROC 0; AP: 0.2 (-) P 0 R 0; NaN (+) P 1/2 R 1
    assert auroc(np.array([np.nan, 0.2]), np.array([1, 0])) == 0.0
    assert average_precision(np.array([np.nan, 0.2]), np.array([1, 0])) == pytest.approx(0.5)


def test_auroc_ap_degenerate():
    s = np.array([0.2, 0.7, 0.4])
    # no positives: both undefined
    assert math.isnan(auroc(s, np.array([0, 0, -1])))
    assert math.isnan(average_precision(s, np.array([0, 0, -1])))
    # no negatives: AUROC undefined, AP is 1 (precision is 1 at every threshold)
    assert math.isnan(auroc(s, np.array([1, 1, 1])))
    assert average_precision(s, np.array([1, 1, 1])) == 1.0
    # all unlabelled, and empty
    assert math.isnan(auroc(s, np.full(3, -1)))
    assert math.isnan(average_precision(s, np.full(3, -1)))
    assert math.isnan(auroc(np.zeros(0), np.zeros(0)))
    assert math.isnan(average_precision(np.zeros(0), np.zeros(0)))
    # perfect and inverted rankings
    y = np.array([0, 1, 0])
    assert auroc(s, y) == 1.0 and average_precision(s, y) == 1.0
    assert auroc(-s, y) == 0.0
    assert average_precision(-s, y) == pytest.approx(1 / 3)  # found last, among 3 frames
    with pytest.raises(ValueError, match=r"\(T,\)"):
        auroc(s, np.array([0, 1]))
    with pytest.raises(ValueError, match="1, 0 or -1"):
        auroc(s, np.array([0, 2, 1]))


def _brute_auroc(s: np.ndarray, y: np.ndarray) -> float:
    pos = [a for a, b in zip(s, y, strict=True) if b == 1]
    neg = [a for a, b in zip(s, y, strict=True) if b == 0]
    if not pos or not neg:
        return float("nan")
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def _brute_ap(s: np.ndarray, y: np.ndarray) -> float:
    keep = y != -1
    s, y = s[keep], y[keep]
    n_pos = int(np.sum(y == 1))
    if n_pos == 0:
        return float("nan")
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        chosen = s >= t
        tp = int(np.sum(chosen & (y == 1)))
        recall = tp / n_pos
        ap += (recall - prev_recall) * tp / int(np.sum(chosen))
        prev_recall = recall
    return ap


def test_auroc_ap_match_brute_force_on_random_data():
    rng = np.random.default_rng(1)
    for trial in range(200):
        t = int(rng.integers(1, 40))
        y = rng.choice([1, 0, -1], size=t, p=[0.3, 0.5, 0.2])
        s = rng.random(t)
        if trial % 2:
            s = np.round(s, 1)  # many ties
        expected_auc, expected_ap = _brute_auroc(s, y), _brute_ap(s, y)
        np.testing.assert_allclose(auroc(s, y), expected_auc, rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(average_precision(s, y), expected_ap, rtol=1e-12, equal_nan=True)


def test_no_tie_ap_is_mean_precision_at_each_positive():
    # without ties, AP = mean over positives of the precision at that positive's rank
    rng = np.random.default_rng(2)
    s = rng.permutation(50) / 50.0
    y = (rng.random(50) < 0.3).astype(int)
    order = np.argsort(-s)
    hits = np.cumsum(y[order])
    expected = np.mean([hits[i] / (i + 1) for i in range(50) if y[order][i] == 1])
    assert average_precision(s, y) == pytest.approx(expected)


def test_per_class_versions():
    s = np.array([[0.1, 0.9], [0.4, 0.8], [0.35, 0.1], [0.8, 0.2]])
    y = np.array([[0, 1], [0, 1], [1, 0], [1, -1]])
    np.testing.assert_allclose(auroc_per_class(s, y), [0.75, 1.0])
    np.testing.assert_allclose(average_precision_per_class(s, y), [0.5 + 0.5 * 2 / 3, 1.0])
    out = auroc_per_class(np.zeros((3, 2)), np.zeros((3, 2)))  # no positives anywhere
    assert out.shape == (2,) and np.isnan(out).all()
    assert auroc_per_class(np.zeros((0, 2)), np.zeros((0, 2))).shape == (2,)
    with pytest.raises(ValueError, match=r"\(T, K\)"):
        average_precision_per_class(s, y[:, 0])


# --------------------------------------------------------------------------- bout F1


def test_bout_f1_by_hand():
    labels = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0])  # true bouts (1,4) (6,8) (10,11)
    pred = np.array([0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0])  # predicted (1,3) (7,10)
    # (1,3)~(1,4): IoU 2/3 -> match; (7,10)~(6,8): 1/4; (7,10) only touches (10,11)
    r = bout_f1(pred, labels)
    assert r == {
        "precision": 0.5,
        "recall": pytest.approx(1 / 3),
        "f1": pytest.approx(2 / 5),
        "n_pred": 2,
        "n_true": 3,
        "n_matched": 1,
    }
    # at IoU 0.25 the second pair matches too
    r = bout_f1(pred, labels, min_overlap=0.25)
    assert (r["n_matched"], r["precision"], r["f1"]) == (2, 1.0, pytest.approx(4 / 5))


def test_bout_f1_unlabelled_frames_cut_bouts():
    # frame 2 unlabelled splits both sequences; the predicted run over 6-7 is unlabelled only
    labels = np.array([1, 1, -1, 1, 1, 0, -1, -1, 0])  # true (0,2) (3,5)
    pred = np.array([1, 1, 1, 1, 1, 0, 1, 1, 0])  # -> (0,2) (3,5) once cut to labelled frames
    r = bout_f1(pred, labels)
    assert (r["n_pred"], r["n_true"], r["n_matched"], r["f1"]) == (2, 2, 2, 1.0)
    # everything unlabelled: nothing to count
    r = bout_f1(np.ones(4), np.full(4, -1))
    assert (r["n_pred"], r["n_true"]) == (0, 0) and all(
        math.isnan(r[k]) for k in ("precision", "recall", "f1")
    )


def test_bout_f1_one_to_one_and_edges():
    # one predicted (0,3) against true (0,1), (2,3): IoU 1/3 each -> only the earlier matches
    r = bout_f1(np.array([1, 1, 1]), np.array([1, 0, 1]), min_overlap=0.3)
    assert (r["n_matched"], r["precision"], r["recall"]) == (1, 1.0, 0.5)
    # bouts at both video edges: (0,1)~(0,2) IoU exactly 0.5 matches; (3,4)~(3,4)
    r = bout_f1(np.array([1, 0, 0, 1]), np.array([1, 1, 0, 1]))
    assert (r["n_matched"], r["f1"]) == (2, 1.0)
    # no predictions: precision undefined, recall and F1 0; no true bouts: recall undefined
    r = bout_f1(np.zeros(4), np.array([0, 1, 1, 0]))
    assert math.isnan(r["precision"]) and r["recall"] == 0.0 and r["f1"] == 0.0
    r = bout_f1(np.array([0, 1, 0, 0]), np.zeros(4))
    assert r["precision"] == 0.0 and math.isnan(r["recall"]) and r["f1"] == 0.0
    # empty
    assert bout_f1(np.zeros(0), np.zeros(0))["n_true"] == 0
    # all positive, perfectly predicted
    assert bout_f1(np.ones(5), np.ones(5))["f1"] == 1.0
    with pytest.raises(ValueError, match="min_overlap"):
        bout_f1(np.zeros(3), np.zeros(3), min_overlap=0.0)
    with pytest.raises(ValueError, match=r"\(T,\)"):
        bout_f1(np.zeros(3), np.zeros(4))


def test_bout_f1_matches_brute_force_on_random_data():
    rng = np.random.default_rng(3)
    for _ in range(200):
        t = int(rng.integers(0, 40))
        labels = rng.choice([1, 0, -1], size=t, p=[0.4, 0.5, 0.1])
        pred = (rng.random(t) < 0.4).astype(int)
        thr = float(rng.choice([0.3, 0.5, 0.75]))
        pb = [(a, b) for a, b in _runs(np.where(labels == -1, 0, pred))]
        tb = _runs(labels)
        pairs = []
        for i, (a, b) in enumerate(pb):
            for j, (c, d) in enumerate(tb):
                inter = max(0, min(b, d) - max(a, c))
                iou = inter / ((b - a) + (d - c) - inter)
                if inter and iou >= thr:
                    pairs.append((-iou, i, j))
        used_p, used_t = set(), set()
        for _, i, j in sorted(pairs):
            if i not in used_p and j not in used_t:
                used_p.add(i)
                used_t.add(j)
        r = bout_f1(pred, labels, thr)
        assert (r["n_pred"], r["n_true"], r["n_matched"]) == (len(pb), len(tb), len(used_p))


def _runs(v: np.ndarray) -> list[tuple[int, int]]:
    out, start = [], None
    for i, x in enumerate([*v.tolist(), 0]):
        if x == 1 and start is None:
            start = i
        elif x != 1 and start is not None:
            out.append((start, i))
            start = None
    return out


# --------------------------------------------------------------------------- confusion

# K = 2 (a = class 1, b = class 2; background = class 0); one frame per case
CONF_LABELS = np.array(
    [[0, 0], [1, 0], [1, 0], [0, 0], [0, 1], [1, 1], [1, 0], [1, 1], [1, -1]], dtype=np.int8
)
CONF_PRED = np.array([[0, 0], [1, 0], [0, 1], [0, 1], [0, 0], [1, 0], [1, 1], [0, 0], [0, 0]])
# f0 {}->{}: [0,0]   f1 {a}->{a}: [1,1]   f2 {a}->{b}: [1,2]   f3 {}->{b}: [0,2]
# f4 {b}->{}: [2,0]  f5 {a,b}->{a}: hit [1,1], unpaired miss b -> [2,0]
# f6 {a}->{a,b}: hit [1,1], unpaired false alarm b -> [0,2]
# f7 {a,b}->{}: misses a, b each paired with the false "background" -> [1,0], [2,0]
# f8 has an unlabelled behaviour: skipped
CONF_EXPECTED = [[1, 0, 2], [1, 3, 1], [3, 0, 0]]


def test_confusion_by_hand():
    c = confusion(CONF_PRED, CONF_LABELS)
    assert c.dtype == np.int64
    np.testing.assert_array_equal(c, CONF_EXPECTED)
    # K = 3: true {a, b}, predicted {b, c}: hit b, miss a paired with false alarm c
    c3 = confusion(np.array([[0, 1, 1]]), np.array([[1, 1, 0]]))
    expected = np.zeros((4, 4), dtype=int)
    expected[2, 2] = expected[1, 3] = 1
    np.testing.assert_array_equal(c3, expected)
    # true {a, b}, predicted {c}: both misses paired with the one false alarm
    c3 = confusion(np.array([[0, 0, 1]]), np.array([[1, 1, 0]]))
    expected = np.zeros((4, 4), dtype=int)
    expected[1, 3] = expected[2, 3] = 1
    np.testing.assert_array_equal(c3, expected)


def test_confusion_edge_cases():
    assert not confusion(np.zeros((0, 2)), np.zeros((0, 2))).any()
    assert confusion(np.zeros((0, 2)), np.zeros((0, 2))).shape == (3, 3)
    assert not confusion(np.ones((4, 2)), np.full((4, 2), -1)).any()
    # no behaviours at all: every frame is background, correctly
    np.testing.assert_array_equal(confusion(np.zeros((3, 0)), np.zeros((3, 0))), [[3]])
    with pytest.raises(ValueError, match=r"\(T, K\)"):
        confusion(np.zeros((3, 2)), np.zeros((3, 3)))


def test_confusion_single_label_is_the_usual_matrix_and_diagonal_is_tp():
    rng = np.random.default_rng(4)
    k = 3
    true_cls = rng.integers(0, k + 1, 200)  # 0 = background
    pred_cls = rng.integers(0, k + 1, 200)
    onehot = np.eye(k + 1, dtype=np.int8)[:, 1:]
    labels, pred = onehot[true_cls], onehot[pred_cls]
    expected = np.zeros((k + 1, k + 1), dtype=int)
    np.add.at(expected, (true_cls, pred_cls), 1)
    np.testing.assert_array_equal(confusion(pred, labels), expected)
    # multi-label: the behaviour diagonal is each behaviour's true positives
    labels = (rng.random((100, k)) < 0.4).astype(np.int8)
    pred = (rng.random((100, k)) < 0.4).astype(np.int8)
    c = confusion(pred, labels)
    np.testing.assert_array_equal(np.diag(c)[1:], ((pred == 1) & (labels == 1)).sum(axis=0))


# --------------------------------------------------------------------------- evaluate

PROBS = np.array(
    [
        [0.9, 0.8, 0.1, 0.7, 0.2, 0.9, 0.9, 0.1],
        [0.1, 0.1, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1],
    ]
).T
LABELS = np.array([[1, 1, 0, 1, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0, 0, -1]], dtype=np.int8).T
NAMES = ["groom", "rear"]


def test_evaluate_raw_by_hand():
    r = evaluate(PROBS, LABELS, [0.5, 0.5], NAMES)
    json.dumps(r, allow_nan=False)
    # groom thresholded equals its labels; rear has one false alarm (frame 2) and no positives
    assert r["postprocessed"] is False and r["min_lengths"] is None
    assert (r["n_frames"], r["n_labelled_frames"]) == (8, 7)
    assert r["n_labelled"] == {"groom": 8, "rear": 7}
    assert r["support"] == {"groom": 5, "rear": 0}
    assert r["f1"] == r["raw_f1"] == {"groom": 1.0, "rear": 0.0}
    assert r["precision"] == {"groom": 1.0, "rear": 0.0}
    assert r["recall"] == {"groom": 1.0, "rear": None}
    assert r["accuracy"] == {"groom": 1.0, "rear": 6 / 7}
    assert r["auroc"] == {"groom": 1.0, "rear": None}
    assert r["ap"] == {"groom": 1.0, "rear": None}
    assert r["bout_f1"] == {"groom": 1.0, "rear": 0.0}
    assert r["n_true_bouts"] == {"groom": 3, "rear": 0}
    assert r["n_pred_bouts"] == {"groom": 3, "rear": 1}
    # macro over behaviours with labelled positives only (rear has none)
    assert r["macro"]["f1"] == 1.0 and r["macro"]["auroc"] == 1.0
    # frames 0-6 (7 has rear unlabelled): groom hits 0,1,3,5,6; background 4 is right,
    # background 2 is predicted rear
    assert r["confusion"] == {
        "classes": ["background", "groom", "rear"],
        "matrix": [[1, 0, 1], [0, 5, 0], [0, 0, 0]],
    }
    np.testing.assert_allclose(f1_score(PROBS > 0.5, LABELS), [1.0, 0.0])  # agrees with metrics


def test_evaluate_postprocessed_by_hand():
    r = evaluate(PROBS, LABELS, [0.5, 0.5], NAMES, min_lengths=[2, 2])
    json.dumps(r, allow_nan=False)
    assert r["postprocessed"] is True and r["min_lengths"] == {"groom": 2, "rear": 2}
    # groom 1 1 0 1 0 1 1 0 -> both interior 1-gaps filled: 1 1 1 1 1 1 1 0
    #   tp 5, fp 2 (frames 2, 4) -> F1 10/12; accuracy (5 + 1) / 8
    # rear's lone 1 (frame 2) is removed -> nothing predicted, no positives -> F1 undefined
    assert r["f1"] == {"groom": pytest.approx(5 / 6), "rear": None}
    assert r["raw_f1"] == {"groom": 1.0, "rear": 0.0}
    assert r["accuracy"]["groom"] == pytest.approx(0.75)
    # one predicted bout (0,7) vs true (0,2) (3,4) (5,7): best IoU 2/7 -> no match
    assert r["bout_f1"] == {"groom": 0.0, "rear": None}
    assert r["n_pred_bouts"] == {"groom": 1, "rear": 0}
    assert r["macro"]["f1"] == pytest.approx(5 / 6) and r["macro"]["raw_f1"] == 1.0
    # frames 0-6: groom predicted everywhere; true background on 2 and 4
    assert r["confusion"]["matrix"] == [[0, 2, 0], [0, 5, 0], [0, 0, 0]]


def test_evaluate_videos_keep_bouts_apart():
    # frames 0-3 and 4-7 as two videos; postprocessing runs per video:
    # video 1 groom 1 1 0 1 -> 1 1 1 1; video 2 groom 0 1 1 0 unchanged -> tp 5, fp 1
    # bouts: (0,4)~(0,2) IoU 1/2 match; (1,3)~(1,3) match -> 2 of 2 predicted, 2 of 3 true
    r = evaluate(
        [PROBS[:4], PROBS[4:]], [LABELS[:4], LABELS[4:]], [0.5, 0.5], NAMES, min_lengths=[2, 2]
    )
    json.dumps(r, allow_nan=False)
    assert r["f1"]["groom"] == pytest.approx(10 / 11)
    assert (r["n_pred_bouts"]["groom"], r["n_true_bouts"]["groom"]) == (2, 3)
    assert r["bout_precision"]["groom"] == 1.0
    assert r["bout_recall"]["groom"] == pytest.approx(2 / 3)
    assert r["bout_f1"]["groom"] == pytest.approx(4 / 5)


def test_evaluate_degenerate_inputs_are_json_ready():
    # all unlabelled
    r = evaluate(PROBS, np.full_like(LABELS, -1), [0.5, 0.5], NAMES, min_lengths=[3, 3])
    json.dumps(r, allow_nan=False)
    assert r["n_labelled_frames"] == 0 and all(v is None for v in r["macro"].values())
    assert r["f1"] == {"groom": None, "rear": None}
    # no frames at all, and no videos at all
    for probs, labels in ((np.zeros((0, 2)), np.zeros((0, 2), dtype=np.int8)), ([], [])):
        r = evaluate(probs, labels, [0.5, 0.5], NAMES)
        json.dumps(r, allow_nan=False)
        assert r["n_frames"] == 0 and r["confusion"]["matrix"] == [[0] * 3] * 3
    # all positive, all predicted: perfect F1, AUROC undefined, AP 1
    r = evaluate(np.ones((4, 1)), np.ones((4, 1), dtype=np.int8), [0.5], ["groom"])
    json.dumps(r, allow_nan=False)
    assert (r["f1"]["groom"], r["auroc"]["groom"], r["ap"]["groom"]) == (1.0, None, 1.0)


def test_evaluate_validation():
    with pytest.raises(ValueError, match="thresholds"):
        evaluate(PROBS, LABELS, [0.5], NAMES)
    with pytest.raises(ValueError, match="class names"):
        evaluate(PROBS, LABELS, [0.5, 0.5], ["groom"])
    with pytest.raises(ValueError, match="label arrays"):
        evaluate([PROBS], [LABELS, LABELS], [0.5, 0.5], NAMES)
    with pytest.raises(ValueError, match=r"\(T, K\)"):
        evaluate(PROBS[:, 0], LABELS[:, 0], [0.5], ["groom"])
