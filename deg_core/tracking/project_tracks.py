"""A project's animal tracks: ``DATA/<key>/<key>_animals.h5``, read, checked and saved.

Functions over a :class:`~deg_core.project.project.Project` (the project package sits below
tracking, so it cannot hold them): :func:`animal_tracks`, :func:`save_animal_tracks` (checked
against the video, atomic, under the project lock) and :func:`import_animal_tracks` (a SLEAP,
DeepLabCut or CSV file, :mod:`deg_core.tracking.imports`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from deg_core.errors import ProjectError
from deg_core.tracking.animals import AnimalTracks, animals_path
from deg_core.tracking.imports import read_tracks

if TYPE_CHECKING:
    from deg_core.project.project import Project

__all__ = ["animal_tracks", "check_fits", "import_animal_tracks", "save_animal_tracks"]


def tracks_path(project: Project, key: str) -> Path:
    return animals_path(project.data_dir / key, key)


def animal_tracks(project: Project, key: str) -> AnimalTracks | None:
    """The stored tracks of video ``key`` (a key, file name or path), or None if it has none."""
    key = project.resolve_key(key)
    path = tracks_path(project, key)
    return AnimalTracks.load(path) if path.exists() else None


def check_fits(project: Project, key: str, tracks: AnimalTracks) -> None:
    """ProjectError (one line) unless ``tracks`` has the video's frames and animals."""
    rec = project.record(key)
    n_frames, n_animals = rec.n_frames(), project.n_animals(key)
    path = tracks_path(project, key)
    if tracks.n_frames != n_frames:
        raise ProjectError(
            f"tracks have {tracks.n_frames} frames, video {key} has {n_frames}", path
        )
    if tracks.n_animals != n_animals:
        raise ProjectError(
            f"tracks hold {tracks.n_animals} animals, video {key} has {n_animals} "
            "(project.animals / project.animals_per_video)",
            path,
        )


def save_animal_tracks(
    project: Project, key: str, tracks: AnimalTracks, timeout: float | None = None
) -> Path:
    """Store ``tracks`` as video ``key``'s (checked against the video's frame count and
    number of animals, then written atomically under the project lock)."""
    key = project.resolve_key(key)
    check_fits(project, key, tracks)
    with project.lock(timeout):
        project.reload()  # the number of animals may have changed in another process
        check_fits(project, key, tracks)
        path = tracks_path(project, key)
        tracks.save(path)
    return path


def import_animal_tracks(
    project: Project, key: str, file: str | Path, format: str = "auto"
) -> AnimalTracks:
    """Read a SLEAP, DeepLabCut or plain CSV track file for video ``key`` and store it;
    bad input raises one line and leaves the project as it was."""
    key = project.resolve_key(key)
    rec = project.record(key)
    n_frames = rec.n_frames()
    if rec.height is None or rec.width is None:
        raise ProjectError("the video's frame size is unknown", rec.record_path)
    n_animals = project.n_animals(key)
    try:
        old = animal_tracks(project, key)
    except ProjectError:  # a damaged file is replaced
        old = None
    tracks = read_tracks(
        file,
        n_frames=n_frames,
        n_animals=n_animals,
        frame_size=(int(rec.height), int(rec.width)),
        fps=rec.fps,
        format=format,
        names=old.names if old is not None and old.n_animals == n_animals else None,
    )
    save_animal_tracks(project, key, tracks)
    return tracks
