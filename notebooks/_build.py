"""Writes the guided notebooks (``uv run python notebooks/_build.py``).

The notebooks are generated from this file so they stay short, uniform and free of
outputs: edit a notebook here, rebuild, commit both (tests/test_notebooks.py checks
that the committed .ipynb files match). Each notebook: a title and what it is for, one
cell tagged ``parameters`` (papermill injects values after it), then steps: a heading,
one sentence of intent, a short cell. Logic lives in deg_core / deg_widgets.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
KERNEL = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}

# Each notebook: (title, intro, parameters, [(heading, sentence, code, step tag or None)])
Step = tuple[str, str, str, str | None]
NOTEBOOKS: dict[str, tuple[str, str, str, list[Step]]] = {}


def notebook(name: str, title: str, intro: str, parameters: str, steps: list[Step]) -> None:
    NOTEBOOKS[name] = (title, intro, parameters.strip(), steps)


def step(heading: str, sentence: str, code: str, tag: str | None = None) -> Step:
    return heading, sentence, code.strip(), tag


# ----------------------------------------------------------------------------- 00
notebook(
    "00_quickstart",
    "Quickstart: the whole pipeline on a demo project",
    "Every step of deg in short form, on synthetic videos whose true labels are known: "
    "it runs in a few minutes on a laptop CPU. The numbered notebooks explain each step.",
    """
workdir = "deg_quickstart"  # a folder for the demo project (created)
n_videos = 6  # synthetic videos: all but two train, one val, one test
n_frames = 300  # frames per video
frame_size = 64  # pixels (square)
device = "auto"  # auto, cpu, cuda or cuda:N
# extra overrides, e.g. ["sequence.num_epochs=40"]
settings = []
""",
    [
        step(
            "Setup",
            "Import what the steps use.",
            """
from pathlib import Path

from IPython.display import display

from deg_core.demo import DEMO_SETTINGS
from deg_core.flow_preview import flow_preview
from deg_core.infer import infer_features
from deg_core.infer_sequence import infer_sequence
from deg_core.plots import Png
from deg_core.project import Project
from deg_core.report import ethogram, example_frames, f1_bars, metrics_table, write_metrics
from deg_core.scoring import evaluate_project
from deg_core.synthetic import SyntheticSpec, make_synthetic_project
from deg_core.train.features import train_features
from deg_core.train.flow import train_flow
from deg_core.train.sequence import train_sequence
from deg_widgets import ProjectView, TrainingMonitor
""",
        ),
        step(
            "1. A demo project",
            "Make synthetic videos of a mouse-like animal with labelled behaviours "
            "(or reopen the project made earlier).",
            """
workdir = Path(workdir).expanduser().absolute()
workdir.mkdir(parents=True, exist_ok=True)
root = workdir / "demo_deepethogram"
if root.exists():
    project = Project.open(root)
else:
    splits = ["train"] * (n_videos - 2) + ["val", "test"]
    spec = SyntheticSpec(n_frames=n_frames, size=frame_size)
    project = make_synthetic_project(workdir, "demo", n_videos, spec=spec, splits=splits)
cfg = project.resolve_config([*DEMO_SETTINGS, *settings])  # CPU-sized settings
ProjectView(project)
""",
        ),
        step(
            "2. What the videos look like",
            "A few frames of the first video.",
            "example_frames(project, project.video_keys()[0])",
        ),
        step(
            "3. Flow generator",
            "Learn optic flow from the videos themselves (no labels needed).",
            """
monitor = TrainingMonitor("flow generator")
display(monitor)
flow_run = train_flow(project, cfg, device=device, callbacks=[monitor], progress=False)
Png.from_file(flow_preview(project, flow_run.name))
""",
        ),
        step(
            "4. Feature extractor",
            "Learn per-frame behaviour features from the frames and their flows, on the labels.",
            """
monitor = TrainingMonitor("feature extractor")
display(monitor)
feature_run = train_features(
    project, cfg, flow_run=flow_run.name, device=device, callbacks=[monitor], progress=False
)
""",
        ),
        step(
            "5. Extract features",
            "Compute the features of every frame of every video.",
            "infer_features(project, feature_run.name, device=device, progress=False)",
        ),
        step(
            "6. Sequence model",
            "Learn how behaviour unfolds over time from the per-frame features.",
            """
