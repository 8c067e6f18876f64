"""The browser harness itself: JupyterLab runs a cell and an anywidget renders in chromium."""

from __future__ import annotations

import sys
import time

import pytest

pytestmark = pytest.mark.browser

WIDGET = '''
import anywidget, traitlets

class Hello(anywidget.AnyWidget):
    _esm = """
    export default { render({ model, el }) {
      el.classList.add("deg-smoke");
      el.textContent = "hello " + model.get("who");
      el.addEventListener("click", () => { model.set("clicks", model.get("clicks") + 1);
                                           model.save_changes(); });
    } };
    """
    who = traitlets.Unicode("browser").tag(sync=True)
    clicks = traitlets.Int(0).tag(sync=True)

w = Hello()
w
'''


def test_anywidget_renders_and_syncs_back(run_notebook, kernel_exec, tmp_path):
    page = run_notebook([WIDGET])
    node = page.locator(".deg-smoke")
    node.wait_for(timeout=30_000)
    assert node.inner_text() == "hello browser"
    node.click()
    deadline = time.monotonic() + 10  # the comm message is asynchronous
    while kernel_exec(page, "print(w.clicks)").strip() != "1":
        assert time.monotonic() < deadline, "the click never reached Python"
        time.sleep(0.1)
    # the kernel is this venv's python, so it imports deg_core and deg_widgets
    assert kernel_exec(page, "import sys; print(sys.executable)").strip() == sys.executable


def test_cell_error_is_reported(run_notebook):
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        run_notebook(["x = 1", "1 / 0", "y = 2"])


def test_console_errors_are_collected(run_notebook, page_errors):
    # run_notebook fails a test at teardown on these; this one takes them out first
    page = run_notebook(["x = 1"])
    page.evaluate("() => console.error('deg-test: console error')")
    page.evaluate("() => { setTimeout(() => { throw new Error('deg-test: uncaught'); }, 0); }")
    page.wait_for_timeout(300)
    page.evaluate("() => console.log('deg-test: a log line is no error')")
    page.wait_for_timeout(100)
    errors = page_errors.take()
    assert len(errors) == 2, errors
    assert errors[0].startswith("console.error: deg-test: console error"), errors
    assert errors[1].startswith("pageerror: deg-test: uncaught"), errors
    assert page_errors.unexpected() == []
