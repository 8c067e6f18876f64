"""Trained model runs under ``models/``: finding them, reading them back, whether they
still fit the project.

A run folder (``models/<yymmdd_HHMMSS>_<stage>_<arch>/``) holds what the stage trainers
(``deg_core.train``) write::

    config.yaml     stage, arch, class_names, the upstream run (flow_run / feature_run),
                    normalization, n_rgb / num_features, seed, batch_size, videos, and
                    ``config``: every setting it trained with
    best.pt         the epoch with the lowest validation loss: weights, and in ``extra``
                    the thresholds fitted on validation, class names, min bout lengths
    last.pt         where training stopped (resume continues from it)
    metrics.jsonl   one record per epoch (``val_loss``, ``train_loss``, F1, ...)

:func:`load_run` reads a run back as one typed :class:`RunInfo`; everything that uses a
trained run goes through it.

A run's ``config.yaml`` names the class names it was trained for (deg and DeepEthogram
both write ``project.class_names``). When the project's behaviour list changes, runs
trained for another list are stale: listed as such, and refused with a clear message
when a later stage tries to use them. Staleness is derived from the two lists, never
stored, so it cannot go out of date.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.config import DegConfig, build, check_resume, resolve, to_dict
from deg_core.errors import ConfigError, DegError, ProjectError
from deg_core.fileio import finite_or_none, load_yaml
from deg_core.project.records import strip_background

RUN_CONFIG = "config.yaml"


def _class_names(record: Mapping[str, Any]) -> list[str] | None:
    """The class names (background first) a config.yaml record names: deg's top-level
    ``class_names`` or DeepEthogram's ``project.class_names``; None if it names none."""
    names = record.get("class_names")
    if names is None and isinstance(record.get("project"), dict):
        names = record["project"].get("class_names")
    return [str(n) for n in names] if isinstance(names, list) else None


def run_behaviors(run_dir: Path) -> list[str] | None:
    """The behaviours a run was trained for, from its config.yaml (None if unknown)."""
    cfg = run_dir / RUN_CONFIG
    if not cfg.is_file():
        return None
    try:
        data = load_yaml(cfg, what="run config") or {}
    except DegError:
        return None
    names = _class_names(data) if isinstance(data, dict) else None
    return strip_background(names) if names is not None else None


def _refuse_stale(run_dir: Path, trained: list[str] | None, behaviors: list[str]) -> None:
    """ProjectError when a run trained for ``trained`` behaviours meets a project with others."""
    if trained is not None and trained != behaviors:
        raise ProjectError(
            f"stale model: trained for behaviours {trained}, the project now has "
            f"{behaviors}; retrain this stage",
            run_dir,
        )


def list_runs(models_dir: Path, behaviors: list[str]) -> list[dict]:
    """[{"name", "path", "behaviors", "stale"}] for every run folder (pretrained/ excluded)."""
    if not models_dir.is_dir():
        return []
    runs = []
    for d in sorted(p for p in models_dir.iterdir() if p.is_dir() and p.name != "pretrained"):
        trained = run_behaviors(d)
        runs.append(
            {
                "name": d.name,
                "path": d,
                "behaviors": trained,
                "stale": trained is not None and trained != behaviors,
            }
        )
    return runs


def check_run(run_dir: Path, behaviors: list[str]) -> Path:
    """Return ``run_dir``; ProjectError if missing or trained for other behaviours."""
    if not run_dir.is_dir():
        raise ProjectError("model run not found", run_dir)
    _refuse_stale(run_dir, run_behaviors(run_dir), behaviors)
    return run_dir


# ------------------------------------------------------------ creating and finding runs

# pretrain: the feature extractor trained without labels (deg_core.train.pretrain)
STAGES = ("flow", "pretrain", "features", "sequence")


def new_run_dir(models_dir: Path, stage: str, arch: str, now: dt.datetime | None = None) -> Path:
    """Create ``models/<yymmdd_HHMMSS>_<stage>_<arch>/`` (a suffix keeps same-second runs apart)."""
    stamp = (now or dt.datetime.now()).strftime("%y%m%d_%H%M%S")
    base = models_dir / f"{stamp}_{stage}_{arch}"
    run, n = base, 1
    while True:
        try:  # mkdir itself decides: two processes in the same second get different folders
            run.mkdir(parents=True, exist_ok=False)
            return run
        except FileExistsError:
            n += 1
            run = base.with_name(f"{base.name}_{n}")


def resolve_run(models_dir: Path, stage: str, name: str = "latest") -> Path:
    """``latest`` (newest run of the stage that has a best checkpoint) or an explicit run name."""
    if name != "latest":
        run = Path(name) if Path(name).is_absolute() else models_dir / name
        if not run.is_dir():
            raise ProjectError(f"no model run {name!r}", models_dir)
        return run
    candidates = sorted(
        p
        for p in (models_dir.iterdir() if models_dir.is_dir() else [])
        if p.is_dir() and f"_{stage}_" in p.name and (p / BEST).is_file()
    )
    if not candidates:
        raise ProjectError(
            f"no trained {stage} model yet: run `deg train {stage}` first", models_dir
        )
    return candidates[-1]


