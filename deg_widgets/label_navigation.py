"""The :class:`~deg_widgets.labeler.Labeler`'s reference-annotator row and its seeks.

A mixin: the methods read and set the Labeler's synced traits (``frame``, ``status``,
``reference``...), which stay declared on the widget class itself so anywidget syncs them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from deg_core.errors import ProjectError
from deg_widgets.base import reported
from deg_widgets.label_review import (
    disagreement_starts,
    next_animal_disagreement,
    next_annotator_disagreement,
    next_bout,
    next_disagreement,
    next_uncertain,
)

if TYPE_CHECKING:
    from deg_core.project.project import Project
    from deg_widgets.label_review import Predictions
    from deg_widgets.label_session import LabelSession

__all__ = ["LabelNavigation"]


class LabelNavigation:
    """Show another annotator's labels read-only; jump to bouts, doubts and disagreements."""

    if TYPE_CHECKING:  # provided by the Labeler: its state and synced traits
        project: Project
        predictions: Predictions
        all_predictions: dict[int, Predictions]
        sessions: dict[int, LabelSession]
        n_animals: int
        animal: int
        animal_names: list[str]
        frame: int
        status: str
        behaviors: list[str]
        n_frames: int
        labeler: str
        annotators: list[str]
        reference: str
        reference_labels: bytes

        @property
        def _session(self) -> LabelSession: ...

        def hold_sync(self) -> AbstractContextManager[Any]: ...

        def _select(self, animal: int) -> None: ...

    # ------------------------------------------------------------------ annotators
    def _reference_bytes(self, key: str, name: str) -> bytes:
        """(T, K) int8 bytes of ``name``'s labels of ``key`` (of the selected animal's in a
        video of several); b"" for none or no labels."""
        animal = self._session.animal
        if not name or name not in self.project.annotators(key, animal):
            return b""
        return self.project.annotator_labels(key, name, animal).array.tobytes()

    def _set_reference(self, name: str | None) -> None:
        s = self._session
        name = name or ""
        if name:
            self.project.annotator_labels_path(s.key, name, s.animal)  # checks the name
            if name == s.labeler:
                raise ProjectError(f"{name!r} is the labeler here: pick another annotator")
        with self.hold_sync():  # one message: the name and its row together
            self.reference = name
            self._refresh_reference()
        if name and not self.reference_labels:
            self.status = f"{name} has no labels for {s.key} yet"
        else:
            self.status = f"reference: {name}" if name else "no reference annotator"

    def _refresh_reference(self) -> None:
        """Re-read the annotator list and the reference row: another annotator may have
        saved since they were read."""
        key = self._session.key
        with self.hold_sync():
            self.annotators = self.project.annotators(key, self._session.animal)
            self.reference_labels = self._reference_bytes(key, self.reference)

    @reported
    def show_reference(self, labeler: str | None) -> None:
        """Show ``labeler``'s labels of this video as a read-only row (None: hide it); it
        follows video switches."""
        self._set_reference(labeler)

    def reference_array(self) -> np.ndarray | None:
        """(T, K) int8 the reference annotator's labels of this video, or None."""
        if not self.reference_labels:
            return None
        k = len(self.behaviors)
        return np.frombuffer(self.reference_labels, np.int8).reshape(self.n_frames, k)

    # ------------------------------------------------------------------ seeks
    def _go(self, frame: int | None, found: str, missing: str) -> None:
        if frame is None:
            self.status = missing
        else:
            self.frame = frame
            self.status = found.format(frame=frame)

    @reported
    def seek_bout(self, direction: int = 1, behavior: int | None = None) -> None:
        """Go to the next (direction 1) or previous (-1) bout start."""
        s = self._session
        name = "any behaviour"
        if behavior is not None:
            s._check_behavior(behavior, allow_all=False)
            name = s.behaviors[behavior]
        f = next_bout(s.array, self.frame, direction, behavior, self.predictions.predicted)
        word = "next" if direction >= 0 else "previous"
        self._go(f, f"{word} bout of {name}: frame {{frame}}", f"no {word} bout of {name}")

    @reported
    def seek_uncertain(self, direction: int = 1) -> None:
        """Go to the most uncertain frame of the next stretch where the model is unsure."""
        p, thr = self.predictions.probs, self.predictions.thresholds
        if p is None or thr is None:
            self.status = "no model probabilities for this video"
            return
        f = next_uncertain(p, thr, self.frame, direction)
        word = "next" if direction >= 0 else "previous"
        self._go(f, "uncertain frame {frame}", f"no {word} uncertain frame")

    @reported
    def seek_disagreement(self, direction: int = 1) -> None:
        """Go to the start of the next stretch where labels and predictions differ (on a
        video of several animals, any animal's: that animal is selected)."""
        if self.n_animals > 1:
            self._seek_animal_disagreement(direction)
            return
        pred = self.predictions.predicted
        if pred is None:
            self.status = "no predictions for this video"
            return
        f = next_disagreement(self._session.array, pred, self.frame, direction)
        word = "next" if direction >= 0 else "previous"
        self._go(f, "labels and predictions differ from frame {frame}", f"no {word} disagreement")

    def _seek_animal_disagreement(self, direction: int) -> None:
        starts = {
            i: disagreement_starts(self.sessions[i].array, p.predicted)
            for i, p in self.all_predictions.items()
            if p.predicted is not None
        }
        word = "next" if direction >= 0 else "previous"
        if not starts:
            self.status = "no predictions for this video"
            return
        found = next_animal_disagreement(starts, self.frame, self.animal, direction)
        if found is None:
            self.status = f"no {word} disagreement for any animal"
            return
        frame, animal = found
        if animal != self.animal:
            self._select(animal)
        self.frame = frame
        self.status = (
            f"{self.animal_names[animal]}: labels and predictions differ from frame {frame}"
        )

    @reported
    def seek_annotator_disagreement(self, direction: int = 1) -> None:
        """Go to the start of the next stretch where this labeler and the reference differ."""
        ref = self.reference_array()
        if ref is None:
            self.status = "no reference annotator: pick one to compare with"
            return
        f = next_annotator_disagreement(self._session.array, ref, self.frame, direction)
        word = "next" if direction >= 0 else "previous"
        self._go(
            f,
            f"{self.labeler} and {self.reference} differ from frame {{frame}}",
            f"no {word} disagreement between {self.labeler} and {self.reference}",
        )
