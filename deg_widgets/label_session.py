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
adopts those lines as its own.

Conflicts: the session remembers the CSV's (mtime_ns, size, sha1) when it loads or saves
it. If the file has changed since, :meth:`save` refuses to write and raises
:class:`LabelConflict`; ``reload()`` takes the other changes (and keeps ours), or
``save(force=True)`` overwrites them.

The module also holds the review-queue searches (:func:`next_bout`,
:func:`next_uncertain`, :func:`next_disagreement`): pure functions of arrays.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.errors import DegError, LabelError
from deg_core.labels import Labels, read_labels
from deg_core.project import Project

try:  # POSIX: journal appends and rewrites by different processes exclude each other
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Journal",
    "LabelConflict",
    "LabelSession",
    "Predictions",
    "diff_runs",
    "next_bout",
    "next_disagreement",
    "next_uncertain",
]

UNDO_BYTES = 256 * 2**20  # undo history memory cap (oldest steps dropped first)
Fingerprint = tuple[int, int, str] | None  # (mtime_ns, size, sha1) of the CSV; None: no file


class LabelConflict(DegError):
    """The label CSV changed on disk since this session loaded or saved it."""


# --------------------------------------------------------------------------- helpers


def fingerprint(path: Path) -> Fingerprint:
    """(mtime_ns, size, sha1) of ``path``, or None if it does not exist."""
    try:
        st = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size, hashlib.sha1(data).hexdigest()


def _same_file(a: Fingerprint, b: Fingerprint) -> bool:
    """Same content (a touched but unchanged file is no conflict)."""
    if a is None or b is None:
        return a is b
    return a[1:] == b[1:]


def diff_runs(before: np.ndarray, after: np.ndarray, offset: int = 0) -> list[list[int]]:
    """Runs ``[k, start, stop, value]`` of the cells where ``after`` differs from ``before``.

    ``before``, ``after``: (n, K) int8 rows ``offset .. offset + n``. Each run is a maximal
    stretch of changed cells in column k that all take ``value``; applying every run to
    ``before`` gives ``after``.
    """
    out: list[list[int]] = []
    for k in range(after.shape[1]):
        changed = before[:, k] != after[:, k]
        if not changed.any():
            continue
        key = np.where(changed, after[:, k].astype(np.int16), 99)  # 99: unchanged cell
        edges = np.flatnonzero(np.diff(key)) + 1
        starts = np.r_[0, edges]
        stops = np.r_[edges, len(key)]
        for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
            if key[a] != 99:
                out.append([k, a + offset, b + offset, int(key[a])])
    return out


def apply_runs(array: np.ndarray, runs: list[list[int]]) -> tuple[int, int] | None:
    """Apply runs to ``array`` (T, K) in place; returns the rows touched [lo, hi) or None."""
    t, k_count = array.shape
    for run in runs:
        k, a, b, v = (int(x) for x in run)
        if not (0 <= k < k_count and 0 <= a < b <= t and v in (-1, 0, 1)):
            raise LabelError(f"journal run {run} does not fit labels of shape {array.shape}")
    if not runs:
        return None
    for k, a, b, v in runs:
        array[a:b, k] = v
    return min(r[1] for r in runs), max(r[2] for r in runs)


# --------------------------------------------------------------------------- journal


_LOCAL_LOCK = threading.Lock()  # where fcntl is missing, at least threads exclude each other


