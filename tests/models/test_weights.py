"""Weights: safe checkpoint loading/saving, ImageNet from the local cache only, and DEG's
published checkpoint layouts (checkpoint.pt and Lightning .ckpt) mapped onto deg's model."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from deg_core.errors import DegError
from deg_core.models.feature import HiddenTwoStream, center_channels
from deg_core.models.weights import (
    REFUSED_PICKLE,
    WeightsError,
    imagenet_paths,
    imagenet_state_dict,
    init_from_imagenet,
    load_checkpoint,
    load_deg_pretrained,
    save_checkpoint,
)
from tests.models.test_feature import FakeFlow, Tiny3d

N = 3
K = 3


class Custom:
    """A class torch.load(weights_only=True) must refuse to unpickle."""

    def __init__(self):
        self.value = 1


def one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text
    return text


# ---------------------------------------------------------------------------- load / save


def test_load_checkpoint_reads_tensors_and_plain_values(tmp_path):
    path = tmp_path / "ok.pt"
    state = {"epoch": 3, "state_dict": {"w": torch.arange(4.0)}, "optimizer": None, "name": "x"}
    torch.save(state, path)
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and loaded["name"] == "x" and loaded["optimizer"] is None
    assert torch.equal(loaded["state_dict"]["w"], torch.arange(4.0))


@pytest.mark.parametrize("payload", [Custom(), np.ones(3)], ids=["custom_class", "numpy"])
def test_load_checkpoint_refuses_pickled_objects(tmp_path, payload):
    path = tmp_path / "unsafe.pt"
    torch.save({"x": payload, "w": torch.ones(1)}, path)
    with pytest.raises(WeightsError) as info:
        load_checkpoint(path)
    assert one_line(info.value) == f"{path}: {REFUSED_PICKLE}"
    assert isinstance(info.value, DegError)


def test_load_checkpoint_bad_files_are_one_line_errors(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(bytes(range(256)) * 4)
    text = tmp_path / "text.pt"
    text.write_bytes(b"hello, this is not a checkpoint")
    ok = tmp_path / "ok.pt"
    torch.save({"w": torch.ones(100)}, ok)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(ok.read_bytes()[: ok.stat().st_size // 2])
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for path in (garbage, text, truncated, empty):
        with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint") as info:
            load_checkpoint(path)
        assert one_line(info.value).startswith(f"{path}: ")
    with pytest.raises(WeightsError, match="not found") as info:
        load_checkpoint(tmp_path / "missing.pt")
    one_line(info.value)
    with pytest.raises(WeightsError, match="not a file"):
        load_checkpoint(tmp_path)
    tensor_only = tmp_path / "tensor.pt"
    torch.save(torch.ones(2), tensor_only)
    with pytest.raises(WeightsError, match="expected a dict"):
        load_checkpoint(tensor_only)


def test_save_checkpoint_atomic_and_plain_only(tmp_path):
    path = tmp_path / "run" / "checkpoints" / "best.pt"
    state = {"state_dict": {"a": torch.ones(2)}, "epoch": 1, "metrics": [0.5, {"f1": 0.1}]}
    save_checkpoint(path, state)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["state_dict"]["a"], torch.ones(2))
    assert loaded["metrics"] == [0.5, {"f1": 0.1}]
    before = path.read_bytes()
    for bad in ({"x": np.zeros(2)}, {"x": Custom()}, {"m": nn.Linear(1, 1)}):
        with pytest.raises(TypeError, match="only"):
            save_checkpoint(path, bad)
    assert path.read_bytes() == before  # refused before anything was written
    assert sorted(os.listdir(path.parent)) == ["best.pt"]  # no temporary files left


# ---------------------------------------------------------------------------- ImageNet


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """A private, empty torch hub cache (TORCH_HOME); returns its checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a set_dir() elsewhere would win over env
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    assert Path(torch.hub.get_dir()) / "checkpoints" == folder
    return folder


