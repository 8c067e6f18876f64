"""How many animals a video holds: what its files on disk were made for.

:meth:`Project.set_animals <deg_core.project.project.Project.set_animals>` changes a video's
number of animals only where nothing on disk was made for another number: the animal tracks
(``<key>_animals.h5``, one column per animal), each animal's label sets
(``animals/animal<i>/``) and, for a one-animal video, DeepEthogram's ``<key>_labels.csv``
(and the annotators' sets beside it), which a video of several animals does not read.
"""

from __future__ import annotations

from pathlib import Path

import h5py

from deg_core.labels.annotators import list_annotator_files
from deg_core.project.records import VideoRecord, animal_name

__all__ = ["animal_number_problem", "labelled_animals", "one_animal_label_files", "tracked_animals"]


def tracked_animals(rec: VideoRecord) -> int | None:
    """The number of animals in the video's tracks file, or None without a readable one."""
    path = rec.tracks_path
    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as h5:
            return len(h5.attrs["names"])
    except (OSError, KeyError, TypeError):  # a damaged file: whatever replaces it decides
        return None


def _label_files(base: Path) -> list[Path]:
    return [p for p in (base, *list_annotator_files(base).values()) if p.is_file()]


def labelled_animals(rec: VideoRecord) -> list[int]:
    """The animals (indices) with a label set in ``animals/animal<i>/``, sorted."""
    return [i for i in rec.animal_folders() if _label_files(rec.animal_labels_path(i))]


def one_animal_label_files(rec: VideoRecord) -> list[Path]:
    """The video's one-animal label sets: ``<key>_labels.csv`` and the annotators' beside it."""
    return _label_files(rec.labels_path)


def animal_number_problem(rec: VideoRecord, n: int, current: int) -> str | None:
    """Why video ``rec``, of ``current`` animals now, cannot hold ``n`` given its files (one
    line), else None.

    Its tracks must hold ``n`` animals; with ``n`` = 1 it may have no per-animal label sets,
    with ``n`` > 1 no label set of an animal ``>= n`` and, if it has one animal now, no
    one-animal label file (a video of several reads only its animals' files).
    """
    key = rec.key
    tracked = tracked_animals(rec)
    if tracked is not None and tracked != n:
        return (
            f"video {key} has tracks of {tracked} animals ({rec.tracks_path.name}): "
            f"delete that file first to set {n}"
        )
    labelled = labelled_animals(rec)
    if n == 1 and labelled:
        names = ", ".join(animal_name(i) for i in labelled)
        return (
            f"video {key} has labels of {names} (DATA/{key}/animals/): "
            "a one-animal video would not read them"
        )
    beyond = [i for i in labelled if i >= n]
    if beyond:
        names = ", ".join(animal_name(i) for i in beyond)
        return f"video {key} has labels of {names}, beyond {n} animals (0..{n - 1})"
    single = one_animal_label_files(rec) if n > 1 and current == 1 else []
    if single:
        return (
            f"video {key} has one animal's labels ({', '.join(p.name for p in single)}), "
            f"which a video of {n} animals does not read: move them into "
            f"DATA/{key}/animals/animal<i>/ first"
        )
    return None
