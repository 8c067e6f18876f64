"""BORIS aggregated events in (BORIS's own file, a lab's two-media 29.97 fps export, its
UTF-16 re-save, a live observation), the media and subject choices, the messages, and
``deg export boris --layout aggregated`` read back."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from deg_core.cli import main
from deg_core.errors import LabelError
from deg_core.fileio import load_yaml, save_yaml
from deg_core.interop.boris import export_boris, import_boris, read_boris, sniff
from deg_core.labels.labels import Labels
from deg_core.project.project import Project
from tests.conftest import snapshot
from tests.interop.conftest import DATA

FULL_1 = DATA / "boris_aggregated_full_1.tsv"  # BORIS's tests/files, BORIS 7 layout
LAB = DATA / "boris_aggregated_lab.csv"  # BORIS 8.13+ layout, 29.97 fps, two media files
LAB_UTF16 = DATA / "boris_aggregated_lab_utf16.txt"  # the same, Excel's "Unicode text"
LIVE = DATA / "boris_aggregated_live.tsv"
LAB_MAP = {"Grooming": "groom", "Rearing": "rear", "Sniffing": ""}
B = ["groom", "rear"]


def runs(column: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of 1."""
    on = np.flatnonzero(column == 1)
    if not on.size:
        return []
    parts = np.split(on, np.flatnonzero(np.diff(on) != 1) + 1)
    return [(int(p[0]), int(p[-1]) + 1) for p in parts]


def one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(LabelError) as e:
        call(*args, **kwargs)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# --------------------------------------------------------------------------- BORIS's own file


def test_boris_own_file_imports_the_rows_of_the_video():
    assert sniff(FULL_1) == "aggregated"
    video = ["video_test_25fps_180s", "video_test_25fps_180s.mp4"]
    got = read_boris(FULL_1, ["s", "p"], 4499, 25.0, video=video)
    a = got.labels.array
    # STATE s 1.800-8.125, 10.250-23.350, 26.775-31.475 s at 25 fps; POINT p at 32.825,
    # 34.150, 34.925 s. Only "No focal subject" coded on this media file: no --subject.
    assert runs(a[:, 0]) == [(45, 203), (256, 584), (669, 787)]
    assert runs(a[:, 1]) == [(821, 822), (854, 855), (873, 874)]
    assert (a >= 0).all()
    assert got.notes == []
    by_media = read_boris(FULL_1, ["s", "p"], 4499, 25.0, media="video_test_25fps_180s.mp4")
    np.testing.assert_array_equal(by_media.labels.array, a)


def test_old_layout_cannot_place_an_observations_second_media_file():
    # its times count from the start of the first media file, whose duration BORIS 7's
    # aggregated layout does not give
    msg = one_line_error(
        read_boris, FULL_1, ["s", "p"], 8999, 25.0, subject="subject1",
        media="video_test_25fps_360s",
    )  # fmt: skip
    assert msg.startswith(f"{FULL_1}: observation 'observation #2' plays several media files")
    assert "'video_test_25fps_360s.mp4' cannot be placed" in msg and "BORIS 8.13" in msg


def test_several_media_none_like_the_video_is_one_line_naming_them():
    msg = one_line_error(read_boris, FULL_1, ["s", "p"], 4499, 25.0, video=["m1", "m1.mp4"])
    assert msg == (
        f"{FULL_1}: holds events of several media files (video_test_25fps_180s.mp4, "
        "video_test_25fps_360s.mp4), none named like 'm1': choose one with --media NAME"
    )
    msg = one_line_error(read_boris, FULL_1, ["s", "p"], 4499, 25.0, media="m1.mp4")
    assert "no events of media file 'm1.mp4' (media files: video_test_25fps_180s.mp4, " in msg


# --------------------------------------------------------------------------- a lab's export


LAB_PART1_A = {"groom": [(30, 90), (360, 450)], "rear": [(150, 180)]}
# part 2 starts 20.020 s into the observation: 21.021-22.523 s is 1.001-2.503 s in it
LAB_PART2_A = {"groom": [(120, 210), (540, 600)], "rear": [(30, 75)]}