def test_imagenet_paths_are_torchvisions_file_names(hub):
    assert imagenet_paths("resnet18") == [hub / "resnet18-f37072fd.pth"]
    assert imagenet_paths("resnet50") == [
        hub / "resnet50-0676ba61.pth",
        hub / "resnet50-11ad3fa6.pth",
    ]
    assert imagenet_paths("resnet3d_34") == []
    assert imagenet_state_dict("resnet18") is None


def test_torch_free_names_match_torchvisions_urls(hub, monkeypatch):
    """start_weights names the files without torch (for `deg status`); they must stay the
    files torchvision downloads, and its hub folder torch's own."""
    from deg_core.models import start_weights
    from deg_core.models.weights.imagenet import _imagenet_urls

    for arch, names in start_weights.IMAGENET_FILES.items():
        assert tuple(url.rsplit("/", 1)[1] for url in _imagenet_urls(arch)) == names
    monkeypatch.delitem(__import__("sys").modules, "torch")  # the branch status takes
    assert start_weights.hub_dir() / "checkpoints" == hub


def test_imagenet_absent_required_raises_naming_the_file(hub):
    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N)
    with pytest.raises(WeightsError) as info:
        init_from_imagenet(model, "resnet18", required=True)
    text = one_line(info.value)
    assert text.startswith(f"{hub / 'resnet18-f37072fd.pth'}: ")
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in text
    assert "TORCH_HOME" in text


def test_imagenet_absent_optional_warns_once(hub, caplog):
    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.WARNING, logger="deg_core.models.weights"):
        assert init_from_imagenet(model, "resnet18", required=False) is False
    records = [r for r in caplog.records if r.name == "deg_core.models.weights"]
    assert len(records) == 1
    assert str(hub / "resnet18-f37072fd.pth") in records[0].getMessage()
    assert "random initialisation" in records[0].getMessage()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_imagenet_none_for_3d(hub, caplog):
    model = HiddenTwoStream(FakeFlow(N), Tiny3d(3), Tiny3d(2), K, num_frames=N)
    with pytest.raises(WeightsError, match="no ImageNet weights exist for resnet3d_34"):
        init_from_imagenet(model, "resnet3d_34", required=True)
    with caplog.at_level(logging.WARNING, logger="deg_core.models.weights"):
        assert init_from_imagenet(model, "resnet3d_34", required=False) is False
    assert len(caplog.records) == 1


def test_imagenet_present_loads_both_streams(hub):
    hub.mkdir(parents=True)
    # a random stand-in for ImageNet, BN statistics included
    state = randomise_(torchvision.models.resnet18(weights=None), seed=11)
    torch.save(state, hub / "resnet18-f37072fd.pth")
    num_frames = 5
    model = HiddenTwoStream.build("resnet18", FakeFlow(num_frames), K, num_frames=num_frames)
    heads_before = model.spatial_head.weight.clone()
    assert init_from_imagenet(model, "resnet18", required=True) is True

    spatial = model.spatial.state_dict()
    flow = model.flow.state_dict()
    for key, value in state.items():
        if key.startswith("fc."):
            assert key not in spatial
            continue
        assert torch.equal(spatial[key], value), key
        if key != "conv1.weight":
            assert torch.equal(flow[key], value), key
    rgb = state["conv1.weight"]  # (64, 3, 7, 7)
    expected = rgb.mean(dim=1, keepdim=True).repeat(1, 2 * (num_frames - 1), 1, 1)
    assert flow["conv1.weight"].shape == (64, 8, 7, 7)
    torch.testing.assert_close(flow["conv1.weight"], expected)
    for c in range(8):  # every flow channel holds the (unscaled, as in DEG) RGB-mean kernel
        torch.testing.assert_close(flow["conv1.weight"][:, c], rgb.mean(dim=1))
    assert torch.equal(model.spatial_head.weight, heads_before)


def test_imagenet_wrong_file_is_an_error(hub):
    hub.mkdir(parents=True)
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, hub / "resnet18-f37072fd.pth")
    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N)
    with pytest.raises(WeightsError, match="not torchvision resnet18 ImageNet weights"):
        init_from_imagenet(model, "resnet18", required=False)


