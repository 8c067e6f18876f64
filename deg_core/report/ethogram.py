"""Ethogram pictures: labels above predictions, one band per behaviour, over time."""

from __future__ import annotations

import numpy as np

# distinguishable colours (Okabe-Ito), cycled for many behaviours
_COLOURS = np.array(
    [
        [230, 159, 0],
        [86, 180, 233],
        [0, 158, 115],
        [213, 94, 0],
        [204, 121, 167],
        [0, 114, 178],
        [240, 228, 66],
    ],
    dtype=np.uint8,
)
_UNLABELLED = np.array([200, 200, 200], np.uint8)
_ABSENT = np.array([255, 255, 255], np.uint8)


def ethogram_image(
    rows: list[tuple[str, np.ndarray]], width: int = 1200, band: int = 14, gap: int = 3
) -> np.ndarray:
    """(H, width, 3) uint8 image; each row is (name, (T, K) {1,0,-1} matrix) drawn as K bands.

    Rows are stacked (e.g. labels then predictions); behaviour k is colour k, absent is
    white, unlabelled (-1) is grey; time is resampled to ``width`` pixels.
    """
    t = max(len(m) for _, m in rows)
    cols = np.minimum((np.arange(width) * t) // width, t - 1)
    bands = []
    for _, matrix in rows:
        for k in range(matrix.shape[1]):
            v = matrix[cols, k]
            img = np.where((v == 1)[:, None], _COLOURS[k % len(_COLOURS)], _ABSENT)
            img[v == -1] = _UNLABELLED
            bands.append(np.repeat(img[None], band, axis=0))
            bands.append(np.full((1, width, 3), 255, np.uint8))
        bands.append(np.full((gap * 3, width, 3), 90, np.uint8))  # separates the rows
    return np.concatenate(bands[:-1])
