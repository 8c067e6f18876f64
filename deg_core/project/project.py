"""The project store: ``<name>_deepethogram/`` on disk, compatible with DeepEthogram.

Layout::

    <name>_deepethogram/
      project_config.yaml          project values + overrides only (see config.py)
      DATA/split.yaml              train/val/test video keys
      DATA/<key>/<key>.<ext>       copied in; key = file stem
      DATA/<key>/record.yaml       frames, fps, size, codec, stats, checksum
      DATA/<key>/<key>_labels.csv  DEG label format: the set that trains
      DATA/<key>/<key>_labels.<labeler>.csv  other annotators' sets (labels/annotators.py)
      models/<run>/config.yaml     a trained model and the behaviours it knows

Every change validates all its input first and only then writes, each file
atomically, so bad input changes nothing on disk and a crash leaves either the old
or the new version of each file. Changes that touch several files (the behaviour
list and every label file; a video folder and split.yaml) go through
:mod:`deg_core.project.transaction`, so a kill at any point leaves the project as it was or
as it was meant to be. Every change holds the project lock (:mod:`deg_core.project.locking`)
and re-reads what it changes under it, so two processes never overwrite each
other's work. Opening a project writes only to finish a change a killed process left.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from deg_core import config as cfgmod
from deg_core.config import DegConfig
from deg_core.errors import DegError, ProjectError
from deg_core.fileio import dump_yaml, load_yaml, save_yaml
from deg_core.labels.annotators import (
    PRIMARY,
    annotator_of,
    annotator_path,
    list_annotator_files,
)
from deg_core.labels.labels import Labels, import_labels, labels_text, read_labels, write_labels
from deg_core.project.locking import project_lock
from deg_core.project.records import VideoRecord, safe_key, strip_background
from deg_core.project.runs import check_run, list_runs
from deg_core.project.splits import SplitTable, check_fractions, check_split_name
from deg_core.project.transaction import PARTIAL, Change, pending

CONFIG_FILE = "project_config.yaml"
SUFFIX = "_deepethogram"
RESERVED = frozenset({"background", "none", "other", "misc"})
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
RENAMES_FILE = ".deg_renames.yaml"  # old -> new behaviour names, for crash journals


def check_behavior_name(name: str, existing: Sequence[str] = ()) -> str:
    """Return ``name`` if it can be a behaviour, else raise ProjectError saying why."""
    if not isinstance(name, str) or not name.strip():
        raise ProjectError("behaviour names must not be empty")
    if name.lower() in RESERVED:
        raise ProjectError(
            f"{name!r} cannot be a behaviour: background is implicit (frames with no behaviour)"
        )
    if not _NAME_RE.match(name):
        raise ProjectError(
            f"behaviour name {name!r} is unsafe in file names and CSV headers: "
            "use a letter, then letters, digits, _ or - (at most 64)"
        )
    if name.lower() in (e.lower() for e in existing):
        raise ProjectError(f"duplicate behaviour name {name!r}")
    return name


def check_behavior_names(names: list[str]) -> list[str]:
    out: list[str] = []
    if not names:
        raise ProjectError("a project needs at least one behaviour")
    for n in names:
        out.append(check_behavior_name(n, out))
    return out


class Project:
    """A deg (or DeepEthogram) project folder.

    Use :meth:`create` or :meth:`open`; the constructor only wires attributes.
    """

    def __init__(self, root: Path, config: DegConfig, raw: dict, ignored: list[str]):
        self.root = Path(root).absolute()  # run paths stay valid if the cwd changes
        self.config = config
        self._raw = raw  # the file as read, to write back only the project's own values
        self.ignored_keys = ignored  # DEG settings deg does not use (shown by status)

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(
        cls,
        parent: str | Path,
        name: str,
        behaviors: list[str],
        labeler: str | None = None,
    ) -> Project:
        """Make ``<parent>/<name>_deepethogram/`` with config, DATA/ and models/."""
        parent = Path(parent).expanduser()
        if not _NAME_RE.match(name or ""):
            raise ProjectError(
                f"project name {name!r} is unsafe as a folder name: "
                "use a letter, then letters, digits, _ or -"
            )
        behaviors = check_behavior_names(list(behaviors))
        if not parent.is_dir():
            raise ProjectError("parent folder does not exist", parent)
        root = parent / f"{name}{SUFFIX}"
        if root.exists():
            raise ProjectError("already exists; open it instead of creating it", root)
        raw = {
            "project": {"name": name, "labeler": labeler, "class_names": ["background", *behaviors]}
        }
        config = cfgmod.build(DegConfig, raw)
        # build in a temporary sibling and rename, so a failure leaves no half project
        tmp = parent / f".{root.name}.{os.getpid()}{PARTIAL}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "DATA").mkdir(parents=True)
        (tmp / "models").mkdir()
        save_yaml(tmp / CONFIG_FILE, raw)
        try:
            tmp.rename(root)
        except OSError:  # another process created it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
            raise ProjectError("already exists; open it instead of creating it", root) from None
        return cls(root, config, raw, [])

    @classmethod
    def open(cls, path: str | Path) -> Project:
        """Open a project folder (or its project_config.yaml).

        Writes only to finish (or undo) a change that a killed process left unfinished.
        """
        path = Path(path).expanduser()
        root = path.parent if path.name == CONFIG_FILE else path
        cfg_path = root / CONFIG_FILE
        if not root.exists():
            raise ProjectError("project folder not found", root)
        if pending(root):
            with project_lock(root):  # taking the lock recovers
                pass
        if not cfg_path.is_file():
            raise ProjectError(f"not a deg project: no {CONFIG_FILE}", root)
        raw, config, ignored = cls._read_config(cfg_path)
        return cls(root, config, raw, ignored)

    @staticmethod
    def _read_config(cfg_path: Path) -> tuple[dict, DegConfig, list[str]]:
        try:
            raw = load_yaml(cfg_path, what="project config")
        except DegError as e:
            raise cfgmod.ConfigError(e.problem, cfg_path) from None
        if not isinstance(raw, dict):
            raise cfgmod.ConfigError("project config must be a mapping of sections", cfg_path)
        # DEG writes absolute paths into the project section; deg never does.
        from_deg = isinstance(raw.get("project"), dict) and "config_file" in raw["project"]
        ignored: list[str] = []
        try:
            config = cfgmod.build(DegConfig, raw, unknown=ignored if from_deg else None)
        except cfgmod.ConfigError as e:
            raise cfgmod.ConfigError(e.problem, cfg_path) from None
        names = strip_background(config.project.class_names)
        if not names:
            raise cfgmod.ConfigError(
                "project.class_names is missing or lists no behaviour "
                "(e.g. class_names: [background, walk, groom])",
                cfg_path,
            )
        seen: set[str] = set()
        for i, n in enumerate(names):  # DEG wrote what users typed; fail clearly on bad names
            if not isinstance(n, str) or not n or n.lower() in RESERVED or "," in n:
                raise cfgmod.ConfigError(
                    f"project.class_names[{i}] {n!r} is not a behaviour", cfg_path
                )
            if n.lower() in seen:
                raise cfgmod.ConfigError(f"project.class_names lists {n!r} twice", cfg_path)
            seen.add(n.lower())
        return raw, config, ignored

    # ------------------------------------------------------------------ basics
    @property
    def name(self) -> str:
        return self.config.project.name or self.root.name.removesuffix(SUFFIX)

    @property
    def behaviors(self) -> list[str]:
        """Behaviour names without background."""
        return strip_background(self.config.project.class_names)

    @property
    def class_names(self) -> list[str]:
        return ["background", *self.behaviors]

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def data_dir(self) -> Path:
        return self.root / "DATA"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def split_path(self) -> Path:
        return self.data_dir / "split.yaml"

    def __repr__(self) -> str:
        n = len(self.video_keys())
        return f"Project({str(self.root)!r}, behaviors={self.behaviors}, videos={n})"

    def resolve_config(
        self, overrides: list[str] | None = None, preset: str | None = None
    ) -> DegConfig:
        """This project's config with a preset and ``section.key=value`` overrides applied."""
        return cfgmod.resolve(self._raw, overrides, preset)

    def lock(self, timeout: float | None = None):
        """The project lock (context manager); hold it to change shared files."""
        return project_lock(self.root, timeout)

    def reload(self) -> None:
        """Re-read project_config.yaml (another process may have changed it)."""
        self._raw, self.config, self.ignored_keys = self._read_config(self.config_path)

    def _config_change(self, **project_values) -> tuple[dict, str]:
        """The raw config with ``project_values`` set, validated, and its YAML text."""
        raw = cfgmod.merge_dicts(self._raw, {"project": project_values})
        cfgmod.build(DegConfig, raw, unknown=[] if self.ignored_keys else None)
        return raw, dump_yaml(raw)

    def _save_config(self, **project_values) -> None:
        with self.lock():
            self.reload()
            raw, _ = self._config_change(**project_values)
            save_yaml(self.config_path, raw)
            self.reload()

    # ------------------------------------------------------------------ videos
    def video_keys(self) -> list[str]:
        """Video keys: folders under DATA/ (hidden and partial folders excluded)."""
        if not self.data_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def record(self, key: str) -> VideoRecord:
        folder = self.data_dir / key
        if not folder.is_dir():
            raise ProjectError(f"no video {key!r} in this project", self.root)
        return VideoRecord.from_folder(folder)

    def records(self) -> dict[str, VideoRecord]:
        return {k: self.record(k) for k in self.video_keys()}

    def resolve_key(self, video: str | Path) -> str:
        """Accept a key, a file name, or a path to the source or the copy of a video."""
        text = str(video)
        keys = self.video_keys()
        for candidate in (text, Path(text).name, Path(text).stem, safe_key(Path(text).stem)):
            if candidate in keys:
                return candidate
        raise ProjectError(
            f"no video {text!r} in this project (videos: {', '.join(keys) or 'none'})"
        )

    def splits(self) -> SplitTable:
        return SplitTable.load(self.split_path, self.config.split.train_val_test)

    def add_video(self, path: str | Path, split: str | None = None) -> str:
        return self.add_videos([path], split=split)[0]

    def add_videos(
        self,
        paths: list[str | Path],
        split: str | None = None,
        stats_frames: int = 500,
        skip_existing: bool = False,
    ) -> list[str]:
        """Copy videos into DATA/<key>/, measure them and assign splits.

        Every file is checked (readable video, not already in the project) before
        anything is copied. Each video is copied and measured in a hidden folder of
        this process, then lands with its split.yaml entry as one all-or-nothing change
        under the project lock: a video is never half-present, another process adding
        videos at the same time loses nothing, and an interrupted batch keeps what
        landed; rerun it with ``skip_existing=True`` to add the rest.

        Returns:
            the new video keys, in the order given.
        """
        from deg_core.video import VideoInfo, channel_stats, file_checksum, probe_video

        if split is not None:
            check_split_name(split)
        check_fractions(self.config.split.train_val_test)
        existing = self.records()
        known_sums = {r.checksum: k for k, r in existing.items() if r.checksum}
        plans: list[tuple[Path, str, str, VideoInfo]] = []
        for p in (Path(x).expanduser() for x in paths):
            if not p.exists():
                raise ProjectError("video not found", p)
            if p.is_dir():
                raise ProjectError("is a folder, not a video file", p)
            key = safe_key(p.stem)
            checksum = file_checksum(p)
            twin = known_sums.get(checksum)
            if twin in existing and skip_existing:
                continue
            if twin is not None and twin not in existing:
                raise ProjectError(f"the same video is listed twice (as {twin!r})", p)
            if twin is not None:
                raise ProjectError(
                    f"the same video is already in the project as {twin!r} "
                    "(--skip-existing skips such videos)",
                    p,
                )
            if key in existing or key in (plan[1] for plan in plans):
                raise ProjectError(f"a video named {key!r} is already in the project", p)
            info = probe_video(p)  # raises VideoError: not a video, truncated, zero frames ...
            known_sums[checksum] = key
            plans.append((p, key, checksum, info))

        table = self.splits()
        table.assign_new(list(existing), self._rng())  # heal videos added by hand or interrupted
        table.assign_new([plan[1] for plan in plans], self._rng(), split=split)
        # copy and measure outside the lock (minutes for a long video), into a folder whose
        # name no other process uses; then land it with its split under the lock
        added: list[str] = []
        for src, key, checksum, info in plans:
            tmp = self.data_dir / f".{key}.{os.getpid()}{PARTIAL}"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                tmp.mkdir(parents=True)
                dst = tmp / f"{key}{src.suffix.lower()}"
                shutil.copyfile(src, dst)
                # same bytes as the probed source, so its measurements hold for the copy
                if file_checksum(dst) != checksum:
                    raise ProjectError("copy does not match the source (disk full?)", src)
                VideoRecord(
                    key=key,
                    folder=tmp,
                    video_name=dst.name,
                    frames=info.frames,
                    fps=info.fps,
                    width=info.width,
                    height=info.height,
                    codec=info.codec,
                    stats=channel_stats(dst, max_frames=stats_frames),
                    checksum=checksum,
                    source=str(src.resolve()),
                    added=dt.datetime.now().isoformat(timespec="seconds"),
                ).save()
                if self._land_video(src, key, checksum, tmp, table.assignment[key], skip_existing):
                    added.append(key)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return added

    def _land_video(
        self, src: Path, key: str, checksum: str, tmp: Path, split: str, skip_existing: bool
    ) -> bool:
        """Move a copied video folder into DATA/ and record its split, all or nothing;
        False if another process added the same video meanwhile and ``skip_existing``."""
        with self.lock():
            # another process may have added videos since the checks above
            now = self.records()
            twin = next((k for k, r in now.items() if r.checksum == checksum), None)
            if twin is not None and not skip_existing:
                raise ProjectError(f"the same video was just added as {twin!r}", src)
            if twin is None and key in now:
                raise ProjectError(f"a video named {key!r} was just added to the project", src)
            table = self.splits()
            table.assign_new(list(now), self._rng())  # heal videos added by hand
            change = Change(self.root)
            if twin is None:
                table.assignment[key] = split
                change.move(tmp, self.data_dir / key)
            change.write_text(self.split_path, table.text())
            change.commit()
        return twin is None

    def _rng(self) -> random.Random:
        return random.Random(self.config.split.seed)

    def set_split(self, video: str | Path, split: str) -> list[str]:
        """Move a video to a split; returns warnings (e.g. no val video left)."""
        check_split_name(split)
        key = self.resolve_key(video)
        with self.lock():
            table = self.splits()
            table.set(key, split)
            table.save(self.split_path)
        return table.warnings()

    def remove_video(self, video: str | Path) -> Path:
        """Remove a video from the project; its folder (labels too) moves to ``.trash/``."""
        key = self.resolve_key(video)
        with self.lock():
            if not (self.data_dir / key).is_dir():
                raise ProjectError(f"no video {key!r} in this project", self.root)
            dst = self.root / ".trash" / f"{dt.datetime.now():%y%m%d_%H%M%S}_{key}"
            n = 1
            while dst.exists():
                n += 1
                dst = dst.with_name(f"{dst.name.rsplit('~', 1)[0]}~{n}")
            table = self.splits()
            table.remove(key)
            change = Change(self.root)
            change.move(self.data_dir / key, dst)
            change.write_text(self.split_path, table.text())
            change.commit()
        return dst

    # ------------------------------------------------------------------ labels
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

    # ------------------------------------------------------------------ behaviours
    def _label_files(self) -> list[tuple[Path, Labels]]:
        """Every label set (training files and other annotators'), read and checked."""
        out: list[tuple[Path, Labels]] = []
        for key in self.video_keys():
            rec = self.record(key)
            paths = [rec.labels_path, *list_annotator_files(rec.labels_path).values()]
            out.extend((p, read_labels(p, self.behaviors)) for p in paths if p.exists())
        return out

    def _change_behaviors(
        self,
        new_behaviors: list[str],
        change: Callable[[Labels], Labels],
        trash: dict[str, Path] | None = None,
        renamed: tuple[str, str] | None = None,
    ) -> None:
        """Rewrite the config and every label file as one all-or-nothing change.

        ``change`` maps old Labels to new; ``trash`` (name -> folder) keeps removed
        columns; renames are recorded for the Labeler's crash journals.
        """
        files = self._label_files()  # every file read and checked before anything is staged
        _, config_text = self._config_change(class_names=["background", *new_behaviors])
        txn = Change(self.root)
        try:
            for name, folder in (trash or {}).items():
                for path, labels in files:
                    col = labels.array[:, labels.behaviors.index(name)]
                    text = name + "\n" + "".join(f"{int(v)}\n" for v in col)
                    who = annotator_of(path.name)  # one trash file per video and annotator
                    stem = path.parent.name + (f".{who}" if who else "")
                    txn.write_text(folder / f"{stem}.csv", text)
            for path, labels in files:
                txn.write_text(path, labels_text(change(labels)))
            if renamed is not None:
                renames = [*self._renames(), {"old": renamed[0], "new": renamed[1]}]
                txn.write_text(self.root / RENAMES_FILE, dump_yaml(renames))
            txn.write_text(self.config_path, config_text)
        except BaseException:
            txn.abandon()
            raise
        txn.commit()
        self.reload()

    def _renames(self) -> list[dict]:
        path = self.root / RENAMES_FILE
        data = load_yaml(path, what="rename record") if path.is_file() else []
        return [d for d in data or [] if isinstance(d, dict) and "old" in d and "new" in d]

    def current_behavior(self, name: str) -> str | None:
        """The behaviour ``name`` is called now (following renames), or None if removed."""
        for item in self._renames():
            if item["old"] == name:
                name = item["new"]
        return name if name in self.behaviors else None

    def add_behaviors(self, names: Sequence[str]) -> None:
        """Add behaviours; -1 (unlabeled) on every frame of existing label files.

        All names are checked before anything is written.
        """
        with self.lock():
            self.reload()
            new = list(self.behaviors)
            for name in names:
                new.append(check_behavior_name(name, new))

            def change(lab: Labels) -> Labels:
                for name in names:
                    lab = lab.add_behavior(name)
                return lab

            self._change_behaviors(new, change)

    def add_behavior(self, name: str) -> None:
        """Add a behaviour; it is -1 (unlabeled) on every frame of existing label files."""
        self.add_behaviors([name])

    def remove_behaviors(self, names: Sequence[str]) -> None:
        """Remove behaviours; their label columns are kept in ``.trash/`` first."""
        with self.lock():
            self.reload()
            for name in names:
                if name not in self.behaviors:
                    raise ProjectError(
                        f"no behaviour {name!r} (behaviours: {', '.join(self.behaviors)})"
                    )
            if len(set(names)) >= len(self.behaviors):
                raise ProjectError("cannot remove the last behaviour")
            stamp = f"{dt.datetime.now():%y%m%d_%H%M%S}"
            trash = {n: self.root / ".trash" / f"{stamp}_behavior_{n}" for n in set(names)}

            def change(lab: Labels) -> Labels:
                for name in dict.fromkeys(names):
                    lab = lab.remove_behavior(name)
                return lab

            self._change_behaviors([b for b in self.behaviors if b not in names], change, trash)

    def remove_behavior(self, name: str) -> None:
        """Remove a behaviour; its label columns are kept in ``.trash/`` first."""
        self.remove_behaviors([name])

    def rename_behavior(self, old: str, new: str) -> None:
        with self.lock():
            self.reload()
            if old not in self.behaviors:
                raise ProjectError(
                    f"no behaviour {old!r} (behaviours: {', '.join(self.behaviors)})"
                )
            check_behavior_name(new, [b for b in self.behaviors if b != old])
            self._change_behaviors(
                [new if b == old else b for b in self.behaviors],
                lambda lab: lab.rename_behavior(old, new),
                renamed=(old, new),
            )

    # ------------------------------------------------------------------ models
    def model_runs(self) -> list[dict]:
        """Runs under models/ with ``stale`` set where the behaviour list differs."""
        return list_runs(self.models_dir, self.behaviors)

    def check_run(self, run: str | Path) -> Path:
        """The run's folder; ProjectError if it was trained for other behaviours."""
        d = Path(run) if Path(run).is_absolute() else self.models_dir / str(run)
        if not d.is_dir() and Path(run).is_dir():  # a path relative to the cwd
            d = Path(run).absolute()
        return check_run(d, self.behaviors)

    # ------------------------------------------------------------------ statistics
    def normalization(self, keys: list[str] | None = None) -> dict:
        """Pooled per-channel mean/std (0..1) over videos' recorded stats, weighted by frames."""
        recs = [self.record(k) for k in (keys or self.video_keys())]
        stats = [r.stats for r in recs if r.stats]
        if not stats:
            return {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "n_frames": 0}
        n = np.array([max(int(s.get("n_frames") or 1), 1) for s in stats], dtype=float)[:, None]
        mean = np.array([s["mean"] for s in stats], dtype=float)
        var = np.array([s["std"] for s in stats], dtype=float) ** 2
        m = (n * mean).sum(0) / n.sum()
        v = (n * (var + (mean - m) ** 2)).sum(0) / n.sum()
        return {"mean": m.tolist(), "std": np.sqrt(v).tolist(), "n_frames": int(n.sum())}


def split_keys(project: Project) -> dict[str, list[str]]:
    """The project's video keys by split: {"train": [...], "val": [...], "test": [...]}."""
    table = project.splits()
    keys = project.video_keys()
    return {s: [k for k in keys if table.assignment.get(k) == s] for s in ("train", "val", "test")}
