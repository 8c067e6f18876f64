"""Clip colour jitter (deg_core.data.color): torchvision's brightness, contrast and saturation,
hue as a chroma rotation, one draw per clip."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from deg_core.data.color import GREY, ClipColorJitter, grey, hue_matrix


@pytest.mark.parametrize(
    ("b", "c", "s"), [(0.25, 0.0, 0.0), (0.0, 0.3, 0.0), (0.0, 0.0, 0.4), (0.25, 0.1, 0.1)]
)
def test_brightness_contrast_saturation_are_torchvisions(b, c, s):
    clip = torch.rand(3, 3, 16, 20)
    for seed in range(5):  # the same draws from the same generator, in any step order
        torch.manual_seed(seed)
        ours = ClipColorJitter(b, c, s, 0.0)(clip)
        torch.manual_seed(seed)
        theirs = v2.ColorJitter(b, c, s, 0.0)(clip)
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_hue_rotation_keeps_greys_and_luma_and_composes():
    torch.testing.assert_close(hue_matrix(0.0), torch.eye(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(hue_matrix(1.0), torch.eye(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        hue_matrix(0.1) @ hue_matrix(0.15), hue_matrix(0.25), atol=1e-5, rtol=0
    )
    m = hue_matrix(0.37)
    torch.testing.assert_close(m @ torch.ones(3), torch.ones(3), atol=1e-5, rtol=0)  # greys
    torch.testing.assert_close(torch.tensor(GREY) @ m, torch.tensor(GREY), atol=1e-5, rtol=0)
    red = torch.tensor([1.0, 0.0, 0.0])
    assert (m @ red - red).abs().max() > 0.3  # colours do turn


def test_one_draw_per_clip_and_range():
    torch.manual_seed(0)
    frame = torch.rand(1, 3, 12, 12)
    clip = frame.expand(7, 3, 12, 12).contiguous()
    jitter = ClipColorJitter(0.5, 0.5, 0.5, 0.5)
    for _ in range(20):
        out = jitter(clip)
        assert out.shape == clip.shape
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        assert torch.equal(out, out[:1].expand_as(out))  # every frame transformed alike
    hue_only = ClipColorJitter(hue=0.5)
    changed = [not torch.allclose(hue_only(clip), clip, atol=1e-3) for _ in range(10)]
    assert any(changed)
    g = grey(clip)
    torch.testing.assert_close(grey(hue_only(g.expand(7, 3, 12, 12))), g, atol=1e-5, rtol=0)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="hue in"):
        ClipColorJitter(hue=0.7)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        ClipColorJitter(0.1)(torch.rand(3, 8, 8))
