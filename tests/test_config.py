"""Typed config: defaults, validation, overrides, what project_config.yaml stores."""

from __future__ import annotations

import pytest

from deg_core.config import (
    RESUMABLE,
    DegConfig,
    build,
    check_resume,
    describe,
    leaves,
    parse_override,
    resolve,
    to_dict,
)
from deg_core.errors import ConfigError


def test_defaults_are_documented_and_typed():
    cfg = DegConfig()
    assert cfg.split.train_val_test == [0.8, 0.2, 0.0]
    assert cfg.train.loss_weight_exp == 0.25  # DEG paper's beta, not DEG's shipped 1.0
    rows = describe()
    assert all(meaning for _, _, meaning in rows), "every key has a meaning"
    assert ("sequence.lr", 1e-4) in [(k, d) for k, d, _ in rows]


def test_partial_dict_merges_over_defaults():
    cfg = build(DegConfig, {"sequence": {"lr": 1}, "project": {"name": "x"}})
    assert cfg.sequence.lr == 1.0 and isinstance(cfg.sequence.lr, float)  # int widens to float
    assert cfg.sequence.num_epochs == DegConfig().sequence.num_epochs


def test_unknown_key_names_the_dotted_key():
    with pytest.raises(ConfigError, match=r"unknown key 'train\.lrr'"):
        build(DegConfig, {"train": {"lrr": 1}})
    with pytest.raises(ConfigError, match=r"unknown key 'bogus'"):
        build(DegConfig, {"bogus": {}})


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"sequence": {"lr": "fast"}}, "sequence.lr"),
        ({"sequence": {"num_epochs": 2.5}}, "sequence.num_epochs"),
        ({"sequence": {"num_epochs": True}}, "sequence.num_epochs"),
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


def test_lite_and_auto_presets(monkeypatch):
    lite = resolve({}, preset="lite")
    assert lite.flow_generator.arch == "PairFlowNet"
    assert lite.feature_extractor.rgb_stride == 2
    assert lite.augs.crop == "animal" and lite.augs.resize == [128, 128]
    # the cpu preset's training budget, the same steps
    cpu = resolve({}, preset="cpu")
    assert lite.feature_extractor.steps_per_epoch == cpu.feature_extractor.steps_per_epoch
    import deg_core.config.resolution as config  # where resolve() looks _cuda_available up

    for cuda, device, arch in [
        (False, "auto", "PairFlowNet"),  # a laptop: lite
        (True, "auto", "TinyMotionNet"),  # a GPU box: the project's settings
        (True, "cpu", "PairFlowNet"),  # a GPU box told to train on its CPU
        (False, "cuda", "TinyMotionNet"),
    ]:
        monkeypatch.setattr(config, "_cuda_available", lambda cuda=cuda: cuda)
        cfg = resolve({}, [f"compute.device={device}"], preset="auto")
        assert cfg.flow_generator.arch == arch, (cuda, device)
    assert resolve({}, ["flow_generator.arch=MotionNet"], preset="auto").flow_generator.arch == (
        "MotionNet"  # overrides still win over the preset
    )


def test_parse_override_yaml_scalars():
    assert parse_override("sequence.num_epochs=3") == {"sequence": {"num_epochs": 3}}
    # YAML 1.1 leaves "1e-3" a string; float fields still take it
    assert build(DegConfig, parse_override("sequence.lr=1e-3")).sequence.lr == 0.001
    assert parse_override("compute.batch_size=auto") == {"compute": {"batch_size": "auto"}}
    assert parse_override("augs.resize=[256, 256]") == {"augs": {"resize": [256, 256]}}
    with pytest.raises(ConfigError):
        parse_override("no_equals_sign")


