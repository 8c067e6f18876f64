"""``--preset``: named bundles of settings, applied over a project's config.

fast/medium/slow are DeepEthogram's paper presets (Table 2); cpu is the fast preset's networks
sized for a 2-core machine (benchmarks/RESULTS.md, "Real-video benchmark": <= 20 minutes per
fold). lite is deg's own CPU preset (issue 15): the pairwise flow generator (each frame pair's
flow computed once), flows at the resolution the flow stream uses, the spatial stream at half
resolution, and cpu's training budget; benchmarks/RESULTS.md, "The lite preset".
"""

from __future__ import annotations

import copy
from typing import Any

from deg_core.errors import ConfigError

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "fast": {
        "flow_generator": {"arch": "TinyMotionNet"},
        "feature_extractor": {"arch": "resnet18"},
    },
    "medium": {"flow_generator": {"arch": "MotionNet"}, "feature_extractor": {"arch": "resnet50"}},
    "slow": {
        "flow_generator": {"arch": "TinyMotionNet3D"},
        "feature_extractor": {"arch": "resnet3d_34"},
    },
    "cpu": {
        "augs": {"resize": [64, 64], "crop": "animal"},
        "flow_generator": {
            "arch": "TinyMotionNet",
            "num_epochs": 1,
            "steps_per_epoch": 30,
            "val_steps": 4,
            "batch_size": 8,
        },
        "feature_extractor": {
            "arch": "resnet18",
            "num_epochs": 8,
            "steps_per_epoch": 40,
            "val_steps": 10,
            "batch_size": 16,
            "lr": 1e-3,
            # more boxes, lighting and animals than one video shows; the budget is fixed, so
            # the in-sample val loss picks no epoch early (benchmarks/RESULTS.md, "Training
            # on the val video too": rat folds 0.39 -> 0.52 and 0.55 -> 0.53)
            "fit_on": "train+val",
        },
        # deg train pretrain (the defaults, pinned): 120 steps of 16 clips seen twice, about 3
        # minutes on 2 cores at lite's 128x128 (its features training: 19-27 clips/s)
        "pretrain": {"num_epochs": 4, "steps_per_epoch": 30, "val_steps": 4, "batch_size": 16},
        "sequence": {
            "sequence_length": 90,
            "num_epochs": 20,
            "steps_per_epoch": 20,
            "batch_size": 8,
            "lr": 1e-3,
            "track_features": True,
        },
    },
}
_CPU_BUDGET = PRESETS["cpu"]
PRESETS["lite"] = {
    "augs": {"resize": [128, 128], "crop": "animal"},
    "flow_generator": {**_CPU_BUDGET["flow_generator"], "arch": "PairFlowNet"},
    "feature_extractor": {**_CPU_BUDGET["feature_extractor"], "rgb_stride": 2},
    "pretrain": dict(_CPU_BUDGET["pretrain"]),
    "sequence": dict(_CPU_BUDGET["sequence"]),
}


AUTO = "auto"  # the notebooks' and `deg demo`'s default: CPU_DEFAULT on a CPU, else None
CPU_DEFAULT = "lite"  # measured: benchmarks/RESULTS.md, "The lite preset"


def auto_preset(device: str, cuda_available: bool) -> str | None:
    """What ``--preset auto`` means for ``compute.device`` ``device``: the lite preset when
    training runs on a CPU, None (the project's own settings: DeepEthogram's networks) on a
    GPU, where the classic presets are fast and DEG's pretrained weights apply."""
    on_cpu = device == "cpu" or (device == "auto" and not cuda_available)
    return CPU_DEFAULT if on_cpu else None


def preset_overrides(preset: str) -> dict:
    """Nested overrides for a preset name (fast, medium, slow, cpu, lite; DEG's deg_f/m/s)."""
    name = {"deg_f": "fast", "deg_m": "medium", "deg_s": "slow"}.get(preset, preset)
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: choose {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])
