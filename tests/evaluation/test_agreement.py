"""Agreement between annotators (and the model): kappa, percent, bouts, confusion, the CLI."""

from __future__ import annotations

import json
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


# what deg agreement --model printed for agp before videos of several animals were compared
ONE_ANIMAL_TABLE = """\
tester vs bob  (m1)
  behaviour  frames  kappa   agree  bouts a/b  matched  bout F1  a0b0 a0b1 a1b0 a1b1
  groom          10  0.583   80.0%        1/2        1    0.667     5    1    1    3
  rear           10  1.000  100.0%        1/1        1    1.000     6    0    0    4
  overall        20  0.792   90.0%        2/3        2    0.800    11    1    1    7

tester vs model  (m1)
  behaviour  frames  kappa   agree  bouts a/b  matched  bout F1  a0b0 a0b1 a1b0 a1b1
  groom          10  1.000  100.0%        1/1        1    1.000     6    0    0    4
  rear           10  1.000  100.0%        1/1        1    1.000     6    0    0    4
  overall        20  1.000  100.0%        2/2        2    1.000    12    0    0    8

bob vs model  (m1)
  behaviour  frames  kappa   agree  bouts a/b  matched  bout F1  a0b0 a0b1 a1b0 a1b1
  groom          10  0.583   80.0%        2/1        1    0.667     5    1    1    3
  rear           10  1.000  100.0%        1/1        1    1.000     6    0    0    4
  overall        20  0.792   90.0%        3/2        2    0.800    11    1    1    7

overall kappa: between annotators 0.792–0.792, model vs annotators 0.792–1.000 (within human \
variability)
"""


def test_one_animal_table_unchanged(agp, capsys, tmp_path):
    results = project_agreement(agp, model=True)
    assert format_agreement(results) == ONE_ANIMAL_TABLE
    assert all(r.animal is None and "animal" not in r.rows()[0] for r in results)
    out = tmp_path / "agreement.json"
    assert main(["agreement", str(agp.root), "--model", "--json", str(out)]) == 0
    assert capsys.readouterr().out == ONE_ANIMAL_TABLE
    pairs = json.loads(out.read_text())["pairs"]
    assert [(p["a"], p["b"], p["videos"]) for p in pairs] == [
        ("tester", "bob", ["m1"]),
        ("tester", "model", ["m1"]),
        ("bob", "model", ["m1"]),
    ]
    assert "animal" not in pairs[0] and pairs[0]["rows"][0]["kappa"] == pytest.approx(7 / 12)


@pytest.fixture
def duo(tmp_path, make_video):
    """Video m1 of 2 animals and video solo of one. m1: animal 0 labelled by tester (A) and
    bob (B); animal 1 by tester, bob (both A) and carol (B), and predicted as A. solo:
    tester and bob (A, both)."""
    from deg_core.project.project import Project

    p = Project.create(tmp_path, "duo", ["groom", "rear"], labeler="tester", animals=2)
    p.add_videos([make_video("m1.mp4", n=10), make_video("solo.mp4", n=10, seed=1)])
    p.set_animals(1, video="solo")
    lab = lambda *cols: Labels(["groom", "rear"], np.c_[cols])  # noqa: E731
    p.save_labels("m1", lab(A, A), animal=0)
    p.save_annotator_labels("m1", "bob", lab(B, A), animal=0)
    for who, x in (("tester", A), ("bob", A), ("carol", B)):
        p.save_annotator_labels("m1", who, lab(x, x), animal=1)
    p.save_labels("solo", lab(A, A))
    p.save_annotator_labels("solo", "bob", lab(A, A))
    write_labels(p.record("m1").animal_predictions_path(1), lab(A, A))
    return p


