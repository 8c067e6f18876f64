"""Video reading: random access must equal a sequential decode, bit for bit.

The reference for every comparison is an independent plain PyAV pass
(``container.decode`` + ``to_ndarray("rgb24")``), not the reader under test.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import signal
from pathlib import Path

import av
import numpy as np
import pytest

from deg_core.errors import VideoError
from deg_core.video import (
    VideoInfo,
    channel_stats,
    file_checksum,
    open_video,
    probe_video,
    resize_frames,
    write_video,
)
from deg_core.video.decord import decord_available
from deg_core.video.pyav import PyAVReader

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
REAL_VIDEOS = {
    "openfield": (SHARED / "openfield_mouse_640x480_30fps.mp4", 2330, 640, 480),
    "arena": (SHARED / "arena_mouse_1064x1070_25fps.mp4", 749, 1064, 1070),
}
# decord is an optional extra (`uv sync --extra decord`); its tests skip without it
needs_decord = pytest.mark.skipif(not decord_available(), reason="decord not installed")
BACKENDS = ["pyav", "decord"] if decord_available() else ["pyav"]


def pattern(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """(n, h, w, 3) uint8 gradients that shift with the frame index: every frame differs."""
    yy, xx = np.mgrid[0:h, 0:w]
    t = np.arange(n)[:, None, None]
    return np.stack(
        [(xx * 4 + t * 7) % 256, (yy * 5 + t * 3) % 256, ((xx + yy) * 2 + t * 13) % 256], axis=-1
    ).astype(np.uint8)


def reference(path: Path) -> np.ndarray:
    """(T, H, W, 3) uint8: a plain sequential PyAV decode."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def frame_hash(frame: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(frame).tobytes(), digest_size=12).hexdigest()


# kind -> file name, frame count n, size h x w (default 48x64), write_video kwargs.
# gop=16 gives several key frames; x264 keeps its default 3 B-frames.
KINDS = {
    "h264": dict(name="h264.mp4", n=90, kw=dict(gop=16)),
    "open_gop": dict(name="open.mp4", n=90, kw=dict(gop=16, options={"x264-params": "open-gop=1"})),
    "odd_444": dict(name="odd.mp4", n=60, h=47, w=63, kw=dict(gop=16, pix_fmt="yuv444p")),
    "gray_ffv1": dict(name="gray.mkv", n=40, gray=True, kw=dict(codec="ffv1", pix_fmt="gray")),
    "vfr": dict(name="vfr.mp4", n=70, kw=dict(gop=16), vfr=True),
    "mpeg4_avi": dict(name="m4.avi", n=50, kw=dict(codec="mpeg4", gop=12)),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, tuple[Path, np.ndarray]]:
    """kind -> (path, reference decode)."""
    root = tmp_path_factory.mktemp("videos")
    out = {}
    for kind, spec in KINDS.items():
        frames = pattern(spec["n"], spec.get("h", 48), spec.get("w", 64))
        if spec.get("gray"):
            frames = frames[..., 0]
        kw = dict(spec["kw"])
        if spec.get("vfr"):
            steps = np.random.default_rng(0).uniform(0.01, 0.09, spec["n"])
            kw["timestamps"] = np.concatenate([[0.0], np.cumsum(steps[1:])]).tolist()
        path = write_video(root / spec["name"], frames, fps=30, **kw)
        out[kind] = (path, reference(path))
    return out


# -- exact random access --------------------------------------------------------------

# decord cannot seek in open GOPs: see test_decord_is_refused_where_it_returns_wrong_frames
CASES = [
    pytest.param(k, b, marks=[needs_decord] if b == "decord" else [])
    for k in KINDS
    for b in ("pyav", "decord")
    if (k, b) != ("open_gop", "decord")
]