monitor = TrainingMonitor("sequence model")
display(monitor)
sequence_run = train_sequence(
    project, cfg, feature_run=feature_run.name, device=device, callbacks=[monitor],
    progress=False,
)
""",
        ),
        step(
            "7. Predict and score",
            "Predict every frame, then score the held-out test video against its labels.",
            """
infer_sequence(project, sequence_run.name, device=device)
result = evaluate_project(project, "test", "sequence", sequence_run.name)
display(metrics_table({"test": result}))
f1_bars({"test": result["f1"]}, "F1 per behaviour on the test video")
""",
        ),
        step(
            "8. The ethogram",
            "The test video's labels above the model's predictions.",
            "ethogram(project, result['videos'][0])",
        ),
        step(
            "9. Record",
            "Save the scores with the project (reports/00_quickstart_metrics.json).",
            """
write_metrics(
    project,
    "00_quickstart",
    {
        "project": project.root,
        "runs": [flow_run.name, feature_run.name, sequence_run.name],
        "test_videos": result["videos"],
        "f1": result["f1"],
        "macro_f1": result["macro"]["f1"],
    },
)
""",
        ),
    ],
)

# ----------------------------------------------------------------------------- 01
notebook(
    "01_project",
    "1. The project",
    "A project is a folder (`<name>_deepethogram/`) holding the videos, labels, models and "
    "settings of one experiment, in DeepEthogram's format.",
    """
parent = "~/deg_projects"  # the folder that holds your projects (created)
name = "my_experiment"  # letters, digits, _ or -
behaviors = ["groom", "rear", "walk"]  # "background" is implicit
labeler = None  # your name, recorded in the project
add_behaviors = []  # behaviours to add, e.g. ["dig"]
rename_behaviors = {}  # {old: new}, e.g. {"walk": "locomotion"}
stage = "features"  # whose settings to list: flow, features or sequence
# overrides to try, e.g. ["feature_extractor.num_epochs=5"]
settings = []
""",
    [
        step(
            "Setup",
            "Import what the steps use.",
            """
from pathlib import Path

from deg_core.project import Project
from deg_core.report import config_table, write_metrics
from deg_widgets import ProjectView
""",
        ),
        step(
            "1. Create or open",
            "Create the project folder, or open it if it exists.",
            """
parent = Path(parent).expanduser()
parent.mkdir(parents=True, exist_ok=True)
root = parent / f"{name}_deepethogram"
if root.exists():
    project = Project.open(root)
else:
    project = Project.create(parent, name, behaviors, labeler=labeler)
project
""",
        ),
        step(
            "2. What is inside",
            "`project_config.yaml` (settings), `DATA/` (one folder per video: video, labels, "
            "outputs) and `models/` (one folder per training run).",
            "sorted(p.name for p in project.root.iterdir())",
        ),
        step(
            "3. Behaviours",
            "Add or rename behaviours; label files are rewritten and older models marked stale.",
            """
for b in add_behaviors:
    if b not in project.behaviors:
        project.add_behavior(b)
for old, new in rename_behaviors.items():
    if old in project.behaviors:
        project.rename_behavior(old, new)
project.behaviors
""",
        ),
        step(
            "4. Settings",
            "Every setting of a stage with its meaning; `settings` overrides apply to one "
            "training run (`--set` on the command line).",
            "table = config_table(project, stage, settings)\ntable",
        ),
        step(
            "5. At a glance",
            "Videos, labels and model runs; refresh it as the project grows.",
            "ProjectView(project)",
        ),
        step(
            "6. Record",
            "Save what was set up (reports/01_project_metrics.json).",
            """
changed = [row["setting"] for row in table.rows if row["changed"]]
write_metrics(
    project,
    "01_project",
    {"root": project.root, "behaviors": project.behaviors, "settings_listed": len(table),
     "settings_changed": changed},
)
""",
        ),
    ],
)

# ----------------------------------------------------------------------------- 02
notebook(
    "02_videos",
    "2. Videos",
    "Add videos (they are copied into the project and checked), look at them, import labels "
    "you already have, and choose which videos train, validate and test the models.",
    """