class Journal:
    """``.<key>_labels.journal``: JSON lines, one per change, tagged with a session id.

    A session's first line is a header ``{"s", "behaviors", "n_frames", "pid", "opened"}``;
    each change is ``{"s", "runs": [[k, start, stop, value], ...]}``. Lines are appended
    with one ``write`` on an O_APPEND descriptor (under an exclusive lock where fcntl
    exists), so lines of concurrent sessions never interleave; rewrites replace the file
    atomically under the same lock.
    """

    def __init__(self, path: Path, session: str, behaviors: list[str], n_frames: int):
        self.path = Path(path)
        self.session = session
        self.header = {
            "s": session,
            "behaviors": list(behaviors),
            "n_frames": int(n_frames),
            "pid": os.getpid(),
        }
        self._has_header = False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        """An O_APPEND fd on the current file, held under an exclusive lock."""
        with _LOCAL_LOCK:
            while True:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                if fcntl is None:
                    break
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:  # a rewrite may have replaced the file while we waited
                    if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                        break
                except FileNotFoundError:
                    pass
                os.close(fd)
            try:
                yield fd
            finally:
                os.close(fd)  # closing releases the lock

    def append(self, runs: list[list[int]]) -> None:
        """Record one change (nothing for an empty one)."""
        if not runs:
            return
        lines = []
        if not self._has_header:
            opened = dt.datetime.now().isoformat(timespec="seconds")
            lines.append(json.dumps({**self.header, "opened": opened}))
        lines.append(json.dumps({"s": self.session, "runs": runs}, separators=(",", ":")))
        with self._locked() as fd:
            os.write(fd, ("\n".join(lines) + "\n").encode())
        self._has_header = True

    def entries(self) -> list[dict[str, Any]]:
        """Every complete line in file order (a line cut short by a crash is skipped)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict) and isinstance(item.get("s"), str):
                out.append(item)
        return out

    def _rewrite(self, keep: list[dict[str, Any]]) -> None:
        """Replace the file with ``keep`` (or remove it when empty); caller holds the lock."""
        if not keep:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(json.dumps(e) + "\n" for e in keep), encoding="utf-8")
        os.replace(tmp, self.path)

    def drop_own(self) -> None:
        """Remove this session's lines (its changes are saved)."""
        with self._locked():
            keep = [e for e in self.entries() if e["s"] != self.session]
            self._rewrite(keep)
        self._has_header = False

    def adopt(self, base: np.ndarray, replayed: np.ndarray, sessions: set[str]) -> None:
        """Replace the lines of ``sessions`` (replayed into ``replayed`` over ``base``) by
        one change of this session, so they are not replayed twice."""
        runs = diff_runs(base, replayed)
        with self._locked():
            keep = [e for e in self.entries() if e["s"] not in sessions]
            if runs:
                opened = dt.datetime.now().isoformat(timespec="seconds")
                keep += [{**self.header, "opened": opened}, {"s": self.session, "runs": runs}]
            self._rewrite(keep)
        self._has_header = bool(runs)

    def set_aside(self) -> Path:
        """Move an unusable journal out of the way (kept for the user); returns where."""
        stamp = dt.datetime.now().strftime("%y%m%d_%H%M%S")
        dst = self.path.with_name(f"{self.path.name}.stale-{stamp}")
        os.replace(self.path, dst)
        return dst


def replay(
    entries: list[dict[str, Any]], array: np.ndarray, behaviors: list[str], only: str | None
) -> tuple[set[str], list[str]]:
    """Apply journal ``entries`` (of session ``only``, or all) to ``array`` in place.

    Returns (sessions replayed, problems): a session whose header names other behaviours
    or another frame count is not replayed (its runs would land in the wrong cells).
    """
    headers = {e["s"]: e for e in entries if "behaviors" in e}
    done: set[str] = set()
    problems: list[str] = []
    for e in entries:
        s = e["s"]
        if "runs" not in e or (only is not None and s != only):
            continue
        head = headers.get(s)
        if head is None or head["behaviors"] != behaviors or head["n_frames"] != len(array):
            msg = f"journal lines of session {s} are for other behaviours or another length"
            if msg not in problems:
                problems.append(msg)
            continue
        apply_runs(array, e["runs"])
        done.add(s)
    return done, problems


# --------------------------------------------------------------------------- predictions


@dataclass
class Predictions:
    """A video's model output, aligned with its labels.

    ``probs``: (T, K) float32 P, or None; ``thresholds``: (K,) or None;
    ``predicted``: (T, K) int8 thresholded + cleaned predictions, or None.
    """

    probs: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    predicted: np.ndarray | None = None
    source: str = ""  # where they came from, for messages

    @classmethod
    def load(cls, project: Project, key: str) -> Predictions:
        """The latest sequence run's P and the predictions CSV (each may be missing)."""
        from deg_core.outputs import read_group
        from deg_core.status import output_groups

        rec = project.record(key)
        n, behaviors = rec.n_frames(), project.behaviors
        out = cls()
        group = _sequence_group(project, output_groups(rec.outputs_path))
        if group is not None:
            got = read_group(rec.outputs_path, group, ("P", "thresholds", "class_names"))
            names = [c for c in got["class_names"].tolist() if c != "background"]
            if names == behaviors and got["P"].shape == (n, len(behaviors)):
                out.probs = np.asarray(got["P"], np.float32)
                out.thresholds = np.asarray(got["thresholds"], np.float32).reshape(-1)
                out.source = f"run {group}"
        if rec.predictions_path.exists():
            out.predicted = read_labels(rec.predictions_path, behaviors, n).array
            out.source = out.source or rec.predictions_path.name
        elif out.probs is not None and out.thresholds is not None:
            out.predicted = (out.probs >= out.thresholds[None]).astype(np.int8)
        return out


