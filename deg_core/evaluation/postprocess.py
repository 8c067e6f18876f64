"""Turn per-frame probabilities into clean per-frame predictions (thresholds + bout cleaning).

Pipeline (per behaviour, independently): ``probs > threshold`` (strictly greater, as in
:mod:`deg_core.evaluation.metrics`; NaN is never present), then :func:`remove_short_bouts` with that
behaviour's minimum bout length, which :func:`min_bout_lengths` estimates from the labels
(DEG: a low percentile of the labelled bout lengths, so the cleaning never removes more
than the rarest-short bouts the labeller actually marked).

Conventions: a *bout* is a run of 1s, a *gap* a run of 0s, as half-open ``(start, stop)``
intervals (:mod:`deg_core.labels.bouts`). ``min_length`` is the shortest run that is kept: runs
*strictly shorter* are changed. (DEG's ``bout_length`` removed runs ``<=`` it, so DEG's
``bout_length = b`` is ``min_length = b + 1`` here.) ``min_length <= 1`` changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deg_core.labels.bouts import bouts_from_vector
from deg_core.labels.labels import Labels

__all__ = [
    "Postprocessor",
    "min_bout_lengths",
    "postprocess",
    "remove_short_bouts",
    "with_background",
]


# --------------------------------------------------------------------------- bout lengths


def _complete_bout_lengths(v: np.ndarray) -> list[int]:
    """Lengths of the runs of 1 in ``v`` (T,) that have a labelled 0 on *both* sides.

    A run touching the video edge or an unlabelled (-1) frame is censored: its true length
    is unknown (it may continue off-screen or into the unlabelled stretch), so it is left
    out rather than biasing the short end of the distribution downwards.
    """
    t = v.shape[0]
    return [
        stop - start
        for start, stop in bouts_from_vector(v)
        if start > 0 and stop < t and v[start - 1] == 0 and v[stop] == 0
    ]


def min_bout_lengths(
    labels_list: Sequence[np.ndarray],
    percentile: float = 1.0,
    floor: int = 1,
    fraction: float = 1.0,
) -> np.ndarray:
    """Per behaviour, the ``percentile``-th percentile of complete labelled bout lengths.

    Args:
        labels_list: videos' ``(T_i, K)`` labels in {1, 0, -1} (same K for all).
        percentile: in [0, 100]; DEG used 1. Computed with ``method="lower"`` (the sorted
            length at index ``floor((n - 1) * percentile / 100)``), so the result is a length
            that was actually labelled and that bout survives :func:`remove_short_bouts`.
        floor: lower bound of every result, and the value for behaviours without any complete
            bout (see ``_complete_bout_lengths``: bouts touching an edge or -1 do not count).
        fraction: the result is this fraction of that length, rounded (1: DEG's rule). A
            model's detection of a bout is usually shorter than the labelled bout (its edges
            score lower), so removing every detection shorter than the shortest labelled bout
            removes short behaviours entirely.

    Returns:
        ``(K,)`` int64 minimum bout lengths (``>= floor``).
    """
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    arrays = [np.asarray(a) for a in labels_list]
    if not arrays:
        raise ValueError("labels_list is empty: cannot tell the number of behaviours")
    k_total = arrays[0].shape[1] if arrays[0].ndim == 2 else -1
    for a in arrays:
        if a.ndim != 2 or a.shape[1] != k_total:
            raise ValueError(f"every label array must be (T, {k_total}), got {a.shape}")
    out = np.full(k_total, int(floor), dtype=np.int64)
    for k in range(k_total):
        lengths = [n for a in arrays for n in _complete_bout_lengths(a[:, k])]
        if lengths:
            value = np.percentile(np.asarray(lengths), percentile, method="lower")
            out[k] = max(int(floor), round(float(fraction) * int(value)))
    return out


# --------------------------------------------------------------------------- bout cleaning


def _merge_runs(values: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge adjacent runs with equal values (run-length encoding stays canonical)."""
    first = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    return values[first], np.add.reduceat(lengths, first)


