"""Tests for deg_core.labels: DEG label CSVs, bouts, bout-table import."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

import deg_core.labels.labels as labels_mod
from deg_core.errors import LabelError
from deg_core.labels.bouts import (
    bout_table,
    bouts_from_vector,
    count_bouts,
    vector_from_bouts,
    write_bout_table,
)
from deg_core.labels.labels import BACKGROUND, Labels, import_labels, read_labels, write_labels

# frames: both absent, groom, rear unlabeled, both unlabeled, groom + rear unlabeled, rear
ARRAY = np.array([[0, 0], [1, 0], [0, -1], [-1, -1], [1, -1], [0, 1]], dtype=np.int8)
CANONICAL = ",background,groom,rear\n0,1,0,0\n1,0,1,0\n2,-1,0,-1\n3,-1,-1,-1\n4,0,1,-1\n5,0,0,1\n"


def example() -> Labels:
    return Labels(["groom", "rear"], ARRAY.copy())


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file in ``folder`` with its bytes: to prove a failed call changed nothing."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def write(tmp_path: Path, text: str | bytes, name: str = "x_labels.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# --------------------------------------------------------------------------- the Labels object


def test_background_derivation_including_unknown() -> None:
    # all 0 -> 1; any 1 -> 0 (even with -1 elsewhere); no 1 but some -1 -> -1
    np.testing.assert_array_equal(example().background(), [1, 0, -1, -1, 0, 0])
    full = example().with_background()
    assert full.dtype == np.int8
    assert full.shape == (6, 3)
    np.testing.assert_array_equal(full[:, 1:], ARRAY)


def test_basic_properties() -> None:
    lab = example()
    assert lab.n_frames == 6
    assert lab.class_names == [BACKGROUND, "groom", "rear"]
    np.testing.assert_allclose(lab.labeled_fraction(), [5 / 6, 3 / 6])
    empty = Labels.empty(4, ["a", "b"])
    assert empty.array.dtype == np.int8
    assert (empty.array == -1).all()
    np.testing.assert_array_equal(empty.background(), [-1] * 4)
    np.testing.assert_array_equal(Labels.empty(0, ["a"]).labeled_fraction(), [0.0])


def test_no_behaviours_means_all_background() -> None:
    np.testing.assert_array_equal(Labels.empty(3, []).background(), [1, 1, 1])


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="shape"):
        Labels(["a"], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="1 \\(present\\)"):
        Labels(["a"], np.array([[2]]))
    with pytest.raises(LabelError, match="background is derived"):
        Labels(["background"], np.zeros((1, 1)))
    with pytest.raises(LabelError, match="duplicate"):
        Labels(["a", "a"], np.zeros((1, 2)))
    assert Labels(["a"], np.array([[1.0], [-1.0]])).array.dtype == np.int8


def test_add_remove_rename_never_mutate() -> None:
    lab = example()
    added = lab.add_behavior("sniff")
    assert added.behaviors == ["groom", "rear", "sniff"]
    np.testing.assert_array_equal(added.array[:, 2], [-1] * 6)
    np.testing.assert_array_equal(added.array[:, :2], ARRAY)
    removed = lab.remove_behavior("groom")
    assert removed.behaviors == ["rear"]
    np.testing.assert_array_equal(removed.array[:, 0], ARRAY[:, 1])
    renamed = lab.rename_behavior("groom", "scratch")
    assert renamed.behaviors == ["scratch", "rear"]
    renamed.array[0, 0] = 1  # a copy: the original must not change
    assert lab == example()
    with pytest.raises(LabelError, match="duplicate"):
        lab.add_behavior("rear")
    with pytest.raises(LabelError, match="no behaviour 'fly'"):
        lab.remove_behavior("fly")
    with pytest.raises(LabelError, match="duplicate"):
        lab.rename_behavior("groom", "rear")


def test_finalize_sets_unlabeled_to_absent() -> None:
    lab = example()
    fin = lab.finalize()
    np.testing.assert_array_equal(fin.array, np.where(ARRAY == -1, 0, ARRAY))
    np.testing.assert_array_equal(fin.background(), [1, 0, 1, 1, 0, 0])
    assert lab == example()


# --------------------------------------------------------------------------- write / read


def test_write_is_exact_deg_format(tmp_path: Path) -> None:
    path = tmp_path / "x_labels.csv"
    write_labels(path, example())
    assert path.read_bytes() == CANONICAL.encode()
    assert read_labels(path) == example()
    assert snapshot(tmp_path) == {"x_labels.csv": CANONICAL.encode()}  # no temp file left


def test_partial_labels_round_trip_large(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lab = Labels(["a", "b", "c"], rng.integers(-1, 2, size=(20_000, 3)).astype(np.int8))
    path = tmp_path / "big.csv"
    write_labels(path, lab)
    back = read_labels(path, ["a", "b", "c"], n_frames=20_000)
    assert back == lab
    assert (back.array == -1).any()


def test_write_rejects_array_edited_to_bad_values(tmp_path: Path) -> None:
    lab = example()
    lab.array[0, 0] = 5
    with pytest.raises(ValueError, match="label values"):
        write_labels(tmp_path / "x.csv", lab)
    assert snapshot(tmp_path) == {}


@pytest.mark.parametrize(
    "text",
    [
        # DEG's add_behavior wrote float columns
        ",background,groom,rear\n0,1.0,0.0,0.0\n1,0.0,1.0,0.0\n2,-1.0,0.0,-1.0\n",
        # older projects: "none" instead of "background"
        ",none,groom,rear\n0,1,0,0\n1,0,1,0\n2,-1,0,-1\n",
        # no background column at all
        ",groom,rear\n0,0,0\n1,1,0\n2,0,-1\n",
        # Windows line endings and a UTF-8 BOM (Excel)
        "\ufeff,background,groom,rear\r\n0,1,0,0\r\n1,0,1,0\r\n2,-1,0,-1\r\n",
        # named index columns, as pandas/other tools write them
        "Unnamed: 0,background,groom,rear\n0,1,0,0\n1,0,1,0\n2,-1,0,-1\n",
        "frame,background,groom,rear\n0,1,0,0\n1,0,1,0\n2,-1,0,-1\n",
        # no index column
        "background,groom,rear\n1,0,0\n0,1,0\n-1,0,-1\n",
        # background values are ignored (re-derived), only checked to be 1/0/-1
        ",background,groom,rear\n0,0,0,0\n1,1,1,0\n2,1,0,-1\n",
        # trailing blank lines and padding around values
        ",background,groom,rear\n0, 1, 0, 0\n1,0,1,0\n2,-1,0,-1\n\n\n",
    ],
)
def test_read_variants(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    lab = read_labels(path, ["groom", "rear"], n_frames=3)
    assert lab.behaviors == ["groom", "rear"]
    assert lab.array.dtype == np.int8
    np.testing.assert_array_equal(lab.array, [[0, 0], [1, 0], [0, -1]])
    np.testing.assert_array_equal(lab.background(), [1, 0, -1])
    assert read_labels(path) == lab  # without expectations the file's order is kept


def test_read_reorders_to_requested_behaviours(tmp_path: Path) -> None:
    path = write(tmp_path, ",background,rear,groom\n0,0,1,0\n1,0,0,1\n")
    lab = read_labels(path, ["groom", "rear"])
    assert lab.behaviors == ["groom", "rear"]
    np.testing.assert_array_equal(lab.array, [[0, 1], [1, 0]])
    assert read_labels(path).behaviors == ["rear", "groom"]


def test_read_header_only_is_zero_frames(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    write_labels(path, Labels.empty(0, ["a"]))
    assert path.read_text() == ",background,a\n"
    lab = read_labels(path, ["a"], n_frames=0)
    assert lab.array.shape == (0, 1)


def test_read_does_not_modify_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeff,none,groom\r\n0,1.0,0.0\r\n")
    before = snapshot(tmp_path)
    read_labels(path)
    import_labels(path, ["groom"], 1)
    assert snapshot(tmp_path) == before


BAD_PER_FRAME = [
    # (content, read kwargs, expected fragment of the message)
    (CANONICAL, {"n_frames": 7}, "has 6 rows, video has 7 frames"),
    (CANONICAL, {"behaviors": ["groom", "rear", "sniff"]}, "missing behaviour column(s) 'sniff'"),
    (CANONICAL, {"behaviors": ["groom"]}, "unknown behaviour column(s) 'rear'"),
    (",background,groom\n0,1,0\n1,0,2\n", {}, "line 3 (frame 1), column 'groom': value 2 is not"),
    (",background,groom\n0,1,x\n", {}, "column 'groom': value 'x' is not 1, 0 or -1"),
    (",background,groom\n0,1,0.5\n", {}, "value 0.5 is not"),
    (",background,groom\n0,1,\n", {}, "empty value"),
    (",background,groom\n0,7,0\n", {}, "column 'background': value 7"),
    (",background,groom\n0,1,0\n1,0\n", {}, "line 3 has 2 fields, the header has 3"),
    (",background,groom\n0,1,0\n\n1,1,0\n", {}, "line 3 is blank"),
    (",background,groom,groom\n0,1,0,0\n", {}, "duplicate column(s) 'groom'"),
    (",background,none,groom\n0,1,1,0\n", {}, "both 'background' and 'none'"),
    (",background,,groom\n0,1,0,0\n", {}, "column 3 of the header has no name"),
    ("", {}, "is empty"),
    ("\n  \n", {}, "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", {}, "binary data"),
    (b",background,caf\xe9\n0,1,0\n", {}, "not UTF-8"),
    (',background,"groom\n0,1,0\n', {}, "unparseable CSV"),
    ("\tbackground\tgroom\n0\t1\t0\n", {}, "not comma-separated"),
    ("start,stop,behavior\n0,3,groom\n", {"behaviors": ["groom"]}, "use import_labels"),
]


@pytest.mark.parametrize(("content", "kwargs", "fragment"), BAD_PER_FRAME)
def test_bad_label_files_raise_one_line(
    tmp_path: Path, content: str | bytes, kwargs: dict, fragment: str
) -> None:
    path = write(tmp_path, content)
    (tmp_path / "other.txt").write_text("keep me")
    before = snapshot(tmp_path)
    with pytest.raises(LabelError) as info:
        read_labels(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert fragment in message
    assert snapshot(tmp_path) == before


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="label file not found"):
        read_labels(tmp_path / "nope.csv")
    with pytest.raises(LabelError, match="is not a file"):
        read_labels(tmp_path)
    assert snapshot(tmp_path) == {}


# --------------------------------------------------------------------------- atomic write


class _CrashingFile:
    """Wraps a real file; the second write writes half its text, then fails like a full disk."""

    def __init__(self, f) -> None:
        self._f = f
        self.calls = 0

    def write(self, text: str) -> int:
        self.calls += 1
        if self.calls >= 2:
            self._f.write(text[: len(text) // 2])
            raise OSError(28, "No space left on device")
        return self._f.write(text)

    def __getattr__(self, name: str):
        return getattr(self._f, name)


@pytest.mark.parametrize("existing", [True, False])
def test_crash_mid_write_keeps_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    path = tmp_path / "x_labels.csv"
    if existing:
        path.write_bytes(b"previous bytes\n")
    before = snapshot(tmp_path)
    real_atomic_open = labels_mod.atomic_open

    @contextlib.contextmanager
    def crashing_atomic_open(*args, **kwargs):
        with real_atomic_open(*args, **kwargs) as f:
            yield _CrashingFile(f)

    monkeypatch.setattr(labels_mod, "atomic_open", crashing_atomic_open)
    with pytest.raises(OSError, match="No space left"):
        write_labels(path, example())
    assert snapshot(tmp_path) == before  # old bytes intact, no temp file left behind


# --------------------------------------------------------------------------- bouts


@pytest.mark.parametrize(
    ("vector", "bouts"),
    [
        ([1, 1, 0, 0, 1, 0, 1, 1], [(0, 2), (4, 5), (6, 8)]),  # touching first and last frame
        ([1, 1, 1], [(0, 3)]),
        ([0, 0, 0], []),
        ([], []),
        ([1], [(0, 1)]),
        ([-1, 1, -1, 1, 1, 0], [(1, 2), (3, 5)]),  # -1 is not "present"
    ],
)
def test_bouts_vector_round_trip(vector: list[int], bouts: list[tuple[int, int]]) -> None:
    v = np.array(vector, dtype=np.int8)
    assert bouts_from_vector(v) == bouts
    back = vector_from_bouts(bouts, len(vector))
    assert back.dtype == np.int8
    np.testing.assert_array_equal(back, (v == 1).astype(np.int8))
    filled = vector_from_bouts(bouts, len(vector), fill=-1)
    np.testing.assert_array_equal(filled, np.where(v == 1, 1, -1))


def test_vector_from_bouts_rejects_bad_bouts() -> None:
    for bad in [(2, 2), (3, 1), (-1, 2), (0, 6)]:
        with pytest.raises(ValueError, match="not within"):
            vector_from_bouts([bad], 5)
    np.testing.assert_array_equal(vector_from_bouts([(0, 3), (2, 4)], 5), [1, 1, 1, 1, 0])


def test_bout_table_and_counts() -> None:
    lab = Labels(["a", "b"], np.array([[1, 0], [1, 1], [0, 1], [1, -1], [-1, 1]], np.int8))
    assert bout_table(lab.array, lab.behaviors) == [
        {"behavior": "a", "start": 0, "stop": 2},
        {"behavior": "b", "start": 1, "stop": 3},
        {"behavior": "a", "start": 3, "stop": 4},
        {"behavior": "b", "start": 4, "stop": 5},
    ]
    np.testing.assert_array_equal(count_bouts(lab.array), [2, 2])
    np.testing.assert_array_equal(count_bouts(Labels.empty(0, ["a"]).array), [0])


# --------------------------------------------------------------------------- import


def test_import_bout_table(tmp_path: Path) -> None:
    # synonyms, any case, any column order, extra columns ignored, float-written frames
    path = write(tmp_path, "Behaviour,Start,End,note\ngroom,0,2,x\nrear,1,3.0,\ngroom,5,6,\n")
    lab = import_labels(path, ["rear", "groom"], n_frames=6)
    assert lab.behaviors == ["rear", "groom"]
    np.testing.assert_array_equal(lab.array[:, 1], [1, 1, 0, 0, 0, 1])  # stop exclusive
    np.testing.assert_array_equal(lab.array[:, 0], [0, 1, 1, 0, 0, 0])
    partial = import_labels(path, ["rear", "groom"], 6, unlabeled_outside_bouts=True)
    # frames 3, 4 have no bout: unknown; covered frames are 0 for behaviours without a bout
    np.testing.assert_array_equal(partial.array[:, 1], [1, 1, 0, -1, -1, 1])
    np.testing.assert_array_equal(partial.array[:, 0], [0, 1, 1, -1, -1, 0])


def test_bout_table_export_round_trip(tmp_path: Path) -> None:
    lab = example()
    path = tmp_path / "bouts.csv"
    write_bout_table(path, lab.array, lab.behaviors)
    assert path.read_text() == "behavior,start,stop\ngroom,1,2\ngroom,4,5\nrear,5,6\n"
    assert import_labels(path, lab.behaviors, lab.n_frames) == lab.finalize()
    empty = tmp_path / "empty_bouts.csv"
    write_bout_table(empty, Labels.empty(3, ["a"]).array, ["a"])
    assert import_labels(empty, ["a"], 3) == Labels(["a"], np.zeros((3, 1)))


def test_import_per_frame_file(tmp_path: Path) -> None:
    path = write(tmp_path, ",none,rear,groom\r\n0,1.0,0.0,0.0\r\n1,0,0,1\r\n")
    lab = import_labels(path, ["groom", "rear"], 2)
    np.testing.assert_array_equal(lab.array, [[0, 0], [1, 0]])


BAD_BOUTS = [
    ("start,stop,behavior\n0,2,groom\n1,3,fly\n", "line 3: unknown behaviour 'fly'"),
    ("start,stop,behavior\n8,12,groom\n", "line 2: bout 8-12 is outside the video"),
    ("start,stop,behavior\n-1,2,groom\n", "bout -1-2 is outside"),
    ("start,stop,behavior\n4,4,groom\n", "line 2: stop 4 <= start 4"),
    ("start,stop,behavior\n5,3,groom\n", "stop 3 <= start 5"),
    ("start,stop,behavior\n1.5,3,groom\n", "line 2: start '1.5' is not a whole frame number"),
    ("start,stop,behavior\n1,x,groom\n", "stop 'x' is not a whole frame number"),
    ("start,stop,behavior\n1,3\n", "line 2 has 2 fields"),
    (",background,groom\n0,1,0\n", "has 1 rows, video has 10 frames"),
    ("", "is empty"),
    (b"\x00\x01\x02garbage\xff", "binary data"),
]


@pytest.mark.parametrize(("content", "fragment"), BAD_BOUTS)
def test_bad_imports_raise_one_line(tmp_path: Path, content: str | bytes, fragment: str) -> None:
    path = write(tmp_path, content, name="bouts.csv")
    before = snapshot(tmp_path)
    with pytest.raises(LabelError) as info:
        import_labels(path, ["groom"], n_frames=10)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert fragment in message
    assert snapshot(tmp_path) == before
