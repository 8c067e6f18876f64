# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Retrain
#
# Retrain the models after labels, videos or settings changed, and predict: run it headless with
# `deg retrain PROJECT -p NAME VALUE ...`, which saves this notebook, executed, to
# `PROJECT/reports/<time>_retrain.ipynb`. A stage whose inputs did not change since its last retrain
# is skipped unless forced.

# %% tags=["parameters"]
project_path = ""  # the project (deg retrain sets it)
stages = ["flow", "features", "sequence", "infer"]  # which to consider
epochs = None  # every trained stage's epochs; None: the settings decide
device = "auto"  # auto, cpu, cuda or cuda:N
videos: list = []  # videos the infer stage predicts; []: all
# overrides, e.g. ["sequence.num_epochs=40"]
settings: list = []
preset = None  # None: the project's settings (retraining keeps its networks); or auto, lite
force = False  # True, or a list of stages to run even if their inputs are unchanged
ethograms = 3  # ethograms shown (first predicted videos)
metrics_path = None  # where the recorded values go (deg retrain sets it)

# %% [markdown]
# ## Setup
#
# Open the project and plan the stages.

# %% tags=["step:setup"]
from IPython.display import display

from deg_core import (
    Project,
    RetrainPlan,
    ethogram,
    evaluate_splits,
    f1_bars,
    latest_run,
    metrics_table,
    pr_figure,
    run_thresholds,
    split_outputs,
    stage_figures,
    write_metrics,
)

project = Project.open(project_path)
plan = RetrainPlan(
    project,
    stages,
    settings=settings,
    epochs=epochs,
    preset=preset,
    force=force,
    device=device,
    videos=videos,
)
figures = 0
plan.table()

# %% [markdown]
# ## 1. Flow generator
#
# Retrained when the videos, splits or its settings changed.

# %% tags=["step:flow"]
result = plan.run("flow")
for fig in stage_figures(project, result):
    figures += 1
    display(fig)
result

# %% [markdown]
# ## 2. Feature extractor
#
# Retrained when labels, splits, behaviours, its settings or the flow run changed; then every
# video's features are extracted.

# %% tags=["step:features"]
result = plan.run("features")
for fig in stage_figures(project, result):
    figures += 1
    display(fig)
result

# %% [markdown]
# ## 3. Sequence model
#
# Retrained when labels, splits, behaviours, its settings or the feature run changed.

# %% tags=["step:sequence"]
result = plan.run("sequence")
for fig in stage_figures(project, result):
    figures += 1
    display(fig)
result

# %% [markdown]
# ## 4. Predict
#
# Every frame of the chosen videos, with the current sequence model.

# %% tags=["step:infer"]
result = plan.run("infer")
result

# %% [markdown]
# ## 5. Evaluation
#
# The current sequence model on the labelled val and test videos.

# %% tags=["step:evaluate"]
sequence_run = latest_run(project, "sequence")
results = evaluate_splits(project, sequence_run, skip_missing=True) if sequence_run else {}
if sequence_run and results:
    display(metrics_table(results))
    display(f1_bars({s: r["f1"] for s, r in results.items()}, f"F1 per behaviour: {sequence_run}"))
    figures += 1
    probs, labels, _ = split_outputs(project, sequence_run, "val")
    if probs:
        thresholds = run_thresholds(project, sequence_run, "sequence").tolist()
        display(pr_figure(probs, labels, thresholds, project.behaviors))
        figures += 1

# %% [markdown]
# ## 6. Ethograms
#
# Labels above predictions for the first predicted videos.

# %% tags=["step:ethograms"]
shown = [
    k
    for k in (videos or project.video_keys())
    if project.record(project.resolve_key(k)).predictions_path.exists()
][:ethograms]
for key in shown:
    display(ethogram(project, project.resolve_key(key)))
    figures += 1

# %% [markdown]
# ## 7. Summary
#
# What ran, what was skipped and why; recorded next to this report.

# %% tags=["step:summary"]
write_metrics(
    project,
    "retrain",
    {
        "project": project.root,
        "stages": plan.summary(),
        "sequence_run": sequence_run,
        "evaluation": {
            s: {"f1": r["f1"], "macro_f1": r["macro"]["f1"], "videos": r["videos"]}
            for s, r in results.items()
        },
        "figures": figures,
    },
    path=metrics_path,
)
plan.table()
