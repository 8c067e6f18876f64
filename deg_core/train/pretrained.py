"""Choosing a stage's starting weights: scratch, ImageNet, DeepEthogram's release, or a file.

``weights`` settings (flow_generator.weights / feature_extractor.weights):

- ``scratch``: random initialisation.
- ``pretrained``: DeepEthogram's published checkpoints, dropped into
  ``models/pretrained/`` (e.g. ``200221_115158_TinyMotionNet/checkpoint.pt`` or a
  ``..._hidden_two_stream_kinetics_degf`` folder); an error names what is missing.
- ``imagenet`` (feature extractor only): torchvision's ImageNet weights, only if already
  in the local torch cache (deg never downloads); an error names the missing file.
- ``auto``: pretrained if present, else ImageNet if cached (features), else scratch —
  and the run's config.yaml records which one was used.
- a path: a deg ``.pt`` (``{"model": state_dict}``) or a DEG checkpoint.

Every file is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from deg_core.errors import DegError
from deg_core.models.weights import init_from_imagenet, load_checkpoint, load_deg_pretrained

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


def init_flow_generator(model: nn.Module, setting: str, pretrained_dir: Path) -> str:
    """Initialise a flow generator in place; returns what was used (for the run record)."""
    arch = getattr(model, "arch", type(model).__name__)
    if setting == "scratch":
        return "scratch"
    if setting in ("auto", "pretrained"):
        found = find_pretrained(pretrained_dir, arch)
        if found is None:
            if setting == "pretrained":
                raise DegError(
                    f"no DeepEthogram {arch} checkpoint found: put the release's {arch} "
                    "folder (with its checkpoint.pt) here",
                    pretrained_dir,
                )
            return "scratch"
        return _load_file(model, found, "flow_generator")
    return _load_file(model, Path(setting).expanduser(), "flow_generator")


def init_feature_extractor(model: nn.Module, arch: str, setting: str, pretrained_dir: Path) -> str:
    """Initialise both streams in place (the flow generator is loaded separately)."""
    if setting == "scratch":
        return "scratch"
    if setting in ("auto", "pretrained"):
        found = find_pretrained(pretrained_dir, arch)
        if found is not None:
            return _load_file(model, found, "feature_extractor")
        if setting == "pretrained":
            raise DegError(
                f"no DeepEthogram {arch} feature-extractor checkpoint found: put the "
                "release's hidden_two_stream folder (with its checkpoint.pt) here",
                pretrained_dir,
            )
        return "imagenet" if init_from_imagenet(model, arch, required=False) else "scratch"  # type: ignore[arg-type]
    if setting == "imagenet":
        init_from_imagenet(model, arch, required=True)  # type: ignore[arg-type]
        return "imagenet"
    return _load_file(model, Path(setting).expanduser(), "feature_extractor")
