"""deg widgets: anywidget labeling and review widgets over deg_core."""

from deg_widgets.base import DegWidget
from deg_widgets.labeler import Labeler
from deg_widgets.project_view import ProjectView
from deg_widgets.training_monitor import TrainingMonitor

__all__ = ["DegWidget", "Labeler", "ProjectView", "TrainingMonitor"]
