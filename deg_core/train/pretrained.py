"""Choosing a stage's starting weights: scratch, ImageNet, DeepEthogram's release, or a file.

``weights`` settings (flow_generator.weights / feature_extractor.weights):

- ``scratch``: random initialisation.
- ``pretrained``: DeepEthogram's published checkpoints, in the project's
  ``models/pretrained/`` or else deg's user cache (``~/.cache/deg/pretrained``), e.g.
  ``200221_115158_TinyMotionNet/checkpoint.pt`` or a ``..._hidden_two_stream_kinetics_degf``
  folder; ``deg weights download deepethogram [PROJECT]`` puts them there.
- ``imagenet`` (feature extractor only): torchvision's ImageNet weights in the local torch
  cache (``deg weights download imagenet`` puts them there); training never downloads.
- ``selfsup`` (feature extractor only): the project's latest pretrain run of the arch
  (``deg train pretrain``: self-supervised on every frame of every video), preferring one
  trained on the feature stage's flow run. Its two streams load; the behaviour heads stay
  freshly initialised and the flow generator is the flow run's own.
- ``auto``: pretrained if present, else (features) the latest pretrain run of the arch on
  the same flow run, else ImageNet if cached, else scratch — and the run's config.yaml
  records which one was used (a pretrain run by name). Training logs one line saying
  which, and which command gets better ones (:func:`start_weights_line`).
- a path: a deg ``.pt`` (``{"model": state_dict}``) or a DEG checkpoint.

Every file is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from deg_core.errors import DegError, ProjectError
from deg_core.models.weights import (
    imagenet_paths,
    init_from_imagenet,
    load_checkpoint,
    load_deg_pretrained,
)
from deg_core.models.weights.download import user_pretrained_dir
from deg_core.project.runs import BEST, RunInfo, load_run, resolve_run

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


SELFSUP = "selfsup"
# what a pretrain run's weights leave alone: the behaviour heads (trained without labels,
# so untrained there) and the flow generator (the feature stage's flow run decides it)
_NOT_FROM_PRETRAIN = ("spatial_head.", "flow_head.", "fusion_head.", "flow_generator.")


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


def _load_pretrain_run(model: nn.Module, run: RunInfo, flow_run: str | None) -> str:
    state = run.checkpoint()["model"]
    keep = {k: v for k, v in state.items() if not k.startswith(_NOT_FROM_PRETRAIN)}
    try:
        missing, unexpected = model.load_state_dict(keep, strict=False)
    except RuntimeError as e:  # a tensor of another shape (another n_rgb)
        raise DegError(
            f"does not fit this feature extractor: {str(e).splitlines()[-1].strip()}", run.path
        ) from None
    missing = [k for k in missing if not k.startswith(_NOT_FROM_PRETRAIN)]
    if missing or unexpected:
        raise DegError(
            f"does not fit this feature extractor (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})",
            run.path,
        )
    if flow_run is not None and run.upstream != flow_run:
        log.warning(
            "pretrain run %s learnt the flows of flow run %s, not %s: its flow stream may fit less",
            run.name,
            run.upstream,
            flow_run,
        )
    return f"pretrain run {run.name}"


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


def init_feature_extractor(
    model: nn.Module,
    arch: str,
    setting: str,
    pretrained_dir: Path,
    *,
    runs_dir: Path | None = None,
    flow_run: str | None = None,
) -> str:
    """Initialise both streams in place (the flow generator is loaded separately).

    ``runs_dir``: the project's ``models/``, where auto and selfsup look for pretrain runs
    (None: they do not; selfsup is then refused); ``flow_run``: the name of the flow run
    the feature extractor uses (auto takes a pretrain run on that one only).
    """
    pretrain = _selfsup_run(setting, arch, runs_dir, flow_run)
    name = pretrain.name if pretrain is not None else None
    log.info("%s", start_weights_line("features", arch, setting, pretrained_dir, name))
    if setting == "scratch":
        return "scratch"
    if setting == SELFSUP:
        if pretrain is None:
            raise ProjectError(
                f"no pretrain run of {arch} in this project (feature_extractor.weights=selfsup): "
                "`deg train pretrain PROJECT` trains one",
                runs_dir,
            )
        return _load_pretrain_run(model, pretrain, flow_run)
    if setting in ("auto", "pretrained"):
        found = find_start_checkpoint(pretrained_dir, arch)
        if found is not None:
            return _load_file(model, found, "feature_extractor")
        if pretrain is not None:  # auto only: "pretrained" found no pretrain run above
            return _load_pretrain_run(model, pretrain, flow_run)
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
