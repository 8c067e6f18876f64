"""Project store: create, open, videos, splits, behaviours, stale models, DEG projects."""

from __future__ import annotations

import random

import numpy as np
import pytest
import yaml

from deg_core.errors import ConfigError, ProjectError, VideoError
from deg_core.labels.labels import Labels, read_labels, write_labels
from deg_core.project.project import Project
from deg_core.project.splits import SplitTable
from tests.conftest import snapshot

# ---------------------------------------------------------------- create


def test_create_layout(tmp_path):
    p = Project.create(tmp_path, "grooming", ["face_groom", "rear"], labeler="ana")
    assert p.root == tmp_path / "grooming_deepethogram"
    assert (p.root / "DATA").is_dir() and (p.root / "models").is_dir()
    raw = yaml.safe_load((p.root / "project_config.yaml").read_text())
    # only the project's own values: no copy of the defaults
    assert raw == {
        "project": {
            "name": "grooming",
            "labeler": "ana",
            "class_names": ["background", "face_groom", "rear"],
        }
    }
    assert p.behaviors == ["face_groom", "rear"]
    assert p.class_names[0] == "background"
    assert Project.open(p.root).behaviors == p.behaviors
    assert Project.open(p.root / "project_config.yaml").name == "grooming"


@pytest.mark.parametrize(
    ("behaviors", "match"),
    [
        ([], "at least one"),
        (["groom", ""], "empty"),
        (["groom", "groom"], "duplicate"),
        (["groom", "Groom"], "duplicate"),
        (["none"], "background is implicit"),
        (["Background"], "background is implicit"),
        (["other"], "background is implicit"),
        (["misc"], "background is implicit"),
        (["face,groom"], "unsafe"),
        (["face groom"], "unsafe"),
        (["a/b"], "unsafe"),
        (['say"hi'], "unsafe"),
        (["1groom"], "unsafe"),
    ],
)
def test_create_refuses_bad_behaviours(tmp_path, behaviors, match):
    with pytest.raises(ProjectError, match=match):
        Project.create(tmp_path, "x", behaviors)
    assert list(tmp_path.iterdir()) == []


def test_create_refuses_existing_folder_and_bad_name(tmp_path):
    Project.create(tmp_path, "x", ["a"])
    before = snapshot(tmp_path)
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(tmp_path, "x", ["b"])
    with pytest.raises(ProjectError, match="unsafe"):
        Project.create(tmp_path, "my project", ["b"])
    with pytest.raises(ProjectError, match="does not exist"):
        Project.create(tmp_path / "nope", "y", ["b"])
    assert snapshot(tmp_path) == before


def test_open_errors(tmp_path):
    with pytest.raises(ProjectError, match="not found"):
        Project.open(tmp_path / "missing")
    with pytest.raises(ProjectError, match=r"no project_config\.yaml"):
        Project.open(tmp_path)
    (tmp_path / "project_config.yaml").write_text("project: [unclosed\n")
    with pytest.raises(ConfigError, match="malformed") as e:
        Project.open(tmp_path)
    assert "project_config.yaml" in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "project_config.yaml").write_text("project:\n  name: x\ntrain:\n  lrr: 1\n")
    with pytest.raises(ConfigError, match=r"train\.lrr"):
        Project.open(tmp_path)


# ---------------------------------------------------------------- videos


def test_add_videos_copies_and_records(project, make_video):
    src = make_video("mouse1.mp4", n=30)
    src_bytes = src.read_bytes()
    (key,) = project.add_videos([src])
    assert key == "mouse1"
    assert src.read_bytes() == src_bytes and src.exists()  # copied, never moved
    rec = project.record("mouse1")
    assert rec.video == project.data_dir / "mouse1" / "mouse1.mp4"
    assert not rec.video.is_symlink() and rec.video.read_bytes() == src_bytes
    data = yaml.safe_load((project.data_dir / "mouse1" / "record.yaml").read_text())
    assert data["frames"] == 30 and data["width"] == 64 and data["height"] == 48
    assert data["fps"] == pytest.approx(30)
    assert data["codec"] == "h264"
    assert data["checksum"].startswith("sha256:")
    assert len(data["stats"]["mean"]) == 3 and len(data["stats"]["std"]) == 3
    assert all(0 <= m <= 1 for m in data["stats"]["mean"])
    assert project.splits().assignment == {"mouse1": "train"}  # a lone video trains


