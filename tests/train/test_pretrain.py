"""Self-supervised pretraining (``deg train pretrain``): VICReg on every frame of every
video, and the feature stage starting from its run (weights selfsup, or auto)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import deg_core.train.features as features_module
from deg_core import config as C
from deg_core.cli import main
from deg_core.data.clips import ClipAugment, ClipDataset, all_frames
from deg_core.data.views import TwoViews
from deg_core.errors import ProjectError
from deg_core.fileio import load_yaml
from deg_core.labels.labels import Labels
from deg_core.models.feature import HiddenTwoStream
from deg_core.models.weights import load_checkpoint
from deg_core.project.runs import BEST, RUN_CONFIG, load_run, read_metrics, resolve_run
from deg_core.train.common import video_items
from deg_core.train.features import load_flow_run, train_features
from deg_core.train.flow import train_flow
from deg_core.train.pretrain import train_pretrain
from deg_core.train.pretrained import init_feature_extractor
from deg_core.train.vicreg import vicreg_terms
from tests.pipeline import TINY, square_project
from tests.train.test_stage_reads import PROJECT_OWN, recording_reads

SMALL = [*TINY, "augs.resize=[32, 32]"]  # this module's own project: a quarter of TINY's pixels
PRETRAIN = [
    "pretrain.num_epochs=3",
    "pretrain.steps_per_epoch=3",
    "pretrain.batch_size=8",
    "pretrain.val_steps=1",
    "pretrain.max_shift=2",
]
FEATURES = ["feature_extractor.num_epochs=1", "feature_extractor.steps_per_epoch=1"]
CONV = "spatial.conv1.weight"  # a backbone tensor the feature stage trains


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Two labelled videos (train, val) and one never labelled (train)."""
    root = tmp_path_factory.mktemp("pretrain")
    project = square_project(root, "pre", 32, 64, ["train", "val", "train"])
    for key in project.video_keys()[:2]:
        lab = Labels.empty(32, project.behaviors)
        t = np.arange(32)
        lab.array[:, 0] = ((3 * t) % 54 < 27).astype(np.int8)
        lab.array[:, 1] = (t % 8 < 4).astype(np.int8)
        project.save_labels(key, lab)
    return project


@pytest.fixture(scope="module")
def flow(project):
    cfg = project.resolve_config(
        [*SMALL, "flow_generator.num_epochs=1", "flow_generator.steps_per_epoch=2"]
    )
    return train_flow(project, cfg, device="cpu", progress=False)


@pytest.fixture(scope="module")
def pretrained(project, flow):
    """(run folder, the settings the pretrain stage read)."""
    cfg = project.resolve_config([*SMALL, *PRETRAIN])
    with recording_reads() as seen:
        run = train_pretrain(project, cfg, flow_run=flow.name, device="cpu", progress=False)
    return run, set(seen)


def test_vicreg_terms_see_collapse_and_agreement():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 32, generator=g)
    spread = vicreg_terms(z, z)
    assert float(spread["invariance"]) == 0.0 and float(spread["variance"]) < 0.1
    collapsed = vicreg_terms(torch.zeros(64, 32), torch.zeros(64, 32))
    assert float(collapsed["variance"]) > 0.9  # every dimension's std is 0: the hinge's max
    tied = z[:, :1].repeat(1, 32)  # 32 copies of one dimension: all covariances ~1
    assert float(vicreg_terms(tied, tied)["covariance"]) > 10 * float(spread["covariance"])
    with pytest.raises(ValueError, match="2 samples"):
        vicreg_terms(z[:1], z[:1])


def test_two_views_are_fixed_by_their_seed_and_stay_near(project):
    items = video_items(project, project.video_keys(), with_labels=False)
    augment = ClipAugment.from_config(project.resolve_config(SMALL).augs)
    clips = ClipDataset(items, all_frames(items), 5, (32, 32), [0.5] * 3, [0.25] * 3, augment)
    before = torch.get_rng_state()
    fixed = TwoViews(clips, max_shift=3, seed=1)
    first, again = fixed[7], fixed[7]
    assert torch.equal(torch.get_rng_state(), before)  # a private stream
    assert torch.equal(first["view1"], again["view1"]) and first["shift"] == again["shift"]
    assert torch.equal(first["view2"], again["view2"])
    same = TwoViews(clips, max_shift=0, seed=1)[7]
    assert same["shift"] == 0 and not torch.equal(same["view1"], same["view2"])  # two draws
    shifts = [TwoViews(clips, max_shift=3)[i]["shift"] for i in range(3, 60)]
    assert all(abs(s) <= 3 for s in shifts) and len(set(shifts)) > 1


