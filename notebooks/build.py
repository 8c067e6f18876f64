"""Builds the guided notebooks from their sources: ``uv run python notebooks/build.py``.

Each notebook is written as a plain Python file, ``notebooks/src/<name>.py``, in jupytext's
percent format: ``# %% [markdown]`` starts a text cell (its lines are ``# ``-commented
markdown), ``# %%`` a code cell, and ``# %% tags=["parameters"]`` the cell papermill injects
values after. Edit the source, run this, commit both: it writes ``notebooks/<name>.ipynb``
without outputs and with stable cell ids, and tests/test_notebooks.py checks that the
committed notebooks are what it writes (``--check`` only reports the ones that differ).
ruff and mypy check the sources like any other code.

Each notebook: a title and what it is for, the parameters cell, then steps: a heading, one
sentence of intent, a short cell. Logic lives in deg_core / deg_widgets.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
NOTEBOOKS = sorted(p.stem for p in SOURCES.glob("*.py"))


def build(name: str) -> nbformat.NotebookNode:
    nb = jupytext.read(SOURCES / f"{name}.py", fmt="py:percent")
    # the kernel from the source's header; jupytext's own bookkeeping is left out
    nb.metadata = {"kernelspec": nb.metadata["kernelspec"], "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):  # stable ids: rebuilding changes nothing
        cell["id"] = f"{name.replace('_', '-')}-{i:02d}"
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(name)) + "\n"


def main(argv: list[str]) -> int:
    """Write every notebook (``--check``: only report those that differ; exit 1 if any)."""
    check = "--check" in argv
    stale = []
    for name in NOTEBOOKS:
        path = HERE / f"{name}.ipynb"
        text = render(name)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.name)
        if not check:
            path.write_text(text)
    verb = "differ from src/" if check else "written"
    print(f"{len(stale)} notebook(s) {verb}: {', '.join(stale) or '-'}")
    return 1 if stale and check else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
