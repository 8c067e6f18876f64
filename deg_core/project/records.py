"""Per-video records: ``DATA/<key>/record.yaml`` and the files beside it.

deg writes ``record.yaml`` with what it measured when the video was added (frames,
fps, size, codec, per-channel stats, checksum). A DeepEthogram project's video
folders hold DEG's own record.yaml (a file index) and a ``stats.yaml``; those are
read as they are, never rewritten, and what they lack is probed from the video on
demand.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.errors import ProjectError
from deg_core.fileio import atomic_write_text, load_yaml, save_yaml
from deg_core.labels.annotators import is_annotator_file
from deg_core.video.clock import FrameClock

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm")
# DEG's rule for which files in a video folder are not the raw video
_NOT_RAW = ("flow", "label", "output", "score", "prediction")

RECORD_FILE = "record.yaml"
# a video of several animals keeps animal i's label sets in DATA/<key>/animals/animal<i>/
ANIMALS_DIR = "animals"


def animal_name(animal: int) -> str:
    """The folder (and bout-table) name of animal ``animal``: ``animal0``, ``animal1``..."""
    return f"animal{int(animal)}"


def animal_tracks_name(key: str) -> str:
    """The file of a video's animal tracks, beside it (:mod:`deg_core.tracking.animals`)."""
    return f"{key}_animals.h5"


def strip_background(class_names: list[str] | None) -> list[str]:
    """DEG's class_names (background first) -> the behaviours."""
    names = list(class_names or [])
    return names[1:] if names and names[0] == "background" else names


# a key names files like ``.<key>_labels.csv.<pid>.<random>.tmp``: room for the longest of
# those within a file system's 255-byte name limit, with a margin
MAX_KEY_BYTES = 120


def safe_key(stem: str) -> str:
    """A video key safe in file names and YAML: letters and digits of any script stay
    (NFC, so macOS's decomposed names give the same key), ``.`` and ``-`` too, every other
    run of characters (spaces, punctuation, symbols) becomes ``_``; ``video`` if nothing is
    left. Callers check the length against :data:`MAX_KEY_BYTES` (:func:`check_key_length`).
    """
    stem = unicodedata.normalize("NFC", stem)
    key = re.sub(r"[^\w.\-]+", "_", stem).strip("._")
    return key or "video"


def check_key_length(key: str, path: Path) -> None:
    n = len(key.encode("utf-8"))
    if n > MAX_KEY_BYTES:
        raise ProjectError(
            f"the file name is too long for a video name ({n} bytes in UTF-8, at most "
            f"{MAX_KEY_BYTES}): rename or link the file with a shorter name",
            path,
        )


