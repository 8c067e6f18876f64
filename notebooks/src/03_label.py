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
# frames are left out of training). A video of several animals is labelled animal by animal.

# %% tags=["parameters"]
project_path = "~/deg_projects/my_experiment_deepethogram"
video = None  # the video to label (key or file name); None: the first
finalize = False  # True: mark this video's unlabelled frames absent (when it is complete)
labeler_name = None  # who is labelling; None: the project's labeler (its labels train)
reference = None  # another annotator whose labels to show beside yours, or None
boris_file = None  # a BORIS event export of this video to start from, or None
animal = None  # a video of several animals: the one to label first (None: animal 0)

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
from deg_core import (
    Project,
    behavior_table,
    ethogram,
    import_boris,
    import_boris_animals,
    write_metrics,
)
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
# where you disagree). A `boris_file` is imported first (BORIS's tabular event export; on a video of
# several animals each subject onto its animal).
#
# A video of several animals (`project.animals`, 10_animals.ipynb) has one label file per animal,
# `DATA/<key>/animals/animal<i>/<key>_labels.csv`: pick the animal with the selector or `[` and `]`
# (`labeler.select_animal(i)`), `c` follows it on the frame, `s` jumps to the next frame where two
# animals' identities may have swapped. Edits, undo and finalize act on the selected animal.

# %%
if boris_file:  # coded in BORIS before: its events become this annotator's labels
    key = project.resolve_key(video or project.video_keys()[0])
    if project.n_animals(key) > 1:
        for a, (subject, got) in import_boris_animals(
            project, key, boris_file, labeler=labeler_name
        ).items():
            print(f"animal{a} <- {subject}:", "\n".join(got.notes))
    else:
        imported = import_boris(project, key, boris_file, labeler=labeler_name)
        print("\n".join(imported.notes))
labeler = Labeler(project, video, labeler=labeler_name, reference=reference, animal=animal)
labeler

# %% [markdown]
# ## 3. Progress
#
# This video's labels so far (grey: not labelled yet), each animal's on a video of several; run
# the cell again to refresh.

# %%
ethogram(project, labeler.video)

# %% [markdown]
# ## 4. Finish the video
#
# Once every bout in a video is labelled, finalize marks the remaining frames absent (every
# animal's, on a video of several).

# %%
if finalize:
    selected = labeler.animal
    for a in range(labeler.n_animals):
        labeler.select_animal(a)  # finalize acts on the selected animal
        labeler.finalize()
        assert not labeler.error, labeler.error
    labeler.select_animal(selected)
labeler.save()
assert not labeler.error, labeler.error
behavior_table(project)

# %% [markdown]
# ## 5. Record
#
# Save how much is labelled (reports/03_label_metrics.json), per animal on a video of several.

# %%
if labeler.n_animals == 1:
    labels = project.labels(labeler.video)
    record: dict = {"labeled_fraction": labels.labeled_fraction().tolist()}
else:
    per_animal = {
        f"animal{a}": project.labels(labeler.video, animal=a).labeled_fraction().tolist()
        for a in range(labeler.n_animals)
    }
    record = {
        "n_animals": labeler.n_animals,
        "labeled_fraction": [sum(f) / len(f) for f in zip(*per_animal.values(), strict=True)],
        "labeled_fraction_per_animal": per_animal,
    }
write_metrics(
    project,
    "03_label",
    {"video": labeler.video, "frames": labeler.n_frames, **record},
)
