"""deg core: project store, video, labels, models, training, inference."""

from deg_core.errors import ConfigError, DegError, LabelError, ProjectError, VideoError

__all__ = ["ConfigError", "DegError", "LabelError", "Project", "ProjectError", "VideoError"]


def __getattr__(name: str):
    # Project pulls in video/label modules; import it lazily so `import deg_core` stays light
    if name == "Project":
        from deg_core.project import Project

        return Project
    raise AttributeError(name)
