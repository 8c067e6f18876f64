"""The Labeler in a real JupyterLab: label by keyboard and mouse, save, reload, review.

One notebook shows a Labeler over a generated project whose first video is unlabelled
and has predictions. The test labels through the page only (keys and mouse), saves with
Ctrl+S, and compares the CSV on disk with the array the same gestures must produce.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.browser

N_FRAMES = 90
BEHAVIORS = ("walk", "groom", "rear")  # subset of the synthetic behaviours, in column order
SEQ_RUN = "260101_000000_sequence_tgmj"  # an outputs.h5 group named like a sequence run


def fnv1a(array: np.ndarray) -> str:
    """The front end's ``data-labels-hash``: 32-bit FNV-1a over the int8 bytes."""
    h = 0x811C9DC5
    for b in np.ascontiguousarray(array, np.int8).tobytes():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def make_project(parent: Path) -> tuple[Path, str]:
    """A 2-video project, no labels, with P and predictions for the first video."""
    from deg_core.labels.labels import Labels, write_labels
    from deg_core.project.outputs import writing_group
    from deg_core.workflow.synthetic import SyntheticSpec, make_synthetic_project

    spec = SyntheticSpec(n_frames=N_FRAMES, size=64, behaviors=BEHAVIORS)
    project = make_synthetic_project(parent, "t", n_videos=2, spec=spec, labeled_fraction=0.0)
    key = project.video_keys()[0]
    rec = project.record(key)
    assert not rec.labels_path.exists()
    t = np.arange(N_FRAMES)[:, None]
    # P crosses its threshold every 15 frames, so "u" always has somewhere to go
    probs = (0.5 + 0.45 * np.sin(2 * np.pi * t / 30 + np.arange(len(BEHAVIORS)))).astype(np.float32)
    thresholds = np.full(len(BEHAVIORS), 0.5, np.float32)
    with writing_group(rec.outputs_path, SEQ_RUN, list(BEHAVIORS), thresholds, video=key) as g:
        g.create_dataset("P", data=probs)
        g.create_dataset("logits", data=np.log(probs / (1 - probs)))
    write_labels(rec.predictions_path, Labels(list(BEHAVIORS), (probs >= 0.5).astype(np.int8)))
    return project.root, key


def root_data(page: Any, name: str) -> str:
    return str(page.locator(".deg-lab").get_attribute(f"data-{name}"))


def wait_data(page: Any, name: str, value: str, timeout: float = 10.0) -> None:
    """Wait until the widget root's ``data-<name>`` equals ``value``."""
    page.wait_for_function(
        "([n, v]) => { const r = document.querySelector('.deg-lab');"
        " return r && r.getAttribute('data-' + n) === v; }",
        arg=[name, value],
        timeout=timeout * 1000,
        polling=50,
    )


def press(page: Any, *keys: str) -> None:
    for k in keys:
        page.keyboard.press(k)


def go_to(page: Any, frame: int) -> None:
    """Home, then Shift+ArrowRight (x10) and ArrowRight: only keys move the playhead."""
    tens, ones = divmod(frame, 10)
    press(page, "Home", *["Shift+ArrowRight"] * tens, *["ArrowRight"] * ones)
    wait_data(page, "frame", str(frame))


def next_paint(page: Any) -> None:
    """Wait for the page's next animation frame (the widget redraws in one)."""
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r()))")


def row_point(page: Any, behavior: int, frame: int) -> tuple[float, float]:
    """Page coordinates of ``frame``'s centre on ``behavior``'s label row (from the canvas's
    published geometry: x = plotX + (f - viewStart) / viewSpan * plotW)."""
    next_paint(page)  # a view that just changed is drawn as well as published
    tl = page.locator(".deg-lab-timeline")
    box = tl.bounding_box()
    g = tl.evaluate("c => ({...c.dataset})")
    x = float(g["plotX"]) + (frame + 0.5 - float(g["viewStart"])) / float(g["viewSpan"]) * float(
        g["plotW"]
    )
    y = float(g["labelY"]) + (behavior + 0.5) * float(g["labelRowH"])
    return box["x"] + x, box["y"] + y


