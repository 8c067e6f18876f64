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
import math
import re
import types
import typing
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, Literal

import yaml

from deg_core.errors import ConfigError
from deg_core.presets import AUTO, auto_preset, preset_overrides


@dataclass(frozen=True)
class Range:
    """The values a numeric field accepts (each element, for a list), checked by :func:`build`.

    ``ge``/``gt``/``le``/``lt``: bounds (>=, >, <=, <); ``length``: a list's number of
    values; ``check``: value -> problem text or None, for what bounds cannot say.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    length: int | None = None
    check: Any = None  # Callable[[Any], str | None]

    def text(self) -> str:
        """The range as ``deg config`` shows it, e.g. ``>= 1`` or ``2 values, each >= 32``."""
        bounds = self._bounds()
        if self.length is None:
            return bounds
        return f"{self.length} values" + (f", each {bounds}" if bounds else "")

    def _bounds(self) -> str:
        lo = f"[{_num(self.ge)}" if self.ge is not None else None
        lo = f"({_num(self.gt)}" if self.gt is not None else lo
        hi = f"{_num(self.le)}]" if self.le is not None else None
        hi = f"{_num(self.lt)})" if self.lt is not None else hi
        if lo and hi:
            return f"in {lo}, {hi}"
        if lo:
            return (">= " if lo[0] == "[" else "> ") + lo[1:]
        if hi:
            return ("<= " if hi[-1] == "]" else "< ") + hi[:-1]
        return ""

    def problem(self, value: Any, key: str) -> str | None:
        """One line naming ``key`` if ``value`` is out of range, else None."""
        if self.length is not None and isinstance(value, list) and len(value) != self.length:
            return f"{key} must have {self.length} values, got {value!r}"
        for i, v in enumerate(value) if isinstance(value, list) else [(None, value)]:
            if not isinstance(v, int | float) or isinstance(v, bool):
                continue  # "auto", None: the type check already accepted them
            if not self._inside(v):
                where = key if i is None else f"{key}[{i}]"
                return f"{where} must be {self._bounds()}, got {v!r}"
        return self.check(value, key) if self.check is not None else None

    def _inside(self, v: float) -> bool:
        # written so that NaN fails every bound
        return (
            math.isfinite(v)
            and (self.ge is None or v >= self.ge)
            and (self.gt is None or v > self.gt)
            and (self.le is None or v <= self.le)
            and (self.lt is None or v < self.lt)
        )


def _num(x: float) -> str:
    return f"{x:g}"


def _f(default: Any, help: str, range: Range | None = None, **kw: Any) -> Any:
    """A dataclass field with a default, a one-line meaning and the values it accepts
    (both shown by ``deg config``; the range is checked by :func:`build`)."""
    meta = {"help": help, "range": range}
    if isinstance(default, list | dict):
        return field(default_factory=partial(copy.copy, default), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


# the ranges most fields share
POSITIVE_INT = Range(ge=1)  # steps, epochs, batch sizes, widths
POSITIVE = Range(gt=0)  # learning rates, scales
NON_NEGATIVE = Range(ge=0)  # weights, exponents, decays
PROBABILITY = Range(ge=0, le=1)
DROPOUT = Range(ge=0, lt=1)  # p = 1 would zero every input
LABEL_SMOOTHING = Range(ge=0, lt=0.5)  # deg_core.train.losses: 0.5 would make every target 0.5

DEVICES = "auto, cpu, cuda, cuda:N or mps"
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def device_problem(value: Any, key: str = "device") -> str | None:
    """What is wrong with a device name (None: a name deg accepts; torch.device reads it)."""
    if isinstance(value, str) and _DEVICE_RE.match(value):
        return None
    return f"{key} must be {DEVICES}, got {value!r}"


def _split_problem(value: Any, key: str) -> str | None:
    if isinstance(value, list) and sum(value) <= 0:
        return f"{key} must have a fraction > 0, got {value!r}"
    return None


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

    train_val_test: list[float] = _f(
        [0.8, 0.2, 0.0],
        "fractions for randomly assigned videos",
        Range(ge=0, le=1, length=3, check=_split_problem),
    )
    seed: int | None = _f(None, "seed for split assignment (None: random)")
    reload: bool = _f(True, "keep existing assignments (DEG compatibility; deg always does)")
    file: str | None = _f(None, "another split.yaml to copy assignments from")


@dataclass
class AugsSection:
    """Input size and augmentations (identical across a clip's frames)."""

    resize: list[int] = _f(
        [224, 224], "network input height, width; multiples of 32", Range(ge=32, length=2)
    )
    LR: float = _f(0.5, "probability of a left-right flip", PROBABILITY)
    UD: float = _f(0.0, "probability of an up-down flip", PROBABILITY)
    degrees: float = _f(10.0, "maximum rotation in degrees", Range(ge=0, le=180))
    brightness: float = _f(0.25, "colour jitter: brightness", NON_NEGATIVE)
    contrast: float = _f(0.1, "colour jitter: contrast", NON_NEGATIVE)
    saturation: float = _f(0.1, "colour jitter: saturation", NON_NEGATIVE)
    hue: float = _f(0.1, "colour jitter: hue", Range(ge=0, le=0.5))
    grayscale: float = _f(0.5, "probability of converting a clip to grayscale", PROBABILITY)
    crop_size: list[int] | None = _f(
        None, "random crop (height, width) before resize, or None", Range(ge=1, length=2)
    )
    pad: list[int] | None = _f(None, "padding before cropping, or None", NON_NEGATIVE)
    random_resize: bool = _f(
        False, "random scale (0.85-1.15) and shift (up to 10 %) jitter, one draw per clip"
    )
    crop: Literal["full", "animal"] = _f(
        "full",
        "full: the whole frame is resized; animal: a fixed-size square that follows the "
        "animal (tracked per video without labels, cached in DATA/<key>/<key>_track.npz)",
    )
    crop_scale: float = _f(
        1.5,
        "animal crop: window side = this x the animal's typical length (90th percentile)",
        POSITIVE,
    )

    # deg computes normalisation from each video's record.yaml stats instead of caching it here.
    deg_ignored: ClassVar[frozenset[str]] = frozenset({"normalization"})


@dataclass
class ComputeSection:
    """Where and how fast to compute."""

    device: str = _f("auto", DEVICES, Range(check=device_problem))
    batch_size: int | Literal["auto"] = _f(
        "auto", "batch size, or auto to fit the device", POSITIVE_INT
    )
    num_workers: int | Literal["auto"] = _f("auto", "data-loading worker processes", NON_NEGATIVE)
    fp16: bool = _f(False, "mixed precision on GPU")
    frame_cache_mb: float = _f(
        1024.0,
        "per data worker: training videos whose resized frames fit are held in memory",
        NON_NEGATIVE,
    )

    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"distributed", "gpu_id", "dali", "min_batch_size", "max_batch_size", "metrics_workers"}
    )


