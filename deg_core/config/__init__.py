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

Where things live (import from here; the modules import each other, never this package):
``fields`` (the ``_f`` field helper, :class:`Range` and the shared ranges, device names,
the type check of one value) <- ``project_sections`` (the project, subject and animals
sections and their checks) <- ``sections`` (the stage sections and :class:`DegConfig`)
<- ``resolution`` (``build``, ``resolve`` with presets and overrides,
``describe``/``leaves``/``to_dict``, ``STAGE_READS``/``stage_keys``, the resume check).
"""

from __future__ import annotations

from deg_core.config.fields import (
    DEVICES,
    DROPOUT,
    LABEL_SMOOTHING,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    Range,
    device_problem,
)
from deg_core.config.resolution import (
    RESUMABLE,
    STAGE_READS,
    build,
    check_resume,
    describe,
    leaves,
    merge_dicts,
    parse_override,
    resolve,
    stage_keys,
    to_dict,
)
from deg_core.config.sections import (
    SUBJECT_FIELDS,
    AugsSection,
    ComputeSection,
    DegConfig,
    FeatureExtractorSection,
    FlowGeneratorSection,
    PretrainSection,
    ProjectSection,
    SequenceSection,
    SplitSection,
    SubjectSection,
    TrainSection,
    subject_problem,
)
from deg_core.errors import ConfigError  # callers catch it as deg_core.config.ConfigError

__all__ = [
    "DEVICES",
    "DROPOUT",
    "LABEL_SMOOTHING",
    "NON_NEGATIVE",
    "POSITIVE",
    "POSITIVE_INT",
    "PROBABILITY",
    "RESUMABLE",
    "STAGE_READS",
    "SUBJECT_FIELDS",
    "AugsSection",
    "ComputeSection",
    "ConfigError",
    "DegConfig",
    "FeatureExtractorSection",
    "FlowGeneratorSection",
    "PretrainSection",
    "ProjectSection",
    "Range",
    "SequenceSection",
    "SplitSection",
    "SubjectSection",
    "TrainSection",
    "build",
    "check_resume",
    "describe",
    "device_problem",
    "leaves",
    "merge_dicts",
    "parse_override",
    "resolve",
    "stage_keys",
    "subject_problem",
    "to_dict",
]
