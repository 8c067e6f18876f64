"""Agreement between annotators (and the model): kappa, percent, bouts, confusion, the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest

from deg_core.cli import main
from deg_core.errors import ProjectError
from deg_core.evaluation.agreement import (
    PairCounts,
    cohen_kappa,
    count_pair,
    format_agreement,
    project_agreement,
)
from deg_core.labels.labels import Labels, write_labels
from tests.conftest import snapshot

# 10 frames: a and b agree on 3 present and 5 absent, differ on 2 (one each way).
# po = 0.8; both mark 4 of 10 present, pe = 0.4*0.4 + 0.6*0.6 = 0.52; kappa = 0.28/0.48 = 7/12
A = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], np.int8)
B = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 1], np.int8)


def test_kappa_by_hand():
    assert cohen_kappa(A, B) == pytest.approx(7 / 12)
    assert cohen_kappa(A, A) == 1.0
    assert cohen_kappa(A, 1 - A) == pytest.approx(-0.923076923, rel=1e-6)  # -12/13
    assert math.isnan(cohen_kappa(np.zeros(5, np.int8), np.zeros(5, np.int8)))  # pe == 1


def test_unlabelled_frames_are_left_out():
    a = np.concatenate([A, [-1, 1, -1]]).astype(np.int8)
    b = np.concatenate([B, [1, -1, -1]]).astype(np.int8)
    assert cohen_kappa(a, b) == pytest.approx(7 / 12)
    row = count_pair(a[:, None], b[:, None], ["groom"]).rows()[0]
    assert row["frames"] == 10
    assert row["agreement"] == pytest.approx(0.8)
    assert row["confusion"] == [[5, 1], [1, 3]]  # [a absent / present][b absent / present]


def test_bout_matching_known():
    a = np.zeros(60, np.int8)
    b = np.zeros(60, np.int8)
    for s, e in ((0, 10), (20, 30), (40, 50)):
        a[s:e] = 1
    # IoU 0.9 (match), 0.8 (match), 5/20 = 0.25 (no match at 0.5)
    for s, e in ((0, 9), (22, 30), (45, 60)):
        b[s:e] = 1
    row = count_pair(a[:, None], b[:, None], ["g"]).rows()[0]
    assert (row["bouts_a"], row["bouts_b"], row["matched"]) == (3, 3, 2)
    assert row["bout_f1"] == pytest.approx(4 / 6)
    loose = count_pair(a[:, None], b[:, None], ["g"], min_overlap=0.2).rows()[0]
    assert loose["matched"] == 3
    # symmetric in the two annotators
    assert count_pair(b[:, None], a[:, None], ["g"]).rows()[0]["matched"] == 2


def test_counts_add_over_videos_and_pool_behaviours():
    one = count_pair(np.c_[A, A], np.c_[B, A], ["g", "r"])
    total = one + one
    rows = total.rows()
    assert rows[0]["confusion"] == [[10, 2], [2, 6]]
    assert rows[0]["kappa"] == pytest.approx(7 / 12)  # kappa depends on proportions only
    assert rows[1]["kappa"] == 1.0
    assert rows[2]["behavior"] == "overall"
    assert rows[2]["confusion"] == [[22, 2], [2, 14]]
    assert PairCounts.zeros(["g"]).rows()[0]["frames"] == 0


@pytest.fixture
def agp(project, make_video):
    """Video m1 labelled by tester (A), bob (B) and predicted as A; m2 labelled by tester."""
    for name, seed in (("m1.mp4", 0), ("m2.mp4", 1)):
        project.add_video(make_video(name, n=10, seed=seed))
    project.save_labels("m1", Labels(["groom", "rear"], np.c_[A, A]))
    project.save_annotator_labels("m1", "bob", Labels(["groom", "rear"], np.c_[B, A]))
    project.save_labels("m2", Labels(["groom", "rear"], np.c_[A, 1 - A]))
    write_labels(project.record("m1").predictions_path, Labels(["groom", "rear"], np.c_[A, A]))
    return project


def test_project_agreement_with_the_model(agp):
    results = project_agreement(agp, model=True)
    pairs = [(r.a, r.b, r.videos) for r in results]
    assert pairs == [
        ("tester", "bob", ["m1"]),
        ("tester", "model", ["m1"]),
        ("bob", "model", ["m1"]),
    ]
    assert results[0].rows()[0]["kappa"] == pytest.approx(7 / 12)
    assert results[1].rows()[-1]["kappa"] == 1.0  # the model predicts tester's labels
    text = format_agreement(results)
    assert "tester vs bob" in text and "0.583" in text and "80.0%" in text
    assert "within human variability" in text
    # one annotator and the model (what notebook 08_review shows after a review)
    alone = project_agreement(agp, ["m1"], ["tester"], model=True)
    assert [(r.a, r.b) for r in alone] == [("tester", "model")]


def test_nothing_to_compare_is_one_line(agp):
    with pytest.raises(ProjectError, match="needs two annotators"):
        project_agreement(agp, ["m2"])
    with pytest.raises(ProjectError, match="no labels by carol"):
        project_agreement(agp, labelers=["tester", "carol"])
    with pytest.raises(ProjectError, match="no model predictions"):
        project_agreement(agp, ["m2"], model=True)


def test_cli_agreement(agp, capsys):
    before = snapshot(agp.root)
    assert main(["agreement", str(agp.root), "m1", "--labelers", "tester", "bob"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == "tester vs bob  (m1)"
    assert "overall" in out and "0.583" in out
    assert main(["agreement", str(agp.root), "--model"]) == 0
    assert "model vs annotators" in capsys.readouterr()[0]
    assert main(["agreement", str(agp.root), "--labelers", "carol", "bob"]) == 1
    err = capsys.readouterr()[1]
    assert len(err.strip().splitlines()) == 1 and "carol" in err
    assert snapshot(agp.root) == before  # reading only
