"""Model weights: safe checkpoint I/O (``checkpoint``), local ImageNet weights
(``imagenet``), DeepEthogram's released checkpoints (``deg_import``) and fetching both
(``download``, for ``deg weights download``; training never downloads)."""

from deg_core.models.weights.checkpoint import (
    REFUSED_PICKLE,
    WeightsError,
    load_checkpoint,
    save_checkpoint,
)
from deg_core.models.weights.deg_import import load_deg_pretrained
from deg_core.models.weights.imagenet import (
    imagenet_paths,
    imagenet_state_dict,
    init_from_imagenet,
)

__all__ = [
    "REFUSED_PICKLE",
    "WeightsError",
    "imagenet_paths",
    "imagenet_state_dict",
    "init_from_imagenet",
    "load_checkpoint",
    "load_deg_pretrained",
    "save_checkpoint",
]
