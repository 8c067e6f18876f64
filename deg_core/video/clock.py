"""When each frame is shown: seconds <-> frames for constant and variable frame rates.

A phone or a screen recorder writes variable-frame-rate (VFR) files: converting their
seconds to frames at the mean rate puts another tool's events on the wrong frames (140 ms
early within 98 frames of one test file). deg keeps such a video's frame times (from the
container's timestamps, :attr:`deg_core.video.pyav.PyAVReader.frame_times`) beside it, and
every conversion goes through a :class:`FrameClock`.

A FrameClock *is* the mean frame rate (a ``float`` subclass), so code that prints a rate or
compares rates keeps working; :meth:`FrameClock.frame_at` and :meth:`FrameClock.seconds`
use the frame times when the video has them. Time 0 is the first frame.
"""

from __future__ import annotations

import numpy as np


class FrameClock(float):
    """A video's mean fps that knows, for a VFR video, each frame's time.

    ``times``: (T,) float64 seconds from the first frame, strictly increasing; None for a
    constant rate (frame ``i`` at ``i / fps``).
    """

    times: np.ndarray | None

    def __new__(cls, fps: float, times: np.ndarray | None = None) -> FrameClock:
        clock = super().__new__(cls, fps)
        if times is not None:
            times = np.asarray(times, dtype=np.float64)
            if times.ndim != 1 or not len(times) or np.any(np.diff(times) <= 0):
                raise ValueError("frame times must be a non-empty, increasing (T,) array")
        clock.times = times
        return clock

    def __reduce__(self):  # float's own would drop the times
        return (FrameClock, (float(self), self.times))

    @property
    def variable(self) -> bool:
        return self.times is not None

    def frame_at(self, seconds: float) -> int:
        """The frame nearest to ``seconds`` (halfway rounds to the later frame); may be
        out of range (< 0 or >= T): callers check against the video's length."""
        if self.times is None:
            return int(np.floor(seconds * float(self) + 0.5))
        t = self.times
        if seconds >= t[-1]:  # past the last frame: count on at the last step
            step = t[-1] - t[-2] if len(t) > 1 else 1.0 / float(self)
            return len(t) - 1 + int(np.floor((seconds - t[-1]) / step + 0.5))
        if seconds < t[0]:
            step = t[1] - t[0] if len(t) > 1 else 1.0 / float(self)
            return int(np.floor((seconds - t[0]) / step + 0.5))
        i = int(np.searchsorted(t, seconds, side="right")) - 1  # t[i] <= seconds < t[i+1]
        return i + 1 if seconds - t[i] >= t[i + 1] - seconds else i

    def seconds(self, frame):
        """When frame ``frame`` (an int or an array of ints) is shown; frame T (one past
        the last, the end of the video) is the last frame's time plus its step."""
        if self.times is None:
            return frame / float(self)
        t = self.times
        step = t[-1] - t[-2] if len(t) > 1 else 1.0 / float(self)
        f = np.asarray(frame)
        inside = np.clip(f, 0, len(t) - 1)
        out = t[inside] + (f - inside) * step
        return float(out) if out.ndim == 0 else out


def mean_fps(times: np.ndarray) -> float:
    """Frames per second over a VFR video's frame times (0 for a single frame)."""
    return (len(times) - 1) / float(times[-1] - times[0]) if len(times) > 1 else 0.0
