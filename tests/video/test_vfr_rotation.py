"""Variable frame rates and rotated videos: seconds go through each frame's time, and a
phone's display matrix turns the frames as every player shows them."""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from deg_core.cli import main
from deg_core.errors import VideoError
from deg_core.interop.boris import export_boris, import_boris
from deg_core.labels.labels import Labels
from deg_core.video import open_video, probe_video
from deg_core.video.clock import FrameClock

N = 98
# a screen recorder's steps: bursts of 20 ms frames, then 50 ms ones (mean ~28.7 fps)
STEPS_MS = np.where((np.arange(N - 1) // 10) % 2 == 0, 20, 50)
TIMES = np.concatenate([[0.0], np.cumsum(STEPS_MS) / 1000.0])


def _frame(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : 10 + (i % 20)] = 255  # a bar from the left edge, its width counts frames
    return rgb


def write_vfr(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(N):
            frame = av.VideoFrame.from_ndarray(_frame(i), format="rgb24")
            frame.pts, frame.time_base = int(TIMES[i] * 1000 + 0.5), Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def write_rotated(path: Path, degrees: float, n: int = 12) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(degrees)
        for i in range(n):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(_frame(i), format="rgb24")))
        out.mux(stream.encode())
    return path


@pytest.fixture
def vfr_project(project, tmp_path, capsys):
    video = write_vfr(tmp_path / "screen.mp4")
    assert main(["add-videos", str(project.root), str(video)]) == 0
    out = capsys.readouterr().out
    assert "variable frame rate (frame steps 20.0 to 50.0 ms)" in out, out
    return project


def test_clock_converts_through_frame_times():
    clock = FrameClock(30.0, TIMES)
    assert float(clock) == 30.0 and clock.variable
    for i in (0, 1, 9, 10, 11, 50, 97):
        assert clock.frame_at(TIMES[i]) == i
        assert clock.seconds(i) == pytest.approx(TIMES[i])
    # nearest frame, halfway to the later one; past the end counts on at the last step
    assert clock.frame_at((TIMES[10] + TIMES[11]) / 2) == 11
    assert clock.frame_at(TIMES[10] + 0.001) == 10
    assert clock.frame_at(TIMES[-1] + 0.050) == N
    assert clock.seconds(N) == pytest.approx(TIMES[-1] + 0.050)
    np.testing.assert_allclose(clock.seconds(np.arange(N)), TIMES)
    cfr = FrameClock(30.0)
    assert cfr.frame_at(0.5) == 15 and cfr.seconds(15) == pytest.approx(0.5)


def test_add_videos_keeps_a_vfr_videos_frame_times(vfr_project):
    rec = vfr_project.record("screen")
    assert rec.frame_times == "screen_frame_times.csv"
    assert (rec.folder / rec.frame_times).is_file()
    clock = rec.clock()
    assert clock.variable
    np.testing.assert_allclose(clock.times, TIMES, atol=1e-6)
    assert probe_video(rec.video).variable_fps


def test_boris_events_land_on_the_frames_shown_at_their_times(vfr_project, tmp_path):
    """A state from frame 60's time to frame 80's: at the mean rate it would start frames
    early (the issue measured 140 ms in 98 frames); through the frame times it is exact."""
    start, stop = TIMES[60], TIMES[80]
    mean_fps = (N - 1) / TIMES[-1]
    assert int(np.floor(start * mean_fps + 0.5)) != 60  # the old conversion misses
    header = (
        "Observation id,Observation date,Description,Observation duration,Observation type,"
        "Source,Time offset (s),Media duration (s),FPS,Subject,Behavior,Behavioral category,"
        "Behavior type,Time,Media file name,Image index,Image file path,Comment\n"
    )
    common = "screen,2024-05-02 10:15:00,,3.0,Media file(s),player #1:/d/screen.mp4,0.000,3.0,"
    rows = [
        f"{common}28.7,,groom,,START,{start:.3f},/d/screen.mp4,NA,NA,\n",
        f"{common}28.7,,groom,,STOP,{stop:.3f},/d/screen.mp4,NA,NA,\n",
    ]
    path = tmp_path / "events.csv"
    path.write_text(header + "".join(rows))
    import_boris(vfr_project, "screen", path)
    labels = vfr_project.labels("screen")
    on = np.flatnonzero(labels.array[:, labels.behaviors.index("groom")] == 1)
    assert on[0] == 60 and on[-1] in (79, 80), on


def test_boris_export_writes_frame_times(vfr_project, tmp_path):
    labels = Labels.empty(N, vfr_project.behaviors)
    labels.array[:] = 0
    labels.array[30:45, 0] = 1
    vfr_project.save_labels("screen", labels)
    (path,), _ = export_boris(vfr_project, ["screen"], out_dir=tmp_path / "out")
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    times = {r["Status"] if "Status" in r else r["Behavior type"]: float(r["Time"]) for r in rows}
    assert times["START"] == pytest.approx(TIMES[30], abs=1e-3)
    assert times["STOP"] == pytest.approx(TIMES[45], abs=1e-3)


def test_nwb_carries_the_frame_times(vfr_project, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    from deg_core.interop.nwb import export_nwb

    labels = Labels.empty(N, vfr_project.behaviors)
    labels.array[:] = 0
    labels.array[30:45, 0] = 1
    vfr_project.save_labels("screen", labels)
    (path,) = export_nwb(vfr_project, ["screen"], out_dir=tmp_path / "out")
    with pynwb.NWBHDF5IO(str(path), "r") as io_:
        nwb = io_.read()
        np.testing.assert_allclose(nwb.acquisition["video"].timestamps[:], TIMES, atol=1e-6)
        bouts = nwb.intervals["behavior_labels"]
        assert bouts["start_time"][0] == pytest.approx(TIMES[30], abs=1e-6)
        assert bouts["stop_time"][0] == pytest.approx(TIMES[45], abs=1e-6)


def test_a_phone_videos_rotation_is_honoured(project, tmp_path, capsys):
    video = write_rotated(tmp_path / "phone.mp4", -90)
    reader = open_video(video)
    assert (reader.info.width, reader.info.height, reader.info.rotation) == (48, 64, -90)
    frames = reader.get_batch([0, 5])
    assert frames.shape == (2, 64, 48, 3)
    # shown turned clockwise: the bar at the stored frame's left edge is along the top
    assert frames[0, :8].mean() > 200 and frames[0, -8:].mean() < 50
    assert main(["add-videos", str(project.root), str(video)]) == 0
    out = capsys.readouterr().out
    assert "48x64" in out and "turned by -90 degrees" in out
    rec = project.record("phone")
    assert (rec.width, rec.height, rec.rotation) == (48, 64, -90)
    with open_video(rec.video) as again:
        np.testing.assert_array_equal(again.get_batch([0, 5]), frames)


def test_a_tilted_display_matrix_is_one_line(tmp_path):
    video = write_rotated(tmp_path / "tilted.mp4", 45)
    with pytest.raises(VideoError, match="quarter turns") as err:
        probe_video(video)
    assert "\n" not in str(err.value) and str(video) in str(err.value)