@pytest.mark.parametrize("size", [None, (32, 40)])
@pytest.mark.parametrize(("kind", "backend"), CASES)
def test_random_access_equals_sequential_decode(videos, kind, backend, size):
    path, ref = videos[kind]
    if size is not None:
        ref = resize_frames(ref, size)
    n = len(ref)
    reader = open_video(path, backend=backend)
    assert len(reader) == n
    keys = PyAVReader.open(path).keyframes
    rng = np.random.default_rng(1)
    batches = [
        [*rng.permutation(n)[:25].tolist(), 0, n - 1, 5, 5, n - 1],  # shuffled, dups, ends
        [n - 1],
        [0],
        [n - 1, 0, n // 2, 1],
        [int(k) for k in keys] + [int(k) - 1 for k in keys if k > 0],  # at/just before keys
    ]
    for idx in batches:
        got = reader.get_batch(idx, size=size)
        assert got.dtype == np.uint8 and got.shape == (len(idx), *ref.shape[1:])
        np.testing.assert_array_equal(got, ref[idx])
    for _ in range(15):  # 11-frame clips, many crossing key frames
        s = int(rng.integers(0, n - 10))
        np.testing.assert_array_equal(reader.read_range(s, s + 11, size=size), ref[s : s + 11])
    chunks = list(reader.iter_chunks(chunk=7, size=size))
    assert [s for s, _ in chunks] == list(range(0, n, 7))
    np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), ref)
    start = int(keys[-1]) - 2 if keys[-1] > 2 else 1
    tail = np.concatenate([c for _, c in reader.iter_chunks(5, size, start=start)])
    np.testing.assert_array_equal(tail, ref[start:])
    reader.close()
    np.testing.assert_array_equal(reader.get_batch([n - 2], size=size), ref[[n - 2]])  # reopens


@needs_decord
def test_decord_is_refused_where_it_returns_wrong_frames(videos):
    """decord returns wrong frames around open-GOP key frames after a seek (the
    exact reader does not); open_video(backend="decord") checks and refuses."""
    with pytest.raises(VideoError, match=r"open\.mp4: decord returns a wrong frame at index"):
        open_video(videos["open_gop"][0], backend="decord")


def test_generated_videos_have_the_expected_structure(videos):
    """The cases above only mean something if the files have B-frames and several GOPs."""
    path = videos["h264"][0]
    with av.open(str(path)) as c:
        packets = [p for p in c.demux(video=0) if p.size]
    assert any(p.pts != p.dts for p in packets)  # reordered: B-frames
    assert sum(p.is_keyframe for p in packets) >= 4
    assert len(PyAVReader.open(videos["open_gop"][0]).keyframes) >= 4


def test_probe_reports_what_a_sequential_decode_yields(videos):
    info = probe_video(videos["h264"][0])
    assert info == VideoInfo(90, 30.0, 64, 48, "h264", False, "pyav")
    odd = probe_video(videos["odd_444"][0])
    assert (odd.width, odd.height, odd.frames) == (63, 47, 60)
    gray = probe_video(videos["gray_ffv1"][0])
    assert (gray.codec, gray.frames, gray.variable_fps) == ("ffv1", 40, False)
    assert gray.fps == pytest.approx(30, rel=0.02)  # mkv stores ms timestamps: 33/34 ms
    vfr = probe_video(videos["vfr"][0])
    assert vfr.variable_fps and vfr.frames == 70
    assert probe_video(videos["mpeg4_avi"][0], decode=False).frames == 50


def test_grayscale_comes_back_as_rgb(videos):
    path, _ = videos["gray_ffv1"]
    frames = open_video(path).get_batch([0, 39])
    assert frames.shape == (2, 48, 64, 3)
    np.testing.assert_array_equal(frames[..., 0], frames[..., 1])
    np.testing.assert_array_equal(frames[..., 0], pattern(40)[[0, 39], ..., 0])  # lossless


def test_exact_without_timestamps_and_when_seeks_miss(videos, monkeypatch):
    """The slow fallbacks are exact too: frames counted from the start (no usable
    timestamps), and decoding from the start when the demuxer lands on a wrong frame."""
    path, ref = videos["h264"]
    r = PyAVReader.open(path)
    counting = PyAVReader(path, r.info, np.arange(len(r)), np.zeros(1, np.int64), by_pts=False)
    idx = [70, 3, 89, 40, 41, 3]
    np.testing.assert_array_equal(counting.get_batch(idx), ref[idx])
    monkeypatch.setattr(PyAVReader, "_seek", lambda self, key: False)
    np.testing.assert_array_equal(PyAVReader.open(path).get_batch(idx), ref[idx])


