"""TrainingMonitor: live training curves in a notebook (a deg_core training Callback).

Usage::

    mon = TrainingMonitor()
    display(mon)
    train_features(project, cfg, callbacks=[mon])

    TrainingMonitor.from_run(run_dir)  # the curves of a finished run (its metrics.jsonl)

It is an ipywidgets ``VBox`` of a progress bar, a status line and three bqplot
figures: train loss per step (raw and smoothed), train/val loss per epoch, and F1 per
behaviour (plus macro F1) per epoch. bqplot sends the curves as binary arrays.
Step updates are throttled (``min_interval``), so a fast loop is not slowed by the UI,
and the step curve is averaged down to at most ``max_points`` points. An exception
inside the monitor is shown in the status line and never stops the training.
"""

from __future__ import annotations

import html
import logging
import math
import time
import traceback
from pathlib import Path
from typing import Any

import ipywidgets as widgets  # type: ignore[import-untyped]
import numpy as np
from bqplot import Axis, Figure, LinearScale, Lines, Scatter  # type: ignore[import-untyped]

from deg_core.project.runs import best_epoch, read_metrics
from deg_core.report.charts import PALETTE

log = logging.getLogger(__name__)
MACRO = "macro"
TICKS = "~g"  # the d3 tick format of every axis (see _figure)
Y_LABEL_OFFSET = "50px"  # clear of tick labels like "0.0425" (bqplot's 4ex overlaps them)


