"""Exports of a video of several animals (issue 24): BORIS with every animal a subject
(both layouts, labels and predictions) read back onto the animals; NWB with per-animal
tables and probabilities, nwbinspector-clean; one-animal videos as before."""

from __future__ import annotations

import numpy as np
import pytest

from deg_core.errors import ProjectError
from deg_core.fileio import load_yaml, save_yaml
from deg_core.interop.boris import boris_subjects, export_boris, import_boris_animals
from deg_core.interop.nwb import export_nwb
from deg_core.labels.labels import Labels
from deg_core.project.outputs import animal_group, writing_group
from deg_core.project.project import Project
from deg_core.tracking.animals import AnimalTracks
from deg_core.tracking.project_tracks import save_animal_tracks
from tests.interop.conftest import RUN, fake_sequence_outputs

T = 60
SUBJECT = {"subject_id": "cage3", "species": "Mus musculus", "sex": "F", "age": "P90D"}


@pytest.fixture
def pair(project, make_video):
    """Video m1 (60 frames at 30 fps) with 2 animals, each fully labelled; solo with one."""
    project.add_videos([make_video("m1.mp4", n=T, fps=30), make_video("solo.mp4", n=T, seed=1)])
    raw = load_yaml(project.config_path)
    raw["project"]["animals_per_video"] = {"m1": 2}
    raw["project"]["subject"] = {k: v for k, v in SUBJECT.items() if k != "subject_id"}
    save_yaml(project.config_path, raw)
    project = Project.open(project.root)
    for a, (start, stop) in enumerate([(3, 15), (20, 41)]):
        lab = Labels(project.behaviors, np.zeros((T, 2), np.int8))
        lab.array[start:stop, a] = 1
        lab.array[50:55, 1 - a] = 1
        project.save_labels("m1", lab, animal=a)
    return project


def _tracks(project, names):
    centre = np.full((T, 2, 2), 20.0, np.float32)
    centre[:, 1] = 40.0
    extent = np.full((T, 2, 2), 10.0, np.float32)
    save_animal_tracks(project, "m1", AnimalTracks(centre, extent, names, "csv", (48, 64)))


def _animal_outputs(project, probs: list[np.ndarray]) -> None:
    """A sequence run whose group for m1 holds each animal's P (subgroups animal<i>)."""
    fake_sequence_outputs(project, "m1", probs[0])
    k = len(project.behaviors)
    rec = project.record("m1")
    with writing_group(
        rec.outputs_path, RUN, project.behaviors, np.full(k, 0.5), animals=len(probs)
    ) as g:
        for i, p in enumerate(probs):
            sub = g.create_group(animal_group(i))
            sub.create_dataset("P", data=p.astype(np.float32))
            sub.create_dataset("thresholds", data=np.full(k, 0.5, np.float32))


@pytest.mark.parametrize("layout", ["tabular", "aggregated"])
def test_boris_export_has_every_animal_a_subject_and_round_trips(pair, tmp_path, layout):
    before = {a: pair.labels("m1", animal=a) for a in (0, 1)}
    [path], skipped = export_boris(pair, ["m1"], tmp_path, layout=layout)
    assert skipped == []
    assert boris_subjects(path) == ["animal0", "animal1"]
    assert path.read_text().count("Observation id") == 1  # one header
    for a in (0, 1):  # scramble, then read the file back onto the animals
        pair.save_labels("m1", Labels(pair.behaviors, np.zeros((T, 2), np.int8)), animal=a)
    read = import_boris_animals(pair, "m1", path)
    assert {i: s for i, (s, _) in read.items()} == {0: "animal0", 1: "animal1"}
    for a in (0, 1):
        assert pair.labels("m1", animal=a) == before[a]


def test_boris_subjects_are_the_tracks_names_and_go_back_by_name(pair, tmp_path):
    _tracks(pair, ["Bo", "Cy"])
    lab = Labels(pair.behaviors, np.zeros((T, 2), np.int8))
    pair.save_labels("m1", lab, animal=0)  # animal 0: no bouts, so no rows
    [path], _ = export_boris(pair, ["m1"], tmp_path)
    assert boris_subjects(path) == ["Cy"]
    want = pair.labels("m1", animal=1)
    pair.save_labels("m1", lab, animal=1)
    read = import_boris_animals(pair, "m1", path)  # by name: Cy is animal 1, not 0
    assert list(read) == [1] and read[1][0] == "Cy"
    assert pair.labels("m1", animal=1) == want


