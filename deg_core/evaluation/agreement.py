"""Agreement between annotators, and between the model and each annotator: ``deg agreement``.

Two label sets of a video, ``a`` and ``b`` (each ``(T, K)`` int8 in {1, 0, -1}), are
compared per behaviour on the frames BOTH labelled (-1 on either side is left out):

* the 2x2 confusion ``C[k, i, j]`` = frames where ``a`` says ``i`` and ``b`` says ``j``
  (0 absent, 1 present) — every frame-level number below is a function of it, so counts
  from several videos simply add up;
* percent agreement ``(C00 + C11) / n`` and Cohen's kappa ``(po - pe) / (1 - pe)`` with
  ``pe`` from the two annotators' marginals; kappa is NaN when ``pe == 1`` (both say the
  same single value everywhere: chance agreement is already perfect, kappa undefined);
* bout agreement: bouts (runs of present frames, cut at frames either side left
  unlabelled) matched one-to-one by IoU >= ``min_overlap`` (evaluate.bout_f1); bout F1 =
  ``2 matched / (bouts_a + bouts_b)``, symmetric in the two annotators.

"overall" pools every behaviour's cells and bouts. The model enters as the annotator
``model``: the latest sequence run's thresholded, cleaned predictions, so the table shows
whether the model disagrees with people more than people disagree with each other.

A video of several animals is compared animal by animal: each animal's label sets (and the
model's predictions of that animal) against each other, pooled over videos per animal index,
each pair's result labelled with its animal (``animal1: tester vs bob``); one-animal videos
form the unlabelled group they always did.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from deg_core.errors import DegError, ProjectError
from deg_core.evaluation.evaluate import bout_f1
from deg_core.evaluation.postprocess import postprocess
from deg_core.fileio import finite_or_none
from deg_core.labels.labels import read_labels
from deg_core.project.outputs import read_group
from deg_core.project.project import Project
from deg_core.project.records import animal_name
from deg_core.project.runs import load_run

__all__ = [
    "MODEL",
    "PairAgreement",
    "PairCounts",
    "cohen_kappa",
    "count_pair",
    "format_agreement",
    "kappa_from_confusion",
    "model_predictions",
    "project_agreement",
]

MODEL = "model"  # the model's name among annotators (a human "model" is refused with it)


# --------------------------------------------------------------------------- arrays


def kappa_from_confusion(c: np.ndarray) -> float:
    """Cohen's kappa of a 2x2 confusion (rows: a's 0/1, columns: b's 0/1); NaN if undefined."""
    c = np.asarray(c, dtype=np.float64)
    n = c.sum()
    if n == 0:
        return float("nan")
    po = (c[0, 0] + c[1, 1]) / n
    pe = (c[0].sum() * c[:, 0].sum() + c[1].sum() * c[:, 1].sum()) / n**2
    return float((po - pe) / (1 - pe)) if pe < 1 else float("nan")


