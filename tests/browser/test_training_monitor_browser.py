"""TrainingMonitor in JupyterLab: the bqplot figures and the progress bar render live."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

FEED = """
from types import SimpleNamespace
from deg_widgets import TrainingMonitor
mon = TrainingMonitor("demo run", min_interval=0)
display(mon)
tr = SimpleNamespace(epoch=0, num_epochs=2, steps_per_epoch=5, step_in_epoch=0, global_step=0)
for e in range(2):
    for s in range(5):
        tr.step_in_epoch, tr.global_step = s + 1, tr.global_step + 1
        mon.on_step(tr, 1.0 / tr.global_step)
    tr.epoch, tr.step_in_epoch = e + 1, 0
    mon.on_epoch_end(tr, {"epoch": e, "train_loss": 1 - e / 4, "val_loss": 1 - e / 5,
                          "best": True, "f1": {"walk": 0.3 + e / 5, "groom": 0.2},
                          "macro_f1": 0.25 + e / 10})
"""


def test_training_monitor_renders_curves_and_progress(run_notebook, tmp_path):
    page = run_notebook([FEED])
    figures = page.locator(".bqplot.figure")
    figures.first.wait_for(timeout=30_000)
    # steps, epoch losses and F1 figures are all shown; each draws its lines
    page.wait_for_function(
        "() => document.querySelectorAll('.bqplot.figure').length === 3 && "
        "[...document.querySelectorAll('.bqplot.figure')].every(f => "
        "[...f.querySelectorAll('path.line')].some(p => (p.getAttribute('d') || '').length > 10))",
        timeout=20_000,
    )
    for i in range(3):  # laid out, not merely in the DOM
        box = figures.nth(i).bounding_box()
        assert box is not None and box["width"] > 250 and box["height"] > 150, (i, box)
    titles = page.locator(".bqplot.figure .mainheading").all_text_contents()
    assert titles == ["train loss per step", "loss per epoch", "validation F1 per epoch"]
    f1_text = figures.nth(2).text_content() or ""  # title, axes and legend
    assert "walk" in f1_text and "groom" in f1_text and "macro" in f1_text
    progress = page.locator(".widget-hprogress, .widget-progress").first
    assert "epoch 2/2" in progress.inner_text()
    assert "macro F1 0.350" in page.locator(".widget-html").all_inner_texts()[-1]
    page.locator(".jp-OutputArea-output").last.screenshot(path=str(tmp_path / "monitor.png"))