# ---------------------------------------------------------------------------- DEG checkpoints


class DegResNet(torchvision.models.ResNet):
    """DEG's ResNet as its state dict sees it: torchvision names, fc popped (Identity), and for
    ResNet-50 ``compression_fc`` = Sequential(Linear(2048, 512), ReLU) after the pooling."""

    def __init__(self, arch: str, in_channels: int):
        block, layers = {
            "resnet18": (torchvision.models.resnet.BasicBlock, [2, 2, 2, 2]),
            "resnet50": (torchvision.models.resnet.Bottleneck, [3, 4, 6, 3]),
        }[arch]
        super().__init__(block, layers)
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.fc = nn.Identity()
        self.compression_fc: nn.Module = nn.Identity()
        if arch == "resnet50":
            self.compression_fc = nn.Sequential(nn.Linear(2048, 512), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.compression_fc(torch.flatten(self.avgpool(x), 1))


class DegFusion(nn.Module):
    """DEG's Fusion: no parameters for "average"; ``fc`` for "concatenate"."""

    def __init__(self, style: str, num_classes: int):
        super().__init__()
        self.style = style
        if style == "concatenate":
            self.fc = nn.Linear(1024, num_classes)


class DegHiddenTwoStream(nn.Module):
    """DEG's HiddenTwoStream module tree: spatial_classifier / flow_classifier are
    Sequential(resnet, Linear) (Identity instead of Linear for concatenate), flow_generator,
    fusion."""

    def __init__(self, arch: str, num_frames: int, num_classes: int, style: str = "average"):
        super().__init__()
        head = (
            (lambda: nn.Linear(512, num_classes)) if style == "average" else (lambda: nn.Identity())
        )
        self.num_frames = num_frames
        self.style = style
        self.spatial_classifier = nn.Sequential(DegResNet(arch, 3), head())
        self.flow_classifier = nn.Sequential(DegResNet(arch, 2 * (num_frames - 1)), head())
        self.flow_generator = FakeFlow(num_frames)
        self.fusion = DegFusion(style, num_classes)

    def forward(self, x):
        flows = self.flow_generator(x)[0]
        s = self.spatial_classifier(x[:, center_channels(self.num_frames)])
        f = self.flow_classifier(flows)
        if self.style == "average":
            return (s + 1.5 * f) / 2.5
        return self.fusion.fc(torch.cat([s, f], dim=1))


def randomise_(module: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Fill every parameter and buffer with distinct random values; returns the state dict."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in module.state_dict().items():
            if value.dtype == torch.long:  # num_batches_tracked
                value.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))
            elif key.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
            else:
                value.copy_(torch.randn(value.shape, generator=gen) * 0.05)
    return {k: v.clone() for k, v in module.state_dict().items()}


def deg_to_ours(key: str) -> str | None:
    """The mapping written out independently of deg_core (None: not a feature-extractor key)."""
    table = {
        "spatial_classifier.0.": "spatial.",
        "spatial_classifier.1.": "spatial_head.",
        "flow_classifier.0.": "flow.",
        "flow_classifier.1.": "flow_head.",
        "fusion.fc.": "fusion_head.",
    }
    for theirs, ours in table.items():
        if key.startswith(theirs):
            return ours + key[len(theirs) :]
    return None


def wrap(state_dict: dict, style: str) -> dict:
    """The ways DEG's checkpoints hold a state dict."""
    if style == "checkpoint.pt":  # deepethogram.utils.checkpoint
        hyper = {"feature_extractor": {"arch": "resnet18", "fusion": "average"}}
        return {"epoch": 7, "state_dict": state_dict, "optimizer": None, "hyperparameters": hyper}
    if style == "lightning":  # BaseLightningModule.model + its criterion, saved by Lightning
        sd = {f"model.{k}": v for k, v in state_dict.items()}
        sd["criterion.pos_weight"] = torch.ones(K)
        return {
            "epoch": 7,
            "global_step": 700,
            "pytorch-lightning_version": "1.6.5",
            "state_dict": sd,
        }
    if style == "dataparallel":  # a bare state dict saved from nn.DataParallel
        return {f"module.{k}": v for k, v in state_dict.items()}
    raise AssertionError(style)


