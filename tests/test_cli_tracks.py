"""``deg tracks`` and the project's animals: project.animals (per-video override), the stored
tracks (checked, atomic), import / swap / png from the command line, bad input -> one line,
exit 1, nothing changed."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from deg_core.errors import ConfigError, DegError
from deg_core.project.project import Project
from deg_core.tracking.animals import AnimalTracks
from deg_core.tracking.project_tracks import animal_tracks, save_animal_tracks
from tests.animal_fixtures import run, two_animal_project
from tests.conftest import snapshot


@pytest.fixture
def pair(tmp_path, make_video):
    """A project with one 20-frame 64x48 video of 2 animals."""
    return two_animal_project(tmp_path, "pair", ["groom"], make_video("m1.mp4", n=20))


def _csv(tmp_path, rows) -> str:
    f = tmp_path / "tracks.csv"
    f.write_text("frame,animal,x,y\n" + "".join(f"{r}\n" for r in rows))
    return str(f)


def test_animals_setting(project, make_video):
    assert project.config.project.animals == 1
    project.add_videos([make_video("m1.mp4", n=10)])
    assert project.n_animals("m1") == 1
    raw = yaml.safe_load(project.config_path.read_text())
    raw["project"]["animals"] = 2
    raw["project"]["animals_per_video"] = {"m1": 3}
    project.config_path.write_text(yaml.safe_dump(raw))
    project.reload()
    assert project.n_animals("m1") == 3 and project.n_animals("other") == 2
    raw["project"]["animals_per_video"] = {"m1": 0}
    project.config_path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"project.animals_per_video.m1 must be a number"):
        project.reload()


def test_save_checks_frames_and_animals(pair):
    assert animal_tracks(pair, "m1") is None
    good = AnimalTracks(np.zeros((20, 2, 2)), np.ones((20, 2, 2)), ["a", "b"], "csv", (48, 64))
    path = save_animal_tracks(pair, "m1", good)
    assert path.name == "m1_animals.h5"
    assert animal_tracks(pair, "m1").names == ["a", "b"]
    before = snapshot(pair.root)
    for bad, problem in (
        (
            AnimalTracks(np.zeros((19, 2, 2)), np.ones((19, 2, 2)), ["a", "b"], "csv", (48, 64)),
            "tracks have 19 frames, video m1 has 20",
        ),
        (
            AnimalTracks(
                np.zeros((20, 3, 2)), np.ones((20, 3, 2)), ["a", "b", "c"], "csv", (48, 64)
            ),
            "tracks hold 3 animals, video m1 has 2",
        ),
    ):
        with pytest.raises(DegError, match=problem):
            save_animal_tracks(pair, "m1", bad)
    assert snapshot(pair.root) == before


def test_cli_import_summary_swap_png(pair, tmp_path, capsys):
    f = _csv(tmp_path, ["0,0,5,6", "0,1,50,40", "1,0,6,6", "1,1,49,40", "5,1,48,41"])
    code, out, err = run(capsys, "tracks", pair.root, "m1", "--import", f)
    assert code == 0, err
    assert "imported" in out and "2 animals, 20 frames, source csv" in out
    assert "animal0: known in 2/20 frames (18 unknown)" in out
    assert "animal1: known in 3/20 frames" in out
    code, out, err = run(capsys, "tracks", pair.root, "m1", "--swap", "0", "animal1", "--from", "1")
    assert code == 0, err
    t = animal_tracks(pair, "m1")
    np.testing.assert_allclose(t.center[0, 0], [5, 6])
    np.testing.assert_allclose(t.center[1, 0], [49, 40])
    png = tmp_path / "tracks.png"
    code, out, err = run(capsys, "tracks", pair.root, "m1", "--png", png)
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "possible identity swaps" in out


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (["0,2,5,6"], "animal '2' is not 0..1"),
        (["20,0,5,6"], "reach frame 20 but the video has 20 frames"),
        (["0,0,5,6", "0,0,6,6"], "lists animal animal0 twice"),
    ],
)
def test_cli_import_refused(pair, tmp_path, capsys, rows, problem):
    f = _csv(tmp_path, rows)
    before = snapshot(pair.root)
    code, _, err = run(capsys, "tracks", pair.root, "m1", "--import", f)
    assert code == 1 and problem in err and f in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(pair.root) == before


def test_cli_without_tracks_and_bad_swap(pair, tmp_path, capsys):
    code, _, err = run(capsys, "tracks", pair.root, "m1")
    assert code == 1 and "has no animal tracks yet" in err
    run(capsys, "tracks", pair.root, "m1", "--import", _csv(tmp_path, ["0,0,5,6"]))
    before = snapshot(pair.root)
    code, _, err = run(capsys, "tracks", pair.root, "m1", "--swap", "0", "7")
    assert code == 1 and "--swap: no animal '7'" in err
    code, _, err = run(capsys, "tracks", pair.root, "m1", "--swap", "0", "1", "--from", "20")
    assert code == 1 and "--from in 0..19" in err
    assert snapshot(pair.root) == before


def test_cli_compute_tracks_two_generated_animals(tmp_path, capsys):
    """`deg tracks --compute` runs deg's own tracker on a generated two-animal video: both
    animals found in every frame, near their true centres, saved for the project."""
    from deg_core.tracking.multi import identity_switches
    from deg_core.workflow.synthetic_multi import MultiSpec, write_multi_video

    video = tmp_path / "two.mp4"
    truth = write_multi_video(video, MultiSpec(n_animals=2, n_frames=120, seed=1))
    p = two_animal_project(tmp_path, "two", ["walk"], video)
    code, out, err = run(capsys, "tracks", p.root, "two", "--compute")
    assert code == 0, err
    assert "animal0" in out and "animal1" in out
    tracks = animal_tracks(Project.open(p.root), "two")
    assert tracks is not None and tracks.source == "deg" and tracks.n_animals == 2
    assert tracks.found().mean() > 0.95
    clear = ~tracks.merged
    err_px = np.linalg.norm(tracks.center[clear] - truth.centers[clear], axis=-1)
    swapped = np.linalg.norm(tracks.center[clear][:, ::-1] - truth.centers[clear], axis=-1)
    assert min(np.nanmedian(err_px), np.nanmedian(swapped)) < 0.05 * 96  # 5% of the frame
    assert identity_switches(tracks.center[clear], truth.centers[clear]) <= 1
