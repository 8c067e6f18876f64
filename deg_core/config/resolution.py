"""From a project's raw YAML values to a validated :class:`DegConfig`, and back.

``build`` validates a (partial) nested dict over a section's defaults; ``resolve`` adds a
preset and ``key=value`` overrides; ``describe``/``leaves``/``to_dict`` list a config's
keys; ``STAGE_READS``/``stage_keys`` say what each stage reads, and ``check_resume`` what a
resumed run may change.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import yaml

from deg_core.config.fields import Range, _coerce
from deg_core.config.sections import DegConfig
from deg_core.errors import ConfigError
from deg_core.presets import AUTO, auto_preset, preset_overrides


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


# ------------------------------------------------------------------------------ stages

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
    # the feature stage's networks (arch, rgb_stride) and start weights, without labels
    "pretrain": (
        "pretrain",
        "feature_extractor.arch",
        "feature_extractor.rgb_stride",
        "feature_extractor.weights",
        "augs",
        "compute",
        *_SCHEDULE,
    ),
}


def stage_keys(stage: str) -> list[str]:
    """Every dotted setting ``stage`` reads (:data:`STAGE_READS` with sections expanded)."""
    reads = STAGE_READS[stage]
    return [key for key, _, _ in describe() if key in reads or key.split(".")[0] in reads]


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
        "pretrain.num_epochs",
        "compute.device",
        "compute.num_workers",
        "compute.frame_cache_mb",
        "compute.batch_size",
        "compute.fp16",
        "project.name",
        "project.labeler",
        "project.animals",  # no stage reads them yet
        "project.animals_per_video",
        *(f"project.subject.{k}" for k in ("subject_id", "species", "sex", "age", "videos")),
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