def _confusion(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(2, 2) int64 over the frames both label: [a value, b value]."""
    both = (a != -1) & (b != -1)
    return np.bincount(2 * a[both].astype(np.int64) + b[both], minlength=4).reshape(2, 2)


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two (T,) label vectors over frames both labelled (not -1)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"expected two (T,) vectors, got {a.shape} and {b.shape}")
    return kappa_from_confusion(_confusion(a, b))


@dataclass
class PairCounts:
    """What two annotators' labels of one or more videos agree on, per behaviour.

    ``confusion``: (K, 2, 2) int64 frames, [k, a's value, b's value];
    ``bouts_a``, ``bouts_b``, ``matched``: (K,) int64 bout counts.
    """

    behaviors: list[str]
    confusion: np.ndarray
    bouts_a: np.ndarray
    bouts_b: np.ndarray
    matched: np.ndarray

    @classmethod
    def zeros(cls, behaviors: Sequence[str]) -> PairCounts:
        k = len(behaviors)
        z = np.zeros(k, np.int64)
        return cls(list(behaviors), np.zeros((k, 2, 2), np.int64), z, z.copy(), z.copy())

    def __add__(self, other: PairCounts) -> PairCounts:
        if other.behaviors != self.behaviors:
            raise ValueError("cannot add agreement counts of different behaviours")
        return PairCounts(
            self.behaviors,
            self.confusion + other.confusion,
            self.bouts_a + other.bouts_a,
            self.bouts_b + other.bouts_b,
            self.matched + other.matched,
        )

    def rows(self) -> list[dict[str, Any]]:
        """One dict per behaviour, then ``"overall"`` (pooled): behavior, frames (labelled
        by both), kappa, agreement (fraction), bouts_a, bouts_b, matched, bout_f1,
        confusion ([[00, 01], [10, 11]]). NaN where undefined."""
        names = [*self.behaviors, "overall"]
        conf = [*self.confusion, self.confusion.sum(axis=0)]
        ba, bb, m = (np.append(x, x.sum()) for x in (self.bouts_a, self.bouts_b, self.matched))
        out = []
        for i, name in enumerate(names):
            c = conf[i]
            n = int(c.sum())
            out.append(
                {
                    "behavior": name,
                    "frames": n,
                    "kappa": kappa_from_confusion(c),
                    "agreement": float(c[0, 0] + c[1, 1]) / n if n else float("nan"),
                    "bouts_a": int(ba[i]),
                    "bouts_b": int(bb[i]),
                    "matched": int(m[i]),
                    "bout_f1": float(2 * m[i] / (ba[i] + bb[i])) if ba[i] + bb[i] else float("nan"),
                    "confusion": c.tolist(),
                }
            )
        return out


def count_pair(
    a: np.ndarray, b: np.ndarray, behaviors: Sequence[str], min_overlap: float = 0.5
) -> PairCounts:
    """Agreement counts of two (T, K) label arrays of one video (see the module docstring)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != len(behaviors):
        raise ValueError(
            f"label arrays must both be (T, {len(behaviors)}), got {a.shape} and {b.shape}"
        )
    counts = PairCounts.zeros(behaviors)
    for k in range(a.shape[1]):
        counts.confusion[k] = _confusion(a[:, k], b[:, k])
        # bouts on the frames both labelled: -1 on either side breaks a bout on both
        ref = np.where(b[:, k] == -1, -1, a[:, k])
        other = np.where(ref == -1, 0, b[:, k])
        got = bout_f1(other, ref, min_overlap)
        counts.bouts_a[k], counts.bouts_b[k] = got["n_true"], got["n_pred"]
        counts.matched[k] = got["n_matched"]
    return counts


# --------------------------------------------------------------------------- a project


@dataclass
class PairAgreement:
    """Agreement of annotators ``a`` and ``b`` over ``videos`` (those both labelled); of
    animal ``animal`` of each (a video of several animals), None for one-animal videos."""

    a: str
    b: str
    videos: list[str]
    counts: PairCounts
    animal: int | None = None

    @property
    def title(self) -> str:
        """``a vs b``, after its animal's name on videos of several (``animal1: a vs b``)."""
        pair = f"{self.a} vs {self.b}"
        return pair if self.animal is None else f"{animal_name(self.animal)}: {pair}"

    def rows(self) -> list[dict[str, Any]]:
        """:meth:`PairCounts.rows`, each with ``a`` and ``b`` (and ``animal``, an index, on
        videos of several animals) added."""
        who: dict[str, Any] = {} if self.animal is None else {"animal": self.animal}
        return [{**who, "a": self.a, "b": self.b, **r} for r in self.counts.rows()]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: a, b, (animal), videos, rows (NaN as None)."""
        who: dict[str, Any] = {} if self.animal is None else {"animal": self.animal}
        rows = [
            {k: finite_or_none(v) if isinstance(v, float) else v for k, v in r.items()}
            for r in self.rows()
        ]
        return {**who, "a": self.a, "b": self.b, "videos": self.videos, "rows": rows}


def model_predictions(project: Project, key: str, animal: int | None = None) -> np.ndarray | None:
    """(T, K) int8 thresholded + cleaned predictions of the latest sequence run, or None.

    From the run's P in ``<key>_outputs.h5`` with its thresholds and minimum bout lengths;
    else the predictions CSV ``deg infer sequence`` wrote. ``animal``: that animal's of a
    video of several (its own P and thresholds, else ``<key>_animal<i>_predictions.csv``).
    """
    rec = project.record(key)
    try:
        info = load_run("latest", project.models_dir, "sequence", behaviors=project.behaviors)
        if animal is None:
            probs, thresholds = read_group(rec.outputs_path, info.name, ("P",))["P"], None
        else:
            got = read_group(rec.outputs_path, info.name, ("P", "thresholds"), animal=animal)
            probs, thresholds = got["P"], got["thresholds"]
        if probs.shape == (rec.n_frames(), len(project.behaviors)):
            chosen = info.thresholds if thresholds is None else thresholds
            return postprocess(probs, chosen, info.min_lengths).astype(np.int8)
    except DegError:  # no run, or this video not inferred by it
        pass
    path = rec.predictions_path if animal is None else rec.animal_predictions_path(animal)
    if path.exists():
        return read_labels(path, project.behaviors, rec.n_frames()).array
    return None


def project_agreement(
    project: Project,
    videos: Sequence[str] | None = None,
    labelers: Sequence[str] | None = None,
    *,
    model: bool = False,
    min_overlap: float = 0.5,
    animal: int | None = None,
) -> list[PairAgreement]:
    """Agreement of every pair of ``labelers`` (default: every annotator of ``videos``,
    default all videos) and, with ``model``, of the model with each of them.

    A pair is scored on the videos both labelled. On videos of several animals, per animal:
    a result per animal index and pair, over that animal of each video (``animal``: only
    that animal, checked against every video; one-animal videos have only animal 0).
    Raises a one-line ProjectError when there is nothing to compare (fewer than two
    annotators of any animal, a named one without labels, no predictions for ``model``).
    """
    if not 0.0 < min_overlap <= 1.0:
        raise ProjectError(f"the bout IoU to match must be in (0, 1], got {min_overlap}")
    keys = [project.resolve_key(v) for v in videos] if videos else project.video_keys()
    units = _units(project, keys, animal)  # (video, animal or None)
    who = {u: project.annotators(u[0], animal=u[1]) for u in units}
    found = list(dict.fromkeys(n for u in units for n in who[u]))
    names = list(dict.fromkeys(labelers)) if labelers else found
    unknown = [n for n in names if n not in found]
    if unknown:
        raise ProjectError(
            f"no labels by {', '.join(unknown)} in {', '.join(keys) or 'no video'} "
            f"(annotators: {', '.join(found) or 'none'})"
        )
    if model and MODEL in names:
        raise ProjectError(f"an annotator is called {MODEL!r}: compare with --labelers instead")
    preds = {}
    if model:
        preds = {u: p for u in units if (p := model_predictions(project, *u)) is not None}
        if not preds:
            raise ProjectError(
                f"no model predictions for {', '.join(keys)}: run `deg infer sequence "
                f"{project.root}` first"
            )
    groups = list(dict.fromkeys(a for _, a in units))  # None (one-animal videos) first
    groups.sort(key=lambda a: -1 if a is None else a)
    out = []
    for group in groups:
        part = [u for u in units if u[1] == group]
        here = [n for n in names if any(n in who[u] for u in part)]
        pairs = list(itertools.combinations(here, 2))
        if model and any(u in preds for u in part):
            pairs += [(n, MODEL) for n in here]
        for a, b in pairs:
            counts, used = PairCounts.zeros(project.behaviors), []
            for u in part:
                if a not in who[u] or (b not in who[u] and not (b == MODEL and u in preds)):
                    continue
                key, animal_u = u
                la = project.annotator_labels(key, a, animal=animal_u).array
                if b == MODEL:
                    lb = preds[u]
                else:
                    lb = project.annotator_labels(key, b, animal=animal_u).array
                counts = counts + count_pair(la, lb, project.behaviors, min_overlap)
                used.append(key)
            out.append(PairAgreement(a, b, used, counts, group))
    if not out:
        raise ProjectError(
            f"agreement needs two annotators or --model; {', '.join(keys) or 'no video'} "
            f"has labels by {', '.join(found) or 'nobody'}"
        )
    return out


def _units(
    project: Project, keys: Sequence[str], animal: int | None
) -> list[tuple[str, int | None]]:
    """(video, animal) to compare: (key, None) for a one-animal video, else (key, i) for
    each of its animals, or for ``animal`` only (a one-line ProjectError where a video
    lacks it)."""
    out: list[tuple[str, int | None]] = []
    for k in keys:
        chosen = project.check_animal(k, animal) if animal is not None else None
        n = project.n_animals(k)
        if n == 1:
            out.append((k, None))
        else:
            out += [(k, a) for a in ([chosen] if chosen is not None else range(n))]
    return out


# --------------------------------------------------------------------------- text


def _num(x: float, fmt: str) -> str:
    return "—" if x != x else format(x, fmt)  # x != x: NaN


def format_agreement(results: Sequence[PairAgreement]) -> str:
    """The readable table ``deg agreement`` prints (one block per pair), and whether the
    model's overall kappa lies within the annotators' range."""
    head = ["behaviour", "frames", "kappa", "agree", "bouts a/b", "matched", "bout F1"]
    head.append("a0b0 a0b1 a1b0 a1b1")
    lines = []
    for r in results:
        where = ", ".join(r.videos) if r.videos else "no video labelled by both"
        lines.append(f"{r.title}  ({where})")
        table = [head]
        for row in r.counts.rows():
            c = row["confusion"]
            table.append(
                [
                    row["behavior"],
                    str(row["frames"]),
                    _num(row["kappa"], ".3f"),
                    _num(100 * row["agreement"], ".1f") + ("%" if row["frames"] else ""),
                    f"{row['bouts_a']}/{row['bouts_b']}",
                    str(row["matched"]),
                    _num(row["bout_f1"], ".3f"),
                    " ".join(f"{v:>4}" for v in (c[0][0], c[0][1], c[1][0], c[1][1])),
                ]
            )
        widths = [max(len(t[i]) for t in table) for i in range(len(head))]
        for t in table:
            cells = [t[0].ljust(widths[0])] + [
                s.rjust(w) for s, w in zip(t[1:], widths[1:], strict=True)
            ]
            lines.append("  " + "  ".join(cells).rstrip())
        lines.append("")
    humans = [_overall_kappa(r) for r in results if MODEL not in (r.a, r.b)]
    machine = [_overall_kappa(r) for r in results if MODEL in (r.a, r.b)]
    humans, machine = [k for k in humans if k == k], [k for k in machine if k == k]
    if humans and machine:
        within = min(machine) >= min(humans)
        lines.append(
            f"overall kappa: between annotators {min(humans):.3f}–{max(humans):.3f}, "
            f"model vs annotators {min(machine):.3f}–{max(machine):.3f} "
            f"({'within' if within else 'below'} human variability)"
        )
    return "\n".join(lines).rstrip() + "\n"


def _overall_kappa(r: PairAgreement) -> float:
    return float(r.counts.rows()[-1]["kappa"])