@pytest.mark.parametrize("path", [LAB, LAB_UTF16])
def test_lab_export_two_media_files_at_29_97_fps(path):
    assert sniff(path) == "aggregated"
    kw = {"subject": "mouse A", "mapping": LAB_MAP}
    part1 = read_boris(path, B, 600, 29.97, video=["cage3_part1", "cage3_part1.mp4"], **kw)
    part2 = read_boris(path, B, 600, 29.97, video=["cage3_part2", "cage3_part2.mp4"], **kw)
    for got, want in ((part1, LAB_PART1_A), (part2, LAB_PART2_A)):
        a = got.labels.array
        assert {b: runs(a[:, k]) for k, b in enumerate(B)} == want
    assert any("starts 20.02 s into its observation" in n for n in part2.notes)
    assert any("modifiers ignored (1 events" in n for n in part1.notes)  # "left paw"
    assert any("dropped" in n and "Sniffing" in n for n in part1.notes)
    # mouse B on part 1: Rearing 2.502-4.004 s, Grooming 8.008-10.010 s
    b = read_boris(path, B, 600, 29.97, media="cage3_part1.mp4", subject="mouse B",
                   mapping=LAB_MAP).labels.array  # fmt: skip
    assert runs(b[:, 0]) == [(240, 300)] and runs(b[:, 1]) == [(75, 120)]
    msg = one_line_error(read_boris, path, B, 600, 29.97, media="cage3_part2", mapping=LAB_MAP)
    assert "several subjects (mouse A, mouse B): choose one with --subject NAME" in msg


def test_utf16_without_a_bom_and_big_endian(tmp_path):
    text = LAB.read_text(encoding="utf-8")
    kw = {"media": "cage3_part2.mp4", "subject": "mouse A", "mapping": LAB_MAP}
    want = read_boris(LAB, B, 600, 29.97, **kw).labels.array
    for encoding in ("utf-16-le", "utf-16-be", "utf-16"):
        path = tmp_path / f"{encoding}.csv"
        path.write_bytes(text.encode(encoding))
        assert sniff(path) == "aggregated"
        np.testing.assert_array_equal(read_boris(path, B, 600, 29.97, **kw).labels.array, want)
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"Behavior\x00\x01\x02\xff" * 50)
    assert sniff(junk) is None
    assert "is not a BORIS text export (binary data)" in one_line_error(
        read_boris, junk, B, 600, 29.97
    )


def test_live_observation_without_media_reads_every_row():
    got = read_boris(LIVE, ["s", "p"], 900, 30.0)  # no media file: "LIVE"
    a = got.labels.array
    # POINT p at 20.135, 26.007, 12.663, 4.151 s at 30 fps
    assert np.flatnonzero(a[:, 1]).tolist() == [125, 380, 604, 780]
    assert "modifiers ignored (4 events carry some)" in got.notes
    msg = one_line_error(read_boris, LIVE, ["s", "p"], 900, 30.0, media="x.mp4")
    assert "--media 'x.mp4': the file names no media files" in msg


def test_grouped_observations_take_the_videos_own_and_refuse_a_media_in_two(tmp_path):
    rows = list(csv.reader(LAB.open(newline="")))
    head, data = rows[0], rows[1:]
    col = {n: i for i, n in enumerate(head)}

    def as_observation(row, obs, media):
        row = list(row)
        row[col["Observation id"]] = obs
        row[col["Source"]] = f"player #1:{media}"
        row[col["Media duration (s)"]], row[col["Media file name"]] = "20.020", media
        return row

    # two observations of one media file each, times from 0 in both
    grouped = [as_observation(r, "day1", "/v/day1.mp4") for r in data[:6]]
    grouped += [as_observation(r, "day2", "/v/day2.mp4") for r in data[:3]]
    path = tmp_path / "grouped.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([head, *grouped])
    a = read_boris(path, B, 600, 29.97, video=["day1"], subject="mouse A",
                   mapping=LAB_MAP).labels.array  # fmt: skip
    assert {b: runs(a[:, k]) for k, b in enumerate(B)} == LAB_PART1_A
    a = read_boris(path, B, 600, 29.97, video=["day2"], subject="mouse A",
                   mapping=LAB_MAP).labels.array  # fmt: skip
    assert runs(a[:, 0]) == [(30, 90)] and runs(a[:, 1]) == [(150, 180)]
    # one media file coded in two observations (two observers): which one is not guessed
    twice = [as_observation(r, "obs A", "/v/day1.mp4") for r in data[:3]]
    twice += [as_observation(r, "obs B", "/v/day1.mp4") for r in data[:3]]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([head, *twice])
    msg = one_line_error(read_boris, path, B, 600, 29.97, video=["day1"], mapping=LAB_MAP)
    assert "the events of 'day1.mp4' are in several observations (obs A, obs B)" in msg


