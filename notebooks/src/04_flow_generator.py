# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. Flow generator
#
# The flow generator learns optic flow (how each pixel moves between frames) from the videos alone;
# the feature extractor then sees motion as well as appearance.

# %% tags=["parameters"]
project_path = "~/deg_projects/my_experiment_deepethogram"
preset = "auto"  # lite on a CPU, else the project's settings; or fast, medium, slow, cpu, lite
device = "auto"  # auto, cpu, cuda or cuda:N
epochs = None  # None: the settings decide
# overrides, e.g. ["flow_generator.steps_per_epoch=500"]
settings: list = []
preview_video = None  # the video whose flows are shown; None: the first

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
from IPython.display import display

from deg_core import (
    Png,
    Project,
    best_record,
    config_table,
    epoch_settings,
    flow_preview,
    train_flow,
    training_curves,
    write_metrics,
)
from deg_widgets import TrainingMonitor

# %% [markdown]
# ## 1. Settings
#
# What this stage will use (`changed` marks values that differ from the defaults).

# %%
project = Project.open(project_path)
config_table(project, "flow", settings, preset)

# %% [markdown]
# ## 2. Train
#
# Train the flow generator; the monitor shows the losses as it learns.

# %%
cfg = project.resolve_config([*settings, *epoch_settings(epochs, ["flow"])], preset=preset)
monitor = TrainingMonitor("flow generator")
display(monitor)
flow_run = train_flow(project, cfg, device=device, callbacks=[monitor], progress=False)
flow_run.name

# %% [markdown]
# ## 3. Curves
#
# Loss per epoch (the best epoch, kept as best.pt, is marked) and, with labels, validation F1 per
# epoch.

# %%
for fig in training_curves(flow_run):
    display(fig)

# %% [markdown]
# ## 4. Look at the flows
#
# A clip's frames above the flows the model computes (colour: direction, saturation: speed, white:
# still).

# %%
Png.from_file(flow_preview(project, flow_run.name, video=preview_video))

# %% [markdown]
# ## 5. Record
#
# Save the run's numbers (reports/04_flow_generator_metrics.json).

# %%
best = best_record(flow_run)
assert best is not None, "no epoch with a finite validation loss"
write_metrics(
    project,
    "04_flow_generator",
    {
        "run": flow_run.name,
        "epochs": len(monitor.records),
        "best_epoch": best["epoch"],
        "best_val_loss": best["val_loss"],
    },
)
