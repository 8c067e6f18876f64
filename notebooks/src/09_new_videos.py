# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 9. New videos
#
# Predict the behaviours in videos the models have not seen: add them, extract their features,
# predict every frame.

# %% tags=["parameters"]
project_path = "~/deg_projects/my_experiment_deepethogram"
videos: list = []  # new video files, e.g. ["~/recordings/mouse7.mp4"]
split = None  # None: the project assigns; "test" keeps them out of training
run = "latest"  # the sequence run
device = "auto"
export: list = []  # also write "boris" (BORIS event files) and/or "nwb" (needs the nwb extra)

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
from IPython.display import display

from deg_core import (
    Project,
    Table,
    ethogram,
    example_frames,
    export_boris,
    export_nwb,
    predict,
    prediction_table,
    write_metrics,
)

# %% [markdown]
# ## 1. Add the videos
#
# Copied into the project and checked, like in 02_videos.

# %%
project = Project.open(project_path)
new = project.add_videos(videos, split=split, skip_existing=True) if videos else []
for key in new:
    display(example_frames(project, key))
new

# %% [markdown]
# ## 2. Features and predictions
#
# The features of the run the sequence model was trained on, then its predictions.

# %%
states = predict(project, new or None, run=run, device=device)
Table([{"video": k, "predictions": v} for k, v in states.items()])

# %% [markdown]
# ## 3. Ethograms
#
# What each new video's animal did, frame by frame.

# %%
for key in new or project.video_keys()[:3]:
    display(ethogram(project, key))

# %% [markdown]
# ## 4. Summary
#
# How much of each video each behaviour takes; the per-frame calls are in
# `DATA/<video>/<video>_predictions.csv`.

# %%
prediction_table(project, new or project.video_keys())

# %% [markdown]
# ## 5. Export
#
# The predicted ethograms for other tools, in `PROJECT/exports/`: BORIS tabular event files
# (`deg export boris --predictions`) and NWB files with the bouts, the per-frame probabilities and
# a link to the video (`deg export nwb`; `uv sync --extra nwb` installs pynwb).

# %%
exported = []
if "boris" in export:
    exported += export_boris(project, new or None, predictions=True, run=run)[0]
if "nwb" in export:
    exported += list(export_nwb(project, new or None, run=run))
print("\n".join(map(str, exported)) or "nothing exported (export = [])")

# %% [markdown]
# ## 6. Record
#
# Save what was predicted (reports/09_new_videos_metrics.json).

# %%
write_metrics(
    project,
    "09_new_videos",
    {
        "added": new,
        "states": states,
        "predictions": {k: str(project.record(k).predictions_path) for k in states},
    },
)
