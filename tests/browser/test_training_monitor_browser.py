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


# shown before any step, as in a notebook where training starts after display(monitor):
# the figures render with empty scales and the losses arrive later
LIVE = """
from types import SimpleNamespace
from deg_widgets import TrainingMonitor
mon = TrainingMonitor("live run", min_interval=0)
tr = SimpleNamespace(epoch=0, num_epochs=2, steps_per_epoch=20, step_in_epoch=0, global_step=0)

def feed(n):
    for _ in range(n):
        tr.step_in_epoch, tr.global_step = tr.step_in_epoch + 1, tr.global_step + 1
        mon.on_step(tr, 0.04 + 0.02 / tr.global_step)

def end_epoch():
    e = tr.epoch
    tr.epoch, tr.step_in_epoch = e + 1, 0
    mon.on_epoch_end(tr, {"epoch": e, "train_loss": 0.05 - e / 100, "val_loss": 0.06 - e / 100,
                          "best": True, "f1": {"walk": 0.3 + e / 5}, "macro_f1": 0.3 + e / 5})

mon
"""

# {figure title: {axis label: [tick label texts]}} of the rendered bqplot figures
_JS_AXIS_TICKS = """() => {
  const out = {};
  for (const fig of document.querySelectorAll('.bqplot.figure')) {
    const axes = {};
    for (const g of fig.querySelectorAll('g.axis')) {
      const label = g.querySelector(':scope > text.axislabel');
      if (label) axes[label.textContent] = [...g.querySelectorAll('.tick text')].map(
        (t) => t.textContent);
    }
    out[fig.querySelector('.mainheading').textContent] = axes;
  }
  return out;
}"""


_JS_ALL_LABELLED = f"""() => {{
  const figs = Object.values(({_JS_AXIS_TICKS})());
  return figs.length === 3 && figs.every((axes) => Object.keys(axes).length === 2 &&
    Object.values(axes).every((labels) => labels.length > 0));
}}"""


def test_training_monitor_axes_labelled_when_losses_arrive_after_render(
    run_notebook, kernel_exec, tmp_path
):
    """Every axis has tick labels when the losses come after the (empty) first render.

    bqplot guessed the tick format ``.undefinedg`` for an empty linear scale; the data
    that came later then made each axis redraw throw ``invalid format: .undefinedg``
    (a console error, which the page_errors check fails on) before it reformatted, so
    the step loss figure had no tick labels.
    """
    page = run_notebook([LIVE])
    page.wait_for_function(  # the step and epoch figures, drawn empty
        "() => document.querySelectorAll('.bqplot.figure g.axis > text.axislabel').length === 4",
        timeout=30_000,
    )
    page.wait_for_timeout(500)  # settled, so the losses below arrive after the first render
    for _ in range(3):  # a few updates, each a new domain for the step figure's scales
        kernel_exec(page, "feed(5)")
        page.wait_for_timeout(300)
    kernel_exec(page, "end_epoch(); feed(5); end_epoch()")
    try:
        page.wait_for_function(_JS_ALL_LABELLED, timeout=20_000, polling=200)
    finally:
        ticks = page.evaluate(_JS_AXIS_TICKS)
        (tmp_path / "axis_ticks.txt").write_text(repr(ticks))
    blank = [(f, a) for f, axes in ticks.items() for a, ts in axes.items() if "" in ts]
    assert not blank, f"ticks without a label on {blank}: {ticks}"
    step_y = [float(t) for t in ticks["train loss per step"]["loss"]]
    assert len(step_y) >= 2 and all(0.03 <= y <= 0.07 for y in step_y), step_y  # the losses
    assert ticks["loss per epoch"]["epoch"] == ["1", "2"], ticks
    assert ticks["validation F1 per epoch"]["F1"][-1] == "1", ticks
    page.locator(".jp-OutputArea-output").last.screenshot(path=str(tmp_path / "live.png"))
