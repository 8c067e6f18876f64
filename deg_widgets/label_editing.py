"""The :class:`~deg_widgets.labeler.Labeler`'s label edits and saves.

A mixin: the edits go to the Labeler's :class:`~deg_widgets.label_session.LabelSession`
(undo, journal, conflicts) and the results to its synced traits, which stay declared on
the widget class itself so anywidget syncs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deg_core.errors import ProjectError
from deg_widgets.base import reported
from deg_widgets.label_session import ExclusiveClash, LabelConflict

if TYPE_CHECKING:
    from deg_core.project.project import Project
    from deg_widgets.debounce import Debouncer
    from deg_widgets.label_review import Predictions
    from deg_widgets.label_session import LabelSession

__all__ = ["LabelEditing"]


class LabelEditing:
    """Edit labels (each edit one undo step, or one group), save, autosave and reload."""

    if TYPE_CHECKING:  # provided by the Labeler: its state and synced traits
        project: Project
        predictions: Predictions
        session: LabelSession | None
        sessions: dict[int, LabelSession]
        autosave: bool
        _autosaver: Debouncer
        _closed: bool
        video: str
        status: str
        annotators: list[str]
        saved_at: str
        lock_conflict: bool

        @property
        def _session(self) -> LabelSession: ...

        def _sync(self) -> None: ...

        def _refresh_reference(self) -> None: ...

        def _select(self, animal: int) -> None: ...

    # ------------------------------------------------------------------ editing
    def _edited(self, status: str | None = None) -> None:
        self._sync()
        if status is not None:
            self.status = status
        if self.autosave and self._session.dirty:
            self._autosaver.kick()

    @reported
    def set_range(
        self, behavior: int, start: int, stop: int, value: int, group: str | None = None
    ) -> None:
        """labels[start:stop, behavior] = value (behavior -1: all); same group = one undo."""
        self._session.set_range(behavior, start, stop, value, group)
        self._edited()

    @reported
    def toggle(self, behavior: int, frame: int) -> None:
        """Present -> absent; absent or unlabelled -> present."""
        self._session.toggle(behavior, frame)
        self._edited()

    @reported
    def undo(self) -> None:
        what = self._session.undo()
        self._edited(f"undid {what}" if what else "nothing to undo")

    @reported
    def redo(self) -> None:
        what = self._session.redo()
        self._edited(f"redid {what}" if what else "nothing to redo")

    @reported
    def finalize(self) -> None:
        """Unlabelled -> absent on the whole video (one undo step), then save."""
        n = self._session.finalize()
        self._edited()
        self._save_session(force=False)
        self.status = f"finalized: {n} unlabelled cell(s) set absent; saved"

    @reported
    def import_predictions(self, overwrite: bool = False) -> None:
        """Copy predictions onto unlabelled frames (all frames if ``overwrite``); one undo."""
        pred = self.predictions.predicted
        if pred is None:
            raise ProjectError(
                f"no predictions for {self.video!r} yet: run `deg infer sequence` first"
            )
        n = self._session.import_predictions(pred, overwrite)
        where = "all frames" if overwrite else "unlabelled frames"
        self._edited(f"imported predictions onto {where}: {n} cell(s) changed")

    # ------------------------------------------------------------------ saving
    def _save_session(self, force: bool) -> bool:
        """Save the selected animal's labels (``force``: over a changed file), then every
        other animal's with edits; a conflict there selects that animal before raising,
        so the banner, reload() and save(force=True) act on it."""
        selected = self._session
        try:
            written = selected.save(force=force)
            for i, other in self.sessions.items():
                if other is not selected and other.dirty:
                    try:
                        written = other.save(force=False) or written
                    except (LabelConflict, ExclusiveClash):
                        self._select(i)
                        raise
        except LabelConflict:
            self.lock_conflict = True
            raise
        self.lock_conflict = False
        if written:  # a first save creates this annotator's set
            self.annotators = self.project.annotators(self._session.key, self._session.animal)
        self._sync()
        return written

    @reported
    def save(self, force: bool = False) -> None:
        """Write the label CSV now (refused if it changed on disk, unless ``force``)."""
        self._autosaver.cancel()
        written = self._save_session(force)
        self.status = f"saved {self.saved_at[11:]}" if written else "no changes to save"

    def _autosave(self) -> None:
        if not self._closed and any(s.dirty for s in self.sessions.values()):
            self.save()

    @reported
    def reload(self) -> None:
        """Re-read the CSV (others' saved changes) and re-apply our unsaved edits on top;
        the reference annotator's row is re-read too."""
        self._autosaver.cancel()
        self._session.reload()
        self._refresh_reference()
        self.lock_conflict = False
        ours = self._session.dirty
        self._edited("reloaded" + (": your unsaved edits re-applied on top" if ours else ""))
