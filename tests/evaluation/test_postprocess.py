"""Tests for deg_core.evaluation.postprocess: bout lengths, bout cleaning, Postprocessor."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deg_core.evaluation.postprocess import (
    Postprocessor,
    min_bout_lengths,
    postprocess,
    remove_short_bouts,
    with_background,
)
from deg_core.labels.labels import Labels


def _v(text: str) -> np.ndarray:
    return np.array([int(c) for c in text.replace(" ", "")], dtype=np.int8)


# --------------------------------------------------------------------------- min_bout_lengths

# col 0: complete bouts (1,3) len 2, (5,8) len 3, (9,10) len 1 -> lengths [1, 2, 3]
# col 1: (0,2) touches the start, (4,8) runs into -1, (9,11) starts after -1 -> none complete
VIDEO_A = np.array(
    [
        [0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0],
        [1, 1, 0, 0, 1, 1, 1, 1, -1, 1, 1, 0],
    ],
    dtype=np.int8,
).T
# col 0: one complete bout of length 4; col 1: a bout touching the end
VIDEO_B = np.array([[0, 1, 1, 1, 1, 0], [0, 0, 0, 0, 1, 1]], dtype=np.int8).T


def test_min_bout_lengths_by_hand():
    # method "lower": sorted lengths [1, 2, 3] at index floor(2 * p / 100)
    np.testing.assert_array_equal(min_bout_lengths([VIDEO_A], 0.0), [1, 1])
    np.testing.assert_array_equal(min_bout_lengths([VIDEO_A], 1.0), [1, 1])  # index 0
    np.testing.assert_array_equal(min_bout_lengths([VIDEO_A], 50.0), [2, 1])  # index 1
    np.testing.assert_array_equal(min_bout_lengths([VIDEO_A], 100.0), [3, 1])
    # floor bounds every value and fills behaviours without complete bouts
    np.testing.assert_array_equal(min_bout_lengths([VIDEO_A], 0.0, floor=2), [2, 2])
    np.testing.assert_array_equal(min_bout_lengths([VIDEO_A], 100.0, floor=5), [5, 5])
    out = min_bout_lengths([VIDEO_A], 1.0)
    assert out.dtype == np.int64 and out.shape == (2,)


def test_min_bout_fraction_keeps_the_core_of_short_bouts():
    """A 10-frame labelled bout that the model detects on its 6 central frames: DEG's rule
    (the shortest labelled bout) erases the detection, half of it keeps it."""
    labels = np.zeros((40, 1), np.int8)
    labels[10:20] = 1
    labels[25:37] = 1
    full = min_bout_lengths([labels], 0.0)
    half = min_bout_lengths([labels], 0.0, fraction=0.5)
    assert full.tolist() == [10] and half.tolist() == [5]
    probs = np.zeros((40, 1))
    probs[12:18] = 0.9
    assert postprocess(probs, [0.5], full).sum() == 0
    assert postprocess(probs, [0.5], half)[:, 0].tolist() == (probs[:, 0] > 0.5).tolist()
    np.testing.assert_array_equal(min_bout_lengths([labels], 0.0, floor=3, fraction=0.1), [3])


def test_min_bout_lengths_pools_videos():
    # pooled col 0 lengths [1, 2, 3, 4]: 50% -> index floor(3 * 0.5) = 1 -> 2; 100% -> 4
    np.testing.assert_array_equal(min_bout_lengths([VIDEO_A, VIDEO_B], 50.0), [2, 1])
    np.testing.assert_array_equal(min_bout_lengths([VIDEO_A, VIDEO_B], 100.0), [4, 1])


def test_min_bout_lengths_edge_cases():
    # no bouts at all, all unlabelled, all positive (one run touching both edges), empty video
    zeros = np.zeros((5, 1), dtype=np.int8)
    unlabelled = np.full((5, 1), -1, dtype=np.int8)
    ones = np.ones((5, 1), dtype=np.int8)
    empty = np.zeros((0, 1), dtype=np.int8)
    np.testing.assert_array_equal(min_bout_lengths([zeros, unlabelled, ones, empty], 1, 3), [3])
    with pytest.raises(ValueError, match="empty"):
        min_bout_lengths([])
    with pytest.raises(ValueError, match="percentile"):
        min_bout_lengths([zeros], 101.0)
    with pytest.raises(ValueError, match=r"\(T, 1\)"):
        min_bout_lengths([zeros, np.zeros((3, 2))])


# --------------------------------------------------------------------------- remove_short_bouts


def test_remove_short_bouts_deg_docstring_example():
    # DEG's example with its bout_length 2 (= min_length 3 here). Runs:
    # 000 111 00 1111111 0 11 0000 1 0; s=1: fill the 1-gap (-> a 10-long bout), drop the
    # lone 1 (-> a 6-long trailing gap); s=2: fill the 2-gap -> one 15-long bout.
    x = _v("000111001111111011000010")
    np.testing.assert_array_equal(remove_short_bouts(x, 3), _v("000111111111111111000000"))


def test_remove_short_bouts_smallest_runs_first():
    # 1111 00 1 00 1111, min 3: s=1 drops the lone 1 first, which makes one 5-long gap that
    # is then too long to fill. (Filling every short gap first would give all 1s.)
    x = _v("1111 00 1 00 1111")
    np.testing.assert_array_equal(remove_short_bouts(x, 3), _v("1111 00000 1111"))
    # filling makes a longer bout that survives: 0 1 0 1 0, min 2 -> gap at 2 filled
    np.testing.assert_array_equal(remove_short_bouts(_v("01010"), 2), _v("01110"))


def test_remove_short_bouts_edges():
    # a gap touching an edge is never filled
    np.testing.assert_array_equal(remove_short_bouts(_v("011111"), 3), _v("011111"))
    np.testing.assert_array_equal(remove_short_bouts(_v("111110"), 3), _v("111110"))
    # a short bout touching an edge is removed
    np.testing.assert_array_equal(remove_short_bouts(_v("110000"), 3), _v("000000"))
    np.testing.assert_array_equal(remove_short_bouts(_v("000011"), 3), _v("000000"))
    # 1 0 1111: the interior 1-gap is filled before the edge bout is judged -> all 1
    np.testing.assert_array_equal(remove_short_bouts(_v("101111"), 3), _v("111111"))
    # a whole clip shorter than min_length: all 1 -> all 0; all 0 stays
    np.testing.assert_array_equal(remove_short_bouts(_v("11"), 3), _v("00"))
    np.testing.assert_array_equal(remove_short_bouts(_v("000"), 3), _v("000"))


def test_remove_short_bouts_trivial_cases():
    x = _v("0101101")
    for min_length in (-1, 0, 1):
        np.testing.assert_array_equal(remove_short_bouts(x, min_length), x)
    assert remove_short_bouts(np.zeros(0, dtype=np.int8), 5).shape == (0,)
    # bool input, input not modified, int8 output
    b = x.astype(bool)
    out = remove_short_bouts(b, 2)
    assert out.dtype == np.int8
    np.testing.assert_array_equal(b, x.astype(bool))
    np.testing.assert_array_equal(out, _v("0111111"))  # s=1: the two 1-gaps filled, 0 at edge
    with pytest.raises(ValueError, match="0 and 1"):
        remove_short_bouts(np.array([0, -1, 1]), 2)
    with pytest.raises(ValueError, match=r"\(T,\)"):
        remove_short_bouts(np.zeros((2, 2)), 2)


def _reference_remove_short_bouts(x: np.ndarray, min_length: int) -> np.ndarray:
    """Plain-Python restatement: for s = 1..L-1, fill interior s-gaps, then drop s-bouts."""
    v = [int(a) for a in x]

    def runs() -> list[tuple[int, int, int]]:  # (value, start, stop)
        out, start = [], 0
        for i in range(1, len(v) + 1):
            if i == len(v) or v[i] != v[start]:
                out.append((v[start], start, i))
                start = i
        return out

    for s in range(1, min_length):
        for val, a, b in runs():
            if val == 0 and b - a == s and a > 0 and b < len(v):
                v[a:b] = [1] * s
        for val, a, b in runs():
            if val == 1 and b - a == s:
                v[a:b] = [0] * s
    return np.array(v, dtype=np.int8)


def test_remove_short_bouts_matches_reference_on_random_data():
    rng = np.random.default_rng(0)
    for trial in range(300):
        t = int(rng.integers(0, 60))
        x = (rng.random(t) < rng.uniform(0.1, 0.9)).astype(np.int8)
        min_length = int(rng.integers(1, 8))
        out = remove_short_bouts(x, min_length)
        np.testing.assert_array_equal(out, _reference_remove_short_bouts(x, min_length), str(trial))
        # invariant: no bout, and no interior gap, shorter than min_length remains
        starts = np.flatnonzero(np.concatenate(([True], out[1:] != out[:-1]))) if t else []
        bounds = [*list(starts), t]
        for i in range(len(starts)):
            length = bounds[i + 1] - bounds[i]
            interior = 0 < i < len(starts) - 1
            if out[bounds[i]] == 1 or interior:
                assert length >= min_length


# --------------------------------------------------------------------------- postprocess


def test_postprocess_by_hand():
    probs = np.array([[0.9, 0.3], [0.2, 0.31], [0.8, np.nan], [0.7, 0.0], [0.1, 1.0], [0.6, 0.3]])
    # col 0 > 0.5: 1 0 1 1 0 1, min 2: both 1-gaps are interior -> all 1
    # col 1 > 0.3: 0 1 0 0 1 0 (0.3 is not > 0.3, NaN is absent), min 1: unchanged
    out = postprocess(probs, [0.5, 0.3], [2, 1])
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, [[1, 0], [1, 1], [1, 0], [1, 0], [1, 1], [1, 0]])
    # one min_length for all behaviours: col 1 with min 2 loses both lone 1s
    np.testing.assert_array_equal(postprocess(probs, [0.5, 0.3], 2)[:, 1], np.zeros(6))
    assert postprocess(np.zeros((0, 2)), [0.5, 0.5], [3, 3]).shape == (0, 2)
    with pytest.raises(ValueError, match="thresholds"):
        postprocess(probs, [0.5], [1, 1])
    with pytest.raises(ValueError, match=r"\(T, K\)"):
        postprocess(probs[:, 0], [0.5], [1])


def test_with_background_by_hand():
    pred = np.array([[0, 0], [1, 0], [1, 1]])
    np.testing.assert_array_equal(with_background(pred), [[1, 0, 0], [0, 1, 0], [0, 1, 1]])
    assert with_background(pred).dtype == np.int8
    # no behaviours: every frame is background; no frames: (0, K+1)
    np.testing.assert_array_equal(with_background(np.zeros((2, 0))), [[1], [1]])
    assert with_background(np.zeros((0, 3))).shape == (0, 4)


# --------------------------------------------------------------------------- Postprocessor


def test_postprocessor_from_labels_and_roundtrip():
    labels = [Labels(["groom", "rear"], VIDEO_A), Labels(["groom", "rear"], VIDEO_B)]
    pp = Postprocessor.from_labels(labels, [0.5, 0.3], percentile=100.0)
    assert pp.class_names == ["groom", "rear"]
    np.testing.assert_array_equal(pp.min_lengths, [4, 1])
    d = pp.to_dict()
    assert d == {"class_names": ["groom", "rear"], "thresholds": [0.5, 0.3], "min_lengths": [4, 1]}
    back = Postprocessor.from_dict(json.loads(json.dumps(d, allow_nan=False)))
    assert back == pp
    assert back != Postprocessor([0.5, 0.3], [1, 1], ["groom", "rear"])
    # plain arrays need class_names
    pp2 = Postprocessor.from_labels([VIDEO_A, VIDEO_B], [0.5, 0.3], ["groom", "rear"], 100.0)
    assert pp2 == pp
    with pytest.raises(ValueError, match="class_names"):
        Postprocessor.from_labels([VIDEO_A], [0.5, 0.3])
    with pytest.raises(ValueError, match="behaviours"):
        Postprocessor.from_labels(labels, [0.5, 0.3], ["a", "b"])


def test_postprocessor_call():
    pp = Postprocessor(np.array([0.5, 0.3]), np.array([2, 1]), ["groom", "rear"])
    probs = np.array([[0.9, 0.3], [0.2, 0.31], [0.8, 0.0]])
    # col 0: 1 0 1 -> gap filled; col 1: 0 1 0
    np.testing.assert_array_equal(pp(probs), [[1, 0], [1, 1], [1, 0]])
    np.testing.assert_array_equal(pp(probs, background=True), [[0, 1, 0], [0, 1, 1], [0, 1, 0]])
    with pytest.raises(ValueError, match=r"\(T, 2\)"):
        pp(probs[:, :1])


def test_postprocessor_validation():
    with pytest.raises(ValueError, match="class names"):
        Postprocessor([0.5], [1, 1], ["a", "b"])
    with pytest.raises(ValueError, match="finite"):
        Postprocessor([np.nan], [1], ["a"])
    with pytest.raises(ValueError, match=">= 1"):
        Postprocessor([0.5], [0], ["a"])
    with pytest.raises(ValueError, match="whole"):
        Postprocessor([0.5], [1.5], ["a"])
    with pytest.raises(ValueError, match="min_lengths"):
        Postprocessor.from_dict({"class_names": ["a"], "thresholds": [0.5]})
    # the arrays are copies: editing the source does not change the postprocessor
    th = np.array([0.5])
    pp = Postprocessor(th, [1], ["a"])
    th[0] = 0.9
    assert pp.thresholds[0] == 0.5
