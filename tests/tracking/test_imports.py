"""Track imports (deg_core.tracking.imports): SLEAP (the real twoflies .slp), DeepLabCut
predictions (.csv and pandas-table .h5 in DLC's exact header layout), a plain CSV; and every
bad input -> one line naming the file."""

from __future__ import annotations

import pickle
import sys

import h5py
import numpy as np
import pytest

from deg_core.errors import DegError
from deg_core.tracking.imports import LIKELIHOOD, detect_format, read_tracks
from tests.conftest import SHARED_DATA, needs_shared_data

SLP = SHARED_DATA / "twoflies" / "twoflies_sleap_predictions.slp"
SLP_CSV = SHARED_DATA / "twoflies" / "twoflies_sleap_tracks.csv"
VIDEO = {"n_frames": 10, "frame_size": (48, 64), "fps": 30.0}

# ------------------------------------------------------------------ DLC fixtures
# DeepLabCut's predictions: a pandas DataFrame, index = frame number, columns a MultiIndex
# scorer / [individuals /] bodyparts / coords (x, y, likelihood); to_csv writes one header
# row per level, to_hdf(key="df_with_missing", format="table") a PyTables table whose
# column index is pickled into attributes (as DLC's own example CollectedData_*.h5).
SCORER = "DLC_resnet50_pairOct30shuffle1_50000"
PARTS = ("snout", "tailbase")


def _dlc_columns(individuals: list[str] | None) -> list[tuple[str, ...]]:
    who = individuals or [None]
    return [
        (SCORER, *([w] if w else []), part, coord)
        for w in who
        for part in PARTS
        for coord in ("x", "y", "likelihood")
    ]


def _dlc_values(n: int, individuals: list[str] | None) -> np.ndarray:
    """Animal i's snout at (10 + i*20 + t, 10 + t), tailbase 4 px right; frame 3 of the
    first animal has a low-likelihood tailbase, frame 5 nothing above the cutoff."""
    rows = []
    for t in range(n):
        row = []
        for i, _ in enumerate(individuals or [None]):
            x, y = 10 + i * 20 + t, 10 + t
            lik_tail = 0.2 if (i == 0 and t == 3) else 0.9
            lik = 0.1 if (i == 0 and t == 5) else 0.95
            row += [x, y, lik, x + 4, y, min(lik, lik_tail)]
        rows.append(row)
    return np.asarray(rows, np.float64)


