"""Synthetic behaviour videos with known per-frame labels (tests and ``deg demo``).

A mouse-like animal (textured body and head with eyes and ears, four legs, a tail,
a soft shadow) in a textured open-field arena with walls, rendered with anti-aliased
shapes, camera noise and light flicker, and written as H.264. One clip is simulated
as a schedule of behaviour bouts separated by background stretches:

- background ("rest"): stationary; the head rests turned to one side and drifts very
  slowly (~0.1 Hz), so the animal looks alive but barely moves;
- ``walk``: translates along its heading, which wanders and steers off the walls;
  legs swing in a diagonal gait and the tail waves (appearance and motion);
- ``groom``: stationary; the head swings side to side and in and out at ~4 Hz with
  a slight torso counter-sway. Its poses are exactly rest's poses (same head-phase
  distribution, same neutral body), so groom and background are separable ONLY by
  motion: every single groom frame could be a rest frame;
- ``rear``: the animal stands up: seen from above its body shortens and widens, the
  head grows and brightens (nearer the light), with a slow sway. Rare, short bouts;
- ``turn``: rotates in place (either direction, so left-right flips keep the label),
  body bent into a C and the tail curved (appearance and motion).

Bouts are mutually exclusive (at most one behaviour per frame). Everything is
deterministic given ``SyntheticSpec.seed``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deg_core.labels.labels import Labels, write_labels
from deg_core.project.project import Project
from deg_core.project.splits import SPLITS
from deg_core.video.write import write_video

__all__ = ["BEHAVIORS", "POSE_FIELDS", "SyntheticSpec", "SyntheticTrace", "default_splits",
           "make_synthetic_project", "render_arena", "synthetic_clip", "synthetic_trace",
           "write_synthetic_video"]  # fmt: skip

BEHAVIORS = ("walk", "groom", "rear", "turn")  # every behaviour the simulator knows
# per-frame pose columns of SyntheticTrace.poses; the renderer sees nothing else
POSE_FIELDS = ("x", "y", "heading", "length", "width", "head", "bend", "stride", "gait", "look",
               "phase", "bright")  # fmt: skip
_F = {name: i for i, name in enumerate(POSE_FIELDS)}
_NEUTRAL = dict(length=1.0, width=1.0, head=1.0, bend=0.0, stride=0.0, look=1.0, bright=1.0)
_RELAX = 0.4  # per-frame pull of the pose towards its target: transitions take ~5 frames
_REST_HZ, _REAR_SWAY_HZ = 0.12, 0.8
_FLOOR, _WALL = np.array([196.0, 188.0, 170.0]), np.array([118.0, 121.0, 128.0])
_BODY, _HEAD = np.array([72.0, 60.0, 52.0]), np.array([90.0, 76.0, 66.0])
_PINK, _EYE = np.array([178.0, 128.0, 122.0]), np.array([14.0, 10.0, 10.0])


@dataclass(frozen=True)
class SyntheticSpec:
    """One synthetic clip. Rates are per second (scaled by ``fps``); bouts in frames."""

    n_frames: int = 300
    size: int = 64  # square frames; even (yuv420p)
    fps: float = 30.0
    behaviors: tuple[str, ...] = BEHAVIORS  # any subset of BEHAVIORS, in label-column order
    noise: float = 3.0  # camera noise std, grey levels (also scales a global flicker)
    crf: int = 26  # x264 quality of written videos
    seed: int = 0
    bout_frames: tuple[int, int] = (10, 60)  # bout length range (log-uniform)
    gap_frames: tuple[int, int] = (6, 40)  # background between bouts (log-uniform)
    rare: str | None = "rear"  # gets rare_rate of the bouts, half as long (if in behaviors)
    rare_rate: float = 0.1
    arena_seed: int | None = None  # the rig: videos of one project share it (None: seed)

    def __post_init__(self) -> None:
        object.__setattr__(self, "behaviors", tuple(self.behaviors))
        bad = [b for b in self.behaviors if b not in BEHAVIORS]
        if not self.behaviors or bad or len(set(self.behaviors)) != len(self.behaviors):
            raise ValueError(f"behaviors must be distinct names from {BEHAVIORS}, got {bad}")
        if self.n_frames < 1 or self.size < 32 or self.size % 2 or not self.fps > 0:
            raise ValueError("need n_frames >= 1, an even size >= 32 and fps > 0")
        for lo, hi in (self.bout_frames, self.gap_frames):
            if not 2 <= lo <= hi:
                raise ValueError(f"frame ranges need 2 <= low <= high, got {(lo, hi)}")
        if self.rare is not None and self.rare not in BEHAVIORS:
            raise ValueError(f"rare={self.rare!r} is not one of {BEHAVIORS}")
        if not 0 < self.rare_rate < 1 or self.noise < 0 or self.seed < 0:
            raise ValueError("need 0 < rare_rate < 1, noise >= 0 and seed >= 0")
        if self.arena_seed is not None and self.arena_seed < 0:
            raise ValueError("need arena_seed >= 0")


@dataclass(frozen=True)
class SyntheticTrace:
    """The simulated clip before rendering.

    ``labels``: (T, K) int8 in {0, 1}; ``state``: (T,) int8, behaviour index or -1 for
    background; ``poses``: (T, len(POSE_FIELDS)) float64, the only input of the renderer.
    """

    labels: np.ndarray
    state: np.ndarray
    poses: np.ndarray

    def pose(self, field: str) -> np.ndarray:
        """(T,) values of one pose field."""
        return self.poses[:, _F[field]]


def _rng(seed: int, stream: int) -> np.random.Generator:
    """Independent streams (schedule, motion, arena, noise): changing one leaves the rest."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


