# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Videos
#
# Add videos (they are copied into the project and checked), look at them, import labels you already
# have, and choose which videos train, validate and test the models.

# %% tags=["parameters"]
project_path = "~/deg_projects/my_experiment_deepethogram"
videos: list = []  # video files to add, e.g. ["~/recordings/mouse1.mp4"]
split = None  # "train", "val" or "test" for all of them; None: the project assigns
label_files: dict = {}  # {video: label CSV} (DeepEthogram CSV or a start,stop,behavior table)
splits: dict = {}  # {video: "train" | "val" | "test"}: move videos between splits

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
from IPython.display import display

from deg_core import (
    Project,
    behavior_table,
    example_frames,
    video_stats_table,
    video_table,
    write_metrics,
)

# %% [markdown]
# ## 1. Add videos
#
# Copy each video into the project, check it decodes, and measure it (videos already added are
# skipped).

# %%
project = Project.open(project_path)
added = project.add_videos(videos, split=split, skip_existing=True) if videos else []
added

# %% [markdown]
# ## 2. Statistics
#
# Frames, frame rate, size, codec and per-channel pixel statistics (used to normalise the inputs).

# %%
video_stats_table(project)

# %% [markdown]
# ## 3. Look at them
#
# Evenly spaced frames of each video.

# %%
for key in project.video_keys()[:4]:
    display(example_frames(project, key))

# %% [markdown]
# ## 4. Import labels
#
# Bring in labels you already have; the rest you label in 03_label.

# %%
for video, csv in label_files.items():
    project.import_labels(video, csv)
behavior_table(project)

# %% [markdown]
# ## 5. Splits
#
# Models train on `train`, pick thresholds on `val`, and are scored on `test`; a whole video belongs
# to one split.

# %%
for video, s in splits.items():
    for warning in project.set_split(video, s):
        print("warning:", warning)
for warning in project.splits().warnings():
    print("warning:", warning)
video_table(project)

# %% [markdown]
# ## 6. Record
#
# Save the video list (reports/02_videos_metrics.json).

# %%
table = project.splits()
write_metrics(
    project,
    "02_videos",
    {
        "added": added,
        "videos": project.video_keys(),
        "splits": table.assignment,
        "frames": {k: project.record(k).frames for k in project.video_keys()},
    },
)
