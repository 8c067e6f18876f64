"""A sequence run's stored outputs of one video, read back for export.

``deg infer sequence`` writes a group named after the run into ``<key>_outputs.h5``
(``P`` (T, K), ``thresholds`` (K,), ``class_names`` (K,)); the ethogram is those
probabilities thresholded and cleaned with the run's minimum bout lengths, exactly as
inference computes ``<key>_predictions.csv``. A video of several animals holds them per
animal (``<run>/animal<i>``, :mod:`deg_core.project.outputs`): read with ``animal=i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deg_core.errors import ProjectError
from deg_core.evaluation.postprocess import postprocess
from deg_core.project.outputs import read_group
from deg_core.project.project import Project
from deg_core.project.runs import load_run


@dataclass(frozen=True)
class Predicted:
    """One video's predictions: ``probs`` (T, K) float32 and ``ethogram`` (T, K) int8 0/1
    over ``behaviors`` (K), from the sequence run ``run``."""

    run: str
    behaviors: list[str]
    probs: np.ndarray
    ethogram: np.ndarray
    thresholds: np.ndarray  # (K,)


def predicted(
    project: Project, key: str, run: str = "latest", animal: int | None = None
) -> Predicted:
    """The sequence run's probabilities and cleaned ethogram of video ``key`` (of animal
    ``animal`` in a video of several: its own probabilities and thresholds).

    Raises a one-line ProjectError naming the outputs file (and the command that makes
    them) when the video has no outputs of that run.
    """
    info = load_run(run, project.models_dir, "sequence", behaviors=project.behaviors)
    rec = project.record(key)
    if not rec.outputs_path.exists():
        raise ProjectError(
            f"no predictions of {info.name} for {key!r}: run "
            f"`deg infer sequence {project.root} --run {info.name} --videos {key}`",
            rec.outputs_path,
        )
    names_read = ("P", "thresholds", "class_names")
    group = read_group(rec.outputs_path, info.name, names_read, animal=animal)
    probs = np.asarray(group["P"], dtype=np.float32)
    names = [str(n) for n in group["class_names"]]
    if names != project.behaviors or probs.shape[1:] != (len(names),):
        raise ProjectError(
            f"outputs of {info.name} are for behaviours {names}, the project has "
            f"{project.behaviors}",
            rec.outputs_path,
        )
    thresholds = np.asarray(group["thresholds"], dtype=np.float32)
    min_lengths = info.min_lengths
    if min_lengths is None:  # a run that stored none: no bout cleaning
        min_lengths = np.ones(len(names), dtype=int)
    ethogram = postprocess(probs, thresholds, min_lengths).astype(np.int8)
    return Predicted(info.name, names, probs, ethogram, thresholds)
