"""ProjectView in JupyterLab: tables render, a row click reaches Python, refresh re-reads."""

from __future__ import annotations

import time

import pytest

from deg_core.video import write_video
from deg_core.workflow.synthetic import SyntheticSpec, make_synthetic_project
from tests.conftest import moving_square_frames

pytestmark = pytest.mark.browser


def _wait_py(kernel_exec, page, code, expected, timeout=10.0):
    """Poll ``code``'s stdout until it is ``expected`` (comm messages are asynchronous)."""
    deadline = time.monotonic() + timeout
    while (out := kernel_exec(page, code).strip()) != expected:
        assert time.monotonic() < deadline, f"{code!r} printed {out!r}, not {expected!r}"
        time.sleep(0.1)


def test_project_view_renders_selects_and_refreshes(run_notebook, kernel_exec, tmp_path):
    spec = SyntheticSpec(n_frames=60, size=64, behaviors=("walk", "groom"))
    project = make_synthetic_project(tmp_path, "pv", 2, spec=spec, labeled_fraction=0.6)
    page = run_notebook(
        [
            f"from deg_widgets import ProjectView\nview = ProjectView({str(project.root)!r})\nview",
        ]
    )
    rows = page.locator(".deg-pv tr.deg-pv-video")
    rows.first.wait_for(timeout=30_000)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.key)") == ["pv_00", "pv_01"]
    row = page.locator('.deg-pv tr.deg-pv-video[data-key="pv_01"]')
    assert "60%" in row.locator(".deg-pv-labeled").inner_text()  # labelled-fraction figure
    assert "val" in row.inner_text() and "60" in row.inner_text()
    assert page.locator(".deg-pv-totals tr.deg-pv-behavior").count() == 2

    row.click()
    _wait_py(kernel_exec, page, "print(view.selected)", "pv_01")
    assert "deg-pv-selected" in (row.get_attribute("class") or "")

    # a video added on disk appears after the refresh button
    extra = tmp_path / "ex_00.mp4"
    write_video(extra, moving_square_frames(30, 64, 64), fps=30)
    project.add_video(extra, split="test")
    page.locator(".deg-pv-refresh").click()
    page.locator('.deg-pv tr.deg-pv-video[data-key="ex_00"]').wait_for(timeout=10_000)
    assert rows.count() == 3

    # Python-side errors show as a visible banner
    kernel_exec(page, "view.error = 'ProjectError: boom'")
    banner = page.locator(".deg-pv .deg-pv-error")
    banner.wait_for(timeout=10_000)
    assert banner.inner_text() == "ProjectError: boom"
    page.locator(".deg-pv").screenshot(path=str(tmp_path / "project_view.png"))
