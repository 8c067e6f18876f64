"""What a preset computes, built one way for ``deg train``, ``deg infer`` and the benchmarks.

:func:`~deg_core.models.network.feature_network` is the one constructor of the two-stream
network from a config: the feature trainer, :meth:`FeaturePredictor.load` and the benchmarks
all call it. :func:`preset_predictor` builds the predictor that a run trained with a preset
(or a config) loads — the same architectures, ``rgb_stride``, frames per stack, input size,
crop and precision — with random weights (throughput does not depend on them), so a
benchmark's figure is the figure a user gets. :func:`describe` is what tests compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from deg_core.config import DegConfig, resolve, to_dict
from deg_core.infer.feature_predictor import FeaturePredictor, InferenceOptions
from deg_core.models.network import feature_network
from deg_core.train.loop import pick_device

__all__ = ["PresetShape", "describe", "feature_network", "preset_config", "preset_predictor"]
# feature_network (deg_core.models.network) is re-exported: the one constructor

# a video's channel statistics stand-in: the benchmarks' weights are random anyway
GREY_NORM = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


def preset_config(preset: str | DegConfig, overrides: list[str] | None = None) -> DegConfig:
    """A preset's settings over a new project's (``auto``: what ``--preset auto`` means on
    this machine), or a given config; ``key=value`` overrides on top."""
    if isinstance(preset, DegConfig):
        return preset if not overrides else resolve(_raw(preset), overrides)
    return resolve({}, overrides, preset=preset)


def _raw(cfg: DegConfig) -> dict:
    return to_dict(cfg)


def preset_predictor(
    preset: str | DegConfig,
    num_classes: int = 3,
    *,
    size: tuple[int, int] | None = None,
    device: str = "cpu",
    overrides: list[str] | None = None,
    normalization: dict | None = None,
    seed: int = 0,
) -> FeaturePredictor:
    """The feature predictor a run trained with ``preset`` would load, with random weights.

    ``size``: the network's input (height, width) instead of the preset's ``augs.resize``
    (to compare presets at one size; the crop and everything else stay the preset's).
    """
    cfg = preset_config(preset, overrides)
    torch.manual_seed(seed)
    model = feature_network(cfg, num_classes)
    model.eval().to(pick_device(device))
    if size is not None:
        over = [f"augs.resize=[{int(size[0])}, {int(size[1])}]"]
        cfg = resolve(_raw(cfg), over)
    return FeaturePredictor.from_config(
        cfg,
        model,
        run=Path(f"preset_{preset if isinstance(preset, str) else 'config'}"),
        normalization=normalization or GREY_NORM,
        thresholds=np.full(num_classes, 0.5, np.float32),
        behaviors=[f"b{i}" for i in range(num_classes)],
    )


@dataclass(frozen=True)
class PresetShape:
    """What decides a predictor's speed and output: compared by the tests."""

    flow_arch: str
    feature_arch: str
    rgb_stride: int
    n_rgb: int
    size: tuple[int, int]
    crop: str | None
    dtype: str  # the autocast dtype inference runs in ("float32" when none)


def describe(fm: FeaturePredictor, opts: InferenceOptions | None = None) -> PresetShape:
    """``fm``'s :class:`PresetShape` (under inference options ``opts``)."""
    amp = fm.autocast_dtype(opts or InferenceOptions())
    crop = fm.augs.get("crop")
    return PresetShape(
        flow_arch=type(fm.model.flow_generator).__name__,
        feature_arch=str(fm.model.arch),
        rgb_stride=int(fm.model.rgb_stride),
        n_rgb=int(fm.n_rgb),
        size=(int(fm.size[0]), int(fm.size[1])),
        crop=None if crop in (None, "none", "full") else str(crop),
        dtype=str(amp).replace("torch.", "") if amp is not None else "float32",
    )
