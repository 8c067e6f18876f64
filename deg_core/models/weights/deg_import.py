"""DEG checkpoint mapping (``load_deg_pretrained``)
DEG saved ``{"epoch", "state_dict", "optimizer": None, "hyperparameters"}`` (its
``utils.checkpoint``; ``checkpoint.pt`` in the released ``pretrained_models``) or, through
PyTorch Lightning, ``{"state_dict": {"model.<key>": ...}, ...}``. Wrappers accepted: a
``state_dict`` or ``model`` entry, or a bare state dict; key prefixes ``module.``
(DataParallel), ``model.`` (Lightning / DEG's "model" wrapper) and ``_orig_mod.``
(torch.compile) are stripped; ``criterion.*`` keys (loss buffers) are skipped, as DEG did.

DEG's HiddenTwoStream holds ``spatial_classifier`` and ``flow_classifier``, each
``nn.Sequential(resnet_without_fc, nn.Linear(512, K))``, ``flow_generator`` and ``fusion``
(``fusion.fc`` only for concatenate fusion). Its ResNets use torchvision's layer names plus
``compression_fc`` (ResNet-50's 2048→512), as do ours, so the mapping is prefix renaming:

==============================  =========================
DEG key                         deg key
==============================  =========================
``spatial_classifier.0.<k>``    ``spatial.<k>``
``spatial_classifier.1.<w|b>``  ``spatial_head.<w|b>``
``flow_classifier.0.<k>``       ``flow.<k>``
``flow_classifier.1.<w|b>``     ``flow_head.<w|b>``
``fusion.fc.<w|b>``             ``fusion_head.<w|b>``
``flow_generator.<k>``          ``flow_generator.<k>`` (part "flow_generator" only)
==============================  =========================

Keys already in deg's naming load unchanged. For part "flow_generator" the keys are the flow
generator's own (a whole-model checkpoint's ``flow_generator.`` prefix is removed); if the
target flow generator defines ``map_deg_key(key: str) -> str | None`` it renames DEG's
parameter names to its own (None drops a key, reported as unexpected); deg's TinyMotionNet,
MotionNet and TinyMotionNet3D do, one-to-one (tables in their module docs). DEG's
``fusion.flow_weight`` (its learned "weighted_average" fusion) and ``final_bn`` layers have
no counterpart and are reported as unexpected.

Heads whose shape differs (DEG's Kinetics-700 release has 700 classes) are skipped and left as
they are; any other shape mismatch raises, as does a checkpoint of which nothing maps.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from deg_core.models.feature.two_stream import HiddenTwoStream
from deg_core.models.weights.checkpoint import WeightsError, load_checkpoint

log = logging.getLogger("deg_core.models.weights")

_HEAD_PREFIXES = ("spatial_head.", "flow_head.", "fusion_head.")
_FEATURE_PREFIXES = ("spatial.", "flow.", *_HEAD_PREFIXES)
_DEG_RENAMES = (
    ("spatial_classifier.0.", "spatial."),
    ("spatial_classifier.1.", "spatial_head."),
    ("flow_classifier.0.", "flow."),
    ("flow_classifier.1.", "flow_head."),
    ("fusion.fc.", "fusion_head."),
)
_WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")


def _unwrap_state_dict(state: dict, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, wrapper entries and key prefixes removed (module doc)."""
    inner: Any = state
    for key in ("state_dict", "model", "model_state_dict"):
        entry = state.get(key)
        if isinstance(entry, Mapping) and any(isinstance(v, torch.Tensor) for v in entry.values()):
            inner = entry
            break
    out: dict[str, torch.Tensor] = {}
    for key, value in inner.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            continue
        name = key
        stripped = True
        while stripped:
            stripped = False
            for prefix in _WRAPPER_PREFIXES:
                if name.startswith(prefix):
                    name = name[len(prefix) :]
                    stripped = True
        out[name] = value
    if not out:
        raise WeightsError("no tensors found in the checkpoint (expected a state_dict)", path)
    return out


def _map_feature_key(key: str) -> str:
    for theirs, ours in _DEG_RENAMES:
        if key.startswith(theirs):
            return ours + key[len(theirs) :]
    return key


def load_deg_pretrained(
    model: HiddenTwoStream | nn.Module,
    path: str | Path,
    part: Literal["flow_generator", "feature_extractor"],
) -> dict:
    """Load a DEG (or deg) checkpoint's ``part`` into ``model``; see the module doc for the mapping.

    part "feature_extractor": spatial/flow backbones, heads and fusion head of a HiddenTwoStream.
    part "flow_generator": ``model.flow_generator`` if present, else ``model`` itself.

    Returns ``{"loaded": n_tensors, "missing": [our keys left as they were], "unexpected":
    [checkpoint keys with no counterpart], "skipped": [checkpoint keys deliberately ignored: other
    parts, loss buffers, heads of another class count]}``. Raises WeightsError (the model is left
    untouched) on a backbone shape mismatch or when nothing maps.
    """
    if part not in ("flow_generator", "feature_extractor"):
        raise ValueError(f"part must be 'flow_generator' or 'feature_extractor', got {part!r}")
    path = Path(path)
    theirs = _unwrap_state_dict(load_checkpoint(path), path)

    skipped: list[str] = []
    unexpected: list[str] = []
    candidates: dict[str, tuple[str, torch.Tensor]] = {}  # our key -> (their key, tensor)
    if part == "feature_extractor":
        target = model
        ours = target.state_dict()
        for key, value in theirs.items():
            if key.startswith(("flow_generator.", "criterion.")):
                skipped.append(key)
                continue
            mapped = _map_feature_key(key)
            if mapped in ours:
                candidates[mapped] = (key, value)
            else:
                unexpected.append(key)
        wanted = [k for k in ours if k.startswith(_FEATURE_PREFIXES)]
    else:
        sub = getattr(model, "flow_generator", None)
        target = sub if isinstance(sub, nn.Module) else model
        ours = target.state_dict()
        whole_model = any(k.startswith("flow_generator.") for k in theirs)
        renamer = getattr(target, "map_deg_key", None)
        for key, value in theirs.items():
            if whole_model and not key.startswith("flow_generator."):
                skipped.append(key)
                continue
            if key.startswith("criterion."):
                skipped.append(key)
                continue
            name = key[len("flow_generator.") :] if whole_model else key
            mapped = renamer(name) if callable(renamer) else name
            if mapped is not None and mapped in ours:
                candidates[mapped] = (key, value)
            else:
                unexpected.append(key)
        wanted = list(ours)

    to_load: dict[str, torch.Tensor] = {}
    for mine, (key, value) in candidates.items():
        if value.shape == ours[mine].shape:
            to_load[mine] = value
        elif part == "feature_extractor" and mine.startswith(_HEAD_PREFIXES):
            skipped.append(key)  # another class count (e.g. Kinetics-700): keep our head
        else:
            raise WeightsError(
                f"{part} tensor {key} has shape {tuple(value.shape)} but the model's {mine} has "
                f"{tuple(ours[mine].shape)} (different architecture or number of frames?)",
                path,
            )
    if not to_load:
        example = next(iter(theirs))
        raise WeightsError(
            f"nothing in the checkpoint maps onto the {part} (first key: {example}); is it a "
            f"DEG {part} checkpoint for this architecture?",
            path,
        )
    with torch.no_grad():
        for mine, value in to_load.items():
            ours[mine].copy_(value)  # state_dict() tensors share storage with the model's
    return {
        "loaded": len(to_load),
        "missing": [k for k in wanted if k not in to_load],
        "unexpected": unexpected,
        "skipped": skipped,
    }
