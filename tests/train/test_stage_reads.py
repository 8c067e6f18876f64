"""Each stage declares the settings it reads (config.STAGE_READS); a training must read
nothing else, or `deg retrain` would miss a change and `deg config --stage` would hide it."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from deg_core import config as C
from deg_core.labels.labels import Labels
from tests.pipeline import TINY, square_project

pytestmark = pytest.mark.slow  # trains three tiny stages under a recorder

PROJECT_OWN = ("project.", "split.")  # labels and splits enter the fingerprint separately


@contextlib.contextmanager
def recording_reads() -> Iterator[set[str]]:
    """Record ``section.key`` for every config field read by deg_core code (outside config)."""
    seen: set[str] = set()
    defaults = C.DegConfig()
    patched = []
    for section in dataclasses.fields(C.DegConfig):
        cls = type(getattr(defaults, section.name))
        names = {f.name for f in dataclasses.fields(cls)}
        original = cls.__getattribute__

        def read(self, name, _orig=original, _names=names, _section=section.name):
            if name in _names:
                caller = sys._getframe(1).f_globals.get("__name__", "")
                if caller.startswith("deg_core") and not caller.startswith("deg_core.config"):
                    seen.add(f"{_section}.{name}")
            return _orig(self, name)

        cls.__getattribute__ = read  # type: ignore[method-assign]
        patched.append((cls, original))
    try:
        yield seen
    finally:
        for cls, original in patched:
            cls.__getattribute__ = original  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def reads(tmp_path_factory) -> dict[str, set[str]]:
    from deg_core.infer.features import infer_features
    from deg_core.train.features import train_features
    from deg_core.train.flow import train_flow
    from deg_core.train.sequence import train_sequence

    project = square_project(tmp_path_factory.mktemp("reads"), "r", 24, 64, ["train", "val"])
    for key in project.video_keys():
        lab = Labels.empty(24, project.behaviors)
        lab.array[:, 0] = np.arange(24) % 2
        lab.array[:, 1] = 0
        project.save_labels(key, lab)
    short = [
        f"{s}.{k}=1"
        for s in ("flow_generator", "feature_extractor", "sequence")
        for k in ("num_epochs", "steps_per_epoch")
    ]
    cfg = project.resolve_config(
        [*TINY, *short, "augs.crop=animal", "sequence.track_features=true"]
    )
    out = {}
    with recording_reads() as seen:
        flow = train_flow(project, cfg, device="cpu", progress=False)
    out["flow"] = set(seen)
    with recording_reads() as seen:
        feats = train_features(project, cfg, flow_run=flow.name, device="cpu", progress=False)
    out["features"] = set(seen)
    infer_features(project, feats.name, device="cpu", progress=False)
    with recording_reads() as seen:
        train_sequence(project, cfg, feature_run=feats.name, device="cpu", progress=False)
    out["sequence"] = set(seen)
    return out


@pytest.mark.parametrize("stage", ["flow", "features", "sequence"])
def test_a_stage_reads_only_what_it_declares(reads, stage):
    declared = set(C.stage_keys(stage))
    undeclared = {k for k in reads[stage] - declared if not k.startswith(PROJECT_OWN)}
    assert undeclared == set(), f"{stage} reads settings STAGE_READS does not list"
    assert reads[stage] & declared, "the recorder saw nothing"


def test_every_setting_is_read_by_some_stage_or_elsewhere():
    """No setting nothing reads: each key is a stage's, the project's, or read at run time
    outside training (inference, the demo, the CLI)."""
    elsewhere = {"compute.batch_size", "compute.fp16", "compute.precision", "compute.device"}
    staged = set().union(*(C.stage_keys(s) for s in C.STAGE_READS))
    for key, _, _ in C.describe():
        assert key in staged or key.startswith(PROJECT_OWN) or key in elsewhere, key
