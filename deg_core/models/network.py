"""The two-stream network of a config, built one way.

:func:`feature_network` is the one constructor of the feature extractor from a config: the
feature trainer, :meth:`deg_core.infer.feature_predictor.FeaturePredictor.load`, the FLOP
counts and the benchmarks (through :func:`deg_core.infer.preset.preset_predictor`) all call
it, so they build the same network for the same settings.
"""

from __future__ import annotations

import torch

from deg_core.config import DegConfig
from deg_core.models.feature import HiddenTwoStream
from deg_core.models.flow import build_flow_generator

__all__ = ["feature_network"]


def feature_network(
    cfg: DegConfig,
    num_classes: int,
    *,
    n_rgb: int | None = None,
    flow_arch: str | None = None,
    arch: str | None = None,
    flow_generator: torch.nn.Module | None = None,
) -> HiddenTwoStream:
    """The two-stream network of ``cfg``: its flow generator (``flow_arch``, else
    ``cfg.flow_generator.arch``; or a given, trained ``flow_generator``) under
    ``cfg.feature_extractor``'s streams (``arch`` overrides its arch: a run's recorded one),
    over ``n_rgb`` frames per stack (else ``cfg.flow_generator.n_rgb``)."""
    n = int(n_rgb or cfg.flow_generator.n_rgb)
    flow = flow_generator
    if flow is None:
        flow = build_flow_generator(flow_arch or cfg.flow_generator.arch, num_frames=n)
    return HiddenTwoStream.from_config(cfg.feature_extractor, flow, num_classes, n, arch=arch)
