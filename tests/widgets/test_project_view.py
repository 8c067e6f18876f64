"""ProjectView (Python side): the tables it sends, refresh, selection, runs, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import traitlets

from deg_core.fileio import save_yaml
from deg_core.labels.bouts import count_bouts
from deg_core.labels.labels import Labels
from deg_core.workflow.synthetic import SyntheticSpec, make_synthetic_project
from deg_widgets.project_view import ProjectView, build_summary, run_summary


@pytest.fixture
def synthetic(tmp_path):
    spec = SyntheticSpec(n_frames=60, size=64, behaviors=("walk", "groom", "rear"))
    return make_synthetic_project(tmp_path, "pv", 3, spec=spec, labeled_fraction=0.6)


def _row(view, key):
    return next(v for v in view.summary["videos"] if v["key"] == key)


def test_tables_hold_the_projects_numbers(synthetic):
    view = ProjectView(synthetic)
    s = view.summary
    assert s["project"] == "pv"
    assert s["behaviors"] == ["walk", "groom", "rear"]
    assert [v["key"] for v in s["videos"]] == synthetic.video_keys()
    assert s["splits"] == {"train": 2, "val": 1, "test": 0}
    pos = dict.fromkeys(synthetic.behaviors, 0)
    bouts = dict.fromkeys(synthetic.behaviors, 0)
    for key in synthetic.video_keys():
        row, labels = _row(view, key), synthetic.labels(key)
        assert (row["frames"], row["width"], row["height"]) == (60, 64, 64)
        assert row["fps"] == pytest.approx(30.0)
        assert row["split"] == synthetic.splits().assignment[key]
        frac = (labels.array != -1).mean(axis=0)
        assert row["labeled"] == pytest.approx(float(frac.mean()))
        assert row["labeled"] == pytest.approx(0.6, abs=0.02)
        expected = dict(zip(labels.behaviors, frac, strict=True))
        assert row["labeled_fraction"] == pytest.approx(expected)
        assert row["labels_file"] and not row["predictions"]
        assert row["features"] == row["sequence"] == []
        for i, b in enumerate(labels.behaviors):
            pos[b] += int((labels.array[:, i] == 1).sum())
            bouts[b] += int(count_bouts(labels.array)[i])
    assert {t["name"]: t["positive_frames"] for t in s["behavior_totals"]} == pos
    assert {t["name"]: t["bouts"] for t in s["behavior_totals"]} == bouts
    assert sum(pos.values()) > 0  # the check above can tell tables apart
    assert s["runs"] == [] and s["warnings"] == []
    json.dumps(s, allow_nan=False)  # the trait is JSON: no NaN, no numpy scalars


def test_accepts_a_path_and_rejects_unknown_kwargs(synthetic):
    assert ProjectView(str(synthetic.root)).summary["project"] == "pv"
    assert ProjectView(synthetic.root).project.root == synthetic.root
    with pytest.raises(TypeError, match="projekt"):
        ProjectView(synthetic, projekt=1)


def test_refresh_picks_up_a_new_video_and_a_new_label_file(project, make_video):
    project.add_video(make_video("a.mp4", n=40), split="train")
    view = ProjectView(project)
    assert [v["key"] for v in view.summary["videos"]] == ["a"]
    assert not _row(view, "a")["labels_file"]
    assert _row(view, "a")["labeled"] == 0

    project.add_video(make_video("b.mp4", n=30, seed=1), split="val")
    labels = Labels.empty(40, project.behaviors)
    labels.array[:10, 0] = 1  # groom: frames 0-9, one bout
    labels.array[:20, 1] = 0  # rear: labelled absent on half
    project.save_labels("a", labels)
    assert [v["key"] for v in view.summary["videos"]] == ["a"]  # nothing until refresh

    view.refresh()
    assert [v["key"] for v in view.summary["videos"]] == ["a", "b"]
    a = _row(view, "a")
    assert a["labels_file"]
    assert a["labeled_fraction"] == {"groom": 0.25, "rear": 0.5}
    assert a["labeled"] == pytest.approx(0.375)
    assert _row(view, "b")["frames"] == 30
    totals = {t["name"]: t for t in view.summary["behavior_totals"]}
    assert (totals["groom"]["positive_frames"], totals["groom"]["bouts"]) == (10, 1)
    assert totals["rear"]["labeled_frames"] == 20


def test_refresh_button_message_and_errors_reach_the_widget(project, make_video):
    project.add_video(make_video("a.mp4"), split="train")
    view = ProjectView(project)
    project.add_video(make_video("b.mp4", seed=2), split="val")
    view._on_msg(view, {"type": "refresh"}, [])  # what the front end's button sends
    assert view.video_keys() == ["a", "b"]
    assert view.error == ""
    project.config_path.unlink()  # the project is gone: refresh fails, visibly
    view._on_msg(view, {"type": "refresh"}, [])
    assert view.error.startswith("ProjectError:") and "no project_config.yaml" in view.error
    assert view.video_keys() == ["a", "b"]  # the last good tables stay


def test_selected_is_validated_and_cleared_when_the_video_goes(project, make_video):
    project.add_video(make_video("a.mp4"), split="train")
    project.add_video(make_video("b.mp4", seed=1), split="val")
    view = ProjectView(project)
    seen = []
    view.observe(lambda ch: seen.append(ch["new"]), "selected")
    view.selected = "b"
    assert seen == ["b"]
    with pytest.raises(traitlets.TraitError, match="no video 'nope'"):
        view.selected = "nope"
    project.remove_video("b")
    view.refresh()
    assert view.selected == ""


def _fake_run(models, name, behaviors, records):
    run = models / name
    run.mkdir(parents=True)
    stage, arch = name.split("_")[2:4]
    save_yaml(run / "config.yaml", {"stage": stage, "arch": arch, "class_names": behaviors})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def test_runs_show_best_epoch_metrics_and_stale_flag(project, make_video):
    project.add_video(make_video("a.mp4"), split="train")
    rec = [
        {"epoch": 0, "val_loss": 0.9, "best": True, "macro_f1": 0.2, "f1": {"groom": 0.3}},
        {"epoch": 1, "val_loss": 0.5, "best": True, "macro_f1": 0.6,
         "f1": {"groom": 0.7, "rear": 0.5}},
        {"epoch": 2, "val_loss": 0.7, "best": False, "macro_f1": 0.9, "f1": {"groom": 1.0}},
    ]  # fmt: skip
    _fake_run(project.models_dir, "240101_120000_sequence_tgmj", ["groom", "rear"], rec)
    _fake_run(project.models_dir, "240101_110000_flow_tinymotionnet", ["groom", "rear"],
              [{"epoch": 0, "val_loss": float("nan")}, {"epoch": 1, "val_loss": 0.25}])  # fmt: skip
    _fake_run(project.models_dir, "230101_100000_features_resnet18", ["groom", "walk"], [])
    view = ProjectView(project)
    runs = {r["name"]: r for r in view.summary["runs"]}
    assert [r["stage"] for r in view.summary["runs"]] == ["flow", "features", "sequence"]
    seq = runs["240101_120000_sequence_tgmj"]
    assert (seq["arch"], seq["epochs"], seq["best_epoch"]) == ("tgmj", 3, 1)
    assert seq["best_val_loss"] == 0.5 and seq["macro_f1"] == 0.6
    assert seq["f1"] == {"groom": 0.7, "rear": 0.5}
    assert not seq["stale"]
    flow = runs["240101_110000_flow_tinymotionnet"]
    assert (flow["best_val_loss"], flow["macro_f1"], flow["f1"]) == (0.25, None, {})
    feat = runs["230101_100000_features_resnet18"]
    assert feat["stale"] and feat["epochs"] == 0 and feat["best_val_loss"] is None
    assert any("stale" in w for w in view.summary["warnings"])
    json.dumps(view.summary, allow_nan=False)


def test_run_summary_survives_a_corrupt_metrics_file(tmp_path):
    run = tmp_path / "240101_120000_sequence_tgmj"
    run.mkdir()
    # a half-written last line is what a kill leaves (skipped); a bad middle line is damage
    (run / "metrics.jsonl").write_text('{"epoch": 0, "val_loss": 1.0}\n{"epoch": 1, "val\n{}\n')
    row = run_summary(run, stale=False, behaviors=None)
    assert row["error"] and row["stage"] == "sequence" and row["arch"] == "tgmj"


def test_outputs_are_sorted_into_feature_and_sequence_runs(project, make_video):
    import h5py

    key = project.add_video(make_video("a.mp4"), split="train")
    with h5py.File(project.record(key).outputs_path, "w") as f:
        f.create_group("240101_120000_features_resnet18")
        f.create_group("240102_120000_sequence_tgmj")
        f.create_group("imported")
    project.record(key).predictions_path.write_text("x\n")
    row = build_summary(project)["videos"][0]
    assert row["features"] == ["240101_120000_features_resnet18"]
    assert row["sequence"] == ["240102_120000_sequence_tgmj"]
    assert row["other_outputs"] == ["imported"]
    assert row["predictions"] and row["outputs_error"] is None


def test_labels_partial_with_known_fraction(project, make_video):
    key = project.add_video(make_video("a.mp4", n=40), split="train")
    labels = Labels.empty(40, project.behaviors)
    labels.array[np.arange(40) % 4 == 0, :] = 0  # every 4th frame labelled
    project.save_labels(key, labels)
    assert build_summary(project)["videos"][0]["labeled"] == pytest.approx(0.25)