@pytest.mark.parametrize("style", ["checkpoint.pt", "lightning", "dataparallel"])
def test_deg_feature_extractor_every_tensor_lands(tmp_path, style):
    deg = DegHiddenTwoStream("resnet18", N, K).eval()
    theirs = randomise_(deg, seed=1)
    path = tmp_path / "checkpoint.pt"
    torch.save(wrap(theirs, style), path)

    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N).eval()
    fg_before = {k: v.clone() for k, v in model.flow_generator.state_dict().items()}
    report = load_deg_pretrained(model, path, "feature_extractor")

    ours = model.state_dict()
    expected_keys = {k for k in ours if not k.startswith("flow_generator.")}
    mapped = {deg_to_ours(k): k for k in theirs if deg_to_ours(k) is not None}
    assert set(mapped) == expected_keys  # the layouts correspond one to one
    for mine, their_key in mapped.items():
        assert torch.equal(ours[mine], theirs[their_key]), mine
    assert report["loaded"] == len(expected_keys)
    assert report["missing"] == [] and report["unexpected"] == []
    skipped = {k for k in theirs if k.startswith("flow_generator.")}
    if style == "lightning":
        skipped.add("criterion.pos_weight")
    assert set(report["skipped"]) == skipped
    for key, value in model.flow_generator.state_dict().items():  # part was feature_extractor
        assert torch.equal(value, fg_before[key])

    # and the two models compute the same thing (given the same flow generator)
    model.flow_generator.load_state_dict(deg.flow_generator.state_dict())
    x = torch.randn(2, 3 * N, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["logits"], deg(x))


def test_deg_concatenate_layout(tmp_path):
    deg = DegHiddenTwoStream("resnet18", N, K, style="concatenate").eval()
    theirs = randomise_(deg, seed=2)
    path = tmp_path / "checkpoint.pt"
    torch.save(wrap(theirs, "checkpoint.pt"), path)
    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N, fusion="concatenate")
    report = load_deg_pretrained(model.eval(), path, "feature_extractor")
    ours = model.state_dict()
    for key, value in theirs.items():
        if deg_to_ours(key) is not None:
            assert torch.equal(ours[deg_to_ours(key)], value), key
    assert torch.equal(ours["fusion_head.weight"], theirs["fusion.fc.weight"])
    # DEG's concatenate model has no per-stream heads: ours keep their init
    assert sorted(report["missing"]) == sorted(
        ["spatial_head.weight", "spatial_head.bias", "flow_head.weight", "flow_head.bias"]
    )
    model.flow_generator.load_state_dict(deg.flow_generator.state_dict())
    x = torch.randn(2, 3 * N, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["logits"], deg(x))


def test_deg_resnet50_layout_with_compression(tmp_path):
    deg = DegHiddenTwoStream("resnet50", N, K)
    theirs = randomise_(deg, seed=3)
    assert "spatial_classifier.0.compression_fc.0.weight" in theirs
    path = tmp_path / "checkpoint.pt"
    torch.save(wrap(theirs, "lightning"), path)
    model = HiddenTwoStream.build("resnet50", FakeFlow(N), K, num_frames=N)
    report = load_deg_pretrained(model, path, "feature_extractor")
    ours = model.state_dict()
    n_feature = sum(1 for k in ours if not k.startswith("flow_generator."))
    assert report["loaded"] == n_feature and report["missing"] == []
    for key, value in theirs.items():
        if deg_to_ours(key) is not None:
            assert torch.equal(ours[deg_to_ours(key)], value), key


