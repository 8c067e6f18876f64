# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. Feature extractor
#
# The feature extractor (a hidden two-stream network) learns to recognise each behaviour from a
# frame and its flows, on your labels; its per-frame features feed the sequence model. In an
# exclusive project (`deg init --exclusive`, or `exclusive: true` under `project:` in
# project_config.yaml: one behaviour or background per frame) it learns one softmax over background
# + behaviours and decides by arg-max; `deg status` suggests it when your labels already fit.

# %% tags=["parameters"]
project_path = "~/deg_projects/my_experiment_deepethogram"
flow_run = "latest"  # the flow run to use
preset = "auto"  # lite on a CPU, else the project's settings; or fast, medium, slow, cpu, lite
device = "auto"
epochs = None
# True: first learn from every frame of every video, labelled or not (deg train pretrain)
pretrain = False
# overrides, e.g. ["feature_extractor.batch_size=32"]
settings: list = []

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
from IPython.display import display

from deg_core import (
    Project,
    behavior_table,
    best_record,
    epoch_settings,
    f1_bars,
    start_weights_lines,
    threshold_table,
    train_features,
    train_pretrain,
    training_curves,
    write_metrics,
)
from deg_widgets import TrainingMonitor

# %% [markdown]
# ## 1. Labels to learn from
#
# Labelled frames per behaviour; rare behaviours are weighted up in the loss.

# %%
project = Project.open(project_path)
behavior_table(project)

# %% [markdown]
# ## 2. Train
#
# Train the feature extractor; the monitor shows the losses as it learns. With `pretrain = True`
# it first pretrains on every frame of every video, labelled or not, and starts from that run.
# The first line says which weights it starts from (`deg weights download imagenet` or
# `deepethogram` gets better ones than random on a machine with internet).

# %%
cfg = project.resolve_config([*settings, *epoch_settings(epochs, ["features"])], preset=preset)
if pretrain:  # self-supervised: two views of each clip should agree (VICReg); no labels used
    pretrain_run = train_pretrain(project, cfg, flow_run=flow_run, device=device, progress=False)
    print(f"pretrained {pretrain_run.name}: the feature extractor starts from it")
    starts = ["feature_extractor.weights=selfsup"]  # over any weights setting above
    cfg = project.resolve_config(
        [*settings, *epoch_settings(epochs, ["features"]), *starts], preset=preset
    )
print(start_weights_lines(cfg, project.models_dir / "pretrained")["features"])
monitor = TrainingMonitor("feature extractor")
display(monitor)
feature_run = train_features(
    project, cfg, flow_run=flow_run, device=device, callbacks=[monitor], progress=False
)
feature_run.name

# %% [markdown]
# ## 3. Curves
#
# Loss per epoch (the best epoch, kept as best.pt, is marked) and, with labels, validation F1 per
# epoch.

# %%
for fig in training_curves(feature_run):
    display(fig)

# %% [markdown]
# ## 4. Per-behaviour F1
#
# Validation F1 of each behaviour at the best epoch, with the decision fitted there (thresholds, or
# arg-max offsets in an exclusive project).

# %%
best = best_record(feature_run)
assert best is not None, "no epoch with a finite validation loss"
display(threshold_table(project, feature_run.name, "features"))
f1_bars({"validation": best["f1"]}, "feature extractor: F1 per behaviour")

# %% [markdown]
# ## 5. Record
#
# Save the run's numbers (reports/05_feature_extractor_metrics.json).

# %%
write_metrics(
    project,
    "05_feature_extractor",
    {
        "run": feature_run.name,
        "epochs": len(monitor.records),
        "best_epoch": best["epoch"],
        "f1": best["f1"],
        "macro_f1": best["macro_f1"],
        "thresholds": best["thresholds"],
    },
)
