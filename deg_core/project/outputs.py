"""``DATA/<key>/<key>_outputs.h5``: one group per model run, each written atomically.

A group is written into a temporary file of its own while inference runs (minutes,
no lock held); when it is complete, under a lock on the outputs file, the current
file is copied, the group copied in, and the copy replaces the file. So a crash
leaves the previous file, two processes writing different runs' groups of one video
both keep theirs, and a group is trusted only if it carries ``complete=True``.

Several animals in a video (``project.animals`` > 1, issue 24): a run's group holds the
per-frame datasets of each animal in a subgroup ``animal<i>`` (:func:`animal_group`), and
its attribute ``animals`` = N; what holds for the whole video stays on the run's group::

    <run>/animal0/spatial_features  (T, 512)  feature runs     }
    <run>/animal0/flow_features     (T, 512)  feature runs     } one subgroup per animal,
    <run>/animal0/logits            (T, K)                     } the same datasets as a
    <run>/animal0/P                 (T, K)                     } one-animal group
    <run>/animal0/thresholds        (K,)      sequence runs: this animal's (per-stream
                                              normalised scores shift them), else absent
    <run>/animal1/...
    <run>/thresholds, <run>/class_names, attrs complete, video, animals=N

A one-animal video's group is exactly as before (datasets directly in ``<run>``, no
``animals`` attribute). All animals of a video are written in one group, atomically:
``complete`` means every animal is there. :func:`read_group` with ``animal=i`` reads a
name from ``animal<i>`` where it is there, else from the run's group.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import filelock
import h5py
import numpy as np

from deg_core.errors import DegError
from deg_core.fileio import clean_temporaries, fault_point, temp_sibling


@contextlib.contextmanager
def writing_group(
    path: Path, group: str, class_names: Sequence[str], thresholds: np.ndarray, **attrs
) -> Iterator[h5py.Group]:
    """Yield a fresh group ``group``; on success add thresholds (K,), class_names (K,), attrs."""
    path = Path(path)
    fresh = temp_sibling(path)
    try:
        with h5py.File(fresh, "w") as f:
            g = f.create_group(group)
            yield g
            g.create_dataset("thresholds", data=np.asarray(thresholds, dtype=np.float32))
            names = np.array(list(class_names), dtype=object)
            g.create_dataset("class_names", data=names, dtype=h5py.string_dtype())
            for k, v in attrs.items():
                g.attrs[k] = v
            g.attrs["complete"] = True
        _merge(path, fresh, group)
    finally:
        with contextlib.suppress(FileNotFoundError):
            fresh.unlink()


def _merge(path: Path, fresh: Path, group: str) -> None:
    """Replace ``path`` by itself with ``group`` taken from ``fresh`` (under a file lock)."""
    with filelock.FileLock(path.with_name(f".{path.name}.lock")):
        clean_temporaries(path.parent)  # what a killed inference left beside the file
        merged = temp_sibling(path)
        try:
            if path.exists():
                shutil.copyfile(path, merged)  # keep the other runs' groups
            with h5py.File(merged, "a") as dst, h5py.File(fresh, "r") as src:
                if group in dst:
                    del dst[group]
                src.copy(src[group], dst, name=group)
            fault_point()
            os.replace(merged, path)
            fault_point()
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                merged.unlink()
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


def animal_group(animal: int) -> str:
    """The subgroup of a run's group that holds animal ``animal``'s outputs."""
    return f"animal{int(animal)}"


def read_group(
    path: Path, group: str, names: Sequence[str], animal: int | None = None
) -> dict[str, np.ndarray]:
    """Datasets ``names`` of a complete group; a one-line DegError if absent or unreadable.

    ``animal``: read animal ``animal``'s outputs of a several-animal video (its subgroup
    first, then the run's group; see the module docstring); None: a one-animal group.
    """
    try:
        with h5py.File(path, "r") as f:
            if group not in f or not f[group].attrs.get("complete", False):
                raise DegError(f"has no complete outputs of run {group!r}", path)
            g = f[group]
            sub = None
            if animal is not None:
                sub = g.get(animal_group(animal))
                if sub is None:
                    raise DegError(f"has no outputs of animal {animal} in run {group!r}", path)
            out = {}
            for n in names:
                if sub is not None and n in sub:
                    data = sub[n][()]
                elif n in g:
                    data = g[n][()]
                elif animal is None and int(g.attrs.get("animals", 1)) > 1:
                    raise DegError(
                        f"run {group!r} holds per-animal outputs: read them per animal", path
                    )
                else:
                    raise DegError(f"run {group!r} has no {n!r}", path)
                if n == "class_names":
                    data = np.array([s.decode() if isinstance(s, bytes) else s for s in data])
                out[n] = data
            return out
    except OSError as e:
        raise DegError(f"cannot read outputs file ({' '.join(str(e).split())})", path) from None
