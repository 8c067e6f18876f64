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
``reference`` another annotator shown read-only (None: none); ``animal`` the animal to
label first in a video of several (None: animal 0).

Synced traits:

- ``videos`` List[str] every key; ``video`` Unicode the current key (the front end may set
  it to switch: Python saves the old video first, then loads the new one).
- ``behaviors`` List[str]; ``n_frames`` Int; ``fps`` Float; ``frame_width``,
  ``frame_height`` Int (source size).
- ``exclusive`` Bool the project keeps one behaviour (or background) per frame
  (``project.exclusive``): marking a behaviour present marks the others absent on those
  frames, in Python (which enforces it, and never saves two on a frame) and at once in
  the front end's optimistic copy.
- ``frame`` Int the playhead (0-based), set by both sides, clamped to [0, n_frames - 1].
- ``labels`` Bytes: (n_frames, K) int8, C order; 1 present, 0 absent, -1 unlabelled.
- ``has_predictions`` Bool; ``probs`` Bytes: (n_frames, K) uint8 = round(P * 255) of the
  latest sequence run (b"" when none); ``predicted`` Bytes: (n_frames, K) int8
  thresholded + cleaned predictions (the predictions CSV, else P >= thresholds; b"" when
  none); ``thresholds`` List[float].
- ``labeler`` Unicode whose labels these are; ``annotators`` List[str] who has labels for
  this video; ``reference`` Unicode the annotator shown read-only ("" none);
  ``reference_labels`` Bytes: (n_frames, K) int8 their labels (b"" when none).