project_path = "~/deg_projects/my_experiment_deepethogram"
videos = []  # video files to add, e.g. ["~/recordings/mouse1.mp4"]
split = None  # "train", "val" or "test" for all of them; None: the project assigns
label_files = {}  # {video: label CSV} (DeepEthogram CSV or a start,stop,behavior table)
splits = {}  # {video: "train" | "val" | "test"}: move videos between splits
""",
    [
        step(
            "Setup",
            "Import what the steps use.",
            """
from IPython.display import display

from deg_core.project import Project
from deg_core.report import (
    behavior_table, example_frames, video_stats_table, video_table, write_metrics,
)
""",
        ),
        step(
            "1. Add videos",
            "Copy each video into the project, check it decodes, and measure it "
            "(videos already added are skipped).",
            """
project = Project.open(project_path)
added = project.add_videos(videos, split=split, skip_existing=True) if videos else []
added
""",
        ),
        step(
            "2. Statistics",
            "Frames, frame rate, size, codec and per-channel pixel statistics "
            "(used to normalise the inputs).",
            "video_stats_table(project)",
        ),
        step(
            "3. Look at them",
            "Evenly spaced frames of each video.",
            """
for key in project.video_keys()[:4]:
    display(example_frames(project, key))
""",
        ),
        step(
            "4. Import labels",
            "Bring in labels you already have; the rest you label in 03_label.",
            """
for video, csv in label_files.items():
    project.import_labels(video, csv)
behavior_table(project)
""",
        ),
        step(
            "5. Splits",
            "Models train on `train`, pick thresholds on `val`, and are scored on `test`; "
            "a whole video belongs to one split.",
            """
for video, s in splits.items():
    for warning in project.set_split(video, s):
        print("warning:", warning)
for warning in project.splits().warnings():
    print("warning:", warning)
video_table(project)
""",
        ),
        step(
            "6. Record",
            "Save the video list (reports/02_videos_metrics.json).",
            """
table = project.splits()
write_metrics(
    project,
    "02_videos",
    {"added": added, "videos": project.video_keys(), "splits": table.assignment,
     "frames": {k: project.record(k).frames for k in project.video_keys()}},
)
""",
        ),
    ],
)

# ----------------------------------------------------------------------------- 03
notebook(
    "03_label",
    "3. Label",
    "Label behaviours frame by frame with the Labeler; partially labelled videos are fine "
    "(unlabelled frames are left out of training).",
    """
project_path = "~/deg_projects/my_experiment_deepethogram"
video = None  # the video to label (key or file name); None: the first
finalize = False  # True: mark this video's unlabelled frames absent (when it is complete)
""",
    [
        step(
            "Setup",
            "Import what the steps use.",
            """
from deg_core.project import Project
from deg_core.report import behavior_table, ethogram, write_metrics
from deg_widgets import Labeler, ProjectView
""",
        ),
        step(
            "1. The project",
            "Which videos are labelled how much so far.",
            "project = Project.open(project_path)\nProjectView(project)",
        ),
        step(
            "2. The Labeler",
            "Click it, then press a behaviour's number key to start and stop a bout, arrows "
            "to move, Space to play, `?` for every key; it saves by itself.",
            "labeler = Labeler(project, video)\nlabeler",
        ),
        step(
            "3. Progress",
            "This video's labels so far (grey: not labelled yet); run the cell again to refresh.",
            "ethogram(project, labeler.video)",
        ),
        step(
            "4. Finish the video",
            "Once every bout in a video is labelled, finalize marks the remaining frames absent.",
            """
if finalize:
    labeler.finalize()
labeler.save()
assert not labeler.error, labeler.error
behavior_table(project)
""",
        ),
        step(
            "5. Record",
            "Save how much is labelled (reports/03_label_metrics.json).",
            """
labels = project.labels(labeler.video)
write_metrics(
    project,
    "03_label",
    {"video": labeler.video, "frames": labels.n_frames,
     "labeled_fraction": labels.labeled_fraction().tolist()},
)
""",
        ),
    ],
)


# ----------------------------------------------------------------------------- 04 .. 07
def training_steps(what: str, call: str, var: str) -> list[Step]:
    return [
        step(
            "2. Train",
            f"Train the {what}; the monitor shows the losses as it learns.",
            f"""
