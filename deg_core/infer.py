"""Feature inference: every frame of every video -> ``DATA/<key>/<key>_outputs.h5``.

Each video is decoded once, sequentially, in chunks (never a seek per frame); a
rolling buffer of frames yields each frame's N-frame stack, so every frame's flows
are computed exactly once, batched. The video edges repeat the first/last frame,
so there is exactly one row per frame, in order. Results stream into a temporary
copy of the outputs file that replaces it when the video is done, so a crash leaves
the previous file intact, memory stays bounded for hour-long videos, and a rerun
skips the videos already done.

Layout, one group per feature-extractor run (named after the run folder)::

    <run>/spatial_features  (T, 512) float32
    <run>/flow_features     (T, 512) float32
    <run>/logits            (T, K) float32
    <run>/P                 (T, K) float32   sigmoid(logits)
    <run>/thresholds        (K,) float32     fitted on validation
    <run>/class_names       (K,) str         the behaviours (background is derived)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deg_core.errors import DegError
from deg_core.models.feature import HiddenTwoStream
from deg_core.models.flow import build_flow_generator
from deg_core.models.weights import load_checkpoint
from deg_core.outputs import has_group, writing_group
from deg_core.project import Project
from deg_core.runs import BEST, read_run_config, resolve_run
from deg_core.train.loop import pick_device
from deg_core.video import open_video

DATASETS = ("spatial_features", "flow_features", "logits", "P")


@dataclass
class FeatureModel:
    """A trained feature extractor ready for inference."""

    model: HiddenTwoStream
    run: Path
    n_rgb: int
    size: tuple[int, int]
    mean: torch.Tensor  # (1, 3, 1, 1)
    std: torch.Tensor
    thresholds: np.ndarray  # (K,)
    behaviors: list[str]

    @classmethod
    def load(cls, project: Project, run: str = "latest", device: str = "cpu") -> FeatureModel:
        run_dir = project.check_run(resolve_run(project.models_dir, "features", run))
        info = read_run_config(run_dir)
        cfg = info["config"]
        flow_info = read_run_config(project.models_dir / info["flow_run"])
        n_rgb = int(info["n_rgb"])
        flow_gen = build_flow_generator(flow_info["arch"], num_frames=n_rgb)
        ecfg = cfg["feature_extractor"]
        behaviors = [c for c in info["class_names"] if c != "background"]
        model = HiddenTwoStream.build(
            info["arch"],
            flow_gen,
            num_classes=len(behaviors),
            num_frames=n_rgb,
            fusion=ecfg["fusion"],
            dropout=ecfg["dropout_p"],
            flow_weight=ecfg["flow_weight"],
        )
        ckpt = load_checkpoint(run_dir / BEST)
        model.load_state_dict(ckpt["model"])
        model.eval().to(pick_device(device))
        norm = info["normalization"]
        h, w = cfg["augs"]["resize"]
        return cls(
            model=model,
            run=run_dir,
            n_rgb=n_rgb,
            size=(int(h), int(w)),
            mean=torch.tensor(norm["mean"], dtype=torch.float32).view(1, 3, 1, 1),
            std=torch.tensor(norm["std"], dtype=torch.float32).view(1, 3, 1, 1),
            thresholds=np.asarray(ckpt["extra"]["thresholds"], dtype=np.float32),
            behaviors=behaviors,
        )


def stacks(frames: Iterator[np.ndarray], n_frames: int, n_rgb: int, batch: int):
    """Sequential (t, H, W, 3) chunks -> (first centre, (B, N, H, W, 3)) batches of stacks.

    Centre ``t``'s stack is frames t-N//2 .. t+N//2 with the ends repeated; every
    centre appears exactly once, in order.
    """
    half = n_rgb // 2
    buf: np.ndarray | None = None
    seen, start = 0, 0  # frames read; first centre not yet emitted
    for chunk in frames:
        if buf is None:  # pad the front with copies of the first frame
            buf = np.repeat(chunk[:1], half, axis=0)
        buf = np.concatenate([buf, chunk])
        seen += len(chunk)
        if seen >= n_frames:  # pad the back with copies of the last frame
            buf = np.concatenate([buf, np.repeat(buf[-1:], n_rgb - 1 - half, axis=0)])
        while True:
            ready = len(buf) - n_rgb + 1  # complete stacks in the buffer
            if ready <= 0 or (ready < batch and seen < n_frames):
                break
            take = min(batch, ready)
            windows = np.lib.stride_tricks.sliding_window_view(buf[: take + n_rgb - 1], n_rgb, 0)
            yield start, np.ascontiguousarray(np.moveaxis(windows, -1, 1))
            start += take
            buf = buf[take:]
    if start != n_frames:
        raise DegError(f"decoded {start} frames, expected {n_frames}")


@torch.no_grad()
def video_features(fm: FeatureModel, video: Path, n_frames: int, batch: int = 16):
    """Yield (first frame, dict of numpy arrays for that batch of frames)."""
    device = next(fm.model.parameters()).device
    mean, std = fm.mean.to(device), fm.std.to(device)
    with open_video(video) as reader:
        chunks = (c for _, c in reader.iter_chunks(chunk=max(batch, 32), size=fm.size))
        for start, stack in stacks(chunks, n_frames, fm.n_rgb, batch):
            x = torch.from_numpy(stack).to(device)  # (B, N, H, W, 3) uint8: 4x less to copy
            x = x.permute(0, 1, 4, 2, 3).float().div_(255.0)  # (B, N, 3, H, W)
            x = ((x - mean.unsqueeze(0)) / std.unsqueeze(0)).flatten(1, 2)  # (B, 3N, H, W)
            out = fm.model(x)
            yield (
                start,
                {
                    "spatial_features": out["spatial_features"].float().cpu().numpy(),
                    "flow_features": out["flow_features"].float().cpu().numpy(),
                    "logits": out["logits"].float().cpu().numpy(),
                    "P": torch.sigmoid(out["logits"]).float().cpu().numpy(),
                },
            )


def write_video_outputs(
    fm: FeatureModel,
    key: str,
    video: Path,
    n_frames: int,
    out_path: Path,
    batch: int = 16,
    progress=None,
) -> None:
    """Compute one video's features and add them atomically as group ``fm.run.name``."""
    k = len(fm.behaviors)
    with writing_group(out_path, fm.run.name, fm.behaviors, fm.thresholds, video=key) as g:
        dims = {"spatial_features": 512, "flow_features": 512}
        ds = {
            name: g.create_dataset(
                name,
                (n_frames, dims.get(name, k)),
                dtype="float32",
                chunks=(min(n_frames, 4096), dims.get(name, k)),
            )
            for name in DATASETS
        }
        for start, arrays in video_features(fm, video, n_frames, batch):
            for name, arr in arrays.items():
                ds[name][start : start + len(arr)] = arr
            if progress is not None:
                progress.update(len(arrays["P"]))


def infer_features(
    project: Project,
    run: str = "latest",
    keys: list[str] | None = None,
    *,
    device: str = "auto",
    batch_size: int = 16,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, str]:
    """Run a feature extractor over videos; returns {key: "done" | "skipped"}."""
    fm = FeatureModel.load(project, run, device)
    keys = [project.resolve_key(k) for k in keys] if keys else project.video_keys()
    result = {}
    for key in keys:
        rec = project.record(key)
        out = rec.outputs_path  # a DEG project's existing outputs file, else <key>_outputs.h5
        if not overwrite and has_group(out, fm.run.name):
            result[key] = "skipped"
            continue
        n = rec.n_frames()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc=key, unit="frame", leave=False)
        try:
            write_video_outputs(fm, key, rec.video, n, out, batch_size, bar)  # type: ignore[arg-type]
        finally:
            if bar is not None:
                bar.close()
        result[key] = "done"
    return result
