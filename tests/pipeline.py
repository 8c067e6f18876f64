"""A tiny trained pipeline shared by the stage tests (session-scoped: trained once)."""

from __future__ import annotations

import numpy as np
import pytest

from deg_core.labels.labels import Labels
from deg_core.project.project import Project
from deg_core.train.features import train_features
from deg_core.train.flow import train_flow
from tests.conftest import moving_square_frames

NO_AUGS = [
    "augs.LR=0",
    "augs.degrees=0",
    "augs.brightness=0",
    "augs.contrast=0",
    "augs.saturation=0",
    "augs.hue=0",
    "augs.grayscale=0",
]
SEED = 0
TINY = [
    "augs.resize=[64, 64]",
    "compute.num_workers=0",
    "flow_generator.n_rgb=5",
    "flow_generator.batch_size=2",
    "flow_generator.val_steps=2",
    "feature_extractor.batch_size=4",
    "feature_extractor.val_steps=4",
    "feature_extractor.weights=scratch",
    "flow_generator.weights=scratch",
]


def square_project(root, name: str, n_frames: int, size: int, splits: list[str]) -> Project:
    """A project with behaviours groom and rear and one moving-square video per split entry
    (video i drawn with seed i, added in order), labels left to the caller."""
    from deg_core.video import write_video

    project = Project.create(root, name, ["groom", "rear"])
    for i, split in enumerate(splits):
        path = root / f"v{i}.mp4"
        write_video(path, moving_square_frames(n_frames, size, size, seed=i), fps=30)
        project.add_videos([path], split=split)
    return project


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory):
    """Three 48-frame videos; groom = the square in the top half, rear = in the left half."""
    root = tmp_path_factory.mktemp("train")
    project = square_project(root, "tiny", 48, 64, ["train", "train", "val"])
    for i, key in enumerate(project.video_keys()):
        lab = Labels.empty(48, project.behaviors)
        t = np.arange(48)  # the square's position, as moving_square_frames draws it
        lab.array[:, 0] = ((3 * t) % 54 < 27).astype(np.int8)
        lab.array[:, 1] = ((5 * t + 7 * i) % 54 < 27).astype(np.int8)
        lab.array[40:, 1] = -1  # partially labelled
        project.save_labels(key, lab)
    return project


@pytest.fixture(scope="session")
def flow_run(tiny_project):
    cfg = tiny_project.resolve_config(
        [
            *TINY,
            "flow_generator.num_epochs=3",
            "flow_generator.steps_per_epoch=4",
        ]
    )
    return train_flow(tiny_project, cfg, device="cpu", progress=False)


@pytest.fixture(scope="session")
def feature_run(tiny_project, flow_run):
    cfg = tiny_project.resolve_config(
        [
            *TINY,
            *NO_AUGS,
            "feature_extractor.dropout_p=0",
            "feature_extractor.num_epochs=4",
            "feature_extractor.steps_per_epoch=8",
            "feature_extractor.batch_size=8",
            "feature_extractor.lr=2e-3",
        ]
    )
    return train_features(
        tiny_project, cfg, flow_run=flow_run.name, device="cpu", progress=False, seed=SEED
    )
