"""ImageNet
Training never downloads (``deg weights download imagenet`` does, see ``download``).
``imagenet_state_dict(arch)`` looks for the file torchvision would have downloaded, in the
local torch hub cache: ``torch.hub.get_dir()/checkpoints/<file>`` (that is
``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``):

* resnet18: ``resnet18-f37072fd.pth`` (IMAGENET1K_V1)
* resnet50: ``resnet50-0676ba61.pth`` (IMAGENET1K_V1, DEG's choice), else
  ``resnet50-11ad3fa6.pth`` (IMAGENET1K_V2)
* resnet3d_34: none exist (DEG's slow preset started from Kinetics weights instead).

``init_from_imagenet`` loads them into both streams. The flow stream's conv1 takes 2(N-1)
channels; like DEG (after Wang et al. 2015, "cross-modality pre-training") its kernel is the
ImageNet kernel averaged over R, G, B and repeated 2(N-1) times, *without* rescaling (DEG does
not scale it either; BatchNorm right after conv1 absorbs the larger response).
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from deg_core.models import start_weights
from deg_core.models.feature.two_stream import FEATURE_ARCHS, HiddenTwoStream
from deg_core.models.weights.checkpoint import WeightsError, load_checkpoint

log = logging.getLogger("deg_core.models.weights")


def _imagenet_urls(arch: str) -> list[str]:
    """Download URLs torchvision uses for ``arch``'s ImageNet weights, in order of preference."""
    from torchvision.models import ResNet18_Weights, ResNet50_Weights

    if arch not in FEATURE_ARCHS:
        raise ValueError(f"unknown feature extractor arch {arch!r}; expected {FEATURE_ARCHS}")
    table = {
        "resnet18": [ResNet18_Weights.IMAGENET1K_V1],
        "resnet50": [ResNet50_Weights.IMAGENET1K_V1, ResNet50_Weights.IMAGENET1K_V2],
    }
    return [w.url for w in table.get(arch, [])]


def imagenet_paths(arch: str) -> list[Path]:
    """Where the ImageNet weights of ``arch`` would be in the local torch hub cache (may not exist).

    Empty for resnet3d_34, which has no ImageNet weights. Read at call time, so TORCH_HOME and
    ``torch.hub.set_dir`` apply (:func:`deg_core.models.start_weights.imagenet_paths`).
    """
    if arch not in FEATURE_ARCHS:
        raise ValueError(f"unknown feature extractor arch {arch!r}; expected {FEATURE_ARCHS}")
    return start_weights.imagenet_paths(arch)


def imagenet_state_dict(arch: str) -> dict | None:
    """Torchvision's ImageNet state dict for ``arch`` if it is already cached locally, else None.

    Never downloads. A cached file that cannot be read safely raises WeightsError.
    """
    for path in imagenet_paths(arch):
        if path.is_file():
            return load_checkpoint(path)
    return None


def _load_backbone(backbone: nn.Module, state: dict, arch: str, path: Path | None) -> None:
    try:
        result = backbone.load_state_dict(state, strict=False)
    except RuntimeError:
        raise WeightsError(
            f"tensor shapes do not match torchvision's {arch}; is this the {arch} ImageNet file?",
            path,
        ) from None
    missing = [k for k in result.missing_keys if not k.startswith("compression_fc.")]
    if missing or result.unexpected_keys:
        raise WeightsError(
            f"not torchvision {arch} ImageNet weights: {len(missing)} missing, "
            f"{len(result.unexpected_keys)} unexpected tensors (e.g. "
            f"{(missing or result.unexpected_keys)[0]})",
            path,
        )


def init_from_imagenet(model: HiddenTwoStream, arch: str, required: bool) -> bool:
    """Load cached ImageNet weights into both streams; True if loaded.

    Spatial stream: as is. Flow stream: same, except conv1 = RGB-mean kernel repeated to its
    2(N-1) input channels. The heads (and ResNet-50's compression layer) keep their init.
    If the file is absent: ``required`` -> WeightsError naming the missing file and how to supply
    it; otherwise one warning is logged and the model is left as it was (random init).
    """
    paths = imagenet_paths(arch)
    if model.arch is not None and model.arch != arch:
        raise ValueError(f"model was built as {model.arch!r}, not {arch!r}")
    state = imagenet_state_dict(arch)
    if state is None:
        if not paths:
            message = (
                f"no ImageNet weights exist for {arch} (a 3-D network); start from DEG's "
                "pretrained weights (load_deg_pretrained) or train from scratch"
            )
            where: Path | None = None
        else:
            url = _imagenet_urls(arch)[0]
            message = (
                f"ImageNet weights for {arch} are not in the local torch hub cache: run `deg "
                f"weights download imagenet`, or download {url} elsewhere and copy it to this "
                "path (or point TORCH_HOME at a folder whose hub/checkpoints holds it)"
            )
            where = paths[0]
        if required:
            raise WeightsError(message, where)
        log.warning("%s; continuing from random initialisation", WeightsError(message, where))
        return False
    source = next(p for p in paths if p.is_file())
    backbone = {k: v for k, v in state.items() if not k.startswith("fc.")}
    if "conv1.weight" not in backbone:
        raise WeightsError(f"not torchvision {arch} ImageNet weights (no conv1.weight)", source)
    _load_backbone(model.spatial, backbone, arch, source)
    flow_conv1 = model.flow.get_submodule("conv1")
    rgb_kernel = backbone["conv1.weight"]  # (64, 3, 7, 7)
    flow_state = dict(backbone)
    flow_state["conv1.weight"] = rgb_kernel.mean(dim=1, keepdim=True).repeat(
        1, getattr(flow_conv1, "in_channels", 1), 1, 1
    )
    _load_backbone(model.flow, flow_state, arch, source)
    return True