def _log_uniform(rng: np.random.Generator, lo: int, hi: int) -> int:
    return round(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))))


def _schedule(spec: SyntheticSpec, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """Bouts as (behaviour index, start, stop), separated by >= 1 background frame."""
    K, T = len(spec.behaviors), spec.n_frames
    rare = spec.behaviors.index(spec.rare) if spec.rare in spec.behaviors and K > 1 else -1
    p = np.full(K, (1 - spec.rare_rate) / (K - 1) if rare >= 0 else 1 / K)
    if rare >= 0:
        p[rare] = spec.rare_rate
    lo, hi = spec.bout_frames

    def length(k: int) -> int:  # rare bouts are also short: fewer frames than bouts
        return _log_uniform(rng, lo, max(lo, hi // 2)) if k == rare else _log_uniform(rng, lo, hi)

    bouts, t = [], _log_uniform(rng, *spec.gap_frames)
    while t < T:
        k = int(rng.choice(K, p=p))
        n = length(k)
        bouts.append((k, t, min(t + n, T)))
        t += n + _log_uniform(rng, *spec.gap_frames)
    # every behaviour occurs when there is room: a missing one takes over a complete bout
    # of a behaviour seen twice or more, keeping its start (the rest becomes background)
    for k in range(K):
        counts = np.bincount([b[0] for b in bouts], minlength=K)
        if counts[k]:
            continue
        spare = [i for i, (j, _, stop) in enumerate(bouts) if counts[j] > 1 and stop < T]
        if spare:
            i = spare[int(rng.integers(len(spare)))]
            _, start, stop = bouts[i]
            bouts[i] = (k, start, start + min(stop - start, length(k)))
    return bouts


def synthetic_trace(spec: SyntheticSpec) -> SyntheticTrace:
    """Simulate the schedule and the animal's pose, frame by frame (no pixels)."""
    sched_rng, rng = _rng(spec.seed, 0), _rng(spec.seed, 1)
    T, K, size = spec.n_frames, len(spec.behaviors), spec.size
    state = np.full(T, -1, np.int8)
    bout_of = np.full(T, -1, np.int64)
    for i, (k, start, stop) in enumerate(_schedule(spec, sched_rng)):
        state[start:stop], bout_of[start:stop] = k, i
    labels = np.zeros((T, K), np.int8)
    labels[state >= 0, state[state >= 0]] = 1

    L, w = _geometry(size)
    lo, hi = w + 0.75 * L, size - w - 0.75 * L  # body centre stays on the floor
    dt, two_pi = 1.0 / spec.fps, 2 * np.pi
    pose = {**_NEUTRAL, "x": rng.uniform(lo, hi), "y": rng.uniform(lo, hi),
            "heading": rng.uniform(-np.pi, np.pi), "gait": rng.uniform(0, two_pi),
            "phase": rng.uniform(0, two_pi)}  # fmt: skip
    poses = np.empty((T, len(POSE_FIELDS)))
    speed = rate = direction = wander = 0.0
    for t in range(T):
        kind = spec.behaviors[state[t]] if state[t] >= 0 else "rest"
        if bout_of[t] >= 0 and (t == 0 or bout_of[t - 1] != bout_of[t]):  # a bout starts
            speed = rng.uniform(2.0, 3.5) * L * dt  # walk: body lengths per second
            rate = rng.uniform(3.5, 5.0)  # groom: head swings per second
            direction = float(rng.choice((-1.0, 1.0)))  # turn: both ways, so flips keep labels
        target = dict(_NEUTRAL)
        # phase steps are capped below pi so a low fps cannot alias the motion away
        step = {"groom": rate, "rear": _REAR_SWAY_HZ}.get(kind, _REST_HZ)
        pose["phase"] = (pose["phase"] + min(two_pi * step * dt, 2.5)) % two_pi
        if kind == "walk":
            target.update(stride=1.0, look=0.25)
            pose["gait"] += min(two_pi * 5.0 * dt, 2.5)
            wander = 0.85 * wander + 0.05 * rng.normal()
            pose["heading"] += wander
            x, y, h = pose["x"], pose["y"], pose["heading"]
            nx, ny = x + speed * np.cos(h), y + speed * np.sin(h)
            if not (lo <= nx <= hi and lo <= ny <= hi):  # steer towards the arena centre
                turn = (np.arctan2(size / 2 - y, size / 2 - x) - h + np.pi) % two_pi - np.pi
                pose["heading"] = h + float(np.clip(turn, -0.35, 0.35))
            pose["x"] = float(np.clip(x + speed * np.cos(pose["heading"]), lo, hi))
            pose["y"] = float(np.clip(y + speed * np.sin(pose["heading"]), lo, hi))
        elif kind == "turn":
            target.update(bend=0.7 * direction, stride=0.35, look=0.25)
            pose["heading"] += direction * min(two_pi * 0.45 * dt, 0.6)
            pose["gait"] += min(two_pi * 3.0 * dt, 2.5)
        elif kind == "rear":
            target.update(length=0.62, width=1.15, head=1.3, look=0.5, bright=1.25)
        for name, value in target.items():
            pose[name] += _RELAX * (value - pose[name])
        pose["heading"] = (pose["heading"] + np.pi) % two_pi - np.pi
        poses[t] = [pose[name] for name in POSE_FIELDS]
    return SyntheticTrace(labels, state, poses)


def _geometry(size: int) -> tuple[float, int]:
    """Body length and wall width in pixels."""
    return 0.2 * size, max(3, round(0.08 * size))


def render_arena(spec: SyntheticSpec) -> np.ndarray:
    """The empty arena of ``spec`` (no animal, no noise). Returns: (H, W, 3) float64."""
    rng = _rng(spec.seed if spec.arena_seed is None else spec.arena_seed, 2)
    n, w = spec.size, _geometry(spec.size)[1]
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    # floor: low-pass noise (soft stains) plus two faint gratings (bedding texture)
    f = np.fft.fftfreq(n)
    lowpass = np.exp(-(f[:, None] ** 2 + f[None, :] ** 2) / (2 * 0.06**2))
    stains = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, n))) * lowpass))
    stains /= stains.std() + 1e-9
    k, a, ph = rng.uniform(0.6, 1.4, 2), rng.uniform(0, np.pi, 2), rng.uniform(0, 6, 2)
    grain = np.sin(k * (np.cos(a) * xx[..., None] + np.sin(a) * yy[..., None]) + ph).sum(-1)
    img = _FLOOR * (1 + 0.05 * stains + 0.02 * grain)[..., None]
    # walls: darker towards the outside, with a shadow line on the floor along them
    edge = np.minimum(np.minimum(xx, yy), np.minimum(n - 1 - xx, n - 1 - yy))
    wall = edge < w
    img[wall] = _WALL * (0.75 + 0.3 * (edge[wall] / w))[:, None]
    img *= (1 - 0.25 * np.exp(-np.maximum(edge - w, 0) / 1.5) * ~wall)[..., None]
    vignette = 1 - 0.15 * (((xx - n / 2) ** 2 + (yy - n / 2) ** 2) / (n / 2) ** 2)
    return img * vignette[..., None]


