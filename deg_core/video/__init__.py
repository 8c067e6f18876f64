"""Video reading (exact random access), writing, validation and statistics.

``base`` (the reader interface) <- ``pyav``, ``decord`` (readers) <- ``open``
(open/probe) <- ``stats``; ``write`` stands alone. Import from here.
"""

from deg_core.video.base import Backend, Size, VideoInfo, VideoReader, resize_frames
from deg_core.video.decord import DecordReader
from deg_core.video.open import open_video, probe_video
from deg_core.video.pyav import PyAVReader
from deg_core.video.stats import channel_stats, file_checksum
from deg_core.video.write import write_video

__all__ = [
    "Backend",
    "DecordReader",
    "PyAVReader",
    "Size",
    "VideoInfo",
    "VideoReader",
    "channel_stats",
    "file_checksum",
    "open_video",
    "probe_video",
    "resize_frames",
    "write_video",
]
