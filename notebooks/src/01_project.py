# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. The project
#
# A project is a folder (`<name>_deepethogram/`) holding the videos, labels, models and settings of
# one experiment, in DeepEthogram's format.

# %% tags=["parameters"]
parent = "~/deg_projects"  # the folder that holds your projects (created)
name = "my_experiment"  # letters, digits, _ or -
behaviors = ["groom", "rear", "walk"]  # "background" is implicit
labeler = None  # your name, recorded in the project
add_behaviors: list = []  # behaviours to add, e.g. ["dig"]
rename_behaviors: dict = {}  # {old: new}, e.g. {"walk": "locomotion"}
stage = "features"  # whose settings to list: flow, features or sequence
# overrides to try, e.g. ["feature_extractor.num_epochs=5"]
settings: list = []

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
from pathlib import Path

from deg_core import Project, config_table, write_metrics
from deg_widgets import ProjectView

# %% [markdown]
# ## 1. Create or open
#
# Create the project folder, or open it if it exists.

# %%
folder = Path(parent).expanduser()
folder.mkdir(parents=True, exist_ok=True)
root = folder / f"{name}_deepethogram"
if root.exists():
    project = Project.open(root)
else:
    project = Project.create(folder, name, behaviors, labeler=labeler)
project

# %% [markdown]
# ## 2. What is inside
#
# `project_config.yaml` (settings), `DATA/` (one folder per video: video, labels, outputs) and
# `models/` (one folder per training run).

# %%
sorted(p.name for p in project.root.iterdir())

# %% [markdown]
# ## 3. Behaviours
#
# Add or rename behaviours; label files are rewritten and older models marked stale.

# %%
for b in add_behaviors:
    if b not in project.behaviors:
        project.add_behavior(b)
for old, new in rename_behaviors.items():
    if old in project.behaviors:
        project.rename_behavior(old, new)
project.behaviors

# %% [markdown]
# ## 4. Settings
#
# Every setting of a stage with its meaning; `settings` overrides apply to one training run (`--set`
# on the command line).

# %%
table = config_table(project, stage, settings)
table

# %% [markdown]
# ## 5. At a glance
#
# Videos, labels and model runs; refresh it as the project grows.

# %%
ProjectView(project)

# %% [markdown]
# ## 6. Record
#
# Save what was set up (reports/01_project_metrics.json).

# %%
changed = [row["setting"] for row in table.rows if row["changed"]]
write_metrics(
    project,
    "01_project",
    {
        "root": project.root,
        "behaviors": project.behaviors,
        "settings_listed": len(table),
        "settings_changed": changed,
    },
)
