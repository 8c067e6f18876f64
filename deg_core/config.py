"""Typed configuration: package defaults, merged with a project's overrides.

Config classes only hold fields (with documented defaults, in ``help`` metadata);
YAML is the serialisation. ``project_config.yaml`` holds the project's own values
(name, labeler, class_names) and whatever the user overrode — never a copy of the
defaults — so upgrading deg upgrades every default the project did not pin.

The key names follow DeepEthogram's project_config.yaml where the meaning is the
same (``project.class_names``, ``augs.LR``, ``split.train_val_test`` ...), so a DEG
project opens as a deg project. Keys DEG writes that deg derives instead (absolute
paths, the cached normalisation) are accepted and ignored; any other unknown key is
an error naming it.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from deg_core.errors import ConfigError, DegError
from deg_core.fileio import load_yaml
from deg_core.presets import preset_overrides


def _f(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with a default and a one-line meaning (shown by ``deg config``)."""
    if isinstance(default, list | dict):
        return field(default_factory=partial(copy.copy, default), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class ProjectSection:
    """Who and what the project is about."""

    name: str = _f("", "project name; the folder is <name>_deepethogram")
    labeler: str | None = _f(None, "who labels (recorded for provenance)")
    class_names: list[str] = _f([], "behaviours, background first (background is implicit)")

    # DEG writes these; deg derives them from the folder so a moved project still works.
    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"path", "config_file", "data_path", "model_path", "pretrained_path"}
    )


@dataclass
class SplitSection:
    """How videos are assigned to train/val/test (per video, never per frame)."""

    train_val_test: list[float] = _f([0.8, 0.2, 0.0], "fractions for randomly assigned videos")
    seed: int | None = _f(None, "seed for split assignment (None: random)")
    reload: bool = _f(True, "keep existing assignments (DEG compatibility; deg always does)")
    file: str | None = _f(None, "another split.yaml to copy assignments from")


@dataclass
class AugsSection:
    """Input size and augmentations (identical across a clip's frames)."""

    resize: list[int] = _f([224, 224], "network input height, width (multiples of 32)")
    LR: float = _f(0.5, "probability of a left-right flip")
    UD: float = _f(0.0, "probability of an up-down flip")
    degrees: float = _f(10.0, "maximum rotation in degrees")
    brightness: float = _f(0.25, "colour jitter: brightness")
    contrast: float = _f(0.1, "colour jitter: contrast")
    saturation: float = _f(0.1, "colour jitter: saturation")
    hue: float = _f(0.1, "colour jitter: hue")
    grayscale: float = _f(0.5, "probability of converting a clip to grayscale")
    crop_size: list[int] | None = _f(None, "random crop (height, width) before resize, or None")
    pad: list[int] | None = _f(None, "padding before cropping, or None")
    random_resize: bool = _f(
        False, "random scale (0.85-1.15) and shift (up to 10 %) jitter, one draw per clip"
    )
    crop: Literal["full", "animal"] = _f(
        "full",
        "full: the whole frame is resized; animal: a fixed-size square that follows the "
        "animal (tracked per video without labels, cached in DATA/<key>/<key>_track.npz)",
    )
    crop_scale: float = _f(
        1.5, "animal crop: window side = this x the animal's typical length (90th percentile)"
    )

    # deg computes normalisation from each video's record.yaml stats instead of caching it here.
    deg_ignored: ClassVar[frozenset[str]] = frozenset({"normalization"})


@dataclass
class ComputeSection:
    """Where and how fast to compute."""

    device: str = _f("auto", "auto, cpu, cuda or cuda:N")
    batch_size: int | Literal["auto"] = _f("auto", "batch size, or auto to fit the device")
    num_workers: int | Literal["auto"] = _f("auto", "data-loading worker processes")
    fp16: bool = _f(False, "mixed precision on GPU")
    frame_cache_mb: float = _f(
        1024.0, "per data worker: training videos whose resized frames fit are held in memory"
    )

    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"distributed", "gpu_id", "dali", "min_batch_size", "max_batch_size", "metrics_workers"}
    )


