"""Resuming a run continues it with its own settings; bad settings never leave a run behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deg_core.cli import main
from deg_core.errors import ConfigError
from deg_core.fileio import load_yaml
from deg_core.models.weights import load_checkpoint
from deg_core.project.runs import LAST, METRICS, new_run_dir, read_metrics, resume_config
from deg_core.train.flow import train_flow
from tests.conftest import snapshot
from tests.pipeline import TINY, square_project

REPO = Path(__file__).resolve().parents[2]
# a run's own settings: 64x64, N=5, 2 steps per epoch (the defaults are 224x224, N=11, 1000)
OWN = [*TINY, "flow_generator.steps_per_epoch=2"]


def sets(*overrides: str) -> list[str]:
    return [x for s in overrides for x in ("--set", s)]


@pytest.fixture(scope="module")
def proj(tmp_path_factory):
    """Two 24-frame videos (train, val): enough for the flow stage, which needs no labels."""
    return square_project(tmp_path_factory.mktemp("resume"), "res", 24, 64, ["train", "val"])


def train_cli(proj, *args: str) -> int:
    return main(["train", "flow", str(proj.root), *args])


def new_run(proj, epochs: int = 1) -> Path:
    before = set(proj.models_dir.iterdir()) if proj.models_dir.is_dir() else set()
    code = train_cli(proj, *sets(*OWN, f"flow_generator.num_epochs={epochs}"), "--device", "cpu")
    assert code == 0
    (run,) = set(proj.models_dir.iterdir()) - before
    return run


def settings(run: Path) -> dict:
    return load_yaml(run / "config.yaml")["config"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("deg: error: ") and "\n" not in err, err
    return err


def test_cli_resume_continues_with_the_runs_settings(proj, capsys):
    run = new_run(proj, epochs=1)
    # only the number of epochs is given: every other setting is the run's, not a default
    assert train_cli(proj, "--run", run.name, *sets("flow_generator.num_epochs=3")) == 0
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert [r["step"] for r in records] == [2, 4, 6]  # 2 steps per epoch, not 1000
    assert load_checkpoint(run / LAST)["global_step"] == 6
    cfg = settings(run)
    assert cfg["augs"]["resize"] == [64, 64] and cfg["flow_generator"]["n_rgb"] == 5
    assert cfg["flow_generator"]["steps_per_epoch"] == 2
    assert cfg["flow_generator"]["num_epochs"] == 3  # recorded: the next resume goes on to 3
    capsys.readouterr()
    assert train_cli(proj, "--run", run.name) == 0  # done: nothing more to train
    assert [r["step"] for r in read_metrics(run)] == [2, 4, 6]


def test_conflicting_settings_are_refused_and_the_run_untouched(proj, capsys):
    run = new_run(proj, epochs=1)
    capsys.readouterr()
    before = snapshot(proj.models_dir)
    refused = [
        ("flow_generator.steps_per_epoch", ["--set", "flow_generator.steps_per_epoch=5"]),
        ("augs.resize", ["--set", "augs.resize=[96, 96]"]),
        ("augs.crop", ["--preset", "cpu"]),  # the preset crops the animal
    ]
    for key, args in refused:
        assert train_cli(proj, "--run", run.name, *args) == 1
        err = one_line_error(capsys)
        assert f"run {run.name}" in err and key in err
    err = (train_cli(proj, "--run", run.name, *refused[0][1]), one_line_error(capsys))[1]
    assert "steps_per_epoch=5" in err and "steps_per_epoch=2" in err  # requested, and the run's
    # the Python API: a config that differs from the run (the project's defaults) is refused
    with pytest.raises(ConfigError, match=r"augs\.resize=\[224, 224\].*\[64, 64\]"):
        train_flow(proj, proj.resolve_config(), resume=run.name, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="seed 5"):  # another seed: other batches
        train_flow(proj, resume=run.name, device="cpu", progress=False, seed=5)
    # a typo is not silently dropped; a runtime setting is fine
    with pytest.raises(ConfigError, match="num_epoch"):
        resume_config(run, overrides=["flow_generator.num_epoch=2"])
    assert resume_config(run, overrides=["compute.num_workers=1"]).compute.num_workers == 1
    assert snapshot(proj.models_dir) == before


def test_half_written_metrics_line_does_not_stop_resume(proj):
    run = new_run(proj, epochs=1)
    with open(run / METRICS, "a") as f:
        f.write('{"epoch": 1, "step": 4, "train_lo')  # killed mid-append
    assert [r["epoch"] for r in read_metrics(run)] == [0]
    cfg = resume_config(run, overrides=["flow_generator.num_epochs=2"])
    assert train_flow(proj, cfg, resume=run.name, device="cpu", progress=False) == run
    assert [r["step"] for r in read_metrics(run)] == [2, 4]
    assert (run / METRICS).read_text().count("\n") == 2  # the half line is gone


@pytest.mark.slow
def test_killed_training_resumes_with_its_own_settings(proj):
    """SIGKILL at the 6th write commit step of a 3-epoch run (config.yaml: steps 1-2; the
    first epoch's best.pt 3-4, last.pt 5-6), then a resume given no settings completes it
    as it was started."""
    before = set(proj.models_dir.iterdir()) if proj.models_dir.is_dir() else set()
    cmd = [sys.executable, "-m", "deg_core.cli", "train", "flow", str(proj.root)]
    cmd += [*sets(*OWN, "flow_generator.num_epochs=3"), "--device", "cpu"]
    env = {**os.environ, "DEG_KILL_AT_WRITE": "6"}
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    (run,) = set(proj.models_dir.iterdir()) - before
    assert load_checkpoint(run / LAST)["epoch"] == 1
    assert [r["epoch"] for r in read_metrics(run)] == [0]
    started = settings(run)
    assert train_flow(proj, resume=run.name, device="cpu", progress=False) == run
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert load_checkpoint(run / LAST)["global_step"] == 6
    assert settings(run) == started


def test_killed_before_the_first_checkpoint_starts_over(proj):
    """Killed between an epoch's record and its last.pt (the record is appended first):
    without last.pt the resume starts over and the orphan record goes."""
    run = new_run(proj, epochs=1)
    (run / LAST).unlink()
    cfg = resume_config(run, overrides=["flow_generator.num_epochs=2"])
    assert train_flow(proj, cfg, resume=run.name, device="cpu", progress=False) == run
    assert [(r["epoch"], r["step"]) for r in read_metrics(run)] == [(0, 2), (1, 4)]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (sets("flow_generator.steps_per_epoch=0"), "flow_generator.steps_per_epoch must be >= 1"),
        (sets("flow_generator.num_epochs=-1"), "flow_generator.num_epochs must be >= 1"),
        (sets("flow_generator.batch_size=0"), "flow_generator.batch_size must be >= 1"),
        (sets("flow_generator.val_steps=0"), "flow_generator.val_steps must be >= 1"),
        (sets("flow_generator.lr=0"), "flow_generator.lr must be > 0, got 0.0"),
        (sets("flow_generator.lr=-1e-3"), "flow_generator.lr must be > 0"),
        (sets("train.min_lr=-1"), "train.min_lr must be >= 0"),
        (sets("augs.LR=1.5"), "augs.LR must be in [0, 1], got 1.5"),
        (sets("augs.grayscale=-0.1"), "augs.grayscale must be in [0, 1]"),
        (sets("split.train_val_test=[0.8, 1.2, 0]"), r"split.train_val_test[1] must be in [0, 1]"),
        (sets("compute.num_workers=-2"), "compute.num_workers must be >= 0"),
        (sets("compute.device=gpu0"), "compute.device must be auto, cpu, cuda, cuda:N or mps"),
        (["--device", "gpu0"], "--device must be auto, cpu, cuda, cuda:N or mps, got 'gpu0'"),
    ],
)
def test_bad_settings_are_refused_before_a_run_folder_exists(proj, capsys, args, says):
    proj.models_dir.mkdir(exist_ok=True)
    before = snapshot(proj.models_dir)
    assert train_cli(proj, *sets(*OWN), *args) == 1
    assert says in one_line_error(capsys)
    assert snapshot(proj.models_dir) == before


def test_same_second_runs_get_their_own_folders(tmp_path, monkeypatch):
    """Another process may create the folder between a check and mkdir: mkdir decides."""
    import datetime as dt

    now = dt.datetime(2024, 5, 1, 12, 0, 0)
    first = new_run_dir(tmp_path, "flow", "Tiny", now)
    monkeypatch.setattr(Path, "exists", lambda self, **kw: False)  # every check is too early
    second = new_run_dir(tmp_path, "flow", "Tiny", now)
    third = new_run_dir(tmp_path, "flow", "Tiny", now)
    assert (first.name, second.name, third.name) == (
        "240501_120000_flow_Tiny",
        "240501_120000_flow_Tiny_2",
        "240501_120000_flow_Tiny_3",
    )
