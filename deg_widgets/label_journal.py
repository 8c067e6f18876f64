"""The label journal: every Labeler edit on disk at once, so a crash loses nothing.

``DATA/<key>/.<key>_labels.journal`` holds JSON lines: a header per session (its
behaviours and frame count) and, per edit, the new values of the changed cells as runs
``[k, start, stop, v]`` (absolute values, not deltas), so replaying a session's lines over
a newer label CSV applies its edits on top of someone else's. Appends by different
processes exclude each other (fcntl where available). Replaying maps a header's
behaviours onto the current ones by name, so edits survive behaviours being added,
removed, renamed or reordered; what cannot be replayed is reported, never dropped
silently. Also the CSV fingerprints the session uses to detect that another writer
changed the file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.errors import LabelError
from deg_core.fileio import atomic_write_bytes, atomic_write_text

try:  # POSIX: journal appends and rewrites by different processes exclude each other
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "Fingerprint",
    "Journal",
    "Replayed",
    "apply_runs",
    "diff_runs",
    "fingerprint",
    "replay",
    "same_file",
]

Fingerprint = tuple[int, int, str] | None  # (mtime_ns, size, sha1) of the CSV; None: no file


def fingerprint(path: Path) -> Fingerprint:
    """(mtime_ns, size, sha1) of ``path``, or None if it does not exist."""
    try:
        st = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size, hashlib.sha1(data).hexdigest()


def same_file(a: Fingerprint, b: Fingerprint) -> bool:
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
            self.path.parent.mkdir(parents=True, exist_ok=True)  # an animal's folder, at need
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

    def read(self) -> tuple[list[dict[str, Any]], int]:
        """(every readable line in file order, how many lines were unreadable: cut short
        by a crash, or not a journal line)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return [], 0
        out, bad = [], 0
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if isinstance(item, dict) and isinstance(item.get("s"), str):
                out.append(item)
            else:
                bad += 1
        return out, bad

    def entries(self) -> list[dict[str, Any]]:
        """Every readable line in file order (a line cut short by a crash is skipped)."""
        return self.read()[0]

    def _rewrite(self, keep: list[dict[str, Any]]) -> None:
        """Replace the file with ``keep`` (or remove it when empty); caller holds the lock.

        Waiting writers notice the new inode and reopen (see ``_locked``)."""
        if not keep:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        atomic_write_text(self.path, "".join(json.dumps(e) + "\n" for e in keep))

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

    def keep_copy(self) -> Path:
        """Copy the whole journal beside it under a new name, for the user to recover
        what could not be replayed (nothing else touches it); returns the copy."""
        stamp = dt.datetime.now().strftime("%y%m%d_%H%M%S")
        with self._locked():  # a consistent copy; the lock also keeps the name unique
            data = self.path.read_bytes()
            dst = self.path.with_name(f"{self.path.name}.not-replayed-{stamp}")
            n = 1
            while dst.exists():
                n += 1
                dst = self.path.with_name(f"{self.path.name}.not-replayed-{stamp}-{n}")
            atomic_write_bytes(dst, data)
        return dst


@dataclass
class Replayed:
    """What :func:`replay` did."""

    sessions: set[str] = field(default_factory=set)  # whose change lines it looked at
    lines: int = 0  # change lines applied, in full or in part
    problems: list[str] = field(default_factory=list)  # what was not replayed, one each


def _run(run: Any, k_count: int, t: int) -> tuple[int, int, int, int] | None:
    """``run`` as (k, start, stop, value) if it is well formed and fits, else None."""
    if not isinstance(run, list) or len(run) != 4:
        return None
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in run):
        return None
    k, a, b, v = run
    if 0 <= k < k_count and 0 <= a < b <= t and v in (-1, 0, 1):
        return k, a, b, v
    return None


def replay(
    entries: list[dict[str, Any]],
    array: np.ndarray,
    behaviors: list[str],
    only: str | None,
    current: Callable[[str], str | None] | None = None,
) -> Replayed:
    """Apply journal ``entries`` (of session ``only``, or all) to ``array`` in place.

    Columns are matched by name: a session's behaviour ``b`` lands on ``current(b)``, its
    name now (None: removed; without ``current``, ``b`` itself if still a behaviour), so
    edits survive behaviours being added, removed, renamed or reordered. Whatever cannot
    land (a removed behaviour, another frame count, a malformed line) is skipped and
    described in ``problems``; everything else is applied.
    """
    t = len(array)
    headers = {e["s"]: e for e in entries if "behaviors" in e}
    columns: dict[str, list[int | None] | None] = {}
    out = Replayed()
    lost: dict[str, np.ndarray] = {}  # removed behaviour -> frames whose edits are lost
    other_length: dict[int, int] = {}  # a session's frame count -> change lines
    headless = malformed = 0
    for e in entries:
        s = e["s"]
        if "runs" not in e or (only is not None and s != only):
            continue
        out.sessions.add(s)
        head = headers.get(s)
        if head is None:
            headless += 1
            continue
        if s not in columns:
            columns[s] = _columns(head, behaviors, current)
        cols, runs = columns[s], e["runs"]
        if cols is None or not isinstance(runs, list):
            malformed += 1
            continue
        if head["n_frames"] != t:
            other_length[head["n_frames"]] = other_length.get(head["n_frames"], 0) + 1
            continue
        applied = bad = False
        for run in runs:
            parsed = _run(run, len(cols), t)
            if parsed is None:
                bad = True
                continue
            k, a, b, v = parsed
            j = cols[k]
            if j is None:
                lost.setdefault(head["behaviors"][k], np.zeros(t, bool))[a:b] = True
                continue
            array[a:b, j] = v
            applied = True
        out.lines += int(applied)
        malformed += int(bad)
    for name, frames in lost.items():
        out.problems.append(
            f"edits of {name!r} on {int(frames.sum())} frame(s): no such behaviour now"
        )
    for n, lines in other_length.items():
        out.problems.append(f"{lines} edit(s) made when the video had {n} frames, not {t}")
    if malformed:
        out.problems.append(f"{malformed} malformed edit line(s)")
    if headless:
        out.problems.append(f"{headless} edit line(s) without their session's header")
    return out


def _columns(
    head: dict[str, Any], behaviors: list[str], current: Callable[[str], str | None] | None
) -> list[int | None] | None:
    """For each behaviour of a session header, its column now (None: gone); None for a
    malformed header."""
    names, n = head.get("behaviors"), head.get("n_frames")
    if not isinstance(names, list) or not all(isinstance(b, str) for b in names):
        return None
    if not isinstance(n, int) or isinstance(n, bool):
        return None
    if names == behaviors:  # written since the last change: names mean what they mean now
        return list(range(len(names)))
    out: list[int | None] = []
    for name in names:
        now = current(name) if current is not None else name
        out.append(behaviors.index(now) if now in behaviors else None)
    return out