@dataclass
class VideoRecord:
    """What deg knows about one video in ``DATA/<key>/``.

    ``frames`` .. ``checksum`` are None for a DEG project whose folder has no deg
    record yet; :meth:`probe` fills them in memory (never on disk).
    """

    key: str
    folder: Path
    video_name: str | None = None
    frames: int | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    stats: dict[str, Any] | None = None
    checksum: str | None = None
    source: str | None = None
    added: str | None = None
    rotation: int = 0  # the display matrix's quarter turn, applied by the reader
    frame_times: str | None = None  # a VFR video's frame times file, beside it
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ paths
    @property
    def video(self) -> Path | None:
        return self.folder / self.video_name if self.video_name else None

    @property
    def labels_path(self) -> Path:
        """The label CSV: ``<key>_labels.csv``, or the one a DEG project already has."""
        own = self.folder / f"{self.key}_labels.csv"
        if own.exists():
            return own
        if self.video_name:
            stem = Path(self.video_name).stem
            for name in (f"{stem}_labels.csv", f"{stem}_scores.csv"):
                if (self.folder / name).exists():
                    return self.folder / name
        found = sorted(
            p
            for p in self.folder.glob("*.csv")
            if ("label" in p.name.lower() or "score" in p.name.lower())
            and not p.name.startswith(".")
            and not is_annotator_file(p.name)  # another annotator's set never trains
        )
        return found[0] if len(found) == 1 else own

    def animal_labels_path(self, animal: int) -> Path:
        """Animal ``animal``'s training label file in a video of several animals:
        ``animals/animal<i>/<key>_labels.csv`` (DEG's format); no range check here."""
        return self.folder / ANIMALS_DIR / animal_name(animal) / f"{self.key}_labels.csv"

    def animal_folders(self) -> dict[int, Path]:
        """{i: folder} of the ``animals/animal<i>/`` folders on disk, by index."""
        base = self.folder / ANIMALS_DIR
        if not base.is_dir():
            return {}
        found = {}
        for p in base.iterdir():
            m = re.fullmatch(r"animal(\d+)", p.name)
            if m and p.is_dir():
                found[int(m.group(1))] = p
        return dict(sorted(found.items()))

    @property
    def tracks_path(self) -> Path:
        """The animal tracks of a video of several animals: ``<key>_animals.h5``."""
        return self.folder / animal_tracks_name(self.key)

    @property
    def outputs_path(self) -> Path:
        own = self.folder / f"{self.key}_outputs.h5"
        if own.exists():
            return own
        found = sorted(p for p in self.folder.glob("*.h5") if "output" in p.name.lower())
        return found[0] if found else own

    @property
    def predictions_path(self) -> Path:
        return self.folder / f"{self.key}_predictions.csv"

    def animal_predictions_path(self, animal: int) -> Path:
        """Animal ``animal``'s predictions in a video of several animals:
        ``<key>_animal<i>_predictions.csv`` beside the one-animal file."""
        return self.folder / f"{self.key}_{animal_name(animal)}_predictions.csv"

    @property
    def record_path(self) -> Path:
        return self.folder / RECORD_FILE

    # ------------------------------------------------------------------ I/O
    @classmethod
    def from_folder(cls, folder: Path) -> VideoRecord:
        """Read a video folder written by deg or by DeepEthogram (read-only)."""
        folder = Path(folder)
        key = folder.name
        data: dict[str, Any] = {}
        if (folder / RECORD_FILE).is_file():
            loaded = load_yaml(folder / RECORD_FILE, what="video record")
            if not isinstance(loaded, dict):
                raise ProjectError("video record must be a mapping", folder / RECORD_FILE)
            data = loaded
        if "frames" in data:  # written by deg
            rec = cls(
                key=key,
                folder=folder,
                video_name=data.get("video"),
                frames=data.get("frames"),
                fps=data.get("fps"),
                width=data.get("width"),
                height=data.get("height"),
                codec=data.get("codec"),
                stats=data.get("stats"),
                checksum=data.get("checksum"),
                source=data.get("source"),
                added=data.get("added"),
                rotation=int(data.get("rotation") or 0),
                frame_times=data.get("frame_times"),
            )
            if rec.video is None or not rec.video.is_file():
                raise ProjectError(f"video file {rec.video_name!r} is missing", folder)
            return rec
        # DEG folder: find the raw video the way DEG does, stats from stats.yaml
        rec = cls(key=key, folder=folder, video_name=_find_raw_video(folder, data))
        stats_file = folder / "stats.yaml"
        if stats_file.is_file():
            norm = (load_yaml(stats_file, what="stats file") or {}).get("normalization") or {}
            if norm.get("mean") is not None:
                rec.stats = {"mean": norm["mean"], "std": norm["std"], "n_frames": norm.get("N")}
        return rec

    def to_yaml(self) -> dict[str, Any]:
        optional = {"rotation": self.rotation, "frame_times": self.frame_times}
        return {
            "key": self.key,
            "video": self.video_name,
            "frames": self.frames,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "codec": self.codec,
            "stats": self.stats,
            "checksum": self.checksum,
            "source": self.source,
            "added": self.added,
            **{k: v for k, v in optional.items() if v},  # absent for most videos
        }

    def save(self) -> None:
        save_yaml(self.record_path, self.to_yaml())

    def probe(self) -> VideoRecord:
        """Fill frames/fps/size/codec from the video itself if the record lacks them."""
        if self.frames is None and self.video is not None:
            from deg_core.video import probe_video

            info = probe_video(self.video)
            self.frames, self.fps = info.frames, info.fps
            self.width, self.height, self.codec = info.width, info.height, info.codec
        return self

    def clock(self) -> FrameClock:
        """Seconds <-> frames for this video: the frame times kept for a VFR video (read
        from the video itself in a DeepEthogram folder without deg's record), else its fps."""
        self.probe()
        fps = float(self.fps or 0)
        if self.frame_times:
            return FrameClock(fps, read_frame_times(self.folder / self.frame_times))
        if self.checksum is None and self.video is not None:  # not added by deg
            from deg_core.video.pyav import PyAVReader

            with PyAVReader.open(self.video) as reader:
                if reader.info.variable_fps:
                    return FrameClock(fps, reader.frame_times)
        return FrameClock(fps)

    def n_frames(self) -> int:
        """Frame count, probed from the video if the record lacks it."""
        self.probe()
        if self.frames is None:
            raise ProjectError("no video file found in this folder", self.folder)
        return self.frames


def frame_times_name(key: str) -> str:
    return f"{key}_frame_times.csv"


def write_frame_times(path: Path, times: np.ndarray) -> None:
    """``frame,seconds`` per line (microseconds), the times a VFR video shows its frames at."""
    body = "".join(f"{i},{t:.6f}\n" for i, t in enumerate(times.tolist()))
    atomic_write_text(path, "frame,seconds\n" + body)


def read_frame_times(path: Path) -> np.ndarray:
    """(T,) float64 seconds from :func:`write_frame_times`'s file; one-line errors."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        times = np.array([float(line.split(",")[1]) for line in lines[1:] if line.strip()])
    except (OSError, ValueError, IndexError) as e:
        raise ProjectError(f"unreadable frame times ({e})", path) from None
    if not len(times) or np.any(np.diff(times) <= 0):
        raise ProjectError("frame times must increase from frame to frame", path)
    return times


def _find_raw_video(folder: Path, deg_record: dict[str, Any]) -> str | None:
    rgb = deg_record.get("rgb")
    default = rgb.get("default") if isinstance(rgb, dict) else None
    if isinstance(default, str) and (folder / default).is_file():
        return default
    candidates = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix.lower() in VIDEO_EXTENSIONS
        and not any(s in p.name.lower() for s in _NOT_RAW)
    )
    for name in candidates:  # prefer <key>.<ext>
        if Path(name).stem == folder.name:
            return name
    return candidates[0] if candidates else None
