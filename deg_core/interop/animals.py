"""The animals of a video as other tools name them: BORIS subjects, NWB table suffixes."""

from __future__ import annotations

from deg_core.errors import DegError
from deg_core.project.project import Project
from deg_core.project.records import animal_name
from deg_core.tracking.project_tracks import animal_tracks


def animal_names(project: Project, key: str) -> list[str]:
    """The names of video ``key``'s N animals: its stored tracks' animal names (a SLEAP
    track's, a DeepLabCut individual's, ``animal<i>``) when it has tracks of N distinct,
    non-empty names, else ``animal0``..``animal<N-1>``."""
    n = project.n_animals(key)
    default = [animal_name(i) for i in range(n)]
    try:
        tracks = animal_tracks(project, key)
    except (
        DegError,
        OSError,
        KeyError,
        ValueError,
    ):  # unreadable tracks: the export still names the animals
        return default
    if tracks is None or tracks.n_animals != n:
        return default
    names = [str(name).strip() for name in tracks.names]
    return names if all(names) and len(set(names)) == n else default


def animal_index(project: Project, key: str) -> dict[str, int]:
    """{name: animal} of every name an animal of video ``key`` goes by: ``animal<i>``, and
    its tracks' name (which wins where the two disagree)."""
    index = {animal_name(i): i for i in range(project.n_animals(key))}
    index.update({name: i for i, name in enumerate(animal_names(project, key))})
    return index
