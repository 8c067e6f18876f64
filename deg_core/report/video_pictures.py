"""Pictures of one video for the notebooks: its ethogram (labels above predictions, per
animal in a video of several), a run's thresholded probabilities, example frames."""

from __future__ import annotations

import numpy as np

from deg_core.labels.labels import read_labels
from deg_core.project.outputs import read_group
from deg_core.project.project import Project
from deg_core.project.records import animal_name
from deg_core.report import charts as plots
from deg_core.report.charts import Png

__all__ = ["ethogram", "example_frames", "model_ethogram"]


def ethogram(
    project: Project, key: str, title: str | None = None, *, animal: int | None = None
) -> Png:
    """A video's labels above its predictions (the predictions CSV), when there are some.

    A video of several animals: every animal's labels (grey where none) and predictions,
    rows named by animal (``animal0 labels``, ``animal0 predictions``, ...); ``animal``: that
    animal's rows only."""
    rec = project.record(key)
    n = rec.n_frames()
    rows = []
    animals = _animals(project, key, animal)
    if animals is None:  # one animal: DeepEthogram's files
        if rec.labels_path.exists():
            rows.append(("labels", project.labels(key).array))
        if rec.predictions_path.exists():
            pred = read_labels(rec.predictions_path, project.behaviors, n).array
            rows.append(("predictions", pred))
    for a in animals or []:
        rows.append((f"{animal_name(a)} labels", project.labels(key, animal=a).array))
        path = rec.animal_predictions_path(a)
        if path.exists():
            pred = read_labels(path, project.behaviors, n).array
            rows.append((f"{animal_name(a)} predictions", pred))
    if not rows:
        rows.append(("labels", np.full((n, len(project.behaviors)), -1, np.int8)))
    return plots.ethogram_chart(rows, project.behaviors, title=title or key)


def _animals(project: Project, key: str, animal: int | None) -> list[int] | None:
    """The animals to draw of video ``key``: None on a one-animal video, else ``[animal]``
    or every animal (``animal`` checked: a one-line ProjectError if not the video's)."""
    chosen = project.check_animal(key, animal) if animal is not None else None
    n = project.n_animals(key)
    if n == 1:
        return None
    return [chosen] if chosen is not None else list(range(n))


def example_frames(project: Project, key: str, n: int = 6, size: int = 128) -> Png:
    """``n`` evenly spaced frames of a video, titled with their frame numbers."""
    from deg_core.video import open_video

    rec = project.record(key)
    total = rec.n_frames()
    idx = np.unique(np.linspace(0, total - 1, n).round().astype(int))
    with open_video(rec.video) as reader:  # type: ignore[arg-type]
        frames = reader.get_batch(idx)
    return plots.image_grid(list(frames), [f"{key} #{i}" for i in idx], columns=n, cell=size)


def model_ethogram(
    project: Project, key: str, run: str, title: str | None = None, *, animal: int | None = None
) -> Png:
    """A video's labels above a run's thresholded probabilities (before any bout cleaning).

    A video of several animals: each animal's labels (where it has some) above its own
    probabilities over its own thresholds, rows named by animal; ``animal``: that one only."""
    rec = project.record(key)
    animals = _animals(project, key, animal)
    rows = []
    for a in [None] if animals is None else animals:
        g = read_group(rec.outputs_path, run, ("P", "thresholds"), animal=a)
        pred = (g["P"] > np.asarray(g["thresholds"])[None]).astype(np.int8)
        name = "" if a is None else f"{animal_name(a)} "
        if project.label_path(key, a).exists():
            rows.append((f"{name}labels", project.labels(key, animal=a).array))
        rows.append((f"{name}P > threshold ({run})", pred))
    return plots.ethogram_chart(rows, project.behaviors, title=title or key)
