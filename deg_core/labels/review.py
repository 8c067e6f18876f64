"""The review queue: where a person should look after predictions were imported as labels.

Two kinds of stretch, per behaviour: ``disagree`` (labelled frames whose label differs
from the prediction: a model error or a labelling slip) and ``uncertain`` (frames whose
probability is within ``margin`` of the threshold: the model could go either way). The
Labeler walks the same queue with its "next uncertain" / "next disagreement" keys; this
module lists it whole, for a table and for scripted corrections.
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
) -> list[dict[str, Any]]:
    """Stretches to review, in time order.

    Args:
        labels, predicted: (T, K) int8 in {1, 0, -1} / {1, 0}.
        probs: (T, K) P; thresholds: (K,). Either pair may be None (that kind is skipped).

    Returns:
        [{"start", "stop" (exclusive), "frames", "behavior", "kind": "disagree" |
        "uncertain", "closest": min |P - threshold| in the stretch (uncertain only)}].
    """
    items: list[dict[str, Any]] = []
    for k, name in enumerate(behaviors):
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
