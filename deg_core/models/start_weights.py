"""Where a stage's starting weights would come from, without importing torch.

``deg status`` and the notebooks say what training would start from (:func:`start_weights_lines`)
and training logs the same line; this module finds the files (DeepEthogram's release, torch's
ImageNet cache, the project's pretrain runs) by name only, so a status answers in about a
second. Loading them is :mod:`deg_core.train.pretrained`'s job.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from deg_core.errors import DegError
from deg_core.project.runs import BEST, RunInfo, load_run, resolve_run

SELFSUP = "selfsup"

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


def find_pretrain_run(runs_dir: Path, arch: str, flow_run: str | None = None) -> RunInfo | None:
    """The newest pretrain run of ``arch`` with a best checkpoint in ``runs_dir`` (a project's
    ``models/``), trained on the flow run named ``flow_run`` when given; None if none."""
    if not runs_dir.is_dir():
        return None
    for path in sorted(runs_dir.iterdir(), reverse=True):  # names start with their time
        if not (path.is_dir() and "_pretrain_" in path.name and (path / BEST).is_file()):
            continue
        try:
            info = load_run(path)
        except DegError:  # a damaged run is not a start: the next older one may be
            continue
        same_flow = flow_run is None or info.upstream == flow_run
        if info.stage == "pretrain" and info.arch == arch and same_flow:
            return info
    return None


def _selfsup_run(
    setting: str, arch: str, runs_dir: Path | None, flow_run: str | None
) -> RunInfo | None:
    """The pretrain run ``setting`` (auto or selfsup) starts from; None: none applies.

    auto takes only a run on the same flow run (its flow stream learnt those flows);
    selfsup, asked for by name, falls back to the newest of the arch on any flow run.
    """
    if runs_dir is None or setting not in ("auto", SELFSUP):
        return None
    found = find_pretrain_run(runs_dir, arch, flow_run)
    if found is None and setting == SELFSUP:
        found = find_pretrain_run(runs_dir, arch)
    return found


def start_weights_line(
    stage: str, arch: str, setting: str, pretrained_dir: Path, selfsup: str | None = None
) -> str:
    """One line: what ``stage`` ("flow" or "features") starts from and how to get better.

    ``selfsup``: the pretrain run auto or selfsup would load (:func:`find_pretrain_run`).
    """
    name = {"flow": "flow generator", "features": "feature extractor"}[stage]
    get_deg = "`deg weights download deepethogram PROJECT` gets DeepEthogram's"
    has_deg = arch in _DEG_NAMES
    has_imagenet = stage == "features" and bool(imagenet_paths(arch))
    if setting == "scratch":
        return f"{name} ({arch}) starts from scratch (weights=scratch)"
    if setting == SELFSUP:
        if selfsup is None:
            return f"{name} ({arch}) needs a pretrain run: `deg train pretrain PROJECT`"
        return f"{name} ({arch}) starts from self-supervised pretrain run {selfsup}"
    if setting not in ("auto", "pretrained", "imagenet"):
        return f"{name} ({arch}) starts from {setting}"
    found = find_start_checkpoint(pretrained_dir, arch) if setting != "imagenet" else None
    if found is not None:
        return f"{name} ({arch}) starts from DeepEthogram's pretrained {found}"
    if setting == "auto" and selfsup is not None:
        return f"{name} ({arch}) starts from self-supervised pretrain run {selfsup}"
    if setting == "imagenet" and not imagenet_cached(arch):
        return f"{name} ({arch}) needs ImageNet weights: `deg weights download imagenet`"
    if setting == "imagenet" or (setting == "auto" and has_imagenet and imagenet_cached(arch)):
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


def start_weights_lines(cfg, pretrained_dir: Path) -> dict[str, str]:
    """{"flow": line, "features": line}: what each stage of ``cfg`` would start from
    (features: on the latest flow run; ``pretrained_dir`` is the project's
    ``models/pretrained``, so pretrain runs are its siblings)."""
    flow, feat = cfg.flow_generator, cfg.feature_extractor
    runs_dir = pretrained_dir.parent
    try:
        flow_run: str | None = resolve_run(runs_dir, "flow").name
    except DegError:
        flow_run = None
    pretrain = _selfsup_run(feat.weights, feat.arch, runs_dir, flow_run)
    return {
        "flow": start_weights_line("flow", flow.arch, flow.weights, pretrained_dir),
        "features": start_weights_line(
            "features",
            feat.arch,
            feat.weights,
            pretrained_dir,
            pretrain.name if pretrain is not None else None,
        ),
    }
