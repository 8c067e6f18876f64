"""Label files of any size in bounded memory: read in chunks, refused early when far too big.

Memory is what tracemalloc sees this process allocate (Python objects and NumPy arrays)."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from deg_core.errors import LabelError
from deg_core.labels.labels import import_labels, read_labels

BEHAVIORS = ["groom", "rear", "dig"]
BLOCK = ["0,1,0,0,0\n", "0,0,1,0,0\n", "0,0,0,1,-1\n", "0,1,0,0,0\n"]  # index, bg, 3 behaviours


def _write_frames(path, n: int) -> None:
    """pandas' layout (an unnamed index column, values ignored) with ``n`` frame rows."""
    with open(path, "w") as f:
        f.write(",background,groom,rear,dig\n")
        block = "".join(BLOCK) * 4096
        rows_per_block = len(BLOCK) * 4096
        for _ in range(n // rows_per_block):
            f.write(block)
        f.write("".join(BLOCK) * ((n % rows_per_block) // len(BLOCK)))


def _peak(call):
    tracemalloc.start()
    try:
        result = call()
    except LabelError as e:
        result = e
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, peak


def test_a_long_label_file_stays_within_ten_times_its_array(tmp_path):
    n = 1 << 19  # a 5-hour video at 30 fps; the file is ~5.5 MB, its labels 1.5 MB
    path = tmp_path / "long_labels.csv"
    _write_frames(path, n)
    labels, peak = _peak(lambda: import_labels(path, BEHAVIORS, n))
    assert not isinstance(labels, LabelError), labels
    final = labels.array.nbytes
    assert peak < 10 * final, f"peak {peak / 1e6:.1f} MB for a {final / 1e6:.1f} MB array"
    expected = np.array([[0, 0, 0], [1, 0, 0], [0, 1, -1], [0, 0, 0]], np.int8)
    np.testing.assert_array_equal(labels.array[:8], np.tile(expected, (2, 1)))
    np.testing.assert_array_equal(labels.array[-4:], expected)

    # one row too many: the count is exact, and memory stays bounded while it counts
    with open(path, "a") as f:
        f.write("0,1,0,0,0\n")
    err, peak = _peak(lambda: read_labels(path, BEHAVIORS, n_frames=n))
    assert isinstance(err, LabelError) and f"has {n + 1} rows, video has {n} frames" in str(err)
    assert peak < 10 * final


def test_a_file_far_larger_than_its_video_is_refused_unread(tmp_path):
    path = tmp_path / "huge.csv"
    _write_frames(path, 6_000_000)  # ~66 MB, for a 1,000-frame video
    start = time.perf_counter()
    err, peak = _peak(lambda: import_labels(path, BEHAVIORS, 1000))
    took = time.perf_counter() - start
    assert isinstance(err, LabelError), err
    assert "far more than labels of 1000 frames" in str(err) and str(path) in str(err)
    assert "\n" not in str(err)
    assert peak < 2e6 and took < 5, (peak, took)


def test_a_long_bout_table_stays_bounded(tmp_path):
    n = 1 << 19
    path = tmp_path / "bouts.csv"
    with open(path, "w") as f:
        f.write("start,stop,behavior\n")
        f.write("".join(f"{s},{s + 3},{BEHAVIORS[s % 3]}\n" for s in range(0, n - 4, 4)))
    labels, peak = _peak(lambda: import_labels(path, BEHAVIORS, n))
    assert not isinstance(labels, LabelError), labels
    assert peak < 10 * labels.array.nbytes + 4e6  # + the covered-frames mask, 1 byte a frame
    assert labels.array[:4].tolist() == [[1, 0, 0]] * 3 + [[0, 0, 0]]
    assert labels.array[4:8, 1].tolist() == [1, 1, 1, 0]


@pytest.mark.parametrize("rows", [0, 1])
def test_short_files_still_read(tmp_path, rows):
    path = tmp_path / "short.csv"
    path.write_text(",background,groom,rear,dig\n" + "0,1,0,0,0\n" * rows)
    labels = read_labels(path, BEHAVIORS)
    assert labels.array.shape == (rows, 3)
