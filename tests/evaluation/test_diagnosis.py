"""Diagnosis fields of evaluate(): prevalence, predicted fraction, all-positive and
best-threshold F1, caller-decided predictions (pred=), and the over-prediction notes."""

from __future__ import annotations

import numpy as np
import pytest

from deg_core.cli import main
from deg_core.evaluation import scoring
from deg_core.evaluation.evaluate import best_threshold_f1, evaluate, overprediction_notes
from deg_core.evaluation.metrics import f1_score
from deg_core.report.notebook import metrics_table

NAMES = ["groom", "rear"]


def _brute_best_f1(scores: np.ndarray, labels: np.ndarray) -> float:
    """Max F1 of ``scores > t`` over t = each score, just below the lowest, and +inf."""
    keep = labels != -1
    s, y = scores[keep], labels[keep] == 1
    best = 0.0
    for t in [*np.unique(s), s.min() - 1.0]:
        p = s > t
        tp, fp, fn = np.sum(p & y), np.sum(p & ~y), np.sum(~p & y)
        best = max(best, 2 * tp / (2 * tp + fp + fn))
    return best


def _overpredicting_case() -> tuple[np.ndarray, np.ndarray]:
    """(200, 2) probs and labels: groom labelled on 10% of frames but scored above 0.5
    everywhere; rear labelled on 40% and scored well."""
    rng = np.random.default_rng(0)
    labels = np.zeros((200, 2), dtype=np.int8)
    labels[:20, 0] = 1
    labels[50:130, 1] = 1
    probs = np.empty((200, 2))
    probs[:, 0] = rng.uniform(0.6, 0.9, 200)
    probs[:, 1] = np.where(labels[:, 1] == 1, 0.8, 0.2) + rng.uniform(-0.1, 0.1, 200)
    return probs, labels


def test_prevalence_predicted_fraction_and_baseline():
    labels = np.array([[1], [0], [0], [0], [-1], [1], [0], [0]], dtype=np.int8)  # 2 of 7 labelled
    probs = np.array([[0.9], [0.8], [0.1], [0.1], [0.9], [0.2], [0.1], [0.1]])
    r = evaluate(probs, labels, [0.5], ["groom"])
    p = 2 / 7
    assert r["prevalence"]["groom"] == pytest.approx(p)
    assert r["predicted_fraction"]["groom"] == pytest.approx(2 / 7)  # frames 0 and 1
    assert r["baseline_f1"]["groom"] == pytest.approx(2 * p / (1 + p))
    assert r["macro"]["baseline_f1"] == pytest.approx(2 * p / (1 + p))
    # predicting groom on every labelled frame scores exactly the baseline
    everywhere = evaluate(probs, labels, None, ["groom"], pred=np.ones_like(labels))
    assert everywhere["f1"]["groom"] == pytest.approx(r["baseline_f1"]["groom"])
    assert everywhere["thresholds"] is None


def test_no_positives_gives_none():
    labels = np.zeros((5, 2), dtype=np.int8)
    labels[:, 1] = [1, 0, 0, 1, 0]
    r = evaluate(np.full((5, 2), 0.3), labels, [0.5, 0.5], NAMES)
    assert r["oracle_f1"]["groom"] is None
    assert r["prevalence"]["groom"] == 0.0
    assert r["oracle_f1"]["rear"] == pytest.approx(2 * 2 / (2 * 2 + 3))  # all tied: all or none
    assert r["macro"]["oracle_f1"] == r["oracle_f1"]["rear"]  # only rear has positives