def write_dlc_csv(path, n=8, individuals=None):
    cols = _dlc_columns(individuals)
    levels = (
        ["scorer", "individuals", "bodyparts", "coords"]
        if individuals
        else [
            "scorer",
            "bodyparts",
            "coords",
        ]
    )
    lines = [",".join([lev, *(c[k] for c in cols)]) for k, lev in enumerate(levels)]
    values = _dlc_values(n, individuals)
    lines += [",".join([str(t), *(repr(float(v)) for v in row)]) for t, row in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_dlc_h5(path, n=8, individuals=None):
    cols = _dlc_columns(individuals)
    values = _dlc_values(n, individuals)
    nlev = len(cols[0])
    names = (
        ["scorer", "individuals", "bodyparts", "coords"]
        if individuals
        else [
            "scorer",
            "bodyparts",
            "coords",
        ]
    )
    dtype = np.dtype([("index", "<i8"), ("values_block_0", "<f8", (len(cols),))])
    table = np.zeros(n, dtype)
    table["index"] = np.arange(n)
    table["values_block_0"] = values
    with h5py.File(path, "w") as h5:
        g = h5.create_group("df_with_missing")
        attrs = {
            "CLASS": b"GROUP",
            "VERSION": b"1.0",
            "pandas_type": b"frame_table",
            "pandas_version": b"0.15.2",
            "table_type": b"appendable_frame",
            "encoding": b"UTF-8",
            "errors": b"strict",
            "levels": np.int64(1),
            "nan_rep": b"nan",
            "data_columns": pickle.dumps([], 0),
            "index_cols": pickle.dumps([(0, "index")], 0),
            "info": pickle.dumps({1: {"names": names, "type": "MultiIndex"}, "index": {}}, 0),
            "metadata": pickle.dumps([], 0),
            "non_index_axes": pickle.dumps([(1, cols)], 0),
            "values_cols": pickle.dumps(["values_block_0"], 0),
        }
        for k, v in attrs.items():
            g.attrs[k] = np.bytes_(v) if isinstance(v, bytes) else v
        d = g.create_dataset("table", data=table)
        d.attrs["CLASS"] = np.bytes_(b"TABLE")
        d.attrs["FIELD_0_NAME"] = np.bytes_(b"index")
        d.attrs["FIELD_1_NAME"] = np.bytes_(b"values_block_0")
        d.attrs["NROWS"] = np.int64(n)
        d.attrs["index_kind"] = np.bytes_(b"integer")
        d.attrs["values_block_0_dtype"] = np.bytes_(b"float64")
        d.attrs["values_block_0_kind"] = np.bytes_(pickle.dumps(cols, 0))
        d.attrs["values_block_0_meta"] = np.bytes_(b"N.")
    assert nlev in (3, 4)
    return path


# ------------------------------------------------------------------ plain CSV


def test_plain_csv_ids_boxes_and_missing_frames(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("frame,animal,x,y,w,h\n0,0,5,6,3,4\n0,1,50,40,2,2\n2,1,51,41,2,2\n")
    t = read_tracks(f, n_animals=2, **VIDEO)
    assert (t.n_frames, t.n_animals, t.source) == (10, 2, "csv")
    assert t.names == ["animal0", "animal1"]
    np.testing.assert_allclose(t.center[0], [[5, 6], [50, 40]])
    np.testing.assert_allclose(t.extent[0, 0], [3, 4])
    assert t.found().sum(axis=0).tolist() == [1, 2]  # absent frames: unknown
    assert np.isnan(t.center[1]).all()


def test_plain_csv_names(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("frame,animal,x,y\n0,male,5,6\n0,female,9,9\n1,female,10,9\n")
    t = read_tracks(f, n_animals=2, **VIDEO)
    assert t.names == ["male", "female"]
    assert t.found()[1].tolist() == [False, True]
    t2 = read_tracks(f, n_animals=2, names=["female", "male"], **VIDEO)
    np.testing.assert_allclose(t2.center[0, 1], [5, 6])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("frame,animal,x,y\n0,2,5,6\n", "animal '2' is not 0..1"),
        ("frame,animal,x,y\n0,a,5,6\n0,b,5,6\n0,c,5,6\n", "animal 'c' is one more than"),
        ("frame,animal,x,y\n10,0,5,6\n", "reach frame 10 but the video has 10 frames"),
        ("frame,animal,x,y\n0,0,5,6\n0,0,6,6\n", "frame 0 lists animal animal0 twice"),
        ("frame,id,x,y\n0,0,5,6\n", "columns must be frame,animal,x,y"),
        ("frame,animal,x,y\n0,0,500,6\n", "outside the video's 64x48 frame"),
    ],
)
def test_plain_csv_refused(tmp_path, text, problem):
    f = tmp_path / "t.csv"
    f.write_text(text)
    with pytest.raises(DegError) as e:
        read_tracks(f, n_animals=2, **VIDEO)
    assert problem in str(e.value)
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_plain_csv_unknown_name_when_names_given(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("frame,animal,x,y\n0,bob,5,6\n")
    with pytest.raises(DegError, match=r"animal 'bob' is not 0\.\.1 or one of a, b"):
        read_tracks(f, n_animals=2, names=["a", "b"], **VIDEO)


# ------------------------------------------------------------------ DeepLabCut


@pytest.mark.parametrize("writer", [write_dlc_csv, write_dlc_h5])
def test_dlc_single_animal(tmp_path, writer):
    f = writer(tmp_path / f"videoDLC.{'csv' if writer is write_dlc_csv else 'h5'}")
    assert detect_format(f) == "dlc"
    t = read_tracks(f, n_animals=1, **VIDEO)
    assert t.source == "dlc" and t.n_animals == 1
    np.testing.assert_allclose(t.center[0, 0], [12, 10])  # mean of snout and tailbase
    np.testing.assert_allclose(t.extent[0, 0], [4, 0])
    np.testing.assert_allclose(t.center[3, 0], [13, 13])  # tailbase below LIKELIHOOD
    assert LIKELIHOOD == 0.5
    assert t.found()[:, 0].tolist() == [True] * 5 + [False] + [True] * 2 + [False] * 2


@pytest.mark.parametrize("writer", [write_dlc_csv, write_dlc_h5])
def test_dlc_multi_animal(tmp_path, writer):
    f = writer(
        tmp_path / f"ma.{'csv' if writer is write_dlc_csv else 'h5'}", individuals=["m1", "m2"]
    )
    t = read_tracks(f, n_animals=2, **VIDEO)
    assert t.names == ["m1", "m2"]
    np.testing.assert_allclose(t.center[0], [[12, 10], [32, 10]])
    assert t.found()[:8].sum(axis=0).tolist() == [7, 8]
    with pytest.raises(DegError, match=r"frame 0 holds 2 animals at once but the video has 1"):
        read_tracks(f, n_animals=1, **VIDEO)


def test_dlc_h5_and_csv_agree(tmp_path):
    a = read_tracks(write_dlc_h5(tmp_path / "a.h5", individuals=["m1", "m2"]), n_animals=2, **VIDEO)
    b = read_tracks(
        write_dlc_csv(tmp_path / "a.csv", individuals=["m1", "m2"]), n_animals=2, **VIDEO
    )
    np.testing.assert_array_equal(a.center, b.center)


def test_dlc_past_video_end(tmp_path):
    f = write_dlc_csv(tmp_path / "long.csv", n=12)
    with pytest.raises(DegError, match=r"reach frame 11 but the video has 10 frames"):
        read_tracks(f, n_animals=1, **VIDEO)


def test_dlc_h5_refuses_code_in_pickles(tmp_path):
    f = write_dlc_h5(tmp_path / "evil.h5")
    with h5py.File(f, "a") as h5:
        h5["df_with_missing/table"].attrs["values_block_0_kind"] = np.bytes_(pickle.dumps(print, 0))
    with pytest.raises(DegError, match=r"unreadable DeepLabCut \.h5"):
        read_tracks(f, n_animals=1, **VIDEO)


# ------------------------------------------------------------------ SLEAP (real file)


@pytest.fixture(scope="module")
def sleap_tracks():
    pytest.importorskip("sleap_io")
    if not SLP.is_file():
        pytest.skip("../shared/data is absent")
    return read_tracks(SLP, n_frames=1100, n_animals=5, frame_size=(384, 384), fps=15.0)


@needs_shared_data()
def test_sleap_real_file(sleap_tracks):
    t = sleap_tracks
    assert (t.n_frames, t.n_animals, t.source) == (1100, 5, "sleap")
    assert t.found()[:, :2].all()  # the two flies in every frame
    # centre = mean of visible nodes: as the CSV computed from the same file
    rows = np.genfromtxt(SLP_CSV, delimiter=",", names=True)
    first = rows[rows["frame"] == 0]
    got = sorted(map(tuple, np.round(t.center[0, :2], 2).tolist()))
    want = sorted(zip(first["x"].round(2).tolist(), first["y"].round(2).tolist(), strict=True))
    np.testing.assert_allclose(got, want, atol=0.01)


@needs_shared_data()
def test_sleap_extra_instances_give_way_to_the_best_scored(sleap_tracks, caplog):
    """SLEAP's file holds a spurious third instance in 66 frames (frame 25: score 1.2 beside
    37.0 and 20.7): two flies import as two animals, the extras left out and said so."""
    with caplog.at_level("WARNING", logger="deg_core.tracking"):
        t = read_tracks(SLP, n_frames=1100, n_animals=2, frame_size=(384, 384), fps=15.0)
    assert t.found().all()
    got = sorted(map(tuple, np.round(t.center[25], 2).tolist()))
    np.testing.assert_allclose(got, [(132.47, 182.33), (226.96, 188.04)], atol=0.01)
    assert "66 frame(s) held more instances than the video's 2 animals" in caplog.text


@needs_shared_data()
def test_sleap_other_video_length(sleap_tracks):
    with pytest.raises(DegError, match="reach frame 1099 but the video has 1000 frames"):
        read_tracks(SLP, n_frames=1000, n_animals=5, frame_size=(384, 384))


@needs_shared_data()
def test_sleap_analysis_h5(sleap_tracks, tmp_path):
    sio = pytest.importorskip("sleap_io")
    labels = sio.load_slp(str(SLP), open_videos=False)
    out = tmp_path / "flies.analysis.h5"
    sio.save_analysis_h5(labels, str(out))
    assert detect_format(out) == "sleap"
    t = read_tracks(out, n_frames=1100, n_animals=5, frame_size=(384, 384))
    assert t.found()[:, :2].all()
    np.testing.assert_allclose(
        np.sort(t.center[0, :2], axis=0), np.sort(sleap_tracks.center[0, :2], axis=0), atol=0.01
    )


def test_sleap_io_missing_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sleap_io", None)
    f = tmp_path / "x.slp"
    f.write_bytes(b"")
    with pytest.raises(DegError, match=r"needs sleap-io: install it with uv sync --extra tracks"):
        read_tracks(f, n_animals=2, **VIDEO)


def test_unknown_type(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("hi")
    with pytest.raises(DegError, match="unknown track file type"):
        read_tracks(f, n_animals=2, **VIDEO)
