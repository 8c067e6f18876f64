"""The Labeler's editing model, without any widget: labels, undo/redo, journal, saving.

A :class:`LabelSession` holds one video's labels as a (T, K) int8 array (1 present,
0 absent, -1 unlabelled) and edits them in place. Every change is

- one undo step (edits that carry the same ``group`` string coalesce into one step);
- appended at once to a journal, ``DATA/<key>/.<key>_labels.journal`` (JSON lines), so
  no edit is lost if the kernel dies before the labels are saved;
- written to the label CSV by :meth:`LabelSession.save` (atomically, through
  ``Project.save_labels``), which then removes this session's journal lines.

Journal lines hold the new values of the changed cells as runs ``[k, start, stop, v]``
(absolute values, not deltas), so replaying them over a newer CSV applies this
session's edits on top of someone else's: that is how :meth:`LabelSession.reload`
merges. Opening a session replays whatever a previous session left in the journal and
adopts those lines as its own. Columns are matched by behaviour name (following renames),
so a crash followed by ``deg behaviors add/remove/rename`` loses nothing silently: what
cannot be replayed (a removed behaviour, another frame count, a malformed line) is
named in ``notes`` and the whole journal is kept in a copy beside it.

Conflicts: the session remembers the CSV's (mtime_ns, size, sha1) when it loads or saves
it. If the file has changed since, :meth:`save` refuses to write and raises
:class:`LabelConflict`; ``reload()`` takes the other changes (and keeps ours), or
``save(force=True)`` overwrites them.

Exclusive projects (``project.exclusive``: one behaviour or background per frame): marking
a behaviour present on a frame marks every other behaviour absent there, and :meth:`save`
refuses (:class:`ExclusiveClash`) to write a frame that holds more than one behaviour, which
only labels from before the project became exclusive can still hold.

The journal itself lives in :mod:`deg_widgets.label_journal`; predictions and the
review-queue searches in :mod:`deg_widgets.label_review`.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass

import numpy as np

from deg_core.errors import DegError, LabelError
from deg_core.labels.labels import Labels
from deg_core.project.project import Project
from deg_widgets.label_journal import (
    Fingerprint,
    Journal,
    diff_runs,
    fingerprint,
    replay,
    same_file,
)

__all__ = ["ExclusiveClash", "LabelConflict", "LabelSession", "clash_frames"]

UNDO_BYTES = 256 * 2**20  # undo history memory cap (oldest steps dropped first)


class LabelConflict(DegError):
    """The label CSV changed on disk since this session loaded or saved it."""


class ExclusiveClash(LabelError):
    """An exclusive project's labels hold more than one behaviour on some frame."""


def clash_frames(array: np.ndarray) -> np.ndarray:
    """Indices of the frames of (T, K) ``array`` where more than one behaviour is present."""
    return np.flatnonzero((array == 1).sum(axis=1) > 1)


def _describe_frames(frames: np.ndarray, shown: int = 5) -> str:
    """A count and the first few indices, e.g. "3 frame(s) (4, 9, 12)", for one-line messages."""
    head = ", ".join(str(int(f)) for f in frames[:shown])
    return f"{len(frames)} frame(s) ({head}{', ...' if len(frames) > shown else ''})"


# --------------------------------------------------------------------------- session


@dataclass
class _Step:
    """One undo (or redo) step: rows [lo, hi) get ``block`` back."""

    lo: int
    hi: int
    block: np.ndarray  # (hi - lo, K) int8
    group: str | None
    what: str


