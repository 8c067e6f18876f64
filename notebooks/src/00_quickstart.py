# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quickstart: the whole pipeline on a demo project
#
# Every step of deg in short form, on synthetic videos whose true labels are known: it runs in a few
# minutes on a laptop CPU. The numbered notebooks explain each step.

# %% tags=["parameters"]
workdir = "deg_quickstart"  # a folder for the demo project (created)
n_videos = 6  # synthetic videos: all but two train, one val, one test
n_frames = 300  # frames per video
frame_size = 64  # pixels (square)
device = "auto"  # auto, cpu, cuda or cuda:N
# extra overrides, e.g. ["sequence.num_epochs=40"]
settings: list = []

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
from pathlib import Path

from IPython.display import display

from deg_core import (
    DEMO_SETTINGS,
    Png,
    Project,
    SyntheticSpec,
    ethogram,
    evaluate_project,
    example_frames,
    f1_bars,
    flow_preview,
    infer_features,
    infer_sequence,
    make_synthetic_project,
    metrics_table,
    train_features,
    train_flow,
    train_sequence,
    write_metrics,
)
from deg_widgets import ProjectView, TrainingMonitor

# %% [markdown]
# ## 1. A demo project
#
# Make synthetic videos of a mouse-like animal with labelled behaviours (or reopen the project made
# earlier).

# %%
folder = Path(workdir).expanduser().absolute()
folder.mkdir(parents=True, exist_ok=True)
root = folder / "demo_deepethogram"
if root.exists():
    project = Project.open(root)
else:
    splits = ["train"] * (n_videos - 2) + ["val", "test"]
    spec = SyntheticSpec(n_frames=n_frames, size=frame_size)
    project = make_synthetic_project(folder, "demo", n_videos, spec=spec, splits=splits)
cfg = project.resolve_config([*DEMO_SETTINGS, *settings])  # CPU-sized settings
ProjectView(project)

# %% [markdown]
# ## 2. What the videos look like
#
# A few frames of the first video.

# %%
example_frames(project, project.video_keys()[0])

# %% [markdown]
# ## 3. Flow generator
#
# Learn optic flow from the videos themselves (no labels needed).

# %%
monitor = TrainingMonitor("flow generator")
display(monitor)
flow_run = train_flow(project, cfg, device=device, callbacks=[monitor], progress=False)
Png.from_file(flow_preview(project, flow_run.name))

# %% [markdown]
# ## 4. Feature extractor
#
# Learn per-frame behaviour features from the frames and their flows, on the labels.

# %%
monitor = TrainingMonitor("feature extractor")
display(monitor)
feature_run = train_features(
    project, cfg, flow_run=flow_run.name, device=device, callbacks=[monitor], progress=False
)

# %% [markdown]
# ## 5. Extract features
#
# Compute the features of every frame of every video.

# %%
infer_features(project, feature_run.name, device=device, progress=False)

# %% [markdown]
# ## 6. Sequence model
#
# Learn how behaviour unfolds over time from the per-frame features.

# %%
monitor = TrainingMonitor("sequence model")
display(monitor)
sequence_run = train_sequence(
    project,
    cfg,
    feature_run=feature_run.name,
    device=device,
    callbacks=[monitor],
    progress=False,
)

# %% [markdown]
# ## 7. Predict and score
#
# Predict every frame, then score the held-out test video against its labels.

# %%
infer_sequence(project, sequence_run.name, device=device)
result = evaluate_project(project, "test", "sequence", sequence_run.name)
display(metrics_table({"test": result}))
f1_bars({"test": result["f1"]}, "F1 per behaviour on the test video")

# %% [markdown]
# ## 8. The ethogram
#
# The test video's labels above the model's predictions.

# %%
ethogram(project, result["videos"][0])

# %% [markdown]
# ## 9. Record
#
# Save the scores with the project (reports/00_quickstart_metrics.json).

# %%
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
