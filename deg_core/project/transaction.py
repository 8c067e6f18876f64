"""All-or-nothing changes to several project files (a small write-ahead record).

A :class:`Change` first stages every new file in ``<project>/.deg_txn/`` (written and
fsynced), then writes ``.deg_txn/intent.json`` listing the steps (stage → target
replacements and folder moves): the moment that file exists the change is decided.
It then carries out the steps in order and removes ``.deg_txn/``. Each step is an
``os.replace``/``rename`` and is skipped when its source is gone, so carrying a
decided change out again is harmless.

After a kill, the next holder of the project lock (:func:`recover_and_clean`, also
run by ``Project.open``) rolls a decided change forward, or removes the staging
folder of an undecided one (nothing outside it was touched yet): the project is
either as it was or as it was meant to be, never in between.

Use it under :func:`deg_core.project.locking.project_lock`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from deg_core.errors import ProjectError
from deg_core.fileio import (
    atomic_write_text,
    clean_temporaries,
    fault_point,
    normal_mode,
    not_writable,
    owner_alive,
    raise_naming,
)

TXN_DIR = ".deg_txn"
INTENT = "intent.json"
PARTIAL = ".partial"


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class Change:
    """A set of file replacements and folder moves applied together or not at all."""

    root: Path
    steps: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()
        self.dir = self.root / TXN_DIR
        if (self.dir / INTENT).exists():  # callers hold the lock, which recovers first
            raise ProjectError("an unfinished change is pending; reopen the project", self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            self.dir.mkdir()
        except OSError as e:
            raise not_writable(self.dir, e) from None

    def _rel(self, path: Path) -> str:
        return str(Path(path).absolute().relative_to(self.root))

    def write_text(self, target: Path, text: str) -> None:
        """Stage ``text`` as the new content of ``target`` (keeping its mode if it exists)."""
        staged = self.dir / str(len(self.steps))
        try:
            with open(staged, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except BaseException as e:  # a full disk: nothing decided, nothing left behind
            self.abandon()
            raise_naming(e, Path(target))
        os.chmod(staged, normal_mode(Path(target)))
        self.steps.append({"op": "replace", "src": staged.name, "dst": self._rel(target)})

    def move(self, src: Path, dst: Path) -> None:
        """Rename ``src`` (a file or folder) to ``dst`` (which must not exist) at commit."""
        self.steps.append({"op": "move", "src": self._rel(src), "dst": self._rel(dst)})

    def commit(self) -> None:
        """Decide the change (write the intent), then carry it out."""
        fault_point()  # killed before the intent: rolled back
        _fsync_dir(self.dir)
        try:
            atomic_write_text(self.dir / INTENT, json.dumps({"steps": self.steps}, indent=1))
        except BaseException:  # undecided (the intent is written atomically): roll back now
            self.abandon()
            raise
        _fsync_dir(self.dir)
        _carry_out(self.root)

    def abandon(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _carry_out(root: Path) -> None:
    folder = root / TXN_DIR
    steps = json.loads((folder / INTENT).read_text(encoding="utf-8"))["steps"]
    for step in steps:
        src = (folder if step["op"] == "replace" else root) / step["src"]
        dst = root / step["dst"]
        if not src.exists() or (step["op"] == "move" and dst.exists()):
            continue  # done before a kill
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        fault_point()
    _fsync_dir(root)
    (folder / INTENT).unlink()
    fault_point()
    shutil.rmtree(folder, ignore_errors=True)


def pending(root: Path) -> bool:
    """True if a change was staged or decided and not finished (a kill, or running now)."""
    return (Path(root) / TXN_DIR).exists()


def recover(root: Path) -> str | None:
    """Finish (roll forward) or undo (roll back) an interrupted change; returns which."""
    folder = Path(root) / TXN_DIR
    if not folder.exists():
        return None
    if (folder / INTENT).is_file():
        try:
            json.loads((folder / INTENT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            shutil.rmtree(folder, ignore_errors=True)  # the intent never landed: undecided
            return "rolled back"
        _carry_out(Path(root))
        return "rolled forward"
    shutil.rmtree(folder, ignore_errors=True)
    return "rolled back"


def clean_partials(data_dir: Path) -> None:
    """Remove ``.<key>.<pid>.partial`` folders whose process is gone (killed mid-copy)."""
    for p in data_dir.glob(f".*{PARTIAL}"):
        if owner_alive(p.name, 2):  # "", key, pid, "partial"
            continue
        shutil.rmtree(p, ignore_errors=True)


def recover_and_clean(root: Path) -> None:
    """Run on taking the project lock: finish an interrupted change, sweep leftovers
    of dead processes (temporary files, partial video folders)."""
    root = Path(root)
    recover(root)
    folders = [root, root / "DATA", root / "models"]
    for parent in (root / "DATA", root / "models"):
        with contextlib.suppress(OSError):
            folders += [p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")]
    for f in folders:
        clean_temporaries(f)
    if (root / "DATA").is_dir():
        clean_partials(root / "DATA")
