"""``DATA/<key>/<key>_outputs.h5``: one group per model run, each written atomically.

A group is built in a temporary copy of the file (so the other runs' groups stay)
that replaces the file only when the group is complete; a crash leaves the previous
file, and a group is trusted only if it carries ``complete=True``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np

from deg_core.errors import DegError


@contextlib.contextmanager
def writing_group(
    path: Path, group: str, class_names: Sequence[str], thresholds: np.ndarray, **attrs
) -> Iterator[h5py.Group]:
    """Yield a fresh group ``group``; on success add thresholds (K,), class_names (K,), attrs."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if path.exists():
        shutil.copyfile(path, tmp)  # keep the other runs' groups
    try:
        with h5py.File(tmp, "a") as f:
            if group in f:
                del f[group]
            g = f.create_group(group)
            yield g
            g.create_dataset("thresholds", data=np.asarray(thresholds, dtype=np.float32))
            names = np.array(list(class_names), dtype=object)
            g.create_dataset("class_names", data=names, dtype=h5py.string_dtype())
            for k, v in attrs.items():
                g.attrs[k] = v
            g.attrs["complete"] = True
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def has_group(path: Path, group: str) -> bool:
    """True if ``path`` holds a complete group (written by a finished run)."""
    if not path.exists():
        return False
    try:
        with h5py.File(path, "r") as f:
            return group in f and bool(f[group].attrs.get("complete", False))
    except OSError:
        return False


def read_group(path: Path, group: str, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Datasets ``names`` of a complete group; a one-line DegError if absent or unreadable."""
    try:
        with h5py.File(path, "r") as f:
            if group not in f or not f[group].attrs.get("complete", False):
                raise DegError(f"has no complete outputs of run {group!r}", path)
            out = {}
            for n in names:
                data = f[group][n][()]
                if n == "class_names":
                    data = np.array([s.decode() if isinstance(s, bytes) else s for s in data])
                out[n] = data
            return out
    except OSError as e:
        raise DegError(f"cannot read outputs file ({' '.join(str(e).split())})", path) from None
