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
# train the next round (retrain.ipynb). A video of several animals is reviewed animal by animal.

# %% tags=["parameters"]
project_path = "~/deg_projects/my_experiment_deepethogram"
video = None  # the video to review; None: the first test video (else the first video)
run = "latest"  # the sequence run
device = "auto"
margin = 0.2  # |P - threshold| below this counts as uncertain
overwrite_labels = False  # True: predictions replace existing labels too
truth_csv = None  # a synthetic video's true labels: play the reviewer with them (several
# animals: a bout table with an animal column, as 10_animals.ipynb writes)

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
    import_bout_animals,
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
# The video's labels above its predictions (each animal's, on a video of several).

# %%
ethogram(project, key)

# %% [markdown]
# ## 3. Import predictions as labels
#
# Copy the predictions onto the frames nobody labelled (one undo step in the Labeler); on a video
# of several animals each animal's predictions onto its own labels.

# %%
labeler = Labeler(project, key)
imported_per_animal = []
for a in range(labeler.n_animals):  # once on a one-animal video
    labeler.select_animal(a)  # import_predictions acts on the selected animal
    assert labeler.session is not None  # its labels, open
    before = labeler.session.array.copy()
    labeler.import_predictions(overwrite=overwrite_labels)
    assert not labeler.error, labeler.error
    imported_per_animal.append(int((before != labeler.session.array).sum()))
labeler.select_animal(0)
labeler.save()
assert not labeler.error, labeler.error
imported = sum(imported_per_animal)
labeler

# %% [markdown]
# ## 4. The review queue
#
# Stretches to check: `uncertain` (the model could go either way) and `disagree` (a label differs
# from the prediction); in the Labeler, `u` and `d` jump to the next one. On a video of several
# animals there is a queue per animal: `u` walks the selected animal's, `d` every animal's
# disagreements (selecting the animal), and `s` the frames where two animals' identities may have
# swapped (check the outlines there: a swap mixes up whose labels are whose).

# %%
queues = []
for a in range(labeler.n_animals):
    p, session = labeler.all_predictions[a], labeler.sessions[a]
    thresholds = None if p.thresholds is None else p.thresholds.tolist()
    queues.append(
        review_queue(session.array, project.behaviors, p.predicted, p.probs, thresholds, margin)
    )
several = labeler.n_animals > 1
queue = [{"animal": a, **item} if several else item for a, q in enumerate(queues) for item in q]
labeler.seek_uncertain()
Table(queue[:25], caption=f"{len(queue)} stretches to review (first 25)")

# %% [markdown]
# ## 5. Correct
#
# Fix each stretch in the Labeler; with `truth_csv` (a synthetic video) the known truth plays the
# reviewer, animal by animal on a video of several.

# %%
corrected = 0
scores: dict[str, float] = {}
animal_scores: dict[str, dict[str, float]] = {}
truths: dict = {}  # animal -> its true labels
if truth_csv and not several:
    truths = {0: read_labels(truth_csv, project.behaviors, labeler.n_frames).array}
elif truth_csv:  # a bout table with an animal column: each animal's truth
    found = import_bout_animals(truth_csv, project.behaviors, labeler.n_frames) or {}
    truths = {project.animal_index(key, name): t.array for name, t in found.items()}
for a, truth in truths.items():
    labeler.select_animal(a)
    assert labeler.session is not None
    done = {"before": agreement(labeler.session.array, truth)}
    for edit in corrections(labeler.session.array, truth, queues[a], project.behaviors):
        labeler.set_range(edit["behavior"], edit["start"], edit["stop"], edit["value"], "review")
        corrected += edit["stop"] - edit["start"]
    done["after"] = agreement(labeler.session.array, truth)
    animal_scores[f"animal{a}"] = done
if animal_scores:  # over the animals
    n = len(animal_scores)
    scores = {w: sum(d[w] for d in animal_scores.values()) / n for w in ("before", "after")}
labeler.save()
assert not labeler.error, labeler.error
animal_scores if several else scores

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
# `deg agreement` prints it): is the model within human variability? On a video of several
# animals, each animal's annotators and the model's predictions of that animal.

# %%
print(format_agreement(project_agreement(project, [key], model=True)))

# %% [markdown]
# ## 8. Record
#
# Save what the review did (reports/08_review_metrics.json), per animal on a video of several.

# %%
kinds = [item["kind"] for item in queue]
fractions = [
    project.labels(key, animal=a if several else None).labeled_fraction().tolist()
    for a in range(labeler.n_animals)
]
record = {
    "video": key,
    "imported_cells": imported,
    "queue": len(queue),
    "uncertain": kinds.count("uncertain"),
    "disagree": kinds.count("disagree"),
    "corrected_cells": corrected,
    "agreement": scores,
    "labeled_fraction": [sum(f) / len(f) for f in zip(*fractions, strict=True)],
}
if several:
    record["animals"] = {
        f"animal{a}": {
            "imported_cells": imported_per_animal[a],
            "queue": len(queues[a]),
            "agreement": animal_scores.get(f"animal{a}", {}),
            "labeled_fraction": fractions[a],
        }
        for a in range(labeler.n_animals)
    }
write_metrics(project, "08_review", record)
