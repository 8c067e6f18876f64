"""Where a stage's starting weights would come from, without importing torch.

``deg status`` and the notebooks say what training would start from
(:func:`deg_core.project.start_weights.start_weights_lines`) and training logs the same line;
this module finds the files (DeepEthogram's release, torch's ImageNet cache) by name only,
so a status answers in about a second. Loading them is :mod:`deg_core.train.pretrained`'s job.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# substrings of DEG's release folder names, per architecture
_DEG_NAMES = {
    "TinyMotionNet": ("tinymotionnet",),
    "MotionNet": ("motionnet",),
    "TinyMotionNet3D": ("tinymotionnet3d",),
    "resnet18": ("degf", "deg_f", "resnet18"),
    "resnet50": ("degm", "deg_m", "resnet50"),
    "resnet3d_34": ("degs", "deg_s", "resnet3d"),
}

# the files torchvision downloads for each arch's ImageNet weights, in order of preference
# (IMAGENET1K_V1, and V2 for resnet50; a test checks them against torchvision's URLs)
IMAGENET_FILES: dict[str, tuple[str, ...]] = {
    "resnet18": ("resnet18-f37072fd.pth",),
    "resnet50": ("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"),
    "resnet3d_34": (),
}


def cache_dir() -> Path:
    """deg's user cache: ``$DEG_CACHE_DIR``, else ``$XDG_CACHE_HOME/deg``, else ``~/.cache/deg``."""
    if os.environ.get("DEG_CACHE_DIR"):
        return Path(os.environ["DEG_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "deg"


def user_pretrained_dir() -> Path:
    """Where ``deg weights download deepethogram`` without a project puts the checkpoints."""
    return cache_dir() / "pretrained"


def hub_dir() -> Path:
    """torch's hub folder: ``torch.hub.get_dir()`` once torch is imported (so
    ``torch.hub.set_dir`` applies), else what it would return: ``$TORCH_HOME/hub``, else
    ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``."""
    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir())
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "torch" / "hub"


def imagenet_paths(arch: str) -> list[Path]:
    """Where ``arch``'s ImageNet weights would be in the torch hub cache (may not exist);
    empty for an arch without any (resnet3d_34) or unknown here."""
    folder = hub_dir() / "checkpoints"
    return [folder / name for name in IMAGENET_FILES.get(arch, ())]


def imagenet_cached(arch: str) -> bool:
    return any(p.is_file() for p in imagenet_paths(arch))


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


def find_start_checkpoint(pretrained_dir: Path, arch: str) -> Path | None:
    """DEG's checkpoint for ``arch``: in the project's ``pretrained_dir``, else the user cache."""
    for folder in (pretrained_dir, user_pretrained_dir()):
        found = find_pretrained(folder, arch)
        if found is not None:
            return found
    return None