@dataclass
class TrainSection:
    """Optimisation defaults shared by the three trainers."""

    lr: float = _f(1e-4, "Adam learning rate")
    num_epochs: int = _f(20, "maximum epochs")
    patience: int = _f(5, "epochs without validation improvement before the LR drops")
    reduction_factor: float = _f(0.1, "LR multiplier on plateau")
    min_lr: float = _f(5e-7, "stop when the LR falls below this")
    loss_weight_exp: float = _f(0.25, "beta in pos_weight = (neg/pos)^beta (DEG paper: 0.25)")
    # 1.0: on the rat folds +0.01 test macro F1 on average over six comparisons (-0.02 to
    # +0.03: within noise; benchmarks/RESULTS.md); it guards against the few-bouts cliff
    threshold_smoothing: float = _f(
        1.0,
        "thresholds maximise validation F1 averaged over a threshold error of this many "
        "logits (robust to few validation bouts; 0: DEG's plain maximum)",
    )

    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {
            "scheduler",
            "steps_per_epoch",
            "stopping_type",
            "milestones",
            "weight_loss",
            "early_stopping_begins",
            "viz",
        }
    )


@dataclass
class FlowGeneratorSection:
    """Stage 1: the self-supervised optic-flow generator (``deg train flow``)."""

    arch: str = _f("TinyMotionNet", "TinyMotionNet, MotionNet or TinyMotionNet3D")
    n_rgb: int = _f(11, "frames stacked per input (N); the generator outputs N-1 flows")
    weights: str = _f(
        "auto",
        "auto (models/pretrained if present, else scratch), scratch, pretrained, or a .pt path",
    )
    num_epochs: int = _f(10, "epochs")
    steps_per_epoch: int = _f(1000, "training batches per epoch")
    val_steps: int = _f(100, "validation batches per epoch")
    batch_size: int | Literal["auto"] = _f("auto", "clips per batch, or auto")
    lr: float = _f(1e-4, "Adam learning rate")
    photo_alpha: float = _f(0.4, "Charbonnier exponent of the photometric loss")
    smooth_alpha: float = _f(0.3, "Charbonnier exponent of the smoothness loss")
    smooth_weights: list[float] = _f(
        [0.01, 0.02, 0.04], "smoothness weight per scale, fine->coarse"
    )
    ssim_weight: float = _f(1.0, "weight of (1 - SSIM) in the photometric loss")

    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"type", "flow_loss", "flow_max", "input_images", "flow_sparsity"}
        | {"smooth_weight_multiplier", "sparsity_weight", "loss", "max"}
    )


@dataclass
class FeatureExtractorSection:
    """Stage 2: the hidden two-stream feature extractor (``deg train features``)."""

    arch: str = _f("resnet18", "resnet18, resnet50 or resnet3d_34 (both streams)")
    fusion: Literal["average", "concatenate"] = _f("average", "how the two streams combine")
    flow_weight: float = _f(1.5, "flow stream's weight in average fusion (DEG: 1.5)")
    dropout_p: float = _f(0.25, "dropout on the 512-d features before each head")
    weights: str = _f(
        "auto",
        "auto (pretrained if present, else ImageNet from the torch cache, else scratch), "
        "scratch, imagenet, pretrained, or a .pt path",
    )
    num_epochs: int = _f(20, "epochs")
    steps_per_epoch: int = _f(1000, "training batches per epoch")
    val_steps: int = _f(200, "validation batches per epoch")
    batch_size: int | Literal["auto"] = _f("auto", "clips per batch, or auto")
    lr: float = _f(1e-4, "Adam learning rate")
    weight_decay: float = _f(0.0, "Adam weight decay")
    focal_gamma: float = _f(0.0, "focal-loss gamma (0: plain BCE; DEG option: 1)")
    label_smoothing: float = _f(0.0, "label smoothing epsilon (e.g. 0.05)")

    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"sampler", "final_bn", "sampling_ratio", "final_activation", "n_flows", "n_rgb"}
        | {"curriculum", "inputs"}
    )


