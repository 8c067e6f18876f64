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
labeler_name = None  # who is labelling; None: the project's labeler (its labels train)
reference = None  # another annotator whose labels to show beside yours, or None
boris_file = None  # a BORIS event export of this video to start from, or None

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
from deg_core import Project, behavior_table, ethogram, import_boris, write_metrics
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
# play, `?` for every key; it saves by itself. Several people can label the same video: each
# one's labels are kept apart (`labeler_name`), the project's labeler's are the ones that train,
# and `reference` shows another annotator's labels beside yours (`a` jumps to the next frame
# where you disagree). A `boris_file` is imported first (BORIS's tabular event export).

# %%
if boris_file:  # coded in BORIS before: its events become this annotator's labels
    key = project.resolve_key(video or project.video_keys()[0])
    imported = import_boris(project, key, boris_file, labeler=labeler_name)
    print("\n".join(imported.notes))
labeler = Labeler(project, video, labeler=labeler_name, reference=reference)
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
