"""Label sets: the training label file and every other annotator's, per animal.

The primary labeler's set (``project.labeler``, else "primary") is the training file
``<key>_labels.csv``; another annotator's is ``<key>_labels.<labeler>.csv`` beside it
(:mod:`deg_core.labels.annotators`). A video of several animals (``project.animals`` /
``project.animals_per_video``) keeps animal i's sets, in the same format and names, in
``DATA/<key>/animals/animal<i>/``; its top-level ``<key>_labels.csv`` is not used (``deg
status`` says so if one is there). A one-animal video is laid out as DeepEthogram's.
Every write is checked against the video and the behaviours, atomic, and made under the
project lock.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from deg_core.config import DegConfig
from deg_core.errors import ProjectError
from deg_core.labels.annotators import PRIMARY, annotator_path, list_annotator_files
from deg_core.labels.labels import (
    Labels,
    import_bout_animals,
    import_labels,
    read_labels,
    write_labels,
)
from deg_core.project.records import VideoRecord

_ANIMAL_ID = re.compile(r"(?:animal)?(\d+)", re.IGNORECASE)


class LabelSetsMixin:
    """:class:`~deg_core.project.project.Project`'s label files, one per annotator (and per
    animal in a video of several)."""

    if TYPE_CHECKING:  # Project provides these; declared here, not imported (a cycle)
        config: DegConfig

        @property
        def behaviors(self) -> list[str]: ...
        def lock(self, timeout: float | None = None) -> AbstractContextManager[None]: ...
        def reload(self) -> None: ...
        def record(self, key: str) -> VideoRecord: ...
        def resolve_key(self, video: str | Path) -> str: ...
        def n_animals(self, key: str) -> int: ...

    # ------------------------------------------------------------------ animals
    def check_animal(self, video: str | Path, animal: int | None) -> int | None:
        """``animal`` as an int if it is one of the video's (0..N-1); None stays None on a
        one-animal video. One-line ProjectError for an index outside the video's animals,
        or for None on a video of several (which animal is then unsaid)."""
        key = self.resolve_key(video)
        n = self.n_animals(key)
        if animal is None:
            if n > 1:
                raise ProjectError(
                    f"video {key} has {n} animals (0..{n - 1}): say which one (animal=I, "
                    "--animal I)"
                )
            return None
        if isinstance(animal, bool) or not isinstance(animal, int) or not 0 <= animal < n:
            raise ProjectError(
                f"animal {animal!r}: video {key} has {n} animal{'s' if n > 1 else ''} (0..{n - 1})"
            )
        return int(animal)

    def label_path(self, video: str | Path, animal: int | None = None) -> Path:
        """The training label file of ``animal`` in the video: DeepEthogram's
        ``<key>_labels.csv`` on a one-animal video (animal None or 0), else
        ``animals/animal<i>/<key>_labels.csv``. The one place a video maps to its file."""
        rec = self.record(self.resolve_key(video))
        chosen = self.check_animal(rec.key, animal)
        if chosen is None or self.n_animals(rec.key) == 1:
            return rec.labels_path
        return rec.animal_labels_path(chosen)

    def animal_labels_path(self, video: str | Path, animal: int) -> Path:
        """Animal ``animal``'s training label file (:meth:`label_path`; 0 on a one-animal
        video is DeepEthogram's file)."""
        return self.label_path(video, animal)

    def animal_index(self, video: str | Path, name: object) -> int:
        """The index of an animal named in a file (``2``, ``"2"``, ``"animal2"``), checked
        against the video's animals; one-line ProjectError otherwise."""
        key = self.resolve_key(video)
        m = _ANIMAL_ID.fullmatch(str(name).strip())
        if m is None:
            raise ProjectError(
                f"animal {name!r} is neither an animal index (0, 1, ...) nor a name "
                "(animal0, animal1, ...)"
            )
        n = self.n_animals(key)
        i = int(m.group(1))
        if i >= n:
            raise ProjectError(
                f"animal {name!r} is not in video {key}: it has {n} "
                f"animal{'s' if n > 1 else ''} (0..{n - 1})"
            )
        return i

    def label_set_files(self, video: str | Path) -> list[Path]:
        """Every label file of the video on disk: the top-level training file and the
        annotators' beside it, then each ``animals/animal<i>/`` folder's (any i on disk)."""
        rec = self.record(self.resolve_key(video))
        bases = [rec.labels_path]
        bases += [rec.animal_labels_path(i) for i in rec.animal_folders()]
        out = []
        for base in bases:
            out += [p for p in (base, *list_annotator_files(base).values()) if p.exists()]
        return out

    # ------------------------------------------------------------------ labels
    def labels(self, video: str | Path, animal: int | None = None) -> Labels:
        """The video's labels (``animal``'s in a video of several); all -1 (unlabeled) if
        there is no label file yet."""
        rec = self.record(self.resolve_key(video))
        path = self.label_path(rec.key, animal)
        if path.exists():
            return read_labels(path, self.behaviors, rec.n_frames())
        return Labels.empty(rec.n_frames(), self.behaviors)

    def save_labels(
        self,
        video: str | Path,
        labels: Labels,
        timeout: float | None = None,
        *,
        animal: int | None = None,
    ) -> Path:
        """Store ``labels`` as the video's label file (``animal``'s in a video of several;
        under the project lock)."""
        rec = self.record(self.resolve_key(video))
        return self._write_label_set(rec, self.label_path(rec.key, animal), labels, timeout)

    def _write_label_set(
        self, rec: VideoRecord, path: Path, labels: Labels, timeout: float | None
    ) -> Path:
        """Check ``labels`` against the video and the behaviours, then write ``path``
        atomically under the project lock."""
        if labels.n_frames != rec.n_frames():
            raise ProjectError(f"labels have {labels.n_frames} frames, video has {rec.frames}")
        with self.lock(timeout):
            self.reload()  # the behaviours may have changed in another process
            if labels.behaviors != self.behaviors:
                raise ProjectError(
                    f"labels are for behaviours {labels.behaviors}, project has {self.behaviors}"
                )
            path.parent.mkdir(parents=True, exist_ok=True)  # an animal's folder
            write_labels(path, labels)
        return path

    def import_labels(
        self,
        video: str | Path,
        path: str | Path,
        labeler: str | None = None,
        animal: int | None = None,
        **kwargs,
    ) -> Labels:
        """Validate a label CSV (DEG format or a bout table) and store it as the video's
        labels (``animal``'s in a video of several), or as ``labeler``'s set (the primary
        labeler's is the training file). A bout table with an animal column (``animal``,
        ``subject`` or ``individual``: an index or ``animal<i>``) gives ``animal``'s rows
        (on a one-animal video only when ``animal`` is given); every animal it names must
        be the video's."""
        rec = self.record(self.resolve_key(video))
        target = self.annotator_labels_path(rec.key, labeler, animal)  # bad names fail first
        # a one-animal video reads an animal column only when told an animal (as before)
        several = animal is not None or self.n_animals(rec.key) > 1
        per_animal = self._bout_animals(rec, Path(path), **kwargs) if several else None
        if per_animal is None:
            labels = import_labels(Path(path), self.behaviors, rec.n_frames(), **kwargs)
        else:
            wanted = 0 if animal is None else animal
            if wanted not in per_animal:
                named = ", ".join(map(str, per_animal))
                raise ProjectError(f"no bouts of animal {wanted} (animals: {named})", path)
            labels = per_animal[wanted]
        self._write_label_set(rec, target, labels, None)  # a DEG project's own file, if any
        return labels

    def import_labels_per_animal(
        self, video: str | Path, path: str | Path, labeler: str | None = None, **kwargs
    ) -> dict[int, Labels]:
        """Import a bout table with an animal column into every animal it names at once
        ({index: labels}, by index; ``labeler``'s sets, else the training files). Every
        animal named must be the video's, and all rows are checked before the first file
        is written; an animal without rows keeps its labels."""
        rec = self.record(self.resolve_key(video))
        if self.n_animals(rec.key) > 1:
            self.annotator_labels_path(rec.key, labeler, 0)  # a bad name fails first
        else:
            self.annotator_labels_path(rec.key, labeler)
        per_animal = self._bout_animals(rec, Path(path), **kwargs)
        if per_animal is None:
            raise ProjectError(
                "is not a bout table with an animal column (animal, subject or individual): "
                "import it for one animal (animal=I, --animal I)",
                path,
            )
        for i, labels in per_animal.items():
            self.save_annotator_labels(rec.key, labeler, labels, animal=i)
        return per_animal

    def _bout_animals(self, rec: VideoRecord, path: Path, **kwargs) -> dict[int, Labels] | None:
        """{animal index: labels} of a bout table with an animal column (every id checked
        against the video's animals), else None."""
        found = import_bout_animals(path, self.behaviors, rec.n_frames(), **kwargs)
        if found is None:
            return None
        out: dict[int, Labels] = {}
        names: dict[int, str] = {}
        for name, labels in found.items():
            i = self.animal_index(rec.key, name)
            if i in out:
                raise ProjectError(f"names animal {i} twice ({names[i]!r}, {name!r})", path)
            out[i], names[i] = labels, name
        return dict(sorted(out.items()))

    # ------------------------------------------------------------------ annotators
    @property
    def primary_labeler(self) -> str:
        """Whose labels the training file holds: ``project.labeler``, else "primary"."""
        return self.config.project.labeler or PRIMARY

    def annotator_labels_path(
        self, video: str | Path, labeler: str | None = None, animal: int | None = None
    ) -> Path:
        """The file of ``labeler``'s set (``animal``'s in a video of several): the
        training file for None or the primary labeler, else ``<key>_labels.<labeler>.csv``
        beside it (name checked)."""
        base = self.label_path(video, animal)
        if labeler is None or labeler == self.primary_labeler:
            return base
        return annotator_path(base, labeler)

    def annotators(self, video: str | Path, animal: int | None = None) -> list[str]:
        """Who has labels for the video (``animal`` in a video of several): the primary
        labeler first (if the training file exists), then the other annotators by name."""
        path = self.label_path(video, animal)
        names = [self.primary_labeler] if path.exists() else []
        return names + [n for n in list_annotator_files(path) if n != self.primary_labeler]

    def annotator_labels(
        self, video: str | Path, labeler: str | None = None, animal: int | None = None
    ) -> Labels:
        """``labeler``'s labels of the video (``animal``'s in a video of several; None: the
        primary's, i.e. :meth:`labels`); all -1 if that annotator has none yet."""
        rec = self.record(self.resolve_key(video))
        path = self.annotator_labels_path(rec.key, labeler, animal)
        if path.exists():
            return read_labels(path, self.behaviors, rec.n_frames())
        return Labels.empty(rec.n_frames(), self.behaviors)

    def save_annotator_labels(
        self,
        video: str | Path,
        labeler: str | None,
        labels: Labels,
        timeout: float | None = None,
        *,
        animal: int | None = None,
    ) -> Path:
        """Store ``labeler``'s set (as :meth:`save_labels`: checked, atomic, locked); the
        primary labeler's (or None) is the training file."""
        rec = self.record(self.resolve_key(video))
        path = self.annotator_labels_path(rec.key, labeler, animal)
        return self._write_label_set(rec, path, labels, timeout)
