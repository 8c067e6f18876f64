"""Adding videos to a project, removing them, and moving them between splits.

A video lands as its folder ``DATA/<key>/`` together with its ``split.yaml`` entry, as
one :class:`~deg_core.project.transaction.Change` under the project lock: a video is
never half-present, and two processes adding videos at once lose nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from deg_core.config import DegConfig
from deg_core.errors import ProjectError
from deg_core.project.records import (
    VideoRecord,
    check_key_length,
    frame_times_name,
    safe_key,
    write_frame_times,
)
from deg_core.project.splits import SplitTable, check_fractions, check_split_name
from deg_core.project.transaction import PARTIAL, Change


class VideosMixin:
    """:class:`~deg_core.project.project.Project`'s changes to its set of videos."""

    if TYPE_CHECKING:  # Project provides these; declared here, not imported (a cycle)
        root: Path
        config: DegConfig

        @property
        def data_dir(self) -> Path: ...
        @property
        def split_path(self) -> Path: ...
        def lock(self, timeout: float | None = None) -> AbstractContextManager[None]: ...
        def records(self) -> dict[str, VideoRecord]: ...
        def resolve_key(self, video: str | Path) -> str: ...
        def splits(self) -> SplitTable: ...

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
            check_key_length(key, p)
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
            same = next((plan[0] for plan in plans if plan[1] == key), None)
            if same is not None:
                raise ProjectError(
                    f"this video and {same.name!r} would both be named {key!r} in the "
                    "project: rename one of the files",
                    p,
                )
            if key in existing:
                raise ProjectError(
                    f"a video named {key!r} is already in the project (deg's name for "
                    f"{p.name!r}): rename the file to add it",
                    p,
                )
            info = probe_video(p)  # raises VideoError: not a video, truncated, zero frames ...
            known_sums[checksum] = key
            plans.append((p, key, checksum, info))

        table = self.splits()
        table.assign_new(list(existing), self._rng())  # heal videos added by hand or interrupted
        table.assign_new([plan[1] for plan in plans], self._rng(), split=split)
        # copy and measure outside the lock (minutes for a long video), into a folder whose
        # name no other process uses; then land it with its split under the lock
        need = sum(src.stat().st_size for src, *_ in plans)
        free = shutil.disk_usage(self.data_dir).free
        if need > free:  # say it before copying gigabytes that cannot land
            raise ProjectError(
                f"not enough space left on the device: the videos need {_size(need)}, "
                f"{_size(free)} free there; free some space and run it again",
                self.data_dir,
            )
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
                    rotation=info.rotation,
                    frame_times=keep_frame_times(dst, key) if info.variable_fps else None,
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


def keep_frame_times(video: Path, key: str) -> str:
    """Write a VFR video's frame times beside it (its record names the file); returns the name."""
    from deg_core.video.pyav import PyAVReader

    with PyAVReader.open(video) as reader:
        times = reader.frame_times
    name = frame_times_name(key)
    write_frame_times(video.parent / name, times)
    return name


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"