def test_agreement_per_animal(duo):
    """Each animal's annotators in pairs (one-animal videos first, as before), the model
    against each annotator of the animals it predicted, each labelled by its animal."""
    results = project_agreement(duo, model=True)
    got = [(r.animal, r.a, r.b, r.videos) for r in results]
    assert got == [
        (None, "tester", "bob", ["solo"]),
        (0, "tester", "bob", ["m1"]),
        (1, "tester", "bob", ["m1"]),
        (1, "tester", "carol", ["m1"]),
        (1, "bob", "carol", ["m1"]),
        (1, "tester", "model", ["m1"]),
        (1, "bob", "model", ["m1"]),
        (1, "carol", "model", ["m1"]),
    ]
    kappa = {(r.animal, r.a, r.b): r.rows()[0]["kappa"] for r in results}
    assert kappa[0, "tester", "bob"] == pytest.approx(7 / 12)  # A vs B
    assert kappa[1, "tester", "bob"] == 1.0  # A vs A
    assert kappa[1, "carol", "model"] == pytest.approx(7 / 12)
    assert results[1].rows()[0]["animal"] == 0 and "animal" not in results[0].rows()[0]
    text = format_agreement(results)
    assert "tester vs bob  (solo)\n" in text
    assert "animal0: tester vs bob  (m1)\n" in text and "animal1: carol vs model  (m1)\n" in text
    only = project_agreement(duo, ["m1"], animal=0)
    assert [(r.animal, r.a, r.b) for r in only] == [(0, "tester", "bob")]


def test_agreement_per_animal_from_the_outputs(duo):
    """The model's predictions of an animal from the run's outputs: that animal's P over its
    own thresholds (the CSV is not read then)."""
    from deg_core.evaluation.agreement import model_predictions
    from deg_core.project.outputs import animal_group, writing_group
    from tests.interop.conftest import RUN, fake_sequence_outputs

    fake_sequence_outputs(duo, "m1", np.zeros((10, 2)))
    probs = np.c_[B, B].astype(np.float32) * 0.4 + 0.1  # 0.5 where B, 0.1 elsewhere
    with writing_group(
        duo.record("m1").outputs_path, RUN, duo.behaviors, [0.5, 0.5], animals=2
    ) as g:
        for a, thr in ((0, 0.9), (1, 0.3)):
            sub = g.create_group(animal_group(a))
            sub.create_dataset("P", data=probs)
            sub.create_dataset("thresholds", data=np.full(2, thr, np.float32))
    assert (model_predictions(duo, "m1", animal=0) == 0).all()  # 0.5 < its 0.9
    np.testing.assert_array_equal(model_predictions(duo, "m1", animal=1), np.c_[B, B])
    results = project_agreement(duo, ["m1"], ["carol"], model=True)
    assert [(r.animal, r.a, r.b) for r in results] == [(1, "carol", "model")]
    assert results[0].rows()[-1]["kappa"] == 1.0


def test_agreement_per_animal_errors_and_cli(duo, capsys, tmp_path):
    before = snapshot(duo.root)
    with pytest.raises(ProjectError, match="animal 1: video solo has 1 animal"):
        project_agreement(duo, animal=1)
    with pytest.raises(ProjectError, match=r"no labels by carol in m1 \(annotators: tester, bob"):
        project_agreement(duo, ["m1"], ["carol", "tester"], animal=0)
    with pytest.raises(ProjectError, match="needs two annotators"):
        project_agreement(duo, ["m1"], ["carol"], animal=1)
    out = tmp_path / "agreement.json"
    assert main(["agreement", str(duo.root), "m1", "--animal", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "animal1: tester vs bob  (m1)"
    pairs = json.loads(out.read_text())["pairs"]
    assert [(p["animal"], p["a"], p["b"]) for p in pairs] == [
        (1, "tester", "bob"),
        (1, "tester", "carol"),
        (1, "bob", "carol"),
    ]
    assert pairs[0]["rows"][0]["animal"] == 1 and pairs[1]["rows"][0]["kappa"] == pytest.approx(
        7 / 12
    )
    assert main(["agreement", str(duo.root), "--animal", "3"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "animal 3" in err
    assert snapshot(duo.root) == before