# -- the interface ---------------------------------------------------------------------


def test_index_and_argument_errors(videos):
    path, _ = videos["h264"]
    reader = open_video(path)
    assert reader.get_batch([]).shape == (0, 48, 64, 3)
    assert reader.get_batch(np.array([], dtype=int), size=(8, 8)).shape == (0, 8, 8, 3)
    for bad in ([90], [-1], [0, 1000]):
        with pytest.raises(IndexError, match=r"h264\.mp4.*out of range \[0, 90\)"):
            reader.get_batch(bad)
    with pytest.raises(IndexError, match="range"):
        reader.read_range(80, 91)
    with pytest.raises(IndexError, match="range"):
        next(reader.iter_chunks(start=5, stop=2))
    with pytest.raises(TypeError):
        reader.get_batch([1.5])
    with pytest.raises(ValueError, match="height, width"):
        reader.get_batch([0], size=(0, 10))
    assert reader.read_range(10, 10).shape == (0, 48, 64, 3)
    assert [s for s, _ in reader.iter_chunks(chunk=64, start=60, stop=75)] == [60]
    with pytest.raises(ValueError, match="backend"):
        open_video(path, backend="opencv")


def test_pickled_reader_reopens_and_reads(videos):
    path, ref = videos["h264"]
    for backend in BACKENDS:
        reader = open_video(path, backend=backend)
        reader.get_batch([50])  # an open decoder mid-file
        copy = pickle.loads(pickle.dumps(reader))
        assert copy.info == reader.info and copy.backend == backend
        np.testing.assert_array_equal(copy.get_batch([3, 77, 3]), ref[[3, 77, 3]])
        np.testing.assert_array_equal(reader.get_batch([51]), ref[[51]])  # original unaffected
        with open_video(path, backend=backend) as fresh:
            copy2 = pickle.loads(pickle.dumps(fresh))  # never opened
        np.testing.assert_array_equal(copy2.get_batch([89]), ref[[89]])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.parametrize("backend", BACKENDS)
def test_reader_inherited_through_fork_reopens(videos, backend):
    """DataLoader workers on Linux are forked: the child has the parent's decoder but
    not its threads, so using that decoder hangs; the reader must reopen instead."""
    path, ref = videos["h264"]
    # one decoding thread: FFmpeg worker threads alive at fork() can hold its internal locks
    # (e.g. the log mutex) forever in the child; that is fork's hazard, not the reader's
    reader = open_video(path, backend=backend, threads=1)
    reader.get_batch([40])  # a live decoder, mid-file
    gc.collect()  # close readers left behind by earlier tests (and their threads)
    pid = os.fork()
    if pid == 0:  # the child: report by exit code, never return into pytest
        signal.alarm(20)  # a hang ends the child (status 14) instead of the test run
        ok = np.array_equal(reader.get_batch([45, 3]), ref[[45, 3]])
        reader.close()
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    np.testing.assert_array_equal(reader.get_batch([41]), ref[[41]])  # parent unaffected


def test_threads_option_does_not_change_frames(videos):
    path, ref = videos["h264"]
    for backend in BACKENDS:
        reader = open_video(path, backend=backend, threads=1)
        np.testing.assert_array_equal(reader.get_batch([60, 2, 33]), ref[[60, 2, 33]])


@needs_decord
def test_decord_backend_reports_itself(videos):
    reader = open_video(videos["h264"][0], backend="decord")
    assert reader.backend == "decord" and reader.info.backend == "decord"
    assert open_video(videos["h264"][0]).info.backend == "pyav"


def test_decord_backend_without_decord_says_how_to_install(videos, monkeypatch):
    monkeypatch.setattr("deg_core.video.decord.decord_available", lambda: False)
    with pytest.raises(VideoError) as err:
        open_video(videos["h264"][0], backend="decord")
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(videos["h264"][0]))
    assert "uv sync --extra decord" in message and "pip install 'deg[decord]'" in message
    assert open_video(videos["h264"][0]).backend == "pyav"  # the default needs nothing