def _sequence_group(project: Project, groups: list[str] | str) -> str | None:
    """The latest sequence run's group in an outputs file (else the newest sequence group)."""
    if isinstance(groups, str) or not groups:
        return None
    from deg_core.runs import resolve_run

    with contextlib.suppress(DegError):
        latest = resolve_run(project.models_dir, "sequence", "latest").name
        if latest in groups:
            return latest
    seq = sorted(g for g in groups if "_sequence_" in g)
    return seq[-1] if seq else None


# --------------------------------------------------------------------------- seeks


def _starts(mask: np.ndarray) -> np.ndarray:
    """(T, K) or (T,) bool -> sorted unique frames where a stretch of True begins."""
    m = mask.reshape(len(mask), -1)
    prev = np.vstack([np.zeros((1, m.shape[1]), bool), m[:-1]])
    return np.unique(np.flatnonzero((m & ~prev).any(axis=1)))


def _pick(starts: np.ndarray, frame: int, direction: int) -> int | None:
    """The first start after ``frame`` (direction 1) or the last before it (-1)."""
    if direction >= 0:
        after = starts[starts > frame]
        return int(after[0]) if len(after) else None
    before = starts[starts < frame]
    return int(before[-1]) if len(before) else None


def next_bout(
    labels: np.ndarray,
    frame: int,
    direction: int = 1,
    behavior: int | None = None,
    predicted: np.ndarray | None = None,
) -> int | None:
    """Start of the next (previous) bout of ``behavior`` (any when None), or None.

    ``labels``, ``predicted``: (T, K) int8. A frame counts as present where it is labelled
    1, or where it is unlabelled (-1) and ``predicted`` says 1, so the search runs over the
    predictions on stretches that nobody labelled yet. With ``behavior=None`` every
    behaviour's bout starts count (not the starts of their union).
    """
    present = labels == 1
    if predicted is not None:
        present |= (labels == -1) & (predicted == 1)
    if behavior is not None:
        present = present[:, [behavior]]
    return _pick(_starts(present), frame, direction)


def next_uncertain(
    probs: np.ndarray,
    thresholds: np.ndarray,
    frame: int,
    direction: int = 1,
    margin: float = 0.2,
) -> int | None:
    """The most uncertain frame of the next stretch of uncertain frames, or None.

    ``probs``: (T, K) P; ``thresholds``: (K,). A frame's distance is min over behaviours
    of |P - threshold| (the behaviour closest to flipping); uncertain frames are those
    with distance < ``margin``. Stretches of uncertain frames are scanned from ``frame``
    in ``direction``, skipping the one that holds ``frame`` (so pressing the key again
    moves on); the answer is the stretch's frame of least distance (its local minimum).
    """
    dist = np.abs(probs - thresholds[None]).min(axis=1)
    unsure = dist < margin
    if not unsure.any():
        return None
    starts = _starts(unsure)
    ends = _starts(unsure[::-1])  # reversed starts: last frame of each stretch
    ends = np.sort(len(unsure) - 1 - ends)
    if direction >= 0:
        pick = np.flatnonzero(starts > frame)
    else:
        pick = np.flatnonzero(ends < frame)
        pick = pick[::-1]
    if not len(pick):
        return None
    a, b = int(starts[pick[0]]), int(ends[pick[0]])
    return a + int(np.argmin(dist[a : b + 1]))


