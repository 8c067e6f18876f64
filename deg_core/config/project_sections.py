"""The project's own section (who and what: the animals, NWB's subject) and its checks.

Split from :mod:`deg_core.config.sections` (the stage sections and :class:`DegConfig`),
which re-exports every name here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from deg_core.config.fields import POSITIVE_INT, Range, _f

__all__ = [
    "SEXES",
    "SUBJECT_FIELDS",
    "ProjectSection",
    "SubjectSection",
    "age_problem",
    "sex_problem",
    "species_problem",
    "subject_id_problem",
    "subject_problem",
]

# NWB's Subject (deg export nwb): sex as NWB and nwbinspector want it; age an ISO 8601
# duration (P90D, P12W, P1Y6M, PT36H), or a range (P90D/P120D; P90D/: at least; /P9D: at most)
SEXES = {"M": "male", "F": "female", "U": "unknown", "O": "other"}
SUBJECT_FIELDS = ("subject_id", "species", "sex", "age")
_NUM = r"\d+(\.\d+)?"
_DURATION = (  # P, then at least one part: nwbinspector's pattern
    rf"P(?!$|/)({_NUM}Y)?({_NUM}M)?({_NUM}W)?({_NUM}D)?(T(?=\d)({_NUM}H)?({_NUM}M)?({_NUM}S)?)?"
)
_AGE_RE = re.compile(rf"^{_DURATION}$|^{_DURATION}/({_DURATION})?$|^/{_DURATION}$")


def sex_problem(value: Any, key: str) -> str | None:
    if value is None or value in SEXES:
        return None
    options = ", ".join(f"{k} ({v})" for k, v in SEXES.items())
    return f"{key} must be one of {options}, got {value!r}"


def age_problem(value: Any, key: str) -> str | None:
    if value is None or (isinstance(value, str) and _AGE_RE.match(value)):
        return None
    return (
        f"{key} must be an ISO 8601 duration such as P90D (90 days), P12W or P1Y6M, or a "
        f"range P90D/P120D, got {value!r}"
    )


def subject_id_problem(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        return f"{key} must be a non-empty text, got {value!r}"
    if "/" in str(value):
        return f"{key} must not contain '/' (DANDI builds paths from it), got {value!r}"
    return None


def species_problem(value: Any, key: str) -> str | None:
    if value is None or (isinstance(value, str) and value.strip()):
        return None
    return f"{key} must be a non-empty text such as Mus musculus, got {value!r}"


_SUBJECT_CHECKS = {
    "subject_id": subject_id_problem,
    "species": species_problem,
    "sex": sex_problem,
    "age": age_problem,
}


def subject_problem(values: Mapping[Any, Any], name: Callable[[str], str]) -> str | None:
    """What is wrong with NWB subject values {field: value} (None: nothing); ``name(field)``
    is how the line names a field (a dotted key, a CLI option)."""
    for f, value in values.items():
        if f not in _SUBJECT_CHECKS:
            return f"unknown subject field {name(str(f))!r} (known: {', '.join(SUBJECT_FIELDS)})"
        problem = _SUBJECT_CHECKS[f](value, name(f))
        if problem:
            return problem
    return None


def _subject_animals_problem(value: Any, key: str) -> str | None:
    """``{animal<i>: {subject fields}}``: each key an animal's name, each value fields."""
    if not isinstance(value, Mapping):
        return f"{key} must map animal names (animal0, animal1, ...) to subject fields"
    for animal, values in value.items():
        if not re.fullmatch(r"animal\d+", str(animal)):
            return f"{key}.{animal}: animals are named animal0, animal1, ..."
        if not isinstance(values, Mapping):
            return f"{key}.{animal} must map subject fields to values, got {values!r}"
        where = f"{key}.{animal}."
        problem = subject_problem(values, where.__add__)
        if problem:
            return problem
    return None


def _subject_videos_problem(value: Any, key: str) -> str | None:
    for video, values in value.items():
        if not isinstance(values, Mapping):
            return f"{key}.{video} must map subject fields to values, got {values!r}"
        values = dict(values)
        animals = values.pop("animals", None)
        where = f"{key}.{video}."
        problem = subject_problem(values, where.__add__)
        if problem is None and animals is not None:
            problem = _subject_animals_problem(animals, f"{key}.{video}.animals")
        if problem:
            return problem
    return None


@dataclass
class SubjectSection:
    """The animal in the videos: NWB's Subject in ``deg export nwb``'s files (provenance;
    no stage reads it). ``videos`` sets it per video, over the project-wide values."""

    subject_id: str | int | None = _f(
        None, "the animal's id (NWB subject_id)", Range(check=subject_id_problem)
    )
    species: str | None = _f(
        None,
        "Latin binomial such as Mus musculus, or an NCBI taxonomy link",
        Range(check=species_problem),
    )
    sex: str | None = _f(None, "M, F, U (unknown) or O (other)", Range(check=sex_problem))
    age: str | None = _f(
        None,
        "ISO 8601 duration at recording, e.g. P90D (90 days), P12W; a range P90D/P120D",
        Range(check=age_problem),
    )
    videos: dict[str, dict[str, Any]] = _f(
        {},
        "per video key, any of subject_id, species, sex, age over the values above, "
        "e.g. {mouse1: {subject_id: m1, sex: F}}; in a video of several animals also "
        "animals: {animal0: {subject_id: m12}, animal1: {...}}",
        Range(check=_subject_videos_problem),
    )
    animals: dict[str, dict[str, Any]] = _f(
        {},
        "in videos of several animals, per animal (animal0, animal1, ...) any of subject_id, "
        "species, sex, age over the values above (videos.<key>.animals over these)",
        Range(check=_subject_animals_problem),
    )


def _animals_videos_problem(value: Any, key: str) -> str | None:
    for video, n in value.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            return f"{key}.{video} must be a number of animals >= 1, got {n!r}"
    return None


@dataclass
class ProjectSection:
    """Who and what the project is about."""

    name: str = _f("", "project name; the folder is <name>_deepethogram")
    labeler: str | None = _f(None, "who labels (recorded for provenance)")
    class_names: list[str] = _f([], "behaviours, background first (background is implicit)")
    exclusive: bool = _f(
        False,
        "one behaviour (or background) per frame: the feature and sequence stages train a "
        "softmax over background + behaviours and decide by arg-max; the Labeler keeps one "
        "behaviour per frame",
    )
    subject: SubjectSection = field(default_factory=SubjectSection)
    animals: int = _f(
        1,
        "animals in each video (several: their tracks in DATA/<key>/<key>_animals.h5, deg tracks)",
        POSITIVE_INT,
    )
    animals_per_video: dict[str, int] = _f(
        {},
        "per video key, its number of animals over project.animals, e.g. {pair3: 3}",
        Range(check=_animals_videos_problem),
    )

    # DEG writes these; deg derives them from the folder so a moved project still works.
    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"path", "config_file", "data_path", "model_path", "pretrained_path"}
    )
