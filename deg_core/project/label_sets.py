"""Label sets: the training label file and every other annotator's.

The primary labeler's set (``project.labeler``, else "primary") is the training file
``<key>_labels.csv``; another annotator's is ``<key>_labels.<labeler>.csv`` beside it
(:mod:`deg_core.labels.annotators`). Every write is checked against the video and the
behaviours, atomic, and made under the project lock.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from deg_core.config import DegConfig
from deg_core.errors import ProjectError
from deg_core.labels.annotators import PRIMARY, annotator_path, list_annotator_files
from deg_core.labels.labels import Labels, import_labels, read_labels, write_labels
from deg_core.project.records import VideoRecord


class LabelSetsMixin:
    """:class:`~deg_core.project.project.Project`'s label files, one per annotator."""

    if TYPE_CHECKING:  # Project provides these; declared here, not imported (a cycle)
        config: DegConfig

        @property
        def behaviors(self) -> list[str]: ...
        def lock(self, timeout: float | None = None) -> AbstractContextManager[None]: ...
        def reload(self) -> None: ...
        def record(self, key: str) -> VideoRecord: ...
        def resolve_key(self, video: str | Path) -> str: ...

    def labels(self, video: str | Path) -> Labels:
        """The video's labels; all -1 (unlabeled) if it has no label file yet."""
        rec = self.record(self.resolve_key(video))
        if rec.labels_path.exists():
            return read_labels(rec.labels_path, self.behaviors, rec.n_frames())
        return Labels.empty(rec.n_frames(), self.behaviors)

    def save_labels(self, video: str | Path, labels: Labels, timeout: float | None = None) -> Path:
        """Store ``labels`` as the video's label file (under the project lock)."""
        rec = self.record(self.resolve_key(video))
        return self._write_label_set(rec, rec.labels_path, labels, timeout)

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
            write_labels(path, labels)
        return path

    def import_labels(
        self, video: str | Path, path: str | Path, labeler: str | None = None, **kwargs
    ) -> Labels:
        """Validate a label CSV (DEG format or a bout table) and store it as the video's
        labels, or as ``labeler``'s set (the primary labeler's is the training file)."""
        rec = self.record(self.resolve_key(video))
        target = self.annotator_labels_path(rec.key, labeler)  # a bad name fails first
        labels = import_labels(Path(path), self.behaviors, rec.n_frames(), **kwargs)
        self._write_label_set(rec, target, labels, None)  # a DEG project's own file, if any
        return labels

    # ------------------------------------------------------------------ annotators
    @property
    def primary_labeler(self) -> str:
        """Whose labels the training file holds: ``project.labeler``, else "primary"."""
        return self.config.project.labeler or PRIMARY

    def annotator_labels_path(self, video: str | Path, labeler: str | None = None) -> Path:
        """The file of ``labeler``'s set: the training file for None or the primary
        labeler, else ``<key>_labels.<labeler>.csv`` beside it (name checked)."""
        rec = self.record(self.resolve_key(video))
        if labeler is None or labeler == self.primary_labeler:
            return rec.labels_path
        return annotator_path(rec.labels_path, labeler)

    def annotators(self, video: str | Path) -> list[str]:
        """Who has labels for the video: the primary labeler first (if the training file
        exists), then the other annotators by name."""
        path = self.record(self.resolve_key(video)).labels_path
        names = [self.primary_labeler] if path.exists() else []
        return names + [n for n in list_annotator_files(path) if n != self.primary_labeler]

    def annotator_labels(self, video: str | Path, labeler: str | None = None) -> Labels:
        """``labeler``'s labels of the video (None: the primary's, i.e. :meth:`labels`);
        all -1 if that annotator has none yet."""
        rec = self.record(self.resolve_key(video))
        path = self.annotator_labels_path(rec.key, labeler)
        if path.exists():
            return read_labels(path, self.behaviors, rec.n_frames())
        return Labels.empty(rec.n_frames(), self.behaviors)

    def save_annotator_labels(
        self,
        video: str | Path,
        labeler: str | None,
        labels: Labels,
        timeout: float | None = None,
    ) -> Path:
        """Store ``labeler``'s set (as :meth:`save_labels`: checked, atomic, locked); the
        primary labeler's (or None) is the training file."""
        rec = self.record(self.resolve_key(video))
        path = self.annotator_labels_path(rec.key, labeler)
        return self._write_label_set(rec, path, labels, timeout)
