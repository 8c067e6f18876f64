"""Stage 3: sequence training, inference, predictions, evaluation, import-predictions, bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from deg_core.cli import main
from deg_core.errors import ProjectError
from deg_core.evaluation.scoring import evaluate_project
from deg_core.infer.features import infer_features
from deg_core.infer.sequence import import_predictions, infer_sequence, sequence_logits
from deg_core.labels.labels import Labels, read_labels
from deg_core.models.sequence import build_sequence_model
from deg_core.models.weights import load_checkpoint
from deg_core.project.runs import BEST, read_metrics
from deg_core.train.sequence import train_sequence
from tests.pipeline import TINY

SEQ = [
    *TINY,
    "sequence.sequence_length=16",
    "sequence.batch_size=4",
    "sequence.num_epochs=3",
    "sequence.steps_per_epoch=6",
    "sequence.lr=3e-3",
]


@pytest.fixture(scope="module")
def with_features(tiny_project, feature_run):
    infer_features(tiny_project, feature_run.name, device="cpu", progress=False)
    return feature_run


@pytest.fixture(scope="module", params=["tgmj", "tcn"])
def sequence_run(request, tiny_project, with_features):
    cfg = tiny_project.resolve_config([*SEQ, f"sequence.arch={request.param}"])
    return train_sequence(
        tiny_project, cfg, feature_run=with_features.name, device="cpu", progress=False
    )


def test_sequence_training_records_run(sequence_run):
    history = read_metrics(sequence_run)
    assert len(history) == 3
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    extra = load_checkpoint(sequence_run / BEST)["extra"]
    assert len(extra["thresholds"]) == 2 and len(extra["min_lengths"]) == 2
    assert set(history[0]["f1"]) == {"groom", "rear"}


def test_sequence_inference_writes_group_and_predictions(tiny_project, sequence_run):
    result = infer_sequence(tiny_project, sequence_run.name, device="cpu")
    assert set(result.values()) == {"done"}
    for key in tiny_project.video_keys():
        rec = tiny_project.record(key)
        with h5py.File(rec.outputs_path, "r") as f:
            g = f[sequence_run.name]
            assert g["logits"].shape == (48, 2) and g["P"].shape == (48, 2)
            assert g["thresholds"].shape == (2,)
        pred = read_labels(rec.predictions_path, tiny_project.behaviors, 48)
        assert set(np.unique(pred.array)) <= {0, 1}  # every frame predicted
        header = rec.predictions_path.read_text().splitlines()[0]
        assert header == ",background,groom,rear"
    assert set(infer_sequence(tiny_project, sequence_run.name, device="cpu").values()) == {
        "skipped"
    }


def test_chunked_inference_equals_whole_video():
    model = build_sequence_model("tgmj", 8, 2).eval()
    feats = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    whole = sequence_logits(model, feats, chunk=10_000)
    chunked = sequence_logits(model, feats, chunk=64)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def test_evaluate_and_cli(tiny_project, sequence_run, with_features, capsys, tmp_path):
    infer_sequence(tiny_project, sequence_run.name, device="cpu")
    result = evaluate_project(tiny_project, "val", "sequence", sequence_run.name)
    assert result["videos"] == ["v2"]
    assert set(result["f1"]) == {"groom", "rear"}
    out = tmp_path / "m.json"
    code = main(
        ["evaluate", str(tiny_project.root), "--run", sequence_run.name, "--json", str(out)]
    )
    assert code == 0
    assert "macro F1" in capsys.readouterr().out
    assert json.loads(out.read_text())["run"] == sequence_run.name
    infer_features(tiny_project, with_features.name, device="cpu", progress=False)
    root = str(tiny_project.root)
    # the run explicitly: other modules may have trained newer feature runs in this session
    code = main(
        ["evaluate", root, "--model", "features", "--split", "train", "--run", with_features.name]
    )
    assert code == 0


def test_import_predictions_fills_only_unlabelled(tiny_project, sequence_run):
    infer_sequence(tiny_project, sequence_run.name, device="cpu")
    key = "v0"
    original = tiny_project.labels(key)
    try:
        partial = original.array.copy()
        partial[10:20] = -1
        tiny_project.save_labels(key, Labels(tiny_project.behaviors, partial))
        pred = read_labels(tiny_project.record(key).predictions_path, tiny_project.behaviors, 48)
        merged = import_predictions(tiny_project, key)
        np.testing.assert_array_equal(merged.array[10:20], pred.array[10:20])
        np.testing.assert_array_equal(merged.array[:10], partial[:10])
        np.testing.assert_array_equal(merged.array[40:, 0], partial[40:, 0])  # labelled: kept
        np.testing.assert_array_equal(merged.array[40:, 1], pred.array[40:, 1])  # was -1
        assert (tiny_project.labels(key).array == merged.array).all()
        over = import_predictions(tiny_project, key, overwrite=True)
        np.testing.assert_array_equal(over.array, pred.array)
    finally:
        tiny_project.save_labels(key, original)


def test_missing_features_are_named_with_the_command(tiny_project, with_features, tmp_path):
    rec = tiny_project.record("v1")
    backup = tmp_path / "out.h5"
    backup.write_bytes(rec.outputs_path.read_bytes())
    rec.outputs_path.unlink()
    try:
        with pytest.raises(ProjectError, match=r"videos without features.*v1.*deg infer features"):
            train_sequence(
                tiny_project,
                tiny_project.resolve_config(SEQ),
                feature_run=with_features.name,
                device="cpu",
                progress=False,
            )
    finally:
        rec.outputs_path.write_bytes(backup.read_bytes())


def test_features_of_other_behaviours_are_refused(tiny_project, with_features, tmp_path):
    import shutil

    from deg_core.project.project import Project

    other = Project.create(tmp_path, "other", ["groom", "rear", "dig"])
    shutil.copytree(with_features, other.models_dir / with_features.name)
    with pytest.raises(ProjectError, match="stale model"):
        train_sequence(other, other.resolve_config(SEQ), device="cpu", progress=False)


def test_import_predictions_without_predictions(tmp_path, make_video):
    from deg_core.project.project import Project

    p = Project.create(tmp_path, "np", ["a"])
    p.add_videos([make_video("x.mp4")])
    with pytest.raises(ProjectError, match="no predictions"):
        import_predictions(p, "x")


# --------------------------------------------------------------------------- decisions


def test_default_decision_is_fitted_on_val_and_recorded(sequence_run):
    extra = load_checkpoint(sequence_run / BEST)["extra"]
    decision = extra["decision"]
    assert decision["source"] == "val" and not decision["exclusive"]
    assert not decision["normalise"]  # auto: thresholds see the scores as they are
    assert decision["thresholds"] == extra["thresholds"] and len(decision["thresholds"]) == 2
    assert not (sequence_run / "oof_logits.npz").exists()


def test_val_decisions_with_fit_on_train_val_is_refused(tiny_project, with_features):
    from deg_core.errors import ConfigError

    cfg = tiny_project.resolve_config([*SEQ, "sequence.decisions=val", "sequence.fit_on=train+val"])
    with pytest.raises(ConfigError, match="out_of_fold"):
        train_sequence(tiny_project, cfg, feature_run=with_features.name, device="cpu")


def test_plain_argmax_trains_on_train_val_with_val_decisions(tiny_project, with_features):
    """An exclusive project's plain arg-max fits nothing on the val videos, so fit_on
    train+val needs no out-of-fold models; arg-max offsets would, and are refused."""
    from deg_core.errors import ConfigError

    base = [*SEQ, "sequence.arch=tcn", "project.exclusive=true", "sequence.fit_on=train+val"]
    cfg = tiny_project.resolve_config(base)
    run = train_sequence(
        tiny_project, cfg, feature_run=with_features.name, device="cpu", progress=False
    )
    decision = load_checkpoint(run / BEST)["extra"]["decision"]
    assert decision["exclusive"] and decision["source"] == "val"
    assert not any(decision["offsets"] or [])
    assert "trained_on: train+val" in (run / "config.yaml").read_text()
    cfg = tiny_project.resolve_config([*base, "sequence.argmax_offsets=true"])
    with pytest.raises(ConfigError, match="out_of_fold"):
        train_sequence(tiny_project, cfg, feature_run=with_features.name, device="cpu")


@pytest.mark.parametrize(
    ("sets", "trained_on"),
    [
        (["project.exclusive=true"], "train+val"),  # the plain arg-max fits nothing on val
        (["project.exclusive=true", "sequence.argmax_offsets=true"], "train"),
        ([], "train"),  # thresholds fitted on the val videos
    ],
)
def test_fit_on_auto_adds_the_val_videos_only_where_they_fit_nothing(
    tiny_project, with_features, sets, trained_on
):
    cfg = tiny_project.resolve_config([*SEQ, "sequence.arch=tcn", *sets])
    assert cfg.sequence.fit_on == "auto"
    run = train_sequence(
        tiny_project, cfg, feature_run=with_features.name, device="cpu", progress=False
    )
    assert f"trained_on: {trained_on}" in (run / "config.yaml").read_text()


def test_exclusive_run_predicts_exactly_one_class_per_frame(tiny_project, with_features):
    """project.exclusive: softmax over background + behaviours, arg-max with offsets fitted
    out of fold; every frame of every prediction file holds one class."""
    cfg = tiny_project.resolve_config(
        [
            *SEQ,
            "sequence.arch=tcn",
            "project.exclusive=true",
            "sequence.decisions=out_of_fold",
            "sequence.argmax_offsets=true",
        ]
    )
    run = train_sequence(
        tiny_project, cfg, feature_run=with_features.name, device="cpu", progress=False
    )
    decision = load_checkpoint(run / BEST)["extra"]["decision"]
    assert decision["exclusive"] and len(decision["offsets"]) == 2
    assert decision["normalise"]  # auto: the arg-max compares per-video standardised scores
    assert decision["source"].startswith("out-of-fold over 3 labelled videos")
    assert (run / "decision.yaml").is_file()
    oof = np.load(run / "oof_logits.npz")
    assert sorted(oof.files) == sorted(tiny_project.video_keys())
    assert all(oof[k].shape == (48, 2) for k in oof.files)
    infer_sequence(tiny_project, run.name, device="cpu", overwrite=True)
    for key in tiny_project.video_keys():
        rec = tiny_project.record(key)
        with h5py.File(rec.outputs_path, "r") as f:
            p = f[run.name]["P"][:]
        assert (p.sum(axis=1) <= 1 + 1e-5).all()  # a softmax with background left out
        table = np.loadtxt(rec.predictions_path, delimiter=",", skiprows=1)[:, 1:]
        assert (table.sum(axis=1) == 1).all()  # background + behaviours: exactly one
    result = evaluate_project(tiny_project, "val", "sequence", run.name)
    assert result["decision"]["exclusive"]


def test_self_training_adds_confident_frames_of_unlabelled_videos(monkeypatch):
    """The teacher labels frames it is sure of; the rest stays unlabelled (-1)."""
    from types import SimpleNamespace

    from deg_core.config import DegConfig
    from deg_core.data.sequences import SequenceItem
    from deg_core.train import sequence as seqmod

    rng = np.random.default_rng(0)
    t = np.arange(200)
    y = np.stack([(t // 20) % 2, np.zeros(200, int)], 1).astype(np.int8)
    y[100:, 1] = ((t[100:] // 10) % 2).astype(np.int8)
    feats = (rng.normal(0, 0.3, (200, 4)) + np.c_[y, y]).astype(np.float32)
    labelled = [SequenceItem(feats, y)]
    other = (rng.normal(0, 0.3, (120, 4)) + 1.0).astype(np.float32)
    project = SimpleNamespace(video_keys=lambda: ["lab", "new"])
    monkeypatch.setattr(seqmod, "features_or_explain", lambda p, keys, run, **kw: {"new": other})
    cfg = DegConfig()
    cfg.sequence.sequence_length = 32
    cfg.sequence.num_epochs = 4
    cfg.sequence.steps_per_epoch = 10
    cfg.sequence.lr = 3e-3
    cfg.sequence.pseudo_confidence = 0.8
    items = seqmod.self_training_items(
        project, cfg, "run", labelled, ["lab"], False, batch=4, device=torch_cpu(), seed=0
    )
    assert len(items) == 1 and items[0].features is other
    lab = items[0].labels
    assert lab.shape == (120, 2) and set(np.unique(lab)) <= {-1, 0, 1}
    assert (lab != -1).mean() > 0.3


def test_pseudo_labels_keep_only_confident_frames():
    from deg_core.train.sequence import pseudo_labels

    logits = np.array([[5.0, -5.0], [0.1, 0.0], [-6.0, -6.0]], np.float32)
    multi = pseudo_labels(logits, exclusive=False, confidence=0.9)
    assert multi.tolist() == [[1, 0], [-1, -1], [0, 0]]
    excl = pseudo_labels(logits, exclusive=True, confidence=0.9)
    assert excl.tolist() == [[1, 0], [-1, -1], [0, 0]]  # last frame: background


def torch_cpu():
    import torch

    return torch.device("cpu")


def test_track_position_false_drops_where_the_animal_is(tiny_project, with_features):
    from deg_core.data.sequences import features_or_explain

    key = tiny_project.video_keys()[0]
    full = features_or_explain(tiny_project, [key], with_features.name, track=True)[key]
    moved = features_or_explain(
        tiny_project, [key], with_features.name, track=True, track_position=False
    )[key]
    assert moved.shape[1] == full.shape[1] - 2
    np.testing.assert_array_equal(moved[:, :1024], full[:, :1024])
    np.testing.assert_array_equal(moved[:, 1024:], full[:, 1026:])


def test_standardise_inputs_zscores_each_column_per_video_in_training_and_inference(
    tiny_project, with_features
):
    """sequence.standardise_inputs: each input column has mean 0 and sd 1 over its video,
    in the trainer's inputs and in inference's (the run records it)."""
    from deg_core.data.sequences import features_or_explain, standardise_columns
    from deg_core.infer.sequence import SequencePredictor

    key = tiny_project.video_keys()[0]
    raw = features_or_explain(tiny_project, [key], with_features.name)[key]
    z = features_or_explain(tiny_project, [key], with_features.name, standardise=True)[key]
    varying = raw.std(axis=0) > 1e-6
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=0)[varying], 1, atol=1e-3)
    assert np.all(z[:, ~varying] == 0)
    # a per-video offset cancels (in float64: float32's raw + 5 rounds away up to 5e-7, which
    # a column whose sd is 1e-3 would blow up to 5e-4)
    np.testing.assert_allclose(standardise_columns(raw.astype(np.float64) + 5.0), z, atol=1e-4)
    cfg = tiny_project.resolve_config([*SEQ, "sequence.standardise_inputs=true"])
    run = train_sequence(
        tiny_project, cfg, feature_run=with_features.name, device="cpu", progress=False
    )
    assert SequencePredictor.load(tiny_project, run.name).standardise_inputs