@dataclass
class SequenceSection:
    """Stage 3: the sequence model over per-frame features (``deg train sequence``)."""

    # tcn by measured validation F1 (benchmarks/RESULTS.md, "Accuracy ablation"): 0.72 vs 0.65
    # over 3 seeds, and ~9x faster to train on a CPU
    arch: str = _f("tcn", "tcn (dilated temporal conv net) or tgmj (DEG's Gaussian mixture)")
    sequence_length: int = _f(180, "frames per training window")
    filter_length: int = _f(15, "TGM kernel length (frames)")
    n_filters: int = _f(8, "TGM kernels per layer")
    num_layers: int | None = _f(None, "TGM layers / TCN blocks (None: tgmj 3, tcn 6)")
    head_hidden: int = _f(128, "tgmj: hidden width of each head (DEG's num_features)")
    hidden_size: int = _f(128, "tcn: channels")
    dropout_p: float = _f(0.5, "dropout before the output layers")
    input_dropout: float = _f(0.5, "dropout on the input features")
    num_epochs: int = _f(30, "epochs")
    steps_per_epoch: int = _f(100, "training batches per epoch")
    batch_size: int | Literal["auto"] = _f("auto", "windows per batch, or auto")
    lr: float = _f(1e-4, "Adam learning rate")
    weight_decay: float = _f(0.0, "Adam weight decay")
    # 0.5 by measurement: the demo's short behaviour went from F1 0 to > 0, the rat folds
    # were unchanged (benchmarks/RESULTS.md)
    min_bout_fraction: float = _f(
        0.5,
        "predicted bouts shorter than this fraction of the shortest labelled bout are removed "
        "(1: DeepEthogram's rule)",
    )
    track_features: bool = _f(
        False,
        "append the animal track (position, speed, extent, motion; z-scored per video) "
        "to the per-frame features",
    )
    focal_gamma: float = _f(0.0, "focal-loss gamma (0: plain BCE)")
    label_smoothing: float = _f(0.0, "label smoothing epsilon")

    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"latent_name", "output_name", "num_features", "nonoverlapping", "tgm_reduction"}
        | {"c_in", "c_out", "soft_attn", "bidirectional", "rnn_style"}
        | {"hidden_dropout", "weights", "nonlinear_classification", "final_bn", "input_type"}
    )


# the section(s) each CLI stage reads
STAGE_SECTIONS = {
    "flow": ("flow_generator", "augs", "compute"),
    "features": ("feature_extractor", "augs", "compute", "train"),
    "sequence": ("sequence", "compute", "train"),
}


@dataclass
class DegConfig:
    """The whole resolved configuration of a project."""

    project: ProjectSection = field(default_factory=ProjectSection)
    split: SplitSection = field(default_factory=SplitSection)
    augs: AugsSection = field(default_factory=AugsSection)
    compute: ComputeSection = field(default_factory=ComputeSection)
    train: TrainSection = field(default_factory=TrainSection)
    flow_generator: FlowGeneratorSection = field(default_factory=FlowGeneratorSection)
    feature_extractor: FeatureExtractorSection = field(default_factory=FeatureExtractorSection)
    sequence: SequenceSection = field(default_factory=SequenceSection)

    # Top-level keys DEG writes that deg does not use.
    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"notes", "log", "reload", "run", "preset", "cmap", "label_view_width"}
        | {"vertical_arrangement"}
    )


# --------------------------------------------------------------------------- validation