def decimate(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Average ``(N,)`` x and y in equal consecutive bins so at most ``max_points`` remain."""
    n = len(x)
    if n <= max_points:
        return x, y
    size = math.ceil(n / max_points)
    m = n // size * size
    xs = x[:m].reshape(-1, size).mean(axis=1)
    ys = y[:m].reshape(-1, size).mean(axis=1)
    if m < n:  # the newest steps, a partial bin, are not dropped
        xs, ys = np.append(xs, x[m:].mean()), np.append(ys, y[m:].mean())
    return xs, ys


def _num(x: Any) -> float:
    """A record value as float; None and non-numbers become NaN (a gap in the line)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def set_lines(mark: Lines, x: np.ndarray, rows: np.ndarray) -> None:
    """Set a multi-line mark's ``(N,)`` x and ``(L, N)`` y in one message.

    bqplot squeezes a ``(L, 1)`` y into ``(L,)``, which it then draws as ONE line of L
    points; a single point is therefore sent twice (it renders the same).
    """
    if len(x) == 1:
        x, rows = np.repeat(x, 2), np.repeat(rows, 2, axis=1)
    with mark.hold_sync():
        mark.x, mark.y = x, rows


def _figure(
    title: str, x_label: str, y_label: str, marks: list[Any], width: str = "100%"
) -> Figure:
    sx, sy = marks[0].scales["x"], marks[0].scales["y"]
    # an explicit tick format: bqplot's guess for a linear scale without ticks (no data
    # yet) is the d3 format ".undefinedg", and once data comes every redraw of that axis
    # throws "invalid format: .undefinedg" before it would guess again, so its ticks stay
    # unlabelled. "~g": 6 significant digits, trailing zeros trimmed (0.05, 1, 2500).
    x_axis = Axis(scale=sx, label=x_label, side="bottom", grid_lines="none", tick_format=TICKS)
    y_axis = Axis(
        scale=sy,
        label=y_label,
        side="left",
        grid_lines="dashed",
        tick_format=TICKS,
        label_offset=Y_LABEL_OFFSET,
    )
    return Figure(
        marks=marks,
        axes=[x_axis, y_axis],
        title=title,
        layout=widgets.Layout(width=width, height="260px", min_width="300px"),
        fig_margin={"top": 40, "bottom": 40, "left": 68, "right": 20},
    )


class TrainingMonitor(widgets.VBox):
    """Live training curves; pass it in ``callbacks=[...]`` of any deg training function.

    Args:
        title: shown above the progress bar.
        min_interval: seconds between two UI updates from ``on_step`` (epoch ends
            always update).
        smoothing: EMA factor in [0, 1) of the smoothed step loss.
        max_points: the most points the step-loss curve sends to the browser.

    Attributes (for tests and notebooks): ``progress`` (IntProgress: step in epoch),
    ``status`` (HTML line), ``step_line`` (Lines, rows raw/smoothed), ``epoch_line``
    (Lines, rows train/val), ``f1_line`` (Lines, one row per behaviour then macro),
    ``best_marks`` (Scatter, best epochs' val loss), and the histories ``steps``,
    ``losses``, ``records``.
    """

    def __init__(
        self,
        title: str = "training",
        *,
        min_interval: float = 0.2,
        smoothing: float = 0.9,
        max_points: int = 2000,
    ) -> None:
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        if max_points < 2:
            raise ValueError(f"max_points must be >= 2, got {max_points}")
        self.min_interval = float(min_interval)
        self.smoothing = float(smoothing)
        self.max_points = int(max_points)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []  # debiased EMA of losses, kept step by step (O(1))
        self._ema = (0.0, 0.0)  # (accumulator, weight)
        self.records: list[dict[str, Any]] = []
        self.behaviors: list[str] = []
        self.updates = 0  # UI refreshes so far (throttling is testable)
        self._last_flush = -math.inf
        self._rate_ref: tuple[float, int] | None = None  # (time, global step) of the rate base
        self._rate: float | None = None
        self._position = (0, 0, 0, 0)  # epoch, num_epochs, step_in_epoch, steps_per_epoch
        self._error = ""

        self.header = widgets.HTML(f"<b>{html.escape(title)}</b>")
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, description="epoch –", bar_style="info",
            layout=widgets.Layout(width="60%"),
        )  # fmt: skip
        self.status = widgets.HTML("waiting for the first step…")

        step_scales = {"x": LinearScale(), "y": LinearScale()}
        self.step_line = Lines(
            x=np.zeros(0), y=np.zeros((2, 0)), scales=step_scales,
            colors=["#9ecae1", "#1f77b4"], stroke_width=1.5,
            labels=["loss", "smoothed"], display_legend=True,
        )  # fmt: skip
        epoch_scales = {"x": LinearScale(), "y": LinearScale()}
        self.epoch_line = Lines(
            x=np.zeros(0), y=np.zeros((2, 0)), scales=epoch_scales, marker="circle",
            colors=["#1f77b4", "#ff7f0e"], labels=["train", "val"], display_legend=True,
        )  # fmt: skip
        self.best_marks = Scatter(
            x=np.zeros(0), y=np.zeros(0), scales=epoch_scales, marker="diamond",
            colors=["#2ca02c"], default_size=90, labels=["best"], display_legend=True,
        )  # fmt: skip
        f1_scales = {"x": LinearScale(), "y": LinearScale(min=0.0, max=1.0)}
        self.f1_line = Lines(
            x=np.zeros(0), y=np.zeros((1, 0)), scales=f1_scales, marker="circle",
            labels=[MACRO], display_legend=True,
        )  # fmt: skip
        self.step_fig = _figure("train loss per step", "step", "loss", [self.step_line])
        # side by side, half the width each
        self.epoch_fig = _figure(
            "loss per epoch", "epoch", "loss", [self.epoch_line, self.best_marks], "50%"
        )
        self.f1_fig = _figure("validation F1 per epoch", "epoch", "F1", [self.f1_line], "50%")
        # the F1 figure joins once a record carries F1 (flow runs never do); a bqplot
        # figure created hidden keeps a zero size when shown, so it is added, not unhidden
        self.epoch_box = widgets.HBox([self.epoch_fig], layout=widgets.Layout(width="100%"))
        super().__init__(
            [
                self.header,
                widgets.HBox([self.progress, self.status]),
                self.step_fig,
                self.epoch_box,
            ]
        )

    # ------------------------------------------------------------------ Callback protocol
    def on_step(self, trainer: Any, loss: float) -> None:
        """Record one optimisation step; refresh the UI at most every ``min_interval`` s."""
        try:
            # read everything before storing anything, so a bad trainer leaves no half step
            step, value = int(trainer.global_step), float(loss)
            position = (
                int(trainer.epoch), int(trainer.num_epochs),
                int(trainer.step_in_epoch), int(trainer.steps_per_epoch),
            )  # fmt: skip
            acc, weight = self._ema
            a = self.smoothing
            self._ema = (a * acc + (1 - a) * value, a * weight + (1 - a))
            self.steps.append(step)
            self.losses.append(value)
            self.smoothed.append(self._ema[0] / self._ema[1])
            self._position = position
            now = time.monotonic()
            if self._rate_ref is None:
                # the first step includes start-up work: the rate starts after it
                self._rate_ref = (now, step)
            if now - self._last_flush >= self.min_interval:
                self._flush(now)
        except Exception as exc:
            self._report(exc)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        """Append the epoch's losses and F1 values and refresh the UI."""
        try:
            self._position = (
                int(trainer.epoch) - 1, int(trainer.num_epochs),
                int(trainer.steps_per_epoch), int(trainer.steps_per_epoch),
            )  # fmt: skip  # the trainer has already moved on to the next epoch
            self._add_record(record)
            self._flush(time.monotonic())
            self._rate_ref = None  # validation time must not count as training steps
        except Exception as exc:
            self._report(exc)

    # ------------------------------------------------------------------ finished runs
    @classmethod
    def from_run(cls, run_dir: str | Path, **kwargs: Any) -> TrainingMonitor:
        """A monitor showing a finished (or interrupted) run's per-epoch curves."""
        run_dir = Path(run_dir)
        mon = cls(title=run_dir.name, **kwargs)
        records = read_metrics(run_dir)
        for r in records:
            mon._add_record(r)
        mon.step_fig.layout.display = "none"  # step losses are not stored, only epochs
        n = len(records)
        mon.progress.max, mon.progress.value = max(n, 1), n
        mon.progress.description = f"{n} epochs"
        mon.progress.bar_style = "success" if n else "warning"
        mon._position = (n - 1, n, 0, 0)
        mon._flush(time.monotonic())
        mon.status.value = mon._epoch_summary() or "no epochs recorded yet"
        return mon

    def flush(self) -> None:
        """Push everything recorded so far to the browser now (ignores the throttle)."""
        self._flush(time.monotonic())

    # ------------------------------------------------------------------ internals
    def _add_record(self, record: dict[str, Any]) -> None:
        self.records.append(dict(record))
        f1 = record.get("f1")
        if isinstance(f1, dict):
            for name in f1:
                if name not in self.behaviors:
                    self.behaviors.append(str(name))

    def _flush(self, now: float) -> None:
        self._last_flush = now
        self.updates += 1
        self._draw_steps()
        self._draw_epochs()
        self._draw_progress(now)

    def _draw_steps(self) -> None:
        if not self.steps:
            return
        x = np.asarray(self.steps, dtype=np.float64)
        y = np.asarray(self.losses, dtype=np.float64)
        xs, ys = decimate(x, y, self.max_points)
        _, ss = decimate(x, np.asarray(self.smoothed, dtype=np.float64), self.max_points)
        set_lines(self.step_line, xs, np.vstack([ys, ss]))

    def _draw_epochs(self) -> None:
        if not self.records:
            return
        epochs = np.asarray([_num(r.get("epoch")) + 1 for r in self.records])  # 1-based
        train = np.asarray([_num(r.get("train_loss")) for r in self.records])
        val = np.asarray([_num(r.get("val_loss")) for r in self.records])
        set_lines(self.epoch_line, epochs, np.vstack([train, val]))
        # whole-epoch ticks while they fit (d3 would also tick 1.1, 1.2, ...)
        ticks = np.unique(epochs[np.isfinite(epochs)]) if len(epochs) <= 12 else None
        for fig in (self.epoch_fig, self.f1_fig):
            fig.axes[0].tick_values = ticks
        best = np.asarray([bool(r.get("best")) for r in self.records])
        with self.best_marks.hold_sync():
            self.best_marks.x, self.best_marks.y = epochs[best], val[best]
        if not self.behaviors:
            return
        rows = [[_num((r.get("f1") or {}).get(b)) for r in self.records] for b in self.behaviors]
        rows.append([_num(r.get("macro_f1")) for r in self.records])
        k = len(self.behaviors)
        with self.f1_line.hold_sync():
            set_lines(self.f1_line, epochs, np.asarray(rows))
            self.f1_line.labels = [*self.behaviors, MACRO]
            self.f1_line.colors = [PALETTE[i % len(PALETTE)] for i in range(k)] + ["black"]
        if self.f1_fig not in self.epoch_box.children:
            self.epoch_box.children = (self.epoch_fig, self.f1_fig)

    def _draw_progress(self, now: float) -> None:
        epoch, n_epochs, step, n_steps = self._position
        if n_steps:
            self.progress.max = n_steps
            self.progress.value = min(step, n_steps)
            self.progress.description = f"epoch {epoch + 1}/{n_epochs}"
        if self._rate_ref is not None and self.steps:
            t0, s0 = self._rate_ref
            if now > t0 and self.steps[-1] > s0:
                self._rate = (self.steps[-1] - s0) / (now - t0)
        if self._error:
            return
        parts = [f"step {step}/{n_steps}"] if n_steps else []
        if self.smoothed:
            parts.append(f"loss {self.smoothed[-1]:.4f}")
        if self._rate is not None:
            parts.append(f"{self._rate:.1f} steps/s")
        summary = self._epoch_summary()
        self.status.value = " · ".join(parts) + (f"<br>{summary}" if summary else "")

    def _epoch_summary(self) -> str:
        if not self.records:
            return ""
        last = self.records[-1]
        text = f"epoch {int(_num(last.get('epoch'))) + 1}: "
        text += f"train {_num(last.get('train_loss')):.4f}, val {_num(last.get('val_loss')):.4f}"
        if last.get("macro_f1") is not None:
            text += f", macro F1 {_num(last.get('macro_f1')):.3f}"
        best = best_epoch(self.records)
        if best is not None:
            text += f" (best val {float(best['val_loss']):.4f})"
        return text

    def _report(self, exc: Exception) -> None:
        """Show a monitor failure in the status line (red) and keep the training going."""
        log.error("TrainingMonitor: %s", "".join(traceback.format_exception(exc)))
        self._error = f"{type(exc).__name__}: {exc}"
        self.status.value = (
            f'<span style="color:#b00020;font-weight:600">monitor error: '
            f"{html.escape(self._error)}</span>"
        )