cfg = project.resolve_config([*settings, *epoch_settings(epochs, [{call[1]!r}])], preset=preset)
monitor = TrainingMonitor("{what}")
display(monitor)
{var} = {call[0]}
{var}.name
""",
        ),
        step(
            "3. Curves",
            "Loss per epoch (the best epoch, kept as best.pt, is marked) and, with labels, "
            "validation F1 per epoch.",
            f"""
for fig in training_curves({var}):
    display(fig)
""",
        ),
    ]


notebook(
    "04_flow_generator",
    "4. Flow generator",
    "The flow generator learns optic flow (how each pixel moves between frames) from the "
    "videos alone; the feature extractor then sees motion as well as appearance.",
    """
project_path = "~/deg_projects/my_experiment_deepethogram"
preset = None  # fast, medium, slow or cpu (2-core machines); None: the project's settings
device = "auto"  # auto, cpu, cuda or cuda:N
epochs = None  # None: the settings decide
# overrides, e.g. ["flow_generator.steps_per_epoch=500"]
settings = []
preview_video = None  # the video whose flows are shown; None: the first
""",
    [
        step(
            "Setup",
            "Import what the steps use.",
            """
from IPython.display import display

from deg_core.flow_preview import flow_preview
from deg_core.plots import Png
from deg_core.project import Project
from deg_core.report import best_record, config_table, training_curves, write_metrics
from deg_core.train.flow import train_flow
from deg_core.workflow import epoch_settings
from deg_widgets import TrainingMonitor
""",
        ),
        step(
            "1. Settings",
            "What this stage will use (`changed` marks values that differ from the defaults).",
            "project = Project.open(project_path)\nconfig_table(project, 'flow', settings, preset)",
        ),
        *training_steps(
            "flow generator",
            (
                "train_flow(project, cfg, device=device, callbacks=[monitor], progress=False)",
                "flow",
            ),
            "flow_run",
        ),
        step(
            "4. Look at the flows",
            "A clip's frames above the flows the model computes (colour: direction, "
            "saturation: speed, white: still).",
            "Png.from_file(flow_preview(project, flow_run.name, video=preview_video))",
        ),
        step(
            "5. Record",
            "Save the run's numbers (reports/04_flow_generator_metrics.json).",
            """
best = best_record(flow_run)
write_metrics(
    project,
    "04_flow_generator",
    {"run": flow_run.name, "epochs": len(monitor.records), "best_epoch": best["epoch"],
     "best_val_loss": best["val_loss"]},
)
""",
        ),
    ],
)

notebook(
    "05_feature_extractor",
    "5. Feature extractor",
    "The feature extractor (a hidden two-stream network) learns to recognise each behaviour "
    "from a frame and its flows, on your labels; its per-frame features feed the sequence "
    "model.",
    """
project_path = "~/deg_projects/my_experiment_deepethogram"
flow_run = "latest"  # the flow run to use
preset = None  # fast, medium, slow or cpu (2-core machines); None: the project's settings
device = "auto"
epochs = None
# overrides, e.g. ["feature_extractor.batch_size=32"]
settings = []
""",
    [
        step(
            "Setup",
            "Import what the steps use.",
            """
from IPython.display import display

from deg_core.project import Project
from deg_core.report import (
    behavior_table, best_record, f1_bars, threshold_table, training_curves, write_metrics,
)
from deg_core.train.features import train_features
from deg_core.workflow import epoch_settings
from deg_widgets import TrainingMonitor
""",
        ),
        step(
            "1. Labels to learn from",
            "Labelled frames per behaviour; rare behaviours are weighted up in the loss.",
            "project = Project.open(project_path)\nbehavior_table(project)",
        ),
        *training_steps(
            "feature extractor",
            (
                "train_features(project, cfg, flow_run=flow_run, device=device, "
                "callbacks=[monitor], progress=False)",
                "features",
            ),
            "feature_run",
        ),
        step(
            "4. Per-behaviour F1",
            "Validation F1 of each behaviour at the best epoch, at the thresholds fitted there.",
            """
best = best_record(feature_run)
display(threshold_table(project, feature_run.name, "features"))
f1_bars({"validation": best["f1"]}, "feature extractor: F1 per behaviour")
""",
        ),
        step(
            "5. Record",
            "Save the run's numbers (reports/05_feature_extractor_metrics.json).",
            """
