"""Browser fixtures: one JupyterLab server and one headless chromium per session.

``run_notebook(cells)`` writes a notebook, opens it in JupyterLab, runs every cell and
returns the playwright ``Page`` so a test can assert on the rendered widgets.
``kernel_exec(page, code)`` runs more code in that notebook's kernel and returns its
stdout, so a test can check Python-side state after clicking in the page.

Every page ``run_notebook`` opens is watched for console errors: a ``console.error``
message or an uncaught exception (``pageerror``) fails the test at teardown, unless it
matches ``CONSOLE_ERROR_ALLOW`` (harness noise, each with its reason). A test that
provokes an error on purpose takes it out of ``page_errors`` (``page_errors.take()``).

Chromium is Debian's (/usr/bin/chromium): ``playwright install`` cannot download
browsers here. Without it the tests skip, except under CI (env CI=true), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_S = 60
KERNEL_IDLE_S = 60
RUN_ALL_S = 120  # default bound for running all cells of one test notebook
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# JupyterLab user settings for a quiet, deterministic UI: every cell attached to the DOM
# (the default windowing detaches off-screen cells, hiding their widgets from queries),
# no news or update checks (no network here), no toasts over the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
}


@dataclass
class JupyterServer:
    """A running JupyterLab server: ``url`` has no trailing slash; ``root`` is its notebook dir."""

    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def api(self, method: str, path: str) -> Any:
        """Call the REST API (``path`` starts with ``/api``); return the decoded JSON or None."""
        req = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None


# Console errors that are not deg's: (pattern searched in the message, why it is allowed).
# Keep it short; an item here hides that message from every browser test.
CONSOLE_ERROR_ALLOW: list[tuple[re.Pattern[str], str]] = []


@dataclass
class PageErrors:
    """The console errors of a test's pages: ``console.error`` messages and page errors."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        """Collect ``page``'s console errors and uncaught exceptions from now on."""
        page.on("console", self._on_console)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def _on_console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        loc = msg.location or {}
        where = f" ({loc['url']}:{loc.get('lineNumber', '?')})" if loc.get("url") else ""
        self.errors.append(f"console.error: {msg.text}{where}")

    def take(self) -> list[str]:
        """The errors so far, which are then forgotten (for errors a test provokes)."""
        taken, self.errors = self.errors, []
        return taken

    def unexpected(self) -> list[str]:
        """The errors that match no ``CONSOLE_ERROR_ALLOW`` pattern."""
        return [e for e in self.errors if not any(p.search(e) for p, _ in CONSOLE_ERROR_ALLOW)]


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing (apt-get install chromium); browser tests need it"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " and CI=true, so they must run")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(log: Path, n: int = 40) -> str:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join(lines[-n:])


# package scope: playwright's sync API keeps an asyncio loop running in the main thread
# while it lives, which would capture asyncio work (e.g. the Labeler's autosave timer) of
# every later test; these fixtures end with the last browser test.
@pytest.fixture(scope="package")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A JupyterLab server on a free port with this venv's python as its kernel."""
    _require_chromium()  # no point starting a server nothing can look at
    base = tmp_path_factory.mktemp("jupyter")
    root, settings = base / "notebooks", base / "settings"
    for sub in (root, settings, base / "runtime", base / "workspaces", base / "ipython"):
        sub.mkdir()
    for rel, values in LAB_SETTINGS.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(values))
    # the env's data dir stays, so the installed labextensions (anywidget, bqplot) load
    env = dict(
        os.environ, JUPYTER_RUNTIME_DIR=str(base / "runtime"), IPYTHONDIR=str(base / "ipython")
    )
    env.pop("JUPYTER_TOKEN", None)
    port, token = _free_port(), secrets.token_hex(16)
    log = base / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.allow_root=True",  # CI containers run as root
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.extension_manager=readonly",  # the pypi one queries PyPI
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root, log, proc)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({proc.returncode}):\n{_log_tail(log)}")
            try:
                server.api("GET", "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"jupyter lab not up after {SERVER_START_S} s:\n{_log_tail(log)}"
                    ) from None
                time.sleep(0.25)
        yield server
    finally:
        _stop_server(server)


def _stop_server(server: JupyterServer) -> None:
    """Shut down kernels through the API (they run in their own sessions), then the group."""
    proc = server.process
    if proc.poll() is None:
        try:
            server.api("POST", "/api/shutdown")
            proc.wait(timeout=15)
        except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """A headless playwright chromium ``Browser`` running Debian's /usr/bin/chromium."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def write_notebook(path: Path, cells: list[str]) -> None:
    """Write an nbformat-4 notebook of code cells with the python3 kernelspec (no kernel prompt)."""
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": uuid.uuid4().hex[:8],
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for src in cells
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))


# JS run in the page. window.__deg holds the notebook panel opened by run_notebook.
_JS_PANEL_READY = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell && app.shell.currentWidget;
  if (!panel || !panel.sessionContext || !panel.content || !panel.content.model) return false;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel || kernel.status !== "idle") return false;
  window.__deg = {panel, run: null};
  app.shell.collapseLeft();  // the file browser only takes room from the widgets
  return true;
}"""
_JS_RUN_ALL = """() => {
  const state = {done: false, ok: null, fail: null};
  window.__deg.run = state;
  window.jupyterapp.commands.execute("notebook:run-all-cells").then(
    (ok) => { state.done = true; state.ok = ok; },
    (e) => { state.done = true; state.fail = String(e); });
}"""
_JS_RUN_DONE = """() => {
  const {panel, run} = window.__deg;
  if (!run.done) return false;
  const kernel = panel.sessionContext.session.kernel;
  return kernel.status === "idle";
}"""
_JS_CELLS = """() => {
  const cells = window.__deg.panel.content.model.cells;
  const out = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i).toJSON();
    if (c.cell_type !== "code") continue;
    out.push({count: c.execution_count, outputs: c.outputs});
  }
  return {cells: out, run: window.__deg.run};
}"""
_JS_EXEC = """async ([code, timeoutMs]) => {
  const kernel = window.__deg.panel.sessionContext.session.kernel;
  let out = "", err = null;
  const future = kernel.requestExecute({code, store_history: false});
  future.onIOPub = (msg) => {
    const t = msg.header.msg_type, c = msg.content;
    if (t === "stream") out += c.text;
    else if (t === "execute_result") out += c.data["text/plain"] + "\\n";
    else if (t === "error") err = c.ename + ": " + c.evalue + "\\n" + c.traceback.join("\\n");
  };
  const timer = new Promise((_, reject) =>
    setTimeout(() => reject(new Error("kernel_exec timed out")), timeoutMs));
  await Promise.race([future.done, timer]);
  return {out, err};
}"""


