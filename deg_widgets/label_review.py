"""Review helpers: a video's predictions aligned with its labels, and the review queue's
searches (next bout, next uncertain frame, next label/prediction disagreement, next
disagreement between two annotators) as pure functions of arrays.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from deg_core.errors import DegError
from deg_core.labels.labels import read_labels
from deg_core.labels.review import annotators_differ
from deg_core.project.project import Project

__all__ = [
    "Predictions",
    "disagreement_starts",
    "next_animal_disagreement",
    "next_annotator_disagreement",
    "next_bout",
    "next_disagreement",
    "next_frame_of",
    "next_uncertain",
]


@dataclass
class Predictions:
    """A video's model output, aligned with its labels.

    ``probs``: (T, K) float32 P, or None; ``thresholds``: (K,) or None;
    ``predicted``: (T, K) int8 thresholded + cleaned predictions, or None.
    """

    probs: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    predicted: np.ndarray | None = None
    source: str = ""  # where they came from, for messages

    @classmethod
    def load(cls, project: Project, key: str, animal: int | None = None) -> Predictions:
        """The latest sequence run's P and the predictions CSV (each may be missing);
        ``animal``'s in a video of several (None: a one-animal video's)."""
        from deg_core.project.outputs import read_group
        from deg_core.project.status import output_groups

        rec = project.record(key)
        n, behaviors = rec.n_frames(), project.behaviors
        out = cls()
        group = _sequence_group(project, output_groups(rec.outputs_path))
        if group is not None:
            got = read_group(
                rec.outputs_path, group, ("P", "thresholds", "class_names"), animal=animal
            )
            names = [c for c in got["class_names"].tolist() if c != "background"]
            if names == behaviors and got["P"].shape == (n, len(behaviors)):
                out.probs = np.asarray(got["P"], np.float32)
                out.thresholds = np.asarray(got["thresholds"], np.float32).reshape(-1)
                out.source = f"run {group}"
        csv = rec.predictions_path if animal is None else rec.animal_predictions_path(animal)
        if csv.exists():
            out.predicted = read_labels(csv, behaviors, n).array
            out.source = out.source or csv.name
        elif out.probs is not None and out.thresholds is not None:
            out.predicted = (out.probs >= out.thresholds[None]).astype(np.int8)
        return out


def _sequence_group(project: Project, groups: list[str] | str) -> str | None:
    """The latest sequence run's group in an outputs file (else the newest sequence group)."""
    if isinstance(groups, str) or not groups:
        return None
    from deg_core.project.runs import resolve_run

    with contextlib.suppress(DegError):
        latest = resolve_run(project.models_dir, "sequence", "latest").name
        if latest in groups:
            return latest
    seq = sorted(g for g in groups if "_sequence_" in g)
    return seq[-1] if seq else None


# --------------------------------------------------------------------------- seeks


def _starts(mask: np.ndarray) -> np.ndarray:
    """(T, K) or (T,) bool -> sorted unique frames where a stretch of True begins."""
    m = mask.reshape(len(mask), -1)
    prev = np.vstack([np.zeros((1, m.shape[1]), bool), m[:-1]])
    return np.unique(np.flatnonzero((m & ~prev).any(axis=1)))


def _pick(starts: np.ndarray, frame: int, direction: int) -> int | None:
    """The first start after ``frame`` (direction 1) or the last before it (-1)."""
    if direction >= 0:
        after = starts[starts > frame]
        return int(after[0]) if len(after) else None
    before = starts[starts < frame]
    return int(before[-1]) if len(before) else None


def next_bout(
    labels: np.ndarray,
    frame: int,
    direction: int = 1,
    behavior: int | None = None,
    predicted: np.ndarray | None = None,
) -> int | None:
    """Start of the next (previous) bout of ``behavior`` (any when None), or None.

    ``labels``, ``predicted``: (T, K) int8. A frame counts as present where it is labelled
    1, or where it is unlabelled (-1) and ``predicted`` says 1, so the search runs over the
    predictions on stretches that nobody labelled yet. With ``behavior=None`` every
    behaviour's bout starts count (not the starts of their union).
    """
    present = labels == 1
    if predicted is not None:
        present |= (labels == -1) & (predicted == 1)
    if behavior is not None:
        present = present[:, [behavior]]
    return _pick(_starts(present), frame, direction)


def next_uncertain(
    probs: np.ndarray,
    thresholds: np.ndarray,
    frame: int,
    direction: int = 1,
    margin: float = 0.2,
) -> int | None:
    """The most uncertain frame of the next stretch of uncertain frames, or None.

    ``probs``: (T, K) P; ``thresholds``: (K,). A frame's distance is min over behaviours
    of |P - threshold| (the behaviour closest to flipping); uncertain frames are those
    with distance < ``margin``. Stretches of uncertain frames are scanned from ``frame``
    in ``direction``, skipping the one that holds ``frame`` (so pressing the key again
    moves on); the answer is the stretch's frame of least distance (its local minimum).
    """
    dist = np.abs(probs - thresholds[None]).min(axis=1)
    unsure = dist < margin
    if not unsure.any():
        return None
    starts = _starts(unsure)
    ends = _starts(unsure[::-1])  # reversed starts: last frame of each stretch
    ends = np.sort(len(unsure) - 1 - ends)
    if direction >= 0:
        pick = np.flatnonzero(starts > frame)
    else:
        pick = np.flatnonzero(ends < frame)
        pick = pick[::-1]
    if not len(pick):
        return None
    a, b = int(starts[pick[0]]), int(ends[pick[0]])
    return a + int(np.argmin(dist[a : b + 1]))


def disagreement_starts(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Sorted frames where a stretch of label/prediction disagreement begins.

    A frame disagrees where some behaviour is labelled (not -1) with a value other than
    the prediction's. (T, K) int8 both.
    """
    return _starts(((labels != -1) & (labels != predicted)).any(axis=1))


def next_disagreement(
    labels: np.ndarray, predicted: np.ndarray, frame: int, direction: int = 1
) -> int | None:
    """Start of the next (previous) stretch where labels and predictions differ, or None
    (:func:`disagreement_starts`)."""
    return _pick(disagreement_starts(labels, predicted), frame, direction)


def next_animal_disagreement(
    starts: dict[int, np.ndarray], frame: int, animal: int, direction: int = 1
) -> tuple[int, int] | None:
    """The next (previous) (frame, animal) where some animal's labels and predictions
    start to differ, or None.

    ``starts``: {animal: its :func:`disagreement_starts`}. Stretches are ordered by
    (frame, animal), so two animals' stretches starting on one frame are both visited.
    """
    here = (frame, animal)
    found = [(int(f), a) for a, fs in starts.items() for f in fs]
    if direction >= 0:
        after = [p for p in found if p > here]
        return min(after) if after else None
    before = [p for p in found if p < here]
    return max(before) if before else None


def next_frame_of(frames: list[int], frame: int, direction: int = 1) -> int | None:
    """The first of sorted ``frames`` after ``frame`` (direction 1) or the last before it."""
    return _pick(np.asarray(frames, np.int64), frame, direction)


def next_annotator_disagreement(
    labels: np.ndarray, reference: np.ndarray, frame: int, direction: int = 1
) -> int | None:
    """Start of the next (previous) stretch where two annotators differ, or None.

    A frame differs where some behaviour is labelled by both (neither -1) with different
    values (:func:`deg_core.labels.review.annotators_differ`). (T, K) int8 both.
    """
    differ = np.asarray(annotators_differ(labels, reference).any(axis=1))
    return _pick(_starts(differ), frame, direction)