def _paint(img: np.ndarray, cx: float, cy: float, a: float, b: float, angle: float,
           color: np.ndarray | float, opacity: float = 1.0, fur: float = 0.0) -> None:  # fmt: skip
    """Alpha-blend an anti-aliased ellipse (semi-axes a along ``angle``, b across) into img."""
    h, w = img.shape[:2]
    r = max(a, b) + 2
    y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 2, h)
    x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 2, w)
    if y0 >= y1 or x0 >= x1:
        return
    dy, dx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dx, dy = dx - cx, dy - cy
    c, s = np.cos(angle), np.sin(angle)
    u, v = dx * c + dy * s, dy * c - dx * s
    q = np.sqrt((u / a) ** 2 + (v / b) ** 2) + 1e-9
    grad = np.maximum(np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2) / q, 1e-9)
    alpha = (np.clip(0.5 - (q - 1) / grad / 0.8, 0, 1) * opacity)[..., None]  # ~1 px edge
    col = np.asarray(color, np.float64)
    if fur:  # a pattern fixed to the body, so rotation and translation show in its texture
        tex = np.sin(1.7 * u + 0.8 * v) * np.cos(1.3 * v - 0.5 * u)
        tex -= 2 * np.exp(-12 * (v / b) ** 2)  # a darker stripe along the spine
        col = col * (1 + fur * tex)[..., None]
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - alpha) + col * alpha