_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp)
        return f"list of {_type_name(inner)}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the type hint ``tp``; return it (ints widen to float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
    elif origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, list | tuple):
            return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        # YAML 1.1 reads "1e-4" (no dot) as a string; users mean a number
        if isinstance(value, str) and _FLOAT_RE.match(value.strip()):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - only the types above are used in config classes
        raise TypeError(f"unsupported config type {tp!r} for {key}")
    raise ConfigError(f"'{key}' must be {_type_name(tp)}, got {value!r}")


def build(cls: type, data: Any, prefix: str = "", unknown: list[str] | None = None) -> Any:
    """Instantiate config class ``cls`` from a (partial) nested dict, over its defaults.

    ``unknown``: when a list is given (a DeepEthogram project's config), unknown keys
    are appended to it as dotted names and skipped instead of raising.

    Raises:
        ConfigError: naming the dotted key for an unknown key or a wrong type.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or "the top level"
        raise ConfigError(f"'{where}' must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    ignored: frozenset[str] = getattr(cls, "deg_ignored", frozenset())
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key in ignored:
            continue
        if key not in names and unknown is not None:
            unknown.append(dotted)
            continue
        if key not in names:
            known = ", ".join(sorted(names))
            raise ConfigError(f"unknown key '{dotted}' (known here: {known})")
        tp = hints[key]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            kwargs[key] = build(tp, value, f"{dotted}.", unknown)
        else:
            kwargs[key] = _coerce(value, tp, dotted)
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    """Nested plain dict of a config object (YAML-ready)."""
    return dataclasses.asdict(cfg)


def diff_from_defaults(cfg: DegConfig) -> dict:
    """Only the values that differ from the package defaults (what project_config.yaml stores)."""

    def walk(obj: Any, default: Any) -> dict:
        out = {}
        for f in dataclasses.fields(obj):
            v, d = getattr(obj, f.name), getattr(default, f.name)
            if dataclasses.is_dataclass(v):
                sub = walk(v, d)
                if sub:
                    out[f.name] = sub
            elif v != d:
                out[f.name] = v
        return out

    return walk(cfg, DegConfig())


def describe(cls: type = DegConfig, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, meaning) for every leaf field — for ``deg config`` and docs."""
    rows = []
    defaults = cls()
    for f in dataclasses.fields(cls):
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(describe(type(value), f"{prefix}{f.name}."))
        else:
            rows.append((f"{prefix}{f.name}", value, f.metadata.get("help", "")))
    return rows


def parse_override(text: str) -> dict:
    """``"train.lr=1e-3"`` -> ``{"train": {"lr": 0.001}}`` (value parsed as a YAML scalar)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def merge_dicts(base: dict, over: dict) -> dict:
    """Recursive dict merge; ``over`` wins. Neither input is modified."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_dicts(out[k], v)
        else:
            out[k] = v
    return out


def resolve(raw: dict, overrides: list[str] | None = None, preset: str | None = None) -> DegConfig:
    """A project's raw config + preset + ``key=value`` overrides -> validated DegConfig."""
    data = dict(raw)
    if preset is not None:
        data = merge_dicts(data, preset_overrides(preset))
    for text in overrides or []:
        data = merge_dicts(data, parse_override(text))
    return build(DegConfig, data, unknown=[] if _from_deg(raw) else None)


def _from_deg(raw: dict) -> bool:
    # DEG writes absolute paths into the project section; deg never does
    return isinstance(raw.get("project"), dict) and "config_file" in raw["project"]


def load_config(path: str | Path, overrides: list[str] | None = None) -> DegConfig:
    """Read a project_config.yaml, apply ``key=value`` overrides, validate against the defaults.

    Raises:
        ConfigError: one line naming the file and the bad key, for malformed YAML,
            unknown keys or wrong types.
    """
    path = Path(path)
    try:
        data = load_yaml(path, what="project config")
    except DegError as e:
        raise ConfigError(e.problem, path) from None
    data = data or {}
    for text in overrides or []:
        data = merge_dicts(data, parse_override(text))
    try:
        return build(DegConfig, data)
    except ConfigError as e:
        raise ConfigError(e.problem, path) from None