write_metrics(
    project,
    "05_feature_extractor",
    {"run": feature_run.name, "epochs": len(monitor.records), "best_epoch": best["epoch"],
     "f1": best["f1"], "macro_f1": best["macro_f1"], "thresholds": best["thresholds"]},
)
""",
        ),
    ],
)

notebook(
    "06_extract_features",
    "6. Extract features",
    "Run the feature extractor over every frame of every video; the sequence model trains "
    "on these features. Videos already done are skipped, so an interrupted run resumes.",
    """
project_path = "~/deg_projects/my_experiment_deepethogram"
run = "latest"  # the feature-extractor run
videos = []  # video keys; []: all
device = "auto"
overwrite = False  # True: recompute videos already done
show_video = None  # the video pictured in step 3; None: the first extracted
""",
    [
        step(
            "Setup",
            "Import what the steps use.",
            """
from deg_core.infer import infer_features
from deg_core.project import Project
from deg_core.report import Table, model_ethogram, video_table, write_metrics
from deg_core.runs import resolve_run
""",
        ),
        step(
            "1. Extract",
            "Each video is decoded once, in order; features go to "
            "`DATA/<video>/<video>_outputs.h5`.",
            """
project = Project.open(project_path)
run_name = resolve_run(project.models_dir, "features", run).name
states = infer_features(
    project, run_name, videos or None, device=device, overwrite=overwrite, progress=False
)
Table([{"video": k, "features": v} for k, v in states.items()], caption=run_name)
""",
        ),
        step(
            "2. Where things stand",
            "Every video should now list the feature run among its model outputs.",
            "video_table(project)",
        ),
        step(
            "3. What the feature extractor sees",
            "One video's labels above the feature extractor's own per-frame calls "
            "(no temporal context yet: the sequence model adds it).",
            "model_ethogram(project, show_video or next(iter(states)), run_name)",
        ),
        step(
            "4. Record",
            "Save what was extracted (reports/06_extract_features_metrics.json).",
            """
write_metrics(project, "06_extract_features", {"run": run_name, "states": states})
""",
        ),
    ],
)

notebook(
    "07_sequence_model",
    "7. Sequence model",
    "The sequence model reads the per-frame features of long windows and learns how "
    "behaviour unfolds over time; its thresholds are chosen on the validation videos and "
    "it is scored on the test videos.",
    """
project_path = "~/deg_projects/my_experiment_deepethogram"
feature_run = "latest"  # the feature-extractor run whose features it reads
preset = None
device = "auto"
epochs = None
# overrides, e.g. ["sequence.arch=tcn"]
settings = []
""",
    [
        step(
            "Setup",
            "Import what the steps use.",
            """
from IPython.display import display

from deg_core.project import Project
from deg_core.report import (
    evaluate_splits, f1_bars, metrics_table, pr_figure, split_outputs, threshold_table,
    training_curves, write_metrics,
)
from deg_core.train.common import split_keys
from deg_core.train.sequence import train_sequence
from deg_core.workflow import epoch_settings, predict, run_thresholds
from deg_widgets import TrainingMonitor
""",
        ),
        step(
            "1. The project",
            "Videos per split: train learns, val picks thresholds, test scores.",
            "project = Project.open(project_path)\nsplit_keys(project)",
        ),
        *training_steps(
            "sequence model",
            (
                "train_sequence(project, cfg, feature_run=feature_run, device=device, "
                "callbacks=[monitor], progress=False)",
                "sequence",
            ),
            "sequence_run",
        ),
        step(
            "4. Thresholds",
            "Per behaviour, the threshold that maximises validation F1, and the shortest bout "
            "kept (shorter predicted bouts are removed as noise).",
            "threshold_table(project, sequence_run.name, 'sequence')",
        ),
        step(
            "5. Predict validation and test videos",
            "Per-frame probabilities and the cleaned ethogram of each of them.",
            """
keys = split_keys(project)
predict(project, keys["val"] + keys["test"], run=sequence_run.name, device=device)
""",
        ),
        step(
            "6. Precision and recall",
            "Each behaviour's precision-recall curve on the validation videos, with the "
            "chosen threshold marked.",
            """
