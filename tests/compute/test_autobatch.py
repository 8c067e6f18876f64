"""Automatic batch size and the out-of-memory fallback, with a fake OOM (runs on CPU)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from deg_core.compute import autobatch
from deg_core.compute.autobatch import (
    BatchSizeWarning,
    auto_batch,
    find_batch,
    is_oom,
    with_fallback,
)
from deg_core.errors import DegError
from deg_core.train.common import batch_size

CPU = torch.device("cpu")


class FakeDevice:
    """A step that runs out of 'memory' above ``limit`` and records the batches tried."""

    def __init__(self, limit: int):
        self.limit, self.tried = limit, []

    def __call__(self, b: int) -> int:
        self.tried.append(b)
        if b > self.limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (batch {b})")
        return b * 10


@pytest.fixture(autouse=True)
def fresh_cache():
    autobatch.clear_cache()
    yield
    autobatch.clear_cache()


@pytest.mark.parametrize(("limit", "expected"), [(1, 1), (5, 4), (64, 64), (1000, 256)])
def test_find_batch_takes_the_largest_power_of_two_that_fits(limit, expected):
    step = FakeDevice(limit)
    assert find_batch(step, CPU, ("arch", 256), cap=256) == expected
    assert step.tried[-1] in (expected, expected * 2)  # stops at the first failure


def test_find_batch_caches_per_key_and_explains_when_nothing_fits():
    step = FakeDevice(8)
    assert find_batch(step, CPU, "resnet18@256") == 8
    n = len(step.tried)
    assert find_batch(step, CPU, "resnet18@256") == 8 and len(step.tried) == n  # cached
    assert find_batch(FakeDevice(2), CPU, "resnet50@256") == 2  # another key probes again
    with pytest.raises(DegError, match=r"at batch 1: use a smaller augs\.resize"):
        find_batch(FakeDevice(0), CPU, "huge")


def test_a_real_error_is_not_mistaken_for_oom():
    def broken(b):
        raise ValueError("shape mismatch")

    with pytest.raises(ValueError, match="shape mismatch"):
        find_batch(broken, CPU, "k")
    assert is_oom(RuntimeError("CUDA error: out of memory"))
    assert not is_oom(RuntimeError("size mismatch"))


def test_auto_keeps_cpu_defaults_and_numbers_stay():
    step = FakeDevice(4)
    assert auto_batch("auto", CPU, cpu_default=8, gpu_default=32, step=step) == 8
    assert step.tried == []  # no probing on CPU
    assert auto_batch(12, CPU, cpu_default=8, gpu_default=32, step=step) == 12
    assert batch_size("auto", CPU, 4, 32) == 4 and batch_size("6", CPU, 4, 32) == 6
    cuda = torch.device("cuda")
    assert auto_batch("auto", cuda, cpu_default=8, gpu_default=32) == 32  # nothing to probe with


def test_runtime_oom_halves_with_a_warning_then_explains():
    step, resets = FakeDevice(5), []
    with pytest.warns(BatchSizeWarning) as record:
        result, used = with_fallback(step, 16, "features training", on_halve=resets.append)
    assert (result, used) == (40, 4) and resets == [8, 4]
    assert [str(w.message) for w in record] == [
        "features training: out of device memory; retrying at batch 8",
        "features training: out of device memory; retrying at batch 4",
    ]
    with pytest.warns(BatchSizeWarning), pytest.raises(DegError, match="even at batch 1"):
        with_fallback(FakeDevice(0), 2, "sequence inference")


def test_feature_inference_restarts_a_video_at_half_the_batch(make_video, tmp_path, monkeypatch):
    from deg_core.infer import features as infer
    from tests.infer.test_fast_inference import tiny_feature_model

    video = make_video(n=12, h=64, w=64)
    fm = tiny_feature_model()
    real = infer.video_features

    def small_device(fm_, video_, n, batch, opts, boxes=None):
        if batch > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        yield from real(fm_, video_, n, batch, opts, boxes)

    monkeypatch.setattr(infer, "video_features", small_device)
    out = tmp_path / "o.h5"
    with pytest.warns(BatchSizeWarning) as record:
        infer.write_video_outputs(fm, "v", video, 12, out, batch=8)
    assert [str(w.message)[-7:] for w in record] == ["batch 4", "batch 2"]
    with h5py.File(out, "r") as f:
        assert f["run_x"]["P"].shape == (12, 2) and f["run_x"].attrs["complete"]
        assert np.isfinite(f["run_x"]["spatial_features"][:]).all()
    assert not list(Path(tmp_path).glob(".*.tmp"))  # the failed attempts left nothing behind
    assert fm.auto_batch() == 16  # CPU: the default, no probe


def test_training_probe_runs_forward_backward_and_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []

    def example(b):
        seen.append(b)
        return torch.randn(b, 3, 8, 8), torch.zeros(b)

    def loss(m, x, y):
        return m(x).mean() + y.sum()

    step = autobatch.training_probe(model, example, loss)
    assert find_batch(step, CPU, "conv", cap=8) == 8 and seen == [1, 2, 4, 8]
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm stats restored
    assert all(p.grad is None for p in model.parameters()) and not model.training


class Probed(Exception):
    """Stops a trainer right after it chose its batch size."""


@pytest.mark.parametrize("stage", ["flow", "features"])
def test_trainers_probe_with_a_real_training_step(stage, tiny_project, request, monkeypatch):
    from deg_core.train import common
    from deg_core.train.features import train_features
    from deg_core.train.flow import train_flow
    from tests.pipeline import TINY

    seen = {}

    def fake_batch_size(value, device, cpu_default, gpu_default, probe=None, key=None):
        probe(2)  # forward + backward at batch 2 on the CPU: the probe is a real step
        seen.update(key=key, value=value)
        raise Probed

    cfg = tiny_project.resolve_config(TINY)
    if stage == "flow":
        run = partial(train_flow, tiny_project, cfg)
    else:  # needs the session's trained flow generator
        flow_run = request.getfixturevalue("flow_run")
        run = partial(train_features, tiny_project, cfg, flow_run=flow_run.name)
    monkeypatch.setattr(common, "batch_size", fake_batch_size)
    with pytest.raises(Probed):
        run(device="cpu", progress=False)
    assert seen["key"][0] == stage and seen["key"][2] == (64, 64)