- ``n_animals`` Int animals in the video (1: a one-animal video, DeepEthogram's layout,
  and nothing below shows). ``animal`` Int the animal being labelled (the front end may set
  it): ``labels``, ``probs``, ``predicted``, ``thresholds``, ``annotators``,
  ``reference_labels``, ``can_undo``/``can_redo`` and every edit are that animal's.
  ``animal_names`` List[str]; ``animal_labels`` Bytes: (N, n_frames, K) int8 every
  animal's labels as of the last load, animal switch or reload (b"" for one animal);
  ``tracks`` Bytes: (n_frames, N, 4) float32 x, y (centre), w, h (box) in source pixels,
  NaN where unknown (b"" without tracks); ``swap_frames`` List[int] frames where
  identities may have swapped; ``follow`` Bool the frame view follows the selected animal.
  The front end outlines every animal's box, draws one block of label rows per animal
  (the selected animal's probability, prediction and reference rows after the blocks) and
  binds ``[``/``]`` (animal), ``c`` (follow), ``s``/``S`` (swap candidates) and ``w``
  (swap the selected animal's identity with the nearest other's from the playhead on).
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
  when nothing is found ``status`` says so and ``frame`` stays. On a video of several
  animals "disagree" walks every animal's disagreements (selecting the animal), and target
  "swap" (:meth:`seek_swap`) the frames where identities may have swapped.
- ``{type: "swap_identities", a, b, frame}`` -> :meth:`swap_identities`.
- ``{type: "reference", labeler: str | null}`` -> :meth:`show_reference`.
- ``{type: "reload"}`` -> :meth:`reload` (beyond the contract: for a conflict banner).

Saving: every edit goes to the journal at once (one journal per animal); autosave writes
every animal's edited CSV about
``autosave_delay`` seconds after the last edit, on a video switch and on :meth:`close`.
A save is refused when the CSV changed on disk since it was loaded (``lock_conflict``,
``error`` explains): :meth:`reload` or ``save(force=True)``.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import traitlets

from deg_core.errors import DegError, ProjectError
from deg_core.project.project import Project
from deg_core.report.charts import PALETTE
from deg_widgets.base import DegWidget, reported
from deg_widgets.debounce import Debouncer
from deg_widgets.frames import FrameServer
from deg_widgets.label_animals import LabelAnimals, animal_ids
from deg_widgets.label_editing import LabelEditing
from deg_widgets.label_messages import route_message
from deg_widgets.label_navigation import LabelNavigation
from deg_widgets.label_review import Predictions
from deg_widgets.label_session import ExclusiveClash, LabelConflict, LabelSession

__all__ = ["Labeler"]
log = logging.getLogger(__name__)


class Labeler(LabelEditing, LabelNavigation, LabelAnimals, DegWidget):
    """Label one video at a time; see the module docstring for the full contract.

    The edits and saves come from :class:`~deg_widgets.label_editing.LabelEditing`, the
    reference row and the seeks from :class:`~deg_widgets.label_navigation.LabelNavigation`,
    the animals of a several-animal video from
    :class:`~deg_widgets.label_animals.LabelAnimals`; every synced trait is declared here,
    on the widget class anywidget syncs.

    Args:
        project: a Project or the path of one.
        video: a video key (or file name); None: the first video.
        labeler: who is labelling: saves go to that annotator's set (None: the project's
            labeler, whose label file trains).
        reference: another annotator whose labels are shown read-only (None: none).
        animal: in a video of several animals, the one to label first (None: animal 0).
        frame_size: served frames fit in a square of this many pixels.
        jpeg_quality: 1..100.
        autosave: write the CSV ``autosave_delay`` s after the last edit.
        autosave_delay: seconds.
    """

    _module = "labeler"

    videos = traitlets.List(traitlets.Unicode()).tag(sync=True)
    video = traitlets.Unicode("").tag(sync=True)
    behaviors = traitlets.List(traitlets.Unicode()).tag(sync=True)
    exclusive = traitlets.Bool(False).tag(sync=True)
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
    n_animals = traitlets.Int(1).tag(sync=True)
    animal = traitlets.Int(0).tag(sync=True)
    animal_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    animal_labels = traitlets.Bytes(b"").tag(sync=True)
    tracks = traitlets.Bytes(b"").tag(sync=True)
    swap_frames = traitlets.List(traitlets.Int()).tag(sync=True)
    follow = traitlets.Bool(False).tag(sync=True)

    # set in __init__; class defaults keep close() safe if __init__ fails part way
    session: LabelSession | None = None  # the selected animal's
    sessions: dict[int, LabelSession] = {}  # noqa: RUF012 (replaced per video, never mutated)
    all_predictions: dict[int, Predictions] = {}  # noqa: RUF012
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
        animal: int | None = None,
        frame_size: int = 512,
        jpeg_quality: int = 85,
        autosave: bool = True,
        autosave_delay: float = 1.0,
        **kwargs: Any,
    ):
        self.frame_size = int(frame_size)
        self.jpeg_quality = int(jpeg_quality)
        self.autosave = bool(autosave)
        self._autosaver = Debouncer(autosave_delay, self._autosave)
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
            # the name and animal are checked before anything opens: a bad one fails here
            self.project.annotator_labels_path(key, labeler, animal_ids(self.project, key)[0])
            if animal is not None:
                self.project.check_animal(key, animal)
            self._labeler = labeler
            self._quiet = True
            try:
                self.videos = keys
                self._load(key)
                if animal is not None:
                    self._select(animal)
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
        """Open ``key``: a session per animal (replaying any journal), frame server,
        predictions, tracks."""
        ids = animal_ids(self.project, key)
        sessions = [LabelSession(self.project, key, labeler=self._labeler, animal=a) for a in ids]
        notes: list[str] = []
        for s in sessions:
            for warning in s.warnings:  # the status line is soon overwritten: log it too
                log.warning("%s: %s", s.key, warning)
            notes += [n if s.animal is None else f"animal{s.animal}: {n}" for n in s.notes]
        session = sessions[0]
        rec = session.record
        if rec.video is None:
            raise ProjectError(f"video {key!r} has no video file", rec.folder)
        server = FrameServer(rec.video, self.frame_size, self.jpeg_quality)
        preds = {}
        for a in ids:
            try:
                preds[a or 0] = Predictions.load(self.project, key, a)
            except DegError as e:  # unreadable outputs must not keep the labels from opening
                preds[a or 0] = Predictions()
                notes.append(f"predictions not shown: {e}")
        old = self.server
        self.server = server
        self.sessions = {s.animal or 0: s for s in sessions}
        self.all_predictions = preds
        self.session, self.predictions = session, preds[0]
        if old is not None:
            old.close()
        tracks, note = self._load_tracks(key, len(ids), session.n_frames)
        k = len(session.behaviors)
        with self.hold_sync():
            self.video = key
            self.behaviors = list(session.behaviors)
            self.exclusive = session.exclusive
            self.n_frames = session.n_frames
            self.fps = float(rec.fps or server.info.fps)
            self.frame_width = int(rec.width or server.info.width)
            self.frame_height = int(rec.height or server.info.height)
            self.frame = 0
            self.labeler = session.labeler
            self.n_animals = len(ids)
            self.animal = 0
            self._set_tracks(tracks, len(ids))
            self.follow = tracks is not None
            self.animal_labels = self._all_labels_bytes()
            self.lock_conflict = False
            self.saved_at = ""
            self._show_animal()
            several = f", {len(ids)} animals" if len(ids) > 1 else ""
            self.status = "; ".join(notes + ([note] if note else [])) or (
                f"{key}: {session.n_frames} frames, {k} behaviours{several}"
            )
        server.hint(0)

    def _show_animal(self) -> None:
        """The selected animal's traits: labels, predictions, annotators, reference row."""
        preds = self.predictions
        probs = b""
        if preds.probs is not None:
            probs = np.rint(np.clip(preds.probs, 0, 1) * 255).astype(np.uint8).tobytes()
        with self.hold_sync():
            self.probs = probs
            self.predicted = (
                preds.predicted.astype(np.int8).tobytes() if preds.predicted is not None else b""
            )
            self.thresholds = (
                [float(t) for t in preds.thresholds] if preds.thresholds is not None else []
            )
            self.has_predictions = preds.predicted is not None or preds.probs is not None
            self._refresh_reference()
            self._sync()

    def _sync(self) -> None:
        """Push the selected session's state to the synced traits (``dirty``: any
        animal's edits are unsaved)."""
        s = self._session
        with self.hold_sync():
            self.labels = s.array.tobytes()
            self.dirty = any(x.dirty for x in self.sessions.values()) or s.dirty
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

    @traitlets.observe("animal")
    def _on_animal(self, change: dict[str, Any]) -> None:
        if not self._quiet and change["new"] != change["old"]:
            self._pick_animal(change["old"], change["new"])

    @reported
    def _pick_animal(self, old: int, new: int) -> None:
        """The front end picked animal ``new``: select it, or go back to ``old``."""
        try:
            self._select(new)
        except Exception:
            self._quiet = True
            try:
                self.animal = old
            finally:
                self._quiet = False
            raise

    @reported
    def _switch(self, old: str, new: str) -> None:
        try:
            key = self.project.resolve_key(new)
        except ProjectError:
            self._set_video_quietly(old)
            raise
        conflict: LabelConflict | ExclusiveClash | None = None
        if self.session is not None:
            self._autosaver.cancel()
            try:
                self._save_session(force=False)
            except (LabelConflict, ExclusiveClash) as e:
                conflict = e  # the edits stay in the journal; reopening replays them
        self._quiet = True
        try:
            self._load(key)
        except Exception:
            self._set_video_quietly(old)
            raise
        finally:
            self._quiet = False
        if conflict is not None:  # same class: the banner names what kept them unsaved
            raise type(conflict)(
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
            route_message(self, content)
        except Exception as exc:
            self.report(exc)

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

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """Save (if there are edits), stop the frame server, close the widget."""
        if self._closed:
            return
        self._closed = True
        self._autosaver.cancel()
        try:
            if any(s.dirty for s in self.sessions.values()):
                self._save_session(force=False)
        except (LabelConflict, ExclusiveClash) as e:
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