def test_deg_kinetics_heads_are_skipped(tmp_path):
    """DEG's Kinetics-700 release: backbones load, the 700-class heads are left alone."""
    deg = DegHiddenTwoStream("resnet18", N, 700)
    theirs = randomise_(deg, seed=4)
    path = tmp_path / "checkpoint.pt"
    torch.save(wrap(theirs, "checkpoint.pt"), path)
    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N)
    head_before = model.spatial_head.weight.clone()
    report = load_deg_pretrained(model, path, "feature_extractor")
    heads = {"spatial_head.weight", "spatial_head.bias", "flow_head.weight", "flow_head.bias"}
    assert set(report["missing"]) == heads
    assert {"spatial_classifier.1.weight", "flow_classifier.1.bias"} <= set(report["skipped"])
    assert torch.equal(model.spatial_head.weight, head_before)
    assert torch.equal(model.spatial.conv1.weight, theirs["spatial_classifier.0.conv1.weight"])


def test_deg_shape_mismatch_and_nothing_maps(tmp_path):
    deg = DegHiddenTwoStream("resnet18", 11, K)  # flow conv1 has 20 channels, ours 4
    path = tmp_path / "checkpoint.pt"
    torch.save(wrap(randomise_(deg), "checkpoint.pt"), path)
    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightsError, match=r"flow_classifier\.0\.conv1\.weight") as info:
        load_deg_pretrained(model, path, "feature_extractor")
    one_line(info.value)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # untouched

    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"encoder.weight": torch.ones(2)}}, other)
    with pytest.raises(WeightsError, match="nothing in the checkpoint maps"):
        load_deg_pretrained(model, other, "feature_extractor")
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"state_dict": {}, "hyperparameters": Custom()}, unsafe)
    with pytest.raises(WeightsError, match="refused"):
        load_deg_pretrained(model, unsafe, "feature_extractor")


def test_deg_flow_generator_checkpoint(tmp_path):
    """DEG's flow generator checkpoint.pt (bare generator keys) into a bare generator and into
    the two-stream model's flow_generator; and the same keys from a whole-model checkpoint."""
    source = FakeFlow(N)
    theirs = randomise_(source, seed=5)
    path = tmp_path / "checkpoint.pt"
    torch.save(wrap(theirs, "checkpoint.pt"), path)

    bare = FakeFlow(N)
    report = load_deg_pretrained(bare, path, "flow_generator")
    assert report == {"loaded": len(theirs), "missing": [], "unexpected": [], "skipped": []}
    assert all(torch.equal(v, theirs[k]) for k, v in bare.state_dict().items())

    model = HiddenTwoStream.build("resnet18", FakeFlow(N), K, num_frames=N)
    spatial_before = model.spatial.conv1.weight.clone()
    load_deg_pretrained(model, path, "flow_generator")
    assert all(torch.equal(v, theirs[k]) for k, v in model.flow_generator.state_dict().items())
    assert torch.equal(model.spatial.conv1.weight, spatial_before)
    assert not any(p.requires_grad for p in model.flow_generator.parameters())  # still frozen

    deg = DegHiddenTwoStream("resnet18", N, K)
    whole = randomise_(deg, seed=6)
    whole_path = tmp_path / "whole.ckpt"
    torch.save(wrap(whole, "lightning"), whole_path)
    report = load_deg_pretrained(model, whole_path, "flow_generator")
    assert report["loaded"] == len(theirs) and report["unexpected"] == []
    for key, value in model.flow_generator.state_dict().items():
        assert torch.equal(value, whole[f"flow_generator.{key}"])


def test_flow_generator_map_deg_key_hook(tmp_path):
    """A flow generator whose names differ from DEG's renames them with map_deg_key."""

    class Renamed(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3 * N, 2 * (N - 1), 3, padding=1)

        @staticmethod
        def map_deg_key(key: str) -> str | None:
            return key.replace("conv.", "stem.") if key.startswith("conv.") else None

    theirs = randomise_(FakeFlow(N), seed=7)
    path = tmp_path / "checkpoint.pt"
    torch.save(wrap(theirs, "checkpoint.pt"), path)
    target = Renamed()
    report = load_deg_pretrained(target, path, "flow_generator")
    assert report["loaded"] == 2
    assert torch.equal(target.stem.weight, theirs["conv.weight"])
    assert sorted(report["unexpected"]) == sorted(k for k in theirs if k.startswith("bn."))