def test_pretraining_lowers_its_loss_on_every_video(project, flow, pretrained):
    run, _ = pretrained
    history = read_metrics(run)
    assert [r["epoch"] for r in history] == [0, 1, 2]
    assert {"invariance", "variance", "covariance"} <= set(history[0])
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_loss"] < history[0]["val_loss"]  # batch statistics: no BN lag
    best = load_checkpoint(run / BEST)
    assert best["best_loss"] == min(r["val_loss"] for r in history)
    info = load_run("latest", project.models_dir, "pretrain")
    assert info.path == run and "_pretrain_resnet18" in run.name
    assert (info.stage, info.upstream, info.n_rgb) == ("pretrain", flow.name, 5)
    assert info.class_names is None  # label-free: never stale
    assert load_yaml(run / RUN_CONFIG)["videos"] == project.video_keys()  # the unlabelled too


def test_pretraining_reads_only_what_it_declares(pretrained):
    _, seen = pretrained
    declared = set(C.stage_keys("pretrain"))
    assert {k for k in seen - declared if not k.startswith(PROJECT_OWN)} == set()
    assert {"pretrain.max_shift", "feature_extractor.rgb_stride"} <= seen


def test_best_checkpoint_loads_into_the_feature_stage_model(project, flow, pretrained):
    run, _ = pretrained
    cfg = project.resolve_config(SMALL)
    flow_gen, _ = load_flow_run(project, flow.name)
    model = HiddenTwoStream.from_config(cfg.feature_extractor, flow_gen, 2, 5)
    model.load_state_dict(load_checkpoint(run / BEST)["model"])  # strict: the same keys
    # other behaviours: the heads keep their init, the streams load, the flow generator stays
    other = HiddenTwoStream.from_config(cfg.feature_extractor, flow_gen, 5, 5)
    head = other.spatial_head.weight.detach().clone()
    used = init_feature_extractor(
        other, "resnet18", "selfsup", project.models_dir / "pretrained", runs_dir=project.models_dir
    )
    assert used == f"pretrain run {run.name}"
    assert torch.equal(other.spatial_head.weight, head)
    assert torch.equal(other.state_dict()[CONV], model.state_dict()[CONV])


@pytest.mark.parametrize("weights", ["selfsup", "auto"])
def test_feature_stage_starts_from_the_pretrain_run(
    project, flow, pretrained, monkeypatch, weights
):
    run, _ = pretrained
    started = {}

    def spy(model, *args, **kwargs):
        used = init_feature_extractor(model, *args, **kwargs)
        started.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return used

    monkeypatch.setattr(features_module, "init_feature_extractor", spy)
    cfg = project.resolve_config([*SMALL, *FEATURES, f"feature_extractor.weights={weights}"])
    feats = train_features(project, cfg, flow_run=flow.name, device="cpu", progress=False)
    source = load_checkpoint(run / BEST)["model"]
    for key in (CONV, "flow.conv1.weight", "flow.layer4.1.bn2.running_var"):
        assert torch.equal(started[key], source[key]), key
    assert load_yaml(feats / RUN_CONFIG)["weights"] == f"pretrain run {run.name}"


def test_selfsup_without_a_pretrain_run_names_the_command(tiny_project, flow_run, capsys):
    flow_gen, _ = load_flow_run(tiny_project, flow_run.name)
    model = HiddenTwoStream.build("resnet18", flow_gen, 2, 5)
    with pytest.raises(ProjectError, match="deg train pretrain") as err:
        init_feature_extractor(
            model,
            "resnet18",
            "selfsup",
            tiny_project.models_dir / "pretrained",
            runs_dir=tiny_project.models_dir,
        )
    assert "\n" not in str(err.value)
    args = ["train", "features", str(tiny_project.root), "--device", "cpu"]
    args += [f"--set={s}" for s in [*TINY, "feature_extractor.weights=selfsup"]]
    assert main(args) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "deg train pretrain" in lines[0]


def test_deg_train_pretrain_on_the_command_line(project, flow, pretrained, capsys):
    args = ["train", "pretrain", str(project.root), "--device", "cpu", "--flow-run", flow.name]
    one = ["num_epochs=1", "steps_per_epoch=1", "batch_size=4", "val_steps=1"]
    sets = [*SMALL, *(f"pretrain.{s}" for s in one)]
    assert main([*args, *(f"--set={s}" for s in sets)]) == 0
    out = capsys.readouterr().out
    newest = resolve_run(project.models_dir, "pretrain")
    assert newest != pretrained[0] and f"trained {newest.name}" in out
    assert "best epoch 1: val_loss" in out
