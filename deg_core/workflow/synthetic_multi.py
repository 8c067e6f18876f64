"""Synthetic videos of several animals with known per-animal positions and labels.

Two or three animals, each an ellipse body with a head, of its own size and grey level,
in the arena of :mod:`deg_core.workflow.synthetic`, each with its own schedule of
behaviour bouts (background: still, head drifting):

- ``walk``: moves along its heading; many walks head for another animal and go on past
  it, so the animals touch and cross (the tracker's hard case);
- ``groom``: stationary, the head swings side to side at ~4 Hz;
- ``turn``: rotates in place.

Animals are drawn in index order (a later one covers an earlier one where they overlap).
Everything is deterministic given ``MultiSpec.seed``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deg_core.video.write import write_video
from deg_core.workflow.synthetic import SyntheticSpec, _paint, _rng, _schedule, render_arena

__all__ = ["MULTI_BEHAVIORS", "MultiSpec", "MultiTruth", "multi_truth", "write_multi_video"]

MULTI_BEHAVIORS = ("walk", "groom", "turn")
_SCALE = (1.0, 0.72, 0.86)  # body length of each animal, in units of the first's
_GREY = (45.0, 125.0, 85.0)  # grey level of each animal's body (the floor is ~180)


@dataclass(frozen=True)
class MultiSpec:
    """One clip. ``meet``: share of walk bouts that head for (and past) another animal."""

    n_animals: int = 2
    n_frames: int = 300
    size: int = 96  # square frames; even
    fps: float = 30.0
    noise: float = 2.0
    crf: int = 23
    seed: int = 0
    meet: float = 0.7
    body: float = 0.18  # body length of the largest animal, as a share of ``size``

    def __post_init__(self) -> None:
        if not 1 <= self.n_animals <= len(_SCALE):
            raise ValueError(f"n_animals must be 1..{len(_SCALE)}, got {self.n_animals}")
        if self.n_frames < 1 or self.size < 32 or self.size % 2 or not self.fps > 0:
            raise ValueError("need n_frames >= 1, an even size >= 32 and fps > 0")
        if not 0 <= self.meet <= 1 or self.noise < 0 or self.seed < 0:
            raise ValueError("need 0 <= meet <= 1, noise >= 0 and seed >= 0")


@dataclass(frozen=True)
class MultiTruth:
    """Ground truth of a clip.

    ``centers``: (T, N, 2) float64 x, y of each animal's silhouette centroid (as if
    alone), pixels; ``body``: (T, N, 2) its body centre (the pose); ``labels``: (T, N, K)
    int8 in {0, 1} over MULTI_BEHAVIORS; ``heading``, ``head``: (T, N) float64 body
    angle and head swing (radians); ``contact``: (T,) bool frames where two animals'
    silhouettes touch or overlap.
    """

    centers: np.ndarray
    body: np.ndarray
    labels: np.ndarray
    heading: np.ndarray
    head: np.ndarray
    contact: np.ndarray


def _length(spec: MultiSpec, i: int) -> float:
    return spec.body * spec.size * _SCALE[i]


def _simulate(spec: MultiSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Positions (T, N, 2), headings, head swings (T, N) and labels (T, N, K)."""
    T, N, K = spec.n_frames, spec.n_animals, len(MULTI_BEHAVIORS)
    state = np.full((T, N), -1, np.int64)
    starts = np.zeros((T, N), bool)
    for i in range(N):
        sched = SyntheticSpec(
            n_frames=T, behaviors=MULTI_BEHAVIORS, rare=None, seed=spec.seed * 16 + i,
            bout_frames=(15, 60), gap_frames=(3, 12),
        )  # fmt: skip
        for k, a, b in _schedule(sched, _rng(sched.seed, 0)):
            state[a:b, i] = k
            starts[a, i] = True
    rng = _rng(spec.seed, 5)
    wall = max(3, round(0.08 * spec.size))
    margin = wall + 0.6 * _length(spec, 0)
    lo, hi = margin, spec.size - margin
    # start spread out: animals on a circle around the centre
    ang0 = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(N) / N
    pos = spec.size / 2 + 0.3 * spec.size * np.stack([np.cos(ang0), np.sin(ang0)], 1)
    heading = rng.uniform(-np.pi, np.pi, N)
    phase = rng.uniform(0, 2 * np.pi, N)
    target = pos.copy()
    speed = np.zeros(N)
    turn_dir = np.ones(N)
    centers, headings, heads = np.zeros((T, N, 2)), np.zeros((T, N)), np.zeros((T, N))
    dt = 1.0 / spec.fps
    for t in range(T):
        for i in range(N):
            kind = MULTI_BEHAVIORS[state[t, i]] if state[t, i] >= 0 else "rest"
            if starts[t, i]:
                speed[i] = rng.uniform(2.0, 3.0) * _length(spec, i) * dt
                turn_dir[i] = rng.choice((-1.0, 1.0))
                others = [j for j in range(N) if j != i]
                if others and rng.uniform() < spec.meet:
                    # aim one body length beyond another animal: through it, not at it
                    j = others[int(rng.integers(len(others)))]
                    d = pos[j] - pos[i]
                    target[i] = pos[j] + d / (np.linalg.norm(d) + 1e-9) * 2 * _length(spec, 0)
                else:
                    target[i] = rng.uniform(lo, hi, 2)
                target[i] = np.clip(target[i], lo, hi)
            if kind == "walk":
                d = target[i] - pos[i]
                if np.linalg.norm(d) < 2 * speed[i]:  # arrived: walk on somewhere else
                    target[i] = rng.uniform(lo, hi, 2)
                    d = target[i] - pos[i]
                want = np.arctan2(d[1], d[0])
                turn = (want - heading[i] + np.pi) % (2 * np.pi) - np.pi
                heading[i] += float(np.clip(turn, -0.3, 0.3))
                step = speed[i] * np.array([np.cos(heading[i]), np.sin(heading[i])])
                pos[i] = np.clip(pos[i] + step, lo, hi)
                phase[i] = 0.9 * phase[i]  # the head straightens while walking
            elif kind == "turn":  # an arc: slow steps while rotating
                heading[i] += turn_dir[i] * min(2 * np.pi * 0.5 * dt, 0.5)
                step = 0.4 * speed[i] * np.array([np.cos(heading[i]), np.sin(heading[i])])
                pos[i] = np.clip(pos[i] + step, lo, hi)
            elif kind == "groom":
                phase[i] = 0.6 * np.sin(2 * np.pi * 4.0 * t * dt + i)
            else:  # rest: the head drifts slowly
                phase[i] = 0.3 * np.sin(2 * np.pi * 0.1 * t * dt + 2 * i)
            heading[i] = (heading[i] + np.pi) % (2 * np.pi) - np.pi
        centers[t], headings[t], heads[t] = pos, heading, phase
    labels = np.zeros((T, N, K), np.int8)
    tt, ii = np.nonzero(state >= 0)
    labels[tt, ii, state[tt, ii]] = 1
    return centers, headings, heads, labels


