"""``deg import-labels --animal`` and ``deg status`` on videos of several animals: DEG CSVs,
bout tables with an animal column, BORIS subjects onto animals; a bad animal -> one line,
exit 1, nothing changed."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from deg_core.labels.labels import Labels, write_labels
from tests.animal_fixtures import run, two_animal_project
from tests.conftest import snapshot

B = ["groom", "rear"]


@pytest.fixture
def duo(tmp_path, make_video):
    """A project of 2 animals per video with one 30-frame video m1."""
    return two_animal_project(tmp_path, "duo", B, make_video("m1.mp4", n=30))


def _boris(tmp_path, rows, name="ev.csv"):
    """BORIS 8 tabular events: rows of (subject, behaviour, type, seconds)."""
    path = tmp_path / name
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Observation id", "FPS", "Subject", "Behavior", "Behavior type", "Time"])
        w.writerows(["obs", "30.000", *r] for r in rows)
    return path


def test_import_a_deg_csv_into_one_animal(duo, tmp_path, capsys):
    a = np.zeros((30, 2), np.int8)
    a[4:8, 1] = 1
    write_labels(tmp_path / "in.csv", Labels(B, a))
    code, out, _ = run(capsys, "import-labels", duo.root, "m1", tmp_path / "in.csv", "--animal", 1)
    assert code == 0 and "-> m1 animal1 (30 frames)" in out
    path = duo.root / "DATA" / "m1" / "animals" / "animal1" / "m1_labels.csv"
    assert path.is_file() and duo.labels("m1", animal=1).array[4:8, 1].tolist() == [1] * 4


def test_bout_table_with_animals_fills_each(duo, tmp_path, capsys):
    src = tmp_path / "bouts.csv"
    src.write_text("animal,behavior,start,stop\nanimal0,groom,0,3\n1,rear,5,9\n")
    code, out, _ = run(capsys, "import-labels", duo.root, "m1", src, "--labeler", "bob")
    assert code == 0 and "-> m1 animal0" in out and "-> m1 animal1" in out
    assert duo.annotator_labels("m1", "bob", animal=0).array[:3, 0].tolist() == [1, 1, 1]
    assert duo.annotator_labels("m1", "bob", animal=1).array[5:9, 1].tolist() == [1] * 4


@pytest.mark.parametrize(
    ("extra", "text", "problem"),
    [
        (["--animal", "2"], "behavior,start,stop\ngroom,0,3\n", "video m1 has 2 animals (0..1)"),
        ([], "behavior,start,stop\ngroom,0,3\n", "--animal I"),
        ([], "animal,behavior,start,stop\n0,groom,0,3\nanimal3,groom,1,2\n", "not in video m1"),
    ],
)
def test_a_bad_animal_is_one_line_and_changes_nothing(duo, tmp_path, capsys, extra, text, problem):
    src = tmp_path / "bouts.csv"
    src.write_text(text)
    before = snapshot(duo.root)
    code, _, err = run(capsys, "import-labels", duo.root, "m1", src, *extra)
    assert code == 1 and problem in err and len(err.strip().splitlines()) == 1
    assert snapshot(duo.root) == before


def test_boris_subjects_map_onto_animals(duo, tmp_path, capsys):
    src = _boris(
        tmp_path,
        [("Bo", "groom", "START", "0.1"), ("Al", "rear", "START", "0.2"),
         ("Bo", "groom", "STOP", "0.3"), ("Al", "rear", "STOP", "0.5")],
    )  # fmt: skip
    code, out, _ = run(capsys, "import-labels", duo.root, "m1", src)
    assert code == 0 and "animal0 (30 frames, subject Bo)" in out and "subject Al" in out
    assert duo.labels("m1", animal=0).array[3:9, 0].tolist() == [1] * 6  # Bo: first seen
    assert duo.labels("m1", animal=1).array[6:15, 1].tolist() == [1] * 9
    # one subject onto a chosen animal
    code, out, _ = run(
        capsys, "import-labels", duo.root, "m1", src, "--subject", "Al", "--animal", "0"
    )
    assert code == 0 and duo.labels("m1", animal=0).array[6:15, 1].tolist() == [1] * 9
    assert duo.labels("m1", animal=0).array[:, 0].max() == 0


def test_boris_subjects_not_as_many_as_animals(duo, tmp_path, capsys):
    src = _boris(
        tmp_path,
        [("A", "groom", "START", "0.1"), ("B", "groom", "START", "0.1"),
         ("C", "groom", "START", "0.1"), ("A", "groom", "STOP", "0.3"),
         ("B", "groom", "STOP", "0.3"), ("C", "groom", "STOP", "0.3")],
    )  # fmt: skip
    before = snapshot(duo.root)
    code, _, err = run(capsys, "import-labels", duo.root, "m1", src)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "subjects A, B, C" in err and "--subject S --animal I" in err
    code, _, err = run(capsys, "import-labels", duo.root, "m1", src, "--subject", "A")
    assert code == 1 and "say which" in err
    code, _, err = run(
        capsys, "import-labels", duo.root, "m1", src, "--subject", "C", "--animal", "5"
    )
    assert code == 1 and "video m1 has 2 animals (0..1)" in err
    assert snapshot(duo.root) == before


def test_status_shows_labelled_frames_per_animal(duo, capsys):
    a = np.full((30, 2), -1, np.int8)
    a[:12] = 0
    duo.save_labels("m1", Labels(B, a), animal=1)
    code, out, _ = run(capsys, "status", duo.root)
    assert code == 0 and "animal0: -" in out and "animal1: 12 frames labeled" in out
    code, out, _ = run(capsys, "status", duo.root, "--json")
    animals = json.loads(out)["videos"][0]["animals"]
    assert [(r["animal"], r["labeled_frames"]) for r in animals] == [(0, 0), (1, 12)]


# ----------------------------------------------------------------- exports, predictions, scores


def _two_labelled(duo) -> None:
    for a in (0, 1):
        lab = Labels(B, np.zeros((30, 2), np.int8))
        lab.array[3 + 10 * a : 9 + 10 * a, a] = 1
        duo.save_labels("m1", lab, animal=a)


@pytest.mark.parametrize("layout", ["tabular", "aggregated"])
def test_export_boris_of_animals_reads_back(duo, tmp_path, capsys, layout):
    _two_labelled(duo)
    want = [duo.labels("m1", animal=a) for a in (0, 1)]
    out = tmp_path / "exp"
    code, text, _ = run(capsys, "export", "boris", duo.root, "--out", out, "--layout", layout)
    [path] = sorted(out.iterdir())
    assert code == 0 and f"wrote {path}" in text
    for a in (0, 1):
        duo.save_labels("m1", Labels.empty(30, B), animal=a)
    code, text, _ = run(capsys, "import-labels", duo.root, "m1", path)
    assert code == 0 and "m1 animal1 (30 frames, subject animal1)" in text
    assert [duo.labels("m1", animal=a) for a in (0, 1)] == want


def test_export_nwb_of_animals(duo, tmp_path, capsys):
    pytest.importorskip("pynwb")
    _two_labelled(duo)
    out = tmp_path / "nwb"
    code, text, _ = run(capsys, "export", "nwb", duo.root, "--out", out, "--subject-id", "c1")
    assert code == 0 and f"wrote {out / 'm1.nwb'}" in text


def test_import_predictions_needs_the_animal(duo, capsys):
    from deg_core.infer.sequence import predictions_path

    pred = Labels(B, np.ones((30, 2), np.int8))
    write_labels(predictions_path(duo, "m1", 1), pred)
    code, _, err = run(capsys, "import-predictions", duo.root, "m1")
    assert code == 1 and "say which one" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "import-predictions", duo.root, "m1", "--animal", "2")
    assert code == 1 and "video m1 has 2 animals (0..1)" in err
    code, out, _ = run(capsys, "import-predictions", duo.root, "m1", "--animal", "1")
    assert code == 0 and out.strip() == "m1 animal1: predictions copied onto 30 frames"
    assert duo.labels("m1", animal=1) == pred and not duo.label_path("m1", 0).exists()


def test_evaluate_prints_each_animal_and_the_pool(duo, tmp_path, capsys, monkeypatch):
    from deg_core.evaluation import scoring
    from deg_core.evaluation.evaluate import evaluate_animals

    rng = np.random.default_rng(0)
    labels = [(rng.random((30, 2)) > 0.5).astype(np.int8) for _ in range(2)]
    probs = [np.where(y == 1, 0.8, 0.2).astype(np.float32) for y in labels]
    probs[1][:10] = 1 - probs[1][:10]  # animal 1 worse
    result = evaluate_animals(probs, labels, [0, 1], np.full(2, 0.5), B)
    result.update(run="r", videos=["m1"], streams=["m1#animal0", "m1#animal1"])
    monkeypatch.setattr(scoring, "evaluate_project", lambda *a, **k: result)
    out_json = tmp_path / "scores.json"
    code, out, _ = run(capsys, "evaluate", duo.root, "--json", out_json)
    assert code == 0
    lines = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.strip()}
    for name, part in [*result["per_animal"].items(), ("pooled", result)]:
        assert lines[name][1:] == [f"{part['macro']['f1']:.3f}", str(part["n_frames"])]
    assert lines["pooled"][2] == "60" and lines["animal1"][2] == "30"
    saved = json.loads(out_json.read_text())
    assert set(saved["per_animal"]) == {"animal0", "animal1"}
    assert saved["per_animal"]["animal1"]["macro"]["f1"] == pytest.approx(
        result["per_animal"]["animal1"]["macro"]["f1"]
    )