BEST = "best.pt"
LAST = "last.pt"
METRICS = "metrics.jsonl"


def read_metrics(run_dir: Path) -> list[dict]:
    """Per-epoch metric records of a run (metrics.jsonl), oldest first."""
    return read_jsonl(run_dir / METRICS)


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file ([] if absent).

    A last line that does not decode is skipped: a process killed while appending it
    leaves half a record (its epoch is not in ``last.pt`` either). A bad line before
    the last is damage, not an interruption: DegError naming the file and line.
    """
    if not path.is_file():
        return []
    lines = [(i, line) for i, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    out = []
    for i, line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == lines[-1][0]:
                break
            raise DegError(f"line {i} is not a JSON record", path) from None
    return out


def read_run_config(run_dir: Path) -> dict:
    """The run's config.yaml as a dict."""
    data = load_yaml(run_dir / RUN_CONFIG, what="run config")
    if not isinstance(data, dict):
        raise ProjectError("run config must be a mapping", run_dir / RUN_CONFIG)
    return data


def resumable_run(models_dir: Path, name: str, stage: str) -> tuple[Path, dict]:
    """The folder and config.yaml record of run ``name`` to resume as a ``stage`` run."""
    run = models_dir / name
    if not (run / RUN_CONFIG).is_file():
        raise ProjectError(f"no run {name!r} to resume", models_dir)
    record = read_run_config(run)
    if record.get("stage", stage) != stage:
        raise ProjectError(f"run {name!r} is a {record['stage']} run, not {stage}", models_dir)
    return run, record


def run_settings(run_dir: Path) -> DegConfig:
    """The settings a run was trained with (the ``config`` section of its config.yaml)."""
    return load_run(run_dir).config


def resume_config(
    run_dir: Path,
    cfg: DegConfig | None = None,
    overrides: list[str] | None = None,
    preset: str | None = None,
) -> DegConfig:
    """The settings to resume ``run_dir`` with: its own, except where ``cfg`` (a whole
    config) or ``preset`` and ``overrides`` (``section.key=value``, applied over the
    run's settings) change a key of :data:`deg_core.config.RESUMABLE`, such as the
    number of epochs.

    Raises:
        ConfigError: one line naming a key they would change that is not resumable,
            with the run's value and the requested one.
    """
    saved = load_run(run_dir)
    if cfg is None:
        cfg = resolve(to_dict(saved.config), overrides, preset)
    check_resume(saved.config, cfg, run_dir.name, saved.stage)
    return cfg


# ------------------------------------------------------------ a trained run, typed

UPSTREAM = {"pretrain": "flow_run", "features": "flow_run", "sequence": "feature_run"}
"""The config.yaml key naming the run a stage's run was trained on."""


