"""Loading and saving model weights: safe checkpoints, local ImageNet weights, DEG's releases.

Checkpoints
    ``load_checkpoint`` reads with ``torch.load(weights_only=True)``: tensors and plain containers
    only, never pickled code. ``save_checkpoint`` writes atomically and refuses anything that
    ``load_checkpoint`` could not read back.

ImageNet
    deg never downloads. ``imagenet_state_dict(arch)`` looks for the file torchvision would have
    downloaded, in the local torch hub cache: ``torch.hub.get_dir()/checkpoints/<file>`` (that is
    ``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``):

    * resnet18: ``resnet18-f37072fd.pth`` (IMAGENET1K_V1)
    * resnet50: ``resnet50-0676ba61.pth`` (IMAGENET1K_V1, DEG's choice), else
      ``resnet50-11ad3fa6.pth`` (IMAGENET1K_V2)
    * resnet3d_34: none exist (DEG's slow preset started from Kinetics weights instead).

    ``init_from_imagenet`` loads them into both streams. The flow stream's conv1 takes 2(N-1)
    channels; like DEG (after Wang et al. 2015, "cross-modality pre-training") its kernel is the
    ImageNet kernel averaged over R, G, B and repeated 2(N-1) times, *without* rescaling (DEG does
    not scale it either; BatchNorm right after conv1 absorbs the larger response).

DEG checkpoint mapping (``load_deg_pretrained``)
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
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from deg_core.errors import DegError
from deg_core.fileio import atomic_open
from deg_core.models.feature.two_stream import FEATURE_ARCHS, HiddenTwoStream

log = logging.getLogger(__name__)

REFUSED_PICKLE = (
    "refused: the checkpoint contains pickled Python objects, not only tensors "
    "(deg loads weights with weights_only=True)"
)
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
# phrases of torch's weights-only unpickler when the file references classes or functions (as
# opposed to bytes that are not a pickle at all)
_PICKLED_OBJECT_MARKERS = ("GLOBAL ", "add_safe_globals", "unrecognized function")

__all__ = [
    "REFUSED_PICKLE",
    "WeightsError",
    "imagenet_paths",
    "imagenet_state_dict",
    "init_from_imagenet",
    "load_checkpoint",
    "load_deg_pretrained",
    "save_checkpoint",
]


class WeightsError(DegError):
    """A weights file is missing, unreadable, unsafe, or does not fit the model."""


# ---------------------------------------------------------------------------- checkpoints


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with ``torch.load(map_location="cpu", weights_only=True)``.

    Missing, unreadable or corrupt files, files holding pickled objects other than tensors and
    plain containers, and files whose top level is not a dict raise a one-line WeightsError.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError("checkpoint file not found", path)
    if not path.is_file():
        raise WeightsError("is not a file (expected a checkpoint file)", path)
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of files that are not torch.save'd archives
            warnings.filterwarnings("ignore", message=".*pickle protocol.*", category=UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if any(marker in text for marker in _PICKLED_OBJECT_MARKERS):
            raise WeightsError(REFUSED_PICKLE, path) from None
        raise WeightsError("not a readable PyTorch checkpoint (corrupt file?)", path) from None
    except OSError as e:
        raise WeightsError(f"cannot read checkpoint: {e.strerror or e}", path) from None
    except Exception as e:  # torch raises RuntimeError/EOFError/KeyError/... on corrupt files
        kind = type(e).__name__
        raise WeightsError(
            f"not a readable PyTorch checkpoint (corrupt or truncated file?; {kind})", path
        ) from None
    if not isinstance(state, dict):
        raise WeightsError(f"expected a dict in the checkpoint, found {type(state).__name__}", path)
    return state


_PLAIN = (str, bytes, int, float, bool, complex, type(None), torch.Size, torch.dtype, torch.device)


def _check_plain(obj: Any, where: str) -> None:
    if isinstance(obj, (torch.Tensor, *_PLAIN)):
        return
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if not isinstance(k, str | int):
                raise TypeError(f"checkpoint key {where}[{k!r}] must be a str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(
        f"checkpoint value {where} is a {type(obj).__module__}.{type(obj).__qualname__}; only "
        "tensors, numbers, strings and dicts/lists of them are saved (torch.from_numpy / "
        ".tolist() convert NumPy values)"
    )


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Atomically ``torch.save`` a dict of tensors and plain values (temp file + rename).

    Anything ``load_checkpoint`` would refuse (NumPy arrays, custom classes, modules) raises
    TypeError before anything is written; the parent folder is created if needed.
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    _check_plain(state, "state")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        torch.save(state, f)


# ---------------------------------------------------------------------------- ImageNet


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
    ``torch.hub.set_dir`` apply.
    """
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return [folder / url.rsplit("/", 1)[-1] for url in _imagenet_urls(arch)]


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
                f"ImageNet weights for {arch} are not in the local torch hub cache and deg never "
                f"downloads them; download {url} on a machine with internet and copy it to this "
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


# ---------------------------------------------------------------------------- DEG checkpoints


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