def test_resize_is_one_deterministic_function():
    frames = pattern(6, 47, 63)
    batch = resize_frames(frames, (20, 30))
    singles = np.concatenate([resize_frames(frames[i : i + 1], (20, 30)) for i in range(6)])
    np.testing.assert_array_equal(batch, singles)
    assert batch.shape == (6, 20, 30, 3) and batch.dtype == np.uint8
    assert resize_frames(frames, (47, 63)) is frames


# -- stats and checksums ------------------------------------------------------------------


def test_channel_stats_of_a_constant_colour_are_exact(tmp_path):
    frames = np.broadcast_to(np.array([200, 100, 50], np.uint8), (12, 24, 32, 3))
    path = write_video(tmp_path / "const.mkv", frames, codec="ffv1", pix_fmt="bgr0")  # lossless
    stats = channel_stats(path)
    assert stats["mean"] == [200 / 255, 100 / 255, 50 / 255]
    assert stats["std"] == [0.0, 0.0, 0.0]
    assert stats["n_frames"] == 12


def test_channel_stats_match_numpy_on_sampled_frames(videos):
    path, ref = videos["h264"]
    reader = open_video(path)
    stats = channel_stats(reader, max_frames=20)
    idx = np.unique(np.linspace(0, 89, 20).round().astype(int))
    px = ref[idx].reshape(-1, 3).astype(np.float64) / 255
    assert stats["n_frames"] == len(idx)
    np.testing.assert_allclose(stats["mean"], px.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats["std"], px.std(0), rtol=1e-10)
    full = channel_stats(path, max_frames=500)
    px = ref.reshape(-1, 3).astype(np.float64) / 255
    np.testing.assert_allclose(full["std"], px.std(0), rtol=1e-10)
    assert full["n_frames"] == 90


def test_file_checksum_is_stable(videos, tmp_path):
    path = videos["h264"][0]
    digest = file_checksum(path)
    assert (
        digest == file_checksum(path) == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    )
    assert file_checksum(path, "md5").startswith("md5:")
    with pytest.raises(Exception, match="not found"):
        file_checksum(tmp_path / "missing.mp4")


# -- write_video -----------------------------------------------------------------------------


def test_write_video_is_atomic_and_validates(tmp_path):
    path = tmp_path / "a.mp4"
    write_video(path, pattern(5))
    before = path.read_bytes()
    with pytest.raises(ValueError, match="uint8"):
        write_video(path, (f.astype(np.float32) for f in pattern(5)))
    assert path.read_bytes() == before  # a failed write leaves the old file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]  # no temp files left
    with pytest.raises(ValueError, match="yuv444p"):
        write_video(tmp_path / "odd.mp4", pattern(3, 47, 63))  # odd size needs 4:4:4
    with pytest.raises(ValueError, match="suffix"):
        write_video(tmp_path / "a.xyz", pattern(3))
    with pytest.raises(ValueError, match="timestamps"):
        write_video(tmp_path / "t.mp4", pattern(3), timestamps=[0, 0.1])
    write_video(path, iter(list(pattern(4))), fps=25)  # an iterable replaces the file
    assert probe_video(path).frames == 4 and probe_video(path).fps == 25


# -- bad input ---------------------------------------------------------------------------


