"""Several animals in one video: where each one is, frame by frame, under a stable identity.

:class:`AnimalTracks` is what every source gives — deg's own multi-animal tracker
(:mod:`deg_core.tracking.multi`) and the files labs already have (SLEAP, DeepLabCut, a plain
CSV: :mod:`deg_core.tracking.imports`) — and what every per-animal stage reads: animal ``i``
is column ``i`` of every array, the same animal in every frame (an identity swap is fixed
with :meth:`AnimalTracks.swap`). Stored per video as ``DATA/<key>/<key>_animals.h5``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from deg_core.errors import ProjectError
from deg_core.fileio import atomic_open
from deg_core.project.records import animal_tracks_name

ANIMALS_VERSION = 1


def animals_path(folder: Path, key: str) -> Path:
    return Path(folder) / animal_tracks_name(key)


@dataclass
class AnimalTracks:
    """Per-animal centroids (and boxes) of one video, in full-frame pixels.

    ``center``: (T, N, 2) float32 x, y; NaN where the animal is not known in that frame.
    ``extent``: (T, N, 2) float32 width, height of its box (NaN where unknown).
    ``names``: N animal ids (``animal0``...; a SLEAP track's or DLC individual's name).
    ``source``: where the tracks came from ("deg", "sleap", "dlc", "csv").
    ``merged``: (T,) bool frames where the tracker saw animals touching (identities held,
    not measured); all False for imported tracks.
    """

    center: np.ndarray
    extent: np.ndarray
    names: list[str]
    source: str
    frame_size: tuple[int, int]  # (height, width) of the video
    merged: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def __post_init__(self) -> None:
        self.center = np.asarray(self.center, np.float32)
        self.extent = np.asarray(self.extent, np.float32)
        t, n = self.center.shape[:2]
        if self.center.shape != (t, n, 2) or self.extent.shape != (t, n, 2):
            raise ValueError(
                f"center and extent must be (T, N, 2), got {self.center.shape}, {self.extent.shape}"
            )
        if len(self.names) != n or len(set(self.names)) != n:
            raise ValueError(f"need {n} distinct animal names, got {self.names}")
        if not len(self.merged):
            self.merged = np.zeros(t, bool)
        self.merged = np.asarray(self.merged, bool)
        if self.merged.shape != (t,):
            raise ValueError(f"merged must be (T,) = ({t},), got {self.merged.shape}")

    @property
    def n_frames(self) -> int:
        return int(self.center.shape[0])

    @property
    def n_animals(self) -> int:
        return int(self.center.shape[1])

    def found(self) -> np.ndarray:
        """(T, N) bool: the animal's position is known in that frame."""
        return ~np.isnan(self.center).any(axis=2)

    def swap(self, a: int, b: int, from_frame: int = 0) -> AnimalTracks:
        """Identities ``a`` and ``b`` exchanged from ``from_frame`` on (a tracker's swap
        after the animals touched); a new object."""
        if not (0 <= a < self.n_animals and 0 <= b < self.n_animals) or a == b:
            raise ValueError(f"animals must be two of 0..{self.n_animals - 1}, got {a}, {b}")
        if not 0 <= from_frame < self.n_frames:
            raise ValueError(f"from_frame must be in 0..{self.n_frames - 1}, got {from_frame}")
        order = np.arange(self.n_animals)
        order[[a, b]] = order[[b, a]]
        center, extent = self.center.copy(), self.extent.copy()
        center[from_frame:] = center[from_frame:, order]
        extent[from_frame:] = extent[from_frame:, order]
        return AnimalTracks(
            center, extent, list(self.names), self.source, self.frame_size, self.merged.copy()
        )

    # ------------------------------------------------------------------ I/O
    def save(self, path: Path) -> None:
        """Atomically write ``path`` (HDF5; plain arrays and attributes, no pickles)."""
        with atomic_open(path, "w+b") as f, h5py.File(f, "w") as h5:
            h5.attrs["version"] = ANIMALS_VERSION
            h5.attrs["source"] = self.source
            h5.attrs["frame_size"] = np.asarray(self.frame_size, np.int64)
            h5.attrs["names"] = np.asarray(self.names, dtype=h5py.string_dtype())
            h5.create_dataset("center", data=self.center, compression="gzip")
            h5.create_dataset("extent", data=self.extent, compression="gzip")
            h5.create_dataset("merged", data=self.merged.astype(np.uint8), compression="gzip")

    @classmethod
    def load(cls, path: Path) -> AnimalTracks:
        """Read :meth:`save`'s file; a one-line ProjectError for a damaged or foreign one."""
        try:
            with h5py.File(path, "r") as h5:
                version = int(h5.attrs.get("version", 0))
                if version != ANIMALS_VERSION:
                    raise ProjectError(f"animal tracks of version {version}, expected 1", path)
                return cls(
                    center=h5["center"][()],
                    extent=h5["extent"][()],
                    names=[str(n) for n in h5.attrs["names"]],
                    source=str(h5.attrs["source"]),
                    frame_size=tuple(int(v) for v in h5.attrs["frame_size"]),  # type: ignore[arg-type]
                    merged=h5["merged"][()].astype(bool),
                )
        except (OSError, KeyError, ValueError) as e:
            raise ProjectError(f"unreadable animal tracks ({e})", path) from None
