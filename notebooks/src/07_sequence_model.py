# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 7. Sequence model
#
# The sequence model reads the per-frame features of long windows and learns how behaviour unfolds
# over time. Its decision is a threshold per behaviour fitted on the validation videos (with
# `sequence.decisions=out_of_fold`: on the predictions every labelled video gets from a model that
# did not train on it), or for an exclusive project the arg-max over background + behaviours; it is
# scored on the test videos.

# %% tags=["parameters"]
project_path = "~/deg_projects/my_experiment_deepethogram"
feature_run = "latest"  # the feature-extractor run whose features it reads
preset = "auto"  # as in 04 and 05: the preset the features were trained with
device = "auto"
epochs = None
# overrides, e.g. ["sequence.arch=tcn"]
settings: list = []

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
from IPython.display import display

from deg_core import (
    Project,
    epoch_settings,
    evaluate_splits,
    f1_bars,
    metrics_table,
    pr_figure,
    predict,
    run_thresholds,
    split_keys,
    split_outputs,
    threshold_table,
    train_sequence,
    training_curves,
    write_metrics,
)
from deg_widgets import TrainingMonitor

# %% [markdown]
# ## 1. The project
#
# Videos per split: train learns, val picks thresholds, test scores.

# %%
project = Project.open(project_path)
split_keys(project)

# %% [markdown]
# ## 2. Train
#
# Train the sequence model; the monitor shows the losses as it learns.

# %%
cfg = project.resolve_config([*settings, *epoch_settings(epochs, ["sequence"])], preset=preset)
monitor = TrainingMonitor("sequence model")
display(monitor)
sequence_run = train_sequence(
    project, cfg, feature_run=feature_run, device=device, callbacks=[monitor], progress=False
)
sequence_run.name

# %% [markdown]
# ## 3. Curves
#
# Loss per epoch (the best epoch, kept as best.pt, is marked) and, with labels, validation F1 per
# epoch.

# %%
for fig in training_curves(sequence_run):
    display(fig)

# %% [markdown]
# ## 4. Decisions
#
# Per behaviour, the threshold that maximises F1 on the videos the decision was fitted on (or,
# exclusive, the arg-max offset), and the shortest bout kept (shorter predicted bouts are removed
# as noise). A threshold that would switch a rarely labelled behaviour on for nearly every frame is
# refused and replaced by the score quantile that matches how often it is labelled; the notes say
# so.

# %%
threshold_table(project, sequence_run.name, "sequence")

# %% [markdown]
# ## 5. Predict validation and test videos
#
# Per-frame probabilities and the cleaned ethogram of each of them.

# %%
keys = split_keys(project)
predict(project, keys["val"] + keys["test"], run=sequence_run.name, device=device)

# %% [markdown]
# ## 6. Precision and recall
#
# Each behaviour's precision-recall curve on the validation videos, with the chosen threshold
# marked.

# %%
probs, labels, _ = split_outputs(project, sequence_run.name, "val")
thresholds = run_thresholds(project, sequence_run.name, "sequence").tolist()
pr_figure(probs, labels, thresholds, project.behaviors)

# %% [markdown]
# ## 7. Evaluation
#
# F1, precision, recall, AUROC and bout F1 per behaviour on val and test, beside the F1 of
# predicting the behaviour on every frame (all-positive: a guess, not an ethogram) and, for
# diagnosis only, the best F1 any threshold reaches on those very frames. A line under the table
# names a behaviour predicted on most frames while labelled on few.

# %%
results = evaluate_splits(project, sequence_run.name)
display(metrics_table(results))
f1_bars({s: r["f1"] for s, r in results.items()}, "sequence model: F1 per behaviour")

# %% [markdown]
# ## 8. Record
#
# Save the scores (reports/07_sequence_model_metrics.json).

# %%
write_metrics(
    project,
    "07_sequence_model",
    {
        "run": sequence_run.name,
        "epochs": len(monitor.records),
        "thresholds": thresholds,
        "f1": {s: r["f1"] for s, r in results.items()},
        "macro_f1": {s: r["macro"]["f1"] for s, r in results.items()},
    },
)