def _cut(src: Path, dst: Path, keep: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = write_video(tmp_path / "good.mp4", pattern(120), gop=30)
    fast = write_video(tmp_path / "fast.mp4", pattern(120), gop=30, faststart=True)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    corrupt = tmp_path / "corrupt.mp4"
    data = bytearray(good.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 200] = np.random.default_rng(1).integers(0, 256, 200, np.uint8).tobytes()
    corrupt.write_bytes(bytes(data))
    return {
        "missing": tmp_path / "nope.mp4",
        "directory": tmp_path,
        "text": text,
        "empty": empty,
        "cut_40": _cut(good, tmp_path / "cut40.mp4", 0.4),
        "cut_5": _cut(good, tmp_path / "cut5.mp4", 0.05),
        "faststart_cut_40": _cut(fast, tmp_path / "fcut40.mp4", 0.4),
        "faststart_cut_99": _cut(fast, tmp_path / "fcut99.mp4", 0.995),
        "corrupt": corrupt,
        "zero_frames_mp4": write_video(tmp_path / "zero.mp4", np.zeros((0, 48, 64, 3), np.uint8)),
        "zero_frames_avi": write_video(
            tmp_path / "zero.avi", np.zeros((0, 48, 64, 3), np.uint8), codec="mpeg4"
        ),
    }


EXPECTED = {
    "missing": "file not found",
    "directory": "is a directory",
    "text": "not a readable video",
    "empty": "empty file",
    "cut_40": "truncated or corrupted",
    "cut_5": "truncated or corrupted",
    "faststart_cut_40": "truncated or corrupted",
    "faststart_cut_99": "truncated or corrupted",
    "corrupt": "truncated or corrupted",
    "zero_frames_mp4": "no video stream",
    "zero_frames_avi": "zero-frame video",
}


def test_bad_input_raises_one_line_video_error(tmp_path):
    for name, path in _bad_files(tmp_path).items():
        with pytest.raises(VideoError) as err:
            probe_video(path)
        text = str(err.value)
        assert "\n" not in text and str(path) in text, name
        assert EXPECTED[name] in text, (name, text)
        if name != "corrupt":  # only decoding finds the damage: see below
            with pytest.raises(VideoError, match=EXPECTED[name]):
                open_video(path)


def test_corrupted_frames_raise_when_read(tmp_path):
    """Damage that only decoding reveals: open_video succeeds (it does not decode),
    undamaged frames read fine, and reading a lost frame raises, sequentially or not."""
    path = _bad_files(tmp_path)["corrupt"]
    reader = open_video(path)
    assert len(reader) == 120
    with av.open(str(path)) as c:
        frames = c.decode(video=0)
        first = [next(frames).to_ndarray(format="rgb24") for _ in range(2)]
    np.testing.assert_array_equal(reader.get_batch([0, 1]), np.stack(first))
    with pytest.raises(VideoError, match=r"corrupt\.mp4: truncated or corrupted: frame \d+"):
        list(reader.iter_chunks())
    with pytest.raises(VideoError, match="truncated or corrupted"):
        reader.get_batch(list(range(119, -1, -1)))


# -- real videos -------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=list(REAL_VIDEOS))
def real_video(request):
    """(path, expected frames, width, height, per-frame hashes of a plain sequential decode)."""
    path, n, w, h = REAL_VIDEOS[request.param]
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        hashes = [frame_hash(f.to_ndarray(format="rgb24")) for f in c.decode(stream)]
    return path, n, w, h, hashes


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")
@pytest.mark.parametrize("backend", BACKENDS)
def test_real_video_random_clips_equal_sequential_decode(real_video, backend):
    path, n, w, h, hashes = real_video
    assert len(hashes) == n
    reader = open_video(path, backend=backend)
    assert (len(reader), reader.info.width, reader.info.height) == (n, w, h)
    rng = np.random.default_rng(7)
    for _ in range(30):
        s = int(rng.integers(0, n - 10))
        clip = reader.get_batch(np.arange(s, s + 11))
        assert [frame_hash(f) for f in clip] == hashes[s : s + 11], f"clip at {s}"
    ends = [n - 1, 0, n - 2, n - 1]
    assert [frame_hash(f) for f in reader.get_batch(ends)] == [hashes[i] for i in ends]


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")
def test_real_video_probe_and_sequential_read(real_video):
    path, n, w, h, hashes = real_video
    info = probe_video(path)
    assert (info.frames, info.width, info.height, info.variable_fps) == (n, w, h, False)
    reader = open_video(path)
    start = n - 150
    got = [frame_hash(f) for _, c in reader.iter_chunks(64, start=start) for f in c]
    assert got == hashes[start:]