@dataclass
class TrainSection:
    """Optimisation defaults shared by the three trainers."""

    patience: int = _f(5, "epochs without validation improvement before the LR drops", NON_NEGATIVE)
    reduction_factor: float = _f(0.1, "LR multiplier on plateau", Range(gt=0, lt=1))
    min_lr: float = _f(5e-7, "stop when the LR falls below this", NON_NEGATIVE)
    loss_weight_exp: float = _f(
        0.25, "beta in pos_weight = (neg/pos)^beta (DEG paper: 0.25)", NON_NEGATIVE
    )
    # 1.0: on the rat folds +0.01 test macro F1 on average over six comparisons (-0.02 to
    # +0.03: within noise; benchmarks/RESULTS.md); it guards against the few-bouts cliff
    threshold_smoothing: float = _f(
        1.0,
        "thresholds maximise validation F1 averaged over a threshold error of this many "
        "logits (robust to few validation bouts; 0: DEG's plain maximum)",
        NON_NEGATIVE,
    )

    # settings deg once had and no stage reads: refused with where to go instead
    retired: ClassVar[dict[str, str]] = {
        "lr": "each stage has its own: flow_generator.lr, feature_extractor.lr, sequence.lr",
        "num_epochs": "each stage has its own: flow_generator.num_epochs, "
        "feature_extractor.num_epochs, sequence.num_epochs",
    }
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

    arch: str = _f(
        "TinyMotionNet",
        "TinyMotionNet, MotionNet, TinyMotionNet3D or PairFlowNet (pairwise: each frame pair's "
        "flow computed once; the lite preset)",
    )
    n_rgb: int = _f(
        11, "frames stacked per input (N); the generator outputs N-1 flows", Range(ge=2)
    )
    weights: str = _f(
        "auto",
        "auto (models/pretrained if present, else scratch), scratch, pretrained, or a .pt path",
    )
    num_epochs: int = _f(10, "epochs", POSITIVE_INT)
    steps_per_epoch: int = _f(1000, "training batches per epoch", POSITIVE_INT)
    val_steps: int = _f(100, "validation batches per epoch", POSITIVE_INT)
    batch_size: int | Literal["auto"] = _f("auto", "clips per batch, or auto", POSITIVE_INT)
    lr: float = _f(1e-4, "Adam learning rate", POSITIVE)
    photo_alpha: float = _f(0.4, "Charbonnier exponent of the photometric loss", POSITIVE)
    smooth_alpha: float = _f(0.3, "Charbonnier exponent of the smoothness loss", POSITIVE)
    smooth_weights: list[float] = _f(
        [0.01, 0.02, 0.04], "smoothness weight per scale, fine->coarse", NON_NEGATIVE
    )
    ssim_weight: float = _f(1.0, "weight of (1 - SSIM) in the photometric loss", NON_NEGATIVE)

    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"type", "flow_loss", "flow_max", "input_images", "flow_sparsity"}
        | {"smooth_weight_multiplier", "sparsity_weight", "loss", "max"}
    )


