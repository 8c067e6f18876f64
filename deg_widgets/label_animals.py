"""The :class:`~deg_widgets.labeler.Labeler` on a video of several animals.

A mixin: one :class:`~deg_widgets.label_session.LabelSession` (labels, undo, journal) and one
:class:`~deg_widgets.label_review.Predictions` per animal; the selected animal's are the ones
the edits, seeks and the per-animal traits (``labels``, ``probs``...) use. Its tracks give
the frame view's outlines and the swap candidates the review queue walks. A one-animal
video has one session (animal None) and none of this shows. The synced traits stay
declared on the widget class itself so anywidget syncs them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from deg_core.errors import DegError, ProjectError
from deg_widgets.base import reported
from deg_widgets.label_review import Predictions, next_frame_of

if TYPE_CHECKING:
    from deg_core.project.project import Project
    from deg_core.tracking.animals import AnimalTracks
    from deg_widgets.label_session import LabelSession

__all__ = ["LabelAnimals", "animal_ids"]


def animal_ids(project: Project, key: str) -> list[int | None]:
    """The label sets a video is edited as: [None] (DeepEthogram's one file) for a
    one-animal video, else [0, 1, ..., N-1]."""
    n = project.n_animals(key)
    return [None] if n == 1 else list(range(n))


class LabelAnimals:
    """Select the animal being labelled; show its tracks; walk and fix identity swaps."""

    if TYPE_CHECKING:  # provided by the Labeler: its state and synced traits
        project: Project
        session: LabelSession | None
        sessions: dict[int, LabelSession]
        all_predictions: dict[int, Predictions]
        predictions: Predictions
        video: str
        frame: int
        status: str
        n_frames: int
        n_animals: int
        animal: int
        animal_names: list[str]
        animal_labels: bytes
        tracks: bytes
        swap_frames: list[int]
        follow: bool
        _quiet: bool

        def hold_sync(self) -> AbstractContextManager[Any]: ...
        def _show_animal(self) -> None: ...

    # ------------------------------------------------------------------ tracks
    def _load_tracks(
        self, key: str, n_animals: int, n_frames: int
    ) -> tuple[AnimalTracks | None, str]:
        """The video's tracks if it has some that fit, and a note when they do not."""
        if n_animals == 1:
            return None, ""
        from deg_core.tracking.project_tracks import animal_tracks

        try:
            tracks = animal_tracks(self.project, key)
        except DegError as e:
            return None, f"tracks not shown: {e}"
        if tracks is None:
            return None, f"no tracks: deg tracks {self.project.root} {key} --compute"
        if tracks.n_animals != n_animals or tracks.n_frames != n_frames:
            return None, (
                f"tracks not shown: they hold {tracks.n_animals} animals x {tracks.n_frames} "
                f"frames, the video {n_animals} x {n_frames}"
            )
        return tracks, ""

    def _set_tracks(self, tracks: AnimalTracks | None, n_animals: int) -> None:
        """``tracks``, ``swap_frames`` and ``animal_names`` from ``tracks`` (None: none)."""
        from deg_core.project.records import animal_name

        if tracks is None:
            with self.hold_sync():
                self.tracks = b""
                self.swap_frames = []
                self.animal_names = [animal_name(i) for i in range(n_animals)]
            return
        from deg_core.tracking.multi import swap_candidates

        boxes = np.concatenate([tracks.center, tracks.extent], axis=2).astype(np.float32)
        with self.hold_sync():
            self.tracks = np.ascontiguousarray(boxes).tobytes()  # (T, N, 4) x, y, w, h
            self.swap_frames = swap_candidates(tracks)
            self.animal_names = list(tracks.names)

    # ------------------------------------------------------------------ selection
    def _all_labels_bytes(self) -> bytes:
        """(N, T, K) int8 every animal's labels; b"" on a one-animal video."""
        if self.n_animals <= 1:
            return b""
        return np.stack([self.sessions[i].array for i in sorted(self.sessions)]).tobytes()

    def _select(self, animal: int) -> None:
        """Make ``animal`` the one edited and shown (its session, predictions, rows)."""
        if self.n_animals <= 1:
            if animal != 0:
                raise ProjectError(f"video {self.video} has one animal: no animal {animal}")
            return
        if isinstance(animal, bool) or not isinstance(animal, int) or animal not in self.sessions:
            raise ProjectError(
                f"animal {animal!r}: video {self.video} has {self.n_animals} animals "
                f"(0..{self.n_animals - 1})"
            )
        self.session = self.sessions[animal]
        self.predictions = self.all_predictions[animal]
        self._quiet = True
        try:
            with self.hold_sync():
                self.animal = animal
                self.animal_labels = self._all_labels_bytes()
                self._show_animal()
                self.status = f"{self.animal_names[animal]} ({animal + 1} of {self.n_animals})"
        finally:
            self._quiet = False

    @reported
    def select_animal(self, animal: int) -> None:
        """Label ``animal`` (0..N-1) from now on: the edits, undo, seeks of bouts and
        uncertain frames and the prediction rows become that animal's."""
        self._select(animal)

    # ------------------------------------------------------------------ swaps
    @reported
    def seek_swap(self, direction: int = 1) -> None:
        """Go to the next (direction 1) or previous (-1) frame where identities may have
        swapped (the animals separating after touching, or a jump)."""
        word = "next" if direction >= 0 else "previous"
        if not self.tracks:
            self.status = "no tracks for this video: no identity swaps to check"
            return
        f = next_frame_of(self.swap_frames, self.frame, direction)
        if f is None:
            self.status = f"no {word} possible identity swap"
            return
        self.frame = f
        self.status = (
            f"identities may have swapped at frame {f}: check the outlines; "
            "swap_identities(a, b, frame) fixes the tracks from there on"
        )

    @reported
    def swap_identities(self, a: int, b: int, frame: int) -> None:
        """Animals ``a`` and ``b`` exchange tracks from ``frame`` on (the tracks file is
        rewritten; labels are not touched: they belong to whoever the outline showed)."""
        from deg_core.tracking.project_tracks import animal_tracks, save_animal_tracks

        tracks = animal_tracks(self.project, self.video)
        if tracks is None:
            raise ProjectError(f"video {self.video} has no tracks to swap")
        for v in (a, b, frame):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ProjectError(f"swap_identities needs ints, got {v!r}")
        try:
            swapped = tracks.swap(a, b, frame)
        except ValueError as e:
            raise ProjectError(f"cannot swap: {e}") from None
        save_animal_tracks(self.project, self.video, swapped)
        self._set_tracks(swapped, self.n_animals)
        self.status = (
            f"swapped {swapped.names[a]} and {swapped.names[b]} from frame {frame} "
            "(tracks saved; labels unchanged)"
        )
