"""The guided notebooks: stripped in git, built from notebooks/src/*.py by notebooks/build.py,
and each one run headless with papermill on a tiny generated project. The tests assert on the
values a notebook recorded (``reports/<name>_metrics.json``) and on the project it left behind."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

from deg_core.labels.labels import Labels, read_labels
from deg_core.project.project import Project
from deg_core.workflow.stages import latest_run
from deg_core.workflow.synthetic import SyntheticSpec, make_synthetic_project, write_synthetic_video

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
GUIDED = [
    "00_quickstart",
    "01_project",
    "02_videos",
    "03_label",
    "04_flow_generator",
    "05_feature_extractor",
    "06_extract_features",
    "07_sequence_model",
    "08_review",
    "09_new_videos",
    "10_animals",
    "retrain",
]
# CI-sized: 32x32 inputs, an epoch or two of two steps each
HAS_PYNWB = importlib.util.find_spec("pynwb") is not None  # the nwb extra (CI installs it)
TINY_SETTINGS = [
    "augs.resize=[32, 32]",
    "compute.num_workers=0",
    "flow_generator.weights=scratch",
    "flow_generator.n_rgb=5",
    "flow_generator.batch_size=2",
    "flow_generator.num_epochs=1",
    "flow_generator.steps_per_epoch=2",
    "flow_generator.val_steps=1",
    "feature_extractor.weights=scratch",
    "feature_extractor.batch_size=4",
    "feature_extractor.num_epochs=1",
    "feature_extractor.steps_per_epoch=2",
    "feature_extractor.val_steps=2",
    "sequence.sequence_length=16",
    "sequence.batch_size=4",
    "sequence.num_epochs=2",
    "sequence.steps_per_epoch=2",
]
# 3 videos (train, val, test) of 64 frames; with this seed both behaviours occur in each
SPEC = SyntheticSpec(
    n_frames=64,
    size=32,
    behaviors=("walk", "groom"),
    seed=1,
    bout_frames=(6, 16),
    gap_frames=(3, 10),
)
BEHAVIORS = list(SPEC.behaviors)


def make_tiny_project(parent: Path) -> Project:
    project = make_synthetic_project(
        parent, "tiny", 3, spec=SPEC, splits=("train", "val", "test"), labeled_fraction=0.75
    )
    for key in project.video_keys():  # the stages below need both behaviours everywhere
        assert (project.labels(key).array == 1).any(axis=0).all(), key
    return project


def execute(notebook: str, workdir: Path, /, **parameters: Any) -> nbformat.NotebookNode:
    """Run ``notebooks/<notebook>.ipynb`` with papermill; returns the executed notebook."""
    import papermill

    out = workdir / f"{notebook}.executed.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{notebook}.ipynb"),
        str(out),
        parameters=parameters,
        kernel_name="python3",
        progress_bar=False,
        cwd=str(workdir),
    )
    return nbformat.read(out, as_version=4)


def recorded(project_root: Path, name: str) -> dict[str, Any]:
    return json.loads((project_root / "reports" / f"{name}_metrics.json").read_text())


def pngs(nb: nbformat.NotebookNode) -> int:
    """How many pictures the executed notebook shows."""
    return sum(
        "image/png" in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )


@pytest.fixture(scope="session")
def stages(tmp_path_factory) -> dict[str, Path]:
    """Copies of one tiny project after each stage: videos, flow, features, extracted, sequence.

    Each copy is a folder holding ``tiny_deepethogram/`` and ``_synthetic_videos/`` (the
    videos with their true labels)."""
    from deg_core.infer.features import infer_features
    from deg_core.train.features import train_features
    from deg_core.train.flow import train_flow
    from deg_core.train.sequence import train_sequence

    base = tmp_path_factory.mktemp("notebook_stages")
    work = base / "work"
    work.mkdir()
    project = make_tiny_project(work)
    cfg = project.resolve_config(TINY_SETTINGS)
    kw: dict[str, Any] = {"device": "cpu", "progress": False}
    snaps = {}

    def snap(stage: str) -> None:
        snaps[stage] = base / stage
        shutil.copytree(work, snaps[stage])

    snap("videos")
    train_flow(project, cfg, **kw)
    snap("flow")
    train_features(project, cfg, **kw)
    snap("features")
    infer_features(project, **kw)
    snap("extracted")
    train_sequence(project, cfg, **kw)
    snap("sequence")
    return snaps


@pytest.fixture
def at_stage(stages, tmp_path):
    """at_stage(name) -> root of a fresh copy of the tiny project after that stage."""

    def copy(stage: str) -> Path:
        shutil.copytree(stages[stage], tmp_path / "work")
        return tmp_path / "work" / "tiny_deepethogram"

    return copy


# --------------------------------------------------------------------------- the files


def load_build():
    spec = importlib.util.spec_from_file_location("build", NOTEBOOKS / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", GUIDED)
def test_notebook_is_stripped_with_one_parameters_cell(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), "outputs in git"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    # steps: a heading and one sentence, then a short cell
    for md, cell in zip(nb.cells[2::2], nb.cells[3::2], strict=True):
        assert md.cell_type == "markdown" and md.source.startswith("## "), md.source
        assert cell.cell_type == "code" and len(cell.source.splitlines()) <= 30


@pytest.mark.parametrize("name", GUIDED)
def test_papermill_sees_every_parameter(name):
    import papermill

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    source = nb.cells[1].source.splitlines()
    assigned = [re.match(r"\w+", line)[0] for line in source if line and line[0].isalpha()]
    assert list(papermill.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))) == assigned


def test_every_notebook_is_committed_as_built():
    build = load_build()
    assert set(build.NOTEBOOKS) == set(GUIDED)
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(GUIDED)
    for name in GUIDED:
        text = (NOTEBOOKS / f"{name}.ipynb").read_text()
        assert text == build.render(name), f"{name}: run `uv run python notebooks/build.py`"


def test_retrain_cells_each_name_their_step():
    nb = nbformat.read(NOTEBOOKS / "retrain.ipynb", as_version=4)
    tags = [t for c in nb.cells[2:] if c.cell_type == "code" for t in c.metadata["tags"]]
    assert tags[:5] == ["step:setup", "step:flow", "step:features", "step:sequence", "step:infer"]


# --------------------------------------------------------------------------- helpers they use


# --------------------------------------------------------------------------- running them


@pytest.mark.slow
def test_00_quickstart(tmp_path):
    nb = execute(
        "00_quickstart",
        tmp_path,
        workdir=str(tmp_path),
        n_videos=3,
        n_frames=64,
        frame_size=32,
        device="cpu",
        settings=TINY_SETTINGS,
    )
    root = tmp_path / "demo_deepethogram"
    got = recorded(root, "00_quickstart")
    assert set(got["f1"]) == set(Project.open(root).behaviors)
    assert got["test_videos"] == ["demo_02"]
    for run in got["runs"]:
        assert (root / "models" / run / "best.pt").is_file()
    assert (root / "DATA" / "demo_02" / "demo_02_predictions.csv").is_file()
    assert pngs(nb) >= 3  # example frames, flows, F1 bars, ethogram


@pytest.mark.slow
def test_01_project(tmp_path):
    execute(
        "01_project",
        tmp_path,
        parent=str(tmp_path),
        name="exp",
        behaviors=["groom", "rear"],
        add_behaviors=["dig"],
        rename_behaviors={"rear": "stand"},
        stage="sequence",
        settings=["sequence.num_epochs=3"],
    )
    root = tmp_path / "exp_deepethogram"
    got = recorded(root, "01_project")
    assert got["behaviors"] == ["groom", "stand", "dig"]
    assert Project.open(root).behaviors == ["groom", "stand", "dig"]
    assert got["settings_changed"] == ["sequence.num_epochs"]
    assert got["settings_listed"] > 10


@pytest.mark.slow
def test_02_videos(tmp_path, stages):
    videos = sorted((stages["videos"] / "_synthetic_videos").glob("tiny_*.mp4"))
    truth = stages["videos"] / "_synthetic_videos" / "tiny_00_truth.csv"
    project = Project.create(tmp_path, "exp", BEHAVIORS)
    execute(
        "02_videos",
        tmp_path,
        project_path=str(project.root),
        videos=[str(v) for v in videos],
        label_files={"tiny_00": str(truth)},
        splits={"tiny_02": "test"},
    )
    got = recorded(project.root, "02_videos")
    assert got["added"] == got["videos"] == ["tiny_00", "tiny_01", "tiny_02"]
    assert got["frames"] == {k: 64 for k in got["videos"]}
    assert got["splits"]["tiny_02"] == "test"
    np.testing.assert_array_equal(
        project.labels("tiny_00").array, read_labels(truth, BEHAVIORS, 64).array
    )


@pytest.mark.slow
def test_03_label_finalize(tmp_path, at_stage):
    root = at_stage("videos")
    assert (Project.open(root).labels("tiny_01").array == -1).any()
    execute(
        "03_label",
        tmp_path,
        project_path=str(root),
        video="tiny_01",
        finalize=True,
        labeler_name="ana",  # a second annotator: the training labels stay as they are
    )
    project = Project.open(root)
    assert project.annotators("tiny_01") == [project.primary_labeler, "ana"]
    assert (project.labels("tiny_01").array == -1).any()
    assert not (project.annotator_labels("tiny_01", "ana").array == -1).any()
    execute("03_label", tmp_path, project_path=str(root), video="tiny_01", finalize=True)
    got = recorded(root, "03_label")
    assert got["video"] == "tiny_01" and got["frames"] == 64
    assert got["labeled_fraction"] == [1.0, 1.0]
    assert not (Project.open(root).labels("tiny_01").array == -1).any()


@pytest.mark.slow
def test_03_label_finalizes_every_animal(tmp_path):
    """A video of two animals: the Labeler opens on the chosen animal, finalize fills both
    animals' label files, the record has each animal's labelled share."""
    from deg_core.workflow.synthetic_multi import MULTI_BEHAVIORS, MultiSpec, write_multi_video

    video = tmp_path / "pair.mp4"
    write_multi_video(video, MultiSpec(n_frames=40, size=64, seed=1))
    project = Project.create(tmp_path, "duo", list(MULTI_BEHAVIORS), animals=2)
    project.add_videos([video])
    started = Labels.empty(40, project.behaviors)
    started.array[5:15, 1] = 1  # animal 1: one groom bout, the rest unlabelled
    project.save_labels("pair", started, animal=1)
    nb = execute(
        "03_label", tmp_path, project_path=str(project.root), video="pair", animal=1, finalize=True
    )
    got = recorded(project.root, "03_label")
    assert got["video"] == "pair" and got["frames"] == 40 and got["n_animals"] == 2
    want = {"animal0": [1.0, 1.0, 1.0], "animal1": [1.0, 1.0, 1.0]}
    assert got["labeled_fraction_per_animal"] == want
    assert got["labeled_fraction"] == [1.0, 1.0, 1.0]
    finished = [project.labels("pair", animal=a).array for a in (0, 1)]
    assert (finished[0] == 0).all()  # nothing labelled: all absent
    expected = np.zeros((40, 3), np.int8)
    expected[5:15, 1] = 1  # the bout kept, every other cell absent
    np.testing.assert_array_equal(finished[1], expected)
    folder = project.root / "DATA" / "pair"
    for a in (0, 1):
        assert (folder / "animals" / f"animal{a}" / "pair_labels.csv").is_file()
    assert not (folder / "pair_labels.csv").exists()  # not DeepEthogram's one file
    assert pngs(nb) == 1  # each animal's labels


@pytest.mark.slow
def test_04_flow_generator(tmp_path, at_stage):
    root = at_stage("videos")
    nb = execute(
        "04_flow_generator",
        tmp_path,
        project_path=str(root),
        device="cpu",
        epochs=2,
        settings=TINY_SETTINGS,
    )
    got = recorded(root, "04_flow_generator")
    assert got["epochs"] == 2 and got["best_epoch"] in (0, 1)
    assert np.isfinite(got["best_val_loss"])
    assert (root / "models" / got["run"] / "flow_preview.png").is_file()
    assert pngs(nb) >= 2  # loss curve, flows


@pytest.mark.slow
def test_05_feature_extractor(tmp_path, at_stage):
    root = at_stage("flow")
    nb = execute(
        "05_feature_extractor",
        tmp_path,
        project_path=str(root),
        device="cpu",
        epochs=1,
        pretrain=True,
        settings=[
            *TINY_SETTINGS,
            "pretrain.num_epochs=1",
            "pretrain.steps_per_epoch=2",
            "pretrain.val_steps=1",
            "pretrain.batch_size=4",
        ],
    )
    got = recorded(root, "05_feature_extractor")
    # the feature run started from the pretrain run the notebook made
    weights = (root / "models" / got["run"] / "config.yaml").read_text("utf-8")
    assert "pretrain run" in weights
    assert got["epochs"] == 1 and set(got["f1"]) == set(BEHAVIORS)
    assert len(got["thresholds"]) == 2
    assert all(v is None or 0 <= v <= 1 for v in got["f1"].values())
    assert pngs(nb) >= 3  # loss, F1 per epoch, F1 bars


@pytest.mark.slow
def test_06_extract_features(tmp_path, at_stage):
    root = at_stage("features")
    nb = execute(
        "06_extract_features",
        tmp_path,
        project_path=str(root),
        videos=["tiny_02"],
        device="cpu",
        show_video="tiny_02",
    )
    got = recorded(root, "06_extract_features")
    assert got["states"] == {"tiny_02": "done"}
    assert got["run"] == latest_run(Project.open(root), "features")
    assert (root / "DATA" / "tiny_02" / "tiny_02_outputs.h5").is_file()
    assert not (root / "DATA" / "tiny_00" / "tiny_00_outputs.h5").exists()
    assert pngs(nb) == 1  # labels above the feature extractor's calls


@pytest.mark.slow
def test_07_sequence_model(tmp_path, at_stage):
    root = at_stage("extracted")
    nb = execute(
        "07_sequence_model",
        tmp_path,
        project_path=str(root),
        device="cpu",
        epochs=2,
        settings=TINY_SETTINGS,
    )
    got = recorded(root, "07_sequence_model")
    assert got["epochs"] == 2 and len(got["thresholds"]) == 2
    assert set(got["f1"]) == {"val", "test"} and set(got["f1"]["test"]) == set(BEHAVIORS)
    assert pngs(nb) >= 4  # loss, F1 per epoch, precision-recall, F1 bars


@pytest.mark.slow
def test_08_review_corrects_the_queue(tmp_path, at_stage):
    root = at_stage("sequence")
    truth = root.parent / "_synthetic_videos" / "tiny_02_truth.csv"
    execute("08_review", tmp_path, project_path=str(root), device="cpu", truth_csv=str(truth))
    got = recorded(root, "08_review")
    assert got["video"] == "tiny_02"  # the test video
    assert got["imported_cells"] > 0  # a quarter of it was unlabelled
    assert got["queue"] == got["uncertain"] + got["disagree"] > 0
    before, after = got["agreement"]["before"], got["agreement"]["after"]
    assert after - before == pytest.approx(got["corrected_cells"] / (64 * 2))
    assert got["labeled_fraction"] == [1.0, 1.0]
    for key in ("tiny_00", "tiny_01", "tiny_02"):
        assert (root / "DATA" / key / f"{key}_predictions.csv").is_file()


@pytest.mark.slow
def test_09_new_videos(tmp_path, at_stage):
    root = at_stage("sequence")
    new = tmp_path / "mouse9.mp4"
    write_synthetic_video(new, SyntheticSpec(n_frames=40, size=32, behaviors=SPEC.behaviors))
    nb = execute(
        "09_new_videos",
        tmp_path,
        project_path=str(root),
        videos=[str(new)],
        split="test",
        device="cpu",
        export=["boris", "nwb"] if HAS_PYNWB else ["boris"],
    )
    got = recorded(root, "09_new_videos")
    assert got["added"] == ["mouse9"] and got["states"] == {"mouse9": "done"}
    pred = read_labels(Path(got["predictions"]["mouse9"]), BEHAVIORS, 40)
    assert set(np.unique(pred.array)) <= {0, 1}
    assert pngs(nb) == 2  # its frames, its ethogram
    exports = root / "exports"  # the predicted ethogram for BORIS and as NWB
    want = {"mouse9_predictions_boris.csv"} | ({"mouse9.nwb"} if HAS_PYNWB else set())
    assert {p.name for p in exports.iterdir()} == want


def animal_truth(n_frames: int, size: int, seed: int):
    """What 10_animals generates as video pair_<seed>: its MultiTruth."""
    from deg_core.workflow.synthetic_multi import MultiSpec, multi_truth

    return multi_truth(MultiSpec(n_animals=2, n_frames=n_frames, size=size, seed=seed))


@pytest.mark.slow
def test_10_animals(tmp_path):
    """A demo project of two animals per video: the generated truth is each animal's labels,
    deg's tracks hold both animals, the swap candidates are listed and the swaps the truth
    shows are fixed (the tracks then follow the true animals)."""
    from deg_core.tracking.animals import AnimalTracks
    from deg_core.tracking.multi import identity_switches, swap_candidates, track_animals

    nb = execute("10_animals", tmp_path, workdir=str(tmp_path), n_frames=200, frame_size=96)
    root = tmp_path / "pair_deepethogram"
    project = Project.open(root)
    keys = ["pair_00", "pair_01", "pair_02"]
    assert project.video_keys() == keys
    assert [project.splits().assignment[k] for k in keys] == ["train", "val", "test"]
    got = recorded(root, "10_animals")
    assert got["video"] == "pair_00" and got["n_animals"] == 2 and got["frames"] == 200
    assert got["tracks"] == {"file": str(root / "DATA/pair_00/pair_00_animals.h5"), "source": "deg"}
    assert got["macro_f1"] is None  # train is off
    for i, key in enumerate(keys):
        truth = animal_truth(200, 96, i)
        for a in (0, 1):  # the bout table's rows went to each animal's own file
            np.testing.assert_array_equal(project.labels(key, animal=a).array, truth.labels[:, a])
        assert got["labeled_fraction"][key] == {"animal0": [1.0] * 3, "animal1": [1.0] * 3}
        tracks = AnimalTracks.load(root / "DATA" / key / f"{key}_animals.h5")
        assert (tracks.n_animals, tracks.n_frames, tracks.source) == (2, 200, "deg")
        assert tracks.found().all()
        # every swap the truth showed was fixed: the tracks follow the true animals
        assert got["fixed_swaps"][key] == got["swaps"][key]
        assert identity_switches(tracks.center, truth.centers) == got["identity_switches"][key] == 0
        error = np.linalg.norm(tracks.center - truth.centers, axis=2)
        assert (np.median(error, axis=0) < 3).all(), np.median(error, axis=0)
    assert sum(map(len, got["swaps"].values())) > 0  # there was something to fix
    # the candidates listed are the tracker's, as deg tracks computes them
    video = project.record("pair_02").video
    assert video is not None
    assert got["swap_candidates"]["pair_02"] == swap_candidates(track_animals(video, 2))
    assert all(got["swap_candidates"].values())
    assert pngs(nb) == 3  # the tracks, the fixed tracks, the ethogram


@pytest.mark.slow
def test_10_animals_trains_then_08_reviews_each_animal(tmp_path):
    """train=True: per-animal runs, predictions and scores; then 08_review on the test video
    imports each animal's predictions and lets the truth (a bout table with an animal column)
    correct each animal's queue."""
    nb = execute(
        "10_animals",
        tmp_path,
        workdir=str(tmp_path),
        n_frames=48,
        frame_size=96,
        train=True,
        device="cpu",
        settings=TINY_SETTINGS,
    )
    root = tmp_path / "pair_deepethogram"
    got = recorded(root, "10_animals")
    assert set(got["macro_f1"]) == {"animal0", "animal1", "pooled"}
    for key in ("pair_00", "pair_01", "pair_02"):
        for a in (0, 1):
            assert (root / "DATA" / key / f"{key}_animal{a}_predictions.csv").is_file()
    assert pngs(nb) == 3  # tracks twice, the ethogram (labels and predictions)

    project = Project.open(root)
    partial = project.labels("pair_02", animal=1)
    partial.array[10:30] = -1  # animal 1: 20 frames left for the predictions
    project.save_labels("pair_02", partial, animal=1)
    truth = tmp_path / "pair_02_truth.csv"  # 10_animals wrote it: every animal's bouts
    execute("08_review", tmp_path, project_path=str(root), device="cpu", truth_csv=str(truth))
    rev = recorded(root, "08_review")
    assert rev["video"] == "pair_02"  # the test video
    animals = rev["animals"]
    assert set(animals) == {"animal0", "animal1"}
    assert animals["animal0"]["imported_cells"] == 0  # fully labelled already
    assert animals["animal1"]["imported_cells"] == 20 * 3
    assert rev["imported_cells"] == 60
    assert rev["queue"] == animals["animal0"]["queue"] + animals["animal1"]["queue"]
    assert rev["queue"] == rev["uncertain"] + rev["disagree"]
    before, after = rev["agreement"]["before"], rev["agreement"]["after"]
    assert after - before == pytest.approx(rev["corrected_cells"] / (48 * 3 * 2))
    for a in (0, 1):
        scores = animals[f"animal{a}"]["agreement"]
        assert scores["after"] >= scores["before"]
        assert animals[f"animal{a}"]["labeled_fraction"] == [1.0, 1.0, 1.0]
        assert not (project.labels("pair_02", animal=a).array == -1).any()


