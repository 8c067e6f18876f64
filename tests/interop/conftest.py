"""Fixtures: a one-video project (60 frames at 30 fps) and a fake sequence run's outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deg_core.fileio import save_yaml
from deg_core.models.weights import save_checkpoint
from deg_core.project.outputs import writing_group

DATA = Path(__file__).parent / "data"
RUN = "240101_120000_sequence_tcn"


@pytest.fixture
def video_project(project, make_video):
    """The ``project`` fixture (groom, rear) with video ``m1``: 60 frames at 30 fps."""
    project.add_videos([make_video("m1.mp4", n=60, fps=30)])
    return project


def fake_sequence_outputs(project, key: str, probs: np.ndarray, min_lengths=(1, 1)) -> str:
    """A finished sequence run (config.yaml, best.pt with thresholds 0.5 and ``min_lengths``)
    and its outputs group for ``key`` with ``probs`` (T, K); returns the run's name."""
    run = project.models_dir / RUN
    run.mkdir(parents=True, exist_ok=True)
    names = ["background", *project.behaviors]
    save_yaml(run / "config.yaml", {"stage": "sequence", "arch": "tcn", "class_names": names,
                                    "config": {}})  # fmt: skip
    k = len(project.behaviors)
    extra = {"thresholds": [0.5] * k, "min_lengths": list(min_lengths)}
    save_checkpoint(run / "best.pt", {"extra": extra})
    rec = project.record(key)
    with writing_group(rec.outputs_path, RUN, project.behaviors, np.full(k, 0.5)) as g:
        g.create_dataset("P", data=probs.astype(np.float32))
    return RUN
