"""Stage 3: sequence models over per-frame features (TGMJ, DEG's default; TCN, a modern one).

Every model maps ``x: (B, T, D)`` float features (per frame ``[spatial ‖ flow]``, D = 1024 for
the ResNet presets) to ``(B, T, K)`` logits, for any ``T >= 1``: training uses windows of 180
frames, inference whole videos or long chunks. Models are time-translation equivariant away from
the edges, where every temporal convolution zero-pads. Each has the attributes ``arch``,
``num_features``, ``num_classes`` and ``receptive_field`` (frames of context each side an output
frame depends on; chunks overlapping by it give exactly the whole-sequence output in their
interior), plus ``init_bias(pos, neg)`` and ``from_config(cfg, num_features, num_classes)``.
"""

from __future__ import annotations

from typing import Any

from .tcn import TCN
from .tgmj import TGMJ, SequenceModel, TGMLayer, bias_from_counts

SEQUENCE_ARCHS = ("tgmj", "tcn")

_CLASSES: dict[str, type[SequenceModel]] = {"tgmj": TGMJ, "tcn": TCN}


def _model_class(arch: str) -> type[SequenceModel]:
    if arch not in _CLASSES:
        raise ValueError(f"unknown sequence arch {arch!r}; choose one of {SEQUENCE_ARCHS}")
    return _CLASSES[arch]


def build_sequence_model(
    arch: str, num_features: int, num_classes: int, **kwargs: Any
) -> SequenceModel:
    """A freshly initialised sequence model ``arch`` (one of SEQUENCE_ARCHS).

    ``kwargs`` go to the arch's constructor (e.g. TGMJ ``filter_length``, TCN ``hidden_size``).
    """
    return _model_class(arch)(num_features, num_classes, **kwargs)


def sequence_model_from_config(
    cfg: Any, num_features: int, num_classes: int, arch: str | None = None
) -> SequenceModel:
    """``from_config`` of ``arch`` (default ``cfg.arch``, else "tcn") for a config section."""
    name = arch or getattr(cfg, "arch", None) or "tcn"
    return _model_class(name).from_config(cfg, num_features, num_classes)


__all__ = [
    "SEQUENCE_ARCHS",
    "TCN",
    "TGMJ",
    "SequenceModel",
    "TGMLayer",
    "bias_from_counts",
    "build_sequence_model",
    "sequence_model_from_config",
]
