"""The project store: ``<name>_deepethogram/`` on disk, compatible with DeepEthogram.

Layout::

    <name>_deepethogram/
      project_config.yaml          project values + overrides only (see deg_core/config/)
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

The :class:`Project` class is put together from mixins, one module each:
:mod:`~deg_core.project.videos` (adding and removing videos, splits),
:mod:`~deg_core.project.label_sets` (each annotator's label files) and
:mod:`~deg_core.project.behaviors` (the behaviour list).
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import numpy as np

from deg_core import config as cfgmod
from deg_core.config import DegConfig
from deg_core.errors import ConfigError, DegError, ProjectError
from deg_core.fileio import dump_yaml, load_yaml, save_yaml
from deg_core.project.animal_numbers import animal_number_problem
from deg_core.project.behaviors import NAME_RE, RESERVED, BehaviorsMixin, check_behavior_names

# re-exported: these used to live here
from deg_core.project.behaviors import RENAMES_FILE as RENAMES_FILE
from deg_core.project.behaviors import check_behavior_name as check_behavior_name
from deg_core.project.label_sets import LabelSetsMixin
from deg_core.project.locking import project_lock
from deg_core.project.records import VideoRecord, safe_key, strip_background
from deg_core.project.runs import check_run, list_runs
from deg_core.project.splits import SplitTable
from deg_core.project.transaction import PARTIAL, pending
from deg_core.project.videos import VideosMixin

CONFIG_FILE = "project_config.yaml"
SUFFIX = "_deepethogram"


class Project(VideosMixin, LabelSetsMixin, BehaviorsMixin):
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
        exclusive: bool = False,
        animals: int = 1,
    ) -> Project:
        """Make ``<parent>/<name>_deepethogram/`` with config, DATA/ and models/.

        ``exclusive``: one behaviour (or background) per frame (``project.exclusive``).
        ``animals``: animals in each video (``project.animals``; :meth:`set_animals`)."""
        check_animal_number(animals)
        parent = Path(parent).expanduser()
        if not NAME_RE.match(name or ""):
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
        raw: dict = {
            "project": {"name": name, "labeler": labeler, "class_names": ["background", *behaviors]}
        }
        if exclusive:  # written only when set: a default project stays DeepEthogram's file
            raw["project"]["exclusive"] = True
        if animals != 1:
            raw["project"]["animals"] = int(animals)
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
    def exclusive(self) -> bool:
        """One behaviour (or background) per frame (``project.exclusive``)."""
        return bool(self.config.project.exclusive)

    def n_animals(self, key: str) -> int:
        """Animals in video ``key``: ``project.animals_per_video[key]``, else
        ``project.animals`` (1 unless set)."""
        section = self.config.project
        return int(section.animals_per_video.get(key, section.animals))

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

    def set_animals(self, n: int, video: str | Path | None = None) -> None:
        """Set the number of animals: the project's (``project.animals``: every video
        without a number of its own) or, with ``video``, that video's
        (``project.animals_per_video``). A one-line error, changing nothing, for ``n`` < 1, an
        unknown video, or a video whose files on disk were made for another number (its
        tracks, its animals' label sets, its one-animal labels:
        :func:`~deg_core.project.animal_numbers.animal_number_problem`). Written atomically
        under the project lock; the default 1 and a video's number equal to the project's are
        left out of the file (a one-animal project stays DeepEthogram's file)."""
        n = check_animal_number(n)
        with self.lock():
            self.reload()
            key = self.resolve_key(video) if video is not None else None
            raw = copy.deepcopy(self._raw)
            section = raw.setdefault("project", {})
            own = dict(section.get("animals_per_video") or {})
            if key is None:
                changed = [k for k in self.video_keys() if k not in own]
                section["animals"] = n
                own = {k: v for k, v in own.items() if v != n}
            else:
                changed = [key]
                own[key] = n
                own = {k: v for k, v in own.items() if v != section.get("animals", 1)}
            for k in changed:
                current = self.n_animals(k)
                if current != n and (problem := animal_number_problem(self.record(k), n, current)):
                    raise ProjectError(problem, self.config_path)
            if section.get("animals") == 1:
                del section["animals"]
            section.pop("animals_per_video", None)
            if own:
                section["animals_per_video"] = own
            cfgmod.build(DegConfig, raw, unknown=[] if self.ignored_keys else None)
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


def check_animal_number(n: object) -> int:
    """``n`` if it is a number of animals (an int >= 1), else a one-line ConfigError."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"the number of animals must be a whole number >= 1, got {n!r}")
    return int(n)


def split_keys(project: Project) -> dict[str, list[str]]:
    """The project's video keys by split: {"train": [...], "val": [...], "test": [...]}."""
    table = project.splits()
    keys = project.video_keys()
    return {s: [k for k in keys if table.assignment.get(k) == s] for s in ("train", "val", "test")}