@pytest.mark.slow
def test_deg_retrain_reports_then_skips(at_stage, capsys):
    from deg_core.cli import main
    from deg_core.workflow.retrain import STAGES, RetrainPlan

    root = at_stage("extracted")
    project = Project.open(root)
    plan = RetrainPlan(project, settings=TINY_SETTINGS)  # as an earlier retrain left them:
    for stage in ("flow", "features"):
        plan.remember(stage, plan.inputs(stage), latest_run(project, stage))
    argv = [
        "retrain",
        str(root),
        "-p",
        "device",
        "cpu",
        "-p",
        "settings",
        json.dumps(TINY_SETTINGS),
    ]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    (report,) = sorted((root / "reports").glob("*_retrain*.ipynb"))
    got = json.loads(report.with_name(report.stem + "_metrics.json").read_text())
    assert [r["action"] for r in got["stages"].values()] == ["skipped", "skipped", "ran", "ran"]
    assert got["stages"]["sequence"]["reason"] == "no earlier retrain of this stage"
    assert got["stages"]["infer"]["detail"] == {"predicted": 3, "videos": 3}
    assert set(got["evaluation"]) == {"val", "test"}
    assert set(got["evaluation"]["test"]["f1"]) == set(BEHAVIORS)
    assert got["sequence_run"] in out and f"report: {report}" in out
    nb = nbformat.read(report, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert pngs(nb) == got["figures"] >= 8  # curves of 3 runs, F1 bars, PR, ethograms
    state = json.loads((root / "reports" / "retrain_state.json").read_text())
    assert set(state["stages"]) == set(STAGES)
    runs = sorted(p.name for p in project.models_dir.iterdir())

    assert main(argv) == 0, capsys.readouterr().err  # nothing changed: nothing retrains
    second = sorted((root / "reports").glob("*_retrain*.ipynb"))[-1]
    assert second != report
    got = json.loads(second.with_name(second.stem + "_metrics.json").read_text())
    assert [r["action"] for r in got["stages"].values()] == ["skipped"] * 4
    assert sorted(p.name for p in project.models_dir.iterdir()) == runs
    assert "inputs unchanged" in capsys.readouterr().out


# --------------------------------------------------------------------------- binder


def test_binder_installs_every_runtime_dependency_with_cpu_torch():
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    root = NOTEBOOKS.parent
    lines = [ln.strip() for ln in (root / "binder" / "requirements.txt").read_text().splitlines()]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert "-e ." in lines  # the package itself
    pins = {}
    for line in lines:
        if line and not line.startswith(("#", "-")):
            req = Requirement(line)
            (spec,) = req.specifier  # exactly one ==
            assert spec.operator == "==", line
            pins[canonicalize_name(req.name)] = spec.version
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    lock = tomllib.loads((root / "uv.lock").read_text())
    locked: dict[str, set[str]] = {}
    for p in lock["package"]:
        locked.setdefault(canonicalize_name(p["name"]), set()).add(p["version"])
    deps = [Requirement(d) for d in project["dependencies"]]
    assert set(pins) == {canonicalize_name(d.name) for d in deps}
    for dep in deps:
        version = pins[canonicalize_name(dep.name)]
        assert dep.specifier.contains(Version(version)), f"binder {dep.name}=={version} vs {dep}"
        assert version in locked[canonicalize_name(dep.name)], f"{dep.name}: not uv.lock's"
    runtime = (root / "binder" / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-")
    python = Version(runtime.removeprefix("python-"))
    assert Requirement(f"python{project['requires-python']}").specifier.contains(python)
