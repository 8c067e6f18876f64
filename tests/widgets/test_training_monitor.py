"""TrainingMonitor: driven by a fake trainer, by real metric records, and by a real tiny run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from deg_core.evaluation.decisions import fit_decision
from deg_core.project.project import Project
from deg_core.train.common import decision_metrics
from deg_core.video import write_video
from deg_widgets import TrainingMonitor
from deg_widgets.training_monitor import decimate
from tests.conftest import moving_square_frames
from tests.pipeline import TINY


@dataclass
class FakeTrainer:
    """The attributes the Callback protocol promises (deg_core.train.loop.Trainer)."""

    num_epochs: int = 3
    steps_per_epoch: int = 4
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0

    def step(self, mon: TrainingMonitor, loss: float) -> None:
        self.step_in_epoch += 1
        self.global_step += 1
        mon.on_step(self, loss)

    def end_epoch(self, mon: TrainingMonitor, record: dict) -> None:
        self.epoch += 1  # the real loop moves on before calling the callbacks
        self.step_in_epoch = 0
        mon.on_epoch_end(self, record)


def reference_ema(values, alpha):
    acc = weight = 0.0
    out = []
    for v in values:
        acc, weight = alpha * acc + (1 - alpha) * v, alpha * weight + (1 - alpha)
        out.append(acc / weight)
    return np.asarray(out)


def test_steps_update_progress_and_the_step_curve():
    mon, tr = TrainingMonitor(min_interval=0, smoothing=0.5), FakeTrainer()
    losses = [1.0, 0.8, 0.9, 0.4]
    for i, loss in enumerate(losses[:3]):
        tr.step(mon, loss)
        assert mon.progress.value == i + 1
    assert (mon.progress.max, mon.progress.description) == (4, "epoch 1/3")
    np.testing.assert_array_equal(mon.step_line.x, [1, 2, 3])
    np.testing.assert_allclose(mon.step_line.y[0], losses[:3])
    np.testing.assert_allclose(mon.step_line.y[1], reference_ema(losses[:3], 0.5))
    assert f"loss {reference_ema(losses[:3], 0.5)[-1]:.4f}" in mon.status.value
    assert "step 3/4" in mon.status.value
    assert "steps/s" in mon.status.value  # rate from step 1 (start-up excluded) to step 3


def test_epoch_records_draw_losses_best_marks_and_f1_curves():
    mon, tr = TrainingMonitor(min_interval=0), FakeTrainer(num_epochs=2, steps_per_epoch=2)
    assert mon.f1_fig not in mon.epoch_box.children
    recs = [
        {"epoch": 0, "train_loss": 1.0, "val_loss": 0.9, "best": True,
         "f1": {"groom": 0.2, "rear": None}, "macro_f1": 0.2},
        {"epoch": 1, "train_loss": 0.6, "val_loss": 0.95, "best": False,
         "f1": {"groom": 0.5, "rear": 0.3}, "macro_f1": 0.4},
    ]  # fmt: skip
    for rec in recs:
        tr.step(mon, 1.0)
        tr.step(mon, 0.5)
        tr.end_epoch(mon, rec)
    assert mon.progress.value == 2 and mon.progress.description == "epoch 2/2"
    np.testing.assert_array_equal(mon.epoch_line.x, [1, 2])
    np.testing.assert_allclose(mon.epoch_line.y, [[1.0, 0.6], [0.9, 0.95]])
    np.testing.assert_array_equal(mon.best_marks.x, [1])
    np.testing.assert_allclose(mon.best_marks.y, [0.9])
    assert mon.f1_line.labels == ["groom", "rear", "macro"]
    np.testing.assert_allclose(mon.f1_line.y, [[0.2, 0.5], [np.nan, 0.3], [0.2, 0.4]])
    assert mon.epoch_box.children == (mon.epoch_fig, mon.f1_fig)  # shown once F1 arrives
    assert "macro F1 0.400" in mon.status.value and "best val 0.9000" in mon.status.value


def test_records_from_the_cores_metrics_plot_every_behaviour():
    """Keys as deg_core writes them (decision_metrics), so a renamed key fails here."""
    rng = np.random.default_rng(0)
    y = (rng.random((50, 3)) < 0.4).astype(np.int8)
    p = np.clip(y * 0.6 + rng.random((50, 3)) * 0.5, 0, 1)
    logits = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
    names = ["walk", "groom", "rear"]
    decision = fit_decision([logits], [y], names)
    val = decision_metrics([logits], [y], names, [0.3], decision)
    rec = {"epoch": 0, "train_loss": 0.5, "val_loss": val.pop("loss"), **val, "best": True}
    mon, tr = TrainingMonitor(min_interval=0), FakeTrainer(num_epochs=1, steps_per_epoch=1)
    tr.step(mon, 0.5)
    tr.end_epoch(mon, rec)
    assert mon.f1_line.labels == ["walk", "groom", "rear", "macro"]
    expected = [val["f1"][b] for b in ("walk", "groom", "rear")] + [val["macro_f1"]]
    # one epoch: sent as two equal points (bqplot would squeeze a (L, 1) y into one line)
    assert mon.f1_line.y.shape == (4, 2)
    np.testing.assert_allclose(mon.f1_line.y[:, 0], expected)
    np.testing.assert_allclose(mon.f1_line.y[:, 1], expected)
    np.testing.assert_array_equal(mon.epoch_line.x, [1, 1])
    assert np.all(np.isfinite(mon.f1_line.y))


def test_step_updates_are_throttled():
    mon, tr = TrainingMonitor(min_interval=3600), FakeTrainer(steps_per_epoch=1000)
    for _ in range(500):
        tr.step(mon, 1.0)
    assert mon.updates == 1  # only the first step reached the UI
    assert set(mon.step_line.x) == {1} and len(mon.losses) == 500
    mon.flush()
    assert len(mon.step_line.x) == 500 and mon.progress.value == 500
    tr.end_epoch(mon, {"epoch": 0, "train_loss": 1.0, "val_loss": 1.0})
    assert mon.updates == 3  # epoch ends always update


def test_the_step_curve_is_averaged_down_to_max_points():
    mon, tr = TrainingMonitor(min_interval=0, max_points=100), FakeTrainer(steps_per_epoch=10**6)
    for i in range(1050):
        tr.step(mon, float(i))
    assert len(mon.step_line.x) <= 101
    # bins of ceil(1050 / 100) = 11 steps; the newest 5 steps make a last, partial bin
    assert mon.step_line.x[-1] == pytest.approx(np.mean([1046, 1047, 1048, 1049, 1050]))
    np.testing.assert_allclose(mon.step_line.y[0], mon.step_line.x - 1)  # loss_i = step - 1
    x, y = decimate(np.arange(10.0), np.arange(10.0) * 2, 5)
    np.testing.assert_allclose(x, [0.5, 2.5, 4.5, 6.5, 8.5])
    np.testing.assert_allclose(y, 2 * x)


def test_a_monitor_failure_is_shown_and_does_not_stop_training():
    mon = TrainingMonitor(min_interval=0)
    mon.on_step(object(), 1.0)  # no trainer attributes
    assert "monitor error" in mon.status.value and "AttributeError" in mon.status.value
    mon.on_epoch_end(FakeTrainer(epoch=1), {"epoch": 0, "val_loss": "oops", "f1": 3})
    np.testing.assert_array_equal(mon.epoch_line.x, [1, 1])  # one epoch: a doubled point
    assert np.isnan(mon.epoch_line.y[1]).all()  # bad values become gaps


def test_every_axis_has_an_explicit_tick_format():
    # without one bqplot guesses ".undefinedg" for a scale that has no data yet, and every
    # later redraw of the axis throws (tests/browser: ..._axes_labelled_when_losses_arrive...)
    from bqplot import Figure  # type: ignore[import-untyped]

    mon = TrainingMonitor()
    figures = [v for v in vars(mon).values() if isinstance(v, Figure)]
    assert {id(f) for f in figures} == {id(mon.step_fig), id(mon.epoch_fig), id(mon.f1_fig)}
    for fig in figures:
        assert [a.tick_format for a in fig.axes] == ["~g", "~g"], fig.title


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="smoothing"):
        TrainingMonitor(smoothing=1.0)
    with pytest.raises(ValueError, match="max_points"):
        TrainingMonitor(max_points=1)


def test_from_run_plots_a_finished_runs_metrics(tmp_path):
    run = tmp_path / "240101_120000_sequence_tgmj"
    run.mkdir()
    recs = [
        {"epoch": 0, "train_loss": 0.9, "val_loss": 0.8, "best": True, "f1": {"a": 0.1},
         "macro_f1": 0.1},
        {"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "best": True, "f1": {"a": 0.4},
         "macro_f1": 0.4},
    ]  # fmt: skip
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    mon = TrainingMonitor.from_run(run)
    assert run.name in mon.header.value
    np.testing.assert_allclose(mon.epoch_line.y, [[0.9, 0.7], [0.8, 0.6]])
    np.testing.assert_allclose(mon.f1_line.y, [[0.1, 0.4], [0.1, 0.4]])
    assert (mon.progress.value, mon.progress.max) == (2, 2)
    assert mon.step_fig.layout.display == "none"
    assert "best val 0.6000" in mon.status.value
    empty = TrainingMonitor.from_run(tmp_path)  # no metrics.jsonl yet
    assert "no epochs" in empty.status.value


@pytest.mark.slow
def test_real_flow_training_drives_the_monitor(tmp_path):
    """A tiny train_flow run (2 epochs x 2 steps) with the monitor as its callback."""
    from deg_core.train.flow import train_flow

    project = Project.create(tmp_path, "mon", ["a"])
    for i, split in enumerate(["train", "val"]):
        path = Path(tmp_path / f"v{i}.mp4")
        write_video(path, moving_square_frames(24, 32, 32, seed=i), fps=30)
        project.add_videos([path], split=split)
    cfg = project.resolve_config(
        [
            *TINY,
            "augs.resize=[32, 32]",
            "flow_generator.num_epochs=2",
            "flow_generator.steps_per_epoch=2",
            "flow_generator.val_steps=1",
        ]
    )
    mon = TrainingMonitor(min_interval=0)
    run = train_flow(project, cfg, device="cpu", progress=False, callbacks=[mon])
    np.testing.assert_array_equal(mon.step_line.x, [1, 2, 3, 4])
    assert np.all(np.isfinite(mon.step_line.y)) and mon.step_line.y.shape == (2, 4)
    assert (mon.progress.value, mon.progress.max) == (2, 2)
    assert mon.progress.description == "epoch 2/2"
    np.testing.assert_array_equal(mon.epoch_line.x, [1, 2])
    written = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(mon.epoch_line.y[1], [r["val_loss"] for r in written])
    assert mon.f1_fig not in mon.epoch_box.children  # flow runs have no F1
    assert "monitor error" not in mon.status.value