def test_duplicates_refused_without_change(project, make_video, tmp_path):
    a = make_video("a.mp4", seed=1)
    project.add_videos([a])
    before = snapshot(project.root)
    with pytest.raises(ProjectError, match="already in the project"):
        project.add_videos([a])
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(a.read_bytes())  # same content, other name
    with pytest.raises(ProjectError, match="same video is already in the project as 'a'"):
        project.add_videos([copy])
    b = make_video("b.mp4", seed=2)
    with pytest.raises(ProjectError, match="listed twice"):
        project.add_videos([b, b])
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.mp4").write_bytes(b.read_bytes())  # same name, other content
    with pytest.raises(ProjectError, match="a video named 'a' is already in the project"):
        project.add_videos([other / "a.mp4"])
    assert snapshot(project.root) == before


def test_unicode_names_keep_their_letters_and_never_collide(project, make_video, tmp_path):
    """Non-Latin letters stay in the key (they used to vanish: 日本.mp4 became 'video');
    two files that would get one key are refused naming both; an over-long name is refused."""
    from deg_core.project.records import MAX_KEY_BYTES

    first = make_video("with space é 日本.mp4", seed=1)
    second = make_video("日本.mp4", seed=2)
    decomposed = make_video("cafe\u0301.mp4", seed=3)  # macOS writes é as e + accent
    keys = project.add_videos([first, second, decomposed])
    assert keys == ["with_space_é_日本", "日本", "café"]
    for key in keys:
        rec = project.record(key)
        assert rec.video.is_file() and rec.frames == 40
        assert project.resolve_key(key) == key
    assert project.splits().assignment.keys() == set(keys)  # split.yaml round-trips them

    before = snapshot(project.root)
    same_a = make_video("a b.mp4", seed=4)
    same_b = make_video("a_b.mp4", seed=5)
    with pytest.raises(ProjectError, match=r"'a b.mp4' would both be named 'a_b'"):
        project.add_videos([same_a, same_b])
    accented = make_video("café.mp4", seed=6)  # composed, the key of the decomposed one
    with pytest.raises(ProjectError, match=r"'café' is already in the project"):
        project.add_videos([accented])
    long_name = make_video("日" * 41 + ".mp4", seed=7)  # 123 bytes in UTF-8
    with pytest.raises(ProjectError, match=f"at most {MAX_KEY_BYTES}") as err:
        project.add_videos([long_name])
    assert "\n" not in str(err.value) and str(long_name) in str(err.value)
    assert snapshot(project.root) == before


