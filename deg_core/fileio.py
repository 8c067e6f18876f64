"""Atomic file writes, YAML helpers and the fault-injection hook.

A crash mid-save must leave the previous file intact, so every write goes to a
temporary file in the same folder, is flushed and fsynced, then renamed over the
target (``os.replace`` is atomic on POSIX and Windows for same-volume renames).

The temporary name carries the process id and a random part (``mkstemp``), so two
processes never share one; a file left by a killed process is removed by
:func:`clean_temporaries` the next time its folder is written under the project lock.
``mkstemp`` creates files mode 0600, so the final file gets the mode a plain
``open(path, "w")`` would give (the umask), or keeps the mode of the file it replaces:
on a shared lab server colleagues must still read the labels.

``DEG_KILL_AT_WRITE=N`` (tests only) makes the process SIGKILL itself at the N-th
:func:`fault_point`; every commit step of a write passes through one, so the
fault-injection suite can stop a command between any two steps.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import signal
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

import yaml

from deg_core.errors import DegError

TMP_SUFFIX = ".tmp"
_KILL_ENV = "DEG_KILL_AT_WRITE"
_fault_count = 0


def fault_point() -> None:
    """Count a commit step; SIGKILL this process at the step ``DEG_KILL_AT_WRITE`` names."""
    global _fault_count
    target = os.environ.get(_KILL_ENV)
    if not target:
        return
    _fault_count += 1
    if _fault_count == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


def current_umask() -> int:
    """The process umask."""
    try:  # Linux: read it without the set-and-restore race of os.umask
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def normal_mode(path: Path) -> int:
    """The mode ``path`` should have: the existing file's, else 0666 minus the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def not_writable(path: str | Path, err: OSError) -> DegError:
    """A one-line error for a write the file system refused."""
    reason = "permission denied" if err.errno in (errno.EACCES, errno.EPERM) else None
    reason = reason or ("read-only file system" if err.errno == errno.EROFS else None)
    reason = reason or ("no space left on device" if err.errno == errno.ENOSPC else None)
    return DegError(f"cannot write: {reason or err.strerror or type(err).__name__}", path)


def temp_sibling(path: Path) -> Path:
    """A new, empty, uniquely named temporary file beside ``path`` (normal mode)."""
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX, dir=path.parent
        )
    except OSError as e:
        raise not_writable(path, e) from None
    os.fchmod(fd, normal_mode(path))
    os.close(fd)
    return Path(tmp)


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)  # no space left, or the user's quota used up


def raise_naming(error: BaseException, path: Path) -> NoReturn:
    """Re-raise ``error``; a full-disk OSError as one that names ``path``: a write or flush
    that ran out of space names no file (or a temporary one), and the user needs the one it
    was for."""
    if isinstance(error, OSError) and error.errno in FULL_DISK and error.filename != str(path):
        raise OSError(error.errno, os.strerror(error.errno), str(path)) from error
    raise error


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched. A
    folder the process may not write into is a one-line DegError naming ``path``.
    """
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        fault_point()  # the new content is complete beside the old file
        os.replace(tmp, path)
        fault_point()
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise_naming(e, path)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8, ``\\n`` line endings)."""
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def clean_temporaries(folder: Path, older_than: float = 0.0) -> list[Path]:
    """Remove ``.<name>.<pid>.*.tmp`` files of processes that are gone; returns them.

    A file of a live process (this one included: another thread may be writing it)
    is kept, unless it is older than ``older_than`` seconds (> 0).
    """
    removed: list[Path] = []
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(".")]
    except OSError:
        return removed
    for p in candidates:
        if not p.name.endswith(TMP_SUFFIX) or not p.is_file():
            continue
        alive = owner_alive(p.name, 3)  # "", name..., pid, random, "tmp"
        old = older_than > 0 and time.time() - p.stat().st_mtime > older_than
        if alive and not old:
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


@contextlib.contextmanager
def output_folder(folder: str | Path) -> Iterator[Path]:
    """A folder outside the project that a command writes its files into (exports).

    Temporaries of killed writers there are swept first (no later project change would
    see them); a failure removes the folders this call created, if still empty, so a
    refused or full-disk export leaves no empty ``exports/`` behind.
    """
    folder = Path(folder).absolute()
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise_naming(e, folder)
    clean_temporaries(folder)
    try:
        yield folder
    except BaseException:
        for p in created:  # innermost first
            with contextlib.suppress(OSError):
                p.rmdir()  # only when empty
        raise


def owner_alive(name: str, from_end: int) -> bool:
    """Whether the process whose id a leftover's name carries, as its ``from_end``-th
    dot-separated field from the end, still runs (False when the name holds no id)."""
    parts = name.split(".")
    field = parts[-from_end] if len(parts) > 3 else ""
    return field.isdigit() and process_alive(int(field))


def process_alive(pid: int) -> bool:
    """True if ``pid`` is this process or another running one."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finite_or_none(x: Any) -> float | None:
    """A JSON-safe float: ``x`` as a float, or None when missing, not a number or not finite."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


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
    except PermissionError:
        raise DegError(f"cannot read {what}: permission denied", path) from None
