"""Evaluation of per-frame behaviour predictions: ranking, frame, bout and confusion metrics.

Conventions are those of :mod:`deg_core.evaluation.metrics`: labels ``(T, K)`` in {1, 0, -1} with -1
(unlabelled) ignored; ``probs > threshold`` is present; an undefined metric is NaN (None in
JSON output), never 0. Scores that are NaN rank below every number (never "present").

* :func:`auroc` - Mann-Whitney U / (n_pos n_neg): the probability that a random labelled
  positive frame scores above a random negative one, ties counting 1/2.
* :func:`average_precision` - scikit-learn's step-wise AP: ``sum_n (R_n - R_{n-1}) P_n`` over
  the distinct scores as thresholds (descending; ``score >= t`` is present, tied frames enter
  together), ``R_0 = 0``. NaN without positives; 1 when there are no negatives.
* :func:`best_threshold_f1` - the highest F1 any threshold reaches on the given frames
  (a diagnosis of what the scores allow, never a way to choose a threshold).
* :func:`bout_f1` - bouts matched one-to-one by intersection-over-union.
* :func:`confusion` - (K+1) x (K+1) with background as class 0.
* :func:`evaluate` - all of the above per behaviour, JSON-ready.
* :func:`evaluate_animals` - :func:`evaluate` of streams of several-animal videos: pooled
  over every stream, and per animal index.
* :func:`overprediction_notes` - one line per behaviour an :func:`evaluate` result shows
  predicted on most frames while rarely labelled (the decision does not separate it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deg_core.evaluation.metrics import (
    binary_counts,
    f1_score,
    label_masks,
    nan_mean,
    precision_recall,
)
from deg_core.evaluation.postprocess import postprocess
from deg_core.fileio import finite_or_none
from deg_core.labels.bouts import bouts_from_vector
from deg_core.labels.labels import BACKGROUND

__all__ = [
    "auroc",
    "auroc_per_class",
    "average_precision",
    "average_precision_per_class",
    "best_threshold_f1",
    "best_threshold_f1_per_class",
    "bout_f1",
    "confusion",
    "evaluate",
    "evaluate_animals",
    "overprediction_notes",
]


# --------------------------------------------------------------------------- ranking


def _score_groups(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positives and negatives per distinct score, both ``(G,)`` int64, scores ascending.

    Only labelled frames count; NaN scores become -inf (lowest, all tied with each other).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"scores and labels must both be (T,), got {s.shape} and {y.shape}")
    is_pos, is_neg = (m[:, 0] for m in label_masks(y[:, None]))
    keep = is_pos | is_neg
    s = np.where(np.isnan(s), -np.inf, s)[keep]
    _, group = np.unique(s, return_inverse=True)
    n_groups = int(group.max()) + 1 if group.size else 0
    pos = np.bincount(group, weights=is_pos[keep], minlength=n_groups).astype(np.int64)
    neg = np.bincount(group, weights=is_neg[keep], minlength=n_groups).astype(np.int64)
    return pos, neg


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` (T,) for ``labels`` (T,) in {1, 0, -1}.

    ``U = sum over positives of (#negatives scored lower + 1/2 #negatives tied)``, divided by
    ``n_pos * n_neg``; NaN when either class has no labelled frame.
    """
    pos, neg = _score_groups(scores, labels)
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    neg_below = np.cumsum(neg) - neg
    u = float(np.sum(pos * neg_below)) + 0.5 * float(np.sum(pos * neg))
    return u / (n_pos * n_neg)


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Step-wise average precision (scikit-learn's definition, see the module docstring)."""
    pos, neg = _score_groups(scores, labels)
    n_pos = int(pos.sum())
    if n_pos == 0:
        return float("nan")
    tp = np.cumsum(pos[::-1])  # thresholds from the highest score down
    fp = np.cumsum(neg[::-1])
    precision = tp / (tp + fp)  # tp + fp >= 1: every group has a frame
    # R_n - R_{n-1} = positives entering at threshold n / n_pos
    return float(np.sum(pos[::-1] * precision) / n_pos)


def best_threshold_f1(scores: np.ndarray, labels: np.ndarray) -> float:
    """Highest frame F1 of ``scores > t`` over every threshold t, for ``labels`` (T,).

    Exact: the candidate cut-offs are the distinct scores (descending; tied frames enter
    together), each scored by ``2tp / (2tp + fp + fn)``; predicting nothing scores 0.
    NaN and -inf scores are never present (as with ``probs > threshold``). NaN without
    labelled positives.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels)
    if s.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"scores and labels must both be (T,), got {s.shape} and {y.shape}")
    is_pos, is_neg = (m[:, 0] for m in label_masks(y[:, None]))
    n_pos = int(is_pos.sum())
    if n_pos == 0:
        return float("nan")
    keep = (is_pos | is_neg) & (s > -np.inf)  # NaN and -inf exceed no threshold
    if not keep.any():
        return 0.0  # no threshold makes anything present
    order = np.argsort(-s[keep], kind="stable")
    s_desc, pos_desc = s[keep][order], is_pos[keep][order]
    tp = np.cumsum(pos_desc)
    fp = np.arange(1, tp.size + 1) - tp
    # a cut-off takes a whole tied group: keep the counts at the last frame of each group
    group_end = np.append(s_desc[1:] != s_desc[:-1], True)
    tp, fp = tp[group_end], fp[group_end]
    f1 = 2 * tp / (tp + fp + n_pos)  # 2tp + fp + fn with fn = n_pos - tp
    return float(f1.max())


def _per_class(fn: Any, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    s = np.asarray(scores)
    y = np.asarray(labels)
    if s.ndim != 2 or s.shape != y.shape:
        raise ValueError(f"scores and labels must both be (T, K), got {s.shape} and {y.shape}")
    return np.array([fn(s[:, k], y[:, k]) for k in range(s.shape[1])], dtype=np.float64)


def auroc_per_class(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(K,)`` float64 :func:`auroc` of each column of ``(T, K)`` scores and labels."""
    return _per_class(auroc, scores, labels)


def average_precision_per_class(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(K,)`` float64 :func:`average_precision` of each column of ``(T, K)`` inputs."""
    return _per_class(average_precision, scores, labels)


def best_threshold_f1_per_class(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(K,)`` float64 :func:`best_threshold_f1` of each column of ``(T, K)`` inputs."""
    return _per_class(best_threshold_f1, scores, labels)


# --------------------------------------------------------------------------- bouts


def _ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise float64 ``num / den``, NaN where ``den == 0`` (no warning)."""
    out = np.full(np.shape(den), np.nan)
    np.divide(num, den, out=out, where=np.asarray(den) != 0)
    return out


def bout_f1(pred: np.ndarray, labels: np.ndarray, min_overlap: float = 0.5) -> dict[str, Any]:
    """Bout-level precision / recall / F1 of one behaviour.

    Both sequences are cut to the labelled frames first: predicted bouts are the runs of 1
    in ``pred`` *after* setting unlabelled frames to 0, true bouts the runs of 1 in
    ``labels`` (-1 breaks them). So an unlabelled frame is a bout boundary on both sides,
    and predictions inside unlabelled stretches are neither right nor wrong.

    A predicted and a true bout *match* when ``|P & T| / |P | T| >= min_overlap`` (frames).
    Matching is one-to-one, greedy by decreasing IoU (ties: earlier predicted bout, then
    earlier true bout). With ``min_overlap > 0.5`` a bout can overlap at most one bout that
    well, so greedy is optimal there; at lower values it may not be maximal.

    Returns:
        ``{"precision": matched / n_pred, "recall": matched / n_true,
        "f1": 2 matched / (n_pred + n_true), "n_pred", "n_true", "n_matched"}``; ratios are
        float (NaN when the denominator is 0), counts int.
    """
    if not 0.0 < min_overlap <= 1.0:
        raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
    p = np.asarray(pred)
    y = np.asarray(labels)
    if p.ndim != 1 or p.shape != y.shape:
        raise ValueError(f"pred and labels must both be (T,), got {p.shape} and {y.shape}")
    label_masks(y[:, None])  # validates the label values
    p_bouts = np.array(bouts_from_vector(((p != 0) & (y != -1)).astype(np.int8)), dtype=np.int64)
    t_bouts = np.array(bouts_from_vector(y), dtype=np.int64)
    n_pred, n_true = len(p_bouts), len(t_bouts)
    n_matched = 0
    if n_pred and n_true:
        ps, pe = p_bouts[:, 0], p_bouts[:, 1]
        ts, te = t_bouts[:, 0], t_bouts[:, 1]
        # bouts are sorted and disjoint: the true bouts overlapping pred i are lo[i]:hi[i]
        lo = np.searchsorted(te, ps, side="right")
        hi = np.searchsorted(ts, pe, side="left")
        counts = np.maximum(hi - lo, 0)
        pi = np.repeat(np.arange(n_pred), counts)
        rank_in_group = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        ti = np.repeat(lo, counts) + rank_in_group
        inter = np.minimum(pe[pi], te[ti]) - np.maximum(ps[pi], ts[ti])
        union = (pe[pi] - ps[pi]) + (te[ti] - ts[ti]) - inter
        iou = inter / union
        ok = iou >= min_overlap
        pi, ti, iou = pi[ok], ti[ok], iou[ok]
        used_p = np.zeros(n_pred, dtype=bool)
        used_t = np.zeros(n_true, dtype=bool)
        for j in np.lexsort((ti, pi, -iou)):
            if not (used_p[pi[j]] or used_t[ti[j]]):
                used_p[pi[j]] = used_t[ti[j]] = True
                n_matched += 1
    return {
        "precision": _ratio(n_matched, n_pred),
        "recall": _ratio(n_matched, n_true),
        "f1": _ratio(2 * n_matched, n_pred + n_true),
        "n_pred": n_pred,
        "n_true": n_true,
        "n_matched": n_matched,
    }


# --------------------------------------------------------------------------- confusion


def confusion(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(K+1, K+1)`` int64 frame confusion matrix; class 0 is background, class k+1 is
    behaviour k; rows = true class, columns = predicted class.

    Only frames with *every* behaviour labelled count (background is unknown otherwise).
    Per frame, the true set A is the present behaviours ({background} if none) and the
    predicted set B likewise. Then: each class in both sets adds 1 on the diagonal; each
    missed class m (in A only) is paired with each false alarm f (in B only), adding 1 at
    ``[m, f]``; a miss with no false alarm in that frame goes to ``[m, background]``, a
    false alarm with no miss to ``[background, f]``. For single-label frames this is the
    usual confusion matrix; for every frame ``C[k, k] = tp`` of behaviour k.
    """
    p = np.asarray(pred)
    y = np.asarray(labels)
    if p.ndim != 2 or p.shape != y.shape:
        raise ValueError(f"pred and labels must both be (T, K), got {p.shape} and {y.shape}")
    is_pos, is_neg = label_masks(y)
    full = (is_pos | is_neg).all(axis=1)
    a = is_pos[full]
    b = p[full].astype(bool)
    a = np.concatenate([~a.any(axis=1, keepdims=True), a], axis=1)  # (T', K+1) with background
    b = np.concatenate([~b.any(axis=1, keepdims=True), b], axis=1)
    miss = a & ~b
    alarm = b & ~a
    has_miss = miss.any(axis=1)
    has_alarm = alarm.any(axis=1)
    both = has_miss & has_alarm
    # float64 matmul uses BLAS (integer matmul does not); counts < 2**53 stay exact
    c = np.rint(miss[both].T.astype(np.float64) @ alarm[both].astype(np.float64))
    c = c.astype(np.int64)
    c[np.diag_indices_from(c)] += (a & b).sum(axis=0)
    # background is never in a frame's miss set without a false alarm (or vice versa), so
    # unpaired errors land off the diagonal
    c[:, 0] += miss[has_miss & ~has_alarm].sum(axis=0)
    c[0, :] += alarm[has_alarm & ~has_miss].sum(axis=0)
    return c


# --------------------------------------------------------------------------- summary


def _videos(x: Any, name: str) -> list[np.ndarray]:
    """A ``(T, K)`` ndarray is one video; a list/tuple of arrays is several."""
    arrays = [x] if isinstance(x, np.ndarray) else [np.asarray(v) for v in x]
    for a in arrays:
        if a.ndim != 2:
            raise ValueError(f"{name} must be (T, K) arrays, got shape {a.shape}")
    return arrays


def _given_predictions(pred: Any, probs_v: list[np.ndarray]) -> list[np.ndarray]:
    """The caller's final predictions, ``(T_i, K)`` int8 in {0, 1}, shaped like ``probs``."""
    pred_v = _videos(pred, "pred")
    if len(pred_v) != len(probs_v):
        raise ValueError(f"{len(pred_v)} prediction arrays but {len(probs_v)} probability arrays")
    for d, p in zip(pred_v, probs_v, strict=True):
        if d.shape != p.shape:
            raise ValueError(f"pred {d.shape} must have the shape of probs {p.shape}")
    return [(d != 0).astype(np.int8) for d in pred_v]


def evaluate(
    probs: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[np.ndarray],
    thresholds: Any,
    class_names: Sequence[str],
    min_lengths: Any = None,
    min_overlap: float = 0.5,
    *,
    pred: Sequence[np.ndarray] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric per behaviour, as plain JSON-ready types (NaN -> None).

    Args:
        probs: ``(T, K)`` probabilities, or a list of them (one per video: bouts and bout
            cleaning never cross video boundaries; frame metrics pool all frames).
        labels: same shape(s) as ``probs``, in {1, 0, -1}.
        thresholds: ``(K,)``; present where ``probs > thresholds``. May be None with ``pred``.
        class_names: the K behaviour names (keys of the per-behaviour dicts).
        min_lengths: ``(K,)`` minimum bout lengths; when given, the predictions are
            :func:`~deg_core.evaluation.postprocess.postprocess`-ed, otherwise only
            thresholded. With ``pred`` only recorded (the caller's cleaning).
        min_overlap: IoU for :func:`bout_f1`.
        pred: the final decided predictions, ``(T, K)`` binary (nonzero = present) shaped
            like ``probs`` (one per video), e.g. an arg-max over exclusive behaviours; they
            replace thresholding and cleaning (raw_f1 and f1 are both theirs). ``probs``
            still give auroc, ap and oracle_f1.

    Returns:
        ``{"class_names", "n_frames", "n_labelled_frames"`` (frames with every behaviour
        labelled), ``"postprocessed": bool, "thresholds"`` (or None), ``"min_lengths"`` (or
        None), per behaviour ``{name: value}``: ``"n_labelled", "support"`` (labelled
        positive frames), ``"f1", "precision", "recall", "accuracy"`` (of the final
        predictions), ``"raw_f1"`` (thresholded only; equals f1 without min_lengths or with
        ``pred``), ``"auroc", "ap", "bout_f1", "bout_precision", "bout_recall",
        "prevalence"`` (support / n_labelled), ``"predicted_fraction"`` (of the labelled
        frames, final predictions), ``"baseline_f1"`` (F1 of predicting it on every frame,
        ``2p / (1 + p)`` with p the prevalence), ``"oracle_f1"`` (best F1 of any threshold
        on these frames, :func:`best_threshold_f1`: a diagnosis, never a choice),
        ``"n_true_bouts", "n_pred_bouts"``; ``"macro": {metric: float | None}`` =
        NaN-ignoring mean over the behaviours with labelled positives (as
        ``metrics.per_class_metrics``' macro_f1), and ``"confusion": {"classes":
        ["background", *names], "matrix": rows = true, columns = predicted}`` of the final
        predictions (see :func:`confusion`)}``.
    """
    probs_v = _videos(probs, "probs")
    labels_v = _videos(labels, "labels")
    names = [str(n) for n in class_names]
    k_total = len(names)
    if len(probs_v) != len(labels_v):
        raise ValueError(f"{len(probs_v)} probability arrays but {len(labels_v)} label arrays")
    for p, y in zip(probs_v, labels_v, strict=True):
        if p.shape != y.shape or p.shape[1] != k_total:
            raise ValueError(
                f"probs {p.shape} and labels {y.shape} must both be (T, {k_total}) "
                f"for {k_total} class names"
            )
    th = None if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if th is not None and th.shape != (k_total,):
        raise ValueError(f"thresholds must be ({k_total},), got {th.shape}")
    if pred is not None:  # final already: min_lengths, if any, only recorded
        raw_v = final_v = _given_predictions(pred, probs_v)
    elif th is None:
        raise ValueError("thresholds are needed unless pred gives the final predictions")
    else:
        raw_v = [(p > th[None, :]).astype(np.int8) for p in probs_v]
        final_v = (
            raw_v if min_lengths is None else [postprocess(p, th, min_lengths) for p in probs_v]
        )

    def cat(arrays: list[np.ndarray]) -> np.ndarray:  # frame metrics pool all videos
        return np.concatenate(arrays, axis=0) if arrays else np.zeros((0, k_total), np.int8)

    prob_all, y_all, raw_all, final_all = cat(probs_v), cat(labels_v), cat(raw_v), cat(final_v)
    c = binary_counts(final_all, y_all)
    precision, recall = precision_recall(final_all, y_all)
    support = (c["tp"] + c["fn"]).astype(np.int64)
    n_labelled = (y_all != -1).sum(axis=0)
    prevalence = _div(support, n_labelled)

    bout_counts = np.zeros((k_total, 3), dtype=np.int64)  # n_pred, n_true, n_matched
    for decided, y in zip(final_v, labels_v, strict=True):
        for k in range(k_total):
            r = bout_f1(decided[:, k], y[:, k], min_overlap)
            bout_counts[k] += (r["n_pred"], r["n_true"], r["n_matched"])
    n_bp, n_bt, n_bm = bout_counts.T
    per_class = {
        "f1": f1_score(final_all, y_all),
        "precision": precision,
        "recall": recall,
        "accuracy": _div(c["tp"] + c["tn"], c["tp"] + c["fp"] + c["fn"] + c["tn"]),
        "raw_f1": f1_score(raw_all, y_all),
        "auroc": auroc_per_class(prob_all, y_all),
        "ap": average_precision_per_class(prob_all, y_all),
        "bout_f1": _div(2 * n_bm, n_bp + n_bt),
        "bout_precision": _div(n_bm, n_bp),
        "bout_recall": _div(n_bm, n_bt),
        "prevalence": prevalence,
        "predicted_fraction": _div(c["tp"] + c["fp"], n_labelled),
        "baseline_f1": 2 * prevalence / (1 + prevalence),  # NaN stays NaN
        "oracle_f1": best_threshold_f1_per_class(prob_all, y_all),
    }
    has_pos = support > 0

    def by_name(values: Any, cast: Any = finite_or_none) -> dict[str, Any]:
        return {n: cast(v) for n, v in zip(names, values, strict=True)}

    cm = confusion(final_all, y_all)
    out: dict[str, Any] = {
        "class_names": names,
        "n_frames": int(y_all.shape[0]),
        "n_labelled_frames": int((y_all != -1).all(axis=1).sum()),
        "postprocessed": min_lengths is not None,
        "thresholds": None if th is None else by_name(th),
        "min_lengths": None
        if min_lengths is None
        else by_name(np.broadcast_to(np.asarray(min_lengths), (k_total,)), int),
        "n_labelled": by_name(n_labelled, int),
        "support": by_name(support, int),
    }
    out.update({metric: by_name(v) for metric, v in per_class.items()})
    out["n_true_bouts"] = by_name(bout_counts[:, 1], int)
    out["n_pred_bouts"] = by_name(bout_counts[:, 0], int)
    out["macro"] = {
        m: finite_or_none(nan_mean(np.asarray(v)[has_pos])) for m, v in per_class.items()
    }
    out["confusion"] = {"classes": [BACKGROUND, *names], "matrix": cm.tolist()}
    return out


def evaluate_animals(
    probs: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    animals: Sequence[int | None],
    thresholds: Any,
    class_names: Sequence[str],
    min_lengths: Any = None,
    min_overlap: float = 0.5,
    *,
    pred: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """:func:`evaluate` of streams: one ``(T, K)`` array per stream, ``animals[j]`` the animal
    stream j follows in a several-animal video (None: a one-animal video's whole stream).

    Returns :func:`evaluate` over every stream pooled (each stream counts as a video: bouts
    never cross streams), plus, when any stream is an animal's, ``"per_animal": {"animal<i>":
    evaluate of the streams of animal i}`` (animal i of every several-animal video).
    """
    if not len(probs) == len(labels) == len(animals):
        raise ValueError(
            f"{len(probs)} probability arrays, {len(labels)} label arrays, {len(animals)} animals"
        )
    out = evaluate(probs, labels, thresholds, class_names, min_lengths, min_overlap, pred=pred)
    indices = sorted({a for a in animals if a is not None})
    if indices:
        per: dict[str, Any] = {}
        for i in indices:
            sel = [j for j, a in enumerate(animals) if a == i]
            per[f"animal{i}"] = evaluate(
                [probs[j] for j in sel],
                [labels[j] for j in sel],
                thresholds,
                class_names,
                min_lengths,
                min_overlap,
                pred=None if pred is None else [pred[j] for j in sel],
            )
        out["per_animal"] = per
    return out


def overprediction_notes(
    result: dict[str, Any], *, most: float = 0.5, few: float = 0.25
) -> list[str]:
    """One line per behaviour an :func:`evaluate` result shows predicted on more than
    ``most`` of its labelled frames while labelled present on fewer than ``few`` of them:
    the decision then barely differs from "always present" (compare its F1 with the
    all-positive baseline_f1). Behaviours in ``class_names`` order; [] when none.
    """

    def num(v: Any) -> str:
        return "-" if v is None else f"{v:.2f}"

    notes = []
    for b in result["class_names"]:
        shown, labelled = result["predicted_fraction"][b], result["prevalence"][b]
        if shown is None or labelled is None or not (shown > most and labelled < few):
            continue
        notes.append(
            f"{b}: predicted on {shown:.0%} of frames but labelled on {labelled:.0%} "
            f"(all-positive F1 {num(result['baseline_f1'][b])}, achieved "
            f"{num(result['f1'][b])}): the decision does not separate it"
        )
    return notes