def test_bad_video_in_batch_changes_nothing(project, make_video, tmp_path):
    good = make_video("good.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    before = snapshot(project.root)
    with pytest.raises(VideoError) as e:
        project.add_videos([good, bad])
    assert str(bad) in str(e.value)
    with pytest.raises(ProjectError, match="not found"):
        project.add_videos([good, tmp_path / "missing.mp4"])
    with pytest.raises(ProjectError, match="folder"):
        project.add_videos([tmp_path])
    assert snapshot(project.root) == before


def test_split_guarantee_and_stability(project, make_video):
    keys = project.add_videos([make_video(f"v{i}.mp4", seed=i) for i in range(2)])
    table = project.splits()
    assert sorted(table.assignment[k] for k in keys) == ["train", "val"]
    first = dict(table.assignment)
    more = project.add_videos([make_video(f"w{i}.mp4", seed=10 + i) for i in range(4)])
    table = project.splits()
    assert {k: table.assignment[k] for k in first} == first  # stable once assigned
    assert all(table.assignment[k] in ("train", "val", "test") for k in more)
    # DEG's split.yaml layout
    raw = yaml.safe_load(project.split_path.read_text())
    assert raw["metadata"]["split"] == [0.8, 0.2, 0.0]
    assert sorted(raw["train"] + raw["val"] + raw["test"]) == sorted(keys + more)


def test_split_guarantee_holds_for_any_seed():
    for seed in range(50):
        table = SplitTable(fractions=[0.8, 0.2, 0.0])
        table.assign_new(["a", "b", "c"], random.Random(seed))
        c = table.counts()
        assert c["train"] >= 1 and c["val"] >= 1
    table = SplitTable(fractions=[1.0, 0.0, 0.0])
    table.assign_new(["a", "b", "c", "d"], random.Random(0))
    assert table.counts() == {"train": 3, "val": 1, "test": 0}


def test_explicit_split_and_set_split(project, make_video):
    (a,) = project.add_videos([make_video("a.mp4", seed=1)], split="test")
    assert project.splits().assignment[a] == "test"
    project.add_videos([make_video("b.mp4", seed=2)])
    warnings = project.set_split("b", "val")
    assert project.splits().assignment == {"a": "test", "b": "val"}
    assert any("train" in w for w in warnings)
    with pytest.raises(ProjectError, match="unknown split"):
        project.set_split("b", "holdout")
    with pytest.raises(ProjectError, match="no video 'zzz'"):
        project.set_split("zzz", "train")


def test_interrupted_batch_keeps_landed_videos_and_resumes(project, make_video, monkeypatch):
    import deg_core.video as video

    vids = [make_video(f"v{i}.mp4", seed=i) for i in range(3)]
    real = video.channel_stats
    calls = {"n": 0}

    def flaky(path, max_frames=500):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the user pressed stop during the second video
        return real(path, max_frames=max_frames)

    monkeypatch.setattr(video, "channel_stats", flaky)
    with pytest.raises(KeyboardInterrupt):
        project.add_videos(vids)
    assert project.video_keys() == ["v0"]
    assert not list(project.data_dir.glob(".*"))  # no half-copied folder left behind
    assert set(project.splits().assignment) == {"v0"}
    monkeypatch.setattr(video, "channel_stats", real)
    with pytest.raises(ProjectError, match="skip-existing"):
        project.add_videos(vids)
    assert project.add_videos(vids, skip_existing=True) == ["v1", "v2"]  # the rerun resumes
    assert project.video_keys() == ["v0", "v1", "v2"]
    assert set(project.splits().assignment) == {"v0", "v1", "v2"}


def test_remove_video_keeps_its_files_in_trash(project, make_video):
    project.add_videos([make_video("a.mp4", seed=1), make_video("b.mp4", seed=2)])
    project.save_labels("a", Labels.empty(40, project.behaviors))
    moved = project.remove_video("a")
    assert project.video_keys() == ["b"] and "a" not in project.splits().assignment
    assert (moved / "a_labels.csv").exists() and (moved / "a.mp4").exists()


def test_normalization_pools_videos(project, make_video):
    project.add_videos([make_video("a.mp4", seed=1), make_video("b.mp4", seed=2)])
    norm = project.normalization()
    assert norm["n_frames"] == 80
    means = [project.record(k).stats["mean"] for k in ("a", "b")]
    np.testing.assert_allclose(norm["mean"], np.mean(means, axis=0), rtol=1e-6)


# ---------------------------------------------------------------- labels & behaviours


def _labelled(project, make_video):
    project.add_videos([make_video("a.mp4", seed=1, n=20)])
    lab = Labels.empty(20, project.behaviors)
    lab.array[:10, 0] = 1
    lab.array[10:, 0] = 0
    lab.array[5:8, 1] = 1
    project.save_labels("a", lab)
    return lab


def test_labels_default_unlabeled(project, make_video):
    project.add_videos([make_video("a.mp4", n=25)])
    lab = project.labels("a")
    assert lab.array.shape == (25, 2) and (lab.array == -1).all()


def test_add_behaviour_marks_it_unlabeled(project, make_video):
    lab = _labelled(project, make_video)
    project.add_behavior("dig")
    assert project.behaviors == ["groom", "rear", "dig"]
    assert Project.open(project.root).behaviors == ["groom", "rear", "dig"]
    new = project.labels("a")
    np.testing.assert_array_equal(new.array[:, :2], lab.array)
    assert (new.array[:, 2] == -1).all()
    header = (project.data_dir / "a" / "a_labels.csv").read_text().splitlines()[0]
    assert header == ",background,groom,rear,dig"


def test_remove_and_rename_behaviour(project, make_video):
    lab = _labelled(project, make_video)
    project.rename_behavior("rear", "rearing")
    assert project.labels("a").behaviors == ["groom", "rearing"]
    np.testing.assert_array_equal(project.labels("a").array, lab.array)
    project.remove_behavior("groom")
    assert project.behaviors == ["rearing"]
    np.testing.assert_array_equal(project.labels("a").array[:, 0], lab.array[:, 1])
    kept = list((project.root / ".trash").rglob("a.csv"))  # the removed column is not lost
    assert len(kept) == 1 and kept[0].read_text().splitlines()[0] == "groom"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda p: p.add_behavior("groom"), "duplicate"),
        (lambda p: p.add_behavior("none"), "implicit"),
        (lambda p: p.add_behavior("a b"), "unsafe"),
        (lambda p: p.remove_behavior("dig"), "no behaviour 'dig'"),
        (lambda p: p.rename_behavior("groom", "rear"), "duplicate"),
        (lambda p: p.rename_behavior("dig", "x"), "no behaviour"),
    ],
)
def test_behaviour_changes_refused_without_change(project, make_video, call, match):
    _labelled(project, make_video)
    before = snapshot(project.root)
    with pytest.raises(ProjectError, match=match):
        call(project)
    assert snapshot(project.root) == before