probs, labels, _ = split_outputs(project, sequence_run.name, "val")
thresholds = run_thresholds(project, sequence_run.name, "sequence")
pr_figure(probs, labels, thresholds, project.behaviors)
""",
        ),
        step(
            "7. Evaluation",
            "F1, precision, recall, AUROC and bout F1 per behaviour on val and test.",
            """
results = evaluate_splits(project, sequence_run.name)
display(metrics_table(results))
f1_bars({s: r["f1"] for s, r in results.items()}, "sequence model: F1 per behaviour")
""",
        ),
        step(
            "8. Record",
            "Save the scores (reports/07_sequence_model_metrics.json).",
            """
write_metrics(
    project,
    "07_sequence_model",
    {"run": sequence_run.name, "epochs": len(monitor.records),
     "thresholds": thresholds, "f1": {s: r["f1"] for s, r in results.items()},
     "macro_f1": {s: r["macro"]["f1"] for s, r in results.items()}},
)
""",
        ),
    ],
)

# ----------------------------------------------------------------------------- 08
notebook(
    "08_review",
    "8. Review",
    "Predict every video, copy a video's predictions into its labels where nobody labelled "
    "yet, then walk the review queue (uncertain frames, disagreements) and correct them: "
    "the corrected labels train the next round (retrain.ipynb).",
    """
project_path = "~/deg_projects/my_experiment_deepethogram"
video = None  # the video to review; None: the first test video (else the first video)
run = "latest"  # the sequence run
device = "auto"
margin = 0.2  # |P - threshold| below this counts as uncertain
overwrite_labels = False  # True: predictions replace existing labels too
truth_csv = None  # a synthetic video's true labels: play the reviewer with them
""",
    [
        step(
            "Setup",
            "Import what the steps use.",
            """
from deg_core.labels import read_labels
from deg_core.project import Project
from deg_core.report import Table, ethogram, write_metrics
from deg_core.review import agreement, corrections, review_queue
from deg_core.train.common import split_keys
from deg_core.workflow import predict
from deg_widgets import Labeler
""",
        ),
        step(
            "1. Predict",
            "Per-frame predictions for every video (videos already done are skipped).",
            """
project = Project.open(project_path)
states = predict(project, run=run, device=device)
test_videos = split_keys(project)["test"]
key = project.resolve_key(video) if video else (test_videos or project.video_keys())[0]
Table([{"video": k, "predictions": v} for k, v in states.items()])
""",
        ),
        step(
            "2. Before review",
            "The video's labels above its predictions.",
            "ethogram(project, key)",
        ),
        step(
            "3. Import predictions as labels",
            "Copy the predictions onto the frames nobody labelled (one undo step in the Labeler).",
            """
labeler = Labeler(project, key)
before = labeler.session.array.copy()
labeler.import_predictions(overwrite=overwrite_labels)
labeler.save()
assert not labeler.error, labeler.error
imported = int((before != labeler.session.array).sum())
labeler
""",
        ),
        step(
            "4. The review queue",
            "Stretches to check: `uncertain` (the model could go either way) and `disagree` "
            "(a label differs from the prediction); in the Labeler, `u` and `d` jump to the "
            "next one.",
            """
p = labeler.predictions
queue = review_queue(
    labeler.session.array, project.behaviors, p.predicted, p.probs, p.thresholds, margin
)
labeler.seek_uncertain()
Table(queue[:25], caption=f"{len(queue)} stretches to review (first 25)")
""",
        ),
        step(
            "5. Correct",
            "Fix each stretch in the Labeler; with `truth_csv` (a synthetic video) the known "
            "truth plays the reviewer.",
            """
corrected, scores = 0, {}
if truth_csv:
    truth = read_labels(truth_csv, project.behaviors, labeler.n_frames).array
    scores["before"] = agreement(labeler.session.array, truth)
    for edit in corrections(labeler.session.array, truth, queue, project.behaviors):
        labeler.set_range(edit["behavior"], edit["start"], edit["stop"], edit["value"], "review")
        corrected += edit["stop"] - edit["start"]
    scores["after"] = agreement(labeler.session.array, truth)
