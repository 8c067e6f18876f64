"""``deg export nwb``: bouts, probabilities and the video, read back with pynwb; the subject,
start time and experimenter, checked with nwbinspector; and the one-line install hint when
pynwb is missing."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pytest

from deg_core.cli import main
from deg_core.config import ConfigError
from deg_core.errors import DegError
from deg_core.fileio import load_yaml, save_yaml
from deg_core.interop.nwb import export_nwb, series_timing
from deg_core.labels.labels import Labels
from deg_core.project.project import Project
from deg_core.video.clock import FrameClock
from tests.conftest import snapshot
from tests.interop.conftest import RUN, fake_sequence_outputs

SUBJECT = {"subject_id": "m1", "species": "Mus musculus", "sex": "F", "age": "P90D"}


def _labelled(project) -> Labels:
    lab = Labels.empty(60, project.behaviors).finalize()
    lab.array[3:15, 0] = lab.array[27:45, 0] = 1
    lab.array[22:31, 1] = 1
    project.save_labels("m1", lab)
    return lab


def test_nwb_holds_bouts_probabilities_and_the_video(video_project, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    _labelled(video_project)
    probs = np.linspace(0, 1, 120, dtype=np.float32).reshape(60, 2)
    fake_sequence_outputs(video_project, "m1", probs)
    out = tmp_path / "nwb"
    [(path, notes)] = export_nwb(video_project, ["m1"], out, subject=SUBJECT).items()
    assert path == out / "m1.nwb" and notes == []
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        labels = nwb.intervals["behavior_labels"].to_dataframe()
        assert labels["behavior"].tolist() == ["groom", "rear", "groom"]
        np.testing.assert_allclose(labels["start_time"], [3 / 30, 22 / 30, 27 / 30])
        np.testing.assert_allclose(labels["stop_time"], [15 / 30, 31 / 30, 45 / 30])
        pred = nwb.intervals["behavior_predictions"].to_dataframe()
        # P > 0.5 from frame 30 (groom: column 0 of linspace) and 29 (rear) to the end
        assert set(pred["behavior"]) == {"groom", "rear"}
        np.testing.assert_allclose(pred["stop_time"], [2.0, 2.0])
        p = nwb.processing["behavior"]["behavior_probabilities"]
        np.testing.assert_allclose(p.data[:], probs)
        assert p.rate == pytest.approx(30.0) and p.comments == "groom,rear"
        assert RUN in p.description
        video = nwb.acquisition["video"]
        assert video.format == "external" and video.rate == pytest.approx(30.0)
        ext = Path(video.external_file[0])
        assert not ext.is_absolute()  # relative to the NWB file's folder
        assert (out / ext).resolve() == video_project.record("m1").video.resolve()


def test_a_table_without_bouts_is_left_out_and_noted(video_project, tmp_path):
    """nwbinspector reports an empty table (and some of its checks fail on one)."""
    pynwb = pytest.importorskip("pynwb")
    _labelled(video_project)
    fake_sequence_outputs(video_project, "m1", np.zeros((60, 2), np.float32))
    [(path, notes)] = export_nwb(video_project, None, tmp_path, subject=SUBJECT).items()
    assert notes == ["no predicted bouts"]
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        assert "behavior_predictions" not in nwb.intervals
        assert "behavior_labels" in nwb.intervals
        assert "behavior_probabilities" in nwb.processing["behavior"].data_interfaces
    assert _inspect(path) == []
    video_project.save_labels("m1", Labels.empty(60, video_project.behaviors).finalize())
    [notes] = export_nwb(video_project, None, tmp_path, subject=SUBJECT).values()
    assert notes == ["no labelled bouts", "no predicted bouts"]


def test_nwb_without_predictions_notes_it(video_project, tmp_path, capsys):
    pytest.importorskip("pynwb")
    _labelled(video_project)
    code = main(["export", "nwb", str(video_project.root), "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"wrote {tmp_path / 'm1.nwb'} (no predictions (" in out


def test_without_pynwb_one_line_says_how_to_install(video_project, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynwb", None)  # import pynwb now raises ImportError
    with pytest.raises(DegError, match="uv sync --extra nwb"):
        export_nwb(video_project, None, tmp_path / "out")
    before = snapshot(video_project.root)
    code = main(["export", "nwb", str(video_project.root), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "uv sync --extra nwb" in err and "pip install deg[nwb]" in err
    assert snapshot(video_project.root) == before and not (tmp_path / "out").exists()


# ----------------------------------------------------------------- subject, start, nwbinspector


def _with_subject(project: Project, subject: dict) -> Project:
    """The project with ``project.subject`` in its project_config.yaml, reopened."""
    raw = load_yaml(project.config_path)
    raw["project"]["subject"] = subject
    save_yaml(project.config_path, raw)
    return Project.open(project.root)


def _inspect(path: Path) -> list:
    """nwbinspector's messages of CRITICAL importance or above, or BEST_PRACTICE_VIOLATION."""
    nwbinspector = pytest.importorskip("nwbinspector")
    imp = nwbinspector.Importance
    serious = {imp.ERROR, imp.PYNWB_VALIDATION, imp.CRITICAL, imp.BEST_PRACTICE_VIOLATION}
    return [
        f"{m.importance.name} {m.check_function_name}: {m.message}"
        for m in nwbinspector.inspect_nwbfile(nwbfile_path=path)
        if m.importance in serious
    ]


