"""Several annotators per video: where each one's label set lives beside DEG's label file.

DeepEthogram knows one label file per video, ``DATA/<key>/<key>_labels.csv``; deg keeps it
as the set that trains (the project's labeler's, or a consensus someone saved there).
Every other annotator's set sits beside it in the same CSV format::

    DATA/<key>/<key>_labels.csv        the training set (primary labeler)
    DATA/<key>/<key>_labels.bob.csv    annotator "bob"

DEG itself never opens the extra files, so a project stays a DEG project. A labeler name
becomes part of a file name, hence the narrow alphabet of :func:`check_labeler`.
"""

from __future__ import annotations

import re
from pathlib import Path

from deg_core.errors import LabelError

__all__ = [
    "PRIMARY",
    "annotator_of",
    "annotator_path",
    "check_labeler",
    "is_annotator_file",
    "list_annotator_files",
]

PRIMARY = "primary"  # the training set's name when the project names no labeler
_TOKEN = r"[A-Za-z0-9][A-Za-z0-9_\-]{0,63}"
_LABELER_RE = re.compile(rf"^{_TOKEN}$")
# "<anything>_labels.<token>.csv" (or DEG's older "_scores"): DEG's own label files end
# "_labels.csv", so they never match
_FILE_RE = re.compile(rf"^(?P<stem>.+_(?:labels|scores))\.(?P<labeler>{_TOKEN})\.csv$")


def check_labeler(name: object) -> str:
    """Return ``name`` if it can name an annotator's label file, else one-line LabelError."""
    if not isinstance(name, str) or not _LABELER_RE.match(name):
        raise LabelError(
            f"labeler name {name!r} is unsafe in a file name: use a letter or digit, then "
            "letters, digits, _ or - (at most 64)"
        )
    return name


def annotator_path(labels_path: Path, labeler: str) -> Path:
    """``<stem>.<labeler>.csv`` beside the training file ``labels_path`` (``<stem>.csv``)."""
    return labels_path.with_name(f"{labels_path.stem}.{check_labeler(labeler)}.csv")


def annotator_of(name: str) -> str | None:
    """The labeler a file name belongs to (``mouse1_labels.bob.csv`` -> ``bob``), else None."""
    m = _FILE_RE.match(name)
    return m.group("labeler") if m else None


def is_annotator_file(name: str) -> bool:
    """Whether ``name`` is another annotator's label file (never the training file)."""
    return annotator_of(name) is not None


def list_annotator_files(labels_path: Path) -> dict[str, Path]:
    """{labeler: path} of the annotator files beside ``labels_path``, sorted by name."""
    folder, stem = labels_path.parent, labels_path.stem
    if not folder.is_dir():
        return {}
    found = {}
    for p in folder.glob(f"{glob_escape(stem)}.*.csv"):
        m = _FILE_RE.match(p.name)
        if m and m.group("stem") == stem and p.is_file():
            found[m.group("labeler")] = p
    return dict(sorted(found.items()))


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", text)