def test_boris_export_of_predictions_per_animal(pair, tmp_path):
    probs = [np.zeros((T, 2), np.float32), np.zeros((T, 2), np.float32)]
    probs[0][10:20, 0] = 0.9
    probs[1][30:45, 1] = 0.9
    _animal_outputs(pair, probs)
    for layout in ("tabular", "aggregated"):
        [path], skipped = export_boris(
            pair, None, tmp_path / layout, predictions=True, layout=layout
        )
        assert path.name.startswith("m1_predictions_boris") and skipped[0].startswith("solo")
        for a in range(len(probs)):
            pair.save_labels("m1", Labels.empty(T, pair.behaviors), animal=a)
        import_boris_animals(pair, "m1", path)
        for a, p in enumerate(probs):
            np.testing.assert_array_equal(pair.labels("m1", animal=a).array, p > 0.5)


def test_one_animal_boris_export_is_unchanged(pair, tmp_path):
    """A one-animal video: the subject is its subject_id, the layout as before."""
    lab = Labels(pair.behaviors, np.zeros((T, 2), np.int8))
    lab.array[3:6, 0] = 1
    pair.save_labels("solo", lab)
    [path], _ = export_boris(pair, ["solo"], tmp_path, subject="s1")
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and lines[1].split(",")[9:14] == ["s1", "groom", "", "START", "0.100"]


def _inspect(path):
    from tests.interop.test_nwb import _inspect as inspect

    return inspect(path)