def test_retired_settings_say_where_to_go():
    with pytest.raises(ConfigError, match=r"'train\.lr' is not a setting any more: .*sequence\.lr"):
        resolve({}, ["train.lr=0.5"])
    with pytest.raises(ConfigError, match=r"train\.num_epochs.*flow_generator\.num_epochs"):
        build(DegConfig, {"train": {"num_epochs": 3}})
    ignored: list[str] = []  # a DeepEthogram project's config: noted, not refused
    build(DegConfig, {"train": {"lr": 1e-4, "num_epochs": 20}}, unknown=ignored)
    assert ignored == ["train.lr", "train.num_epochs"]


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("flow_generator.steps_per_epoch=0", "flow_generator.steps_per_epoch must be >= 1, got 0"),
        ("feature_extractor.val_steps=-3", "feature_extractor.val_steps must be >= 1, got -3"),
        ("sequence.num_epochs=0", "sequence.num_epochs must be >= 1, got 0"),
        ("feature_extractor.batch_size=0", "feature_extractor.batch_size must be >= 1, got 0"),
        ("compute.batch_size=-8", "compute.batch_size must be >= 1, got -8"),
        ("sequence.lr=0", "sequence.lr must be > 0, got 0.0"),
        ("flow_generator.lr=-1e-4", "flow_generator.lr must be > 0, got -0.0001"),
        ("flow_generator.lr=.nan", "flow_generator.lr must be > 0, got nan"),
        ("augs.UD=2", "augs.UD must be in [0, 1], got 2.0"),
        ("augs.hue=0.7", "augs.hue must be in [0, 0.5], got 0.7"),
        ("sequence.min_bout_fraction=1.5", "sequence.min_bout_fraction must be in [0, 1]"),
        ("feature_extractor.dropout_p=1", "feature_extractor.dropout_p must be in [0, 1), got 1.0"),
        ("sequence.label_smoothing=0.5", "sequence.label_smoothing must be in [0, 0.5)"),
        ("train.reduction_factor=1", "train.reduction_factor must be in (0, 1), got 1.0"),
        ("split.train_val_test=[0.5, 0.5]", "split.train_val_test must have 3 values"),
        ("split.train_val_test=[0, 0, 0]", "split.train_val_test must have a fraction > 0"),
        ("augs.resize=[64, 16]", r"augs.resize[1] must be >= 32, got 16"),
        ("flow_generator.smooth_weights=[0.1, -1, 0]", "flow_generator.smooth_weights[1]"),
        ("flow_generator.n_rgb=1", "flow_generator.n_rgb must be >= 2, got 1"),
        ("sequence.num_layers=0", "sequence.num_layers must be >= 1, got 0"),
        ("compute.device=gpu0", "compute.device must be auto, cpu, cuda, cuda:N or mps"),
        ("compute.device=cuda:x", "got 'cuda:x'"),
    ],
)
def test_out_of_range_values_name_the_key(override, says):
    with pytest.raises(ConfigError) as e:
        resolve({}, [override])
    assert says in str(e.value) and "\n" not in str(e.value)


def test_every_default_is_in_range_and_the_range_is_documented():
    for override in ("compute.device=cuda:1", "compute.device=mps", "sequence.num_layers=null"):
        resolve({}, [override])
    resolve({}, ["compute.batch_size=auto", "augs.crop_size=[32, 48]", "train.patience=0"])
    built = build(DegConfig, to_dict(DegConfig()))  # every default passes its own check
    assert built == DegConfig()
    meaning = dict((k, m) for k, _, m in describe())
    assert meaning["flow_generator.steps_per_epoch"].endswith("(range: >= 1)")
    assert meaning["sequence.lr"].endswith("(range: > 0)")
    assert meaning["augs.LR"].endswith("(range: in [0, 1])")
    assert meaning["augs.resize"].endswith("(range: 2 values, each >= 32)")
    assert "cuda:N" in meaning["compute.device"]


def test_a_bad_value_in_project_config_is_refused_with_the_file(project, capsys):
    from deg_core.cli import main
    from deg_core.project.project import Project

    path = project.config_path
    path.write_text(path.read_text() + "sequence:\n  lr: 0\n")
    with pytest.raises(ConfigError, match=r"project_config\.yaml: sequence\.lr must be > 0"):
        Project.open(project.root)
    assert main(["train", "flow", str(project.root)]) == 1
    err = capsys.readouterr().err.strip()
    assert "sequence.lr must be > 0" in err and "\n" not in err
    assert not project.models_dir.exists() or not any(project.models_dir.iterdir())


def test_resume_check_names_the_key_and_both_values():
    assert set(leaves(DegConfig())) >= RESUMABLE  # no stale names
    saved = resolve({}, ["flow_generator.steps_per_epoch=3", "flow_generator.num_epochs=2"])
    # more epochs and another device continue the same run
    check_resume(
        saved, resolve({}, ["flow_generator.steps_per_epoch=3", "compute.device=cpu"]), "r"
    )
    with pytest.raises(ConfigError) as e:
        check_resume(saved, resolve({}), "r")
    msg = str(e.value)
    assert "flow_generator.steps_per_epoch=1000" in msg and "steps_per_epoch=3" in msg
    assert "\n" not in msg
