"""Static charts as PNG: training curves, per-behaviour bars, precision-recall, ethograms.

Why PNG (drawn with Pillow, which torchvision already needs): executed notebooks and
retrain reports are read later, untrusted and without a kernel, where widgets and SVG
may not render but a PNG shows everywhere (JupyterLab, GitHub, nbviewer). Live curves
during training are the TrainingMonitor widget's job. Every function returns a
:class:`Png`, which a notebook displays as the value of a cell.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from deg_core.fileio import atomic_open
from deg_core.report.ethogram import ethogram_image

# Okabe-Ito, as deg_core.report.ethogram colours behaviours (so a behaviour keeps its colour)
PALETTE = ("#e69f00", "#56b4e9", "#009e73", "#d55e00", "#cc79a7", "#0072b2", "#f0e442")
# bar series (e.g. val, test): neutral shades, so they are not read as behaviours
SERIES = ("#3b4c63", "#8da0b6", "#c9d3de", "#1b2330")
INK, GRID, MUTED = "#222222", "#e4e4e4", "#777777"


@dataclass(frozen=True)
class Png:
    """A rendered picture: ``data`` is a PNG file's bytes."""

    data: bytes
    width: int
    height: int

    def _repr_png_(self) -> bytes:
        return self.data

    def save(self, path: str | Path) -> Path:
        """Write the PNG atomically; returns the path."""
        with atomic_open(path, "wb") as f:
            f.write(self.data)
        return Path(path)

    @classmethod
    def from_image(cls, image: Image.Image) -> Png:
        buf = io.BytesIO()
        image.save(buf, format="PNG", optimize=True)
        return cls(buf.getvalue(), image.width, image.height)

    @classmethod
    def from_array(cls, array: np.ndarray) -> Png:
        """(H, W, 3) uint8 RGB."""
        return cls.from_image(Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)))

    @classmethod
    def from_file(cls, path: str | Path) -> Png:
        with Image.open(path) as im:
            return cls(Path(path).read_bytes(), im.width, im.height)


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def nice_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """About ``n`` round tick values (steps of 1, 2 or 5 x 10^k) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return np.array([lo if math.isfinite(lo) else 0.0])
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = np.arange(first, hi + step * 1e-6, step)
    return np.round(ticks, 10)


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 and abs(v) < 1e6 else f"{v:.3g}"


def _limits(values: Sequence[np.ndarray], pad: float) -> tuple[float, float]:
    finite = [v[np.isfinite(v)] for v in values]
    finite = [v for v in finite if v.size]
    if not finite:
        return 0.0, 1.0
    lo = float(min(v.min() for v in finite))
    hi = float(max(v.max() for v in finite))
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    return lo - pad * span, hi + pad * span


class _Canvas:
    """A figure: title on top, plotting area with axes, legend below; data -> pixels."""

    def __init__(
        self,
        size: tuple[int, int],
        title: str,
        xlabel: str,
        ylabel: str,
        xlim: tuple[float, float],
        ylim: tuple[float, float],
        legend_rows: int = 0,
    ):
        self.w, self.h = size
        self.image = Image.new("RGB", size, "white")
        self.draw = ImageDraw.Draw(self.image)
        self.left, self.right, self.top = 64, self.w - 16, 34
        self.bottom = self.h - 44 - 20 * legend_rows
        self.xlim, self.ylim = xlim, ylim
        self.draw.text((self.w // 2, 8), title, fill=INK, font=_font(15), anchor="mt")
        self.draw.text(
            ((self.left + self.right) // 2, self.bottom + 24),
            xlabel,
            fill=INK,
            font=_font(12),
            anchor="mt",
        )
        label = Image.new("RGB", (max(1, self.bottom - self.top), 16), "white")
        ImageDraw.Draw(label).text(
            (label.width // 2, 0), ylabel, fill=INK, font=_font(12), anchor="mt"
        )
        self.image.paste(label.rotate(90, expand=True), (4, self.top))

    def x(self, v: Any) -> np.ndarray:
        lo, hi = self.xlim
        return self.left + (np.asarray(v, float) - lo) / (hi - lo) * (self.right - self.left)

    def y(self, v: Any) -> np.ndarray:
        lo, hi = self.ylim
        return self.bottom - (np.asarray(v, float) - lo) / (hi - lo) * (self.bottom - self.top)

    def axes(self, xticks: np.ndarray | None, yticks: np.ndarray) -> None:
        d, f = self.draw, _font(11)
        for t in yticks:
            py = float(self.y(t))
            d.line([(self.left, py), (self.right, py)], fill=GRID)
            d.text((self.left - 6, py), _fmt(float(t)), fill=MUTED, font=f, anchor="rm")
        for t in xticks if xticks is not None else []:
            px = float(self.x(t))
            d.line([(px, self.bottom), (px, self.bottom + 4)], fill=INK)
            d.text((px, self.bottom + 6), _fmt(float(t)), fill=MUTED, font=f, anchor="mt")
        d.rectangle([self.left, self.top, self.right, self.bottom], outline=INK)

    def polyline(self, x: np.ndarray, y: np.ndarray, fill: str, width: int = 2) -> None:
        """Connect finite points; a NaN breaks the line."""
        px, py = self.x(x), self.y(y)
        ok = np.isfinite(px) & np.isfinite(py)
        run: list[tuple[float, float]] = []
        for a, b, good in zip(px, py, ok, strict=True):
            if good:
                run.append((float(a), float(b)))
            elif run:
                self._segment(run, fill, width)
                run = []
        self._segment(run, fill, width)

    def _segment(self, pts: list[tuple[float, float]], fill: str, width: int) -> None:
        if len(pts) >= 2:
            self.draw.line(pts, fill=fill, width=width, joint="curve")
        if len(pts) <= 12:  # few points: mark them so a single epoch is visible
            for a, b in pts:
                self.draw.ellipse([a - 3, b - 3, a + 3, b + 3], fill=fill)

    def marker(self, x: float, y: float, fill: str, text: str = "") -> None:
        px, py = float(self.x(x)), float(self.y(y))
        if not (math.isfinite(px) and math.isfinite(py)):
            return
        self.draw.regular_polygon((px, py, 7), 4, rotation=45, fill=fill, outline=INK)
        if text:  # on the side with room
            right = px + 9 + self.draw.textlength(text, font=_font(11)) < self.right
            at, anchor = ((px + 9, py - 2), "lb") if right else ((px - 9, py - 2), "rb")
            self.draw.text(at, text, fill=INK, font=_font(11), anchor=anchor)

    def legend(self, entries: Sequence[tuple[str, str]]) -> None:
        """One or more rows of colour swatches and names under the x label."""
        x, y, f = self.left, self.bottom + 44, _font(12)
        for name, fill in entries:
            wide = 26 + int(self.draw.textlength(name, font=f)) + 14
            if x + wide > self.right and x > self.left:
                x, y = self.left, y + 20
            self.draw.rectangle([x, y + 3, x + 18, y + 13], fill=fill)
            self.draw.text((x + 24, y + 8), name, fill=INK, font=f, anchor="lm")
            x += wide

    def png(self) -> Png:
        return Png.from_image(self.image)


def _legend_rows(names: Sequence[str], width: int) -> int:
    avail = width - 80
    rows, x = 1, 0
    for n in names:
        wide = 40 + 7 * len(n)
        if x + wide > avail and x:
            rows, x = rows + 1, 0
        x += wide
    return rows if names else 0


def line_chart(
    series: Mapping[str, tuple[Any, Any]],  # name -> (x, y) array-likes
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
    marks: Mapping[str, tuple[float, float]] | None = None,
    colours: Mapping[str, str] | None = None,
    integer_x: bool = False,
    size: tuple[int, int] = (640, 340),
) -> Png:
    """Lines of (x, y) per named series; ``marks``: labelled points (e.g. the best epoch)."""
    xs = [np.asarray(x, float) for x, _ in series.values()]
    ys = [np.asarray(y, float) for _, y in series.values()]
    mark_x = [np.array([p[0]], float) for p in (marks or {}).values()]
    mark_y = [np.array([p[1]], float) for p in (marks or {}).values()]
    xlim = _limits(xs + mark_x, 0.02)
    ylim = ylim or _limits(ys + mark_y, 0.08)
    names = list(series)
    canvas = _Canvas(size, title, xlabel, ylabel, xlim, ylim, _legend_rows(names, size[0]))
    xt = nice_ticks(*xlim)
    if integer_x:
        xt = xt[np.isclose(xt, np.round(xt))] if len(xt) > 1 else xt
    canvas.axes(xt[(xt >= xlim[0]) & (xt <= xlim[1])], nice_ticks(*ylim))
    fills = {n: (colours or {}).get(n, colour(i)) for i, n in enumerate(names)}
    for n, x, y in zip(names, xs, ys, strict=True):
        canvas.polyline(x, y, fills[n])
    for text, (mx, my) in (marks or {}).items():
        canvas.marker(mx, my, "#2ca02c", text)
    canvas.legend([(n, fills[n]) for n in names])
    return canvas.png()


def bar_chart(
    groups: Mapping[str, Mapping[str, float | None]],
    *,
    title: str,
    ylabel: str,
    ylim: tuple[float, float] = (0.0, 1.0),
    size: tuple[int, int] = (640, 340),
) -> Png:
    """Grouped bars: ``groups[series][category] = value``; None is drawn as "n/a"."""
    categories: list[str] = []
    for values in groups.values():
        categories += [c for c in values if c not in categories]
    names = list(groups)
    canvas = _Canvas(
        size,
        title,
        "",
        ylabel,
        (0.0, max(len(categories), 1)),
        ylim,
        _legend_rows(names, size[0]) if len(names) > 1 else 0,
    )
    canvas.axes(None, nice_ticks(*ylim))
    f = _font(11)
    slot = (canvas.right - canvas.left) / max(len(categories), 1)
    bar = slot * 0.8 / max(len(names), 1)
    for ci, cat in enumerate(categories):
        x0 = canvas.left + ci * slot + slot * 0.1
        canvas.draw.text((x0 + slot * 0.4, canvas.bottom + 6), cat, fill=INK, font=f, anchor="mt")
        for si, name in enumerate(names):
            v = groups[name].get(cat)
            left = x0 + si * bar
            fill = colour(ci) if len(names) == 1 else SERIES[si % len(SERIES)]
            if v is None or not math.isfinite(float(v)):
                canvas.draw.text(
                    (left + bar / 2, canvas.bottom - 4), "n/a", fill=MUTED, font=f, anchor="mb"
                )
                continue
            top = float(canvas.y(min(max(float(v), ylim[0]), ylim[1])))
            canvas.draw.rectangle([left + 1, top, left + bar - 1, canvas.bottom], fill=fill)
            canvas.draw.text(
                (left + bar / 2, top - 2), f"{float(v):.2f}", fill=INK, font=f, anchor="mb"
            )
    if len(names) > 1:
        canvas.legend([(n, SERIES[i % len(SERIES)]) for i, n in enumerate(names)])
    return canvas.png()


def pr_chart(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    chosen: Mapping[str, tuple[float, float, float]],
    *,
    title: str = "precision-recall (validation)",
    size: tuple[int, int] = (640, 380),
) -> Png:
    """Precision over recall per behaviour; ``chosen[name] = (recall, precision, threshold)``
    marks the operating point the model uses (a diamond labelled with its threshold)."""
    names = list(curves)
    canvas = _Canvas(
        size, title, "recall", "precision", (0.0, 1.0), (0.0, 1.02), _legend_rows(names, size[0])
    )
    ticks = np.linspace(0, 1, 6)
    canvas.axes(ticks, ticks)
    for i, n in enumerate(names):
        r, p = curves[n]
        canvas.polyline(np.asarray(r), np.asarray(p), colour(i))
    for i, n in enumerate(names):
        if n in chosen:
            r0, p0, t = chosen[n]
            canvas.marker(r0, p0, colour(i), f"t={t:.2f}")
    canvas.legend([(n, colour(i)) for i, n in enumerate(names)])
    return canvas.png()


def ethogram_chart(
    rows: Sequence[tuple[str, np.ndarray]],
    behaviors: Sequence[str],
    *,
    title: str = "",
    width: int = 900,
    band: int = 12,
) -> Png:
    """Ethogram: for each row (e.g. labels, predictions) one band per behaviour over time.

    rows: (name, (T, K) int matrix in {1, 0, -1}); behaviour k has colour k, absent is
    white, unlabelled (-1) grey; frames are resampled to the plot width.
    """
    f, margin, plot_w = _font(11), 150, width - 166
    blocks = [ethogram_image([(name, m)], plot_w, band=band) for name, m in rows]
    height = 34 + sum(b.shape[0] + 22 for b in blocks) + 44
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((width // 2, 8), title, fill=INK, font=_font(15), anchor="mt")
    y = 34
    n_frames = max((len(m) for _, m in rows), default=1)
    for (name, _), block in zip(rows, blocks, strict=True):
        draw.text((margin, y), name, fill=INK, font=_font(12), anchor="lt")
        y += 16
        image.paste(Image.fromarray(block), (margin, y))
        for k, b in enumerate(behaviors):
            draw.text(
                (margin - 6, y + k * (band + 1) + band // 2), b, fill=INK, font=f, anchor="rm"
            )
        draw.rectangle([margin - 1, y - 1, margin + plot_w, y + block.shape[0]], outline=MUTED)
        y += block.shape[0] + 6
    for t in nice_ticks(0, n_frames, 6):
        if t > n_frames:
            continue
        px = margin + t / max(n_frames, 1) * plot_w
        draw.line([(px, y), (px, y + 4)], fill=INK)
        draw.text((px, y + 6), _fmt(float(t)), fill=MUTED, font=f, anchor="mt")
    draw.text((margin + plot_w // 2, y + 20), "frame", fill=INK, font=_font(12), anchor="mt")
    if any((m == -1).any() for _, m in rows):
        draw.rectangle([margin, y + 22, margin + 14, y + 32], fill=(200, 200, 200))
        draw.text((margin + 20, y + 27), "not labelled", fill=MUTED, font=f, anchor="lm")
    return Png.from_image(image)


def image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    *,
    columns: int = 6,
    cell: int = 140,
) -> Png:
    """Thumbnails ((H, W, 3) uint8 each) in a grid, each fitted into ``cell`` pixels."""
    n = len(images)
    cols = max(1, min(columns, n))
    rows = max(1, math.ceil(n / cols))
    label_h = 16 if titles else 0
    out = Image.new("RGB", (cols * (cell + 6) + 6, rows * (cell + label_h + 6) + 6), "white")
    draw = ImageDraw.Draw(out)
    for i, arr in enumerate(images):
        im = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))
        scale = cell / max(im.width, im.height)
        im = im.resize(
            (max(1, round(im.width * scale)), max(1, round(im.height * scale))),
            Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.BILINEAR,
        )
        x = 6 + (i % cols) * (cell + 6)
        y = 6 + (i // cols) * (cell + label_h + 6)
        out.paste(im, (x + (cell - im.width) // 2, y + (cell - im.height) // 2))
        if titles:
            draw.text(
                (x + cell // 2, y + cell + 2), titles[i], fill=INK, font=_font(11), anchor="mt"
            )
    return Png.from_image(out)
