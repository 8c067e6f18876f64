"""Typed config: defaults, validation, overrides, what project_config.yaml stores."""

from __future__ import annotations

import pytest

from deg_core.config import (
    DegConfig,
    build,
    describe,
    diff_from_defaults,
    load_config,
    parse_override,
    resolve,
)
from deg_core.errors import ConfigError


def test_defaults_are_documented_and_typed():
    cfg = DegConfig()
    assert cfg.split.train_val_test == [0.8, 0.2, 0.0]
    assert cfg.train.loss_weight_exp == 0.25  # DEG paper's beta, not DEG's shipped 1.0
    rows = describe()
    assert all(meaning for _, _, meaning in rows), "every key has a meaning"
    assert ("train.lr", 1e-4) in [(k, d) for k, d, _ in rows]


def test_partial_dict_merges_over_defaults():
    cfg = build(DegConfig, {"train": {"lr": 1}, "project": {"name": "x"}})
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)  # int widens to float
    assert cfg.train.num_epochs == DegConfig().train.num_epochs
    assert diff_from_defaults(cfg) == {"project": {"name": "x"}, "train": {"lr": 1.0}}


def test_unknown_key_names_the_dotted_key():
    with pytest.raises(ConfigError, match=r"unknown key 'train\.lrr'"):
        build(DegConfig, {"train": {"lrr": 1}})
    with pytest.raises(ConfigError, match=r"unknown key 'bogus'"):
        build(DegConfig, {"bogus": {}})


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"train": {"lr": "fast"}}, "train.lr"),
        ({"train": {"num_epochs": 2.5}}, "train.num_epochs"),
        ({"train": {"num_epochs": True}}, "train.num_epochs"),
        ({"compute": {"batch_size": "big"}}, "compute.batch_size"),
        ({"project": {"class_names": "a,b"}}, "project.class_names"),
        ({"augs": {"resize": [224, "x"]}}, r"augs.resize\[1\]"),
        ({"train": 3}, "train"),
    ],
)
def test_wrong_type_names_the_key(data, key):
    with pytest.raises(ConfigError, match=key):
        build(DegConfig, data)


def test_deg_only_keys_are_accepted_and_ignored():
    cfg = build(
        DegConfig,
        {
            "project": {"path": "/abs/x_deepethogram", "config_file": "/abs/c.yaml"},
            "augs": {"normalization": {"N": 3, "mean": [0.1] * 3, "std": [0.2] * 3}},
            "compute": {"gpu_id": 0, "distributed": False},
        },
    )
    assert cfg.compute.batch_size == "auto"


def test_lenient_mode_collects_unknown_keys():
    unknown: list[str] = []
    build(DegConfig, {"tune": {"num_trials": 5}, "train": {"x": 1}}, unknown=unknown)
    assert unknown == ["tune", "train.x"]


def test_presets_and_resolve():
    cfg = resolve({"project": {"name": "x"}}, ["feature_extractor.lr=0.01"], preset="medium")
    assert cfg.flow_generator.arch == "MotionNet"
    assert cfg.feature_extractor.arch == "resnet50"
    assert cfg.feature_extractor.lr == 0.01
    assert resolve({}, preset="deg_s").feature_extractor.arch == "resnet3d_34"
    with pytest.raises(ConfigError, match=r"unknown preset .*cpu"):
        resolve({}, preset="turbo")
    # cpu: the networks on the animal crop at 64x64, with the track and smoothed thresholds;
    # a --set still wins over it
    cpu = resolve({}, ["augs.crop=full"], preset="cpu")
    assert (cpu.augs.resize, cpu.augs.crop) == ([64, 64], "full")
    assert cpu.sequence.track_features and cpu.train.threshold_smoothing == 1.0
    assert resolve({}, preset="cpu").augs.crop == "animal"
    with pytest.raises(ConfigError, match=r"feature_extractor\.fusion"):
        resolve({}, ["feature_extractor.fusion=sum"])


def test_parse_override_yaml_scalars():
    assert parse_override("train.num_epochs=3") == {"train": {"num_epochs": 3}}
    # YAML 1.1 leaves "1e-3" a string; float fields still take it
    assert build(DegConfig, parse_override("train.lr=1e-3")).train.lr == 0.001
    assert parse_override("compute.batch_size=auto") == {"compute": {"batch_size": "auto"}}
    assert parse_override("augs.resize=[256, 256]") == {"augs": {"resize": [256, 256]}}
    with pytest.raises(ConfigError):
        parse_override("no_equals_sign")


def test_load_config_errors_name_the_file(tmp_path):
    bad = tmp_path / "project_config.yaml"
    bad.write_text("project:\n  name: [unclosed\n")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    msg = str(e.value)
    assert str(bad) in msg and "malformed" in msg and "\n" not in msg

    bad.write_text("train:\n  lrr: 1\n")
    with pytest.raises(ConfigError, match=r"train\.lrr") as e:
        load_config(bad)
    assert str(bad) in str(e.value)

    good = tmp_path / "ok.yaml"
    good.write_text("train:\n  lr: 0.01\n")
    assert load_config(good, overrides=["train.lr=0.5"]).train.lr == 0.5
