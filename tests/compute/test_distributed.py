"""torchrun scale-out: 2 gloo processes on the CPU against one process.

One torchrun launch (this file run as a script, see ``_worker``) trains a toy model
through the shared ``fit`` and the three stages on a tiny project, runs the sharded
``deg infer features`` and dumps every rank's final parameters. The tests then
compare with one process: exactly where the maths allows (the toy model, and the
sequence model without dropout on fully labelled videos: world 2 with slices of b
equals world 1 with batch 2b up to float rounding), loosely where BatchNorm sees
per-rank slices (flow generator, ResNets).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from deg_core.compute import distributed
from deg_core.config import DegConfig
from deg_core.errors import DegError
from deg_core.labels.labels import Labels
from deg_core.models.weights import load_checkpoint
from deg_core.project.project import Project
from deg_core.project.runs import BEST, LAST, METRICS, read_metrics, read_run_config
from deg_core.train import common

pytestmark = pytest.mark.slow  # torchrun workers: processes that each import torch

ROOT = Path(__file__).resolve().parents[2]
NO_AUGS = [
    "augs.LR=0",
    "augs.UD=0",
    "augs.degrees=0",
    "augs.brightness=0",
    "augs.contrast=0",
    "augs.saturation=0",
    "augs.hue=0",
    "augs.grayscale=0",
]
BASE = [
    *NO_AUGS,
    "augs.resize=[32, 32]",
    "compute.num_workers=0",
    "flow_generator.weights=scratch",
    "flow_generator.n_rgb=3",
    "flow_generator.batch_size=4",
    "flow_generator.val_steps=1",
    "flow_generator.steps_per_epoch=2",
    "flow_generator.num_epochs=1",
    "flow_generator.lr=1e-3",
    "feature_extractor.weights=scratch",
    "feature_extractor.batch_size=4",
    "feature_extractor.val_steps=2",
    "feature_extractor.steps_per_epoch=2",
    "feature_extractor.num_epochs=1",
    "feature_extractor.dropout_p=0",
    "sequence.arch=tgmj",  # no dropout left with these (tcn drops inside its blocks): exact
    "sequence.batch_size=4",
    "sequence.sequence_length=8",
    "sequence.steps_per_epoch=3",
    "sequence.num_epochs=1",
    "sequence.dropout_p=0",
    "sequence.input_dropout=0",
    "sequence.lr=1e-2",
]
STAGES = ("flow", "features", "sequence")
# relative (val_loss, train_loss) tolerance against one process. The flow generator and
# the ResNets have BatchNorm, which in training normalises by the statistics of a 2-clip
# slice instead of the 4-clip batch: a few % apart, more for the training loss (measured
# in train mode). The sequence model has none and must agree to float rounding: that,
# with the toy model, is the sharp check that slices are disjoint and gradients averaged.
TOLERANCE = {"flow": (0.1, 0.1), "features": (0.1, 0.2), "sequence": (1e-4, 1e-4)}


# ---------------------------------------------------------------- shared pieces


def make_project(root: Path) -> Project:
    """Four 24-frame videos (train, train, val, test), every frame labelled (no -1)."""
    from tests.pipeline import square_project

    project = square_project(root, "ddp", 24, 32, ["train", "train", "val", "test"])
    t = np.arange(24)
    for i, key in enumerate(project.video_keys()):
        lab = Labels.empty(24, project.behaviors)
        lab.array[:, 0] = ((3 * t) % 22 < 11).astype(np.int8)
        lab.array[:, 1] = ((5 * t + 7 * i) % 22 < 11).astype(np.int8)
        project.save_labels(key, lab)
    return project


class Toy(torch.utils.data.Dataset):
    """32 fixed (x, y) pairs: every sample pulls the weights its own way."""

    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(32, 6, generator=g)
        self.y = torch.randn(32, 2, generator=g)

    def __len__(self):
        return 32

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


def train_toy(run: Path, batch: int = 8) -> torch.nn.Module:
    """A few Adam steps of a linear model through common.fit (the trainers' path)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 2)
    data = Toy()

    def step(m, b):
        return torch.nn.functional.mse_loss(m(b["x"]), b["y"]), len(b["x"])

    def validate(m, epoch):
        return {"loss": float(torch.nn.functional.mse_loss(m(data.x), data.y))}

    common.fit(
        run,
        model,
        lr=0.05,
        weight_decay=0.0,
        cfg=DegConfig(),
        step_fn=step,
        validate_fn=validate,
        loader_fn=common.epoch_loader(data, batch, 3, 0, 0),
        num_epochs=2,
        steps_per_epoch=3,
        progress=False,
    )
    return model


# ---------------------------------------------------------------- the torchrun worker


def _worker(project_root: str, out: str) -> None:
    """Runs in each of the torchrun processes (this file as a script)."""
    from deg_core import cli
    from deg_core.infer import features as infer
    from deg_core.train.features import train_features
    from deg_core.train.flow import train_flow
    from deg_core.train.sequence import train_sequence

    torch.set_num_threads(1)
    out_dir = Path(out)
    project = Project.open(project_root)
    cfg = project.resolve_config(BASE)
    fitted: dict[str, torch.nn.Module] = {}
    real_fit = common.fit

    def spy_fit(run, model, **kw):  # keeps each stage's model to dump its parameters
        fitted[run.name] = model  # the last model fitted in that run folder
        return real_fit(run, model, **kw)

    common.fit = spy_fit  # type: ignore[assignment]
    written: list[str] = []
    real_write = infer.write_video_outputs

    def spy_write(fm, key, *args, **kw):
        written.append(key)
        return real_write(fm, key, *args, **kw)

    infer.write_video_outputs = spy_write  # type: ignore[assignment]

    r = distributed.launch()
    assert r is not None and r.world == 2
    distributed.init("cpu")  # what the trainers' resolve_device does; the toy has none
    assert distributed.world() == 2
    train_toy(out_dir / "toy_run")
    flow = train_flow(project, cfg, device="cpu", progress=False)
    # resume to a longer run: the second epoch continues the checkpointed state
    longer = project.resolve_config([*BASE, "flow_generator.num_epochs=2"])
    assert train_flow(project, longer, device="cpu", resume=flow.name, progress=False) == flow
    feats = train_features(project, cfg, flow_run=flow.name, device="cpu", progress=False)
    # concatenate fusion leaves the per-stream heads out of the loss: DDP must be told
    concat = project.resolve_config(
        [*BASE, "feature_extractor.fusion=concatenate", "feature_extractor.steps_per_epoch=2"]
    )
    cat = train_features(project, concat, flow_run=flow.name, device="cpu", progress=False)
    code = cli.main(["infer", "features", project_root, "--run", feats.name, "--device", "cpu"])
    assert code == 0
    seq = train_sequence(project, cfg, feature_run=feats.name, device="cpu", progress=False)
    # lite: a frozen pairwise generator, so the features train on cached flows, through
    # DDP's forward(frame, flows=...)
    lite = project.resolve_config([*BASE, "augs.resize=[64, 64]"], preset="lite")
    pair = train_flow(project, lite, device="cpu", progress=False)
    cached = train_features(project, lite, flow_run=pair.name, device="cpu", progress=False)
    rank = distributed.rank()
    for stage, run in (
        ("toy", "toy_run"),
        ("flow", flow),
        ("features", feats),
        ("sequence", seq),
        ("cached", cached),
    ):
        torch.save(fitted[Path(run).name].state_dict(), out_dir / f"{stage}_rank{rank}.pt")
    runs = {
        "flow": flow.name,
        "features": feats.name,
        "sequence": seq.name,
        "concatenate": cat.name,
        "pair_flow": pair.name,
        "cached": cached.name,
        "written": written,
    }
    (out_dir / f"rank{rank}.json").write_text(json.dumps(runs))


def run_torchrun(project: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        __file__,
        str(project),
        str(out),
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    """The torchrun launch's results: project, dumps and the two ranks' reports."""
    root = tmp_path_factory.mktemp("ddp")
    project = make_project(root)
    out = root / "out"
    out.mkdir()
    (out / "toy_run").mkdir()
    proc = run_torchrun(project.root, out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    runs = sorted(p.name for p in project.models_dir.iterdir() if (p / "config.yaml").is_file())
    return {"project": project, "out": out, "reports": reports, "stdout": proc.stdout, "runs": runs}


def params(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in torch.load(path, weights_only=True).items() if v.is_floating_point()}


def single_process(ddp, stage: str) -> Path:
    """The same stage trained by one process with the same global batch, inputs and seed."""
    from deg_core.train.features import train_features
    from deg_core.train.flow import train_flow
    from deg_core.train.sequence import train_sequence

    project: Project = ddp["project"]
    cfg = project.resolve_config(BASE)
    runs = ddp["reports"][0]
    if stage == "flow":
        return train_flow(project, cfg, device="cpu", progress=False)
    if stage == "features":
        return train_features(project, cfg, flow_run=runs["flow"], device="cpu", progress=False)
    return train_sequence(project, cfg, feature_run=runs["features"], device="cpu", progress=False)


# ---------------------------------------------------------------- one process: no-ops


def test_one_process_helpers_are_no_ops(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert distributed.launch() is None
    assert (distributed.rank(), distributed.world(), distributed.is_main()) == (0, 1, True)
    assert distributed.init("cpu") == torch.device("cpu")
    assert not distributed.active()
    assert distributed.shard(["b", "a", "c"]) == ["b", "a", "c"]  # order kept
    assert distributed.merged({"b": 1, "a": 2}) == {"b": 1, "a": 2}
    assert distributed.all_reduce(2.5) == 2.5 and distributed.broadcast("x") == "x"
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model) is model and distributed.unwrap(model) is model
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun with one process: still no group
    assert distributed.launch() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DegError, match="RANK"):
        distributed.launch()


def test_shard_gives_every_key_to_exactly_one_rank(monkeypatch):
    keys = ["m3", "m1", "m10", "m2", "m5"]
    monkeypatch.setattr(distributed, "world", lambda: 2)
    got = []
    for r in range(2):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        got.append(distributed.shard(list(reversed(keys)) if r else keys))  # any input order
    assert got == [["m1", "m2", "m5"], ["m10", "m3"]]


def test_rank_slices_partition_each_global_batch():
    from deg_core.data.clips import EpochBatchSampler

    whole = list(EpochBatchSampler(50, 7, 4, seed=3, epoch=2))
    slices = []
    for r in range(3):
        s = common.RankBatchSampler(50, 7, 4, seed=3, rank=r, world=3)
        s.epoch = 2
        slices.append(list(s))
    for step, batch in enumerate(whole):
        parts = [sl[step] for sl in slices]
        assert sorted(x for p in parts for x in p) == sorted(batch)  # exactly the global batch
        assert [len(p) for p in parts] == [3, 2, 2]
    with pytest.raises(DegError, match="smaller than the 4 processes"):
        common.RankBatchSampler(50, 3, 4, seed=0, rank=0, world=4)


# ---------------------------------------------------------------- two processes


def test_two_ranks_step_exactly_like_one_process_with_the_global_batch(ddp, tmp_path):
    """Disjoint slices + averaged gradients == one process on the whole batch."""
    out = ddp["out"]
    r0, r1 = params(out / "toy_rank0.pt"), params(out / "toy_rank1.pt")
    one = train_toy(tmp_path).state_dict()
    for k in one:
        assert torch.equal(r0[k], r1[k])
        torch.testing.assert_close(r0[k], one[k], rtol=1e-5, atol=1e-6)
    # the same run folder bookkeeping as one process: metrics of 2 epochs, by rank 0 only
    records = read_metrics(out / "toy_run")
    assert [r["epoch"] for r in records] == [0, 1]
    single = read_metrics(tmp_path)
    for a, b in zip(records, single, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    # and a check that can fail: half the batch alone (the rank-0 slice) is another model
    (tmp_path / "half").mkdir()
    half = train_toy(tmp_path / "half", batch=4)
    assert not torch.allclose(half.weight, r0["weight"], atol=1e-4)


def test_cached_flow_training_keeps_the_ranks_in_step(ddp):
    """lite's feature stage on cached flows under torchrun: the run records the cache, and
    both ranks end with the same weights (DDP averaged the gradients of the cached forward;
    had the call gone around DDP, each rank would have stepped on its own slice)."""
    r0, r1 = ddp["reports"]
    assert r0["cached"] == r1["cached"]
    run = ddp["project"].models_dir / r0["cached"]
    assert read_run_config(run)["flow_cache"] is True
    assert len(read_metrics(run)) == 1
    a, b = (params(ddp["out"] / f"cached_rank{r}.pt") for r in (0, 1))
    # weights, not BatchNorm's running statistics (each rank's own slice)
    weights = [k for k in a if "running_" not in k and not k.startswith("flow_generator.")]
    assert weights and all(torch.equal(a[k], b[k]) for k in weights)
    last = load_checkpoint(run / LAST)["model"]
    assert all(torch.equal(last[k], v) for k, v in a.items())  # rank 0's model is the run's


def test_rank0_writes_one_loadable_run_per_stage(ddp):
    project: Project = ddp["project"]
    r0, r1 = ddp["reports"]
    for stage in STAGES:
        assert r0[stage] == r1[stage]  # the same folder name on both ranks
    assert ddp["runs"] == sorted(
        r0[s] for s in (*STAGES, "concatenate", "pair_flow", "cached")
    )  # one folder per stage, nothing else
    assert len(read_metrics(project.models_dir / r0["concatenate"])) == 1
    for stage in STAGES:
        run = project.models_dir / r0[stage]
        for ckpt in (BEST, LAST):
            state = load_checkpoint(run / ckpt)["model"]
            assert not any(k.startswith("module.") for k in state)  # the plain model's keys
        # the dumped parameters of rank 0 are what best/last hold (one epoch: both)
        dumped = params(ddp["out"] / f"{stage}_rank0.pt")
        last = load_checkpoint(run / LAST)["model"]
        for k, v in dumped.items():
            assert torch.equal(last[k], v)
    flow_metrics = read_metrics(project.models_dir / r0["flow"])
    assert [r["epoch"] for r in flow_metrics] == [0, 1]  # trained 1 epoch, resumed for 1 more
    assert (project.models_dir / r0["flow"] / METRICS).read_text().count("\n") == 2
    # rank 0 printed the summary of both ranks' videos, once each
    for key in project.video_keys():
        assert ddp["stdout"].count(f"{key}: features done") == 1


def test_ranks_end_with_identical_parameters(ddp):
    for stage in STAGES:
        a = params(ddp["out"] / f"{stage}_rank0.pt")
        b = params(ddp["out"] / f"{stage}_rank1.pt")
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{stage}: {k} differs between ranks"


def test_a_distributed_run_resumes_in_one_process(ddp):
    """Plain checkpoints and global batches: one process continues a torchrun run."""
    from deg_core.train.flow import train_flow

    project: Project = ddp["project"]
    src = project.models_dir / ddp["reports"][0]["flow"]
    copy = src.with_name(src.name + "_copy")  # the original stays as the other tests expect
    shutil.copytree(src, copy)
    cfg = project.resolve_config([*BASE, "flow_generator.num_epochs=3"])
    assert train_flow(project, cfg, device="cpu", resume=copy.name, progress=False) == copy
    records = read_metrics(copy)
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert records[:2] == read_metrics(src)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_matches_one_process(ddp, stage):
    """Same data, seed and global batch: the validation loss agrees with one process.

    The sequence model (no BatchNorm, no dropout, every frame labelled) agrees to
    float rounding; flow and features differ by BatchNorm statistics of half batches.
    """
    project: Project = ddp["project"]
    one = read_metrics(single_process(ddp, stage))
    two = read_metrics(project.models_dir / ddp["reports"][0][stage])
    if stage == "flow":
        two = two[:1]  # the distributed flow run was resumed for a second epoch
    val_tol, train_tol = TOLERANCE[stage]
    for a, b in zip(two, one, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=val_tol)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=train_tol)


def test_sharded_inference_writes_each_video_once_like_one_process(ddp):
    from deg_core.infer.features import DATASETS, infer_features

    project: Project = ddp["project"]
    r0, r1 = ddp["reports"]
    keys = project.video_keys()
    assert sorted(r0["written"] + r1["written"]) == sorted(keys)  # each video by one rank
    assert r0["written"] and r1["written"]
    group = r0["features"]

    def outputs():
        res = {}
        for key in keys:
            with h5py.File(project.record(key).outputs_path, "r") as f:
                res[key] = {name: f[group][name][()] for name in DATASETS}
        return res

    sharded = outputs()
    saved = {k: project.record(k).outputs_path for k in keys}
    backup = {k: p.read_bytes() for k, p in saved.items()}
    try:
        done = infer_features(project, group, device="cpu", overwrite=True, progress=False)
        assert set(done.values()) == {"done"}
        single = outputs()
    finally:  # leave the distributed outputs for the other tests
        for k, p in saved.items():
            p.write_bytes(backup[k])
    for key in keys:
        for name in DATASETS:
            np.testing.assert_allclose(sharded[key][name], single[key][name], atol=1e-5)


if __name__ == "__main__":  # one torchrun process (see run_torchrun)
    _worker(*sys.argv[1:3])
    distributed.cleanup()
