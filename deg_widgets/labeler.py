"""``Labeler``: label a video's frames, behaviour by behaviour, in a notebook.

The kernel side of the labelling widget; the front end is ``static/labeler.js``. Python
is the source of truth for labels: the front end only sends requests, Python edits
(:class:`deg_widgets.label_session.LabelSession`: undo, journal, saving, conflicts) and
syncs the result back.

Contract (Python <-> front end)
-------------------------------
``Labeler(project, video=None, *, labeler=None, reference=None, frame_size=512,
jpeg_quality=85, autosave=True)``; ``project`` is a Project or a path; ``video`` a key
(None: the first video); ``labeler`` whose label set is edited and saved (None: the
project's labeler, whose file trains; another name: ``<key>_labels.<labeler>.csv``);
``reference`` another annotator shown read-only (None: none).

Synced traits:

- ``videos`` List[str] every key; ``video`` Unicode the current key (the front end may set
  it to switch: Python saves the old video first, then loads the new one).
- ``behaviors`` List[str]; ``n_frames`` Int; ``fps`` Float; ``frame_width``,
  ``frame_height`` Int (source size).
- ``frame`` Int the playhead (0-based), set by both sides, clamped to [0, n_frames - 1].
- ``labels`` Bytes: (n_frames, K) int8, C order; 1 present, 0 absent, -1 unlabelled.
- ``has_predictions`` Bool; ``probs`` Bytes: (n_frames, K) uint8 = round(P * 255) of the
  latest sequence run (b"" when none); ``predicted`` Bytes: (n_frames, K) int8
  thresholded + cleaned predictions (the predictions CSV, else P >= thresholds; b"" when
  none); ``thresholds`` List[float].
- ``labeler`` Unicode whose labels these are; ``annotators`` List[str] who has labels for
  this video; ``reference`` Unicode the annotator shown read-only ("" none);
  ``reference_labels`` Bytes: (n_frames, K) int8 their labels (b"" when none).
- ``playing`` Bool; ``speed`` Float (1.0 = real time).
- ``dirty`` Bool edits not yet in the CSV; ``saved_at`` Unicode ISO time of the last save
  or ""; ``can_undo``, ``can_redo`` Bool; ``status`` Unicode one line for the status bar;
  ``error`` Unicode (DegWidget; a red banner); ``lock_conflict`` Bool the CSV changed on
  disk under us; ``debug_timing`` Bool the front end records keypress-to-paint timings.

Messages front end -> Python (``model.send(obj)``), each routed to a public method:

- ``{type: "frames", req, indices}`` -> replies ``{type: "frames", req, indices}`` with
  one JPEG buffer per index, in order; one request may be answered in several such
  messages (cached frames at once, decoded ones as they come). :meth:`frame_jpeg`.
- ``{type: "set", behavior, start, stop, value, group?}`` -> :meth:`set_range`
  (stop exclusive; behavior -1 = all; same ``group`` = one undo step).
- ``{type: "toggle", behavior, frame}`` -> :meth:`toggle`.
- ``{type: "undo"}``, ``{type: "redo"}``, ``{type: "save", force?}`` -> :meth:`undo`,
  :meth:`redo`, :meth:`save`.
- ``{type: "finalize"}`` -> :meth:`finalize` (unlabelled -> absent, then saved).
- ``{type: "import_predictions", overwrite}`` -> :meth:`import_predictions`.
- ``{type: "seek", target: "next_bout" | "prev_bout" | "uncertain" | "disagree" |
  "annotators", behavior: int | null, direction: 1 | -1}`` -> :meth:`seek_bout`,
  :meth:`seek_uncertain`, :meth:`seek_disagreement`, :meth:`seek_annotator_disagreement`;
  when nothing is found ``status`` says so and ``frame`` stays.
- ``{type: "reference", labeler: str | null}`` -> :meth:`show_reference`.
- ``{type: "reload"}`` -> :meth:`reload` (beyond the contract: for a conflict banner).

Saving: every edit goes to the journal at once; autosave writes the CSV about
``autosave_delay`` seconds after the last edit, on a video switch and on :meth:`close`.
A save is refused when the CSV changed on disk since it was loaded (``lock_conflict``,
``error`` explains): :meth:`reload` or ``save(force=True)``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import traitlets

from deg_core.errors import DegError, ProjectError
from deg_core.project.project import Project
from deg_core.report.charts import PALETTE
from deg_widgets.base import DegWidget, reported
from deg_widgets.frames import FrameServer
from deg_widgets.label_review import (
    Predictions,
    next_annotator_disagreement,
    next_bout,
    next_disagreement,
    next_uncertain,
)
from deg_widgets.label_session import LabelConflict, LabelSession

__all__ = ["Labeler"]
log = logging.getLogger(__name__)


class _Debouncer:
    """Run ``fn`` once, ``delay`` seconds after the last :meth:`kick`.

    In a kernel the call is scheduled on the running asyncio loop (the thread that
    handles widget messages, so no locking against edits is needed); without a running
    loop (scripts, tests) a ``threading.Timer`` runs it.
    """

    def __init__(self, delay: float, fn: Callable[[], None]):
        self.delay = delay
        self.fn = fn
        self._handle: asyncio.TimerHandle | threading.Timer | None = None

    def kick(self) -> None:
        self.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            timer = threading.Timer(self.delay, self.fn)
            timer.daemon = True
            timer.start()
            self._handle = timer
        else:
            self._handle = loop.call_later(self.delay, self.fn)

    @property
    def pending(self) -> bool:
        h = self._handle
        if isinstance(h, threading.Timer):
            return h.is_alive()
        return h is not None and not h.cancelled()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _field(content: dict[str, Any], name: str, default: Any = ...) -> Any:
    if name in content:
        return content[name]
    if default is not ...:
        return default
    raise ValueError(f"{content.get('type')!r} message lacks {name!r}")


class Labeler(DegWidget):
    """Label one video at a time; see the module docstring for the full contract.

    Args:
        project: a Project or the path of one.
        video: a video key (or file name); None: the first video.
        labeler: who is labelling: saves go to that annotator's set (None: the project's
            labeler, whose label file trains).
        reference: another annotator whose labels are shown read-only (None: none).
        frame_size: served frames fit in a square of this many pixels.
        jpeg_quality: 1..100.
        autosave: write the CSV ``autosave_delay`` s after the last edit.
        autosave_delay: seconds.
    """

    _module = "labeler"

    videos = traitlets.List(traitlets.Unicode()).tag(sync=True)
    video = traitlets.Unicode("").tag(sync=True)
    behaviors = traitlets.List(traitlets.Unicode()).tag(sync=True)
    n_frames = traitlets.Int(0).tag(sync=True)
    fps = traitlets.Float(30.0).tag(sync=True)
    frame_width = traitlets.Int(0).tag(sync=True)
    frame_height = traitlets.Int(0).tag(sync=True)
    frame = traitlets.Int(0).tag(sync=True)
    labels = traitlets.Bytes(b"").tag(sync=True)
    has_predictions = traitlets.Bool(False).tag(sync=True)
    probs = traitlets.Bytes(b"").tag(sync=True)
    predicted = traitlets.Bytes(b"").tag(sync=True)
    thresholds = traitlets.List(traitlets.Float()).tag(sync=True)
    labeler = traitlets.Unicode("").tag(sync=True)
    annotators = traitlets.List(traitlets.Unicode()).tag(sync=True)
    reference = traitlets.Unicode("").tag(sync=True)
    reference_labels = traitlets.Bytes(b"").tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    speed = traitlets.Float(1.0).tag(sync=True)
    dirty = traitlets.Bool(False).tag(sync=True)
    saved_at = traitlets.Unicode("").tag(sync=True)
    can_undo = traitlets.Bool(False).tag(sync=True)
    can_redo = traitlets.Bool(False).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    lock_conflict = traitlets.Bool(False).tag(sync=True)
    debug_timing = traitlets.Bool(False).tag(sync=True)
    palette = traitlets.List(traitlets.Unicode(), list(PALETTE)).tag(sync=True)  # behaviour colours

    # set in __init__; class defaults keep close() safe if __init__ fails part way
    session: LabelSession | None = None
    server: FrameServer | None = None
    _closed = False
    _quiet = False  # set while Python itself updates ``video``
    _labeler: str | None = None  # who labels (None: the project's labeler)

    def __init__(
        self,
        project: Project | str | Path,
        video: str | None = None,
        *,
        labeler: str | None = None,
        reference: str | None = None,
        frame_size: int = 512,
        jpeg_quality: int = 85,
        autosave: bool = True,
        autosave_delay: float = 1.0,
        **kwargs: Any,
    ):
        self.frame_size = int(frame_size)
        self.jpeg_quality = int(jpeg_quality)
        self.autosave = bool(autosave)
        self._autosaver = _Debouncer(autosave_delay, self._autosave)
        self.predictions = Predictions()
        super().__init__(**kwargs)  # rejects unknown keywords
        try:
            self.project = project if isinstance(project, Project) else Project.open(project)
            keys = self.project.video_keys()
            if not keys:
                raise ProjectError(
                    "no videos in this project yet: add some first", self.project.root
                )
            key = self.project.resolve_key(video) if video is not None else keys[0]
            # the name is checked before anything opens: a bad one fails here, in one line
            self.project.annotator_labels_path(key, labeler)
            self._labeler = labeler
            self._quiet = True
            try:
                self.videos = keys
                self._load(key)
                if reference:
                    self._set_reference(reference)
            finally:
                self._quiet = False
        except BaseException:
            self._closed = True
            super().close()  # no half-built widget left in ipywidgets' registry
            raise
        self.on_msg(self._on_msg)

    # ------------------------------------------------------------------ loading
    def _load(self, key: str) -> None:
        """Open ``key``: session (replaying any journal), frame server, predictions."""
        session = LabelSession(self.project, key, labeler=self._labeler)
        for warning in session.warnings:  # the status line is soon overwritten: log it too
            log.warning("%s: %s", session.key, warning)
        rec = session.record
        if rec.video is None:
            raise ProjectError(f"video {key!r} has no video file", rec.folder)
        server = FrameServer(rec.video, self.frame_size, self.jpeg_quality)
        try:
            preds = Predictions.load(self.project, key)
        except DegError as e:  # unreadable outputs must not keep the labels from opening
            preds = Predictions()
            session.notes.append(f"predictions not shown: {e}")
        old = self.server
        self.session, self.server, self.predictions = session, server, preds
        if old is not None:
            old.close()
        k = len(session.behaviors)
        probs = b""
        if preds.probs is not None:
            probs = np.rint(np.clip(preds.probs, 0, 1) * 255).astype(np.uint8).tobytes()
        with self.hold_sync():
            self.video = key
            self.behaviors = list(session.behaviors)
            self.n_frames = session.n_frames
            self.fps = float(rec.fps or server.info.fps)
            self.frame_width = int(rec.width or server.info.width)
            self.frame_height = int(rec.height or server.info.height)
            self.frame = 0
            self.probs = probs
            self.predicted = (
                preds.predicted.astype(np.int8).tobytes() if preds.predicted is not None else b""
            )
            self.thresholds = (
                [float(t) for t in preds.thresholds] if preds.thresholds is not None else []
            )
            self.has_predictions = preds.predicted is not None or preds.probs is not None
            self.labeler = session.labeler
            self.annotators = self.project.annotators(key)
            self.reference_labels = self._reference_bytes(key, self.reference)
            self.lock_conflict = False
            self.saved_at = ""
            self.status = (
                "; ".join(session.notes) or f"{key}: {session.n_frames} frames, {k} behaviours"
            )
            self._sync()
        server.hint(0)

    def _sync(self) -> None:
        """Push the session's state to the synced traits."""
        s = self._session
        with self.hold_sync():
            self.labels = s.array.tobytes()
            self.dirty = s.dirty
            self.can_undo = s.can_undo
            self.can_redo = s.can_redo
            if s.saved_at is not None:
                self.saved_at = s.saved_at.isoformat(timespec="seconds")

    @property
    def _session(self) -> LabelSession:
        if self.session is None:
            raise RuntimeError("this Labeler is closed")
        return self.session

    @property
    def _server(self) -> FrameServer:
        if self.server is None:
            raise RuntimeError("this Labeler is closed")
        return self.server

    @traitlets.validate("frame")
    def _clamp_frame(self, proposal: dict[str, Any]) -> int:
        return int(min(max(int(proposal["value"]), 0), max(self.n_frames - 1, 0)))

    @traitlets.observe("frame", "playing", "speed")
    def _on_playhead(self, change: dict[str, Any]) -> None:
        if self.server is not None:
            self.server.hint(self.frame, self.speed if self.playing else 0.0)

    @traitlets.observe("video")
    def _on_video(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self._switch(change["old"], change["new"])

    @reported
    def _switch(self, old: str, new: str) -> None:
        try:
            key = self.project.resolve_key(new)
        except ProjectError:
            self._set_video_quietly(old)
            raise
        conflict: LabelConflict | None = None
        if self.session is not None:
            self._autosaver.cancel()
            try:
                self._save_session(force=False)
            except LabelConflict as e:
                conflict = e  # the edits stay in the journal; reopening replays them
        self._quiet = True
        try:
            self._load(key)
        except Exception:
            self._set_video_quietly(old)
            raise
        finally:
            self._quiet = False
        if conflict is not None:
            raise LabelConflict(
                f"{old}'s edits are not saved (kept in its journal, restored when you "
                f"open it again): {conflict.problem}",
                conflict.path,
            )

    def _set_video_quietly(self, key: str) -> None:
        self._quiet = True
        try:
            self.video = key
        finally:
            self._quiet = False

    # ------------------------------------------------------------------ messages
    def _on_msg(self, widget: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        self.handle_message(content)

    def handle_message(self, content: dict[str, Any]) -> None:
        """Route one front-end message to its method (see the module docstring).

        The methods report their own errors; a malformed message is reported here.
        (Not itself ``@reported``: that would clear the error a method just set.)
        """
        try:
            self._route(content)
        except Exception as exc:
            self.report(exc)

    def _route(self, content: dict[str, Any]) -> None:
        if not isinstance(content, dict):
            raise ValueError(f"a message must be an object, got {type(content).__name__}")
        kind = content.get("type")
        c = content
        if kind == "frames":
            self.send_frames(_field(c, "req"), _field(c, "indices"))
        elif kind == "set":
            self.set_range(
                _field(c, "behavior"),
                _field(c, "start"),
                _field(c, "stop"),
                _field(c, "value"),
                _field(c, "group", None),
            )
        elif kind == "toggle":
            self.toggle(_field(c, "behavior"), _field(c, "frame"))
        elif kind == "undo":
            self.undo()
        elif kind == "redo":
            self.redo()
        elif kind == "save":
            self.save(force=bool(_field(c, "force", False)))
        elif kind == "reload":
            self.reload()
        elif kind == "finalize":
            self.finalize()
        elif kind == "import_predictions":
            self.import_predictions(overwrite=bool(_field(c, "overwrite", False)))
        elif kind == "reference":
            self.show_reference(_field(c, "labeler", None))
        elif kind == "seek":
            target = _field(c, "target")
            direction = int(_field(c, "direction", 1) or 1)
            if target in ("next_bout", "prev_bout"):
                sign = 1 if target == "next_bout" else -1
                self.seek_bout(sign, _field(c, "behavior", None))
            elif target == "uncertain":
                self.seek_uncertain(direction)
            elif target == "disagree":
                self.seek_disagreement(direction)
            elif target == "annotators":
                self.seek_annotator_disagreement(direction)
            else:
                raise ValueError(f"unknown seek target {target!r}")
        else:
            raise ValueError(f"unknown message type {kind!r}")

    # ------------------------------------------------------------------ frames
    def frame_jpeg(self, index: int) -> bytes:
        """JPEG of frame ``index``, resized to fit ``frame_size``."""
        return self._server.jpeg(index)

    @reported
    def send_frames(self, req: int, indices: list[int]) -> None:
        """Answer a ``frames`` request: one message per ready part, buffers in order."""
        for part in self._server.serve(indices):
            self.send(
                {"type": "frames", "req": req, "indices": list(part)}, buffers=list(part.values())
            )

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
        try:
            written = self._session.save(force=force)
        except LabelConflict:
            self.lock_conflict = True
            raise
        self.lock_conflict = False
        if written:  # a first save creates this annotator's set
            self.annotators = self.project.annotators(self._session.key)
        self._sync()
        return written

    @reported
    def save(self, force: bool = False) -> None:
        """Write the label CSV now (refused if it changed on disk, unless ``force``)."""
        self._autosaver.cancel()
        written = self._save_session(force)
        self.status = f"saved {self.saved_at[11:]}" if written else "no changes to save"

    def _autosave(self) -> None:
        if not self._closed and self.session is not None and self.session.dirty:
            self.save()

    @reported
    def reload(self) -> None:
        """Re-read the CSV (others' saved changes) and re-apply our unsaved edits on top."""
        self._autosaver.cancel()
        self._session.reload()
        self.lock_conflict = False
        ours = self._session.dirty
        self._edited("reloaded" + (": your unsaved edits re-applied on top" if ours else ""))

    # ------------------------------------------------------------------ annotators
    def _reference_bytes(self, key: str, name: str) -> bytes:
        """(T, K) int8 bytes of ``name``'s labels of ``key``; b"" for none or no labels."""
        if not name or name not in self.project.annotators(key):
            return b""
        return self.project.annotator_labels(key, name).array.tobytes()

    def _set_reference(self, name: str | None) -> None:
        s = self._session
        name = name or ""
        if name:
            self.project.annotator_labels_path(s.key, name)  # checks the name
            if name == s.labeler:
                raise ProjectError(f"{name!r} is the labeler here: pick another annotator")
        with self.hold_sync():
            self.annotators = self.project.annotators(s.key)
            self.reference = name
            self.reference_labels = self._reference_bytes(s.key, name)
        if name and not self.reference_labels:
            self.status = f"{name} has no labels for {s.key} yet"
        else:
            self.status = f"reference: {name}" if name else "no reference annotator"

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
        """Go to the start of the next stretch where labels and predictions differ."""
        pred = self.predictions.predicted
        if pred is None:
            self.status = "no predictions for this video"
            return
        f = next_disagreement(self._session.array, pred, self.frame, direction)
        word = "next" if direction >= 0 else "previous"
        self._go(f, "labels and predictions differ from frame {frame}", f"no {word} disagreement")

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

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Save (if there are edits), stop the frame server, close the widget."""
        if self._closed:
            return
        self._closed = True
        self._autosaver.cancel()
        try:
            if self.session is not None and self.session.dirty:
                self._save_session(force=False)
        except LabelConflict as e:
            log.error("Labeler closed with unsaved edits (kept in the journal): %s", e)
            self.report(e)
        finally:
            if self.server is not None:
                self.server.close()
            self.server = None
            super().close()

    def __repr__(self) -> str:
        root = getattr(self, "project", None)
        return f"Labeler({str(root.root) if root else None!r}, video={self.video!r})"

    @property
    def saved(self) -> dt.datetime | None:
        """When this video's labels were last saved by this Labeler."""
        return self.session.saved_at if self.session is not None else None
