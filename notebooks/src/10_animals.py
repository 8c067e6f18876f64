# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10. Several animals
#
# Videos of several animals: each animal has its own labels, tracks keep each animal's identity
# from frame to frame, and the models learn and predict each animal through a window that follows
# its track. Shown on generated videos of animals whose behaviours and positions are known, or on
# your own project of several animals.

# %% tags=["parameters"]
project_path = None  # your project of several animals; None: a demo project in workdir
workdir = "deg_animals"  # a folder for the demo project (created)
n_animals = 2  # animals in each generated video (2 or 3)
n_videos = 3  # generated videos, split as deg demo splits them (a val and a test one at least)
n_frames = 200  # frames per generated video (the tracker needs the animals to move)
frame_size = 96  # pixels (square, even)
video = None  # the video to look at (key or file name); None: the first
fix_swaps = True  # generated videos: fix the identity swaps their known positions show
train = False  # True: train and predict every animal (the preset's budget: minutes)
preset = "cpu"  # the settings for training (deg's CPU preset: several animals included)
device = "auto"  # auto, cpu, cuda or cuda:N
# extra overrides, e.g. ["sequence.num_epochs=5"]
settings: list = []

# %% [markdown]
# ## Setup
#
# Import what the steps use.

# %%
import csv
from pathlib import Path

from IPython.display import display

from deg_core import (
    MULTI_BEHAVIORS,
    AnimalTracks,
    MultiSpec,
    Png,
    Project,
    Table,
    animal_tracks,
    bout_table,
    demo_splits,
    ethogram,
    identity_switches,
    multi_truth,
    save_animal_tracks,
    swap_candidates,
    switch_frames,
    track_animals,
    tracks_path,
    tracks_png,
    write_metrics,
    write_multi_video,
)
from deg_core.video import open_video
from deg_widgets import Labeler, ProjectView

# %% [markdown]
# ## 1. A project of several animals
#
# `project.set_animals(n)` (`deg animals PROJECT N`) sets how many animals each video holds
# (`project.animals` in the project's config); `project.set_animals(n, video=key)` a video's own
# number (`project.animals_per_video`). The demo project's generated videos each hold `n_animals`.

# %%
folder = Path(workdir).expanduser().absolute()
specs = {  # the generated videos: their truth is known
    f"pair_{i:02d}": MultiSpec(n_animals=n_animals, n_frames=n_frames, size=frame_size, seed=i)
    for i in range(n_videos)
}
made = False
if project_path:
    project, specs = Project.open(project_path), {}
elif (folder / "pair_deepethogram").exists():
    project = Project.open(folder / "pair_deepethogram")
else:
    folder.mkdir(parents=True, exist_ok=True)
    project = Project.create(folder, "pair", list(MULTI_BEHAVIORS))
    project.set_animals(n_animals)  # refused once a video has tracks or labels of another number
    for (name, spec), split in zip(specs.items(), demo_splits(n_videos), strict=False):
        write_multi_video(folder / f"{name}.mp4", spec)
        project.add_videos([folder / f"{name}.mp4"], split=split)
    made = True
truths = {  # the generated videos' known behaviours and positions
    k: multi_truth(spec)
    for k, spec in specs.items()
    if k in project.video_keys() and project.record(k).n_frames() == spec.n_frames
}
key = project.resolve_key(video) if video else project.video_keys()[0]
assert project.n_animals(key) > 1, f"video {key} has one animal (project.animals)"
ProjectView(project)

# %% [markdown]
# ## 2. Labels per animal
#
# Each animal's labels are a file of their own, `DATA/<key>/animals/animal<i>/<key>_labels.csv`
# (`project.labels(key, animal=i)`); a bout table with an `animal` column fills every animal at once
# (`deg import-labels`). Here the generated truth becomes the demo project's labels.

# %%
for k, truth in truths.items():
    table = folder / f"{k}_truth.csv"  # behaviour bouts of every animal
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, ["animal", "behavior", "start", "stop"])
        writer.writeheader()
        for a in range(project.n_animals(k)):
            for bout in bout_table(truth.labels[:, a], project.behaviors):
                writer.writerow({"animal": f"animal{a}", **bout})
    if made:  # never over labels already there
        project.import_labels_per_animal(k, table)
labelled = {
    k: {
        f"animal{a}": project.labels(k, animal=a).labeled_fraction().tolist()
        for a in range(project.n_animals(k))
    }
    for k in project.video_keys()
    if project.n_animals(k) > 1
}
Table([{"video": k, **v} for k, v in labelled.items()], caption="labelled share per behaviour")

# %% [markdown]
# ## 3. Tracks
#
# deg's tracker follows every animal under one identity through contacts (`deg tracks PROJECT
# VIDEO --compute`); SLEAP, DeepLabCut or CSV tracks come in with `import_animal_tracks` (`deg
# tracks PROJECT VIDEO --import FILE`). Videos that have tracks keep them.

# %%
for k in project.video_keys():
    video_file = project.record(k).video
    if project.n_animals(k) > 1 and video_file and animal_tracks(project, k) is None:
        save_animal_tracks(project, k, track_animals(video_file, project.n_animals(k)))
