"""What a stage would start from, in one line, without importing torch (``deg status``).

The files' names come from :mod:`deg_core.models.start_weights`; this adds the project's
own pretrain runs.
"""

from __future__ import annotations

from pathlib import Path

from deg_core.errors import DegError
from deg_core.models.start_weights import (
    _DEG_NAMES,
    find_start_checkpoint,
    imagenet_cached,
    imagenet_paths,
)
from deg_core.project.runs import BEST, RunInfo, load_run, resolve_run

SELFSUP = "selfsup"


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
