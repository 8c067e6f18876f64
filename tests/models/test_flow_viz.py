"""Flow pictures: colour coding, legend, PNG figures."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from deg_core.models.flow import (
    flow_figure,
    flow_to_rgb,
)
from deg_core.models.flow.viz import colour_wheel_legend, encode_png
from tests.models.flow_clips import (
    PNG_SIGNATURE,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --------------------------------------------------------------------------- viz


def test_flow_to_rgb_basics():
    zero = flow_to_rgb(np.zeros((2, 5, 7), np.float32))
    assert zero.shape == (5, 7, 3)
    assert zero.dtype == np.uint8
    assert (zero == 255).all()  # zero flow is white

    right = np.zeros((2, 4, 4), np.float32)
    right[0] = 1.0
    r = flow_to_rgb(right)[0, 0].astype(int)
    left = flow_to_rgb(-right)[0, 0].astype(int)
    down = flow_to_rgb(torch.from_numpy(np.stack((right[1], right[0]))))[0, 0].astype(int)
    assert np.abs(r - left).sum() > 200
    assert np.abs(r - down).sum() > 200
    assert tuple(r) == (255, 0, 0)  # Middlebury: rightwards motion is red
    # magnitude controls saturation; beyond max_magnitude colours darken
    half = flow_to_rgb(right, max_magnitude=2.0)[0, 0].astype(int)
    assert half.min() > r.min()
    assert flow_to_rgb(right, max_magnitude=0.5)[0, 0].max() < 255
    with pytest.raises(ValueError, match=r"\(2, h, w\)"):
        flow_to_rgb(np.zeros((3, 4, 4)))


def test_colour_wheel_legend():
    legend = colour_wheel_legend(33)
    assert legend.shape == (33, 33, 3)
    assert (legend[16, 16] >= 250).all()  # centre = zero flow = white
    assert len({tuple(legend[16, 30]), tuple(legend[16, 2]), tuple(legend[30, 16])}) == 3


def test_flow_figure_writes_png(tmp_path):
    n, h, w = 4, 24, 32
    frames = np.random.default_rng(0).integers(0, 255, (n, h, w, 3), dtype=np.uint8)
    flows = np.random.default_rng(1).normal(size=(n - 1, 2, h // 2, w // 2)).astype(np.float32)
    path = tmp_path / "flows.png"
    fig = flow_figure(frames, flows, path)
    pad = 4
    assert fig.shape == (2 * h + 3 * pad, n * w + (n + 1) * pad, 3)
    assert fig.dtype == np.uint8
    np.testing.assert_array_equal(fig[pad : pad + h, pad : pad + w], frames[0])
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary behind
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow normally comes with torchvision
        return
    with Image.open(io.BytesIO(data)) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), fig)
    with pytest.raises(ValueError, match="N-1"):
        flow_figure(frames, flows[:2])


def test_encode_png_greyscale_roundtrip():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data = encode_png(img)
    assert data.startswith(PNG_SIGNATURE)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        return
    with Image.open(io.BytesIO(data)) as im:
        np.testing.assert_array_equal(np.asarray(im), img)
