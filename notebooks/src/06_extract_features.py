# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. Extract features
#
# Run the feature extractor over every frame of every video; the sequence model trains on these
# features. Videos already done are skipped, so an interrupted run resumes.

# %% tags=["parameters"]
project_path = "~/deg_projects/my_experiment_deepethogram"
run = "latest"  # the feature-extractor run
videos: list = []  # video keys; []: all
device = "auto"
overwrite = False  # True: recompute videos already done
show_video = None  # the video pictured in step 3; None: the first extracted

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
from deg_core import (
    Project,
    Table,
    infer_features,
    model_ethogram,
    resolve_run,
    video_table,
    write_metrics,
)

# %% [markdown]
# ## 1. Extract
#
# Each video is decoded once, in order; features go to `DATA/<video>/<video>_outputs.h5`.

# %%
project = Project.open(project_path)
run_name = resolve_run(project.models_dir, "features", run).name
states = infer_features(
    project, run_name, videos or None, device=device, overwrite=overwrite, progress=False
)
Table([{"video": k, "features": v} for k, v in states.items()], caption=run_name)

# %% [markdown]
# ## 2. Where things stand
#
# Every video should now list the feature run among its model outputs.

# %%
video_table(project)

# %% [markdown]
# ## 3. What the feature extractor sees
#
# One video's labels above the feature extractor's own per-frame calls (no temporal context yet: the
# sequence model adds it).

# %%
model_ethogram(project, show_video or next(iter(states)), run_name)

# %% [markdown]
# ## 4. Record
#
# Save what was extracted (reports/06_extract_features_metrics.json).

# %%
write_metrics(project, "06_extract_features", {"run": run_name, "states": states})
