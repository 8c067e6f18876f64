"""One way to build a preset (issue 25): the benchmarks build exactly what ``deg infer`` loads
for a preset — architectures, rgb_stride, frames per stack, input size, crop, precision."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from deg_core.config import resolve
from deg_core.infer.feature_predictor import FeaturePredictor
from deg_core.infer.preset import PresetShape, describe, preset_predictor
from deg_core.presets import AUTO, PRESETS

ROOT = Path(__file__).resolve().parents[2]
NORM = {"mean": [0.4, 0.4, 0.4], "std": [0.2, 0.2, 0.2]}


def _bench(name: str):
    """A benchmarks/ script as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", ROOT / "benchmarks" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _expected(preset: str) -> PresetShape:
    """What the preset's settings say, read from the resolved config, not from a model."""
    cfg = resolve({}, preset=preset)
    flow_arch = cfg.flow_generator.arch
    crop = cfg.augs.crop
    return PresetShape(
        flow_arch=flow_arch,
        feature_arch=cfg.feature_extractor.arch,
        rgb_stride=int(cfg.feature_extractor.rgb_stride),
        n_rgb=int(cfg.flow_generator.n_rgb),
        size=(int(cfg.augs.resize[0]), int(cfg.augs.resize[1])),
        crop=None if crop in (None, "none", "full") else str(crop),
        dtype="float32",  # compute.fp16 is off in a new project
    )


@pytest.mark.parametrize("preset", [*PRESETS, AUTO])
def test_a_preset_predictor_is_what_the_preset_says(preset):
    got = describe(preset_predictor(preset, 2))
    assert got == _expected(preset)


def test_lite_is_the_pairwise_half_resolution_animal_crop():
    got = describe(preset_predictor("lite", 2, size=(256, 256)))
    assert (got.flow_arch, got.rgb_stride, got.crop, got.size) == (
        "PairFlowNet",
        2,
        "animal",
        (256, 256),
    )


@pytest.mark.parametrize("preset", ["lite", "fast"])
def test_the_benchmarks_build_the_preset(preset):
    size = _expected(preset).size[0]
    want = describe(preset_predictor(preset, 3, size=(size, size)))
    features = _bench("bench_features").build(preset, torch.device("cpu"), size, NORM)
    pipeline = _bench("bench_pipeline").feature_model(preset, torch.device("cpu"), size)
    for fm in (features, pipeline):
        assert isinstance(fm, FeaturePredictor)
        assert describe(fm) == want
        assert fm.augs == preset_predictor(preset, 3, size=(size, size)).augs


def test_a_trained_run_loads_as_its_config_builds(tiny_project, feature_run):
    loaded = FeaturePredictor.load(tiny_project, feature_run.name)
    built = preset_predictor(loaded_config(tiny_project, feature_run), len(loaded.behaviors))
    assert describe(loaded) == describe(built)
    assert [n for n, _ in loaded.model.named_parameters()] == [
        n for n, _ in built.model.named_parameters()
    ]


def loaded_config(project, run: Path):
    from deg_core.project.runs import load_run

    return load_run(run.name, project.models_dir, "features").config


def test_a_loaded_run_infers_in_the_projects_precision(tiny_project, feature_run, monkeypatch):
    cfg = tiny_project.resolve_config(["compute.precision=bfloat16"])
    monkeypatch.setattr(tiny_project, "resolve_config", lambda *a, **k: cfg)
    loaded = FeaturePredictor.load(tiny_project, feature_run.name)
    assert loaded.precision == "bfloat16" and describe(loaded).dtype == "bfloat16"
