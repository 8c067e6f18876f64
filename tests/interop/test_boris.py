"""BORIS event tables in and out: pairing, rounding at the video's fps, names, subjects,
the binary table, the round trip, and the CLI."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

from deg_core.cli import main
from deg_core.errors import DegError, LabelError
from deg_core.interop.boris import (
    EXPORT_COLUMNS,
    export_boris,
    import_boris,
    parse_mapping,
    read_boris,
    sniff,
)
from tests.conftest import snapshot
from tests.interop.conftest import DATA, fake_sequence_outputs

B = ["groom", "rear"]


def expected_m1() -> np.ndarray:
    """What data/boris_events.csv holds, in frames at 30 fps (60 frames)."""
    a = np.zeros((60, 2), np.int8)
    a[3:15, 0] = a[27:45, 0] = 1  # groom 0.100-0.500 s and 0.900-1.500 s
    a[22:31, 1] = 1  # rear 0.733-1.017 s: 21.99 -> 22, 30.51 -> 31
    a[54, 1] = 1  # rear POINT at 1.800 s: one frame
    return a


def events_file(tmp_path, rows, name="ev.csv"):
    """A minimal BORIS 8 tabular events file: rows of (subject, behaviour, type, time)."""
    path = tmp_path / name
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Observation id", "FPS", "Subject", "Behavior", "Behavior type", "Time"])
        w.writerows(["obs", "30.000", *r] for r in rows)
    return path


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("name", ["boris_events.csv", "boris7_events.tsv"])
def test_start_stop_pairs_and_points_become_frames(name):
    assert sniff(DATA / name) == "events"
    got = read_boris(DATA / name, B, 60, 30.0)
    np.testing.assert_array_equal(got.labels.array, expected_m1())
    assert got.notes == []


def test_seconds_round_to_the_nearest_frame_at_the_videos_fps(tmp_path):
    path = events_file(
        tmp_path, [("", "groom", "START", "0.116"), ("", "groom", "STOP", "0.117"),
                   ("", "rear", "START", "0.050"), ("", "rear", "STOP", "0.150")]
    )  # fmt: skip
    at30 = read_boris(path, B, 60, 30.0).labels.array
    # groom: 3.48 -> 3, 3.51 -> 4 (one frame); rear: 1.5 -> 2 (halves up), 4.5 -> 5
    assert np.flatnonzero(at30[:, 0]).tolist() == [3]
    assert np.flatnonzero(at30[:, 1]).tolist() == [2, 3, 4]
    at25 = read_boris(path, B, 60, 25.0).labels.array
    # at 25 fps: groom 2.9 -> 3, 2.925 -> 3 (shorter than a frame: kept as one frame);
    # rear 1.25 -> 1, 3.75 -> 4
    assert np.flatnonzero(at25[:, 0]).tolist() == [3]
    assert np.flatnonzero(at25[:, 1]).tolist() == [1, 2, 3]
    assert any("25 fps" in n for n in read_boris(path, B, 60, 25.0).notes)


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([("", "groom", "START", "0.1")], "line 2: START of 'groom' has no STOP"),
        ([("", "groom", "STOP", "0.1")], "line 2: STOP of 'groom' without a START"),
        (
            [("", "groom", "START", "0.1"), ("", "groom", "START", "0.2")],
            "line 3: START of 'groom' while its START on line 2 has no STOP yet",
        ),
        ([("", "groom", "BEGIN", "0.1")], "line 2: behaviour type 'BEGIN' is not START"),
        ([("", "groom", "POINT", "soon")], "line 2: time 'soon' is not a number of seconds"),
        ([("", "groom", "POINT", "2.5")], "line 2: time 2.5 s is outside the video"),
    ],
)
def test_bad_events_are_one_line_errors_naming_file_and_line(tmp_path, rows, problem):
    path = events_file(tmp_path, rows)
    with pytest.raises(LabelError) as e:
        read_boris(path, B, 60, 30.0)
    assert str(e.value).startswith(f"{path}: ") and problem in str(e.value)
    assert "\n" not in str(e.value)


def test_unmatched_names_are_listed_in_one_line_and_mapping_fixes_them():
    path = DATA / "boris_subjects.csv"
    with pytest.raises(LabelError) as e:
        read_boris(path, B, 50, 25.0, subject="mouse A")
    msg = str(e.value)
    assert "behaviours not in the project: 'Grooming', 'walk'" in msg
    assert "--map BORIS_NAME=DEG_NAME" in msg and "\n" not in msg
    got = read_boris(
        path, B, 50, 25.0, subject="mouse A", mapping={"Grooming": "groom", "walk": ""}
    )
    a = got.labels.array
    assert np.flatnonzero(a[:, 0]).tolist() == list(range(5, 15))  # 0.2-0.6 s at 25 fps
    assert not a[:, 1].any()  # walk dropped, mouse B's Rearing not this subject's
    assert (a >= 0).all()  # everything observed: 0 outside the bouts
    assert any("modifiers ignored" in n for n in got.notes)
    assert any("dropped" in n and "walk" in n for n in got.notes)


def test_several_subjects_need_a_choice(tmp_path):
    path = DATA / "boris_subjects.csv"
    with pytest.raises(LabelError, match=r"several subjects \(mouse A, mouse B\).*--subject"):
        read_boris(path, B, 50, 25.0, mapping={"Grooming": "groom", "Rearing": "rear"})
    with pytest.raises(LabelError, match="no events of subject 'mouse C'"):
        read_boris(path, B, 50, 25.0, subject="mouse C")
    got = read_boris(path, B, 50, 25.0, subject="mouse B", mapping={"Rearing": "rear"})
    assert np.flatnonzero(got.labels.array[:, 1]).tolist() == list(range(8, 23))  # 0.3-0.9 s


def test_binary_table_holds_each_row_until_the_next():
    path = DATA / "boris_binary.tsv"
    assert sniff(path) == "binary"
    got = read_boris(path, B, 60, 30.0)
    a = got.labels.array
    assert np.flatnonzero(a[:, 0] == 1).tolist() == list(range(6, 15))  # rows 0.2-0.4 s
    # rear at 0.8 s, and "rear (hind legs)" at 1.0-1.1 s folded into rear
    assert np.flatnonzero(a[:, 1] == 1).tolist() == [24, 25, 26, *range(30, 36)]
    assert (a[45:] == -1).all() and (a[:45] >= 0).all()  # the table ends at 1.5 s
    assert any("rear (hind legs)" in n for n in got.notes)
    assert any("15 frames outside" in n for n in got.notes)


def test_deg_label_files_are_not_taken_for_boris(tmp_path):
    deg = tmp_path / "labels.csv"
    deg.write_text(",background,groom,rear\n0,1,0,0\n1,0,1,0\n")
    bouts = tmp_path / "bouts.csv"
    bouts.write_text("start,stop,behavior\n0,2,groom\n")
    indexed = tmp_path / "indexed.csv"
    indexed.write_text("time,groom,rear\n0,1,0\n1,0,1\n")
    assert sniff(deg) is sniff(bouts) is sniff(indexed) is None
    with pytest.raises(LabelError, match="is not a BORIS export"):
        read_boris(deg, B, 2, 30.0)


# --------------------------------------------------------------------------- round trip


def test_import_export_reimport_round_trip(video_project, tmp_path):
    import_boris(video_project, "m1", DATA / "boris_events.csv")
    first = video_project.labels("m1")
    np.testing.assert_array_equal(first.array, expected_m1())
    [out], skipped = export_boris(video_project, ["m1"], tmp_path / "out")
    assert skipped == []
    rows = list(csv.reader(out.open()))
    assert rows[0] == EXPORT_COLUMNS
    col = {n: i for i, n in enumerate(rows[0])}
    assert [(r[col["Behavior"]], r[col["Behavior type"]], r[col["Time"]]) for r in rows[1:3]] == [
        ("groom", "START", "0.100"),
        ("groom", "STOP", "0.500"),
    ]
    assert rows[1][col["FPS"]] == "30.000" and rows[1][col["Media file name"]] == "m1.mp4"
    again = read_boris(out, video_project.behaviors, 60, 30.0)
    assert again.labels == first


def test_export_predictions_are_the_cleaned_ethogram(video_project, tmp_path):
    probs = np.zeros((60, 2), np.float32)
    probs[10:20, 0] = 0.9
    probs[30, 0] = 0.9  # one frame: shorter than groom's minimum bout (3), removed
    probs[40:45, 1] = 0.8
    fake_sequence_outputs(video_project, "m1", probs, min_lengths=(3, 1))
    [out], _ = export_boris(video_project, None, tmp_path, predictions=True)
    assert out.name == "m1_predictions_boris.csv"
    a = read_boris(out, video_project.behaviors, 60, 30.0).labels.array
    assert np.flatnonzero(a[:, 0]).tolist() == list(range(10, 20))
    assert np.flatnonzero(a[:, 1]).tolist() == list(range(40, 45))


def test_export_skips_unlabelled_videos_unless_named(video_project, make_video, tmp_path):
    video_project.add_videos([make_video("m2.mp4", n=30, fps=30)])
    with pytest.raises(DegError, match="nothing to export"):
        export_boris(video_project, None, tmp_path / "out")
    import_boris(video_project, "m1", DATA / "boris_events.csv")
    with pytest.raises(DegError, match="'m2' has no labels to export"):
        export_boris(video_project, ["m1", "m2"], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was written
    paths, skipped = export_boris(video_project, None, tmp_path / "out")
    assert [p.name for p in paths] == ["m1_boris.csv"]
    assert len(skipped) == 1 and skipped[0].startswith("m2: ")


def test_parse_mapping():
    assert parse_mapping(["Grooming=groom", " walk = "]) == {"Grooming": "groom", "walk": ""}
    with pytest.raises(DegError, match="expected BORIS_NAME=DEG_NAME"):
        parse_mapping(["Grooming"])


# --------------------------------------------------------------------------- CLI


def test_cli_import_detects_boris_and_maps_names(video_project, capsys):
    root = video_project.root
    code = main(["import-labels", str(root), "m1", str(DATA / "boris_events.csv")])
    err = capsys.readouterr().err
    assert code == 0, err
    np.testing.assert_array_equal(video_project.labels("m1").array, expected_m1())

    before = snapshot(root)
    src = DATA / "boris_subjects.csv"
    code = main(["import-labels", str(root), "m1", str(src)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "several subjects" in err
    code = main(["import-labels", str(root), "m1", str(src), "--subject", "mouse A"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "'Grooming', 'walk'" in err
    assert snapshot(root) == before  # refused imports change nothing

    args = ["--subject", "mouse A", "--map", "Grooming=groom", "--map", "walk="]
    code = main(["import-labels", str(root), "m1", str(src), "--format", "boris", *args])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "note: modifiers ignored" in err
    # 0.2-0.6 s at the video's 30 fps (the file says 25): frames 6..17
    assert np.flatnonzero(video_project.labels("m1").array[:, 0]).tolist() == list(range(6, 18))


def test_cli_export_boris_and_a_deg_file_with_boris_options(video_project, tmp_path, capsys):
    root = video_project.root
    deg = tmp_path / "m1_labels.csv"
    shutil.copy(DATA / "boris_events.csv", tmp_path / "ev.csv")
    assert main(["import-labels", str(root), "m1", str(tmp_path / "ev.csv")]) == 0
    code = main(["export", "boris", str(root), "m1", "--out", str(tmp_path / "exp")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"wrote {tmp_path / 'exp' / 'm1_boris.csv'}" in out
    assert read_boris(tmp_path / "exp" / "m1_boris.csv", B, 60, 30.0).labels.array.any()
    deg.write_text(",background,groom,rear\n" + "".join(f"{i},1,0,0\n" for i in range(60)))
    code = main(["import-labels", str(root), "m1", str(deg), "--subject", "x"])
    assert code == 1 and "apply to BORIS files only" in capsys.readouterr().err