@pytest.mark.parametrize(
    ("line", "change", "problem"),
    [
        (2, {"Stop (s)": "0.500"}, "line 2: stop 0.5 s is before start 1.001 s"),
        (2, {"Behavior type": "BEGIN"}, "line 2: behaviour type 'BEGIN' is not STATE or POINT"),
        (2, {"Start (s)": "soon"}, "line 2: start 'soon' is not a number of seconds"),
        (2, {"Stop (s)": "25.000"}, "line 2: time 25 s is outside the video (0 to 20.02 s"),
        (8, {"Stop (s)": "45.000"}, "line 8: time 45 s (24.98 s into the video) is outside"),
    ],
)
def test_bad_rows_are_one_line_errors_naming_file_and_line(tmp_path, line, change, problem):
    rows = list(csv.reader(LAB.open(newline="")))
    col = {n: i for i, n in enumerate(rows[0])}
    for name, value in change.items():
        rows[line - 1][col[name]] = value
    path = tmp_path / "bad.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    media = "cage3_part1" if line < 8 else "cage3_part2"
    kw = {"media": media, "subject": "mouse A", "mapping": LAB_MAP}
    msg = one_line_error(read_boris, path, B, 600, 29.97, **kw)
    assert msg.startswith(f"{path}: ") and problem in msg


def test_media_is_for_aggregated_exports_only():
    msg = one_line_error(read_boris, DATA / "boris_events.csv", B, 60, 30.0, media="m1.mp4")
    assert "--media chooses among the media files of an aggregated events export" in msg


def test_seconds_and_frames_go_through_one_function_each():
    from deg_core.interop.boris_tables import frame_to_seconds, seconds_to_frame

    assert seconds_to_frame(1.001, 29.97) == 30 and seconds_to_frame(0.05, 30.0) == 2
    assert frame_to_seconds(30, 30.0) == 1.0
    np.testing.assert_allclose(frame_to_seconds(np.arange(3), 2.0), [0.0, 0.5, 1.0])


# --------------------------------------------------------------------------- messages


def test_a_map_to_a_name_the_project_lacks_names_that_name():
    msg = one_line_error(
        read_boris, DATA / "boris_subjects.csv", B, 50, 25.0, subject="mouse A",
        mapping={"Grooming": "nonexist", "walk": ""},
    )  # fmt: skip
    assert (
        "--map Grooming=nonexist: 'nonexist' is not a behaviour of the project (groom, rear)" in msg
    )


def test_cli_messages_map_target_and_deg_format_given_boris(video_project, capsys):
    root = video_project.root
    before = snapshot(root)
    code = main(["import-labels", str(root), "m1", str(FULL_1), "--media",
                 "video_test_25fps_180s", "--map", "s=nonexist", "--map", "p="])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "'nonexist' is not a behaviour of the project" in err and "'s'" not in err
    for name in ("boris_events.csv", "boris7_events.tsv", "boris_aggregated_lab.csv"):
        code = main(["import-labels", str(root), "m1", str(DATA / name), "--format", "deg"])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1, err
        assert f"{DATA / name}: this looks like a BORIS export: use --format boris" in err
    assert snapshot(root) == before


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def lab_project(video_project, make_video):
    """``video_project`` (m1: 60 frames at 30 fps) and cage3_part2: 600 frames at 29.97 fps."""
    video_project.add_videos([make_video("cage3_part2.mp4", n=600, fps=29.97)])
    return video_project


