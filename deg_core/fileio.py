"""Atomic file writes and YAML helpers.

A crash mid-save must leave the previous file intact, so every write goes to a
temporary file in the same folder, is flushed and fsynced, then renamed over the
target (``os.replace`` is atomic on POSIX and Windows for same-volume renames).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from deg_core.errors import DegError


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8, ``\\n`` line endings)."""
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def dump_yaml(data: Any) -> str:
    """YAML text with keys in insertion order (readable diffs, stable files)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def save_yaml(path: str | Path, data: Any) -> None:
    """Atomically write ``data`` as YAML."""
    atomic_write_text(path, dump_yaml(data))


def load_yaml(path: str | Path, *, what: str = "YAML file") -> Any:
    """Read YAML with ``yaml.safe_load``; a missing or malformed file is a one-line DegError."""
    path = Path(path)
    if not path.is_file():
        raise DegError(f"{what} not found", path)
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise DegError(f"malformed {what}{where}: {problem}", path) from None
    except UnicodeDecodeError:
        raise DegError(f"{what} is not UTF-8 text", path) from None
