"""Errors deg raises for bad input.

Every user-facing error is one line that names the file and the problem, so the
CLI can print ``str(err)`` and exit non-zero without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class DegError(Exception):
    """Base class for every error deg raises about user input or project state."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self.problem = message
        text = f"{path}: {message}" if path is not None else message
        # one line, always: a multi-line message from a decoder must not leak through
        super().__init__(" ".join(text.split()))


class ProjectError(DegError):
    """The project folder, its config or its split/record files are wrong."""


class ConfigError(DegError):
    """A config file or an override has an unknown key, a wrong type or a bad value."""


class VideoError(DegError):
    """A video file cannot be read: missing, not a video, truncated, zero frames..."""


class LabelError(DegError):
    """A label file has the wrong length, columns or values."""
