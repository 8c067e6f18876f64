"""Choosing a stage's starting weights: scratch, ImageNet, DeepEthogram's release, or a file.

``weights`` settings (flow_generator.weights / feature_extractor.weights):

- ``scratch``: random initialisation.
- ``pretrained``: DeepEthogram's published checkpoints, in the project's
  ``models/pretrained/`` or else deg's user cache (``~/.cache/deg/pretrained``), e.g.
  ``200221_115158_TinyMotionNet/checkpoint.pt`` or a ``..._hidden_two_stream_kinetics_degf``
  folder; ``deg weights download deepethogram [PROJECT]`` puts them there.
- ``imagenet`` (feature extractor only): torchvision's ImageNet weights in the local torch
  cache (``deg weights download imagenet`` puts them there); training never downloads.
- ``auto``: pretrained if present, else ImageNet if cached (features), else scratch —
  and the run's config.yaml records which one was used. Training logs one line saying
  which, and which command gets better ones (:func:`start_weights_line`).
- a path: a deg ``.pt`` (``{"model": state_dict}``) or a DEG checkpoint.

Every file is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from deg_core.errors import DegError
from deg_core.models.weights import (
    imagenet_paths,
    init_from_imagenet,
    load_checkpoint,
    load_deg_pretrained,
)
from deg_core.models.weights.download import user_pretrained_dir

log = logging.getLogger("deg_core.train")

# substrings of DEG's release folder names, per architecture
_DEG_NAMES = {
    "TinyMotionNet": ("tinymotionnet",),
    "MotionNet": ("motionnet",),
    "TinyMotionNet3D": ("tinymotionnet3d",),
    "resnet18": ("degf", "deg_f", "resnet18"),
    "resnet50": ("degm", "deg_m", "resnet50"),
    "resnet3d_34": ("degs", "deg_s", "resnet3d"),
}


def find_pretrained(pretrained_dir: Path, arch: str) -> Path | None:
    """A ``*.pt``/``*.ckpt`` under ``pretrained_dir`` whose path names ``arch``."""
    if not pretrained_dir.is_dir():
        return None
    needles = _DEG_NAMES.get(arch, (arch.lower(),))
    hits = []
    for p in sorted(pretrained_dir.rglob("*")):
        if p.suffix not in (".pt", ".ckpt", ".pth") or not p.is_file():
            continue
        name = str(p.relative_to(pretrained_dir)).lower()
        # TinyMotionNet3D folders also contain "motionnet": match the most specific name
        if arch == "MotionNet" and "tiny" in name:
            continue
        if arch == "TinyMotionNet" and "3d" in name:
            continue
        if any(n in name for n in needles):
            hits.append(p)
    return hits[0] if hits else None


def _load_file(model: nn.Module, path: Path, part: str) -> str:
    ckpt = load_checkpoint(path)
    if isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict):  # a deg checkpoint
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as e:
            raise DegError(f"does not fit this {part}: {str(e).splitlines()[0]}", path) from None
        return f"file {path}"
    report = load_deg_pretrained(model, path, part)  # type: ignore[arg-type]
    return f"DeepEthogram checkpoint {path} ({report['loaded']} tensors)"


def find_start_checkpoint(pretrained_dir: Path, arch: str) -> Path | None:
    """DEG's checkpoint for ``arch``: in the project's ``pretrained_dir``, else the user cache."""
    for folder in (pretrained_dir, user_pretrained_dir()):
        found = find_pretrained(folder, arch)
        if found is not None:
            return found
    return None


def _imagenet_cached(arch: str) -> bool:
    return any(p.is_file() for p in imagenet_paths(arch))


def start_weights_line(stage: str, arch: str, setting: str, pretrained_dir: Path) -> str:
    """One line: what ``stage`` ("flow" or "features") starts from and how to get better."""
    name = {"flow": "flow generator", "features": "feature extractor"}[stage]
    get_deg = "`deg weights download deepethogram PROJECT` gets DeepEthogram's"
    has_deg = arch in _DEG_NAMES
    has_imagenet = stage == "features" and bool(imagenet_paths(arch))
    if setting == "scratch":
        return f"{name} ({arch}) starts from scratch (weights=scratch)"
    if setting not in ("auto", "pretrained", "imagenet"):
        return f"{name} ({arch}) starts from {setting}"
    found = find_start_checkpoint(pretrained_dir, arch) if setting != "imagenet" else None
    if found is not None:
        return f"{name} ({arch}) starts from DeepEthogram's pretrained {found}"
    if setting == "imagenet" and not _imagenet_cached(arch):
        return f"{name} ({arch}) needs ImageNet weights: `deg weights download imagenet`"
    if setting == "imagenet" or (setting == "auto" and has_imagenet and _imagenet_cached(arch)):
        better = f": {get_deg} Kinetics-pretrained {arch}" if has_deg else ""
        return f"{name} ({arch}) starts from ImageNet weights{better}"
    if setting == "pretrained":
        return f"{name} ({arch}) needs DeepEthogram's pretrained weights: {get_deg}"
    if has_deg:
        return f"{name} ({arch}) starts from scratch: {get_deg} pretrained {arch}" + (
            " (`deg weights download imagenet`: ImageNet ones)" if has_imagenet else ""
        )
    if has_imagenet:
        get_imagenet = "`deg weights download imagenet` gets ImageNet weights"
        return f"{name} ({arch}) starts from scratch: {get_imagenet}"
    return f"{name} ({arch}) starts from scratch (no published weights for {arch})"


def init_flow_generator(model: nn.Module, setting: str, pretrained_dir: Path) -> str:
    """Initialise a flow generator in place; returns what was used (for the run record)."""
    arch = getattr(model, "arch", type(model).__name__)
    log.info("%s", start_weights_line("flow", arch, setting, pretrained_dir))
    if setting == "scratch":
        return "scratch"
    if setting in ("auto", "pretrained"):
        found = find_start_checkpoint(pretrained_dir, arch)
        if found is None:
            if setting == "pretrained":
                raise DegError(
                    f"no DeepEthogram {arch} checkpoint found here or in "
                    f"{user_pretrained_dir()}: `deg weights download deepethogram PROJECT` "
                    f"gets them (or put the release's {arch} folder here)",
                    pretrained_dir,
                )
            return "scratch"
        return _load_file(model, found, "flow_generator")
    return _load_file(model, Path(setting).expanduser(), "flow_generator")


def init_feature_extractor(model: nn.Module, arch: str, setting: str, pretrained_dir: Path) -> str:
    """Initialise both streams in place (the flow generator is loaded separately)."""
    log.info("%s", start_weights_line("features", arch, setting, pretrained_dir))
    if setting == "scratch":
        return "scratch"
    if setting in ("auto", "pretrained"):
        found = find_start_checkpoint(pretrained_dir, arch)
        if found is not None:
            return _load_file(model, found, "feature_extractor")
        if setting == "pretrained":
            raise DegError(
                f"no DeepEthogram {arch} feature-extractor checkpoint found here or in "
                f"{user_pretrained_dir()}: `deg weights download deepethogram PROJECT` gets "
                "them (or put the release's hidden_two_stream folder here)",
                pretrained_dir,
            )
        if not _imagenet_cached(arch):  # the line above already said so; no second warning
            return "scratch"
        return "imagenet" if init_from_imagenet(model, arch, required=False) else "scratch"  # type: ignore[arg-type]
    if setting == "imagenet":
        init_from_imagenet(model, arch, required=True)  # type: ignore[arg-type]
        return "imagenet"
    return _load_file(model, Path(setting).expanduser(), "feature_extractor")


def start_weights_lines(cfg, pretrained_dir: Path) -> dict[str, str]:
    """{"flow": line, "features": line}: what each stage of ``cfg`` would start from."""
    flow, feat = cfg.flow_generator, cfg.feature_extractor
    return {
        "flow": start_weights_line("flow", flow.arch, flow.weights, pretrained_dir),
        "features": start_weights_line("features", feat.arch, feat.weights, pretrained_dir),
    }