def remove_short_bouts(binary: np.ndarray, min_length: int) -> np.ndarray:
    """Fill short gaps, then drop short bouts, smallest runs first (DEG's order).

    For ``s = 1, 2, ..., min_length - 1``: first every gap of exactly ``s`` frames with a
    bout on both sides becomes 1 (a flicker inside a behaviour), then every bout of exactly
    ``s`` frames becomes 0 (a flicker of false alarm). Going up in ``s`` means the shortest
    flickers are decided first, so a 1-frame dropout inside a bout is bridged before that
    bout's length is judged. Afterwards no bout and no interior gap is shorter than
    ``min_length``. Each step only creates runs longer than ``s``, so steps with no run of
    length ``s`` are skipped; the work is on the run-length encoding, O(T + runs x steps).

    Edges: a gap touching frame 0 or frame T-1 is never filled (nothing on that side says the
    behaviour continues); a bout touching an edge *is* removed when shorter than
    ``min_length``, like any other bout (so a whole clip shorter than ``min_length`` that is
    all 1 becomes all 0).

    Args:
        binary: ``(T,)`` in {0, 1} (bool or integers).
        min_length: shortest bout / interior gap kept; ``<= 1`` returns the input unchanged.

    Returns:
        ``(T,)`` int8 in {0, 1}; the input is not modified.
    """
    b = np.asarray(binary)
    if b.ndim != 1:
        raise ValueError(f"binary must be (T,), got shape {b.shape}")
    if b.size and not np.isin(b, (0, 1)).all():
        raise ValueError("binary must only contain 0 and 1")
    b = b.astype(np.int8)
    if b.size == 0 or min_length <= 1:
        return b
    starts = np.flatnonzero(np.concatenate(([True], b[1:] != b[:-1])))
    values = b[starts]
    lengths = np.diff(np.append(starts, b.size))
    while True:
        interior = np.zeros(values.size, dtype=bool)
        interior[1:-1] = True
        short = lengths < min_length
        gaps = short & (values == 0) & interior
        bouts = short & (values == 1)
        if not (gaps.any() or bouts.any()):
            break
        s = lengths[gaps | bouts].min()
        values = np.where(gaps & (lengths == s), np.int8(1), values)
        values, lengths = _merge_runs(values, lengths)
        # runs merged by filling are > s long, so "== s" only hits bouts that were already there
        values = np.where((values == 1) & (lengths == s), np.int8(0), values)
        values, lengths = _merge_runs(values, lengths)
    return np.repeat(values, lengths).astype(np.int8)


def postprocess(probs: np.ndarray, thresholds: Any, min_lengths: Any) -> np.ndarray:
    """Threshold and clean each behaviour.

    Args:
        probs: ``(T, K)`` float probabilities.
        thresholds: ``(K,)``; present where ``probs > thresholds`` (NaN -> absent).
        min_lengths: ``(K,)`` ints (or one int for all), see :func:`remove_short_bouts`.

    Returns:
        ``(T, K)`` int8 in {0, 1}, without background (see :func:`with_background`).
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (T, K), got shape {p.shape}")
    k_total = p.shape[1]
    th = np.asarray(thresholds, dtype=np.float64)
    if th.shape != (k_total,):
        raise ValueError(f"thresholds must be ({k_total},), got {th.shape}")
    ml = np.broadcast_to(np.asarray(min_lengths, dtype=np.int64), (k_total,))
    binary = (p > th[None, :]).astype(np.int8)
    for k in range(k_total):
        binary[:, k] = remove_short_bouts(binary[:, k], int(ml[k]))
    return binary


def with_background(pred: np.ndarray) -> np.ndarray:
    """``(T, K)`` binary -> ``(T, K+1)`` int8 with background first (1 where no behaviour is
    predicted): the column layout of DEG's files and of the model outputs."""
    p = np.asarray(pred)
    if p.ndim != 2:
        raise ValueError(f"pred must be (T, K), got shape {p.shape}")
    present = p.astype(bool)
    background = ~present.any(axis=1, keepdims=True)
    return np.concatenate([background, present], axis=1).astype(np.int8)


# --------------------------------------------------------------------------- bundle