labeler.save()
assert not labeler.error, labeler.error
scores
""",
        ),
        step(
            "6. The corrected ethogram",
            "The reviewed labels above the predictions.",
            "ethogram(project, key)",
        ),
        step(
            "7. Record",
            "Save what the review did (reports/08_review_metrics.json).",
            """
kinds = [item["kind"] for item in queue]
write_metrics(
    project,
    "08_review",
    {"video": key, "imported_cells": imported, "queue": len(queue),
     "uncertain": kinds.count("uncertain"), "disagree": kinds.count("disagree"),
     "corrected_cells": corrected, "agreement": scores,
     "labeled_fraction": project.labels(key).labeled_fraction().tolist()},
)
""",
        ),
    ],
)

# ----------------------------------------------------------------------------- 09
notebook(
    "09_new_videos",
    "9. New videos",
    "Predict the behaviours in videos the models have not seen: add them, extract their "
    "features, predict every frame.",
    """
project_path = "~/deg_projects/my_experiment_deepethogram"
videos = []  # new video files, e.g. ["~/recordings/mouse7.mp4"]
split = None  # None: the project assigns; "test" keeps them out of training
run = "latest"  # the sequence run
device = "auto"
""",
    [
        step(
            "Setup",
            "Import what the steps use.",
            """
from IPython.display import display

from deg_core.project import Project
from deg_core.report import Table, ethogram, example_frames, prediction_table, write_metrics
from deg_core.workflow import predict
""",
        ),
        step(
            "1. Add the videos",
            "Copied into the project and checked, like in 02_videos.",
            """
project = Project.open(project_path)
new = project.add_videos(videos, split=split, skip_existing=True) if videos else []
for key in new:
    display(example_frames(project, key))
new
""",
        ),
        step(
            "2. Features and predictions",
            "The features of the run the sequence model was trained on, then its predictions.",
            """
states = predict(project, new or None, run=run, device=device)
Table([{"video": k, "predictions": v} for k, v in states.items()])
""",
        ),
        step(
            "3. Ethograms",
            "What each new video's animal did, frame by frame.",
            """
for key in new or project.video_keys()[:3]:
    display(ethogram(project, key))
""",
        ),
        step(
            "4. Summary",
            "How much of each video each behaviour takes; the per-frame calls are in "
            "`DATA/<video>/<video>_predictions.csv`.",
            "prediction_table(project, new or project.video_keys())",
        ),
        step(
            "5. Record",
            "Save what was predicted (reports/09_new_videos_metrics.json).",
            """
write_metrics(
    project,
    "09_new_videos",
    {"added": new, "states": states,
     "predictions": {k: str(project.record(k).predictions_path) for k in states}},
)
""",
        ),
    ],
)

# ----------------------------------------------------------------------------- retrain
notebook(
    "retrain",
    "Retrain",
    "Retrain the models after labels, videos or settings changed, and predict: run it "
    "headless with `deg retrain PROJECT -p NAME VALUE ...`, which saves this notebook, "
    "executed, to `PROJECT/reports/<time>_retrain.ipynb`. A stage whose inputs did not "
    "change since its last retrain is skipped unless forced.",
    """
project_path = ""  # the project (deg retrain sets it)
stages = ["flow", "features", "sequence", "infer"]  # which to consider
epochs = None  # every trained stage's epochs; None: the settings decide
device = "auto"  # auto, cpu, cuda or cuda:N
videos = []  # videos the infer stage predicts; []: all
# overrides, e.g. ["sequence.num_epochs=40"]
settings = []
preset = None  # fast, medium, slow or cpu (2-core machines)
force = False  # True, or a list of stages to run even if their inputs are unchanged
ethograms = 3  # ethograms shown (first predicted videos)
metrics_path = None  # where the recorded values go (deg retrain sets it)
""",
    [
        step(
            "Setup",
            "Open the project and plan the stages.",
            """
from IPython.display import display

from deg_core.project import Project
from deg_core.report import (
    ethogram, evaluate_splits, f1_bars, metrics_table, pr_figure, split_outputs, write_metrics,
)
from deg_core.retrain import RetrainPlan, stage_figures
from deg_core.workflow import latest_run, run_thresholds