def drag_row(
    page: Any, behavior: int, a: int, b: int, alt: bool = False, button: str = "left"
) -> None:
    """Press on ``behavior``'s label row at frame ``a``, move to ``b``, release."""
    x0, y = row_point(page, behavior, a)
    x1, _ = row_point(page, behavior, b)
    if alt:
        page.keyboard.down("Alt")
    page.mouse.move(x0, y)
    page.mouse.down(button=button)
    page.mouse.move((x0 + x1) / 2, y, steps=3)
    page.mouse.move(x1, y, steps=3)
    page.mouse.up(button=button)
    if alt:
        page.keyboard.up("Alt")


def test_label_save_reload_review(run_notebook, kernel_exec, tmp_path):
    from deg_core.labels.labels import read_labels
    from deg_core.project.project import Project

    t_start = time.monotonic()
    root, key = make_project(tmp_path)
    project = Project.open(root)
    labels_csv = project.record(key).labels_path
    page = run_notebook(
        [
            "from deg_widgets.labeler import Labeler\n"
            f"w = Labeler({str(root)!r}, autosave=False)\n"
            "w",
        ]
    )
    page.on("dialog", lambda d: d.accept())  # beforeunload on reload
    lab = page.locator(".deg-lab")
    lab.wait_for(timeout=30_000)
    wait_data(page, "painted-frame", "0", timeout=30)  # the first JPEG arrived and was drawn
    assert root_data(page, "has-predictions") == "true"
    assert root_data(page, "labeled-count") == "0"
    lab.focus()

    expected = np.full((N_FRAMES, len(BEHAVIORS)), -1, np.int8)
    # record a range: "1" at frame 10 toggles walk on and records; 5 steps; "1" stops
    go_to(page, 10)
    press(page, "1", *["ArrowRight"] * 5, "1")
    expected[10:16, 0] = 1
    # single-frame toggles: "2" "2" = toggle without moving; a second pair toggles back off
    go_to(page, 35)
    press(page, "2", "2", "3", "3", "ArrowRight", "2", "2", "2", "2")
    expected[35, 1] = expected[35, 2] = 1
    expected[36, 1] = 0
    # Ctrl+click on a row toggles that frame (the `toggle` message)
    x, y = row_point(page, 2, 50)
    page.keyboard.down("Control")
    page.mouse.click(x, y)
    page.keyboard.up("Control")
    expected[50, 2] = 1
    wait_data(page, "labels-hash", fnv1a(expected))
    # erase one frame (all behaviours), then undo and redo it
    go_to(page, 12)
    before_erase = expected.copy()
    press(page, "x")
    expected[12] = -1
    wait_data(page, "labels-hash", fnv1a(expected))
    press(page, "Control+z")
    wait_data(page, "labels-hash", fnv1a(before_erase))
    press(page, "Control+Shift+Z")
    wait_data(page, "labels-hash", fnv1a(expected))
    # drag on groom's row labels a range present; with Alt, rear's range absent
    drag_row(page, 1, 60, 70)
    expected[60:71, 1] = 1
    drag_row(page, 2, 75, 80, alt=True)
    expected[75:81, 2] = 0
    wait_data(page, "labels-hash", fnv1a(expected))
    assert root_data(page, "frame") == "12"  # drags and ctrl+click did not move the playhead
    # JupyterLab saw none of those keys: "1" in command mode would make a markdown cell
    kinds = page.evaluate(
        "() => { const c = window.__deg.panel.content.model.cells; const out = [];"
        " for (let i = 0; i < c.length; i++) out.push(c.get(i).type); return out; }"
    )
    assert kinds == ["code"]

    assert not labels_csv.exists()  # autosave is off: only Ctrl+S writes
    lab.focus()
    press(page, "Control+s")
    wait_data(page, "dirty", "false")
    saved = read_labels(labels_csv, list(BEHAVIORS), N_FRAMES).array
    np.testing.assert_array_equal(saved, expected)
    assert kernel_exec(page, "print(w.error == '', w.dirty)").split() == ["True", "False"]
    page.locator(".deg-lab").screenshot(path=str(tmp_path / "labeler.png"))

    # reload the page: the notebook (saved with its widget output) re-renders from the kernel
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => !window.__deg.panel.context.model.dirty", timeout=10_000, polling=100
    )
    page.reload()
    # kernel_exec looks for the notebook panel in window.__deg, which the reload cleared
    page.wait_for_function(
        "() => { const p = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " const k = p && p.sessionContext && p.sessionContext.session"
        " && p.sessionContext.session.kernel;"
        " if (!k || k.status !== 'idle') return false;"
        " window.__deg = {panel: p, run: null}; return true; }",
        timeout=60_000,
        polling=200,
    )
    page.locator(".deg-lab").wait_for(timeout=60_000)
    wait_data(page, "labels-hash", fnv1a(expected), timeout=30)
    assert root_data(page, "labeled-count") == str(int((expected != -1).sum()))
    assert root_data(page, "frame") == "12"
    wait_data(page, "painted-frame", "12", timeout=30)

    # the review queue: "u" jumps to the next frame where the model is unsure
    page.locator(".deg-lab").focus()
    press(page, "u")
    page.wait_for_function(
        "() => document.querySelector('.deg-lab').dataset.frame !== '12'",
        timeout=10_000,
        polling=50,
    )
    after_u = int(root_data(page, "frame"))
    assert after_u > 12
    assert int(kernel_exec(page, "print(w.frame)")) == after_u
    press(page, "d")
    page.wait_for_function(
        f"() => document.querySelector('.deg-lab').dataset.frame !== '{after_u}'",
        timeout=10_000,
        polling=50,
    )
    # Space plays (the playhead advances in real time), Space again stops; Python follows
    go_to(page, 0)
    start = 0
    press(page, " ")
    wait_data(page, "playing", "true")
    page.wait_for_function(
        f"() => +document.querySelector('.deg-lab').dataset.frame >= {start + 5}",
        timeout=10_000,
        polling=50,
    )
    press(page, " ")
    wait_data(page, "playing", "false")
    stopped = int(root_data(page, "frame"))
    deadline = time.monotonic() + 10
    while int(kernel_exec(page, "print(w.frame)")) != stopped:
        assert time.monotonic() < deadline, "Python's frame did not follow the playhead"
        time.sleep(0.1)
    # "?" shows the shortcuts over the frame; Esc hides them
    press(page, "?")
    help_box = page.locator(".deg-lab-help")
    assert help_box.is_visible()
    assert "Ctrl/⌘+Z" in help_box.inner_text()
    help_box.screenshot(path=str(tmp_path / "labeler_help.png"))
    press(page, "Escape")
    assert not help_box.is_visible()
    # the picker switches video (frames, labels and length follow), and back
    other = project.video_keys()[1]
    page.locator(".deg-lab-video").select_option(other)
    wait_data(page, "video", other)
    wait_data(page, "painted-frame", "0", timeout=30)
    assert root_data(page, "labeled-count") == "0"
    assert root_data(page, "has-predictions") == "false"
    page.locator(".deg-lab-video").select_option(key)
    wait_data(page, "labels-hash", fnv1a(expected))
    wait_data(page, "painted-frame", "0", timeout=30)
    assert page.locator(".deg-lab-error").inner_text() == ""
    print(f"labeler browser test: {time.monotonic() - t_start:.1f} s")


