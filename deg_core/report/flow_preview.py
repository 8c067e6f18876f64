"""Look at what a flow generator learned: one clip's frames above its colour-coded flows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from deg_core.data.clips import clip_indices
from deg_core.errors import ProjectError
from deg_core.models.flow.viz import flow_figure
from deg_core.project.project import Project
from deg_core.train.features import load_flow_run
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
    model, info = load_flow_run(project, run)
    n_rgb = info.n_rgb
    assert n_rgb is not None  # load_flow_run refuses a run without it
    model.eval()
    key = project.resolve_key(video) if video else project.video_keys()[0]
    rec = project.record(key)
    n = rec.n_frames()
    center = n // 2 if frame is None else int(frame)
    h, w = info.config.augs.resize
    with open_video(rec.video) as reader:  # type: ignore[arg-type]
        frames = reader.get_batch(clip_indices(center, n_rgb, n), size=(int(h), int(w)))
    norm = info.normalization
    if norm is None:
        raise ProjectError("no normalization recorded: not a flow run", info.path)
    mean = torch.tensor(norm["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(norm["std"]).view(1, 3, 1, 1)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    x = ((x - mean) / std).reshape(1, -1, int(h), int(w))
    half = model(x)[0]  # (1, 2(N-1), H/2, W/2), pairs (dx, dy) per frame pair
    flows = half[0].reshape(n_rgb - 1, 2, *half.shape[-2:]).numpy()
    path = Path(out) if out is not None else info.path / "flow_preview.png"
    flow_figure(frames, np.asarray(flows), path)
    return path
