"""The ``deg`` command line: the happy path, and every bad input -> one line, exit 1, no change."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deg_core.cli import main
from deg_core.project.project import Project
from tests.conftest import ARENA, OPENFIELD, SHARED_DATA, snapshot


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_project(tmp_path, capsys, make_video):
    code, _, _ = run(capsys, "init", tmp_path, "--name", "exp", "--behaviors", "groom,rear")
    assert code == 0
    root = tmp_path / "exp_deepethogram"
    vids = [make_video("m1.mp4", n=30, seed=1), make_video("m2.mp4", n=30, seed=2)]
    code, out, _ = run(capsys, "add-videos", root, *vids)
    assert code == 0, out
    return root


def test_happy_path(cli_project, capsys, tmp_path):
    root = cli_project
    labels = tmp_path / "m1_labels.csv"
    labels.write_text(
        ",background,groom,rear\n"
        + "".join(f"{i},0,1,0\n" for i in range(10))
        + "".join(f"{i},1,0,0\n" for i in range(10, 30))
    )
    code, out, err = run(capsys, "import-labels", root, "m1", labels)
    assert code == 0, err
    assert "groom: 10 positive frames, 100% labeled" in out

    bouts = tmp_path / "m2_bouts.csv"
    bouts.write_text("start,stop,behavior\n5,9,rear\n20,30,groom\n")
    code, _, err = run(capsys, "import-labels", root, "m2", bouts)
    assert code == 0, err

    code, out, _ = run(capsys, "split", root, "m2", "test")
    assert code == 0 and "m2 -> test" in out

    code, out, _ = run(capsys, "behaviors", root, "add", "dig")
    assert code == 0 and "groom, rear, dig" in out

    code, out, _ = run(capsys, "status", root, "--json")
    assert code == 0
    status = json.loads(out)
    assert status["behaviors"] == ["groom", "rear", "dig"]
    by_key = {v["key"]: v for v in status["videos"]}
    assert by_key["m1"]["frames"] == 30 and by_key["m2"]["split"] == "test"
    assert by_key["m1"]["labeled_fraction"] == {"groom": 1.0, "rear": 1.0, "dig": 0.0}
    assert status["behavior_totals"]["groom"] == {
        "positive_frames": 20,
        "bouts": 2,
        "labeled_frames": 60,
    }
    assert status["behavior_totals"]["rear"]["bouts"] == 1

    code, out, _ = run(capsys, "status", root)
    assert code == 0 and "groom" in out and "m1" in out

    code, out, _ = run(capsys, "config", root)
    assert code == 0 and "sequence.lr" in out


@pytest.mark.slow
def test_demo_runs_end_to_end_at_toy_size(tmp_path, capsys):
    tiny = [
        "augs.resize=[64, 64]",
        "compute.num_workers=0",
        "flow_generator.n_rgb=5",
        "flow_generator.num_epochs=1",
        "flow_generator.steps_per_epoch=2",
        "flow_generator.val_steps=1",
        "feature_extractor.num_epochs=1",
        "feature_extractor.steps_per_epoch=2",
        "feature_extractor.val_steps=1",
        "feature_extractor.batch_size=4",
        "sequence.num_epochs=1",
        "sequence.steps_per_epoch=2",
    ]
    argv = ["demo", "--out", tmp_path / "d", "--device", "cpu", "--videos", "3", "--frames", "200"]
    code, out, _ = run(capsys, *argv, *[x for s in tiny for x in ("--set", s)])
    assert code == 0
    assert "per-behaviour F1" in out and "macro F1" in out
    png = tmp_path / "d" / "ethogram.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = [p.name for p in (tmp_path / "d" / "demo_deepethogram" / "models").iterdir()]
    assert any(r.endswith("_flow_PairFlowNet") for r in runs), runs  # the lite networks
    assert Project.open(tmp_path / "d" / "demo_deepethogram").exclusive  # one behaviour a frame
    code, _, err = run(capsys, *argv)  # never overwrites a demo project
    assert code == 1 and "already here" in err


def _bad_csvs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    header = ",background,groom,rear\n"
    rows = "".join(f"{i},1,0,0\n" for i in range(30))
    cases = {
        "wrong_length": (header + rows[: rows.index("29,")], "rows"),
        "unknown_column": (
            ",background,groom,rear,fly\n" + "".join(f"{i},1,0,0,0\n" for i in range(30)),
            "fly",
        ),
        "missing_column": (
            ",background,groom\n" + "".join(f"{i},1,0\n" for i in range(30)),
            "rear",
        ),
        "bad_value": (header + rows.replace("7,1,0,0", "7,1,2,0"), "2"),
        "bout_unknown": ("start,stop,behavior\n0,5,fly\n", "fly"),
        "bout_range": ("start,stop,behavior\n0,50,groom\n", "50"),
    }
    out = {}
    for name, (text, needle) in cases.items():
        p = tmp_path / f"{name}.csv"
        p.write_text(text)
        out[name] = (p, needle)
    return out


def _assert_one_line_error(code: int, err: str, needle: str, path: Path) -> None:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("deg: error: ")
    assert str(path) in lines[0], err
    assert needle in lines[0], err


def test_bad_label_csvs(cli_project, capsys, tmp_path):
    before = snapshot(cli_project)
    for name, (path, needle) in _bad_csvs(tmp_path).items():
        code, _, err = run(capsys, "import-labels", cli_project, "m1", path)
        _assert_one_line_error(code, err, needle, path)
        assert snapshot(cli_project) == before, name


def _truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _corrupt(src: Path, dst: Path) -> Path:
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 2000] = bytes(2000)
    dst.write_bytes(bytes(data))
    return dst


def _zero_frames(dst: Path) -> Path:
    import av

    # a valid mp4 header and an H.264 stream, but no frame in it
    with av.open(str(dst), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
    assert dst.stat().st_size > 0
    return dst


def test_bad_videos(cli_project, capsys, tmp_path, make_video):
    good = make_video("fresh.mp4", n=60, seed=5)
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    text = bad_dir / "notes.mp4"
    text.write_text("this is not a video\n")
    cases = {
        "non_video": (text, ""),
        "truncated": (_truncate(good, bad_dir / "truncated.mp4", 0.4), ""),
        "corrupted": (_corrupt(good, bad_dir / "corrupted.mp4"), ""),
        "zero_frames": (_zero_frames(bad_dir / "empty.mp4"), "frame"),
        "missing": (bad_dir / "missing.mp4", "not found"),
        "duplicate": (cli_project / "DATA" / "m1" / "m1.mp4", "already in the project"),
    }
    before = snapshot(cli_project)
    for name, (path, needle) in cases.items():
        code, _, err = run(capsys, "add-videos", cli_project, good, path)
        _assert_one_line_error(code, err, needle, path)
        assert snapshot(cli_project) == before, name


def test_malformed_project_config(cli_project, capsys):
    cfg = cli_project / "project_config.yaml"
    cfg.write_text(cfg.read_text() + "train:\n  lr: [oops\n")
    before = snapshot(cli_project)
    for argv in (["status", cli_project], ["behaviors", cli_project, "add", "dig"]):
        code, _, err = run(capsys, *argv)
        _assert_one_line_error(code, err, "malformed", cfg)
    cfg.write_text("project:\n  name: exp\n  class_names: [background, groom]\nbogus: 1\n")
    before = snapshot(cli_project)
    code, _, err = run(capsys, "status", cli_project)
    _assert_one_line_error(code, err, "bogus", cfg)
    assert snapshot(cli_project) == before


def test_other_bad_commands(cli_project, capsys, tmp_path):
    code, _, err = run(capsys, "status", tmp_path / "nowhere")
    _assert_one_line_error(code, err, "not found", tmp_path / "nowhere")
    code, _, err = run(capsys, "init", tmp_path, "--name", "exp", "--behaviors", "a")
    _assert_one_line_error(code, err, "already exists", cli_project)
    code, _, err = run(capsys, "split", cli_project, "nope", "val")
    assert code == 1 and "no video 'nope'" in err


def test_console_script_runs():
    exe = Path(sys.executable).parent / "deg"
    if not exe.exists():
        pytest.skip("deg console script not installed in this environment")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "add-videos" in out and "import-labels" in out


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")
def test_real_videos_end_to_end(tmp_path, capsys):
    code, _, _ = run(capsys, "init", tmp_path, "--name", "real", "--behaviors", "walk,groom")
    root = tmp_path / "real_deepethogram"
    code, out, err = run(capsys, "add-videos", root, OPENFIELD, ARENA)
    assert code == 0, err
    assert "2330 frames" in out and "749 frames" in out and "1064x1070" in out
    labels = tmp_path / "bouts.csv"
    labels.write_text("start,stop,behavior\n100,250,walk\n400,460,groom\n")
    key = OPENFIELD.stem
    code, _, err = run(capsys, "import-labels", root, key, labels, "--unlabeled-outside-bouts")
    assert code == 0, err
    code, out, _ = run(capsys, "status", root, "--json")
    status = json.loads(out)
    by_key = {v["key"]: v for v in status["videos"]}
    assert by_key[key]["frames"] == 2330 and by_key[ARENA.stem]["frames"] == 749
    assert sorted(v["split"] for v in status["videos"]) == ["train", "val"]
    assert status["behavior_totals"]["walk"]["positive_frames"] == 150
    assert status["behavior_totals"]["groom"]["bouts"] == 1
    shutil.rmtree(root)


class _ClosedPipe:
    """A stdout whose reader has gone (`deg status | head`)."""

    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        return self._fd

    def __init__(self, fd: int) -> None:
        self._fd = fd


def test_a_closed_pipe_ends_quietly(cli_project, capsys, monkeypatch, tmp_path):
    import os

    fd = os.open(tmp_path / "stdout", os.O_WRONLY | os.O_CREAT)
    monkeypatch.setattr("sys.stdout", _ClosedPipe(fd))
    code = main(["status", str(cli_project)])
    assert code == 141
    assert capsys.readouterr().err == ""


def test_a_full_disk_is_one_line_naming_the_file(cli_project, capsys, monkeypatch, tmp_path):
    """ENOSPC at the flush of an atomic save (a write names no file): one line naming the
    file it was for and the free space, the old file as it was, no temporary left."""
    import errno

    from deg_core import fileio

    code, _, _ = run(capsys, "import-labels", cli_project, "m1", _labels_csv(tmp_path, 1))
    assert code == 0
    target = cli_project / "DATA" / "m1" / "m1_labels.csv"
    before = target.read_bytes()

    other = _labels_csv(tmp_path, 2)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", full)
    code, out, err = run(capsys, "import-labels", cli_project, "m1", other)
    assert code == 1, out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no space left" in lines[0] and str(target) in lines[0], err
    assert "MB free there" in lines[0]
    assert target.read_bytes() == before
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]


def _labels_csv(tmp_path, column: int):
    from deg_core.labels.labels import Labels, write_labels

    labels = Labels.empty(30, ["groom", "rear"])
    labels.array[:] = 0
    labels.array[::3, column - 1] = 1
    path = tmp_path / f"labels_{column}.csv"
    write_labels(path, labels)
    return path


def test_an_out_path_that_exists_is_one_line(capsys, monkeypatch, tmp_path):
    from deg_core.cli import project_cmds

    existing = tmp_path / "taken"
    existing.write_text("x")

    def exists(args):
        raise FileExistsError(17, "File exists", str(existing))

    monkeypatch.setattr(project_cmds, "cmd_status", exists)
    code = main(["status", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and f"{existing} already exists" in err


def test_status_answers_without_importing_torch(cli_project):
    """`deg status` says what training would start from by file names only: torch (~1 GB,
    seconds to import) stays out of the process."""
    code = (
        "import sys; from deg_core.cli import main; rc = main(['status', sys.argv[1]]); "
        "assert rc == 0, rc; "
        "assert 'torch' not in sys.modules, 'status imported torch'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(cli_project)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "groom" in done.stdout