def test_cli_detects_aggregated_and_picks_the_videos_media(lab_project, capsys):
    root = lab_project.root
    assert abs(lab_project.record("cage3_part2").fps - 29.97) < 1e-3
    before = snapshot(root)
    # several media files, none is m1's: one line, nothing written
    code = main(["import-labels", str(root), "m1", str(LAB), "--subject", "mouse A"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "(cage3_part1.mp4, cage3_part2.mp4), none named like 'm1'" in err
    assert "--media NAME" in err
    code = main(["import-labels", str(root), "m1", str(LAB), "--media", "cage3_part9.mp4"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "no events of media file 'cage3_part9.mp4'" in err
    assert snapshot(root) == before

    maps = ["--map", "Grooming=groom", "--map", "Rearing=rear", "--map", "Sniffing="]
    for path, fmt in ((LAB, "auto"), (LAB_UTF16, "auto"), (LAB, "boris")):
        code = main(["import-labels", str(root), "cage3_part2", str(path), "--format", fmt,
                     "--subject", "mouse A", *maps])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 0, err
        assert "starts 20.02 s into its observation" in err
        a = lab_project.labels("cage3_part2").array
        assert {b: runs(a[:, k]) for k, b in enumerate(B)} == LAB_PART2_A
    # --media chooses a media file that is not named like the video
    code = main(["import-labels", str(root), "m1", str(FULL_1), "--media",
                 "video_test_25fps_180s.mp4", "--map", "s=groom", "--map", "p=rear"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "time 8.125 s is outside the video (0 to 2 s" in err  # m1 is 2 s


# --------------------------------------------------------------------------- export


def _with_subject(project: Project, subject: dict) -> Project:
    raw = load_yaml(project.config_path)
    raw["project"]["subject"] = subject
    save_yaml(project.config_path, raw)
    return Project.open(project.root)


def test_export_aggregated_round_trip_with_date_and_subject(video_project, tmp_path):
    from deg_core.interop.boris_aggregated import AGGREGATED_COLUMNS

    import_boris(video_project, "m1", DATA / "boris_events.csv")
    first = video_project.labels("m1")
    project = _with_subject(video_project, {"videos": {"m1": {"subject_id": "mouse 7"}}})
    [out], _ = export_boris(project, ["m1"], tmp_path / "agg", layout="aggregated")
    assert out.name == "m1_boris_aggregated.csv"
    assert sniff(out) == "aggregated"
    rows = list(csv.DictReader(out.open(newline="")))
    assert list(rows[0]) == AGGREGATED_COLUMNS
    added = project.record("m1").added
    assert added and rows[0]["Observation date"] == added.replace("T", " ")
    assert {r["Subject"] for r in rows} == {"mouse 7"}
    assert [(r["Behavior"], r["Behavior type"], r["Start (s)"], r["Stop (s)"]) for r in rows] == [
        ("groom", "STATE", "0.100", "0.500"),
        ("rear", "STATE", "0.733", "1.033"),
        ("groom", "STATE", "0.900", "1.500"),
        ("rear", "STATE", "1.800", "1.833"),
    ]
    assert rows[0]["Media file name"] == "m1.mp4" and rows[0]["FPS (frame/s)"] == "30.000"
    again = read_boris(out, project.behaviors, 60, 30.0, subject="mouse 7", video=["m1"])
    assert again.labels == first and again.notes == []
    # the tabular layout carries the date and subject too, and reads back the same
    [tab], _ = export_boris(project, ["m1"], tmp_path / "tab")
    rows = list(csv.DictReader(tab.open(newline="")))
    assert {(r["Observation date"], r["Subject"]) for r in rows} == {
        (added.replace("T", " "), "mouse 7")
    }
    assert read_boris(tab, project.behaviors, 60, 30.0).labels == first


def test_cli_export_aggregated_then_import_it_back(video_project, tmp_path, capsys):
    from deg_core.interop.boris_aggregated import AGGREGATED_COLUMNS

    root = video_project.root
    assert main(["import-labels", str(root), "m1", str(DATA / "boris_events.csv")]) == 0
    first = video_project.labels("m1")
    code = main(["export", "boris", str(root), "m1", "--layout", "aggregated",
                 "--out", str(tmp_path)])  # fmt: skip
    out, err = capsys.readouterr()
    path = tmp_path / "m1_boris_aggregated.csv"
    assert code == 0 and f"wrote {path}" in out, err
    text = path.read_text()
    assert "No focal subject" in text  # no subject_id in the project: BORIS's "none"
    video_project.save_labels("m1", Labels(first.behaviors, np.zeros_like(first.array)))
    assert main(["import-labels", str(root), "m1", str(path)]) == 0
    assert video_project.labels("m1") == first
    assert next(csv.reader(io.StringIO(text))) == AGGREGATED_COLUMNS