def test_nwb_has_per_animal_tables_and_passes_nwbinspector(pair, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    _tracks(pair, ["Bo", "Cy"])
    probs = [np.full((T, 2), 0.1, np.float32), np.full((T, 2), 0.1, np.float32)]
    probs[0][10:20, 0] = 0.9
    probs[1][30:45, 1] = 0.9
    _animal_outputs(pair, probs)
    [(path, notes)] = export_nwb(pair, ["m1"], tmp_path, subject={"subject_id": "cage3"}).items()
    assert notes == []
    assert _inspect(path) == []
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        assert sorted(nwb.intervals) == [
            f"behavior_{w}_animal{a}" for w in ("labels", "predictions") for a in (0, 1)
        ]
        lab1 = nwb.intervals["behavior_labels_animal1"].to_dataframe()
        assert lab1["behavior"].tolist() == ["rear", "groom"]
        np.testing.assert_allclose(lab1["start_time"], [20 / 30, 50 / 30])
        assert "(Cy)" in nwb.intervals["behavior_labels_animal1"].description
        pred0 = nwb.intervals["behavior_predictions_animal0"].to_dataframe()
        np.testing.assert_allclose(pred0["start_time"], [10 / 30])
        for a, p in enumerate(probs):
            series = nwb.processing["behavior"][f"behavior_probabilities_animal{a}"]
            np.testing.assert_allclose(series.data[:], p)
        assert nwb.subject.subject_id == "cage3"
        assert "animal0 (Bo), animal1 (Cy)" in nwb.subject.description


def test_nwb_of_animals_without_predictions_notes_it_once(pair, tmp_path):
    pytest.importorskip("pynwb")
    [(_, notes)] = export_nwb(pair, ["m1"], tmp_path, subject={"subject_id": "c"}).items()
    assert len(notes) == 1 and notes[0].startswith("no predictions (")


def test_predicted_of_an_animal_video_needs_the_animal(pair):
    from deg_core.errors import DegError
    from deg_core.interop.predictions import predicted

    _animal_outputs(pair, [np.zeros((T, 2)), np.ones((T, 2))])
    assert predicted(pair, "m1", animal=1).ethogram.all()
    with pytest.raises(DegError, match="per animal"):
        predicted(pair, "m1")


def test_import_predictions_per_animal(pair):
    from deg_core.infer.sequence import import_predictions, predictions_path
    from deg_core.labels.labels import write_labels

    pred = Labels(pair.behaviors, np.ones((T, 2), np.int8))
    write_labels(predictions_path(pair, "m1", 1), pred)
    pair.save_labels("m1", Labels.empty(T, pair.behaviors), animal=1)
    with pytest.raises(ProjectError, match="say which one"):
        import_predictions(pair, "m1")
    with pytest.raises(ProjectError, match="no predictions"):
        import_predictions(pair, "m1", animal=0)
    assert import_predictions(pair, "m1", animal=1) == pred
    assert pair.labels("m1", animal=1) == pred


def _animal_subjects(project) -> Project:
    raw = load_yaml(project.config_path)
    raw["project"]["subject"]["animals"] = {"animal0": {"sex": "M"}}
    raw["project"]["subject"]["videos"] = {
        "m1": {
            "subject_id": "cage3",
            "animals": {
                "animal0": {"subject_id": "m12"},
                "animal1": {"subject_id": "m15", "age": "P80D"},
            },
        }
    }
    save_yaml(project.config_path, raw)
    return Project.open(project.root)


def test_nwb_names_each_animals_own_subject(pair, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    pair = _animal_subjects(pair)
    [(path, notes)] = export_nwb(pair, ["m1"], tmp_path).items()
    assert len(notes) == 1 and notes[0].startswith("no predictions (")
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        assert nwb.subject.subject_id == "cage3" and nwb.subject.sex == "F"
        assert "animal0 (animal0: subject_id m12, sex M)" in nwb.subject.description
        assert "animal1 (animal1: subject_id m15, age P80D)" in nwb.subject.description
        assert "subject_id m15" in nwb.intervals["behavior_labels_animal1"].description


def test_nwb_per_animal_files_each_with_its_subject_pass_nwbinspector(pair, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    pair = _animal_subjects(pair)
    written = export_nwb(pair, ["m1", "solo"], tmp_path, per_animal=True)
    assert sorted(p.name for p in written) == ["m1_animal0.nwb", "m1_animal1.nwb", "solo.nwb"]
    expected = {
        0: ("m12", "M", "P90D", [(3, "groom"), (50, "rear")]),
        1: ("m15", "F", "P80D", [(20, "rear"), (50, "groom")]),
    }
    for a, (sid, sex, age, bouts) in expected.items():
        path = tmp_path / f"m1_animal{a}.nwb"
        assert _inspect(path) == []
        with pynwb.NWBHDF5IO(str(path), "r") as io:
            nwb = io.read()
            s = nwb.subject
            assert (s.subject_id, s.sex, s.age, s.species) == (sid, sex, age, "Mus musculus")
            assert list(nwb.intervals) == ["behavior_labels"]  # no suffix: one animal
            table = nwb.intervals["behavior_labels"].to_dataframe()
            got = [
                (round(t * 30), b)
                for t, b in zip(table["start_time"], table["behavior"], strict=True)
            ]
            assert got == bouts
            assert f"animal{a}" in nwb.session_description


def test_per_animal_file_without_its_own_id_says_so(pair, tmp_path):
    pytest.importorskip("pynwb")
    written = export_nwb(pair, ["m1"], tmp_path, per_animal=True, subject={"subject_id": "c3"})
    notes = written[tmp_path / "m1_animal1.nwb"]
    assert any("animal1 has no subject_id of its own" in n for n in notes)


@pytest.mark.parametrize(
    ("animals", "problem"),
    [
        ({"mouse": {"sex": "M"}}, "project.subject.animals.mouse: animals are named animal0"),
        ({"animal0": {"sex": "X"}}, "project.subject.animals.animal0.sex must be one of"),
        (
            {"animal0": {"weight": 3}},
            "unknown subject field 'project.subject.animals.animal0.weight'",
        ),
    ],
)
def test_bad_animal_subjects_are_one_line(pair, animals, problem):
    from deg_core.config import ConfigError

    raw = load_yaml(pair.config_path)
    raw["project"]["subject"]["animals"] = animals
    save_yaml(pair.config_path, raw)
    with pytest.raises(ConfigError, match=problem):
        Project.open(pair.root)


def test_cli_export_nwb_per_animal(pair, tmp_path, capsys):
    pytest.importorskip("pynwb")
    from deg_core.cli import main

    pair = _animal_subjects(pair)
    assert (
        main(["export", "nwb", str(pair.root), "m1", "--out", str(tmp_path), "--per-animal"]) == 0
    )
    out = capsys.readouterr().out
    assert "m1_animal0.nwb" in out and "m1_animal1.nwb" in out
    assert main(["export", "boris", str(pair.root), "--per-animal"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--per-animal apply to nwb only" in err