def best_epoch(records: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch record with the lowest finite ``val_loss`` (the first of equal ones), or
    None when no record has one.

    The one rule for "the best epoch": it is the epoch ``best.pt`` holds, as the Trainer
    keeps an epoch only when its validation loss is strictly lower than every earlier one
    (a NaN loss never is).
    """
    scored = [r for r in records if finite_or_none(r.get("val_loss")) is not None]
    return min(scored, key=lambda r: float(r["val_loss"])) if scored else None


def _str_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


@dataclass(frozen=True)
class RunInfo:
    """A trained run, typed: what its config.yaml records, read at once; what ``best.pt`` and
    ``metrics.jsonl`` hold, read when first asked for (checkpoints can be big).

    Made by :func:`load_run`. ``extra``, :attr:`thresholds`, :attr:`min_lengths` and
    :attr:`best` are read once and kept (a snapshot of a run still training);
    :meth:`checkpoint` and :meth:`metrics` read the files every time.
    """

    name: str
    path: Path
    stage: str | None  # "flow", "pretrain", "features" or "sequence" (None: not recorded)
    arch: str | None
    config: DegConfig  # every setting the run trained with
    class_names: list[str] | None  # as trained, background first (None: flow, pretrain runs)
    normalization: dict[str, Any] | None  # frames {"mean", "std"} (flow, pretrain, feature runs)
    upstream: str | None  # a pretrain or feature run's flow run, a sequence run's feature run
    n_rgb: int | None  # frames per input stack of a flow, pretrain or feature run (None: sequence)
    num_features: int | None  # a sequence run's input width: features (+ track features)
    record: dict[str, Any] = field(repr=False)  # config.yaml as written (seed, videos, ...)
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    # ------------------------------------------------------------ from config.yaml
    @property
    def behaviors(self) -> list[str] | None:
        """The behaviours it was trained for (class names without background)."""
        return strip_background(self.class_names) if self.class_names is not None else None

    def check(self, behaviors: list[str]) -> RunInfo:
        """This run; ProjectError (stale model) if it was trained for other behaviours."""
        _refuse_stale(self.path, self.behaviors, behaviors)
        return self

    # ------------------------------------------------------------ from best.pt
    @property
    def extra(self) -> dict[str, Any]:
        """What training stored with the best epoch's weights: ``thresholds``, ``class_names``
        and (sequence runs) ``min_lengths``; {} for a flow run. best.pt is mapped, not read:
        its weights stay on disk."""
        if "extra" not in self._cache:
            from deg_core.models.weights import load_checkpoint

            self._keep_extra(load_checkpoint(self.path / BEST, mmap=True))
        return self._cache["extra"]

    @property
    def thresholds(self) -> np.ndarray | None:
        """(K,) float64 per-behaviour thresholds fitted on validation at the best epoch
        (None: a flow run, or none stored)."""
        values = self.extra.get("thresholds")
        return np.asarray(values, dtype=np.float64) if values else None

    @property
    def min_lengths(self) -> np.ndarray | None:
        """(K,) int shortest bouts a sequence run's predictions keep (None: not stored)."""
        values = self.extra.get("min_lengths")
        return np.asarray(values, dtype=int) if values else None

    def checkpoint(self) -> dict[str, Any]:
        """The best checkpoint, read whole (``"model"``: the weights to load), through
        :func:`deg_core.models.weights.load_checkpoint` (``weights_only``)."""
        from deg_core.models.weights import load_checkpoint

        ckpt = load_checkpoint(self.path / BEST)
        self._keep_extra(ckpt)
        return ckpt

    def _keep_extra(self, ckpt: Mapping[str, Any]) -> None:
        extra = ckpt.get("extra")
        self._cache.setdefault("extra", dict(extra) if isinstance(extra, Mapping) else {})

    # ------------------------------------------------------------ from metrics.jsonl
    @property
    def best(self) -> dict[str, Any] | None:
        """The best epoch's record (:func:`best_epoch`: lowest finite validation loss, the
        epoch best.pt holds), or None before the first epoch."""
        if "best" not in self._cache:
            self._cache["best"] = best_epoch(self.metrics())
        return self._cache["best"]

    def metrics(self) -> list[dict]:
        """Every epoch's record, oldest first (read now: a run may still be training)."""
        return read_metrics(self.path)


def load_run(
    run: str | Path,
    models_dir: Path | None = None,
    stage: str | None = None,
    *,
    behaviors: list[str] | None = None,
) -> RunInfo:
    """A trained run as a :class:`RunInfo`, reading only its config.yaml.

    Args:
        run: a run folder; with ``models_dir``, also the name of a run in it, or ``latest``:
            the newest run of ``stage`` with a best checkpoint (:func:`resolve_run`).
        behaviors: the project's behaviours: a run trained for others is refused.

    Raises:
        ProjectError: no such run, no config.yaml section of settings, or (``behaviors``)
            a stale run. ConfigError: settings this deg cannot read, naming the file.
    """
    if models_dir is not None:
        if str(run) == "latest" and stage is None:
            raise ValueError("load_run: 'latest' needs the stage")
        path = resolve_run(models_dir, stage or "", str(run))
    else:
        path = Path(run)
        if not path.is_dir():
            raise ProjectError("model run not found", path)
    record = read_run_config(path)
    data = record.get("config")
    if not isinstance(data, dict):
        raise ProjectError("no config section: the run's settings are unknown", path / RUN_CONFIG)
    try:  # keys an older deg wrote and this one dropped are not settings any more
        config = build(DegConfig, data, unknown=[])
    except ConfigError as e:
        raise ConfigError(e.problem, path / RUN_CONFIG) from None
    run_stage = _str_or_none(record.get("stage"))
    up = UPSTREAM.get(run_stage or "")
    keys = [up] if up is not None else list(UPSTREAM.values())
    norm = record.get("normalization")
    n_rgb, num_features = record.get("n_rgb"), record.get("num_features")
    # a feature run records n_rgb (its flow run's); a flow run has it in its settings
    if n_rgb is None and run_stage == "flow":
        # from the saved settings, not as an attribute: a stage loading its upstream flow
        # run does not read its own settings (tests/train/test_stage_reads.py records those)
        n_rgb = to_dict(config)["flow_generator"]["n_rgb"]
    info = RunInfo(
        name=path.name,
        path=path,
        stage=run_stage,
        arch=_str_or_none(record.get("arch")),
        config=config,
        class_names=_class_names(record),
        normalization=dict(norm) if isinstance(norm, dict) else None,
        upstream=next((str(record[k]) for k in keys if record.get(k)), None),
        n_rgb=int(n_rgb) if n_rgb is not None else None,
        num_features=int(num_features) if num_features is not None else None,
        record=record,
    )
    return info.check(behaviors) if behaviors is not None else info
