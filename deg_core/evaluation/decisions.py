"""From a model's per-frame logits to the ethogram: decisions that travel between videos.

A :class:`Decision` is everything between a run's logits and its predictions: per-behaviour
thresholds (multi-label) or per-class offsets for an arg-max (exclusive behaviours), the
optional per-video standardisation of the scores, and the minimum bout lengths. It is
fitted by :func:`fit_decision` on predictions each labelled video got from a model that did
not train on it (out of fold), pooled, so no single validation video decides alone.

Shapes: ``logits`` ``(T, K)`` float per video, K behaviours (background excluded);
``labels`` ``(T, K)`` in {1, 0, -1}; predictions ``(T, K)`` int8 in {0, 1}.

Exclusive behaviours use a softmax over background + K behaviours whose background logit is
fixed at 0: a model keeps its K outputs, ``logits[:, k]`` is the log-odds of behaviour k
against background, and P(behaviour k) = exp(l_k) / (1 + sum_j exp(l_j)).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deg_core.evaluation.metrics import fit_thresholds, label_masks
from deg_core.evaluation.postprocess import postprocess

__all__ = [
    "Decision",
    "decision_of",
    "exclusive_targets",
    "fit_decision",
    "probabilities",
    "standardise",
]

# a behaviour predicted on at least this fraction of labelled frames ...
GUARD_FRACTION = 0.9
# ... while labelled present on at most this fraction is refused (the guard)
GUARD_PREVALENCE = 0.5
_OFFSET_GRID = np.arange(-2.0, 2.0 + 1e-9, 0.25)
# macro F1 an arg-max offset must buy per logit of mean absolute offset (see _fit_offsets)
OFFSET_PENALTY = 0.02


def probabilities(logits: np.ndarray, exclusive: bool) -> np.ndarray:
    """``(T, K)`` float32 probabilities: sigmoid per behaviour, or (exclusive) the softmax
    over background (logit 0) + behaviours, background's column left out."""
    z = np.asarray(logits, dtype=np.float64)
    if not exclusive:
        return (1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))).astype(np.float32)
    top = np.maximum(z.max(axis=1, keepdims=True, initial=0.0), 0.0)
    e = np.exp(z - top)
    return (e / (np.exp(-top) + e.sum(axis=1, keepdims=True))).astype(np.float32)


def standardise(logits: np.ndarray) -> np.ndarray:
    """Each behaviour's logits z-scored over the frames of one video ``(T, K)``.

    A model's scores shift from video to video (animal, light, camera) while its ranking
    within a video travels; standardising keeps the ranking and drops the shift."""
    z = np.asarray(logits, dtype=np.float64)
    if len(z) < 2:
        return np.zeros_like(z, dtype=np.float32)
    sd = z.std(axis=0)
    return ((z - z.mean(axis=0)) / np.where(sd > 1e-6, sd, 1.0)).astype(np.float32)


def exclusive_targets(labels: np.ndarray) -> np.ndarray:
    """``(T,)`` int64 class per frame for exclusive behaviours: 0 background (every
    behaviour labelled 0), k + 1 behaviour k (exactly one 1), -1 where the frame is not
    fully labelled or holds several behaviours (ignored)."""
    is_pos, is_neg = label_masks(labels)
    full = (is_pos | is_neg).all(axis=1)
    n_pos = is_pos.sum(axis=1)
    out = np.where(n_pos == 0, 0, is_pos.argmax(axis=1) + 1).astype(np.int64)
    out[~full | (n_pos > 1)] = -1
    return out


