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
from deg_core.models.start_weights import (  # noqa: F401  (re-exported: the public names)
    find_pretrained,
    find_start_checkpoint,
    imagenet_cached,
    user_pretrained_dir,
)
from deg_core.models.weights import (
    init_from_imagenet,
    load_checkpoint,
    load_deg_pretrained,
)
from deg_core.project.runs import RunInfo
from deg_core.project.start_weights import (  # noqa: F401  (re-exported: the public names)
    SELFSUP,
    _selfsup_run,
    find_pretrain_run,
    start_weights_line,
    start_weights_lines,
)

log = logging.getLogger("deg_core.train")


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


# what a pretrain run's weights leave alone: the behaviour heads (trained without labels,
# so untrained there) and the flow generator (the feature stage's flow run decides it)
_NOT_FROM_PRETRAIN = ("spatial_head.", "flow_head.", "fusion_head.", "flow_generator.")


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
        if not imagenet_cached(arch):  # the line above already said so; no second warning
            return "scratch"
        return "imagenet" if init_from_imagenet(model, arch, required=False) else "scratch"  # type: ignore[arg-type]
    if setting == "imagenet":
        init_from_imagenet(model, arch, required=True)  # type: ignore[arg-type]
        return "imagenet"
    return _load_file(model, Path(setting).expanduser(), "feature_extractor")
