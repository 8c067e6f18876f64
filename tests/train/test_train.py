"""Training the flow generator and feature extractor, runs, resume, and feature inference."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from deg_core.data.clips import clip_indices
from deg_core.errors import DegError, ProjectError
from deg_core.infer.features import infer_features, stacks
from deg_core.labels.labels import Labels
from deg_core.models.weights import load_checkpoint
from deg_core.project.project import Project
from deg_core.project.runs import BEST, LAST, METRICS, read_metrics, resolve_run
from deg_core.train.features import train_features
from deg_core.train.flow import train_flow
from deg_core.train.loop import Trainer
from tests.conftest import moving_square_frames
from tests.pipeline import NO_AUGS, TINY


def test_flow_training_writes_a_run_and_loss_falls(tiny_project, flow_run):
    assert flow_run.parent == tiny_project.models_dir
    assert "_flow_TinyMotionNet" in flow_run.name
    for name in ("config.yaml", BEST, LAST, METRICS):
        assert (flow_run / name).is_file()
    history = read_metrics(flow_run)
    assert [r["epoch"] for r in history] == [0, 1, 2]
    for r in history:
        keys = {"train_loss", "val_loss", "lr", "clips_per_s", "photometric", "smoothness"}
        assert keys <= set(r)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    best = load_checkpoint(flow_run / BEST)
    assert best["best_loss"] == min(r["val_loss"] for r in history)
    assert resolve_run(tiny_project.models_dir, "flow") == flow_run
    # the stages train with torch's fused Adam on a CPU (common.adam)
    assert load_checkpoint(flow_run / LAST)["optimizer"]["param_groups"][0]["fused"] is True


def test_fused_adam_makes_the_same_update_as_the_plain_one():
    from deg_core.train.common import adam

    torch.manual_seed(0)
    nets = [torch.nn.Linear(5, 3) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    fused = adam(nets[0].parameters(), lr=1e-2, weight_decay=1e-4)
    plain = torch.optim.Adam(nets[1].parameters(), lr=1e-2, weight_decay=1e-4)
    assert fused.defaults["fused"] is True and not plain.defaults["fused"]
    x = torch.randn(8, 5)
    for _ in range(5):
        for net, opt in zip(nets, (fused, plain), strict=True):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_best_checkpoint_keeps_the_lowest_validation_loss(tmp_path):
    model = torch.nn.Linear(2, 1)
    losses = iter([3.0, 1.0, 2.0])
    trainer = Trainer(
        run_dir=tmp_path,
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        step_fn=lambda m, b: (m(torch.ones(1, 2)).sum(), 1),
        validate_fn=lambda m, e: {"loss": next(losses)},
        loader_fn=lambda epoch, start: [{}] * (2 - start),
        num_epochs=3,
        steps_per_epoch=2,
        progress=False,
    )
    trainer.fit()
    best, last = load_checkpoint(tmp_path / BEST), load_checkpoint(tmp_path / LAST)
    assert best["epoch"] == 2  # saved after epoch index 1
    assert [r["best"] for r in read_metrics(tmp_path)] == [True, True, False]
    # best.pt is for inference: the model without the optimizer (a third of the size);
    # last.pt, which resumes, keeps it
    assert "optimizer" not in best and "scheduler" not in best and "model" in best
    assert "optimizer" in last and last["epoch"] == 3


class StopAt:
    """A callback that presses Ctrl-C at a given global step."""

    def __init__(self, step: int):
        self.step = step

    def on_step(self, trainer, loss):
        if trainer.global_step == self.step:
            raise KeyboardInterrupt

    def on_epoch_end(self, trainer, record):
        pass


def test_interrupted_flow_training_resumes_to_the_same_result(tiny_project):
    cfg = tiny_project.resolve_config(
        [*TINY, *NO_AUGS, "flow_generator.num_epochs=2", "flow_generator.steps_per_epoch=3"]
    )
    full = train_flow(tiny_project, cfg, device="cpu", progress=False, seed=3)
    with pytest.raises(KeyboardInterrupt):
        train_flow(tiny_project, cfg, device="cpu", progress=False, seed=3, callbacks=[StopAt(4)])
    runs = sorted(p for p in tiny_project.models_dir.iterdir() if p.name != full.name)
    stopped = runs[-1]
    assert load_checkpoint(stopped / LAST)["global_step"] == 4
    resumed = train_flow(
        tiny_project, cfg, device="cpu", progress=False, seed=3, resume=stopped.name
    )
    assert resumed == stopped
    a, b = load_checkpoint(full / LAST), load_checkpoint(stopped / LAST)
    assert a["global_step"] == b["global_step"] == 6
    for k, v in a["model"].items():
        torch.testing.assert_close(v, b["model"][k], msg=k)
    assert [r["epoch"] for r in read_metrics(stopped)] == [0, 1]


def test_training_is_repeatable_on_cpu(tiny_project):
    cfg = tiny_project.resolve_config(
        [*TINY, "flow_generator.num_epochs=1", "flow_generator.steps_per_epoch=2"]
    )
    a = train_flow(tiny_project, cfg, device="cpu", progress=False, seed=7)
    b = train_flow(tiny_project, cfg, device="cpu", progress=False, seed=7)
    assert read_metrics(a)[0]["train_loss"] == read_metrics(b)[0]["train_loss"]


def test_feature_training_records_metrics_and_thresholds(tiny_project, feature_run):
    history = read_metrics(feature_run)
    assert len(history) == 4
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    for r in history:
        assert set(r["f1"]) == {"groom", "rear"}
        assert len(r["thresholds"]) == 2
    best = load_checkpoint(feature_run / BEST)
    assert best["extra"]["class_names"] == ["groom", "rear"]
    assert all(0 < t <= 1 for t in best["extra"]["thresholds"])
    cfg = (feature_run / "config.yaml").read_text()
    assert "flow_run:" in cfg and "class_names:" in cfg


def test_feature_inference_writes_every_frame(tiny_project, feature_run):
    result = infer_features(
        tiny_project, feature_run.name, device="cpu", progress=False, overwrite=True
    )
    assert result == {k: "done" for k in tiny_project.video_keys()}
    for key in tiny_project.video_keys():
        with h5py.File(tiny_project.record(key).outputs_path, "r") as f:
            g = f[feature_run.name]
            assert g["spatial_features"].shape == (48, 512)
            assert g["flow_features"].shape == (48, 512)
            assert g["logits"].shape == (48, 2) and g["P"].shape == (48, 2)
            assert g["thresholds"].shape == (2,)
            assert [s.decode() if isinstance(s, bytes) else s for s in g["class_names"][:]] == [
                "groom",
                "rear",
            ]
            assert g["spatial_features"].dtype == np.float32
            p = g["P"][:]
            np.testing.assert_allclose(p, 1 / (1 + np.exp(-g["logits"][:])), rtol=1e-5)
            assert np.isfinite(g["flow_features"][:]).all()
    again = infer_features(tiny_project, feature_run.name, device="cpu", progress=False)
    assert set(again.values()) == {"skipped"}


def test_interrupted_inference_keeps_finished_videos(tiny_project, feature_run, monkeypatch):
    import deg_core.infer.features as infer

    keys = tiny_project.video_keys()
    for k in keys:
        tiny_project.record(k).outputs_path.unlink(missing_ok=True)
    real = infer.video_features
    calls = {"n": 0}

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        yield from real(*a, **kw)

    monkeypatch.setattr(infer, "video_features", flaky)
    with pytest.raises(KeyboardInterrupt):
        infer_features(tiny_project, feature_run.name, device="cpu", progress=False)
    done = [k for k in keys if tiny_project.record(k).outputs_path.exists()]
    assert done == keys[:1]
    assert not list(tiny_project.data_dir.rglob("*.tmp"))  # no half-written file left
    monkeypatch.setattr(infer, "video_features", real)
    result = infer_features(tiny_project, feature_run.name, device="cpu", progress=False)
    assert result == {keys[0]: "skipped", keys[1]: "done", keys[2]: "done"}


@pytest.mark.parametrize("n_rgb", [1, 4, 5, 11])
@pytest.mark.parametrize(("n_frames", "chunk", "batch"), [(7, 3, 2), (20, 64, 16), (33, 5, 4)])
def test_stacks_match_clip_indices(n_rgb, n_frames, chunk, batch):
    frames = np.arange(n_frames).reshape(n_frames, 1, 1, 1).astype(np.int64)
    chunks = (frames[i : i + chunk] for i in range(0, n_frames, chunk))
    got = {}
    for start, stack in stacks(chunks, n_frames, n_rgb, batch):
        assert stack.shape[1] == n_rgb and len(stack) <= batch
        for j, s in enumerate(stack):
            got[start + j] = s.ravel()
    assert sorted(got) == list(range(n_frames))
    for t in range(n_frames):
        np.testing.assert_array_equal(got[t], clip_indices(t, n_rgb, n_frames))


def test_stacks_detect_short_decodes():
    frames = np.zeros((5, 1, 1, 1))
    with pytest.raises(DegError, match="decoded"):
        list(stacks(iter([frames]), 8, 3, 4))


def test_features_need_a_flow_run_and_val_labels(tmp_path, make_video):
    project = Project.create(tmp_path, "p", ["a"])
    project.add_videos([make_video("x.mp4")], split="train")
    cfg = project.resolve_config(TINY)
    project.save_labels("x", Labels(["a"], np.zeros((40, 1), np.int8)))
    with pytest.raises(ProjectError, match="val split"):
        train_features(project, cfg, device="cpu", progress=False)
    project.add_videos([make_video("y.mp4", seed=3)], split="val")
    project.save_labels("y", Labels(["a"], np.zeros((40, 1), np.int8)))
    with pytest.raises(ProjectError, match="no trained flow model"):
        train_features(project, cfg, device="cpu", progress=False)


def test_cli_train_and_infer(tiny_project, flow_run, capsys, monkeypatch):
    from deg_core.cli import main

    monkeypatch.chdir(tiny_project.root.parent)
    root = tiny_project.root.name  # a path relative to the working directory
    assert main(["config", root, "--stage", "flow"]) == 0
    out = capsys.readouterr().out
    assert "flow_generator.arch" in out and "feature_extractor.arch" not in out
    sets = [x for s in TINY for x in ("--set", s)]
    code = main(
        [
            "train",
            "features",
            root,
            *sets,
            "--set",
            "feature_extractor.num_epochs=1",
            "--set",
            "feature_extractor.steps_per_epoch=1",
            "--device",
            "cpu",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "trained" in out and "F1" in out
    infer = ["infer", "features", root, "--videos", "v0", "--set", "compute.device=cpu"]
    assert main([*infer, "--set", "compute.batch_size=3"]) == 0
    assert "v0: features done" in capsys.readouterr().out
    # a model setting at inference would be silently ignored: refused, one line, nothing run
    assert main([*infer, "--overwrite", "--set", "feature_extractor.arch=resnet50"]) == 1
    err = capsys.readouterr().err.strip()
    assert "only compute.* settings" in err and "feature_extractor.arch" in err
    assert "\n" not in err
    metrics = (resolve_run(tiny_project.models_dir, "features") / METRICS).read_text()
    assert json.loads(metrics.splitlines()[0])["epoch"] == 0


def test_flow_preview_writes_a_png(tiny_project, flow_run, tmp_path):
    from deg_core.report.flow_preview import flow_preview

    path = flow_preview(tiny_project, flow_run.name, video="v1", frame=3, out=tmp_path / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_behaviour_without_positives_is_warned_not_fatal(tmp_path, tiny_project, flow_run):
    import shutil

    from deg_core.video import write_video

    project = Project.create(tmp_path, "rare", ["groom", "never"])
    for i, split in enumerate(["train", "val"]):
        p = tmp_path / f"r{i}.mp4"
        write_video(p, moving_square_frames(24, 64, 64, seed=i), fps=30)
        project.add_videos([p], split=split)
        lab = Labels.empty(24, project.behaviors)
        lab.array[:, 0] = (np.arange(24) % 6 < 3).astype(np.int8)
        lab.array[:, 1] = 0  # labelled, never present
        project.save_labels(f"r{i}", lab)
    shutil.copytree(flow_run, project.models_dir / flow_run.name)
    cfg = project.resolve_config(
        [*TINY, "feature_extractor.num_epochs=1", "feature_extractor.steps_per_epoch=2"]
    )
    with pytest.warns(UserWarning, match="'never' has no positive frames in the train split"):
        run = train_features(project, cfg, device="cpu", progress=False)
    record = read_metrics(run)[0]
    assert record["thresholds"][1] == 0.5  # fallback, fitted without a hang
    assert record["f1"]["never"] is None and record["macro_f1"] is not None


@pytest.mark.parametrize("fit_on", ["train", "train+val"])
def test_feature_fit_on_train_val_trains_on_the_val_video(tmp_path, flow_run, fit_on):
    """feature_extractor.fit_on: train+val: a behaviour labelled only in the val video has
    training examples (no "no positive frames in the train split" warning); train: it has none."""
    import shutil
    import warnings

    from deg_core.video import write_video

    project = Project.create(tmp_path, "tv", ["groom", "rear"])
    for i, split in enumerate(["train", "val"]):
        p = tmp_path / f"v{i}.mp4"
        write_video(p, moving_square_frames(24, 64, 64, seed=i), fps=30)
        project.add_videos([p], split=split)
        lab = Labels.empty(24, project.behaviors)
        lab.array[:, 0] = (np.arange(24) % 6 < 3).astype(np.int8)
        lab.array[:, 1] = (np.arange(24) % 8 < 4).astype(np.int8) if split == "val" else 0
        project.save_labels(f"v{i}", lab)
    shutil.copytree(flow_run, project.models_dir / flow_run.name)
    cfg = project.resolve_config(
        [
            *TINY,
            "feature_extractor.num_epochs=1",
            "feature_extractor.steps_per_epoch=2",
            f"feature_extractor.fit_on={fit_on}",
        ]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train_features(project, cfg, device="cpu", progress=False)
    unseen = [w for w in caught if "'rear' has no positive frames in the train" in str(w.message)]
    assert bool(unseen) == (fit_on == "train")
    assert f"fit_on: {fit_on}" in (run / "config.yaml").read_text()


@pytest.mark.gpu
def test_cuda_training_and_inference_match_cpu_shapes(tiny_project, flow_run):
    cfg = tiny_project.resolve_config(
        [*TINY, "feature_extractor.num_epochs=1", "feature_extractor.steps_per_epoch=2"]
    )
    run = train_features(tiny_project, cfg, flow_run=flow_run.name, device="cuda", progress=False)
    result = infer_features(tiny_project, run.name, device="cuda", progress=False)
    assert set(result.values()) == {"done"}
    with h5py.File(tiny_project.record("v0").outputs_path, "r") as f:
        assert f[run.name]["P"].shape == (48, 2)


def test_out_of_memory_splits_the_batch_into_accumulated_pieces(tmp_path):
    """A step too big for the device runs as pieces whose gradients add up to the same step;
    at one sample per piece it stops with one clear line."""
    from deg_core.compute.autobatch import BatchSizeWarning
    from deg_core.errors import DegError

    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    batch = {"x": x, "y": y, "frame": list(range(8))}

    def run(limit: int) -> tuple[Trainer, torch.nn.Module]:
        torch.manual_seed(1)
        model = torch.nn.Linear(3, 1)

        def step(m, b):
            if len(b["x"]) > limit:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return torch.nn.functional.mse_loss(m(b["x"]), b["y"]), len(b["x"])

        trainer = Trainer(
            run_dir=tmp_path / f"limit{limit}",
            model=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            step_fn=step,
            validate_fn=lambda m, e: {"loss": 0.0},
            loader_fn=lambda epoch, start: [batch] * (2 - start),
            num_epochs=1,
            steps_per_epoch=2,
            progress=False,
        )
        (tmp_path / f"limit{limit}").mkdir()
        return trainer, model

    whole, model_whole = run(8)
    whole.fit()
    split, model_split = run(3)
    with pytest.warns(BatchSizeWarning) as caught:
        split.fit()
    assert [str(w.message).split(" now ")[1] for w in caught] == [
        "runs as 2 pieces (gradients accumulated)",
        "runs as 4 pieces (gradients accumulated)",
    ]
    assert split.micro_batches == 4  # 8 -> 2 pieces (4 each, too big) -> 4 pieces of 2
    for a, b in zip(model_whole.parameters(), model_split.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert split.history[0]["train_loss"] == pytest.approx(whole.history[0]["train_loss"])
    hopeless, _ = run(0)
    with (
        pytest.raises(DegError, match="out of device memory at 1 clip"),
        pytest.warns(BatchSizeWarning),
    ):
        hopeless.fit()
