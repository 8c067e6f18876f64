"""Look at what a flow generator learned: one clip's frames above its colour-coded flows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deg_core.data.clips import clip_indices
from deg_core.models.flow import build_flow_generator
from deg_core.models.flow.viz import flow_figure
from deg_core.models.weights import load_checkpoint
from deg_core.project.project import Project
from deg_core.project.runs import BEST, read_run_config, resolve_run
from deg_core.video import open_video


@torch.no_grad()
def flow_preview(
    project: Project,
    run: str = "latest",
    video: str | None = None,
    frame: int | None = None,
    out: str | Path | None = None,
) -> Path:
    """Write a PNG of the clip centred on ``frame`` of ``video`` and its flows; returns its path.

    Defaults: the first video, its middle frame, ``<run>/flow_preview.png``.
    """
    run_dir = resolve_run(project.models_dir, "flow", run)
    info = read_run_config(run_dir)
    cfg = info["config"]
    n_rgb = int(cfg["flow_generator"]["n_rgb"])
    model = build_flow_generator(info["arch"], num_frames=n_rgb)
    model.load_state_dict(load_checkpoint(run_dir / BEST)["model"])
    model.eval()
    key = project.resolve_key(video) if video else project.video_keys()[0]
    rec = project.record(key)
    n = rec.n_frames()
    center = n // 2 if frame is None else int(frame)
    h, w = cfg["augs"]["resize"]
    with open_video(rec.video) as reader:  # type: ignore[arg-type]
        frames = reader.get_batch(clip_indices(center, n_rgb, n), size=(int(h), int(w)))
    norm = info["normalization"]
    mean = torch.tensor(norm["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(norm["std"]).view(1, 3, 1, 1)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    x = ((x - mean) / std).reshape(1, -1, int(h), int(w))
    half = model(x)[0]  # (1, 2(N-1), H/2, W/2), pairs (dx, dy) per frame pair
    flows = half[0].reshape(n_rgb - 1, 2, *half.shape[-2:]).numpy()
    path = Path(out) if out is not None else run_dir / "flow_preview.png"
    flow_figure(frames, np.asarray(flows), path)
    return path
