"""Project-level lock: one process at a time changes a project's shared files.

Mutating operations (adding videos, saving or importing labels, changing the
behaviours or the split, retrain bookkeeping, merging inference outputs) hold
``<project>/.deg.lock`` (an OS file lock via ``filelock``: released by the kernel
when a process dies, so a kill never leaves the project locked). Long work (copying
a video, training, inference) happens outside the lock; only the commit is inside.

While the lock is held the first time in a process, :mod:`deg_core.project.transaction`
finishes any multi-file change a killed process left behind, and temporary files
of dead processes are removed, so every mutating operation starts from a clean
project. The lock is re-entrant within a thread.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import filelock

from deg_core.errors import ProjectError
from deg_core.fileio import current_umask, not_writable

LOCK_FILE = ".deg.lock"
OWNER_FILE = ".deg.lock.owner"
TIMEOUT_ENV = "DEG_LOCK_TIMEOUT"
DEFAULT_TIMEOUT = 30.0  # seconds a command waits for another one's commit


class ProjectBusy(ProjectError):
    """Another process holds the project lock for longer than we wait."""


_locks: dict[tuple[int, Path], filelock.FileLock] = {}
_guard = threading.Lock()


def _lock_for(root: Path) -> filelock.FileLock:
    # one object per project and process: FileLock counts re-entries per thread, and a
    # forked child may not use its parent's (filelock refuses inherited locks)
    key = (os.getpid(), root)
    with _guard:
        if key not in _locks:
            _locks[key] = filelock.FileLock(root / LOCK_FILE, mode=0o666 & ~current_umask())
        return _locks[key]


def _timeout(timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def _owner(root: Path) -> str:
    try:
        text = (root / OWNER_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return "another process"
    return text or "another process"


@contextlib.contextmanager
def project_lock(root: str | Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the project's lock; ProjectBusy (one line) if it stays taken ``timeout`` s.

    ``timeout`` defaults to ``$DEG_LOCK_TIMEOUT`` or 30 s.
    """
    root = Path(root).absolute()
    lock = _lock_for(root)
    outermost = not lock.is_locked
    try:
        lock.acquire(timeout=_timeout(timeout))
    except filelock.Timeout:
        raise ProjectBusy(
            f"project is busy: {_owner(root)} is changing it; try again when it finishes",
            root,
        ) from None
    except OSError as e:
        raise not_writable(root / LOCK_FILE, e) from None
    try:
        if outermost:
            with contextlib.suppress(OSError):
                cmd = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
                (root / OWNER_FILE).write_text(f"process {os.getpid()} ({cmd[:120]})\n")
            from deg_core.project.transaction import recover_and_clean

            recover_and_clean(root)
        yield
    finally:
        lock.release()
