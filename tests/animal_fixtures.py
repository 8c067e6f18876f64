"""Projects of two animals per video, shared by the several-animal tests (CLI and training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deg_core.cli import main
from deg_core.labels.labels import Labels
from deg_core.project.project import Project
from deg_core.tracking.animals import AnimalTracks
from deg_core.tracking.project_tracks import save_animal_tracks

N_FRAMES, SIZE = 40, 64  # the synthetic 2-animal videos: frames, side in px


def run(capsys, *argv) -> tuple[int, str, str]:
    """``deg *argv`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def two_animal_project(root: Path, name: str, behaviors: list[str], video: Path) -> Project:
    """A project of 2 animals per video holding the one ``video`` (no tracks, no labels)."""
    project = Project.create(root, name, behaviors)
    project.add_videos([video])
    project.set_animals(2)
    return project


def truth_tracks(centers: np.ndarray, size: int = SIZE) -> AnimalTracks:
    """Tracks at the true centres (T, 2, 2) of a synthetic 2-animal video: 12 px boxes."""
    centre = centers.astype(np.float32)
    extent = np.full(centre.shape, 12.0, np.float32)
    return AnimalTracks(centre, extent, ["animal0", "animal1"], "csv", (size, size))


def synthetic_pair_project(root: Path) -> tuple[Project, dict[str, np.ndarray]]:
    """Three 2-animal synthetic videos (train, train, val) with tracks (the true centres)
    and per-animal labels; returns the project and each video's true centres (T, 2, 2)."""
    from deg_core.workflow.synthetic_multi import MULTI_BEHAVIORS, MultiSpec, write_multi_video

    project = Project.create(root, "pair", list(MULTI_BEHAVIORS), animals=2)
    centres = {}
    for i, split in enumerate(["train", "train", "val"]):
        path = root / f"m{i}.mp4"
        spec = MultiSpec(n_animals=2, n_frames=N_FRAMES, size=SIZE, seed=i, crf=18)
        truth = write_multi_video(path, spec)
        project.add_videos([path], split=split)
        key = project.video_keys()[-1]
        tracks = truth_tracks(truth.centers)
        save_animal_tracks(project, key, tracks)
        for a in range(2):
            lab = Labels(project.behaviors, truth.labels[:, a].astype(np.int8))
            lab.array[30:, 2] = -1  # partially labelled
            project.save_labels(key, lab, animal=a)
        centres[key] = tracks.center
    return project, centres
