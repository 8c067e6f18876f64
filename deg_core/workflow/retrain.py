"""Headless retraining: run the requested stages, skipping those whose inputs did not change.

``notebooks/retrain.ipynb`` drives a :class:`RetrainPlan` step by step; ``deg retrain``
executes that notebook with papermill (:mod:`deg_core.workflow.retrain_runner`). Stages, in order:

- ``flow``: train the flow generator (inputs: the videos, the splits, its settings);
- ``features``: train the feature extractor on the labels, then extract every video's
  features (inputs: train/val labels, splits, settings, behaviours, the latest flow run);
- ``sequence``: train the sequence model (inputs: train/val labels, splits, settings,
  behaviours, the latest feature run);
- ``infer``: predict every frame of the chosen videos (inputs: those videos, the latest
  sequence run and its feature run).

A stage's inputs are fingerprinted just before it runs (so a retrained upstream stage,
whose run name is an input, makes the downstream stages run too) and stored in
``reports/retrain_state.json`` once it succeeds. A requested stage whose fingerprint
matches its last successful run is skipped, unless forced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from deg_core.config import leaves, stage_keys
from deg_core.errors import DegError, ProjectError
from deg_core.fileio import atomic_write_text
from deg_core.project.project import Project
from deg_core.report.notebook import Table, json_safe, reports_dir
from deg_core.workflow.stages import epoch_settings, latest_run, predict

STAGES = ("flow", "features", "sequence", "infer")
STATE_FILE = "retrain_state.json"
# settings that change how a stage runs, not what it learns
NOT_INPUTS = frozenset({"compute.device", "compute.num_workers", "compute.frame_cache_mb"})


@dataclass
class StageResult:
    """What happened to one stage: ``action`` is "ran", "skipped" or "not requested"."""

    stage: str
    action: str
    reason: str
    run: str | None = None
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "action": self.action,
            "reason": self.reason,
            "run": self.run,
            "seconds": round(self.seconds) if self.action == "ran" else None,
            **self.detail,
        }

    def _repr_html_(self) -> str:
        return Table([self.row()])._repr_html_()


def check_stages(stages: Iterable[str] | str) -> list[str]:
    """Requested stages in pipeline order; a one-line error names an unknown one."""
    names = [stages] if isinstance(stages, str) else list(stages)
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        raise DegError(f"unknown stage(s) {unknown}: choose from {list(STAGES)}")
    return [s for s in STAGES if s in names]


def fingerprint(inputs: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _sha1(path) -> str | None:
    return hashlib.sha1(path.read_bytes()).hexdigest() if path.exists() else None


def _video_id(project: Project, key: str) -> str:
    """The checksum recorded when the video was added, else its size and mtime."""
    rec = project.record(key)
    if rec.checksum:
        return str(rec.checksum)
    video = rec.video
    if video is None or not video.exists():
        return "missing"
    st = video.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def describe_changes(old: dict[str, Any], new: dict[str, Any], limit: int = 4) -> str:
    """A short phrase naming what differs between two input dicts, e.g. "labels of v1"."""
    parts = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) or isinstance(b, dict):
            a, b = (a if isinstance(a, dict) else {}), (b if isinstance(b, dict) else {})
            names = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            shown = ", ".join(names[:limit]) + (
                f" (+{len(names) - limit})" if len(names) > limit else ""
            )
            parts.append(f"{key}: {shown}")
        else:
            parts.append(key)
    return "changed " + "; ".join(parts) if parts else "unchanged"


class RetrainPlan:
    """The retrain of one project with one set of parameters (see the module docstring).

    Args:
        project: the project.
        stages: the stages to consider (others are "not requested").
        settings: ``section.key=value`` overrides for every trained stage.
        epochs: sets every trained stage's number of epochs (None: the settings decide).
        preset: fast, medium, slow or cpu (None: the project's settings).
        force: True, or the stages to run even when their inputs are unchanged.
        device: auto, cpu, cuda or cuda:N.
        videos: the videos ``infer`` predicts (None or []: all).
    """

    def __init__(
        self,
        project: Project,
        stages: Iterable[str] | str = STAGES,
        *,
        settings: Sequence[str] = (),
        epochs: int | None = None,
        preset: str | None = None,
        force: bool | Iterable[str] = False,
        device: str = "auto",
        videos: Sequence[str] | None = None,
        progress: bool = False,
    ):
        # one value where a list is expected (`-p videos mouse3`): a list of one
        settings = [settings] if isinstance(settings, str) else settings
        videos = [videos] if isinstance(videos, str) else videos
        self.project = project
        self.stages = check_stages(stages)
        self.settings = [*settings, *epoch_settings(epochs)]
        self.cfg = project.resolve_config(self.settings, preset=preset)
        self.force = set(STAGES) if force is True else set(check_stages(force or []))
        self.device, self.progress = device, progress
        self.videos = [project.resolve_key(v) for v in videos] if videos else []
        self.state_path = reports_dir(project) / STATE_FILE
        self.results: dict[str, StageResult] = {}

    # ------------------------------------------------------------------ state
    def load_state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return {}
        try:
            state = json.loads(self.state_path.read_text())
        except (ValueError, OSError) as e:
            raise ProjectError(
                f"unreadable retrain state ({e}); delete it to start over", self.state_path
            ) from None
        return state.get("stages", {}) if isinstance(state, dict) else {}

    def remember(self, stage: str, inputs: dict[str, Any], run: str | None) -> None:
        """Record that ``stage`` just ran successfully on ``inputs`` (producing ``run``)."""
        with self.project.lock():  # read-modify-write: another retrain may record too
            stages = self.load_state()
            stages[stage] = {
                "fingerprint": fingerprint(inputs),
                "inputs": inputs,
                "run": run,
                "finished": dt.datetime.now().isoformat(timespec="seconds"),
            }
            text = json.dumps({"version": 1, "stages": stages}, indent=2, sort_keys=True)
            atomic_write_text(self.state_path, text + "\n")

    # ------------------------------------------------------------------ inputs
    def _config(self, stage: str) -> dict[str, Any]:
        values = leaves(self.cfg)
        return json_safe({k: values[k] for k in stage_keys(stage) if k not in NOT_INPUTS})

    def _labels(self) -> dict[str, str | None]:
        split = self.project.splits().assignment
        keys = [k for k in self.project.video_keys() if split.get(k) in ("train", "val")]
        out = {}
        for k in keys:  # a video of several animals: each animal's file
            n = self.project.n_animals(k)
            if n == 1:
                out[k] = _sha1(self.project.record(k).labels_path)
            else:
                for i in range(n):
                    out[f"{k}/animal{i}"] = _sha1(self.project.animal_labels_path(k, i))
        return out

    def inputs(self, stage: str) -> dict[str, Any]:
        """What ``stage`` would read if it ran now (JSON-ready)."""
        p = self.project
        if stage == "infer":
            seq = latest_run(p, "sequence")
            keys = self.videos or p.video_keys()
            return {"videos": {k: _video_id(p, k) for k in keys}, "sequence run": seq}
        assignment = dict(sorted(p.splits().assignment.items()))
        if stage == "flow":  # trains on every video; the val videos score it
            videos = {k: _video_id(p, k) for k in p.video_keys()}
            return {"splits": assignment, "config": self._config(stage), "videos": videos}
        upstream = "flow" if stage == "features" else "features"
        return {
            "splits": {k: s for k, s in assignment.items() if s in ("train", "val")},
            "config": self._config(stage),
            "behaviours": p.behaviors,
            "labels": self._labels(),
            f"{upstream} run": latest_run(p, upstream),
        }

    def decide(self, stage: str, inputs: dict[str, Any]) -> tuple[bool, str]:
        """(run it?, why) for a stage with these inputs."""
        if stage not in self.stages:
            return False, "not requested"
        if stage in self.force:
            return True, "forced"
        last = self.load_state().get(stage)
        if not last:
            return True, "no earlier retrain of this stage"
        if last.get("run") and not (self.project.models_dir / last["run"]).is_dir():
            return True, f"its last run {last['run']} is gone"
        if last.get("fingerprint") == fingerprint(inputs):
            return False, f"inputs unchanged since {last.get('finished', '?')}"
        return True, describe_changes(last.get("inputs") or {}, inputs)

    # ------------------------------------------------------------------ running
    def run(self, stage: str, callbacks: Sequence[Any] = ()) -> StageResult:
        """Run (or skip) one stage; records it in the state file when it succeeds."""
        (stage,) = check_stages([stage])
        inputs = self.inputs(stage)
        go, reason = self.decide(stage, inputs)
        if not go:
            action = "not requested" if reason == "not requested" else "skipped"
            result = StageResult(
                stage,
                action,
                reason,
                run=latest_run(self.project, stage) if stage != "infer" else None,
            )
            self.results[stage] = result
            return result
        t0 = time.perf_counter()
        run, detail = self._execute(stage, list(callbacks))
        result = StageResult(stage, "ran", reason, run, time.perf_counter() - t0, detail)
        self.remember(stage, inputs, run)
        self.results[stage] = result
        return result

    def _execute(self, stage: str, callbacks: list[Any]) -> tuple[str | None, dict[str, Any]]:
        from deg_core.infer.features import infer_features

        p = self.project
        kw: dict[str, Any] = {"device": self.device, "progress": self.progress}
        if stage == "flow":
            from deg_core.train.flow import train_flow

            return train_flow(p, self.cfg, callbacks=callbacks, **kw).name, {}
        if stage == "features":
            from deg_core.train.features import train_features

            run = train_features(p, self.cfg, callbacks=callbacks, **kw).name
            done = infer_features(p, run, **kw)  # every video: the sequence model reads them
            return run, {"features extracted": sum(v == "done" for v in done.values())}
        if stage == "sequence":
            from deg_core.project.project import split_keys
            from deg_core.train.sequence import train_sequence

            feature_run = latest_run(p, "features")
            if feature_run is not None:  # videos added since the features stage last ran
                keys = split_keys(p)
                infer_features(p, feature_run, keys["train"] + keys["val"], **kw)
            return train_sequence(p, self.cfg, callbacks=callbacks, **kw).name, {}
        states = predict(p, self.videos or None, device=self.device)
        return latest_run(p, "sequence"), {
            "predicted": sum(v == "done" for v in states.values()),
            "videos": len(states),
        }

    # ------------------------------------------------------------------ reporting
    def table(self) -> Table:
        rows: list[dict[str, Any]] = []
        for s in STAGES:
            r = self.results.get(s)
            if r is None:
                action = "pending" if s in self.stages else "not requested"
                rows.append({"stage": s, "action": action})
                continue
            rows.append(r.row())
        return Table(rows, ["stage", "action", "reason", "run", "seconds"], "retrain stages")

    def summary(self) -> dict[str, Any]:
        """JSON-ready: every stage's result, in pipeline order."""
        return {s: json_safe(asdict(self.results[s])) for s in STAGES if s in self.results}


def stage_figures(project: Project, result: StageResult) -> list[Any]:
    """PNGs of a trained stage's run (the new one, or the one kept when skipped): loss and
    F1 per epoch, and per-behaviour F1 at the best epoch."""
    from deg_core.project.runs import read_metrics
    from deg_core.report.notebook import best_record, f1_bars, training_curves

    if result.stage == "infer" or not result.run:
        return []
    run_dir = project.models_dir / result.run
    if not read_metrics(run_dir):
        return []
    figs = training_curves(run_dir)
    best = best_record(run_dir)
    if best and best.get("f1"):
        figs.append(f1_bars({"validation": best["f1"]}, f"F1 at the best epoch: {result.run}"))
    return figs
