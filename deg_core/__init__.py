"""deg core: project store, video, labels, models, training, inference, evaluation, reports.

The names a notebook needs are importable from here (``from deg_core import Project,
train_flow, ...``); each is loaded on first use, so ``import deg_core`` stays light (no torch).
Packages, each importing only from those before it (docs/architecture.md): ``video``,
``labels``, ``models``, ``project``, ``tracking``, ``data``, ``evaluation``, ``train``,
``infer``, ``report``, ``workflow``; ``compute``, ``config``, ``fileio``, ``errors`` serve all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from deg_core.errors import ConfigError, DegError, LabelError, ProjectError, VideoError

_LAZY = {
    "agreement": "deg_core.labels.review",
    "animal_tracks": "deg_core.tracking.project_tracks",
    "AnimalTracks": "deg_core.tracking.animals",
    "behavior_table": "deg_core.report.notebook",
    "best_record": "deg_core.report.notebook",
    "bout_table": "deg_core.labels.bouts",
    "config_table": "deg_core.report.notebook",
    "corrections": "deg_core.labels.review",
    "DEMO_SETTINGS": "deg_core.workflow.demo",
    "demo_splits": "deg_core.workflow.demo",
    "epoch_settings": "deg_core.workflow.stages",
    "ethogram": "deg_core.report.video_pictures",
    "ethogram_chart": "deg_core.report.charts",
    "evaluate_project": "deg_core.evaluation.scoring",
    "evaluate_splits": "deg_core.report.notebook",
    "example_frames": "deg_core.report.video_pictures",
    "export_boris": "deg_core.interop.boris",
    "export_nwb": "deg_core.interop.nwb",
    "f1_bars": "deg_core.report.notebook",
    "flow_preview": "deg_core.report.flow_preview",
    "format_agreement": "deg_core.evaluation.agreement",
    "identity_switches": "deg_core.tracking.multi",
    "import_animal_tracks": "deg_core.tracking.project_tracks",
    "import_boris": "deg_core.interop.boris",
    "import_boris_animals": "deg_core.interop.boris",
    "import_bout_animals": "deg_core.labels.labels",
    "infer_features": "deg_core.infer.features",
    "infer_sequence": "deg_core.infer.sequence",
    "latest_run": "deg_core.workflow.stages",
    "load_run": "deg_core.project.runs",
    "make_synthetic_project": "deg_core.workflow.synthetic",
    "metrics_table": "deg_core.report.notebook",
    "model_ethogram": "deg_core.report.video_pictures",
    "MULTI_BEHAVIORS": "deg_core.workflow.synthetic_multi",
    "multi_truth": "deg_core.workflow.synthetic_multi",
    "MultiSpec": "deg_core.workflow.synthetic_multi",
    "Png": "deg_core.report.charts",
    "pr_figure": "deg_core.report.notebook",
    "predict": "deg_core.workflow.stages",
    "prediction_table": "deg_core.report.notebook",
    "Project": "deg_core.project.project",
    "project_agreement": "deg_core.evaluation.agreement",
    "read_labels": "deg_core.labels.labels",
    "resolve_run": "deg_core.project.runs",
    "RetrainPlan": "deg_core.workflow.retrain",
    "review_queue": "deg_core.labels.review",
    "run_thresholds": "deg_core.workflow.stages",
    "RunInfo": "deg_core.project.runs",
    "save_animal_tracks": "deg_core.tracking.project_tracks",
    "split_keys": "deg_core.project.project",
    "split_outputs": "deg_core.report.notebook",
    "stage_figures": "deg_core.workflow.retrain",
    "start_weights_lines": "deg_core.project.start_weights",
    "swap_candidates": "deg_core.tracking.multi",
    "switch_frames": "deg_core.tracking.multi",
    "SyntheticSpec": "deg_core.workflow.synthetic",
    "Table": "deg_core.report.notebook",
    "threshold_table": "deg_core.report.notebook",
    "track_animals": "deg_core.tracking.multi",
    "tracks_path": "deg_core.tracking.project_tracks",
    "tracks_png": "deg_core.report.tracks_png",
    "train_features": "deg_core.train.features",
    "train_flow": "deg_core.train.flow",
    "train_pretrain": "deg_core.train.pretrain",
    "train_sequence": "deg_core.train.sequence",
    "training_curves": "deg_core.report.notebook",
    "video_stats_table": "deg_core.report.notebook",
    "video_table": "deg_core.report.notebook",
    "write_metrics": "deg_core.report.notebook",
    "write_multi_video": "deg_core.workflow.synthetic_multi",
}

if TYPE_CHECKING:  # the same names, for type checkers
    from deg_core.evaluation.agreement import format_agreement, project_agreement
    from deg_core.evaluation.scoring import evaluate_project
    from deg_core.infer.features import infer_features
    from deg_core.infer.sequence import infer_sequence
    from deg_core.interop.boris import export_boris, import_boris, import_boris_animals
    from deg_core.interop.nwb import export_nwb
    from deg_core.labels.bouts import bout_table
    from deg_core.labels.labels import import_bout_animals, read_labels
    from deg_core.labels.review import agreement, corrections, review_queue
    from deg_core.project.project import Project, split_keys
    from deg_core.project.runs import RunInfo, load_run, resolve_run
    from deg_core.project.start_weights import start_weights_lines
    from deg_core.report.charts import Png, ethogram_chart
    from deg_core.report.flow_preview import flow_preview
    from deg_core.report.notebook import (
        Table,
        behavior_table,
        best_record,
        config_table,
        ethogram,
        evaluate_splits,
        example_frames,
        f1_bars,
        metrics_table,
        model_ethogram,
        pr_figure,
        prediction_table,
        split_outputs,
        threshold_table,
        training_curves,
        video_stats_table,
        video_table,
        write_metrics,
    )
    from deg_core.report.tracks_png import tracks_png
    from deg_core.tracking.animals import AnimalTracks
    from deg_core.tracking.multi import (
        identity_switches,
        swap_candidates,
        switch_frames,
        track_animals,
    )
    from deg_core.tracking.project_tracks import (
        animal_tracks,
        import_animal_tracks,
        save_animal_tracks,
        tracks_path,
    )
    from deg_core.train.features import train_features
    from deg_core.train.flow import train_flow
    from deg_core.train.pretrain import train_pretrain
    from deg_core.train.sequence import train_sequence
    from deg_core.workflow.demo import DEMO_SETTINGS, demo_splits
    from deg_core.workflow.retrain import RetrainPlan, stage_figures
    from deg_core.workflow.stages import epoch_settings, latest_run, predict, run_thresholds
    from deg_core.workflow.synthetic import SyntheticSpec, make_synthetic_project
    from deg_core.workflow.synthetic_multi import (
        MULTI_BEHAVIORS,
        MultiSpec,
        multi_truth,
        write_multi_video,
    )

__all__ = [
    "DEMO_SETTINGS",
    "MULTI_BEHAVIORS",
    "AnimalTracks",
    "ConfigError",
    "DegError",
    "LabelError",
    "MultiSpec",
    "Png",
    "Project",
    "ProjectError",
    "RetrainPlan",
    "RunInfo",
    "SyntheticSpec",
    "Table",
    "VideoError",
    "agreement",
    "animal_tracks",
    "behavior_table",
    "best_record",
    "bout_table",
    "config_table",
    "corrections",
    "demo_splits",
    "epoch_settings",
    "ethogram",
    "ethogram_chart",
    "evaluate_project",
    "evaluate_splits",
    "example_frames",
    "export_boris",
    "export_nwb",
    "f1_bars",
    "flow_preview",
    "format_agreement",
    "identity_switches",
    "import_animal_tracks",
    "import_boris",
    "import_boris_animals",
    "import_bout_animals",
    "infer_features",
    "infer_sequence",
    "latest_run",
    "load_run",
    "make_synthetic_project",
    "metrics_table",
    "model_ethogram",
    "multi_truth",
    "pr_figure",
    "predict",
    "prediction_table",
    "project_agreement",
    "read_labels",
    "resolve_run",
    "review_queue",
    "run_thresholds",
    "save_animal_tracks",
    "split_keys",
    "split_outputs",
    "stage_figures",
    "start_weights_lines",
    "swap_candidates",
    "switch_frames",
    "threshold_table",
    "track_animals",
    "tracks_path",
    "tracks_png",
    "train_features",
    "train_flow",
    "train_pretrain",
    "train_sequence",
    "training_curves",
    "video_stats_table",
    "video_table",
    "write_metrics",
    "write_multi_video",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deg_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
