"""Setting the number of animals: Project.create(animals=), Project.set_animals (the project's
number or one video's), checked against what is on disk; `deg init --animals`, `deg animals`."""

from __future__ import annotations

import numpy as np
import pytest

from deg_core.errors import ConfigError, ProjectError
from deg_core.fileio import load_yaml
from deg_core.labels.labels import Labels
from deg_core.project.project import Project
from deg_core.tracking.animals import AnimalTracks
from deg_core.tracking.project_tracks import save_animal_tracks
from tests.animal_fixtures import run
from tests.conftest import snapshot

B = ["groom", "rear"]


@pytest.fixture
def two(project, make_video):
    """The demo project (one animal per video) with videos m1 and m2 of 10 frames."""
    project.add_videos([make_video("m1.mp4", n=10), make_video("m2.mp4", n=10, seed=1)])
    return project


def _tracks(n: int, frames: int = 10) -> AnimalTracks:
    centre = np.full((frames, n, 2), 20.0, np.float32)
    names = [f"animal{i}" for i in range(n)]
    return AnimalTracks(centre, np.full_like(centre, 8.0), names, "csv", (48, 64))


def test_create_with_animals(tmp_path):
    project = Project.create(tmp_path, "duo", B, animals=3)
    assert project.config.project.animals == 3
    assert load_yaml(project.config_path)["project"]["animals"] == 3
    one = Project.create(tmp_path, "solo", B)
    assert "animals" not in load_yaml(one.config_path)["project"]  # DeepEthogram's file
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="number of animals must be a whole number"):
            Project.create(tmp_path, "bad", B, animals=bad)  # type: ignore[arg-type]
    assert not (tmp_path / "bad_deepethogram").exists()


def test_set_the_project_and_a_video(two):
    original = two.config_path.read_text()
    two.set_animals(2)
    assert two.n_animals("m1") == two.n_animals("m2") == 2
    assert Project.open(two.root).n_animals("m1") == 2  # written, not only in memory
    two.set_animals(3, video="m2.mp4")  # a file name names the video too
    assert (two.n_animals("m1"), two.n_animals("m2")) == (2, 3)
    assert load_yaml(two.config_path)["project"]["animals_per_video"] == {"m2": 3}
    two.set_animals(2, video="m2")  # the project's number again: no exception left
    assert "animals_per_video" not in load_yaml(two.config_path)["project"]
    two.set_animals(1)
    assert two.n_animals("m1") == 1
    assert two.config_path.read_text() == original  # back to DeepEthogram's file


def test_the_project_number_spares_videos_with_their_own(two):
    two.set_animals(3, video="m1")
    two.set_animals(2)
    assert (two.n_animals("m1"), two.n_animals("m2")) == (3, 2)
    two.set_animals(3)  # m1's own number is now the project's: dropped from the file
    assert "animals_per_video" not in load_yaml(two.config_path)["project"]
    assert two.n_animals("m1") == 3


@pytest.mark.parametrize(
    ("n", "video", "error", "problem"),
    [
        (0, None, ConfigError, "whole number >= 1, got 0"),
        (-2, "m1", ConfigError, "whole number >= 1"),
        (2.0, None, ConfigError, "whole number >= 1, got 2.0"),
        (True, None, ConfigError, "got True"),
        (2, "nope", ProjectError, "no video 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(two, n, video, error, problem):
    two.set_animals(1)  # the lock file exists before the snapshot
    before = snapshot(two.root)
    with pytest.raises(error, match=problem) as e:
        two.set_animals(n, video=video)
    assert "\n" not in str(e.value)
    assert snapshot(two.root) == before


def test_files_for_another_number_refuse_it(two):
    two.set_animals(2)
    save_animal_tracks(two, "m1", _tracks(2))
    two.save_labels("m2", Labels.empty(10, B), animal=1)
    before = snapshot(two.root)
    cases = [
        ((3, None), "video m1 has tracks of 2 animals"),  # m1 would get 3
        ((1, "m1"), "video m1 has tracks of 2 animals"),
        ((1, "m2"), r"video m2 has labels of animal1 \(DATA/m2/animals/\)"),
        ((1, None), "video m1 has tracks"),  # the first video in the way is named
    ]
    for (n, video), problem in cases:
        with pytest.raises(ProjectError, match=problem) as e:
            two.set_animals(n, video=video)
        assert "\n" not in str(e.value)
        assert snapshot(two.root) == before, (n, video)
    assert two.n_animals("m1") == two.n_animals("m2") == 2
    two.set_animals(3, video="m2")  # animals 0 and 1 of 3: its labels still fit
    assert two.n_animals("m2") == 3
    two.save_labels("m2", Labels.empty(10, B), animal=2)
    with pytest.raises(ProjectError, match="has labels of animal2, beyond 2 animals"):
        two.set_animals(2, video="m2")


def test_one_animal_labels_refuse_several(two):
    two.save_annotator_labels("m1", "bob", Labels.empty(10, B))
    before = snapshot(two.root)
    with pytest.raises(ProjectError, match=r"one animal's labels \(m1_labels.bob.csv\)"):
        two.set_animals(2)
    assert snapshot(two.root) == before
    two.set_animals(2, video="m2")  # m2 has none
    assert (two.n_animals("m1"), two.n_animals("m2")) == (1, 2)


def test_cli_init_and_animals(tmp_path, make_video, capsys):
    code, out, _ = run(capsys, "init", tmp_path, "--name", "duo", "--behaviors", "a,b")
    assert code == 0 and "animals:" not in out
    root = tmp_path / "duo_deepethogram"
    assert "animals" not in load_yaml(root / "project_config.yaml")["project"]
    code, out, _ = run(capsys, "add-videos", root, make_video("m1.mp4", n=10))
    assert code == 0
    code, out, _ = run(capsys, "animals", root)
    assert (code, out) == (0, "project: 1 animals per video\nm1: 1\n")
    code, out, _ = run(capsys, "animals", root, "2")
    assert (code, out) == (0, "project: 2 animals per video\nm1: 2\n")
    code, out, _ = run(capsys, "animals", root, "3", "--video", "m1")
    assert (code, out) == (0, "m1: 3   (its own number)\n")
    before = snapshot(root)
    code, _, err = run(capsys, "animals", root, "0")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "whole number >= 1" in err
    code, _, err = run(capsys, "animals", root, "2", "--video", "m9")
    assert code == 1 and "no video 'm9'" in err
    assert snapshot(root) == before
    code, out, _ = run(
        capsys, "init", tmp_path, "--name", "trio", "--behaviors", "a", "--animals", "3"
    )
    assert code == 0 and "animals: 3 in each video" in out
    assert Project.open(tmp_path / "trio_deepethogram").config.project.animals == 3