def timeline_geometry(page: Any) -> dict[str, float]:
    g = page.locator(".deg-lab-timeline").evaluate("c => ({...c.dataset})")
    return {k: float(v) for k, v in g.items() if v != ""}


def test_timeline_zoom_pan_and_mouse_edits(run_notebook, tmp_path):
    from deg_core.labels.labels import read_labels
    from deg_core.project.project import Project

    root, key = make_project(tmp_path)
    rec = Project.open(root).record(key)
    predicted = read_labels(rec.predictions_path, list(BEHAVIORS), N_FRAMES).array
    page = run_notebook(
        [
            "from deg_widgets.labeler import Labeler\n"
            f"w = Labeler({str(root)!r}, autosave=False)\n"
            "w",
        ]
    )
    dialogs: list[str] = []

    def on_dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.accept()

    page.on("dialog", on_dialog)
    lab = page.locator(".deg-lab")
    lab.wait_for(timeout=30_000)
    wait_data(page, "painted-frame", "0", timeout=30)
    assert timeline_geometry(page)["viewSpan"] == N_FRAMES  # starts with the whole video

    # the wheel zooms around the cursor: the frame under it stays under it
    x, y = row_point(page, 0, 45)
    page.mouse.move(x, y)
    page.mouse.wheel(0, -400)
    page.wait_for_function(
        f"() => +document.querySelector('.deg-lab-timeline').dataset.viewSpan < {N_FRAMES}"
    )
    g = timeline_geometry(page)
    box = page.locator(".deg-lab-timeline").bounding_box()
    under = g["viewStart"] + (x - box["x"] - g["plotX"]) / g["plotW"] * g["viewSpan"]
    assert abs(under - 45.5) < 0.5
    # dragging the ruler pans: content follows the mouse to the right, so viewStart drops
    start = g["viewStart"]
    page.mouse.move(x, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(x + 120, box["y"] + 10, steps=4)
    page.mouse.up()
    next_paint(page)
    assert timeline_geometry(page)["viewStart"] < start
    assert root_data(page, "frame") == "0"  # a ruler drag pans, it does not seek

    expected = np.full((N_FRAMES, len(BEHAVIORS)), -1, np.int8)
    lab.focus()
    go_to(page, 0)  # the view follows the playhead back to the start
    # Shift+click labels from the playhead to the click
    x, y = row_point(page, 0, 5)
    page.keyboard.down("Shift")
    page.mouse.click(x, y)
    page.keyboard.up("Shift")
    expected[0:6, 0] = 1
    # right-button drag erases
    drag_row(page, 0, 2, 3, button="right")
    expected[2:4, 0] = -1
    # a drag with "e" held erases too
    drag_row(page, 1, 0, 8)
    expected[0:9, 1] = 1
    page.keyboard.down("e")
    drag_row(page, 1, 6, 7)
    page.keyboard.up("e")
    expected[6:8, 1] = -1
    wait_data(page, "labels-hash", fnv1a(expected))

    # "i" imports predictions onto unlabelled cells only
    lab.focus()
    press(page, "i")
    expected = np.where(expected == -1, predicted, expected)
    wait_data(page, "labels-hash", fnv1a(expected))
    # "n" goes to the next bout start (of any behaviour: none selected)
    press(page, "n")
    page.wait_for_function(
        "() => document.querySelector('.deg-lab').dataset.frame !== '0'", timeout=10_000
    )
    frame = int(root_data(page, "frame"))
    # Shift+F asks, then sets what is unlabelled (the frame "x" erased) absent and saves
    press(page, "x")
    expected[frame] = -1
    wait_data(page, "labels-hash", fnv1a(expected))
    press(page, "Shift+F")
    expected[frame] = 0
    wait_data(page, "labels-hash", fnv1a(expected))
    wait_data(page, "dirty", "false")
    assert dialogs and "Finalize" in dialogs[-1]
    saved = read_labels(rec.labels_path, list(BEHAVIORS), N_FRAMES).array
    np.testing.assert_array_equal(saved, expected)
    assert page.locator(".deg-lab-error").inner_text() == ""


def test_reference_annotator_row_and_disagreements(run_notebook, kernel_exec, tmp_path):
    """A second annotator's labels show as a read-only reference row (the timeline grows by
    K rows) and `a` steps to the frames where the two annotators disagree."""
    from deg_core.labels.labels import Labels
    from deg_core.project.project import Project

    root, key = make_project(tmp_path)
    project = Project.open(root)
    mine = np.zeros((N_FRAMES, len(BEHAVIORS)), np.int8)
    mine[10:30, 0] = 1
    theirs = mine.copy()
    theirs[40:50, 1] = 1  # they saw groom at 40..49; I did not
    project.save_labels(key, Labels(list(BEHAVIORS), mine))
    project.save_annotator_labels(key, "bo", Labels(list(BEHAVIORS), theirs))
    page = run_notebook(
        [
            "from deg_widgets.labeler import Labeler\n"
            f"w = Labeler({str(root)!r}, {key!r}, reference='bo', autosave=False)\n"
            "w",
        ]
    )
    page.locator(".deg-lab").wait_for(timeout=30_000)
    wait_data(page, "painted-frame", "0", timeout=30)
    wait_data(page, "reference", "bo")
    height = page.locator(".deg-lab-timeline").evaluate("c => c.getBoundingClientRect().height")
    kernel_exec(page, "w.show_reference(None)")
    wait_data(page, "reference", "")
    page.wait_for_function(
        f"() => document.querySelector('.deg-lab-timeline').getBoundingClientRect().height"
        f" < {height}",
        timeout=10_000,
        polling=50,
    )
    kernel_exec(page, "w.show_reference('bo')")
    wait_data(page, "reference", "bo")
    page.locator(".deg-lab").focus()
    press(page, "a")
    wait_data(page, "frame", "40")
    assert int(kernel_exec(page, "print(w.frame)")) == 40
