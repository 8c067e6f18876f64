"""The project store: ``<name>_deepethogram/`` on disk, compatible with DeepEthogram.

Layout::

    <name>_deepethogram/
      project_config.yaml          project values + overrides only (see config.py)
      DATA/split.yaml              train/val/test video keys
      DATA/<key>/<key>.<ext>       copied in; key = file stem
      DATA/<key>/record.yaml       frames, fps, size, codec, stats, checksum
      DATA/<key>/<key>_labels.csv  DEG label format
      models/<run>/config.yaml     a trained model and the behaviours it knows

Every change validates all its input first and only then writes, each file
atomically, so bad input changes nothing on disk and a crash leaves either the old
or the new version of each file. Opening a project never writes.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deg_core import config as cfgmod
from deg_core.config import DegConfig
from deg_core.errors import DegError, ProjectError
from deg_core.fileio import load_yaml, save_yaml
from deg_core.labels import Labels, import_labels, read_labels, write_labels
from deg_core.records import VideoRecord, safe_key, strip_background
from deg_core.runs import check_run, list_runs
from deg_core.splits import SplitTable, check_fractions, check_split_name

CONFIG_FILE = "project_config.yaml"
SUFFIX = "_deepethogram"
RESERVED = frozenset({"background", "none", "other", "misc"})
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_PARTIAL = ".partial"


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
        tmp = parent / f".{root.name}{_PARTIAL}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "DATA").mkdir(parents=True)
        (tmp / "models").mkdir()
        save_yaml(tmp / CONFIG_FILE, raw)
        tmp.rename(root)
        return cls(root, config, raw, [])

    @classmethod
    def open(cls, path: str | Path) -> Project:
        """Open a project folder (or its project_config.yaml). Never writes."""
        path = Path(path).expanduser()
        root = path.parent if path.name == CONFIG_FILE else path
        cfg_path = root / CONFIG_FILE
        if not root.exists():
            raise ProjectError("project folder not found", root)
        if not cfg_path.is_file():
            raise ProjectError(f"not a deg project: no {CONFIG_FILE}", root)
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
        for i, n in enumerate(
            strip_background(config.project.class_names)
        ):  # DEG wrote what users typed; fail clearly on bad names
            if not isinstance(n, str) or not n or n.lower() in RESERVED or "," in n:
                raise cfgmod.ConfigError(
                    f"project.class_names[{i}] {n!r} is not a behaviour", cfg_path
                )
        return cls(root, config, raw, ignored)

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

    def _save_config(self, **project_values) -> None:
        raw = cfgmod.merge_dicts(self._raw, {"project": project_values})
        config = cfgmod.build(DegConfig, raw, unknown=[] if self.ignored_keys else None)
        save_yaml(self.config_path, raw)
        self._raw, self.config = raw, config

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
        anything is copied. Each video lands atomically: it is copied and measured
        in a hidden folder that is renamed into place when complete, and split.yaml
        is updated after each one, so an interrupted batch keeps what landed; rerun
        it with ``skip_existing=True`` to add the rest.

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
        self._clean_partials()
        for src, key, checksum, info in plans:
            tmp = self.data_dir / f".{key}{_PARTIAL}"
            tmp.mkdir(parents=True)
            try:
                dst = tmp / f"{key}{src.suffix.lower()}"
                shutil.copyfile(src, dst)
                # same bytes as the probed source, so its measurements hold for the copy
                if file_checksum(dst) != checksum:
                    raise ProjectError("copy does not match the source (disk full?)", src)
                rec = VideoRecord(
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
                )
                rec.save()
                tmp.rename(self.data_dir / key)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            # split.yaml after each video, so an interrupted batch keeps what landed
            on_disk = set(self.video_keys())
            landed = {k: s for k, s in table.assignment.items() if k in on_disk}
            SplitTable(landed, table.fractions).save(self.split_path)
        return [plan[1] for plan in plans]

    def _rng(self) -> random.Random:
        return random.Random(self.config.split.seed)

    def _clean_partials(self) -> None:
        for p in self.data_dir.glob(f".*{_PARTIAL}"):
            shutil.rmtree(p, ignore_errors=True)

    def set_split(self, video: str | Path, split: str) -> list[str]:
        """Move a video to a split; returns warnings (e.g. no val video left)."""
        check_split_name(split)
        key = self.resolve_key(video)
        table = self.splits()
        table.set(key, split)
        table.save(self.split_path)
        return table.warnings()

    def remove_video(self, video: str | Path) -> Path:
        """Remove a video from the project; its folder (labels too) moves to ``.trash/``."""
        key = self.resolve_key(video)
        trash = self.root / ".trash"
        trash.mkdir(exist_ok=True)
        dst = trash / f"{dt.datetime.now():%y%m%d_%H%M%S}_{key}"
        table = self.splits()
        table.remove(key)
        table.save(self.split_path)
        (self.data_dir / key).rename(dst)
        return dst

    # ------------------------------------------------------------------ labels
    def labels(self, video: str | Path) -> Labels:
        """The video's labels; all -1 (unlabeled) if it has no label file yet."""
        rec = self.record(self.resolve_key(video))
        if rec.labels_path.exists():
            return read_labels(rec.labels_path, self.behaviors, rec.n_frames())
        return Labels.empty(rec.n_frames(), self.behaviors)

    def save_labels(self, video: str | Path, labels: Labels) -> Path:
        rec = self.record(self.resolve_key(video))
        if labels.behaviors != self.behaviors:
            raise ProjectError(
                f"labels are for behaviours {labels.behaviors}, project has {self.behaviors}"
            )
        if labels.n_frames != rec.n_frames():
            raise ProjectError(f"labels have {labels.n_frames} frames, video has {rec.frames}")
        write_labels(rec.labels_path, labels)
        return rec.labels_path

    def import_labels(self, video: str | Path, path: str | Path, **kwargs) -> Labels:
        """Validate a label CSV (DEG format or a bout table) and store it as the video's labels."""
        rec = self.record(self.resolve_key(video))
        labels = import_labels(Path(path), self.behaviors, rec.n_frames(), **kwargs)
        write_labels(rec.labels_path, labels)  # a DEG project's own label file, if it has one
        return labels

    # ------------------------------------------------------------------ behaviours
    def _label_files(self) -> list[tuple[Path, Labels]]:
        out = []
        for key in self.video_keys():
            rec = self.record(key)
            if rec.labels_path.exists():
                out.append((rec.labels_path, read_labels(rec.labels_path, self.behaviors)))
        return out

    def _rewrite_behaviors(self, new_behaviors: list[str], change) -> None:
        # read and transform every label file before writing any of them
        updated = [(path, change(labels)) for path, labels in self._label_files()]
        for path, labels in updated:
            write_labels(path, labels)
        self._save_config(class_names=["background", *new_behaviors])

    def add_behavior(self, name: str) -> None:
        """Add a behaviour; it is -1 (unlabeled) on every frame of existing label files."""
        check_behavior_name(name, self.behaviors)
        self._rewrite_behaviors([*self.behaviors, name], lambda lab: lab.add_behavior(name))

    def remove_behavior(self, name: str) -> None:
        """Remove a behaviour; its label columns are kept in ``.trash/`` first."""
        if name not in self.behaviors:
            raise ProjectError(f"no behaviour {name!r} (behaviours: {', '.join(self.behaviors)})")
        if len(self.behaviors) == 1:
            raise ProjectError("cannot remove the last behaviour")
        files = self._label_files()
        trash = self.root / ".trash" / f"{dt.datetime.now():%y%m%d_%H%M%S}_behavior_{name}"
        for path, labels in files:
            trash.mkdir(parents=True, exist_ok=True)
            col = labels.array[:, labels.behaviors.index(name)]
            np.savetxt(trash / f"{path.parent.name}.csv", col, fmt="%d", header=name, comments="")
        self._rewrite_behaviors(
            [b for b in self.behaviors if b != name], lambda lab: lab.remove_behavior(name)
        )

    def rename_behavior(self, old: str, new: str) -> None:
        if old not in self.behaviors:
            raise ProjectError(f"no behaviour {old!r} (behaviours: {', '.join(self.behaviors)})")
        check_behavior_name(new, [b for b in self.behaviors if b != old])
        self._rewrite_behaviors(
            [new if b == old else b for b in self.behaviors],
            lambda lab: lab.rename_behavior(old, new),
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
