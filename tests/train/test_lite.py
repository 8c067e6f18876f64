"""The lite preset through the public pipeline: PairFlowNet trains with the photometric loss,
the feature extractor trains on its flows with the half-resolution spatial stream, and
inference streams each frame pair once yet writes what the model gives on each stack."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import torch

from deg_core.infer.features import FeaturePredictor, infer_features
from deg_core.project.project import Project
from deg_core.project.runs import load_run, read_run_config
from deg_core.train.features import train_features
from deg_core.train.flow import train_flow
from deg_core.video import open_video
from tests.pipeline import TINY

LITE = [
    *TINY,
    "augs.crop=full",  # the tiny squares need no crop; the networks are what is tested
    "flow_generator.num_epochs=1",
    "flow_generator.steps_per_epoch=3",
    "feature_extractor.num_epochs=1",
    "feature_extractor.steps_per_epoch=3",
]


@pytest.mark.slow
def test_lite_preset_trains_and_infers_end_to_end(tiny_project, tmp_path):
    # a copy: runs trained here must not become the shared project's "latest"
    root = tmp_path / tiny_project.root.name
    shutil.copytree(tiny_project.root, root, ignore=shutil.ignore_patterns("models", "*.h5"))
    tiny_project = Project.open(root)
    cfg = tiny_project.resolve_config(LITE, preset="lite")
    assert cfg.augs.resize == [64, 64]  # TINY's size over the preset's
    flow = train_flow(tiny_project, cfg, device="cpu", progress=False)
    assert load_run(flow.name, tiny_project.models_dir).arch == "PairFlowNet"
    features = train_features(tiny_project, cfg, flow_run=flow.name, device="cpu", progress=False)
    fm = FeaturePredictor.load(tiny_project, features.name, device="cpu")
    assert fm.model.flow_generator.arch == "PairFlowNet" and fm.model.rgb_stride == 2

    infer_features(tiny_project, features.name, device="cpu", progress=False, batch_size=5)
    key = tiny_project.video_keys()[0]
    with h5py.File(tiny_project.record(key).outputs_path, "r") as f:
        logits = f[features.name]["logits"][:]
    assert logits.shape == (48, 2) and np.isfinite(logits).all()
    # frame 0 and 47 (ends repeated) and a middle frame equal the model on their own stack
    with open_video(tiny_project.record(key).video) as r:
        frames = np.concatenate([c for _, c in r.iter_chunks(64, size=fm.size)])
    half = fm.n_rgb // 2
    padded = np.concatenate([frames[:1].repeat(half, 0), frames, frames[-1:].repeat(half, 0)])
    for t in (0, 23, 47):
        x = torch.from_numpy(padded[t : t + fm.n_rgb]).permute(0, 3, 1, 2).float() / 255
        x = ((x - fm.mean) / fm.std).reshape(1, -1, *fm.size)
        with torch.no_grad():
            want = fm.model(x)["logits"][0].numpy()
        np.testing.assert_allclose(logits[t], want, rtol=1e-4, atol=1e-4, err_msg=f"frame {t}")


@pytest.mark.slow
@pytest.mark.parametrize("flow_cache", [True, False])
def test_feature_training_on_cached_flows(tiny_project, tmp_path, flow_cache):
    root = tmp_path / tiny_project.root.name
    shutil.copytree(tiny_project.root, root, ignore=shutil.ignore_patterns("models", "*.h5"))
    project = Project.open(root)
    cfg = project.resolve_config(
        [*LITE, f"feature_extractor.flow_cache={flow_cache}", "compute.num_workers=1"],
        preset="lite",
    )
    flow = train_flow(project, cfg, device="cpu", progress=False)
    run = train_features(project, cfg, flow_run=flow.name, device="cpu", progress=False)
    assert read_run_config(run)["flow_cache"] is flow_cache
    fm = FeaturePredictor.load(project, run.name, device="cpu")
    x = torch.zeros(1, 3 * fm.n_rgb, *fm.size)
    with torch.no_grad():
        assert torch.isfinite(fm.model(x)["logits"]).all()


def test_flow_cache_needs_a_frozen_pairwise_generator_and_room(tiny_project):
    from deg_core.data.clips import VideoItem
    from deg_core.models.network import feature_network
    from deg_core.train.features import flow_cache_applies

    items = [VideoItem(tiny_project.root / "v.mp4", 48)]
    lite = tiny_project.resolve_config(LITE, preset="lite")
    model = feature_network(lite, 2)
    assert flow_cache_applies(lite, model, items, (64, 64))
    off = tiny_project.resolve_config([*LITE, "feature_extractor.flow_cache=false"], preset="lite")
    assert not flow_cache_applies(off, model, items, (64, 64))
    tiny = tiny_project.resolve_config([*LITE, "compute.frame_cache_mb=0.01"], preset="lite")
    assert not flow_cache_applies(tiny, model, items, (64, 64))
    fast = tiny_project.resolve_config(TINY, preset="fast")
    assert not flow_cache_applies(fast, feature_network(fast, 2), items, (64, 64))
