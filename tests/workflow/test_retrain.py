"""Headless retraining: which stages a change reruns (in-process, no training), the runner's
pieces, and ``deg retrain`` failing cleanly. (``deg retrain`` training, reporting and
skipping on a tiny trained project: tests/test_notebooks.py.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import nbformat
import numpy as np
import pytest

from deg_core.cli import main
from deg_core.errors import DegError
from deg_core.labels.labels import Labels
from deg_core.project.project import Project
from deg_core.workflow.retrain import STAGES, RetrainPlan, describe_changes
from deg_core.workflow.retrain_runner import failed_step, parse_parameters, report_path
from deg_core.workflow.synthetic import SyntheticSpec, write_synthetic_video
from tests.test_notebooks import SPEC, make_tiny_project


@pytest.fixture
def tiny(tmp_path) -> Project:
    return make_tiny_project(tmp_path)


def settle(project: Project, **kw) -> None:
    """Record every stage as just retrained on the project's current inputs."""
    plan = RetrainPlan(project, **kw)
    for s in STAGES:
        plan.remember(s, plan.inputs(s), None)


def decisions(project: Project, **kw) -> dict[str, tuple[bool, str]]:
    plan = RetrainPlan(project, **kw)
    return {s: plan.decide(s, plan.inputs(s)) for s in STAGES}


def fake_run(project: Project, name: str) -> None:
    """A finished run folder, as ``latest`` finds it."""
    run = project.models_dir / name
    run.mkdir()
    (run / "best.pt").write_bytes(b"")


# --------------------------------------------------------------------------- change detection


def test_first_retrain_runs_the_requested_stages(tiny):
    got = decisions(tiny, stages=["features", "sequence"])
    assert got["features"] == got["sequence"] == (True, "no earlier retrain of this stage")
    assert got["flow"] == got["infer"] == (False, "not requested")


def test_unchanged_inputs_are_skipped_unless_forced(tiny):
    settle(tiny)
    assert all(
        not go and why.startswith("inputs unchanged") for go, why in decisions(tiny).values()
    )
    forced = decisions(tiny, force=["sequence"])
    assert forced["sequence"] == (True, "forced") and not forced["features"][0]
    assert all(go for go, _ in decisions(tiny, force=True).values())
    # how a stage runs is not one of its inputs
    assert not any(go for go, _ in decisions(tiny, settings=["compute.device=cpu"]).values())


def test_label_edit_reruns_the_stages_that_learn_from_labels(tiny):
    settle(tiny)
    labels = tiny.labels("tiny_00")
    labels.array[:5] = 0
    tiny.save_labels("tiny_00", labels)
    got = decisions(tiny)
    assert not got["flow"][0] and not got["infer"][0]
    assert got["features"] == (True, "changed labels: tiny_00")
    assert got["sequence"] == (True, "changed labels: tiny_00")


def test_test_split_labels_and_videos_leave_the_trained_stages_alone(tiny, tmp_path):
    settle(tiny)
    labels = tiny.labels("tiny_02")  # the test video
    tiny.save_labels("tiny_02", Labels(labels.behaviors, np.zeros_like(labels.array)))
    new = tmp_path / "mouse9.mp4"
    write_synthetic_video(new, SyntheticSpec(n_frames=30, size=32, behaviors=SPEC.behaviors))
    tiny.add_video(new, split="test")
    got = decisions(tiny)
    assert got["flow"] == (True, "changed splits: mouse9; videos: mouse9")  # flow sees all
    assert not got["features"][0] and not got["sequence"][0]
    assert got["infer"] == (True, "changed videos: mouse9")


def test_a_setting_reruns_its_stage(tiny):
    settle(tiny)
    got = decisions(tiny, settings=["sequence.num_epochs=7"])
    assert got["sequence"] == (True, "changed config: sequence.num_epochs")
    assert [s for s, (go, _) in got.items() if go] == ["sequence"]
    assert decisions(tiny, epochs=3)["flow"] == (True, "changed config: flow_generator.num_epochs")


def test_the_schedule_settings_rerun_every_stage_that_reads_them(tiny):
    """train.patience/min_lr drive the flow trainer's schedule too (they used to be
    invisible to the flow stage's fingerprint)."""
    settle(tiny)
    got = decisions(tiny, settings=["train.patience=2"])
    assert {s for s, (go, _) in got.items() if go} >= {"flow", "features", "sequence"}
    assert got["flow"] == (True, "changed config: train.patience")
    got = decisions(tiny, settings=["train.loss_weight_exp=0.5"])
    assert not got["flow"][0] and got["features"][0] and got["sequence"][0]


def test_a_new_upstream_run_cascades(tiny):
    fake_run(tiny, "250101_000000_flow_TinyMotionNet")
    settle(tiny)
    fake_run(tiny, "250102_000000_flow_TinyMotionNet")  # e.g. trained by hand since
    got = decisions(tiny)
    assert got["features"] == (True, "changed flow run")
    assert not got["flow"][0] and not got["sequence"][0]