def test_models_with_other_behaviours_are_stale(project):
    run = project.models_dir / "240101_120000_feature_extractor_resnet18"
    run.mkdir()
    (run / "config.yaml").write_text(
        yaml.safe_dump({"project": {"class_names": ["background", "groom", "rear"]}})
    )
    assert project.check_run(run.name) == run
    assert [r["stale"] for r in project.model_runs()] == [False]
    project.add_behavior("dig")
    assert [r["stale"] for r in project.model_runs()] == [True]
    with pytest.raises(ProjectError, match=r"stale model.*retrain"):
        project.check_run(run.name)


# ---------------------------------------------------------------- DeepEthogram projects


@pytest.fixture
def deg_project(tmp_path, make_video):
    """A folder laid out the way DeepEthogram writes it."""
    root = tmp_path / "woolf_deepethogram"
    (root / "DATA" / "mouse00").mkdir(parents=True)
    (root / "models").mkdir()
    cfg = {
        "augs": {
            "LR": 0.5,
            "resize": [256, 256],
            "normalization": {"N": 10, "mean": [0.1, 0.2, 0.3], "std": [0.1, 0.1, 0.1]},
        },
        "compute": {"batch_size": 32, "gpu_id": 0, "num_workers": 8, "distributed": False},
        "project": {
            "class_names": ["background", "face_groom", "body_groom"],
            "config_file": str(root / "project_config.yaml"),
            "data_path": "DATA",
            "labeler": None,
            "model_path": "models",
            "name": "woolf",
            "path": str(root),
        },
        "feature_extractor": {"arch": "resnet50", "curriculum": True, "n_flows": 10},
        "tune": {"num_trials": 5},
        "sequence": {"filter_length": 15},
        "split": {"file": None, "reload": True},
        "train": {"loss_weight_exp": 1.0},
    }
    (root / "project_config.yaml").write_text(yaml.safe_dump(cfg))
    vid = make_video("mouse00.mp4", n=12)
    (root / "DATA" / "mouse00" / "mouse00.mp4").write_bytes(vid.read_bytes())
    rows = ["0,1,0,0", "1,0,1,0", "2,0,1,1"] + [f"{i},1,0,0" for i in range(3, 12)]
    (root / "DATA" / "mouse00" / "mouse00_labels.csv").write_text(
        ",background,face_groom,body_groom\n" + "\n".join(rows) + "\n"
    )
    (root / "DATA" / "mouse00" / "stats.yaml").write_text(
        yaml.safe_dump({"normalization": {"N": 2, "mean": [0.1, 0.2, 0.3], "std": [0.2] * 3}})
    )
    (root / "DATA" / "mouse00" / "record.yaml").write_text(
        yaml.safe_dump(
            {
                "key": "mouse00",
                "rgb": {"all": ["mouse00.mp4"], "default": "mouse00.mp4"},
                "label": {"all": ["mouse00_labels.csv"], "default": "mouse00_labels.csv"},
            }
        )
    )
    (root / "DATA" / "split.yaml").write_text(
        yaml.safe_dump({"metadata": {"split": [0.7, 0.15, 0.15]}, "train": ["mouse00"], "val": []})
    )
    return root


