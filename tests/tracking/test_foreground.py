"""The foreground primitives the trackers share: the largest 8-connected component."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch

from deg_core.tracking.foreground import largest_component


def flood_largest(mask: np.ndarray) -> np.ndarray:
    """Reference: breadth-first 8-connected labelling of one (h, w) mask, the biggest
    component (ties: the one met first in row-major order)."""
    h, w = mask.shape
    seen = np.zeros_like(mask, bool)
    best: list[tuple[int, int]] = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        queue, comp = deque([(y0, x0)]), []
        while queue:
            y, x = queue.popleft()
            comp.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    v, u = y + dy, x + dx
                    if 0 <= v < h and 0 <= u < w and mask[v, u] and not seen[v, u]:
                        seen[v, u] = True
                        queue.append((v, u))
        if len(comp) > len(best):
            best = comp
    out = np.zeros_like(mask, bool)
    for y, x in best:
        out[y, x] = True
    return out


@pytest.mark.parametrize("density", [0.05, 0.3, 0.5, 0.7, 1.0])
def test_largest_component_matches_a_flood_fill(density):
    rng = np.random.default_rng(int(density * 100))
    for _ in range(15):
        n, h, w = rng.integers(1, 4), rng.integers(1, 25), rng.integers(1, 25)
        masks = rng.random((n, h, w)) < density
        comp, pixels = largest_component(torch.from_numpy(masks.astype(np.float32)))
        for i in range(n):
            want = flood_largest(masks[i])
            np.testing.assert_array_equal(comp[i].numpy(), want)
            assert int(pixels[i]) == want.sum()


def test_diagonal_steps_join_runs_and_empty_frames_have_none():
    # a staircase joined only corner to corner (both diagonals), beside a bigger-looking
    # but separate 2x3 block; the staircase (7 px) wins over the block (6 px)
    m = torch.zeros(2, 8, 12)
    for y, x in [(0, 0), (1, 1), (2, 2), (3, 3), (4, 2), (5, 1), (6, 0)]:
        m[0, y, x] = 1
    m[0, 0:2, 8:11] = 1
    comp, pixels = largest_component(m)
    assert pixels.tolist() == [7, 0]
    assert comp[0, :, :5].sum() == 7 and not comp[0, :, 8:].any() and not comp[1].any()