@dataclass
class Decision:
    """How a run turns logits into predictions (see the module docstring).

    ``thresholds`` (K,): multi-label thresholds on P, or with ``normalise`` on the sigmoid
    of the per-video standardised logits. ``offsets`` (K,): exclusive only, added to each
    behaviour's (optionally standardised) logit before the arg-max against background (0).
    ``notes``: what fitting refused or replaced, one line each (the run's record).
    """

    exclusive: bool
    thresholds: np.ndarray
    offsets: np.ndarray
    min_lengths: np.ndarray
    normalise: bool = False
    source: str = "val"
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ applying
    def scores(self, logits: np.ndarray) -> np.ndarray:
        """``(T, K)`` the logits the decision compares: standardised per video when
        ``normalise``, else as given."""
        return standardise(logits) if self.normalise else np.asarray(logits, np.float32)

    def video_thresholds(self, logits: np.ndarray) -> np.ndarray:
        """``(K,)`` thresholds on this video's P equivalent to the decision (multi-label):
        ``z > logit(t)`` is ``l > mean + sd * logit(t)``. Exclusive: the P at which a
        behaviour beats background alone (display only; the arg-max decides)."""
        if self.exclusive:
            return (1.0 / (1.0 + np.exp(self.offsets))).astype(np.float32)
        if not self.normalise:
            return self.thresholds.astype(np.float32)
        z = np.asarray(logits, np.float64)
        mean, sd = z.mean(axis=0), z.std(axis=0)
        sd = np.where(sd > 1e-6, sd, 1.0)
        t = np.clip(self.thresholds, 1e-6, 1 - 1e-6)
        return (1.0 / (1.0 + np.exp(-(mean + sd * np.log(t / (1 - t)))))).astype(np.float32)

    def raw(self, logits: np.ndarray) -> np.ndarray:
        """``(T, K)`` int8 predictions before bout cleaning."""
        s = self.scores(logits)
        if not self.exclusive:
            return (1.0 / (1.0 + np.exp(-s)) > self.thresholds[None]).astype(np.int8)
        return one_hot(argmax_class(s, self.offsets), s.shape[1])

    def decide(self, logits: np.ndarray) -> np.ndarray:
        """``(T, K)`` int8 final predictions of one video: decided, then short bouts cleaned
        (exclusive: a too-short run joins the neighbour its scores favour, so every frame
        keeps exactly one class)."""
        logits = np.asarray(logits, np.float32)
        if not self.exclusive:
            probs = probabilities(logits, exclusive=False)
            return postprocess(probs, self.video_thresholds(logits), self.min_lengths)
        s = self.scores(logits).astype(np.float64) + self.offsets[None]
        full = np.concatenate([np.zeros((len(s), 1)), s], axis=1)  # background first
        cls = clean_classes(full.argmax(axis=1), full, np.r_[1, self.min_lengths])
        return one_hot(cls, s.shape[1])

    # ------------------------------------------------------------------ records
    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-ready (a checkpoint's ``extra``)."""
        return {
            "exclusive": bool(self.exclusive),
            "thresholds": [float(x) for x in self.thresholds],
            "offsets": [float(x) for x in self.offsets],
            "min_lengths": [int(x) for x in self.min_lengths],
            "normalise": bool(self.normalise),
            "source": self.source,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decision:
        k = len(d["thresholds"])
        return cls(
            exclusive=bool(d.get("exclusive", False)),
            thresholds=np.asarray(d["thresholds"], np.float64),
            offsets=np.asarray(d.get("offsets") or [0.0] * k, np.float64),
            min_lengths=np.asarray(d.get("min_lengths") or [1] * k, np.int64),
            normalise=bool(d.get("normalise", False)),
            source=str(d.get("source", "val")),
            notes=list(d.get("notes", [])),
        )

    @classmethod
    def thresholded(cls, thresholds: Any, min_lengths: Any = None) -> Decision:
        """A plain per-behaviour threshold decision (runs made before decisions existed)."""
        th = np.asarray(thresholds, np.float64)
        ml = np.ones(len(th), np.int64) if min_lengths is None else np.asarray(min_lengths)
        return cls(False, th, np.zeros(len(th)), ml.astype(np.int64))


# --------------------------------------------------------------------------- exclusive helpers


def argmax_class(scores: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``(T,)`` class per frame: 0 background (score 0), k + 1 behaviour k."""
    s = np.asarray(scores, np.float64) + np.asarray(offsets)[None]
    full = np.concatenate([np.zeros((len(s), 1)), s], axis=1)
    return full.argmax(axis=1)


def one_hot(cls: np.ndarray, k: int) -> np.ndarray:
    """``(T,)`` classes (0 background) -> ``(T, K)`` int8 behaviour columns."""
    out = np.zeros((len(cls), k + 1), np.int8)
    out[np.arange(len(cls)), cls] = 1
    return out[:, 1:]


def clean_classes(cls: np.ndarray, scores: np.ndarray, min_lengths: np.ndarray) -> np.ndarray:
    """Merge runs shorter than their class's minimum into a neighbouring run.

    ``cls`` (T,) classes, ``scores`` (T, C) with background as column 0, ``min_lengths``
    (C,). Shortest runs first; a short run takes the class of the neighbour whose scores
    over the run are higher. Every frame keeps exactly one class."""
    cls = np.asarray(cls).copy()
    for _ in range(len(cls)):  # each pass removes at least one short run
        runs = _runs(cls)
        short = [r for r in runs if r[1] - r[0] < min_lengths[cls[r[0]]]]
        if not short or len(runs) == 1:
            break
        start, stop = min(short, key=lambda r: r[1] - r[0])
        options = [cls[start - 1]] if start > 0 else []
        if stop < len(cls):
            options.append(cls[stop])
        best = max(options, key=lambda c: float(scores[start:stop, c].sum()))
        cls[start:stop] = best
    return cls


def _runs(cls: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(cls)) + 1
    bounds = np.r_[0, edges, len(cls)]
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


# --------------------------------------------------------------------------- fitting


def _macro_f1_classes(pred: np.ndarray, target: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class F1 ``(C,)`` of class vectors on frames with ``target >= 0``."""
    ok = target >= 0
    p, t = pred[ok], target[ok]
    tp = np.bincount(t[p == t], minlength=n_classes).astype(np.float64)
    n_pred = np.bincount(p, minlength=n_classes).astype(np.float64)
    n_true = np.bincount(t, minlength=n_classes).astype(np.float64)
    den = n_pred + n_true
    return np.where(n_true > 0, 2 * tp / np.maximum(den, 1), np.nan)


def _fit_offsets(
    scores: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    names: Sequence[str],
    passes: int = 3,
) -> tuple[np.ndarray, list[str]]:
    """Per-behaviour offsets for the arg-max, by coordinate ascent over a grid.

    ``scores`` (T_i, K) and ``targets`` (T_i,) per video. The objective is the mean over
    videos of each video's macro F1 (behaviours it holds), less :data:`OFFSET_PENALTY` per
    logit of mean absolute offset: pooled frames let the video whose scores sit highest
    decide for all, and a plain arg-max of a softmax is already a sound decision, so an
    offset must earn its size. Each behaviour's predicted share stays under the guard (never
    ``>= GUARD_FRACTION`` of frames while labelled on ``<= GUARD_PREVALENCE``)."""
    k = scores[0].shape[1]
    vids = [
        (np.asarray(x, np.float64)[t >= 0], t[t >= 0])
        for x, t in zip(scores, targets, strict=True)
        if (t >= 0).any()
    ]
    offsets = np.zeros(k)
    if not vids:
        return offsets, ["no fully labelled frames: plain arg-max (offsets 0)"]
    all_t = np.concatenate([t for _, t in vids])
    prevalence = np.bincount(all_t, minlength=k + 1)[1:] / len(all_t)
    cap = np.where(prevalence <= GUARD_PREVALENCE, GUARD_FRACTION, 1.0 + 1e-9)

    def evaluate(o: np.ndarray) -> tuple[float, np.ndarray]:
        macro, counts = [], np.zeros(k + 1)
        for s, t in vids:
            pred = argmax_class(s, o)
            f1 = _macro_f1_classes(pred, t, k + 1)[1:]
            if not np.isnan(f1).all():
                macro.append(float(np.nanmean(f1)))
            counts += np.bincount(pred, minlength=k + 1)
        score = float(np.mean(macro)) if macro else 0.0
        return score - OFFSET_PENALTY * float(np.abs(o).mean()), counts[1:] / len(all_t)

    refused: set[int] = set()
    best, _ = evaluate(offsets)
    for _ in range(passes):
        changed = False
        for j in range(k):
            for v in _OFFSET_GRID:
                trial = offsets.copy()
                trial[j] = v
                score, share = evaluate(trial)
                if score > best + 1e-9:
                    if (share >= cap).any():
                        refused.add(j)
                        continue
                    best, offsets, changed = score, trial, True
        if not changed:
            break
    notes = [
        f"{names[j]}: an offset that predicts it on >= {GUARD_FRACTION:.0%} of frames while "
        f"labelled on {prevalence[j]:.0%} was refused"
        for j in sorted(refused)
    ]
    return offsets, notes


def _guard_thresholds(
    scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray, names: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """Replace a threshold that would predict a rarely labelled behaviour on (nearly) every
    frame by the quantile of the pooled scores that matches its labelled prevalence."""
    is_pos, is_neg = label_masks(labels)
    out = thresholds.copy()
    notes = []
    for k, name in enumerate(names):
        lab = is_pos[:, k] | is_neg[:, k]
        if not lab.any() or not is_pos[:, k].any():
            continue
        p = scores[lab, k]
        prevalence = float(is_pos[lab, k].mean())
        share = float((p > out[k]).mean())
        if share >= GUARD_FRACTION and prevalence <= GUARD_PREVALENCE:
            new = float(np.quantile(p, 1.0 - prevalence))
            notes.append(
                f"{name}: threshold {out[k]:.3g} would predict it on {share:.0%} of frames "
                f"while labelled on {prevalence:.0%}; using the prevalence quantile {new:.3g}"
            )
            out[k] = new
    return out, notes


def fit_decision(
    logits: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    names: Sequence[str],
    *,
    exclusive: bool = False,
    normalise: bool = False,
    smooth: float = 0.0,
    min_lengths: Sequence[int] | np.ndarray | None = None,
    source: str = "val",
    offsets: bool = True,
) -> Decision:
    """Fit a :class:`Decision` on per-video logits ``(T_i, K)`` and labels, pooled.

    Multi-label: per-behaviour max-F1 thresholds (``smooth``: see
    :func:`deg_core.evaluation.metrics.fit_thresholds`) with the guard
    (:data:`GUARD_FRACTION`, :data:`GUARD_PREVALENCE`). Exclusive: arg-max offsets
    (:func:`_fit_offsets`). ``normalise``: scores standardised per video first.
    ``source`` names where the logits came from (``out-of-fold``, ``val``) for the record.
    ``offsets`` False (exclusive): the plain arg-max, nothing fitted.
    """
    k = len(names)
    if len(logits) != len(labels) or not logits:
        raise ValueError(f"need as many logit arrays as label arrays, got {len(logits)}")
    scores = [standardise(x) if normalise else np.asarray(x, np.float32) for x in logits]
    s = np.concatenate(scores).astype(np.float64)
    y = np.concatenate([np.asarray(a) for a in labels]).astype(np.int8)
    ml = np.ones(k, np.int64) if min_lengths is None else np.asarray(min_lengths, np.int64)
    if exclusive:
        if not offsets:
            return Decision(True, np.full(k, 0.5), np.zeros(k), ml, normalise, source)
        targets = [exclusive_targets(np.asarray(a)) for a in labels]
        fitted, notes = _fit_offsets(scores, targets, names)
        return Decision(True, np.full(k, 0.5), fitted, ml, normalise, source, notes)
    p = 1.0 / (1.0 + np.exp(-s))
    th, _, warns = fit_thresholds(p, y, class_names=names, smooth=smooth)
    th, notes = _guard_thresholds(p, y, th, names)
    return Decision(False, th, np.zeros(k), ml, normalise, source, [*warns, *notes])


def decision_of(info: Any) -> Decision:
    """The decision of a run (a :class:`deg_core.project.runs.RunInfo`): the one its best
    checkpoint records, else (runs from before decisions, feature runs) its thresholds."""
    stored = info.extra.get("decision")
    if stored:
        return Decision.from_dict(stored)
    if info.thresholds is None:
        raise ValueError(f"{info.path}: the best checkpoint holds no fitted thresholds")
    return Decision.thresholded(info.thresholds, info.min_lengths)
