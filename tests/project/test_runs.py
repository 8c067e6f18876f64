"""A trained run read back typed: RunInfo / load_run, and the one best-epoch rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

import deg_core.models.weights as weights
from deg_core.config import DegConfig
from deg_core.errors import ConfigError, ProjectError
from deg_core.fileio import save_yaml
from deg_core.models.weights import load_checkpoint
from deg_core.project.runs import BEST, best_epoch, load_run, read_metrics, run_settings


def test_best_epoch_is_the_lowest_finite_val_loss():
    records = [
        {"epoch": 0, "val_loss": float("nan")},
        {"epoch": 1, "val_loss": 0.5},
        {"epoch": 2, "val_loss": None},
        {"epoch": 3, "val_loss": math.inf},
        {"epoch": 4, "val_loss": "oops"},
        {"epoch": 5, "val_loss": 0.3},
        {"epoch": 6, "val_loss": 0.3},  # not strictly lower: best.pt kept epoch 5
        {"epoch": 7},
    ]
    assert best_epoch(records) == {"epoch": 5, "val_loss": 0.3}
    assert best_epoch(records[:1]) is None
    assert best_epoch([]) is None


def test_a_flow_run(flow_run):
    info = load_run(flow_run)
    assert (info.name, info.path, info.stage) == (flow_run.name, flow_run, "flow")
    assert info.arch == info.config.flow_generator.arch
    assert isinstance(info.config, DegConfig) and info.config == run_settings(flow_run)
    assert info.n_rgb == info.config.flow_generator.n_rgb == 5
    assert set(info.normalization or {}) >= {"mean", "std"}
    assert info.upstream is None and info.class_names is None and info.behaviors is None
    assert info.thresholds is None and info.min_lengths is None  # nothing fitted
    assert info.record["seed"] == 0


def test_a_feature_run_found_as_latest(tiny_project, flow_run, feature_run):
    info = load_run("latest", tiny_project.models_dir, "features")
    assert info.path == feature_run and info.stage == "features"
    assert info.upstream == flow_run.name and info.n_rgb == 5
    assert info.class_names == ["background", "groom", "rear"]
    assert info.behaviors == tiny_project.behaviors
    assert info.normalization == load_run(flow_run).normalization
    extra = load_checkpoint(feature_run / BEST)["extra"]
    assert info.extra["class_names"] == info.behaviors
    assert info.thresholds is not None and info.thresholds.dtype == np.float64
    np.testing.assert_array_equal(info.thresholds, extra["thresholds"])
    assert info.min_lengths is None  # sequence runs only
    assert load_run(feature_run.name, tiny_project.models_dir) == info


def test_the_best_record_is_the_epoch_best_pt_holds(feature_run):
    info = load_run(feature_run)
    ckpt = info.checkpoint()
    assert info.best is not None and info.best == best_epoch(read_metrics(feature_run))
    assert info.best["epoch"] + 1 == ckpt["epoch"]  # saved once the epoch is counted
    assert info.best["val_loss"] == ckpt["best_loss"]
    assert info.metrics() == read_metrics(feature_run)


def test_best_pt_is_read_only_when_needed(feature_run, monkeypatch):
    calls = []
    real = weights.load_checkpoint

    def counting(path, **kw):
        calls.append(kw.get("mmap", False))
        return real(path, **kw)

    monkeypatch.setattr(weights, "load_checkpoint", counting)
    info = load_run(feature_run)
    assert info.config.feature_extractor.arch == info.arch and calls == []
    assert info.thresholds is not None and info.thresholds.shape == (2,)
    assert info.min_lengths is None
    assert calls == [True]  # once, mapped: the weights stay on disk
    fresh = load_run(feature_run)
    assert "model" in fresh.checkpoint() and calls == [True, False]
    np.testing.assert_array_equal(fresh.thresholds, info.thresholds)  # no second read
    assert calls == [True, False]


def test_a_run_for_other_behaviours_is_refused(tmp_path, feature_run):
    run = tmp_path / "models" / feature_run.name
    run.mkdir(parents=True)
    (run / "config.yaml").write_bytes((feature_run / "config.yaml").read_bytes())
    assert load_run(run).behaviors == ["groom", "rear"]  # no project: nothing to compare
    assert load_run(run.name, run.parent, behaviors=["groom", "rear"]).path == run
    with pytest.raises(ProjectError, match=r"stale model.*retrain"):
        load_run(run.name, run.parent, behaviors=["groom", "rear", "dig"])


def test_runs_that_cannot_be_read(tmp_path):
    models = tmp_path / "models"
    with pytest.raises(ProjectError, match="no model run 'nope'"):
        load_run("nope", models)
    with pytest.raises(ProjectError, match="model run not found"):
        load_run(models / "nope")
    with pytest.raises(ProjectError, match="no trained sequence model yet"):
        load_run("latest", models, "sequence")
    with pytest.raises(ValueError, match="stage"):
        load_run("latest", models)
    run = models / "240101_120000_flow_TinyMotionNet"
    run.mkdir(parents=True)
    save_yaml(run / "config.yaml", {"project": {"class_names": ["background", "a"]}})
    with pytest.raises(ProjectError, match="no config section"):
        load_run(run)
    # a key an older deg wrote is dropped; a bad value is one line naming the file
    save_yaml(run / "config.yaml", {"stage": "flow", "config": {"flow_generator": {"x": 1}}})
    assert load_run(run).config == DegConfig()
    save_yaml(run / "config.yaml", {"config": {"flow_generator": {"n_rgb": "many"}}})
    with pytest.raises(ConfigError, match=r"flow_generator\.n_rgb") as err:
        load_run(run)
    assert "config.yaml" in str(err.value)
