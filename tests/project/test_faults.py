"""Fault injection: every mutating command killed between any two commit steps.

Each command runs in a forked child with ``DEG_KILL_AT_WRITE=n`` (the child SIGKILLs
itself at its n-th commit step, see deg_core.fileio.fault_point), for n = 1, 2, ...
until a run completes. After every kill: the project opens, every label file parses
and equals its old or its new content, the behaviour list is the old or the new one
and agrees with every label file, no video is half-present (a folder without its
video or record, a folder missing from split.yaml or the other way round), and a
rerun of the command completes with the same result as an uninterrupted run (a
command whose change was already carried out may refuse to repeat it, e.g. adding a
behaviour that now exists, and changes nothing).
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from deg_core import cli, fileio
from deg_core.errors import ProjectError
from deg_core.labels.labels import Labels, read_labels
from deg_core.project.project import Project
from deg_core.project.records import VideoRecord

KILLED = -signal.SIGKILL


def run_child(argv: list[str], kill_at: int | None = None, env: dict | None = None) -> int:
    """``deg argv`` in a forked child; its exit code, or -9 if it was killed."""
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            fileio._fault_count = 0
            os.environ.pop("DEG_KILL_AT_WRITE", None)
            if kill_at is not None:
                os.environ["DEG_KILL_AT_WRITE"] = str(kill_at)
            os.environ.update(env or {})
            code = cli.main(argv)
        except BaseException:
            import traceback

            traceback.print_exc(file=sys.__stderr__)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def state(root: Path) -> dict:
    """What the invariants compare: behaviours, label file texts, videos and splits."""
    project = Project.open(root)
    labels = {}
    for key in project.video_keys():
        rec = project.record(key)  # a half-present folder fails here
        assert rec.video is not None and rec.video.is_file()
        if rec.labels_path.exists():
            lab = read_labels(rec.labels_path, project.behaviors, rec.n_frames())
            labels[key] = rec.labels_path.read_text()
            assert lab.behaviors == project.behaviors
    split = project.splits().assignment
    assert sorted(split) == project.video_keys(), "split.yaml and DATA/ disagree"
    leftovers = [p.name for p in root.rglob("*") if p.name.endswith((".tmp", ".partial"))]
    return {
        "behaviors": project.behaviors,
        "labels": labels,
        "videos": project.video_keys(),
        "split": split,
        "leftovers": leftovers,
    }


def without_leftovers(s: dict) -> dict:
    """The state to compare; new videos' random split draws may differ after a rerun."""
    out = {k: v for k, v in s.items() if k != "leftovers"}
    out["split"] = {k: v for k, v in s["split"].items() if k in ("a", "b")}
    return out


@pytest.fixture
def base(tmp_path, make_video) -> Path:
    """A project with two labelled videos (groom, rear) and two videos not yet added."""
    project = Project.create(tmp_path, "faults", ["groom", "rear"])
    project.add_videos([make_video("a.mp4", n=30, seed=1), make_video("b.mp4", n=30, seed=2)])
    rng = np.random.default_rng(0)
    for key in project.video_keys():
        array = rng.integers(-1, 2, size=(30, 2)).astype(np.int8)
        project.save_labels(key, Labels(["groom", "rear"], array))
    make_video("c.mp4", n=30, seed=3)
    make_video("d.mp4", n=30, seed=4)
    labels = tmp_path / "import.csv"
    labels.write_text("start,stop,behavior\n3,9,groom\n12,20,rear\n")
    return project.root


def copy_of(base: Path, name: str) -> Path:
    dst = base.parent / "copies" / name / base.name
    shutil.copytree(base, dst)
    return dst