def next_disagreement(
    labels: np.ndarray, predicted: np.ndarray, frame: int, direction: int = 1
) -> int | None:
    """Start of the next (previous) stretch where labels and predictions differ, or None.

    A frame disagrees where some behaviour is labelled (not -1) with a value other than
    the prediction's. (T, K) int8 both.
    """
    differ = ((labels != -1) & (labels != predicted)).any(axis=1)
    return _pick(_starts(differ), frame, direction)


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
        max_undo: undo steps kept (oldest dropped first).

    Attributes:
        array: (T, K) int8 current labels (edit through the methods only).
        replayed: journal changes found and applied when opening (0 if none).
        notes: one-line remarks from opening (journal replayed or set aside).
    """

    def __init__(self, project: Project, key: str, *, max_undo: int = 500):
        self.project = project
        self.key = project.resolve_key(key)
        self.record = project.record(self.key)
        self.behaviors = list(project.behaviors)
        self.n_frames = self.record.n_frames()
        self.path = self.record.labels_path
        self.max_undo = max_undo
        self.session = uuid.uuid4().hex[:12]
        self.journal = Journal(
            self.record.folder / f".{self.key}_labels.journal",
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
        self.replayed = 0
        self._load(only=None)

    # ------------------------------------------------------------------ loading
    def _read_file(self) -> tuple[np.ndarray, Fingerprint]:
        for _ in range(3):  # a writer may replace the file between stat and read
            fp = fingerprint(self.path)
            labels = self.project.labels(self.key).array
            if _same_file(fp, fingerprint(self.path)):
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
        entries = self.journal.entries()
        if not entries:
            self.replayed = 0
            return
        try:
            done, problems = replay(entries, self.array, self.behaviors, only)
        except LabelError as e:
            self.array = base.copy()
            done, problems = set(), [str(e)]
        if problems and only is None:
            where = self.journal.set_aside()
            self.array = base.copy()  # all or nothing: a half replay would mislead
            self.notes.append(f"unusable journal moved to {where.name}: {problems[0]}")
            self.replayed = 0
            return
        self.replayed = sum(1 for e in entries if e["s"] in done and "runs" in e)
        if only is None and done:
            self.journal.adopt(base, self.array, done)
            if not np.array_equal(base, self.array):
                self.notes.append(
                    f"restored {self.replayed} unsaved edit(s) from the journal (undo drops them)"
                )
        if not np.array_equal(base, self.array):  # one undo step back to the file
            rows = np.flatnonzero((base != self.array).any(axis=1))
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            self._undo.append(_Step(lo, hi, base[lo:hi].copy(), None, "journal replay"))

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
            new = self.array[start:stop].copy()
            if k == -1:
                new[:] = value
            else:
                new[:, k] = value
            return self._change(start, stop, new, "set", group)

    def toggle(self, behavior: int, frame: int) -> int:
        """Present -> absent, absent or unlabelled -> present; returns the new value."""
        with self.lock:
            k = self._check_behavior(behavior, allow_all=False)
            f = self._check_frame(frame)
            value = 0 if self.array[f, k] == 1 else 1
            new = self.array[f : f + 1].copy()
            new[0, k] = value
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
        one undo step; returns cells changed."""
        with self.lock:
            if predicted.shape != self.array.shape:
                raise LabelError(
                    f"predictions have shape {predicted.shape}, labels {self.array.shape}"
                )
            take = np.ones(self.array.shape, bool) if overwrite else self.array == -1
            new = np.where(take, predicted.astype(np.int8), self.array)
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
        return not _same_file(fingerprint(self.path), self._fp)

    def save(self, force: bool = False) -> bool:
        """Write the CSV atomically if there are unsaved edits; returns True if written.

        Raises LabelConflict (writing nothing) if the file changed on disk since this
        session read or wrote it, unless ``force``.
        """
        with self.lock:
            if not force and self.conflict():
                raise LabelConflict(
                    f"{self.path.name} changed on disk since this Labeler loaded it: "
                    "reload() to take the other changes (yours stay in the journal) "
                    "or save(force=True)",
                    self.path,
                )
            written = False
            if self.dirty or (force and self.conflict()):
                snapshot = self.array.copy()
                self.project.save_labels(self.key, Labels(list(self.behaviors), snapshot))
                self._saved = snapshot
                self._fp = fingerprint(self.path)
                written = True
            self.journal.drop_own()  # saved, or nothing to save: the lines are done
            self.saved_at = dt.datetime.now()
            return written
