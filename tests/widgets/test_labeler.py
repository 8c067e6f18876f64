"""Labeler (Python side): traits, every message type, saving, journal, conflicts, errors."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from deg_core.labels.labels import Labels, read_labels, write_labels
from deg_core.project.outputs import writing_group
from deg_core.video import open_video
from deg_widgets.label_review import next_uncertain
from deg_widgets.labeler import Labeler
from tests.conftest import snapshot

T = 60
GROUP = "240101_000000_sequence_tgmj"  # an outputs.h5 group of a sequence run


@pytest.fixture
def vp(project, make_video):
    """The conftest project (groom, rear): video a (labelled 0..39), b (no labels)."""
    for name, seed in (("a.mp4", 0), ("b.mp4", 1)):
        project.add_video(make_video(name, n=T, seed=seed))
    arr = np.full((T, 2), -1, np.int8)
    arr[:40] = 0
    arr[10:20, 0] = 1
    arr[25:30, 1] = 1
    project.save_labels("a", Labels(["groom", "rear"], arr))
    return project


@pytest.fixture
def make(vp):
    made: list[Labeler] = []

    def _make(video="a", **kw):
        kw.setdefault("autosave", False)
        w = Labeler(vp, video, **kw)
        w.sent = []
        w.send = lambda content, buffers=None: w.sent.append((content, buffers))
        made.append(w)
        return w

    yield _make
    for w in made:
        if w.server is not None:
            w.server.close()  # not close(): that would save what a test left unsaved


def msg(w, **content):
    w._handle_custom_msg(content, [])  # the ipywidgets entry point of front-end messages


def jpeg_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def labels_of(w):
    return np.frombuffer(w.labels, np.int8).reshape(w.n_frames, len(w.behaviors))


def on_disk(vp, key="a"):
    return read_labels(vp.record(key).labels_path, vp.behaviors, T).array


def wait_for(cond, timeout=3.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def add_predictions(vp, key="a", csv=True):
    """P of a sequence run in outputs.h5 (+ the predictions CSV); returns (P, thr, pred)."""
    rec = vp.record(key)
    rng = np.random.default_rng(3)
    p = rng.random((T, 2)).astype(np.float32)
    thr = np.array([0.5, 0.7], np.float32)
    with writing_group(rec.outputs_path, GROUP, vp.behaviors, thr, video=key) as g:
        g.create_dataset("P", data=p)
        g.create_dataset("logits", data=p)
    pred = (p >= thr).astype(np.int8)
    if csv:
        pred[:5] = 1  # the cleaned CSV differs from P >= thr: it must win
        write_labels(rec.predictions_path, Labels(vp.behaviors, pred))
    return p, thr, pred


# ------------------------------------------------------------------ opening


def test_traits_on_open(vp, make):
    w = make()
    assert w.videos == ["a", "b"] and w.video == "a"
    assert w.behaviors == ["groom", "rear"] and w.n_frames == T
    assert (w.frame_width, w.frame_height) == (64, 48) and w.fps == pytest.approx(30)
    assert np.array_equal(labels_of(w), on_disk(vp))
    assert not w.dirty and not w.can_undo and not w.can_redo and w.frame == 0
    assert not w.has_predictions and w.probs == b"" and w.predicted == b"" and w.thresholds == []
    assert w.error == "" and not w.lock_conflict and not w.debug_timing
    assert w._esm and w.trait_metadata("labels", "sync")


def test_predictions_traits(vp, make):
    p, thr, pred = add_predictions(vp)
    w = make()
    assert w.has_predictions and w.thresholds == pytest.approx(thr.tolist())
    probs = np.frombuffer(w.probs, np.uint8).reshape(T, 2)
    assert np.array_equal(probs, np.rint(p * 255).astype(np.uint8))
    assert np.array_equal(np.frombuffer(w.predicted, np.int8).reshape(T, 2), pred)
    vp.record("a").predictions_path.unlink()  # no CSV: P >= thresholds
    w2 = make()
    got = np.frombuffer(w2.predicted, np.int8).reshape(T, 2)
    assert np.array_equal(got, (p >= thr).astype(np.int8))


def test_unknown_kwargs_and_bad_video_at_construction(vp):
    with pytest.raises(TypeError, match="vidoe"):
        Labeler(vp, vidoe="a")
    with pytest.raises(Exception, match="no video 'zz'"):
        Labeler(vp, "zz")


# ------------------------------------------------------------------ frames


def test_frames_message_replies_with_jpegs_of_those_frames(vp, make):
    w = make(frame_size=512)
    msg(w, type="frames", req=7, indices=[3, 4, 50])
    got = {}
    for content, buffers in w.sent:
        assert content["type"] == "frames" and content["req"] == 7
        assert len(content["indices"]) == len(buffers)
        got.update(zip(content["indices"], buffers, strict=True))
    assert sorted(got) == [3, 4, 50]
    frames = open_video(vp.record("a").video).read_range(0, T).astype(int)
    for i, data in got.items():
        img = jpeg_rgb(data).astype(int)
        assert img.shape == (48, 64, 3)
        moved = np.abs(frames[i] - frames[i + 5]).max(axis=2) > 40
        err = np.abs(img - frames[i])[moved].mean()
        assert err < np.abs(img - frames[i + 5])[moved].mean() / 3
    assert w.frame_jpeg(50) == got[50]
    small = make(frame_size=32)
    assert jpeg_rgb(small.frame_jpeg(0)).shape == (24, 32, 3)


def test_frames_message_with_bad_index_reports(make):
    w = make()
    msg(w, type="frames", req=1, indices=[T])
    assert "out of range" in w.error and w.sent == []


# ------------------------------------------------------------------ editing messages


def test_edit_messages_undo_redo(vp, make):
    w = make()
    orig = labels_of(w).copy()
    msg(w, type="set", behavior=1, start=45, stop=50, value=1, group="r1")
    msg(w, type="set", behavior=1, start=45, stop=55, value=1, group="r1")
    msg(w, type="toggle", behavior=0, frame=45)
    lab = labels_of(w)
    assert lab[45:55, 1].tolist() == [1] * 10 and lab[45, 0] == 1 and lab[44, 1] == -1
    assert w.dirty and w.can_undo and not w.can_redo
    msg(w, type="undo")
    msg(w, type="undo")  # the recording was one step
    assert np.array_equal(labels_of(w), orig) and w.can_redo and not w.dirty
    assert w.status == "undid set"
    msg(w, type="redo")
    assert labels_of(w)[45:55, 1].tolist() == [1] * 10
    msg(w, type="set", behavior=-1, start=0, stop=T, value=-1)
    assert (labels_of(w) == -1).all() and not w.can_redo
    assert np.array_equal(on_disk(vp), orig)  # autosave off: nothing written yet
    msg(w, type="save")
    assert (on_disk(vp) == -1).all() and not w.dirty and w.saved_at and w.error == ""


def test_autosave_writes_the_csv_atomically_after_a_pause(vp, make):
    w = make(autosave=True, autosave_delay=0.05)
    msg(w, type="toggle", behavior=1, frame=2)
    assert w.dirty and on_disk(vp)[2, 1] == 0  # not at once
    wait_for(lambda: not w.dirty)
    assert on_disk(vp)[2, 1] == 1 and w.saved_at
    assert not list(vp.record("a").folder.glob(".*tmp"))
    assert not w.session.journal.path.exists()


def test_finalize_saves_and_import_predictions(vp, make):
    *_, pred = add_predictions(vp)
    w = make()
    orig = labels_of(w).copy()
    msg(w, type="import_predictions", overwrite=False)
    assert np.array_equal(labels_of(w), np.where(orig == -1, pred, orig))
    assert "imported" in w.status
    msg(w, type="undo")
    msg(w, type="import_predictions", overwrite=True)
    assert np.array_equal(labels_of(w), pred)
    msg(w, type="undo")
    assert np.array_equal(labels_of(w), orig)
    msg(w, type="finalize")
    assert np.array_equal(on_disk(vp), np.where(orig == -1, 0, orig)) and not w.dirty
    assert w.status.startswith("finalized")


def test_import_without_predictions_reports(vp, make):
    w = make()
    before = snapshot(vp.root)
    msg(w, type="import_predictions", overwrite=False)
    assert "no predictions" in w.error and snapshot(vp.root) == before


# ------------------------------------------------------------------ seeks


def test_seek_messages(vp, make):
    p, thr, _ = add_predictions(vp, csv=False)
    w = make()
    msg(w, type="seek", target="next_bout", behavior=0, direction=1)
    assert w.frame == 10 and "groom" in w.status
    msg(w, type="seek", target="next_bout", behavior=None, direction=1)
    assert w.frame == 25
    msg(w, type="seek", target="prev_bout", behavior=None, direction=-1)
    assert w.frame == 10
    msg(w, type="seek", target="prev_bout", behavior=0, direction=-1)
    assert w.frame == 10 and w.status == "no previous bout of groom"
    w.frame = 0
    msg(w, type="seek", target="uncertain", behavior=None, direction=1)
    assert w.frame == next_uncertain(p, thr, 0) and "uncertain" in w.status
    w.frame = 0
    msg(w, type="seek", target="disagree", behavior=None, direction=1)
    lab, pred = labels_of(w), np.frombuffer(w.predicted, np.int8).reshape(T, 2)
    differ = ((lab != -1) & (lab != pred)).any(axis=1)
    starts = [t for t in range(1, T) if differ[t] and not differ[t - 1]]
    assert w.frame == starts[0]
    assert w.error == ""


def test_seek_without_predictions_says_so(make):
    w = make("b")  # no labels, no predictions
    msg(w, type="seek", target="uncertain", behavior=None, direction=1)
    assert w.status == "no model probabilities for this video" and w.frame == 0
    msg(w, type="seek", target="next_bout", behavior=1, direction=1)
    assert w.status == "no next bout of rear" and w.frame == 0


def test_frame_is_clamped(make):
    w = make()
    w.frame = 10_000
    assert w.frame == T - 1
    w.frame = -3
    assert w.frame == 0


# ------------------------------------------------------------------ journal, conflicts, videos


def test_journal_replay_after_a_crash(vp, make):
    w = make()
    msg(w, type="set", behavior=1, start=50, stop=58, value=1)
    msg(w, type="toggle", behavior=0, frame=0)
    expected = labels_of(w).copy()
    w.server.close()  # the kernel dies: no save, no close()
    w2 = make()
    assert np.array_equal(labels_of(w2), expected) and w2.dirty and w2.can_undo
    assert "restored 2 unsaved edit(s)" in w2.status
    msg(w2, type="save")
    assert np.array_equal(on_disk(vp), expected)


def test_two_labelers_conflict(vp, make):
    a, b = make(), make()
    msg(a, type="set", behavior=0, start=40, stop=45, value=1)
    msg(b, type="set", behavior=1, start=50, stop=55, value=1)
    msg(a, type="save")
    a_file = vp.record("a").labels_path.read_bytes()
    msg(b, type="save")
    assert b.lock_conflict and b.dirty
    assert "changed on disk since this Labeler loaded it" in b.error
    assert "reload()" in b.error and "save(force=True)" in b.error
    assert vp.record("a").labels_path.read_bytes() == a_file
    msg(b, type="reload")
    assert not b.lock_conflict and b.error == ""
    merged = labels_of(b)
    assert merged[40:45, 0].tolist() == [1] * 5 and merged[50:55, 1].tolist() == [1] * 5
    b.save()
    assert np.array_equal(on_disk(vp), merged)
    msg(a, type="toggle", behavior=1, frame=0)
    a.save()
    assert a.lock_conflict
    a.save(force=True)
    assert not a.lock_conflict and on_disk(vp)[0, 1] == 1 and on_disk(vp)[50, 1] == -1


def test_video_switch_saves_the_old_video(vp, make):
    w = make()
    msg(w, type="toggle", behavior=0, frame=50)
    w.video = "b"  # as the front end does
    assert on_disk(vp, "a")[50, 0] == 1
    assert w.video == "b" and (labels_of(w) == -1).all() and not w.dirty and w.frame == 0
    assert w.error == ""


def test_close_saves(vp, make):
    w = make()
    msg(w, type="toggle", behavior=0, frame=50)
    w.close()
    assert on_disk(vp)[50, 0] == 1 and w.server is None


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"type": "set", "behavior": 2, "start": 0, "stop": 5, "value": 1}, "behaviour index 2"),
        ({"type": "toggle", "behavior": 0, "frame": T}, f"frame {T} out of range"),
        ({"type": "toggle", "behavior": 0}, "lacks 'frame'"),
        ({"type": "seek", "target": "sideways", "direction": 1}, "unknown seek target"),
        ({"type": "launch"}, "unknown message type 'launch'"),
    ],
)
def test_bad_messages_show_one_error_and_change_nothing(vp, make, content, match):
    w = make(autosave=True, autosave_delay=0.01)
    before, lab = snapshot(vp.root), labels_of(w).copy()
    w._handle_custom_msg(content, [])
    assert match in w.error and "\n" not in w.error
    time.sleep(0.05)
    assert snapshot(vp.root) == before and np.array_equal(labels_of(w), lab)
    msg(w, type="undo")  # the next good request clears the banner
    assert w.error == ""


def test_unknown_video_key_shows_an_error_and_keeps_the_video(vp, make):
    w = make()
    msg(w, type="toggle", behavior=0, frame=50)
    before = snapshot(vp.root)
    w.video = "nope"
    assert "no video 'nope'" in w.error and w.video == "a" and w.dirty
    assert snapshot(vp.root) == before


def test_autosave_runs_on_the_kernels_event_loop(vp, make):
    import asyncio

    async def edit_and_wait():
        w = make(autosave=True, autosave_delay=0.02)
        msg(w, type="toggle", behavior=1, frame=2)
        assert isinstance(w._autosaver._handle, asyncio.TimerHandle)  # no thread in a kernel
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not w.dirty:
                break
        return w

    w = asyncio.run(edit_and_wait())
    assert not w.dirty and on_disk(vp)[2, 1] == 1


def test_unreadable_outputs_still_open_the_labels(vp, make):
    vp.record("a").outputs_path.write_bytes(b"not hdf5")
    write_labels(vp.record("a").predictions_path, Labels(["x", "y"], np.zeros((T, 2), np.int8)))
    w = make()
    assert not w.has_predictions and "predictions not shown" in w.status
    assert np.array_equal(labels_of(w), on_disk(vp)) and w.error == ""