COMMANDS = {
    "behaviors add": lambda p, t: ["behaviors", p, "add", "dig", "sniff"],
    "behaviors remove": lambda p, t: ["behaviors", p, "remove", "rear"],
    "behaviors rename": lambda p, t: ["behaviors", p, "rename", "groom", "preen"],
    "import-labels": lambda p, t: [
        "import-labels",
        p,
        "a",
        str(t / "import.csv"),
        "--unlabeled-outside-bouts",
    ],
    "add-videos": lambda p, t: [
        "add-videos",
        p,
        str(t / "videos/c.mp4"),
        str(t / "videos/d.mp4"),
        "--skip-existing",  # the documented way to finish an interrupted batch
    ],
    "split": lambda p, t: ["split", p, "b", "test"],
    "remove-video": lambda p, t: ["remove-video", p, "b"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_kill_at_every_step_leaves_old_or_new(base, command):
    argv = COMMANDS[command]
    tmp = base.parent
    old = state(base)
    done = copy_of(base, "uninterrupted")
    assert run_child(argv(str(done), tmp)) == 0
    new = without_leftovers(state(done))
    assert new != without_leftovers(old)
    kills = 0
    for n in range(1, 60):
        root = copy_of(base, f"kill{n}")
        code = run_child(argv(str(root), tmp), kill_at=n)
        if code != KILLED:
            assert code == 0
            break
        kills += 1
        after = without_leftovers(state(root))  # opening recovers an interrupted change
        for key, text in after["labels"].items():
            assert text in (old["labels"].get(key), new["labels"].get(key)), key
        if command == "add-videos":  # a batch keeps the videos that landed, each whole
            assert after["videos"] in (["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d"])
        else:
            assert after in (without_leftovers(old), new), f"killed at step {n}: in between"
        rerun = run_child(argv(str(root), tmp))
        if after != new:  # undone: the rerun does it; done: it may refuse (e.g. "dig exists")
            assert rerun == 0, f"rerun after a kill at step {n} failed"
        final = state(root)
        assert without_leftovers(final) == new
        assert final["leftovers"] == [], f"temporary files left after step {n}"
    assert kills >= 2, "the command passed fewer commit steps than expected"


def test_labeler_save_killed_leaves_old_or_new(base):
    from deg_widgets.label_session import LabelSession

    old_text = (base / "DATA/a/a_labels.csv").read_text()
    for n in range(1, 20):
        root = copy_of(base, f"save{n}")
        pid = os.fork()
        if pid == 0:
            try:
                os.environ["DEG_KILL_AT_WRITE"] = str(n)
                fileio._fault_count = 0
                session = LabelSession(Project.open(root), "a")
                session.set_range(0, 0, 29, 1)
                session.save()
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        text = (root / "DATA/a/a_labels.csv").read_text()
        lab = read_labels(root / "DATA/a/a_labels.csv", ["groom", "rear"], 30)
        if not os.WIFSIGNALED(status):
            assert (lab.array[:, 0] == 1).all()
            break
        assert text == old_text or (lab.array[:, 0] == 1).all()
        Project.open(root)
    else:
        pytest.fail("the save never completed")


def test_interrupted_change_is_rolled_forward_on_open(base):
    """Kill after the intent is written: the next open finishes the change."""
    # step 1 is before the intent, 2-3 write the intent; 4 is after the first replacement
    root = copy_of(base, "forward")
    assert run_child(["behaviors", str(root), "rename", "groom", "preen"], kill_at=4) == KILLED
    assert (root / ".deg_txn").exists()
    project = Project.open(root)
    assert project.behaviors == ["preen", "rear"]
    assert not (root / ".deg_txn").exists()
    assert project.labels("a").behaviors == ["preen", "rear"]
    assert project.current_behavior("groom") == "preen"


def test_refused_add_writes_nothing(base, capsys):
    from tests.conftest import snapshot

    before = snapshot(base)
    assert cli.main(["behaviors", str(base), "add", "dig", "rear"]) == 1
    assert "duplicate behaviour name 'rear'" in capsys.readouterr().err
    assert snapshot(base) == before


# ---------------------------------------------------------------- two processes at once


def test_two_add_videos_at_once_both_land(base, make_video):
    tmp = base.parent
    extra = [make_video(f"e{i}.mp4", n=30, seed=10 + i) for i in range(4)]
    pids = []
    for pair in (extra[:2], extra[2:]):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
                code = cli.main(["add-videos", str(base), *map(str, pair)])
            finally:
                os._exit(code)
        pids.append(pid)
    codes = [os.WEXITSTATUS(os.waitpid(p, 0)[1]) for p in pids]
    assert codes == [0, 0]
    s = state(base)
    assert s["videos"] == ["a", "b", "e0", "e1", "e2", "e3"]
    assert s["leftovers"] == []
    assert tmp.exists()


def test_two_behavior_changes_at_once_both_kept(base):
    pids = []
    for name in ("dig", "sniff"):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
                code = cli.main(["behaviors", str(base), "add", name])
            finally:
                os._exit(code)
        pids.append(pid)
    assert [os.WEXITSTATUS(os.waitpid(p, 0)[1]) for p in pids] == [0, 0]
    project = Project.open(base)
    assert sorted(project.behaviors) == ["dig", "groom", "rear", "sniff"]
    for key in project.video_keys():
        assert project.labels(key).behaviors == project.behaviors


def test_busy_project_is_one_line(base, tmp_path):
    project = Project.open(base)
    err = tmp_path / "err.txt"
    with project.lock():
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                sys.stderr = open(err, "w", buffering=1)  # noqa: SIM115 - line-buffered
                os.environ["DEG_LOCK_TIMEOUT"] = "0.2"
                code = cli.main(["split", str(base), "b", "test"])
            finally:
                os._exit(code)
        assert os.WEXITSTATUS(os.waitpid(pid, 0)[1]) == 1
    lines = err.read_text().strip().splitlines()
    assert len(lines) == 1 and "project is busy" in lines[0], lines
    assert f"process {os.getpid()}" in lines[0]
    assert Project.open(base).splits().assignment["b"] != "test"


def test_stale_project_object_does_not_undo_another_process(base):
    """An old Project object (a notebook opened earlier) re-reads under the lock."""
    stale = Project.open(base)
    assert run_child(["behaviors", str(base), "add", "dig"]) == 0
    stale.add_behavior("sniff")
    assert Project.open(base).behaviors == ["groom", "rear", "dig", "sniff"]
    stale_labels = Labels(["groom", "rear"], np.zeros((30, 2), np.int8))
    with pytest.raises(ProjectError, match="labels are for behaviours"):
        stale.save_labels("a", stale_labels)


# ---------------------------------------------------------------- files a lab can share


def test_written_files_get_normal_permissions(base):
    old = os.umask(0o022)
    try:
        project = Project.open(base)
        project.add_behavior("dig")
        project.set_split("b", "test")
        for path in [
            base / "project_config.yaml",
            base / "DATA/split.yaml",
            base / "DATA/a/a_labels.csv",
            base / "DATA/a/record.yaml",
        ]:
            assert oct(path.stat().st_mode & 0o777) == oct(0o644), path
        os.chmod(base / "DATA/a/a_labels.csv", 0o664)  # a group-writable lab file stays so
        project.save_labels("a", project.labels("a"))
        assert oct((base / "DATA/a/a_labels.csv").stat().st_mode & 0o777) == oct(0o664)
    finally:
        os.umask(old)


def test_read_only_project_is_one_line(base):
    """A project the user may read but not write: one line, nothing changed.

    As root (CI containers) the command runs in a child that drops to nobody, since
    root ignores file modes.
    """
    import tempfile

    from tests.conftest import snapshot

    shared = Path(tempfile.mkdtemp(prefix="deg-ro-"))
    err = Path(tempfile.mkstemp(prefix="deg-ro-err-")[1])
    err.chmod(0o666)
    try:
        root = shared / base.name
        shutil.copytree(base, root)
        for p in [shared, root, *root.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
        before = snapshot(root)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if os.geteuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                sys.stderr = open(err, "w", buffering=1)  # noqa: SIM115 - line-buffered
                os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
                code = cli.main(["behaviors", str(root), "add", "dig"])
                assert Project.open(root).behaviors == ["groom", "rear"]  # reading still works
            except BaseException:
                code = 3
            finally:
                os._exit(code)
        assert os.WEXITSTATUS(os.waitpid(pid, 0)[1]) == 1
        lines = err.read_text().strip().splitlines()
        assert len(lines) == 1 and "permission denied" in lines[0], lines
        assert snapshot(root) == before
    finally:
        for p in [shared, *shared.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)
        shutil.rmtree(shared, ignore_errors=True)
        err.unlink(missing_ok=True)


# ---------------------------------------------------------------- inputs are what they claim


def test_image_renamed_mp4_is_refused(base, tmp_path, capsys):
    from PIL import Image

    png = tmp_path / "still.mp4"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(png, format="PNG")
    assert cli.main(["add-videos", str(base), str(png)]) == 1
    err = capsys.readouterr().err
    assert "still.mp4" in err and "still image" in err


def test_one_frame_video_is_refused(base, make_video, capsys):
    one = make_video("one.mp4", n=1)
    assert cli.main(["add-videos", str(base), str(one)]) == 1
    assert "a video needs at least 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("class_names", "problem"),
    [(None, "class_names is missing"), ("[background, groom, groom]", "lists 'groom' twice")],
)
def test_bad_class_names_name_the_config(base, class_names, problem):
    cfg = base / "project_config.yaml"
    text = cfg.read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith(("- ", "class_names"))]
    if class_names is not None:
        lines.insert(1, f"  class_names: {class_names}")
    cfg.write_text("\n".join(lines) + "\n")
    with pytest.raises(Exception, match=problem) as err:
        Project.open(base)
    assert "project_config.yaml" in str(err.value)


def test_leftover_temporaries_of_dead_processes_are_cleaned(base):
    dead = 2**22 + 12345  # above the default pid_max: no such process
    junk = [
        base / "DATA/a" / f".a_labels.csv.{dead}.abcd1234.tmp",
        base / f".project_config.yaml.{dead}.x1y2z3w4.tmp",
    ]
    for p in junk:
        p.write_text("half")
    partial = base / "DATA" / f".c.{dead}.partial"
    partial.mkdir()
    live = base / "DATA/a" / f".a_labels.csv.{os.getpid()}.zzzz9999.tmp"
    live.write_text("being written")
    copying = base / "DATA" / f".d.{os.getpid()}.partial"
    copying.mkdir()
    Project.open(base).set_split("b", "val")
    assert not any(p.exists() for p in junk) and not partial.exists()
    assert live.exists() and copying.exists()  # a live process's files are not touched
    assert VideoRecord.from_folder(base / "DATA/a").key == "a"


if sys.platform != "linux":  # fork + SIGKILL semantics the suite relies on
    pytestmark = pytest.mark.skip(reason="fault injection needs Linux")


# ---------------------------------------------------------------- inference killed


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [1, 2])
def test_inference_killed_keeps_outputs_whole(tiny_project, feature_run, tmp_path, kill_at):
    """A killed `deg infer` leaves the outputs file without the run or with all of it."""
    import subprocess

    from deg_core.project.outputs import has_group

    root = tmp_path / tiny_project.root.name
    shutil.copytree(tiny_project.root, root)
    argv = [sys.executable, "-m", "deg_core.cli", "infer", "features", str(root)]
    argv += ["--videos", "v0", "--run", feature_run.name, "--device", "cpu"]
    env = {**os.environ, "DEG_KILL_AT_WRITE": str(kill_at)}
    killed = subprocess.run(argv, env=env, capture_output=True, timeout=300)
    assert killed.returncode == KILLED, killed.stderr.decode()[-2000:]
    out = Project.open(root).record("v0").outputs_path
    assert has_group(out, feature_run.name) == (kill_at == 2)  # 1: before the rename
    env.pop("DEG_KILL_AT_WRITE")
    done = subprocess.run([*argv, "--overwrite"], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert has_group(out, feature_run.name)
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("fmt", ["boris", "nwb"])
def test_a_killed_export_leaves_nothing_the_next_does_not_sweep(base, tmp_path, fmt, monkeypatch):
    """A kill while the first file is complete beside its final name (fault point 1) leaves
    that temporary in the output folder, outside the project: the next export sweeps it.
    A failed export leaves no empty folder behind."""
    if fmt == "nwb":
        pytest.importorskip("pynwb")
    out = tmp_path / "out" / fmt
    assert run_child(["export", fmt, str(base), "--out", str(out)], kill_at=1) == KILLED
    left = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1, sorted(p.name for p in out.iterdir())
    assert run_child(["export", fmt, str(base), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.endswith(".tmp")], names
    assert len(names) == 2  # a file per video

    fresh = tmp_path / "new" / "exports"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    module = "deg_core.interop." + fmt
    monkeypatch.setattr(module + (".atomic_write_text" if fmt == "boris" else ".fault_point"), full)
    assert cli.main(["export", fmt, str(base), "--out", str(fresh)]) == 1
    assert not (tmp_path / "new").exists()
