"""deg_core.labels.review: the review queue and scripted corrections."""

from __future__ import annotations

import numpy as np


def test_review_queue_and_scripted_corrections():
    from deg_core.labels.review import agreement, corrections, review_queue

    labels = np.array([[1, 0], [1, 0], [-1, 0], [-1, -1], [0, 1]], np.int8)
    predicted = np.array([[1, 0], [0, 0], [0, 0], [1, 1], [0, 1]], np.int8)
    probs = np.array([[0.9, 0.1], [0.45, 0.1], [0.4, 0.1], [0.6, 0.9], [0.1, 0.8]])
    queue = review_queue(labels, ["a", "b"], predicted, probs, [0.5, 0.5], margin=0.15)
    assert queue == [
        {"start": 1, "stop": 2, "frames": 1, "behavior": "a", "kind": "disagree"},
        {"start": 1, "stop": 4, "frames": 3, "behavior": "a", "kind": "uncertain", "closest": 0.05},
    ]
    truth = np.array([[1, 0], [0, 0], [1, 0], [1, 1], [0, 1]], np.int8)
    edits = corrections(labels, truth, queue, ["a", "b"])
    assert edits == [
        {"behavior": 0, "start": 1, "stop": 2, "value": 0},
        {"behavior": 0, "start": 2, "stop": 4, "value": 1},
    ]
    fixed = labels.copy()
    for e in edits:
        fixed[e["start"] : e["stop"], e["behavior"]] = e["value"]
    assert agreement(labels, truth) == 0.6 and agreement(fixed, truth) == 0.9  # b@3 unseen
