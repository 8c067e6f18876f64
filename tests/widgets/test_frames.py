"""FrameServer: JPEGs match the reader's frames, cache, run decoding, prefetch, errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from deg_core.video import open_video, resize_frames
from deg_widgets.frames import FrameServer, _block, _runs, fit_size


def jpeg_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture
def video(make_video):
    return make_video("v.mp4", n=80, h=48, w=64)


@pytest.fixture
def server(video):
    s = FrameServer(video, max_edge=512, quality=90, prefetch=(0, 0))
    yield s
    s.close()


def test_fit_size():
    assert fit_size(480, 640, 512) == (384, 512)
    assert fit_size(1070, 1064, 512) == (512, 509)
    assert fit_size(48, 64, 512) == (48, 64)  # never upscaled
    assert fit_size(10, 4000, 100) == (1, 100)


def test_jpeg_is_the_readers_frame(server, video):
    frames = open_video(video).read_range(0, 80)
    for i in (0, 17, 79):
        img = jpeg_rgb(server.jpeg(i)).astype(int)
        assert img.shape == (48, 64, 3)
        assert np.abs(img - frames[i]).mean() < 6  # JPEG of a noisy frame
        # where frame i and frame i+5 differ (the moving square), it looks like frame i
        other = frames[(i + 5) % 80].astype(int)
        moved = np.abs(frames[i] - other).max(axis=2) > 40
        err = np.abs(img - frames[i])[moved].mean()
        assert err < np.abs(img - other)[moved].mean() / 3, err


def test_resized_to_the_longer_edge(video):
    s = FrameServer(video, max_edge=32, prefetch=(0, 0))
    try:
        img = jpeg_rgb(s.jpeg(3)).astype(int)
        assert img.shape == (24, 32, 3) and s.size == (24, 32)
        small = resize_frames(open_video(video).get_batch([3]), (24, 32))[0]
        assert np.abs(img - small).mean() < 5
    finally:
        s.close()


def test_cache_and_runs_decoded_in_one_pass(server, monkeypatch):
    calls = []
    decode = server._decode
    monkeypatch.setattr(server, "_decode", lambda run: calls.append(run) or decode(run))
    parts = list(server.serve([5, 3, 4, 40, 44, 3]))
    assert calls == [[3, 4, 5], [40, 44]]  # neighbours together; 40 and 44 share a pass
    assert [sorted(p) for p in parts] == [[3, 4, 5], [40, 44]]
    parts = list(server.serve([4, 41, 40]))  # cached first, in one part, then the rest
    assert [sorted(p) for p in parts] == [[4, 40], [41]] and calls[-1] == [41]
    assert server.jpegs([40, 40, 4]) == [server.jpeg(40)] * 2 + [server.jpeg(4)]


def test_runs_and_blocks():
    assert _runs([9, 1, 2, 30, 3, 16], 6) == [[1, 2, 3, 9], [16], [30]]
    assert _block([10, 11, 12, 13, 14, 15], 4) == [10, 11, 12, 13]
    assert _block([9, 8, 7, 6, 5], 3) == [7, 8, 9]  # behind the playhead: downwards


def test_prefetch_fills_around_the_playhead(video):
    s = FrameServer(video, prefetch=(10, 3))
    try:
        s.hint(40)
        assert s.idle()
        assert all(i in s.cache for i in range(37, 51))
        assert 36 not in s.cache and 51 not in s.cache
        s.hint(75, playing_speed=1.0)  # ahead grows while playing; clipped at the end
        assert s.idle()
        assert all(i in s.cache for i in range(72, 80))
    finally:
        s.close()


def test_bad_indices_and_closed_server(video):
    s = FrameServer(video, prefetch=(0, 0))
    with pytest.raises(IndexError, match=r"frame 80 out of range \[0, 80\)"):
        s.jpeg(80)
    with pytest.raises(TypeError, match="must be an int"):
        s.jpeg(1.5)  # type: ignore[arg-type]
    s.jpeg(0)
    s.close()
    with pytest.raises(RuntimeError, match="closed"):
        s.jpeg(1)
    with pytest.raises(ValueError, match="quality"):
        FrameServer(video, quality=0)


def test_request_reuses_frames_prefetched_while_it_waited(server, monkeypatch):
    server.jpeg(3)
    calls = []
    decode = server._decode
    monkeypatch.setattr(server, "_decode", lambda run: calls.append(run) or decode(run))
    got = server._job([3, 4])  # 3 was cached after the request queued: not decoded again
    assert calls == [[4]] and list(got) == [3, 4] and got[3] == server.jpeg(3)
