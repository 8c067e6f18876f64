"""NWB (Neurodata Without Borders) files of a project's videos: ``deg export nwb``.

One file per video, ``<out>/<key>.nwb``, readable with plain pynwb (no extension needed):

* ``acquisition/video``: an ImageSeries whose ``external_file`` is the project's copy of
  the video, relative to the NWB file's folder (NWB's recommendation: the two move
  together), ``rate`` the video's fps (a variable-frame-rate video: ``timestamps``, each
  frame's time), ``starting_frame`` [0].
* ``intervals/behavior_labels`` and ``intervals/behavior_predictions``: TimeIntervals,
  one row per bout with ``start_time``, ``stop_time`` (seconds; frame ``f`` starts at its
  time, ``f / fps`` at a constant rate, and a bout of frames ``[a, b)`` lasts from frame
  ``a``'s time to frame ``b``'s) and ``behavior``.
  Labels: the label file's 1s; predictions: the sequence run's cleaned ethogram. A table
  without bouts is left out (the notes say so): nwbinspector reports empty tables.
* ``processing/behavior/behavior_probabilities``: a TimeSeries (T, K) of the run's
  per-frame probabilities at the video's rate; the K column names are in its
  ``comments`` (comma-separated) and the thresholds in its ``description``.
* ``general/subject``: NWB's Subject (subject_id, species, sex, age) from
  ``project.subject`` in project_config.yaml, ``project.subject.videos[<key>]`` over it, and
  the caller's values (``deg export nwb --subject-id/--species/--sex/--age``) over both.
  What is missing is listed in the notes; nwbinspector reports a file without all four.
* a video of several animals (``project.animals``): one file per video still (the video,
  its clock and session are shared), with the tables and the probabilities per animal,
  ``behavior_labels_animal<i>``, ``behavior_predictions_animal<i>`` and
  ``behavior_probabilities_animal<i>`` (the suffix is the animal's index, stable and a
  valid NWB name; the animal's name, from its tracks, is in each one's description). NWB
  holds one Subject per file: it describes the group (``subject_id`` from
  ``project.subject`` names the pair or cage), and its ``description`` lists the animals by
  index and name with each one's own subject values (``project.subject.animals`` and
  ``project.subject.videos[<key>].animals``, keyed ``animal<i>``), which each per-animal
  table's description repeats. ``per_animal=True`` (``deg export nwb --per-animal``) writes
  instead one file per animal, ``<key>_animal<i>.nwb``, whose Subject is that animal and
  whose tables carry no suffix (NWB's and DANDI's one subject per file).
* ``session_start_time``: the video's ``creation_time`` metadata when it holds a plausible
  one, else when the video was added to the project (else the export's time); the
  ``session_description`` says which. ``experimenter``: the project's labeler, whose label
  file the labels are.

Every frame index becomes seconds through the video's
:class:`~deg_core.video.clock.FrameClock`: its frame times for a variable-frame-rate video
(the series then carry ``timestamps``), else its constant rate.

pynwb is an optional dependency (``uv sync --extra nwb`` / ``pip install deg[nwb]``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import uuid
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deg_core.config import SUBJECT_FIELDS, ConfigError, subject_problem
from deg_core.errors import DegError
from deg_core.fileio import fault_point, output_folder, raise_naming, temp_sibling
from deg_core.interop.animals import animal_names
from deg_core.labels.bouts import bout_table
from deg_core.project.project import Project
from deg_core.project.records import VideoRecord, animal_name
from deg_core.video.clock import FrameClock

INSTALL_HINT = (
    "deg export nwb needs pynwb, an optional dependency: install it with "
    "`uv sync --extra nwb` (or `pip install deg[nwb]`)"
)


def require_pynwb() -> Any:
    """The pynwb module, or a one-line DegError saying how to install it."""
    try:
        import pynwb
    except ImportError:
        raise DegError(INSTALL_HINT) from None
    return pynwb


def series_timing(clock: FrameClock) -> dict[str, Any]:
    """The timing arguments of a pynwb series with one sample per frame: a constant rate,
    or a VFR video's frame times (NWB's ``timestamps``)."""
    if clock.variable:
        return {"timestamps": clock.times}
    return {"rate": float(clock), "starting_time": 0.0}


# nwbinspector's check_subject_species_form
_SPECIES_FORM = re.compile(r"([A-Z][a-z]* [a-z]+)|(http://purl.obolibrary.org/obo/NCBITaxon_\d+)")
_EARLIEST = dt.datetime(1980, 1, 1, tzinfo=dt.UTC)  # before it: an unset camera clock


def _creation_time(video: Path) -> dt.datetime | None:
    """The video's ``creation_time`` metadata (container, else video stream) if plausible:
    after 1980 and not in the future. ffmpeg writes it in UTC."""
    import av

    try:
        with av.open(str(video)) as container:
            tags = [dict(container.metadata)]
            tags += [dict(s.metadata) for s in container.streams.video[:1]]
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return None
    for text in (t.get("creation_time") for t in tags):
        try:
            when = dt.datetime.fromisoformat(str(text))
        except ValueError:
            continue
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        if _EARLIEST < when <= dt.datetime.now(dt.UTC):
            return when
    return None


def _start_time(rec: VideoRecord, video: Path) -> tuple[dt.datetime, str]:
    """The session start (an aware datetime, as NWB needs) and what it is."""
    recorded = _creation_time(video)
    if recorded is not None:
        return recorded, "the video's creation_time metadata"
    unknown = "the video records no plausible creation time"
    try:
        added = dt.datetime.fromisoformat(str(rec.added))
    except ValueError:
        return dt.datetime.now(dt.UTC), f"the time of export ({unknown})"
    # deg records local time without a zone
    added = added if added.tzinfo else added.astimezone()
    return added, f"when the video was added to the deg project, not its recording ({unknown})"


def subject_values(
    project: Project,
    key: str,
    given: Mapping[str, Any] | None = None,
    animal: int | None = None,
) -> dict[str, str]:
    """The NWB subject of video ``key``: ``project.subject``, over it
    ``project.subject.videos[key]`` (null unsets a field), over that ``given``; as text.
    ``animal``: one animal of a video of several: over all of those (which describe the
    group), ``project.subject.animals[animal<i>]``, then ``videos[key].animals[animal<i>]``
    (an animal's own id is never the cage's)."""
    cfg = project.config.project.subject
    video = dict(cfg.videos.get(key) or {})
    per_video = video.pop("animals", None) or {}
    values: dict[str, Any] = {f: getattr(cfg, f) for f in SUBJECT_FIELDS}
    values.update(video)
    values.update(given or {})
    if animal is not None:
        values.update(cfg.animals.get(animal_name(animal)) or {})
        values.update(per_video.get(animal_name(animal)) or {})
    return {f: str(v) for f, v in values.items() if v is not None}


def _animal_subjects(
    project: Project, key: str, names: Sequence[str], given: Mapping[str, Any] | None
) -> list[str]:
    """Per animal, what its own subject values add to the group's ("" if nothing), e.g.
    "subject_id M12, sex F"."""
    group = subject_values(project, key, given)
    out = []
    for i in range(len(names)):
        own = subject_values(project, key, given, animal=i)
        out.append(", ".join(f"{f} {v}" for f, v in own.items() if group.get(f) != v))
    return out


def _subject(
    pynwb: Any, values: dict[str, str], notes: list[str], animals: Sequence[str] = ()
) -> Any:
    """NWB's Subject of ``values`` (None: nothing known); notes say what nwbinspector
    would report. ``animals``: the names of a video's several animals (each with its own
    subject values, if any), listed in the Subject's description (NWB has one Subject per
    file)."""
    missing = [f for f in SUBJECT_FIELDS if f not in values]
    if missing:
        notes.append(
            f"no subject {', '.join(missing)} (project.subject in project_config.yaml, or "
            "--subject-id, --species, --sex, --age)"
        )
    species = values.get("species")
    if species is not None and not _SPECIES_FORM.fullmatch(species):
        notes.append(
            f"species {species!r} is neither a Latin binomial (Mus musculus) nor an NCBI "
            "taxonomy link"
        )
    if len(missing) == len(SUBJECT_FIELDS) and not animals:
        return None
    if animals:
        listed = ", ".join(f"animal{i} ({name})" for i, name in enumerate(animals))
        values = {
            **values,
            "description": f"a group of {len(animals)} animals recorded together: {listed}; "
            "each one's tables and probabilities end in _animal<i>",
        }
    return pynwb.file.Subject(**values)


def _add_bouts(
    pynwb: Any,
    nwb: Any,
    name: str,
    what: str,
    array: np.ndarray,
    behaviors: list[str],
    clock: FrameClock,
) -> bool:
    """Add the TimeIntervals table ``name`` to ``nwb``: one row per bout of ``array`` (T, K)
    (runs of 1). False, adding nothing, when there is no bout: nwbinspector reports an
    empty table, and several of its checks fail on one."""
    bouts = bout_table(array, behaviors)
    if not bouts:
        return False
    table = pynwb.epoch.TimeIntervals(name=name, description=what)
    table.add_column(name="behavior", description="the behaviour of the bout")
    for bout in bouts:
        table.add_row(
            start_time=clock.seconds(bout["start"]),
            stop_time=clock.seconds(bout["stop"]),
            behavior=bout["behavior"],
        )
    nwb.add_time_intervals(table)
    return True


def video_nwb(
    project: Project,
    key: str,
    out: Path,
    run: str = "latest",
    subject: Mapping[str, Any] | None = None,
    animal: int | None = None,
) -> tuple[Any, list[str]]:
    """The NWBFile of one video (to be written into ``out``) and notes on what it lacks.
    ``subject``: NWB subject fields over the project's (:func:`subject_values`).
    ``animal``: in a video of several animals, a file of that animal alone (its Subject,
    tables without a suffix); None: every animal in one file."""
    pynwb = require_pynwb()
    rec = project.record(key).probe()
    clock, video = rec.clock(), rec.video
    if clock <= 0 or video is None:
        raise DegError(f"the video or fps of {key!r} is unknown", rec.folder)
    notes: list[str] = []
    subject_notes: list[str] = []  # after the data's
    n = project.n_animals(key)
    animals: list[int | None] = [None] if n == 1 else list(range(n))
    names = animal_names(project, key) if n > 1 else []
    own = _animal_subjects(project, key, names, subject) if n > 1 else []
    if animal is not None:
        animals = [project.check_animal(key, animal)]
        values = subject_values(project, key, subject, animal)
        listed: list[str] = []
        about = f", animal{animal} ({names[animal]})" if n > 1 else ""
        if n > 1 and "subject_id" not in own[animal]:
            subject_notes.append(
                f"animal{animal} has no subject_id of its own (project.subject.animals or "
                f"project.subject.videos.{key}.animals)"
            )
    else:
        values = subject_values(project, key, subject)
        listed = [f"{name}: {o}" if o else name for name, o in zip(names, own, strict=True)]
        about = ""
    has_labels = any(project.label_path(key, a).exists() for a in animals)
    labeler = project.config.project.labeler
    start, what_start = _start_time(rec, video)
    nwb = pynwb.NWBFile(
        session_description=f"deg project {project.name}, video {key}{about}; "
        f"session_start_time: {what_start}",
        identifier=str(uuid.uuid4()),
        session_start_time=start,
        experimenter=[labeler] if labeler and has_labels else None,
        subject=_subject(pynwb, values, subject_notes, listed),
        source_script="deg export nwb",
        source_script_file_name="deg_core/interop/nwb.py",
    )
    nwb.add_acquisition(
        pynwb.image.ImageSeries(
            name="video",
            description=f"the video ({rec.frames} frames at {float(clock):g} fps)",
            external_file=[os.path.relpath(video.absolute(), out)],
            format="external",
            starting_frame=[0],
            num_samples=rec.n_frames(),  # the data live in the video file
            unit="n.a.",
            **series_timing(clock),
        )
    )
    behaviors = project.behaviors
    from deg_core.interop.predictions import predicted

    module = None
    missing: dict[int | None, str] = {}  # animal: why it has no predictions
    for a in animals:
        alone = a is None or animal is not None
        suffix = "" if alone else f"_animal{a}"  # table names: a valid NWB name
        of = "" if a is None else f" of animal{a} ({names[a]}{'; ' + own[a] if own[a] else ''})"
        who = "" if alone else f"animal{a}: "
        if has_labels:
            labels = project.labels(key, animal=a).array
            what = f"bouts{of} labelled by hand" + (f" (labeler {labeler})" if labeler else "")
            table = f"behavior_labels{suffix}"
            if not _add_bouts(pynwb, nwb, table, what, labels, behaviors, clock):
                notes.append(f"{who}no labelled bouts")
        elif a is None or a == animals[0]:
            notes.append("no labels")
        try:
            pred = predicted(project, key, run, animal=a)
        except DegError as e:
            missing[a] = e.problem
            continue
        what = f"bouts{of} predicted by {pred.run} (thresholded, short bouts removed)"
        table = f"behavior_predictions{suffix}"
        if not _add_bouts(pynwb, nwb, table, what, pred.ethogram, behaviors, clock):
            notes.append(f"{who}no predicted bouts")
        if module is None:
            module = nwb.create_processing_module(name="behavior", description="deg's outputs")
        thresholds = ", ".join(
            f"{b}={t:.4g}" for b, t in zip(behaviors, pred.thresholds, strict=True)
        )
        module.add(
            pynwb.TimeSeries(
                name=f"behavior_probabilities{suffix}",
                description=f"per-frame P(behaviour){of} of {pred.run}; thresholds {thresholds}",
                comments=",".join(behaviors),
                data=pred.probs,
                unit="probability",
                **series_timing(clock),
            )
        )
    if len(set(missing.values())) == 1 and len(missing) == len(animals):  # the same for all
        notes.append(f"no predictions ({next(iter(missing.values()))})")
    else:
        notes += [f"animal{a}: no predictions ({why})" for a, why in missing.items()]
    return nwb, notes + subject_notes


def export_nwb(
    project: Project,
    videos: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    *,
    run: str = "latest",
    subject: Mapping[str, Any] | None = None,
    per_animal: bool = False,
) -> dict[Path, list[str]]:
    """Write ``<out_dir>/<key>.nwb`` per video (default ``PROJECT/exports``), each atomically;
    {path: notes}. Every file is built in memory before the first is written.

    ``subject``: {field: value} of subject_id, species, sex (M, F, U, O) and age (ISO 8601
    duration, e.g. P90D) for every video, over the project's ``project.subject``.
    ``per_animal``: a video of several animals gives one file per animal,
    ``<key>_animal<i>.nwb``, each with that animal's Subject; a one-animal video one file.

    Raises:
        ConfigError: one line naming a bad subject value, before anything is written.
    """
    pynwb = require_pynwb()
    problem = subject_problem(subject or {}, lambda f: f"subject {f}")
    if problem:
        raise ConfigError(problem)
    keys = [project.resolve_key(v) for v in videos] if videos else project.video_keys()
    out = (Path(out_dir) if out_dir is not None else project.root / "exports").absolute()
    built = {}
    for key in keys:
        n = project.n_animals(key)
        if per_animal and n > 1:
            for i in range(n):
                built[out / f"{key}_{animal_name(i)}.nwb"] = video_nwb(
                    project, key, out, run, subject, animal=i
                )
        else:
            built[out / f"{key}.nwb"] = video_nwb(project, key, out, run, subject)
    with output_folder(out):  # no empty exports/ after a failure, no dead writers' temporaries
        for path, (nwb, _) in built.items():
            tmp = temp_sibling(path)
            try:
                with warnings.catch_warnings():  # about the temporary name, not the final one
                    warnings.filterwarnings("ignore", message=".*does not end in '.nwb'")
                    with pynwb.NWBHDF5IO(str(tmp), "w") as io:
                        io.write(nwb)
                fault_point()
                os.replace(tmp, path)
            except BaseException as e:  # HDF5's full disk names the temporary, or nothing
                raise_naming(e, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
    return {path: notes for path, (_, notes) in built.items()}