class LabelSession:
    """Editing one video's labels (see module docstring).

    Args:
        project: the project.
        key: the video key.
        labeler: whose label set to edit (None: the project's labeler, whose file trains;
            another name: ``<key>_labels.<labeler>.csv`` with its own journal).
        animal: which animal's set in a video of several (``animals/animal<i>/``, its own
            journal beside it); None on a one-animal video.
        max_undo: undo steps kept (oldest dropped first).

    Attributes:
        array: (T, K) int8 current labels (edit through the methods only).
        exclusive: the project keeps one behaviour (or background) per frame.
        replayed: journal changes found and applied when opening (0 if none).
        notes: one-line remarks from opening (journal replayed, predictions missing...).
        warnings: those of ``notes`` (and of reloads) about journal edits not replayed.
    """

    def __init__(
        self,
        project: Project,
        key: str,
        *,
        labeler: str | None = None,
        animal: int | None = None,
        max_undo: int = 500,
    ):
        self.project = project
        self.key = project.resolve_key(key)
        self.record = project.record(self.key)
        self.behaviors = list(project.behaviors)
        self.exclusive = project.exclusive  # one behaviour (or background) per frame
        self.n_frames = self.record.n_frames()
        self.animal = project.check_animal(self.key, animal)
        # checks the name (and the animal: None on a video of several is refused)
        self.path = project.annotator_labels_path(self.key, labeler, self.animal)
        self.labeler = project.primary_labeler if labeler is None else labeler
        primary = self.path == project.label_path(self.key, self.animal)
        self.max_undo = max_undo
        self.session = uuid.uuid4().hex[:12]
        self.journal = Journal(  # one journal per label set: annotators never replay each other
            self.path.parent
            / (f".{self.key}_labels.journal" if primary else f".{self.path.stem}.journal"),
            self.session,
            self.behaviors,
            self.n_frames,
        )
        self.lock = threading.RLock()  # autosave may run on a timer thread
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._open_group: str | None = None  # the group the top undo step may still grow
        self.saved_at: dt.datetime | None = None
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.replayed = 0
        self._load(only=None)
        self._note_clashes()

    # ------------------------------------------------------------------ loading
    def _read_file(self) -> tuple[np.ndarray, Fingerprint]:
        for _ in range(3):  # a writer may replace the file between stat and read
            fp = fingerprint(self.path)
            labels = self.project.annotator_labels(self.key, self.labeler, self.animal).array
            if same_file(fp, fingerprint(self.path)):
                return labels, fp
        return labels, fingerprint(self.path)

    def _load(self, only: str | None) -> None:
        """Read the CSV, then replay journal lines (``only`` this session's, or all)."""
        base, self._fp = self._read_file()
        self._saved = base.copy()  # what the CSV holds
        self.array = base.copy()
        self._undo.clear()
        self._redo.clear()
        self._open_group = None
        entries, unreadable = self.journal.read()
        if only is not None:
            unreadable = 0  # whose they were is unknown: opening reported them already
        if not entries and not unreadable:
            self.replayed = 0
            return
        # edits land on their behaviour's column by name, following renames
        done = replay(entries, self.array, self.behaviors, only, self._current_behavior)
        problems = done.problems + ([f"{unreadable} unreadable line(s)"] if unreadable else [])
        if problems:  # the replayable edits are applied; the rest stays in a copy
            kept = self.journal.keep_copy()
            warning = (
                f"not replayed from the journal: {'; '.join(problems)} "
                f"(the whole journal is kept in {kept})"
            )
            self.warnings.append(warning)
            self.notes.append(warning)
        self.replayed = done.lines
        if only is None and (done.sessions or problems):  # unreadable lines: in the copy
            self.journal.adopt(base, self.array, done.sessions)
            if not np.array_equal(base, self.array):
                self.notes.append(
                    f"restored {self.replayed} unsaved edit(s) from the journal (undo drops them)"
                )
        if not np.array_equal(base, self.array):  # one undo step back to the file
            rows = np.flatnonzero((base != self.array).any(axis=1))
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            self._undo.append(_Step(lo, hi, base[lo:hi].copy(), None, "journal replay"))

    def _note_clashes(self) -> None:
        """In an exclusive project, say where the labels (older than the setting) clash."""
        frames = clash_frames(self.array) if self.exclusive else np.empty(0, np.intp)
        if len(frames):
            self.notes.append(
                f"this project is exclusive but {_describe_frames(frames)} hold more than "
                "one behaviour: label one behaviour there before saving"
            )

    def _current_behavior(self, name: str) -> str | None:
        """The behaviour ``name`` is now (following renames), None if it is gone."""
        try:
            return self.project.current_behavior(name)
        except DegError:  # an unreadable rename record: renamed edits are reported, not lost
            return name if name in self.behaviors else None

    def reload(self) -> None:
        """Re-read the CSV (taking changes saved by others), then re-apply this session's
        unsaved edits from the journal on top. Clears undo history."""
        with self.lock:
            self._load(only=self.session)

    # ------------------------------------------------------------------ state
    @property
    def dirty(self) -> bool:
        """Edits not yet in the CSV."""
        return not np.array_equal(self.array, self._saved)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def labels(self) -> Labels:
        return Labels(list(self.behaviors), self.array.copy())

    # ------------------------------------------------------------------ editing
    def _check_behavior(self, behavior: int, allow_all: bool) -> int:
        k = len(self.behaviors)
        lo = -1 if allow_all else 0
        if isinstance(behavior, bool) or not isinstance(behavior, int | np.integer):
            raise LabelError(f"behaviour index must be an int, got {behavior!r}")
        if not lo <= behavior < k:
            what = "-1 (all) or " if allow_all else ""
            raise LabelError(
                f"behaviour index {behavior} out of range: use {what}0..{k - 1} "
                f"({', '.join(self.behaviors)})"
            )
        return int(behavior)

    def _check_frame(self, frame: int) -> int:
        if isinstance(frame, bool) or not isinstance(frame, int | np.integer):
            raise LabelError(f"frame must be an int, got {frame!r}")
        if not 0 <= frame < self.n_frames:
            raise LabelError(f"frame {frame} out of range [0, {self.n_frames})")
        return int(frame)

    def _change(
        self, lo: int, hi: int, new: np.ndarray, what: str, group: str | None = None
    ) -> bool:
        """Rows [lo, hi) become ``new``: journal, undo step (coalesced by group). True if
        anything changed."""
        old = self.array[lo:hi].copy()
        if np.array_equal(old, new):
            return False
        self.journal.append(diff_runs(old, new, lo))  # journal first: a crash keeps the edit
        self.array[lo:hi] = new
        self._redo.clear()
        top = self._undo[-1] if self._undo else None
        if group is not None and top is not None and self._open_group == group:
            # grow the group's step: rows it did not cover held ``old`` before this edit
            a, b = min(lo, top.lo), max(hi, top.hi)
            block = np.empty((b - a, len(self.behaviors)), np.int8)
            block[lo - a : hi - a] = old
            block[top.lo - a : top.hi - a] = top.block
            gaps = np.ones(b - a, bool)
            gaps[lo - a : hi - a] = gaps[top.lo - a : top.hi - a] = False
            block[gaps] = self.array[a:b][gaps]  # untouched by either: current = before
            self._undo[-1] = _Step(a, b, block, group, top.what)
        else:
            self._undo.append(_Step(lo, hi, old, group, what))
            del self._undo[: -self.max_undo]
            while len(self._undo) > 1 and sum(s.block.nbytes for s in self._undo) > UNDO_BYTES:
                del self._undo[0]  # whole-video steps of a long video are large
        self._open_group = group
        return True

    def set_range(
        self, behavior: int, start: int, stop: int, value: int, group: str | None = None
    ) -> bool:
        """labels[start:stop, behavior] = value (behavior -1: all behaviours)."""
        with self.lock:
            k = self._check_behavior(behavior, allow_all=True)
            if value not in (-1, 0, 1) or isinstance(value, bool):
                raise LabelError(f"label value must be 1, 0 or -1, got {value!r}")
            for name, f in (("start", start), ("stop", stop)):
                if isinstance(f, bool) or not isinstance(f, int | np.integer):
                    raise LabelError(f"{name} must be an int, got {f!r}")
            if not 0 <= start <= stop <= self.n_frames:
                raise LabelError(
                    f"frame range [{start}, {stop}) not within [0, {self.n_frames}] "
                    "(stop is exclusive and >= start)"
                )
            if start == stop:
                return False
            if self.exclusive and k == -1 and value == 1:
                raise LabelError(
                    "this project is exclusive (one behaviour per frame): "
                    "it cannot mark every behaviour present at once"
                )
            new = self.array[start:stop].copy()
            if k == -1:
                new[:] = value
            else:
                self._put(new, k, value)
            return self._change(start, stop, new, "set", group)

    def _put(self, rows: np.ndarray, k: int, value: int) -> None:
        """rows[:, k] = value in place; in an exclusive project a present behaviour also
        makes every other one absent on those rows."""
        if self.exclusive and value == 1:
            rows[:] = 0
        rows[:, k] = value

    def toggle(self, behavior: int, frame: int) -> int:
        """Present -> absent, absent or unlabelled -> present; returns the new value."""
        with self.lock:
            k = self._check_behavior(behavior, allow_all=False)
            f = self._check_frame(frame)
            value = 0 if self.array[f, k] == 1 else 1
            new = self.array[f : f + 1].copy()
            self._put(new, k, value)
            self._change(f, f + 1, new, "toggle")
            return value

    def finalize(self) -> int:
        """Unlabelled -> absent on every frame (one undo step); returns cells changed."""
        with self.lock:
            n = int((self.array == -1).sum())
            self._change(0, self.n_frames, np.where(self.array == -1, 0, self.array), "finalize")
            return n

    def import_predictions(self, predicted: np.ndarray, overwrite: bool = False) -> int:
        """Copy (T, K) ``predicted`` onto unlabelled frames (every frame if ``overwrite``);
        one undo step; returns cells changed. In an exclusive project a frame the copy
        would leave with more than one behaviour keeps its labels."""
        with self.lock:
            if predicted.shape != self.array.shape:
                raise LabelError(
                    f"predictions have shape {predicted.shape}, labels {self.array.shape}"
                )
            take = np.ones(self.array.shape, bool) if overwrite else self.array == -1
            new = np.where(take, predicted.astype(np.int8), self.array)
            if self.exclusive:
                clashes = clash_frames(new)
                new[clashes] = self.array[clashes]
            n = int((new != self.array).sum())
            self._change(0, self.n_frames, new, "import predictions")
            return n

    def _swap(self, source: list[_Step], target: list[_Step]) -> _Step | None:
        if not source:
            return None
        step = source.pop()
        current = self.array[step.lo : step.hi].copy()
        self.journal.append(diff_runs(current, step.block, step.lo))
        self.array[step.lo : step.hi] = step.block
        target.append(_Step(step.lo, step.hi, current, step.group, step.what))
        self._open_group = None
        return step

    def undo(self) -> str | None:
        """Undo the last step; returns what it was (None if nothing to undo)."""
        with self.lock:
            step = self._swap(self._undo, self._redo)
            return step.what if step else None

    def redo(self) -> str | None:
        """Redo the last undone step; returns what it was (None if nothing to redo)."""
        with self.lock:
            step = self._swap(self._redo, self._undo)
            return step.what if step else None

    def end_group(self) -> None:
        """The next edit starts a new undo step even if it carries the same group."""
        self._open_group = None

    # ------------------------------------------------------------------ saving
    def conflict(self) -> bool:
        """True if the CSV changed on disk since this session loaded or saved it."""
        return not same_file(fingerprint(self.path), self._fp)

    def _check_exclusive(self) -> None:
        """Raise ExclusiveClash if an exclusive project's labels hold two behaviours on a
        frame: the CSV of such a project never does (training reads one class per frame)."""
        frames = clash_frames(self.array) if self.exclusive else np.empty(0, np.intp)
        if len(frames):
            raise ExclusiveClash(
                f"not saved: this project is exclusive but {_describe_frames(frames)} hold "
                "more than one behaviour; label one behaviour there (your edits stay in the "
                "journal)",
                self.path,
            )

    def save(self, force: bool = False) -> bool:
        """Write the CSV atomically if there are unsaved edits; returns True if written.

        Raises LabelConflict (writing nothing) if the file changed on disk since this
        session read or wrote it, unless ``force``; ExclusiveClash (writing nothing, even
        with ``force``) if an exclusive project's labels hold two behaviours on a frame.
        """
        # the project lock spans the check and the write: an import in another process
        # cannot land in between and be overwritten unseen
        with self.lock, self.project.lock():
            if not force and self.conflict():
                raise LabelConflict(
                    f"{self.path.name} changed on disk since this Labeler loaded it: "
                    "reload() to take the other changes (yours stay in the journal) "
                    "or save(force=True)",
                    self.path,
                )
            written = False
            if self.dirty or (force and self.conflict()):
                self._check_exclusive()  # only when writing: opening and switching stay free
                snapshot = self.array.copy()
                self.project.save_annotator_labels(
                    self.key,
                    self.labeler,
                    Labels(list(self.behaviors), snapshot),
                    animal=self.animal,
                )
                self._saved = snapshot
                self._fp = fingerprint(self.path)
                written = True
            self.journal.drop_own()  # saved, or nothing to save: the lines are done
            self.saved_at = dt.datetime.now()
            return written