def _unit(angle: float) -> np.ndarray:
    return np.array([np.cos(angle), np.sin(angle)])


def _render(arena: np.ndarray, p: np.ndarray, L: float) -> np.ndarray:
    """The animal at pose ``p`` (one row of SyntheticTrace.poses) over ``arena``: (H, W, 3)."""
    img = arena.copy()
    x, y, look, ph, br = p[_F["x"]], p[_F["y"]], p[_F["look"]], p[_F["phase"]], p[_F["bright"]]
    bend, stride, gait, hs = p[_F["bend"]], p[_F["stride"]], p[_F["gait"]], p[_F["head"]]
    body = p[_F["heading"]] - 0.12 * look * np.sin(ph)  # the torso counter-sways the head
    a, b = 0.5 * L * p[_F["length"]], 0.27 * L * p[_F["width"]]
    centre = np.array([x, y])
    _paint(img, x + 0.06 * L, y + 0.08 * L, a * 1.1, b * 1.3, body, 0.0, 0.3 * br)  # shadow
    # the body is two overlapping halves, each rotated by half the bend: a C when turning
    halves = [(-1, body - bend / 2, 1.0), (1, body + bend / 2, 0.93)]  # (rear|front, angle, b)
    for sgn, ang, _ in halves:  # legs first, so the body covers their roots
        c = centre + sgn * 0.35 * a * _unit(ang)
        for across, phase in ((1, 0.0), (-1, np.pi)):
            swing = 0.15 * L * stride * np.sin(gait + phase + (sgn < 0) * np.pi)  # diagonal gait
            q = c + (0.15 * sgn * a + swing) * _unit(ang)
            q = q + across * (b + 0.02 * L) * _unit(ang + np.pi / 2)
            _paint(img, q[0], q[1], 0.09 * L, 0.05 * L, ang, _PINK)
    # tail: a chain of shrinking discs, curving with the bend and waving with the gait
    rear = halves[0][1]
    pt, ang = centre - 0.95 * a * _unit(rear), rear + np.pi
    for i in range(7):
        ang += -0.2 * bend + 0.12 * stride * np.sin(gait - 0.9 * i)
        pt = pt + 0.11 * L * _unit(ang)
        rad = (0.065 - 0.004 * i) * L
        _paint(img, pt[0], pt[1], rad, rad, 0.0, _PINK * 0.9)
    for sgn, ang, bs in halves:
        c = centre + sgn * 0.35 * a * _unit(ang)
        _paint(img, c[0], c[1], 0.65 * a, bs * b, ang, _BODY * br, fur=0.08)
    # head: pivots at the neck (yaw = bend + look-weighted swing) and reaches in and out
    front = halves[1][1]
    yaw = front + bend / 2 + 0.7 * look * np.sin(ph)
    hf, hside = _unit(yaw), _unit(yaw + np.pi / 2)
    ha, hb = 0.27 * L * hs, 0.19 * L * hs
    neck = centre + 0.8 * a * _unit(front)
    hc = neck + (0.75 * ha + 0.08 * L * look * np.cos(ph)) * hf
    for sgn in (1, -1):
        ear = hc - 0.25 * ha * hf + sgn * 0.95 * hb * hside
        _paint(img, ear[0], ear[1], 0.07 * L * hs, 0.05 * L * hs, yaw, _PINK * br)
    _paint(img, hc[0], hc[1], ha, hb, yaw, _HEAD * br, fur=0.05)
    for sgn in (1, -1):
        eye = hc + 0.45 * ha * hf + sgn * 0.55 * hb * hside
        _paint(img, eye[0], eye[1], 0.05 * L * hs, 0.05 * L * hs, 0.0, _EYE)
    return img


