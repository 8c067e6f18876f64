# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Label
#
# Label behaviours frame by frame with the Labeler; partially labelled videos are fine (unlabelled
# frames are left out of training).

# %% tags=["parameters"]
project_path = "~/deg_projects/my_experiment_deepethogram"
video = None  # the video to label (key or file name); None: the first
finalize = False  # True: mark this video's unlabelled frames absent (when it is complete)

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
from deg_core import Project, behavior_table, ethogram, write_metrics
from deg_widgets import Labeler, ProjectView

# %% [markdown]
# ## 1. The project
#
# Which videos are labelled how much so far.

# %%
project = Project.open(project_path)
ProjectView(project)

# %% [markdown]
# ## 2. The Labeler
#
# Click it, then press a behaviour's number key to start and stop a bout, arrows to move, Space to
# play, `?` for every key; it saves by itself.

# %%
labeler = Labeler(project, video)
labeler

# %% [markdown]
# ## 3. Progress
#
# This video's labels so far (grey: not labelled yet); run the cell again to refresh.

# %%
ethogram(project, labeler.video)

# %% [markdown]
# ## 4. Finish the video
#
# Once every bout in a video is labelled, finalize marks the remaining frames absent.

# %%
if finalize:
    labeler.finalize()
labeler.save()
assert not labeler.error, labeler.error
behavior_table(project)

# %% [markdown]
# ## 5. Record
#
# Save how much is labelled (reports/03_label_metrics.json).

# %%
labels = project.labels(labeler.video)
write_metrics(
    project,
    "03_label",
    {
        "video": labeler.video,
        "frames": labels.n_frames,
        "labeled_fraction": labels.labeled_fraction().tolist(),
    },
)