def _draw(img: np.ndarray, spec: MultiSpec, i: int, c: np.ndarray, h: float, head: float,
          color: float | np.ndarray) -> None:  # fmt: skip
    """Animal ``i`` with body centre ``c``, heading ``h`` and head swing ``head``."""
    L = _length(spec, i)
    a, b = 0.5 * L, 0.25 * L
    _paint(img, c[0], c[1], a, b, h, color)
    yaw = h + head
    neck = c + 0.8 * a * np.array([np.cos(h), np.sin(h)])
    hc = neck + 0.18 * L * np.array([np.cos(yaw), np.sin(yaw)])
    _paint(img, hc[0], hc[1], 0.2 * L, 0.15 * L, yaw, color)


def _silhouettes(
    spec: MultiSpec, c: np.ndarray, h: np.ndarray, head: np.ndarray
) -> tuple[np.ndarray, bool]:
    """Each animal's silhouette centroid (N, 2) (as if alone: what a tracker should
    report) and whether two silhouettes (alpha > 0.3) touch, 8-connectedly."""
    n = spec.n_animals
    yy, xx = np.mgrid[: spec.size, : spec.size]
    cents, masks = np.zeros((n, 2)), []
    for i in range(n):
        alpha = np.zeros((spec.size, spec.size, 1))
        _draw(alpha, spec, i, c[i], h[i], head[i], 1.0)
        a = alpha[..., 0]
        cents[i] = (a * xx).sum() / max(a.sum(), 1e-9), (a * yy).sum() / max(a.sum(), 1e-9)
        m = a > 0.3
        grown = m.copy()  # one pixel of growth: touching diagonally counts
        grown[1:] |= m[:-1]
        grown[:-1] |= m[1:]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
        masks.append((m, grown))
    touch = any((masks[i][1] & masks[j][0]).any() for i in range(n) for j in range(i + 1, n))
    return cents, touch


def multi_truth(spec: MultiSpec | None = None) -> MultiTruth:
    """Simulate ``spec`` (no video: silhouettes only, for centroids and contacts)."""
    spec = spec or MultiSpec()
    body, heading, head, labels = _simulate(spec)
    sil = [_silhouettes(spec, c, h, g) for c, h, g in zip(body, heading, head, strict=True)]
    centers = np.stack([c for c, _ in sil]) if sil else np.zeros((0, spec.n_animals, 2))
    contact = np.array([t for _, t in sil], bool)
    return MultiTruth(centers, body, labels, heading, head, contact)


def _frames(spec: MultiSpec, truth: MultiTruth) -> Iterator[np.ndarray]:
    arena = render_arena(SyntheticSpec(size=spec.size, seed=spec.seed))
    rng = _rng(spec.seed, 6)
    for c, h, g in zip(truth.body, truth.heading, truth.head, strict=True):
        img = arena.copy()
        for i in range(spec.n_animals):
            _draw(img, spec, i, c[i], h[i], g[i], np.full(3, _GREY[i]))
        if spec.noise:
            img = img + rng.normal(0, spec.noise, img.shape)
        yield np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_multi_video(path: str | Path, spec: MultiSpec | None = None) -> MultiTruth:
    """Render ``spec`` into an H.264 video at ``path``; returns its ground truth."""
    spec = spec or MultiSpec()
    truth = multi_truth(spec)
    write_video(path, _frames(spec, truth), fps=spec.fps, crf=spec.crf)
    return truth