all_tracks = {k: t for k in project.video_keys() if (t := animal_tracks(project, k))}
assert key in all_tracks, f"video {key} has no tracks"
video_file = project.record(key).video
assert video_file is not None
with open_video(video_file) as reader:
    first_frame = reader.get_batch([0])[0]


def tracks_picture(t: AnimalTracks) -> Png:
    """The tracks over the video's first frame (a small video is drawn larger)."""
    return tracks_png(t, first_frame)


tracks = all_tracks[key]
print(f"{tracks_path(project, key)}: {tracks.n_animals} animals, source {tracks.source}")
tracks_picture(tracks)

# %% [markdown]
# ## 4. Swap candidates
#
# Where two animals may have exchanged identities: the first frame after they touched (their blobs
# merged) and sudden jumps. On a generated video its known positions tell which ones are swaps.

# %%
candidates = {k: swap_candidates(t) for k, t in all_tracks.items()}
swaps = {k: switch_frames(all_tracks[k].center, t.centers).tolist() for k, t in truths.items()}
rows = [
    {
        "video": k,
        "merged frames": int(t.merged.sum()),
        "swap candidates": candidates[k] or "-",
        "swaps (truth)": swaps.get(k) or "-",
    }
    for k, t in all_tracks.items()
]
Table(rows, caption="possible identity swaps per video")

# %% [markdown]
# ## 5. Fix the swaps
#
# Exchange two animals' tracks from a frame on (`deg tracks PROJECT VIDEO --swap A B --from F`, or
# `labeler.swap_identities(a, b, frame)` in the Labeler); labels are not touched. The known
# positions play the reviewer here; on your own video check each candidate first (next step, `s`).

# %%
fixed: dict[str, list[int]] = {}
if fix_swaps:
    for k in truths:
        if all_tracks[k].n_animals != 2:
            continue  # three animals: which two swapped is for you to see
        for frame in swaps[k]:  # in order: each swap also moves the later frames back
            all_tracks[k] = all_tracks[k].swap(0, 1, frame)
        save_animal_tracks(project, k, all_tracks[k])
        fixed[k] = swaps[k]
switches = {k: identity_switches(all_tracks[k].center, t.centers) for k, t in truths.items()}
tracks = all_tracks[key]
print(f"swaps fixed: {fixed or 'none'}; identity switches left: {switches}")
tracks_picture(tracks)

# %% [markdown]
# ## 6. The Labeler, animal by animal
#
# Pick the animal with the selector, or `[` and `]`; `c` follows it (centres and zooms on its
# outline); `s` / `Shift+S` jump to the next / previous swap candidate, `d` to the next frame where
# any animal's labels and predictions differ. Edits, undo and finalize act on the selected animal;
# the timeline shows every animal's labels, each animal's file saves by itself.

# %%
labeler = Labeler(project, key, animal=0)
labeler.select_animal(labeler.n_animals - 1)  # what the selector and ] do
labeler.seek_swap()  # what s does
# after looking at the outlines there: labeler.swap_identities(0, 1, labeler.frame)
assert not labeler.error, labeler.error
labeler

# %% [markdown]
# ## 7. Train, predict and score every animal
#
# With `train`: the preset's three stages learn from every (video, animal) stream, then each animal
# is predicted (`<key>_animal<i>_predictions.csv`) and scored, each alone and all pooled (`deg
# evaluate`). It takes minutes, so it is off unless asked for.

# %%
result: dict = {}
parts: dict = {}
if train:
    from deg_core import (
        evaluate_project,
        infer_features,
        infer_sequence,
        metrics_table,
        split_keys,
        train_features,
        train_flow,
        train_sequence,
    )

    cfg = project.resolve_config(list(settings), preset=preset)
    kw: dict = {"device": device, "progress": False}
    flow_run = train_flow(project, cfg, **kw)
    feature_run = train_features(project, cfg, flow_run=flow_run.name, **kw)
    infer_features(project, feature_run.name, **kw)
    sequence_run = train_sequence(project, cfg, feature_run=feature_run.name, **kw)
    infer_sequence(project, sequence_run.name, device=device)
    split = "test" if split_keys(project)["test"] else "val"
    result = evaluate_project(project, split, "sequence", sequence_run.name)
    parts = {**result.get("per_animal", {}), "pooled": result}
    display(metrics_table({f"{split} {name}": r for name, r in parts.items()}))

# %% [markdown]
# ## 8. The ethogram, animal by animal
#
# Each animal's labels, above its predictions when there are some (`ethogram(project, key,
# animal=i)`: one animal's).

# %%
ethogram(project, key)

# %% [markdown]
# ## 9. Record
#
# Save what was done (reports/10_animals_metrics.json).

# %%
write_metrics(
    project,
    "10_animals",
    {
        "video": key,
        "n_animals": project.n_animals(key),
        "frames": tracks.n_frames,
        "tracks": {"file": tracks_path(project, key), "source": tracks.source},
        "merged_frames": int(tracks.merged.sum()),
        "swap_candidates": candidates,
        "swaps": swaps,
        "fixed_swaps": fixed,
        "identity_switches": switches,
        "labeled_fraction": labelled,
        "macro_f1": {n: r["macro"]["f1"] for n, r in parts.items()} if result else None,
    },
)