def test_open_deg_project_without_rewriting(deg_project):
    from deg_core.project.status import project_status

    before = snapshot(deg_project)
    p = Project.open(deg_project)
    assert p.behaviors == ["face_groom", "body_groom"]
    assert p.config.augs.resize == [256, 256] and p.config.compute.batch_size == 32
    assert p.ignored_keys == ["tune"]
    assert p.config.feature_extractor.arch == "resnet50"
    assert p.video_keys() == ["mouse00"]
    rec = p.record("mouse00").probe()
    assert rec.frames == 12 and rec.stats["mean"] == [0.1, 0.2, 0.3]
    lab = p.labels("mouse00")
    assert lab.array[:3].tolist() == [[0, 0], [1, 0], [1, 1]]
    assert p.splits().assignment == {"mouse00": "train"}
    status = project_status(p)
    assert status["videos"][0]["frames"] == 12
    assert status["behavior_totals"]["face_groom"]["positive_frames"] == 2
    assert snapshot(deg_project) == before  # opening and reading wrote nothing


def test_deg_project_label_csv_imports_unchanged(deg_project, tmp_path):
    p = Project.open(deg_project)
    src = deg_project / "DATA" / "mouse00" / "mouse00_labels.csv"
    text = src.read_text()
    copy = tmp_path / "exported.csv"
    copy.write_text(text)
    p.import_labels("mouse00", copy)
    assert src.read_text() == text  # DEG's format round-trips byte for byte


def test_save_labels_checks_shape(project, make_video):
    project.add_videos([make_video("a.mp4", n=20)])
    with pytest.raises(ProjectError, match="20"):
        project.save_labels("a", Labels.empty(19, project.behaviors))
    with pytest.raises(ProjectError, match="behaviours"):
        project.save_labels("a", Labels.empty(20, ["groom"]))
    path = project.save_labels("a", Labels.empty(20, project.behaviors))
    assert read_labels(path, project.behaviors, 20).n_frames == 20
    write_labels(path, Labels.empty(20, project.behaviors))


def test_videos_larger_than_the_free_space_are_refused_before_copying(
    project, make_video, monkeypatch
):
    import shutil as shutil_module
    from collections import namedtuple

    video = make_video("big.mp4")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda p: usage(10**9, 10**9, 100))
    before = snapshot(project.root)
    need = r"not enough space left on the device: the videos need \d+.\d kB, 0.1 kB free"
    with pytest.raises(ProjectError, match=need):
        project.add_videos([video])
    assert snapshot(project.root) == before
