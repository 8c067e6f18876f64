# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 8. Review
#
# Predict every video, copy a video's predictions into its labels where nobody labelled yet, then
# walk the review queue (uncertain frames, disagreements) and correct them: the corrected labels
# train the next round (retrain.ipynb).

# %% tags=["parameters"]
project_path = "~/deg_projects/my_experiment_deepethogram"
video = None  # the video to review; None: the first test video (else the first video)
run = "latest"  # the sequence run
device = "auto"
margin = 0.2  # |P - threshold| below this counts as uncertain
overwrite_labels = False  # True: predictions replace existing labels too
truth_csv = None  # a synthetic video's true labels: play the reviewer with them

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
from deg_core import (
    Project,
    Table,
    agreement,
    corrections,
    ethogram,
    format_agreement,
    predict,
    project_agreement,
    read_labels,
    review_queue,
    split_keys,
    write_metrics,
)
from deg_widgets import Labeler

# %% [markdown]
# ## 1. Predict
#
# Per-frame predictions for every video (videos already done are skipped).

# %%
project = Project.open(project_path)
states = predict(project, run=run, device=device)
test_videos = split_keys(project)["test"]
key = project.resolve_key(video) if video else (test_videos or project.video_keys())[0]
Table([{"video": k, "predictions": v} for k, v in states.items()])

# %% [markdown]
# ## 2. Before review
#
# The video's labels above its predictions.

# %%
ethogram(project, key)

# %% [markdown]
# ## 3. Import predictions as labels
#
# Copy the predictions onto the frames nobody labelled (one undo step in the Labeler).

# %%
labeler = Labeler(project, key)
assert labeler.session is not None  # the video's labels, open
before = labeler.session.array.copy()
labeler.import_predictions(overwrite=overwrite_labels)
labeler.save()
assert not labeler.error, labeler.error
imported = int((before != labeler.session.array).sum())
labeler

# %% [markdown]
# ## 4. The review queue
#
# Stretches to check: `uncertain` (the model could go either way) and `disagree` (a label differs
# from the prediction); in the Labeler, `u` and `d` jump to the next one.

# %%
p = labeler.predictions
thresholds = None if p.thresholds is None else p.thresholds.tolist()
queue = review_queue(
    labeler.session.array, project.behaviors, p.predicted, p.probs, thresholds, margin
)
labeler.seek_uncertain()
Table(queue[:25], caption=f"{len(queue)} stretches to review (first 25)")

# %% [markdown]
# ## 5. Correct
#
# Fix each stretch in the Labeler; with `truth_csv` (a synthetic video) the known truth plays the
# reviewer.

# %%
corrected = 0
scores: dict[str, float] = {}
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

# %% [markdown]
# ## 6. The corrected ethogram
#
# The reviewed labels above the predictions.

# %%
ethogram(project, key)

# %% [markdown]
# ## 7. Annotators and the model
#
# Kappa, percent and bout agreement of this video's annotators and of the model with each (as
# `deg agreement` prints it): is the model within human variability?

# %%
print(format_agreement(project_agreement(project, [key], model=True)))

# %% [markdown]
# ## 8. Record
#
# Save what the review did (reports/08_review_metrics.json).

# %%
kinds = [item["kind"] for item in queue]
write_metrics(
    project,
    "08_review",
    {
        "video": key,
        "imported_cells": imported,
        "queue": len(queue),
        "uncertain": kinds.count("uncertain"),
        "disagree": kinds.count("disagree"),
        "corrected_cells": corrected,
        "agreement": scores,
        "labeled_fraction": project.labels(key).labeled_fraction().tolist(),
    },
)