def test_a_deleted_run_is_retrained(tiny):
    plan = RetrainPlan(tiny)
    plan.remember("flow", plan.inputs("flow"), "250101_000000_flow_gone")
    assert plan.decide("flow", plan.inputs("flow")) == (
        True,
        "its last run 250101_000000_flow_gone is gone",
    )


def test_single_values_count_as_lists(tiny):
    plan = RetrainPlan(
        tiny, "infer", videos="tiny_01", settings="sequence.num_epochs=7", force="infer"
    )
    assert plan.stages == ["infer"] and plan.videos == ["tiny_01"] and plan.force == {"infer"}
    assert plan.cfg.sequence.num_epochs == 7


def test_bad_requests_are_one_line_errors(tiny):
    with pytest.raises(DegError, match=r"unknown stage\(s\) \['labels'\]"):
        RetrainPlan(tiny, ["flow", "labels"])
    with pytest.raises(DegError, match="epochs must be >= 1"):
        RetrainPlan(tiny, epochs=0)
    plan = RetrainPlan(tiny)
    plan.state_path.write_text("{not json")
    with pytest.raises(DegError, match="unreadable retrain state"):
        plan.load_state()


def test_describe_changes_names_what_differs():
    old = {"labels": {"a": "1", "b": "2"}, "flow run": "r1", "same": 1}
    new = {"labels": {"a": "1", "b": "3", "c": "4"}, "flow run": "r2", "same": 1}
    assert describe_changes(old, new) == "changed flow run; labels: b, c"
    assert describe_changes(old, old) == "unchanged"
    many = {"labels": {str(i): i for i in range(9)}}
    assert describe_changes({}, many) == "changed labels: 0, 1, 2, 3 (+5)"


# --------------------------------------------------------------------------- the runner


def test_parameters_are_read_as_yaml():
    got = parse_parameters(
        [
            ("epochs", "3"),
            ("stages", "[sequence, infer]"),
            ("force", "true"),
            ("device", "cpu"),
            ("preset", "null"),
            ("settings", '["sequence.lr=1e-3"]'),
        ]
    )
    assert got == {
        "epochs": 3,
        "stages": ["sequence", "infer"],
        "force": True,
        "device": "cpu",
        "preset": None,
        "settings": ["sequence.lr=1e-3"],
    }
    with pytest.raises(DegError, match="stages"):
        parse_parameters([("stages", "[unclosed")])


def test_report_paths_are_new_each_time(tiny):
    now = dt.datetime(2025, 1, 2, 3, 4, 5)
    first = report_path(tiny, now)
    assert first == tiny.root / "reports" / "250102_030405_retrain.ipynb"
    first.write_text("{}")
    second = report_path(tiny, now)
    assert second.name == "250102_030405_retrain_2.ipynb"
    assert sorted([second, first]) == [first, second]


def test_failed_step_reads_the_failing_cells_tag():
    def cell(tag, **papermill):
        return {
            "cell_type": "code",
            "outputs": [],
            "metadata": {"tags": [f"step:{tag}"], "papermill": papermill},
        }

    nb = {"cells": [cell("setup"), cell("flow", exception=True), cell("features")]}
    assert failed_step(nb) == "flow"
    nb = {"cells": [cell("setup"), cell("features", status="running")]}  # kernel died
    assert failed_step(nb) == "features"
    assert failed_step({"cells": [cell("setup")]}) == "unknown"


def test_unknown_parameter_fails_before_running(tiny, capsys):
    code = main(["retrain", str(tiny.root), "-p", "epoch", "3"])
    err = capsys.readouterr().err
    assert code == 1 and "unknown or reserved parameter(s) ['epoch']" in err
    assert len(err.strip().splitlines()) == 1
    code = main(["retrain", str(tiny.root), "-p", "project_path", "/elsewhere"])
    assert code == 1 and "['project_path']" in capsys.readouterr().err
    assert not list((tiny.root / "reports").glob("*.ipynb"))


def reports(root: Path) -> list[Path]:
    return sorted((root / "reports").glob("*_retrain*.ipynb"))


@pytest.mark.slow
def test_deg_retrain_names_the_failing_step(tiny, capsys):
    code = main(["retrain", str(tiny.root), "-p", "stages", "[sequence]", "-p", "device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "retrain step 'sequence' failed: ProjectError" in err
    assert "no trained features model yet" in err
    (report,) = reports(tiny.root)
    assert str(report) in err
    nb = nbformat.read(report, as_version=4)
    assert nb.metadata["papermill"]["exception"] is True


def test_installed_deg_carries_the_retrain_notebook():
    """A wheel install has no notebooks/ folder: pyproject force-includes retrain.ipynb
    where default_notebook() looks after the checkout's copy."""
    import tomllib

    from deg_core.workflow import retrain_runner

    root = Path(__file__).resolve().parents[2]
    cfg = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    include = cfg["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    packaged = {dest: src for src, dest in include.items()}["deg_core/notebooks/retrain.ipynb"]
    assert (root / packaged).is_file()
    checkout, installed = retrain_runner.NOTEBOOK_CANDIDATES
    assert installed.relative_to(root).as_posix() == "deg_core/notebooks/retrain.ipynb"
    assert retrain_runner.default_notebook() == checkout
