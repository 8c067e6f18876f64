"""The behaviour list: checking names, and adding, removing and renaming behaviours.

A change of the list rewrites project_config.yaml and every label file (the training
files and every other annotator's) as one :class:`~deg_core.project.transaction.Change`
under the project lock, so a kill leaves the old list with the old files or the new
list with the new ones. Renames are journalled in ``.deg_renames.yaml`` so that the
Labeler can follow them in its crash journals (:meth:`BehaviorsMixin.current_behavior`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deg_core.errors import ProjectError
from deg_core.fileio import dump_yaml, load_yaml
from deg_core.labels.annotators import annotator_of
from deg_core.labels.labels import Labels, labels_text, read_labels
from deg_core.project.records import ANIMALS_DIR, VideoRecord
from deg_core.project.transaction import Change

RESERVED = frozenset({"background", "none", "other", "misc"})
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")  # behaviour and project names
RENAMES_FILE = ".deg_renames.yaml"  # old -> new behaviour names, for crash journals


def check_behavior_name(name: str, existing: Sequence[str] = ()) -> str:
    """Return ``name`` if it can be a behaviour, else raise ProjectError saying why."""
    if not isinstance(name, str) or not name.strip():
        raise ProjectError("behaviour names must not be empty")
    if name.lower() in RESERVED:
        raise ProjectError(
            f"{name!r} cannot be a behaviour: background is implicit (frames with no behaviour)"
        )
    if not NAME_RE.match(name):
        raise ProjectError(
            f"behaviour name {name!r} is unsafe in file names and CSV headers: "
            "use a letter, then letters, digits, _ or - (at most 64)"
        )
    if name.lower() in (e.lower() for e in existing):
        raise ProjectError(f"duplicate behaviour name {name!r}")
    return name


def check_behavior_names(names: list[str]) -> list[str]:
    out: list[str] = []
    if not names:
        raise ProjectError("a project needs at least one behaviour")
    for n in names:
        out.append(check_behavior_name(n, out))
    return out


class BehaviorsMixin:
    """:class:`~deg_core.project.project.Project`'s behaviour-list changes."""

    if TYPE_CHECKING:  # Project provides these; declared here, not imported (a cycle)
        root: Path

        @property
        def behaviors(self) -> list[str]: ...
        @property
        def config_path(self) -> Path: ...
        def lock(self, timeout: float | None = None) -> AbstractContextManager[None]: ...
        def reload(self) -> None: ...
        def _config_change(self, **project_values: Any) -> tuple[dict, str]: ...
        def video_keys(self) -> list[str]: ...
        def record(self, key: str) -> VideoRecord: ...
        def label_set_files(self, video: str | Path) -> list[Path]: ...

    def _label_files(self) -> list[tuple[Path, Labels]]:
        """Every label set (training files and other annotators'), read and checked."""
        out: list[tuple[Path, Labels]] = []
        for key in self.video_keys():  # every animal's too, in a video of several
            out.extend((p, read_labels(p, self.behaviors)) for p in self.label_set_files(key))
        return out

    def _change_behaviors(
        self,
        new_behaviors: list[str],
        change: Callable[[Labels], Labels],
        trash: dict[str, Path] | None = None,
        renamed: tuple[str, str] | None = None,
    ) -> None:
        """Rewrite the config and every label file as one all-or-nothing change.

        ``change`` maps old Labels to new; ``trash`` (name -> folder) keeps removed
        columns; renames are recorded for the Labeler's crash journals.
        """
        files = self._label_files()  # every file read and checked before anything is staged
        _, config_text = self._config_change(class_names=["background", *new_behaviors])
        txn = Change(self.root)
        try:
            for name, folder in (trash or {}).items():
                for path, labels in files:
                    col = labels.array[:, labels.behaviors.index(name)]
                    text = name + "\n" + "".join(f"{int(v)}\n" for v in col)
                    who = annotator_of(path.name)  # one trash file per video and annotator
                    stem = _trash_stem(path) + (f".{who}" if who else "")
                    txn.write_text(folder / f"{stem}.csv", text)
            for path, labels in files:
                txn.write_text(path, labels_text(change(labels)))
            if renamed is not None:
                renames = [*self._renames(), {"old": renamed[0], "new": renamed[1]}]
                txn.write_text(self.root / RENAMES_FILE, dump_yaml(renames))
            txn.write_text(self.config_path, config_text)
        except BaseException:
            txn.abandon()
            raise
        txn.commit()
        self.reload()

    def _renames(self) -> list[dict]:
        path = self.root / RENAMES_FILE
        data = load_yaml(path, what="rename record") if path.is_file() else []
        return [d for d in data or [] if isinstance(d, dict) and "old" in d and "new" in d]

    def current_behavior(self, name: str) -> str | None:
        """The behaviour ``name`` is called now (following renames), or None if removed."""
        for item in self._renames():
            if item["old"] == name:
                name = item["new"]
        return name if name in self.behaviors else None

    def add_behaviors(self, names: Sequence[str]) -> None:
        """Add behaviours; -1 (unlabeled) on every frame of existing label files.

        All names are checked before anything is written.
        """
        with self.lock():
            self.reload()
            new = list(self.behaviors)
            for name in names:
                new.append(check_behavior_name(name, new))

            def change(lab: Labels) -> Labels:
                for name in names:
                    lab = lab.add_behavior(name)
                return lab

            self._change_behaviors(new, change)

    def add_behavior(self, name: str) -> None:
        """Add a behaviour; it is -1 (unlabeled) on every frame of existing label files."""
        self.add_behaviors([name])

    def remove_behaviors(self, names: Sequence[str]) -> None:
        """Remove behaviours; their label columns are kept in ``.trash/`` first."""
        with self.lock():
            self.reload()
            for name in names:
                if name not in self.behaviors:
                    raise ProjectError(
                        f"no behaviour {name!r} (behaviours: {', '.join(self.behaviors)})"
                    )
            if len(set(names)) >= len(self.behaviors):
                raise ProjectError("cannot remove the last behaviour")
            stamp = f"{dt.datetime.now():%y%m%d_%H%M%S}"
            trash = {n: self.root / ".trash" / f"{stamp}_behavior_{n}" for n in set(names)}

            def change(lab: Labels) -> Labels:
                for name in dict.fromkeys(names):
                    lab = lab.remove_behavior(name)
                return lab

            self._change_behaviors([b for b in self.behaviors if b not in names], change, trash)

    def remove_behavior(self, name: str) -> None:
        """Remove a behaviour; its label columns are kept in ``.trash/`` first."""
        self.remove_behaviors([name])

    def rename_behavior(self, old: str, new: str) -> None:
        with self.lock():
            self.reload()
            if old not in self.behaviors:
                raise ProjectError(
                    f"no behaviour {old!r} (behaviours: {', '.join(self.behaviors)})"
                )
            check_behavior_name(new, [b for b in self.behaviors if b != old])
            self._change_behaviors(
                [new if b == old else b for b in self.behaviors],
                lambda lab: lab.rename_behavior(old, new),
                renamed=(old, new),
            )


def _trash_stem(path: Path) -> str:
    """A removed column's trash file name for a label file: its video's key, and
    ``.animal<i>`` for an animal's file (``DATA/<key>/animals/animal<i>/...``)."""
    if path.parent.parent.name == ANIMALS_DIR:
        return f"{path.parent.parent.parent.name}.{path.parent.name}"
    return path.parent.name
