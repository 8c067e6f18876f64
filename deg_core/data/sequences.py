"""Per-frame features from the outputs HDF5 files, as windows for the sequence model.

A video's input is ``[spatial_features ‖ flow_features]`` of one feature-extractor
run: (T, 1024) float32. Training windows are ``sequence_length`` frames long; the
last window of a video is padded with zeros (features) and -1 (labels), which the
masked loss ignores.

A video of N > 1 animals is N inputs, one per animal (its stream,
:mod:`deg_core.data.streams`): animal i's features are read from ``<run>/animal<i>``, and
dicts of features are keyed by :func:`~deg_core.data.streams.stream_name`
(``<key>#animal<i>``; a one-animal video's stream is named by its key, as before).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from deg_core.data.streams import stream_name, video_streams
from deg_core.errors import DegError, ProjectError
from deg_core.project.outputs import read_group
from deg_core.project.project import Project


def read_features(path: Path, group: str, animal: int | None = None) -> np.ndarray:
    """(T, 1024) float32: spatial ‖ flow features of ``group`` in an outputs file
    (``animal``: that animal's, of a several-animal video)."""
    g = read_group(path, group, ("spatial_features", "flow_features"), animal=animal)
    return np.concatenate([g["spatial_features"], g["flow_features"]], axis=1)


def features_or_explain(
    project: Project,
    keys: list[str],
    feature_run: str,
    track: bool = False,
    track_position: bool = True,
    standardise: bool = False,
    social: bool = True,
) -> dict[str, np.ndarray]:
    """Features of every video in ``keys``; one error naming all videos that lack them.

    ``track``: append each video's animal-track features (deg_core.tracking.crop.track_features):
    (T, 1024 + F) instead of (T, 1024). ``track_position`` False: without the first two
    (where the animal is in the frame): (T, 1024 + F - 2). ``standardise``: every column
    z-scored over its video (:func:`standardise_columns`).

    In a project where some video holds several animals, ``track`` appends every stream's
    per-animal track features instead (deg_core.tracking.crop.animal_track_features; for every
    video of the project, one-animal ones too, so the columns agree), with ``social``: the
    evidence between the animals (distance, approach, bearing of the nearest other one).

    Keyed by stream name: a video of several animals gives one entry per animal
    (``<key>#animal<i>``, :mod:`deg_core.data.streams`).
    """
    out, missing = {}, []
    several = track and any(project.n_animals(k) > 1 for k in project.video_keys())
    for key in keys:
        path = project.record(key).outputs_path
        streams = video_streams(project, key)
        try:
            got = {stream_name(s): read_features(path, feature_run, s[1]) for s in streams}
        except DegError:
            missing.append(key)
            continue
        per_animal: list[np.ndarray] = []
        if several:
            from deg_core.tracking.crop import (
                animal_track_features,  # lazy: crop imports the project store
            )

            per_animal = animal_track_features(project, key, social=social)
        for (name, feats), (_, animal) in zip(got.items(), streams, strict=True):
            if track:
                from deg_core.tracking.crop import (
                    track_features,  # lazy: crop imports the project store
                )

                tf = per_animal[animal or 0] if several else track_features(project, key)
                if not track_position:  # columns 0, 1: x, y as fractions of the frame
                    tf = tf[:, 2:]
                feats = np.concatenate([feats, tf], axis=1)
            if standardise:
                feats = standardise_columns(feats)
            out[name] = feats
    if missing:
        raise ProjectError(
            f"videos without features of run {feature_run}: {', '.join(missing)}; make them "
            f"with `deg infer features {project.root} --run {feature_run} --videos "
            f"{' '.join(missing)}`"
        )
    return out


def standardise_columns(x: np.ndarray) -> np.ndarray:
    """(T, D) -> (T, D) float32, each column minus its mean over the video, over its
    standard deviation (constant columns become 0). What a video's lighting, box and
    camera add to every frame's features cancels; how the frames differ stays."""
    mean = x.mean(axis=0, keepdims=True)
    std = x.std(axis=0, keepdims=True)
    return ((x - mean) / np.where(std > 1e-6, std, 1.0)).astype(np.float32)


@dataclass
class SequenceItem:
    features: np.ndarray  # (T, D) float32
    labels: np.ndarray  # (T, K) int8, -1 unlabelled


class WindowDataset(Dataset):
    """(video, start) windows -> {"features": (L, D), "labels": (L, K)} with padding."""

    def __init__(self, items: list[SequenceItem], length: int, stride: int | None = None):
        self.items, self.length = items, length
        stride = stride or length
        self.windows = [
            (v, s)
            for v, it in enumerate(items)
            for s in range(0, max(len(it.features) - length, 0) + stride, stride)
            if s < len(it.features)
        ]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        v, s = self.windows[i]
        it = self.items[v]
        feats = it.features[s : s + self.length]
        labels = it.labels[s : s + self.length]
        pad = self.length - len(feats)
        if pad:
            feats = np.concatenate([feats, np.zeros((pad, feats.shape[1]), np.float32)])
            labels = np.concatenate([labels, np.full((pad, labels.shape[1]), -1, np.int8)])
        return {
            "features": torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32)),
            "labels": torch.from_numpy(labels.astype(np.float32)),
        }