@dataclass(eq=False)
class Postprocessor:
    """Everything needed to turn a model's probabilities into predictions, storable as
    plain types (``to_dict``/``from_dict``) next to the weights.

    ``thresholds``: ``(K,)`` float64; ``min_lengths``: ``(K,)`` int64 (>= 1);
    ``class_names``: the K behaviour names (no background), in column order.
    """

    thresholds: np.ndarray
    min_lengths: np.ndarray
    class_names: list[str]

    def __post_init__(self) -> None:
        self.class_names = [str(n) for n in self.class_names]
        k_total = len(self.class_names)
        self.thresholds = np.asarray(self.thresholds, dtype=np.float64).reshape(-1).copy()
        lengths = np.asarray(self.min_lengths)
        if lengths.size and not np.all(lengths == np.round(lengths)):
            raise ValueError(f"min_lengths must be whole numbers, got {lengths.tolist()}")
        self.min_lengths = lengths.astype(np.int64).reshape(-1).copy()
        if self.thresholds.shape != (k_total,) or self.min_lengths.shape != (k_total,):
            raise ValueError(
                f"{k_total} class names but {self.thresholds.size} thresholds and "
                f"{self.min_lengths.size} min_lengths"
            )
        if not np.all(np.isfinite(self.thresholds)):
            raise ValueError(f"thresholds must be finite, got {self.thresholds.tolist()}")
        if np.any(self.min_lengths < 1):
            raise ValueError(f"min_lengths must be >= 1, got {self.min_lengths.tolist()}")

    @classmethod
    def from_labels(
        cls,
        labels_list: Sequence[np.ndarray | Labels],
        thresholds: Any,
        class_names: Sequence[str] | None = None,
        percentile: float = 1.0,
        floor: int = 1,
    ) -> Postprocessor:
        """Thresholds as given (e.g. from :func:`~deg_core.evaluation.metrics.fit_thresholds`),
        minimum bout lengths from the labelled videos (:func:`min_bout_lengths`).

        ``labels_list`` holds ``(T, K)`` arrays or :class:`Labels`; ``class_names`` defaults
        to the :class:`Labels`' behaviours, which must then all agree.
        """
        arrays = []
        for item in labels_list:
            if isinstance(item, Labels):
                if class_names is None:
                    class_names = list(item.behaviors)
                elif list(item.behaviors) != list(class_names):
                    raise ValueError(
                        f"labels have behaviours {item.behaviors}, expected {list(class_names)}"
                    )
                arrays.append(item.array)
            else:
                arrays.append(np.asarray(item))
        if class_names is None:
            raise ValueError("class_names is required when labels_list holds plain arrays")
        return cls(thresholds, min_bout_lengths(arrays, percentile, floor), list(class_names))

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types only (JSON/YAML-ready)."""
        return {
            "class_names": list(self.class_names),
            "thresholds": [float(t) for t in self.thresholds],
            "min_lengths": [int(n) for n in self.min_lengths],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Postprocessor:
        """Inverse of :meth:`to_dict`; raises ValueError naming a missing key."""
        missing = [key for key in ("class_names", "thresholds", "min_lengths") if key not in d]
        if missing:
            raise ValueError(f"postprocessor settings lack {', '.join(missing)}")
        return cls(d["thresholds"], d["min_lengths"], list(d["class_names"]))

    def __call__(self, probs: np.ndarray, background: bool = False) -> np.ndarray:
        """``(T, K)`` probs -> ``(T, K)`` int8 predictions, or ``(T, K+1)`` with background
        first when ``background``."""
        p = np.asarray(probs)
        if p.ndim != 2 or p.shape[1] != len(self.class_names):
            raise ValueError(f"probs must be (T, {len(self.class_names)}), got shape {p.shape}")
        pred = postprocess(p, self.thresholds, self.min_lengths)
        return with_background(pred) if background else pred

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Postprocessor):
            return NotImplemented
        return (
            self.class_names == other.class_names
            and np.array_equal(self.thresholds, other.thresholds)
            and np.array_equal(self.min_lengths, other.min_lengths)
        )