@dataclass
class FeatureExtractorSection:
    """Stage 2: the hidden two-stream feature extractor (``deg train features``)."""

    arch: str = _f("resnet18", "resnet18, resnet50 or resnet3d_34 (both streams)")
    rgb_stride: int = _f(
        1,
        "the spatial stream sees the centre frame average-pooled by this factor "
        "(1: full resolution, DEG; 2: half, 1/4 of the arithmetic; 2-D archs)",
        Range(ge=1, le=8),
    )
    fusion: Literal["average", "concatenate"] = _f("average", "how the two streams combine")
    flow_weight: float = _f(1.5, "flow stream's weight in average fusion (DEG: 1.5)", NON_NEGATIVE)
    dropout_p: float = _f(0.25, "dropout on the 512-d features before each head", DROPOUT)
    weights: str = _f(
        "auto",
        "auto (pretrained if present, else ImageNet from the torch cache, else scratch), "
        "scratch, imagenet, pretrained, or a .pt path",
    )
    num_epochs: int = _f(20, "epochs", POSITIVE_INT)
    steps_per_epoch: int = _f(1000, "training batches per epoch", POSITIVE_INT)
    val_steps: int = _f(200, "validation batches per epoch", POSITIVE_INT)
    batch_size: int | Literal["auto"] = _f("auto", "clips per batch, or auto", POSITIVE_INT)
    lr: float = _f(1e-4, "Adam learning rate", POSITIVE)
    weight_decay: float = _f(0.0, "Adam weight decay", NON_NEGATIVE)
    focal_gamma: float = _f(0.0, "focal-loss gamma (0: plain BCE; DEG option: 1)", NON_NEGATIVE)
    label_smoothing: float = _f(0.0, "label smoothing epsilon (e.g. 0.05)", LABEL_SMOOTHING)

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
    sequence_length: int = _f(180, "frames per training window", POSITIVE_INT)
    filter_length: int = _f(15, "TGM kernel length (frames)", POSITIVE_INT)
    n_filters: int = _f(8, "TGM kernels per layer", POSITIVE_INT)
    num_layers: int | None = _f(None, "TGM layers / TCN blocks (None: tgmj 3, tcn 6)", POSITIVE_INT)
    head_hidden: int = _f(128, "tgmj: hidden width of each head (DEG's num_features)", POSITIVE_INT)
    hidden_size: int = _f(128, "tcn: channels", POSITIVE_INT)
    dropout_p: float = _f(0.5, "dropout before the output layers", DROPOUT)
    input_dropout: float = _f(0.5, "dropout on the input features", DROPOUT)
    num_epochs: int = _f(30, "epochs", POSITIVE_INT)
    steps_per_epoch: int = _f(100, "training batches per epoch", POSITIVE_INT)
    batch_size: int | Literal["auto"] = _f("auto", "windows per batch, or auto", POSITIVE_INT)
    lr: float = _f(1e-4, "Adam learning rate", POSITIVE)
    weight_decay: float = _f(0.0, "Adam weight decay", NON_NEGATIVE)
    # 0.5 by measurement: the demo's short behaviour went from F1 0 to > 0, the rat folds
    # were unchanged (benchmarks/RESULTS.md)
    min_bout_fraction: float = _f(
        0.5,
        "predicted bouts shorter than this fraction of the shortest labelled bout are removed "
        "(1: DeepEthogram's rule)",
        PROBABILITY,
    )
    track_features: bool = _f(
        False,
        "append the animal track (position, speed, extent, motion; z-scored per video) "
        "to the per-frame features",
    )
    focal_gamma: float = _f(0.0, "focal-loss gamma (0: plain BCE)", NON_NEGATIVE)
    label_smoothing: float = _f(0.0, "label smoothing epsilon", LABEL_SMOOTHING)

    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"latent_name", "output_name", "num_features", "nonoverlapping", "tgm_reduction"}
        | {"c_in", "c_out", "soft_attn", "bidirectional", "rnn_style"}
        | {"hidden_dropout", "weights", "nonlinear_classification", "final_bn", "input_type"}
    )