project = Project.open(project_path)
plan = RetrainPlan(
    project, stages, settings=settings, epochs=epochs, preset=preset, force=force,
    device=device, videos=videos,
)
figures = 0
plan.table()
""",
            "setup",
        ),
        step(
            "1. Flow generator",
            "Retrained when the videos, splits or its settings changed.",
            """
result = plan.run("flow")
for fig in stage_figures(project, result):
    figures += 1
    display(fig)
result
""",
            "flow",
        ),
        step(
            "2. Feature extractor",
            "Retrained when labels, splits, behaviours, its settings or the flow run changed; "
            "then every video's features are extracted.",
            """
result = plan.run("features")
for fig in stage_figures(project, result):
    figures += 1
    display(fig)
result
""",
            "features",
        ),
        step(
            "3. Sequence model",
            "Retrained when labels, splits, behaviours, its settings or the feature run changed.",
            """
result = plan.run("sequence")
for fig in stage_figures(project, result):
    figures += 1
    display(fig)
result
""",
            "sequence",
        ),
        step(
            "4. Predict",
            "Every frame of the chosen videos, with the current sequence model.",
            """
result = plan.run("infer")
result
""",
            "infer",
        ),
        step(
            "5. Evaluation",
            "The current sequence model on the labelled val and test videos.",
            """
sequence_run = latest_run(project, "sequence")
results = evaluate_splits(project, sequence_run, skip_missing=True) if sequence_run else {}
if results:
    display(metrics_table(results))
    display(f1_bars({s: r["f1"] for s, r in results.items()}, f"F1 per behaviour: {sequence_run}"))
    figures += 1
    probs, labels, _ = split_outputs(project, sequence_run, "val")
    if probs:
        thresholds = run_thresholds(project, sequence_run, "sequence")
        display(pr_figure(probs, labels, thresholds, project.behaviors))
        figures += 1
""",
            "evaluate",
        ),
        step(
            "6. Ethograms",
            "Labels above predictions for the first predicted videos.",
            """
shown = [k for k in (videos or project.video_keys())
         if project.record(project.resolve_key(k)).predictions_path.exists()][:ethograms]
for key in shown:
    display(ethogram(project, project.resolve_key(key)))
    figures += 1
""",
            "ethograms",
        ),
        step(
            "7. Summary",
            "What ran, what was skipped and why; recorded next to this report.",
            """
write_metrics(
    project,
    "retrain",
    {"project": project.root, "stages": plan.summary(), "sequence_run": sequence_run,
     "evaluation": {s: {"f1": r["f1"], "macro_f1": r["macro"]["f1"], "videos": r["videos"]}
                    for s, r in results.items()},
     "figures": figures},
    path=metrics_path,
)
plan.table()
""",
            "summary",
        ),
    ],
)


# ----------------------------------------------------------------------------- writing


def ruff_format(code: str) -> str:
    """The cell formatted as ``ruff format`` would (CI checks notebooks with it)."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(HERE / "cell.py"), "-"],
        input=code,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.rstrip("\n")


def build(name: str) -> nbformat.NotebookNode:
    title, intro, parameters, steps = NOTEBOOKS[name]
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"}}
    cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\n{intro}")]
    params = nbformat.v4.new_code_cell(ruff_format(parameters))
    params.metadata["tags"] = ["parameters"]
    cells.append(params)
    for heading, sentence, code, tag in steps:
        cells.append(nbformat.v4.new_markdown_cell(f"## {heading}\n\n{sentence}"))
        cell = nbformat.v4.new_code_cell(ruff_format(code))
        if tag:
            cell.metadata["tags"] = [f"step:{tag}"]
        cells.append(cell)
    for i, cell in enumerate(cells):  # stable ids: rebuilding changes nothing
        cell["id"] = f"{name.replace('_', '-')}-{i:02d}"
    nb.cells = cells
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(name)) + "\n"


def main(argv: list[str]) -> int:
    """Write every notebook (``--check``: only report those that differ; exit 1 if any)."""
    stale = []
    for name in NOTEBOOKS:
        path = HERE / f"{name}.ipynb"
        text = render(name)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.name)
        if "--check" not in argv:
            path.write_text(text)
    verb = "differ from _build.py" if "--check" in argv else "written"
    print(f"{len(stale)} notebook(s) {verb}: {', '.join(stale) or '-'}")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