def test_nwb_with_the_projects_subject_passes_nwbinspector(video_project, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    project = _with_subject(
        video_project,
        {"species": "Mus musculus", "sex": "U", "age": "P8W", "videos": {"m1": {"subject_id": 7}}},
    )
    _labelled(project)
    probs = np.full((60, 2), 0.1, np.float32)
    probs[10:40, 0] = probs[20:50, 1] = 0.9
    fake_sequence_outputs(project, "m1", probs)
    [(path, notes)] = export_nwb(project, None, tmp_path).items()
    assert notes == []
    assert _inspect(path) == []
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        s = nwb.subject
        assert (s.subject_id, s.species, s.sex, s.age) == ("7", "Mus musculus", "U", "P8W")
        assert list(nwb.experimenter) == ["tester"]  # the project's labeler: the label file's
        assert "labeler tester" in nwb.intervals["behavior_labels"].description


def test_without_a_subject_the_notes_say_what_nwbinspector_reports(video_project, tmp_path):
    pytest.importorskip("pynwb")
    _labelled(video_project)
    [(path, notes)] = export_nwb(video_project, None, tmp_path).items()
    assert notes[-1].startswith("no subject subject_id, species, sex, age (project.subject")
    assert any("check_subject_exists" in m for m in _inspect(path))
    # a partial subject: written, and the notes name what it lacks
    [(path, notes)] = export_nwb(video_project, None, tmp_path, subject={"sex": "M"}).items()
    assert notes[-1].startswith("no subject subject_id, species, age (")
    assert "check_subject_exists" not in " ".join(_inspect(path))


def test_species_out_of_form_is_noted(video_project, tmp_path):
    pytest.importorskip("pynwb")
    subject = {**SUBJECT, "species": "mouse"}
    [(_, notes)] = export_nwb(video_project, None, tmp_path, subject=subject).items()
    assert "species 'mouse' is neither a Latin binomial" in " ".join(notes)


def test_cli_subject_options_go_over_the_projects(video_project, tmp_path, capsys):
    pynwb = pytest.importorskip("pynwb")
    project = _with_subject(
        video_project,
        {"species": "Rattus norvegicus", "sex": "F", "videos": {"m1": {"age": "P1Y"}}},
    )
    _labelled(project)
    out = tmp_path / "out"
    args = ["--subject-id", "rat-3", "--sex", "M", "--species", "Mus musculus", "--out", str(out)]
    code = main(["export", "nwb", str(project.root), *args])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "no subject" not in stdout
    with pynwb.NWBHDF5IO(str(out / "m1.nwb"), "r") as io:
        s = io.read().subject
        assert (s.subject_id, s.species, s.sex, s.age) == ("rat-3", "Mus musculus", "M", "P1Y")
    assert _inspect(out / "m1.nwb") == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--sex", "male"], "--sex must be one of M (male), F (female), U (unknown), O (other)"),
        (["--age", "90 days"], "--age must be an ISO 8601 duration such as P90D"),
        (["--age", "P"], "--age must be an ISO 8601 duration"),
        (["--age", "p90d"], "--age must be an ISO 8601 duration"),
        (["--subject-id", "a/b"], "--subject-id must not contain '/'"),
        (["--subject-id", " "], "--subject-id must be a non-empty text"),
        (["--species", ""], "--species must be a non-empty text"),
    ],
)
def test_a_bad_subject_option_is_one_line_and_writes_nothing(
    video_project, tmp_path, capsys, args, says
):
    _labelled(video_project)
    before = snapshot(video_project.root)
    out = tmp_path / "out"
    code = main(["export", "nwb", str(video_project.root), *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and says in err
    assert not out.exists() and snapshot(video_project.root) == before


def test_subject_options_are_for_nwb_only(video_project, tmp_path, capsys):
    code = main(["export", "boris", str(video_project.root), "--sex", "M", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "apply to nwb only" in err


def test_a_bad_subject_from_python_writes_nothing(video_project, tmp_path):
    with pytest.raises(ConfigError, match=r"subject age must be an ISO 8601 duration"):
        export_nwb(video_project, None, tmp_path / "out", subject={"age": "3 months"})
    with pytest.raises(ConfigError, match=r"unknown subject field 'subject weight'"):
        export_nwb(video_project, None, tmp_path / "out", subject={"weight": "20 g"})
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("subject", "says"),
    [
        ({"sex": "female"}, "project.subject.sex must be one of M (male)"),
        ({"age": "90d"}, "project.subject.age must be an ISO 8601 duration"),
        ({"videos": {"m1": {"sex": "X"}}}, "project.subject.videos.m1.sex must be one of"),
        ({"videos": {"m1": {"weight": "2 g"}}}, "unknown subject field 'project.subject.vid"),
        ({"videos": ["m1"]}, "'project.subject.videos' must be mapping of str to mapping"),
        ({"animal": "m1"}, "unknown key 'project.subject.animal'"),
    ],
)
def test_a_bad_subject_in_project_config_is_one_line(video_project, capsys, subject, says):
    raw = load_yaml(video_project.config_path)
    raw["project"]["subject"] = subject
    save_yaml(video_project.config_path, raw)
    with pytest.raises(ConfigError, match=r"project_config\.yaml") as e:
        Project.open(video_project.root)
    assert says in str(e.value)
    assert main(["export", "nwb", str(video_project.root)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err


def test_a_project_without_subject_loads_and_keeps_its_file(video_project):
    text = video_project.config_path.read_text()
    assert "subject" not in text
    project = Project.open(video_project.root)
    s = project.config.project.subject
    assert (s.subject_id, s.species, s.sex, s.age, s.videos) == (None, None, None, None, {})
    assert project.config_path.read_text() == text


def _with_creation_time(src: Path, dst: Path, when: str) -> Path:
    """A copy of video ``src`` (remuxed, same frames) whose container says ``creation_time``."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        out.metadata["creation_time"] = when
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return dst


def test_start_time_is_the_videos_creation_time(project, make_video, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    plain = make_video("plain.mp4", n=20)
    dated = _with_creation_time(plain, tmp_path / "dated.mp4", "2023-05-04T10:11:12.000000Z")
    unset = _with_creation_time(plain, tmp_path / "unset.mp4", "1970-01-01T00:00:00.000000Z")
    project.add_videos([plain, dated, unset])
    starts = {}
    for path in export_nwb(project, None, tmp_path / "out", subject=SUBJECT):
        with pynwb.NWBHDF5IO(str(path), "r") as io:
            nwb = io.read()
            starts[path.stem] = (nwb.session_start_time, nwb.session_description)
        assert _inspect(path) == []
    when, what = starts["dated"]
    assert when == dt.datetime(2023, 5, 4, 10, 11, 12, tzinfo=dt.UTC)
    assert what.endswith("session_start_time: the video's creation_time metadata")
    for key in ("plain", "unset"):  # no creation_time, and an unset camera clock's 1970
        added = dt.datetime.fromisoformat(str(project.record(key).added)).astimezone()
        when, what = starts[key]
        assert when == added
        assert "when the video was added to the deg project, not its recording" in what


def test_the_frame_clock_is_frames_over_fps():
    clock = FrameClock(25.0)
    assert clock.seconds(0) == 0.0 and clock.seconds(50) == pytest.approx(2.0)
    assert series_timing(clock) == {"rate": 25.0, "starting_time": 0.0}
    vfr = FrameClock(25.0, np.array([0.0, 0.02, 0.07]))
    np.testing.assert_array_equal(series_timing(vfr)["timestamps"], [0.0, 0.02, 0.07])
