"""A video's streams: the whole video when it holds one animal, else one per animal.

A stream is ``(key, animal)``: ``animal`` None for a one-animal video (everything as
before), ``0..N-1`` for a video of N > 1 animals (``project.n_animals(key)``), each with its
own labels (``project.labels(key, animal=i)``), crop window
(:func:`deg_core.tracking.crop.animal_crop_boxes`) and outputs (``<run>/animal<i>`` in the
outputs file, :mod:`deg_core.project.outputs`). :func:`stream_name` names a stream in
dicts and files: the key itself, or ``<key>#animal<i>``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deg_core.project.project import Project

Stream = tuple[str, int | None]

__all__ = ["Stream", "stream_has_labels", "stream_labels", "stream_name", "video_streams"]


def video_streams(project: Project, key: str) -> list[Stream]:
    """``[(key, None)]`` for a one-animal video, ``[(key, 0), ..., (key, N-1)]`` else."""
    n = project.n_animals(key)
    return [(key, None)] if n <= 1 else [(key, i) for i in range(n)]


def stream_name(stream: Stream) -> str:
    key, animal = stream
    return key if animal is None else f"{key}#animal{animal}"


def _labels_path(project: Project, stream: Stream) -> Path:
    key, animal = stream
    if animal is None:
        return project.record(key).labels_path
    return project.animal_labels_path(key, animal)


def stream_labels(project: Project, stream: Stream) -> np.ndarray:
    """(T, K) int8 labels of ``stream`` (all -1 where absent)."""
    key, animal = stream
    if animal is None:
        return project.labels(key).array
    return project.labels(key, animal=animal).array


def stream_has_labels(project: Project, stream: Stream) -> bool:
    """The stream's label file exists and labels at least one frame."""
    return _labels_path(project, stream).exists() and bool(
        (stream_labels(project, stream) != -1).any()
    )