@pytest.mark.parametrize("seed", range(6))
def test_oracle_f1_is_the_brute_force_best(seed):
    rng = np.random.default_rng(seed)
    n = 300
    labels = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(n, 3), p=[0.1, 0.6, 0.3])
    # rounded scores: many ties, which a cut-off must take together
    probs = np.round(np.clip(0.3 * (labels == 1) + rng.uniform(0, 0.7, (n, 3)), 0, 1), 2)
    r = evaluate(probs, labels, [0.5, 0.5, 0.5], ["a", "b", "c"])
    for k, name in enumerate(["a", "b", "c"]):
        best = _brute_best_f1(probs[:, k], labels[:, k])
        assert r["oracle_f1"][name] == pytest.approx(best)
        assert best_threshold_f1(probs[:, k], labels[:, k]) == pytest.approx(best)
    for t in np.linspace(0, 1, 21):
        at_t = f1_score((probs > t).astype(np.int8), labels)
        assert np.all(np.array(list(r["oracle_f1"].values())) >= at_t - 1e-12)


def test_oracle_f1_never_counts_nan_scores_present():
    scores = np.array([np.nan, np.nan, 0.9, 0.1])
    labels = np.array([1, 1, 1, 0], dtype=np.int8)
    # best: only the 0.9 frame present -> tp 1, fn 2 -> 2 / (2 + 2)
    assert best_threshold_f1(scores, labels) == pytest.approx(0.5)
    assert best_threshold_f1(np.full(3, np.nan), labels[:3]) == 0.0


def test_pred_replaces_thresholded_predictions():
    probs, labels = _overpredicting_case()
    decided = np.zeros_like(labels)
    decided[:20, 0] = 1  # the caller's decision gets groom exactly right
    decided[:, 1] = (probs[:, 1] > 0.5).astype(np.int8)
    thresholded = evaluate(probs, labels, [0.5, 0.5], NAMES)
    r = evaluate(probs, labels, [0.5, 0.5], NAMES, pred=[decided])
    assert thresholded["f1"]["groom"] < 0.3
    assert r["f1"]["groom"] == r["raw_f1"]["groom"] == 1.0
    assert r["predicted_fraction"]["groom"] == pytest.approx(0.1)
    assert r["n_pred_bouts"]["groom"] == 1
    # the probabilities still give the ranking metrics
    for m in ("auroc", "ap", "oracle_f1"):
        assert r[m] == thresholded[m]


def test_pred_shapes_are_checked():
    probs, labels = _overpredicting_case()
    with pytest.raises(ValueError, match="prediction arrays"):
        evaluate(probs, labels, None, NAMES, pred=[labels, labels])
    with pytest.raises(ValueError, match="shape of probs"):
        evaluate(probs, labels, None, NAMES, pred=labels[:, :1])
    with pytest.raises(ValueError, match="thresholds are needed"):
        evaluate(probs, labels, None, NAMES)


def test_overprediction_notes_name_only_the_overpredicted_behaviour():
    probs, labels = _overpredicting_case()
    r = evaluate(probs, labels, [0.5, 0.5], NAMES)
    notes = overprediction_notes(r)
    assert len(notes) == 1
    assert notes[0].startswith("groom: predicted on 100% of frames but labelled on 10%")
    assert "all-positive F1 0.18" in notes[0]
    assert "\n" not in notes[0]
    assert overprediction_notes(r, few=0.05) == []
    table = metrics_table({"test": r})
    assert "test: groom: predicted on 100%" in repr(table)
    assert "best-threshold F1" in table.columns and "all-positive F1" in table.columns
    assert "<p>test: groom: predicted" in table._repr_html_()


def test_deg_evaluate_prints_the_notes(project, monkeypatch, capsys):
    probs, labels = _overpredicting_case()
    result = evaluate(probs, labels, [0.5, 0.5], NAMES)
    result.update(run="seq_run", split="val", videos=["v0"])
    # the scoring of stored outputs is tested with a trained run elsewhere
    monkeypatch.setattr(scoring, "evaluate_project", lambda *a, **k: result)
    assert main(["evaluate", str(project.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    notes = [line.strip() for line in lines if "the decision does not separate it" in line]
    assert notes == overprediction_notes(result)
    assert notes[0].startswith("groom:")