def _cell_errors(state: dict[str, Any]) -> list[str]:
    """One message per cell that raised (its ename, evalue and traceback, ANSI stripped)."""
    errors = []
    for i, cell in enumerate(state["cells"]):
        for o in cell["outputs"]:
            if o.get("output_type") == "error":
                tb = ANSI.sub("", "\n".join(o.get("traceback", [])))
                errors.append(f"cell {i} raised {o['ename']}: {o['evalue']}\n{tb}")
    return errors


@pytest.fixture
def page_errors() -> PageErrors:
    """The console errors of the pages this test's ``run_notebook`` opens (checked at teardown)."""
    return PageErrors()


@pytest.fixture
def run_notebook(
    jupyter_server: JupyterServer, browser: Any, tmp_path: Path, page_errors: PageErrors
) -> Iterator[Callable[..., Any]]:
    """``run_notebook(cells, name="test.ipynb", viewport=(1400, 900), timeout=120) -> Page``.

    Writes ``cells`` (code sources) to a notebook in a folder of its own under the
    server's root (the kernel's cwd), opens it in a fresh JupyterLab workspace, waits
    for an idle kernel, runs all cells, waits until the run finished and the kernel is
    idle again, and raises ``AssertionError`` with the error text if a cell raised or
    did not run. At teardown the page's screenshot goes to ``tmp_path / "final.png"``,
    its console to ``tmp_path / "console.log"``, and the kernel is shut down; then the
    test fails if a page logged a console error or threw (see ``PageErrors``).
    """
    opened: list[tuple[Any, Any, list[str]]] = []
    folder = f"t{uuid.uuid4().hex[:10]}"

    def _run(
        cells: list[str],
        name: str = "test.ipynb",
        viewport: tuple[int, int] = (1400, 900),
        timeout: float = RUN_ALL_S,
    ) -> Any:
        write_notebook(jupyter_server.root / folder / name, cells)
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page_errors.watch(page)
        opened.append((context, page, console))
        workspace = f"w{uuid.uuid4().hex[:10]}"  # fresh: nothing from earlier tests restored
        page.goto(
            f"{jupyter_server.url}/lab/workspaces/{workspace}/tree/{folder}/{name}"
            f"?token={jupyter_server.token}"
        )
        page.wait_for_function(_JS_PANEL_READY, timeout=KERNEL_IDLE_S * 1000, polling=200)
        page.evaluate(_JS_RUN_ALL)
        page.wait_for_function(_JS_RUN_DONE, timeout=timeout * 1000, polling=200)
        state = page.evaluate(_JS_CELLS)
        errors = _cell_errors(state)
        if state["run"]["fail"]:
            errors.append(f"run-all-cells failed: {state['run']['fail']}")
        missing = [i for i, c in enumerate(state["cells"]) if c["count"] is None]
        if missing and not errors:
            errors.append(f"cells {missing} did not run")
        if errors:
            raise AssertionError("notebook failed:\n" + "\n".join(errors))
        return page

    yield _run

    for i, (context, page, console) in enumerate(opened):
        last = i == len(opened) - 1
        try:
            page.screenshot(path=str(tmp_path / ("final.png" if last else f"final-{i}.png")))
        except Exception as exc:  # a dead page must not hide the test's own result
            console.append(f"screenshot failed: {exc}")
        (tmp_path / ("console.log" if last else f"console-{i}.log")).write_text("\n".join(console))
        context.close()
    _shutdown_kernels(jupyter_server, folder)
    if unexpected := page_errors.unexpected():
        pytest.fail(
            f"{len(unexpected)} console error(s) in the page:\n" + "\n".join(unexpected),
            pytrace=False,
        )


def _shutdown_kernels(server: JupyterServer, folder: str) -> None:
    """Delete this test's sessions (and so its kernels): 2 CPU cores do not carry idle kernels."""
    try:
        for s in server.api("GET", "/api/sessions"):
            if s.get("path", "").startswith(folder + "/"):
                server.api("DELETE", f"/api/sessions/{s['id']}")
    except (urllib.error.URLError, OSError):
        pass


@pytest.fixture
def kernel_exec() -> Callable[..., str]:
    """``kernel_exec(page, code, timeout=30) -> stdout``: run code in the page's notebook kernel.

    Raises ``AssertionError`` with the traceback if the code raised.
    """

    def _exec(page: Any, code: str, timeout: float = 30) -> str:
        res = page.evaluate(_JS_EXEC, [code, int(timeout * 1000)])
        if res["err"]:
            raise AssertionError("kernel_exec raised:\n" + ANSI.sub("", res["err"]))
        return str(res["out"])

    return _exec