def _frames(spec: SyntheticSpec, trace: SyntheticTrace) -> Iterator[np.ndarray]:
    """Rendered frames with camera noise and flicker, one (H, W, 3) uint8 at a time."""
    arena, L = render_arena(spec), _geometry(spec.size)[0]
    rng = _rng(spec.seed, 3)
    for p in trace.poses:
        img = _render(arena, p, L)
        if spec.noise:  # light flicker (0.4 % at noise 3) and sensor noise
            gain = 1 + 0.0013 * spec.noise * rng.normal()
            img = img * gain + rng.normal(0, spec.noise, img.shape)
        yield np.clip(np.rint(img), 0, 255).astype(np.uint8)


def synthetic_clip(spec: SyntheticSpec | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames and labels in memory (no compression).

    Returns: frames (T, size, size, 3) uint8 RGB and labels (T, K) int8 in {0, 1}.
    """
    spec = spec or SyntheticSpec()
    trace = synthetic_trace(spec)
    return np.stack(list(_frames(spec, trace))), trace.labels


def write_synthetic_video(path: str | Path, spec: SyntheticSpec | None = None) -> np.ndarray:
    """Render ``spec`` into an H.264 video at ``path`` (atomic, streamed frame by frame).

    Returns: the labels, (T, K) int8 in {0, 1}.
    """
    spec = spec or SyntheticSpec()
    trace = synthetic_trace(spec)
    write_video(path, _frames(spec, trace), fps=spec.fps, crf=spec.crf)
    return trace.labels


def default_splits(n_videos: int) -> tuple[str, ...]:
    """Mostly train, one val (from 2 videos), one test (from 4): 6 -> 4 train, 1 val, 1 test."""
    n_test = 1 if n_videos >= 4 else 0
    n_val = 1 if n_videos >= 2 else 0
    return ("train",) * (n_videos - n_val - n_test) + ("val",) * n_val + ("test",) * n_test


def _unlabeled_mask(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) bool: round((1 - fraction) * n) frames in up to two contiguous stretches."""
    n_off = n - round(fraction * n)
    mask = np.zeros(n, bool)
    if n_off == 0:
        return mask
    pieces = 2 if n_off >= 20 and n - n_off >= 3 else 1
    off = np.diff(np.r_[0, np.sort(rng.integers(1, n_off, pieces - 1)), n_off])
    on = np.diff(np.r_[0, np.sort(rng.integers(0, n - n_off + 1, pieces)), n - n_off])
    t = 0
    for i in range(pieces):  # labelled, unlabelled, labelled, unlabelled, labelled
        t += on[i]
        mask[t : t + off[i]] = True
        t += off[i]
    return mask


def make_synthetic_project(
    parent: str | Path,
    name: str = "demo",
    n_videos: int = 6,
    spec: SyntheticSpec | None = None,
    splits: Sequence[str] | None = None,
    labeled_fraction: float = 1.0,
    exclusive: bool = False,
) -> Project:
    """Create ``<parent>/<name>_deepethogram`` holding ``n_videos`` synthetic videos.

    Videos are written to ``<parent>/_synthetic_videos/<name>_NN.mp4`` (each with its own
    seed drawn from ``spec.seed`` and its index, all in one arena, as from one rig: a
    per-video arena would let a model tell videos apart by their floor), next to
    ``<name>_NN_truth.csv`` (the full ground truth), then added with the given
    ``splits`` (default :func:`default_splits`; at least one train and one val). Each
    video gets labels for ``labeled_fraction`` of its frames; the rest are -1 in up to
    two contiguous stretches. A video with no labelled frame gets no label file, as in
    a fresh project. ``exclusive``: the project's ``project.exclusive`` (the bouts are
    exclusive, so the one-behaviour-per-frame mode fits them).
    """
    spec = spec or SyntheticSpec()
    splits = tuple(splits) if splits is not None else default_splits(n_videos)
    if n_videos < 2 or len(splits) != n_videos:
        raise ValueError(f"need n_videos >= 2 and one split per video, got {n_videos}, {splits}")
    if set(splits) - set(SPLITS) or "train" not in splits or "val" not in splits:
        raise ValueError(f"splits must be from {SPLITS} with >= 1 train and >= 1 val: {splits}")
    if not 0.0 <= labeled_fraction <= 1.0:
        raise ValueError(f"labeled_fraction must be in [0, 1], got {labeled_fraction}")
    project = Project.create(parent, name, list(spec.behaviors), exclusive=exclusive)
    folder = Path(parent) / "_synthetic_videos"
    folder.mkdir(exist_ok=True)
    for i, split in enumerate(splits):
        seed = int(np.random.SeedSequence([spec.seed, i]).generate_state(1)[0])
        path = folder / f"{name}_{i:02d}.mp4"
        arena = spec.seed if spec.arena_seed is None else spec.arena_seed
        truth = write_synthetic_video(path, dataclasses.replace(spec, seed=seed, arena_seed=arena))
        write_labels(folder / f"{path.stem}_truth.csv", Labels(list(spec.behaviors), truth))
        key = project.add_video(path, split=split)
        labels = truth.copy()
        labels[_unlabeled_mask(len(labels), labeled_fraction, np.random.default_rng(seed))] = -1
        if (labels >= 0).any():
            project.save_labels(key, Labels(list(spec.behaviors), labels))
    return project