# What each stage's trainer reads: whole sections or single keys. The one declaration
# `deg config --stage`, the notebooks' settings tables, the retrain fingerprint and the
# resume check all use; tests/train/test_stage_reads.py records what a training really reads and
# fails on anything undeclared. (project.* and split.* are the project's own: labels and
# the split enter the retrain fingerprint separately.)
_SCHEDULE = ("train.patience", "train.reduction_factor", "train.min_lr")
_CLASSIFIER = ("train.loss_weight_exp", "train.threshold_smoothing")
STAGE_READS: dict[str, tuple[str, ...]] = {
    "flow": ("flow_generator", "augs", "compute", *_SCHEDULE),
    "features": ("feature_extractor", "augs", "compute", *_SCHEDULE, *_CLASSIFIER),
    "sequence": ("sequence", "compute", *_SCHEDULE, *_CLASSIFIER),
}


def stage_keys(stage: str) -> list[str]:
    """Every dotted setting ``stage`` reads (:data:`STAGE_READS` with sections expanded)."""
    reads = STAGE_READS[stage]
    return [key for key, _, _ in describe() if key in reads or key.split(".")[0] in reads]


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
        ConfigError: naming the dotted key for an unknown key, a wrong type or a value
            outside the field's range.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or "the top level"
        raise ConfigError(f"'{where}' must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = set(fields)
    ignored: frozenset[str] = getattr(cls, "deg_ignored", frozenset())
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key in ignored:
            continue
        retired: dict[str, str] = getattr(cls, "retired", {})
        if key in retired and unknown is None:
            raise ConfigError(f"'{dotted}' is not a setting any more: {retired[key]}")
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
            valid: Range | None = fields[key].metadata.get("range")
            problem = valid.problem(kwargs[key], dotted) if valid is not None else None
            if problem:
                raise ConfigError(problem)
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    """Nested plain dict of a config object (YAML-ready)."""
    return dataclasses.asdict(cfg)


def describe(cls: type = DegConfig, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, meaning) for every leaf field — for ``deg config`` and docs.

    The meaning ends with the values the key accepts, e.g. ``(range: >= 1)``.
    """
    rows = []
    defaults = cls()
    for f in dataclasses.fields(cls):
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(describe(type(value), f"{prefix}{f.name}."))
            continue
        meaning = f.metadata.get("help", "")
        valid: Range | None = f.metadata.get("range")
        if valid is not None and valid.text():
            meaning += f" (range: {valid.text()})"
        rows.append((f"{prefix}{f.name}", value, meaning))
    return rows


def leaves(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: value} for every leaf field of a config object."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update(leaves(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


# ------------------------------------------------------------------------------ resume

# What a resumed run may change: how long it trains (the checkpoint holds the position
# and every epoch's batches are drawn from the seed, so more epochs continue the same
# run), how it computes (device, workers, caches: the same steps), and settings training
# never reads (inference's batch size and precision, provenance). Anything else would
# make the checkpoint's model, optimiser or batches mean something else.
RESUMABLE = frozenset(
    {
        "flow_generator.num_epochs",
        "feature_extractor.num_epochs",
        "sequence.num_epochs",
        "compute.device",
        "compute.num_workers",
        "compute.frame_cache_mb",
        "compute.batch_size",
        "compute.fp16",
        "project.name",
        "project.labeler",
    }
)


def check_resume(
    saved: DegConfig, requested: DegConfig, run: str, stage: str | None = None
) -> None:
    """Refuse ``requested`` for resuming ``run`` (trained with ``saved``) where it differs
    in a key outside :data:`RESUMABLE` (of those ``stage`` reads, when given).

    Raises:
        ConfigError: one line naming the first such key, the run's value and the requested one.
    """
    old, new = leaves(saved), leaves(requested)
    read = set(stage_keys(stage)) if stage in STAGE_READS else set(new)
    for key, value in new.items():
        if key in read and key not in RESUMABLE and value != old[key]:
            raise ConfigError(
                f"cannot resume run {run} with {key}={value!r}: it was trained with "
                f"{key}={old[key]!r} (a resumed run keeps its settings except the number of "
                "epochs and compute.*; start a new run to change it)"
            )


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
    """A project's raw config + preset + ``key=value`` overrides -> validated DegConfig.

    ``preset`` ``auto``: lite where ``compute.device`` (after the overrides) is a CPU, none
    on a GPU (:func:`deg_core.presets.auto_preset`).
    """
    data = dict(raw)
    over: dict = {}
    for text in overrides or []:
        over = merge_dicts(over, parse_override(text))
    if preset == AUTO:
        compute = merge_dicts(data, over).get("compute")
        device = compute.get("device", "auto") if isinstance(compute, dict) else "auto"
        preset = auto_preset(str(device), _cuda_available())
    if preset is not None:
        data = merge_dicts(data, preset_overrides(preset))
    data = merge_dicts(data, over)
    return build(DegConfig, data, unknown=[] if _from_deg(raw) else None)


def _cuda_available() -> bool:
    import torch  # here, not at import: `import deg_core` stays light

    return bool(torch.cuda.is_available())


def _from_deg(raw: dict) -> bool:
    # DEG writes absolute paths into the project section; deg never does
    return isinstance(raw.get("project"), dict) and "config_file" in raw["project"]
