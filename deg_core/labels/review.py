"""The review queue: where a person should look after predictions were imported as labels.

Three kinds of stretch, per behaviour: ``disagree`` (labelled frames whose label differs
from the prediction: a model error or a labelling slip), ``uncertain`` (frames whose
probability is within ``margin`` of the threshold: the model could go either way) and
``annotators`` (frames two annotators both labelled, differently). The Labeler walks the
same queue with its "next uncertain" / "next disagreement" / "next disagreement between
annotators" keys; this module lists it whole, for a table and for scripted corrections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deg_core.labels.bouts import bouts_from_vector


def review_queue(
    labels: np.ndarray,
    behaviors: Sequence[str],
    predicted: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    thresholds: Sequence[float] | None = None,
    margin: float = 0.2,
    reference: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Stretches to review, in time order.

    Args:
        labels, predicted: (T, K) int8 in {1, 0, -1} / {1, 0}.
        probs: (T, K) P; thresholds: (K,). Either pair may be None (that kind is skipped).
        reference: (T, K) int8, another annotator's labels, or None.

    Returns:
        [{"start", "stop" (exclusive), "frames", "behavior", "kind": "disagree" |
        "uncertain" | "annotators", "closest": min |P - threshold| in the stretch
        (uncertain only)}].
    """
    items: list[dict[str, Any]] = []
    between = annotators_differ(labels, reference) if reference is not None else None
    for k, name in enumerate(behaviors):
        if between is not None:
            for a, b in bouts_from_vector(between[:, k]):
                items.append(
                    {"start": a, "stop": b, "frames": b - a, "behavior": name, "kind": "annotators"}
                )
        if predicted is not None:
            differ = (labels[:, k] != -1) & (labels[:, k] != predicted[:, k])
            for a, b in bouts_from_vector(differ):
                items.append(
                    {"start": a, "stop": b, "frames": b - a, "behavior": name, "kind": "disagree"}
                )
        if probs is not None and thresholds is not None:
            dist = np.abs(probs[:, k] - float(thresholds[k]))
            for a, b in bouts_from_vector(dist < margin):
                items.append(
                    {
                        "start": a,
                        "stop": b,
                        "frames": b - a,
                        "behavior": name,
                        "kind": "uncertain",
                        "closest": round(float(dist[a:b].min()), 4),
                    }
                )
    return sorted(items, key=lambda it: (it["start"], it["behavior"], it["kind"]))


def annotators_differ(labels: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(T, K) bool: cells both annotators labelled (neither -1) with different values."""
    if labels.shape != reference.shape:
        raise ValueError(f"label arrays differ in shape: {labels.shape} and {reference.shape}")
    return (labels != -1) & (reference != -1) & (labels != reference)


def corrections(
    labels: np.ndarray, truth: np.ndarray, items: Sequence[dict[str, Any]], behaviors: Sequence[str]
) -> list[dict[str, int]]:
    """Edits that make ``labels`` equal ``truth`` inside the queue's stretches.

    What a reviewer does when a synthetic project knows the truth (tests, the demo):
    returns [{"behavior": k, "start", "stop", "value"}], ready for ``Labeler.set_range``.
    """
    index = {b: k for k, b in enumerate(behaviors)}
    edits: list[dict[str, int]] = []
    seen: set[tuple[int, int]] = set()
    for it in items:
        k = index[it["behavior"]]
        for t in range(it["start"], it["stop"]):
            if (k, t) in seen or truth[t, k] == -1 or labels[t, k] == truth[t, k]:
                continue
            seen.add((k, t))
            if (
                edits
                and edits[-1]["behavior"] == k
                and edits[-1]["stop"] == t
                and (edits[-1]["value"] == truth[t, k])
            ):
                edits[-1]["stop"] = t + 1
            else:
                edits.append({"behavior": k, "start": t, "stop": t + 1, "value": int(truth[t, k])})
    return edits


def agreement(labels: np.ndarray, truth: np.ndarray) -> float:
    """Fraction of (frame, behaviour) cells where ``labels`` equal ``truth`` (-1 counts wrong)."""
    known = truth != -1
    return float((labels[known] == truth[known]).mean()) if known.any() else float("nan")
