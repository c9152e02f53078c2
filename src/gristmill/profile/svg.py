"""Small hand-built SVG charts for the HTML profile report.

No JavaScript and no external file: each function returns one inline ``<svg>`` element,
with its colours as attributes (so it renders without the page's CSS) and every label
escaped. Labels arrive formatted; these helpers only place them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from html import escape
from typing import NamedTuple

BLUE = "#4c78a8"
ORANGE = "#e45756"
GREY = "#b8c2cc"
AXIS = "#9aa5b1"
GRID = "#e9edf1"
TEXT = "#52606d"
FONT = 11
HALO = ' stroke="#ffffff" stroke-width="3" paint-order="stroke"'


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _n(value: float) -> str:
    """A coordinate, short."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compact(value: float) -> str:
    """An axis label: 950, 1.2k, 3.4M."""
    size = abs(value)
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= factor:
            text = f"{value / factor:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    if size == 0 or float(value).is_integer():
        return str(int(value))
    return f"{value:.2g}"


def _x_labels(
    positions: Sequence[tuple[float, str]], y: float, left: float, right: float
) -> list[str]:
    """Axis labels at x positions, dropping those that would overlap a kept one.

    The first and last are kept (anchored inwards); the others are centred on their tick.
    """
    if not positions:
        return []

    def extent(x: float, label: str, anchor: str) -> tuple[float, float]:
        w = len(label) * FONT * 0.6
        if anchor == "start":
            return x, x + w
        if anchor == "end":
            return x - w, x
        return x - w / 2, x + w / 2

    first_x, first_label = positions[0]
    kept = [(first_x, first_label, "start" if len(positions) > 1 else "middle")]
    last: tuple[float, str, str] | None = None
    if len(positions) > 1:
        last = (positions[-1][0], positions[-1][1], "end")
    for x, label in positions[1:-1]:
        lo, hi = extent(x, label, "middle")
        if lo < extent(*kept[-1])[1] + 10 or lo < left or hi > right:
            continue
        if last is not None and hi > extent(*last)[0] - 10:
            continue
        kept.append((x, label, "middle"))
    if last is not None and extent(*last)[0] > extent(*kept[-1])[1] + 6:
        kept.append(last)
    return [_text(x, y, label, anchor) for x, label, anchor in kept]


def _svg(width: float, height: float, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'width="{_n(width)}" height="{_n(height)}" font-size="{FONT}" fill="{TEXT}">'
        f"<title>{_e(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, label: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}"{extra}>{_e(label)}</text>'


def _y_axis(left: float, top: float, right: float, height: float, vmax: float) -> list[str]:
    """Gridlines and labels at 0, half and the maximum of a count axis."""
    parts: list[str] = []
    for share in (0.0, 0.5, 1.0):
        y = top + height - share * height
        parts.append(f'<path d="M{_n(left)} {_n(y)}H{_n(right)}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, compact(vmax * share), "end"))
    return parts


def histogram(
    edges: Sequence[float],
    counts: Sequence[int],
    label: Callable[[float], str],
    *,
    title: str,
    width: float = 380,
    height: float = 190,
) -> str:
    """Vertical bars between bin edges, the x axis labelled with ``label(edge)``."""
    if not counts or len(edges) != len(counts) + 1:
        return ""
    left, right, top, bottom = 46.0, 14.0, 10.0, 34.0
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = float(edges[0]), float(edges[-1])
    by_value = math.isfinite(lo) and math.isfinite(hi) and hi > lo
    if by_value and any(b < a for a, b in itertools.pairwise(edges)):
        by_value = False

    def x_at(i: int) -> float:
        if by_value:
            return left + (float(edges[i]) - lo) / (hi - lo) * plot_w
        return left + i / len(counts) * plot_w

    vmax = max(max(counts), 1)
    parts = _y_axis(left, top, left + plot_w, plot_h, vmax)
    for i, count in enumerate(counts):
        x0, x1 = x_at(i), x_at(i + 1)
        bar_h = count / vmax * plot_h
        tip = f"{label(edges[i])} to {label(edges[i + 1])}: {count:,}"
        parts.append(
            f'<rect x="{_n(x0 + 0.5)}" y="{_n(top + plot_h - bar_h)}" '
            f'width="{_n(max(x1 - x0 - 1, 1))}" height="{_n(bar_h)}" fill="{BLUE}">'
            f"<title>{_e(tip)}</title></rect>"
        )
    base = top + plot_h
    parts.append(f'<path d="M{_n(left)} {_n(base)}H{_n(left + plot_w)}" stroke="{AXIS}"/>')
    steps = min(len(counts), 6)
    ticks = sorted({round(k * len(counts) / steps) for k in range(steps + 1)})
    for i in ticks:
        parts.append(f'<path d="M{_n(x_at(i))} {_n(base)}v4" stroke="{AXIS}"/>')
    positions = [(x_at(i), label(edges[i])) for i in ticks]
    parts += _x_labels(positions, base + 16, 0, width)
    return _svg(width, height, title, parts)


def hbars(
    rows: Sequence[tuple[str, float, str]],
    *,
    title: str,
    width: float = 380,
    vmax: float | None = None,
    colors: Sequence[str] | None = None,
    refs: Sequence[tuple[float, str]] = (),
) -> str:
    """Horizontal bars: (label, value, annotation) per row, dashed reference lines."""
    if not rows:
        return ""
    label_w = min(150.0, max(60.0, width * 0.32))
    note_w, row_h, top = 112.0, 20.0, 6.0
    bottom = 20.0 if refs else 6.0
    plot_w = width - label_w - note_w
    top_value = vmax if vmax else max((value for _, value, _ in rows), default=0.0)
    top_value = max([top_value, *(value for value, _ in refs)]) or 1.0
    y_end = top + row_h * len(rows)
    parts: list[str] = []
    for value, ref_label in refs:  # behind the bars and their notes
        x = label_w + value / top_value * plot_w
        parts.append(
            f'<path d="M{_n(x)} {_n(top)}V{_n(y_end + 4)}" stroke="#3e4c59" '
            'stroke-dasharray="4 3"/>'
        )
        parts.append(_text(x, y_end + 15, ref_label, "middle", ' font-size="10"'))
    chars = int(label_w / (FONT * 0.6)) - 1
    for i, (label, value, note) in enumerate(rows):
        y = top + i * row_h
        color = colors[i] if colors else BLUE
        bar_w = max(value, 0.0) / top_value * plot_w
        parts.append(
            f"<g><title>{_e(label)}: {_e(note)}</title>"
            + _text(label_w - 8, y + 14, _short(label, chars), "end")
            + f'<rect x="{_n(label_w)}" y="{_n(y + 3)}" width="{_n(max(bar_w, 1))}" '
            f'height="{_n(row_h - 6)}" rx="2" fill="{color}"/>'
            + _text(label_w + bar_w + 5, y + 14, note, extra=HALO)
            + "</g>"
        )
    parts.append(f'<path d="M{_n(label_w)} {_n(top)}V{_n(y_end)}" stroke="{AXIS}"/>')
    height = y_end + bottom
    return _svg(width, height, title, parts)


def timeline(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    width: float = 1080,
    height: float = 210,
    highlight: Sequence[str] = (),
) -> str:
    """Rows per period: an area and a line (dots when few periods), x labelled by period."""
    if not points:
        return ""
    left, right, top, bottom = 52.0, 20.0, 12.0, 30.0
    plot_w, plot_h = width - left - right, height - top - bottom
    vmax = max(max(value for _, value in points), 1.0)
    n = len(points)

    def xy(i: int, value: float) -> tuple[float, float]:
        x = left + (i / (n - 1) * plot_w if n > 1 else plot_w / 2)
        return x, top + plot_h - value / vmax * plot_h

    parts = _y_axis(left, top, left + plot_w, plot_h, vmax)
    coords = [xy(i, value) for i, (_, value) in enumerate(points)]
    base = top + plot_h
    if n > 1:
        line = "M" + "L".join(f"{_n(x)} {_n(y)}" for x, y in coords)
        area = f"{line}L{_n(coords[-1][0])} {_n(base)}L{_n(coords[0][0])} {_n(base)}Z"
        parts.append(f'<path d="{area}" fill="{BLUE}" fill-opacity="0.15"/>')
        parts.append(f'<path d="{line}" fill="none" stroke="{BLUE}" stroke-width="2"/>')
    for (label, value), (x, y) in zip(points, coords, strict=True):
        if label in highlight:
            parts.append(
                f'<path d="M{_n(x)} {_n(top)}V{_n(base)}" stroke="{ORANGE}" '
                'stroke-dasharray="3 3"/>'
            )
        if n <= 90 or label in highlight:
            fill = ORANGE if label in highlight else BLUE
            parts.append(
                f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3" fill="{fill}">'
                f"<title>{_e(label)}: {value:,.0f}</title></circle>"
            )
    parts.append(f'<path d="M{_n(left)} {_n(base)}H{_n(left + plot_w)}" stroke="{AXIS}"/>')
    steps = min(n - 1, 12)
    ticks = sorted({round(k * (n - 1) / steps) for k in range(steps + 1)}) if n > 1 else [0]
    positions = [(coords[i][0], points[i][0]) for i in ticks]
    parts += _x_labels(positions, base + 17, 0, width)
    return _svg(width, height, title, parts)


def _diverging(value: float) -> str:
    """White at 0, red towards +1, blue towards -1."""
    t = min(abs(value), 1.0)
    end = (214, 96, 77) if value >= 0 else (67, 147, 195)
    r, g, b = (round(255 + (c - 255) * t) for c in end)
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap(
    names: Sequence[str],
    value: Callable[[str, str], float | None],
    *,
    title: str,
) -> str:
    """A correlation matrix, values in [-1, 1]; a missing value is a blank cell."""
    n = len(names)
    if n == 0:
        return ""
    cell = max(14.0, min(44.0, 560.0 / n))
    longest = max(len(_short(name, 22)) for name in names)
    label_w = min(170.0, 6.6 * longest + 14)
    top = label_w * 0.72 + 8
    width = label_w + cell * n + label_w * 0.72 + 12
    height = top + cell * n + 44
    parts: list[str] = []
    for j, name in enumerate(names):
        x = label_w + (j + 0.5) * cell + 4
        parts.append(
            f'<text x="{_n(x)}" y="{_n(top - 6)}" transform="rotate(-45 {_n(x)} {_n(top - 6)})">'
            f"<title>{_e(name)}</title>{_e(_short(name, 22))}</text>"
        )
    for i, row in enumerate(names):
        y = top + i * cell
        parts.append(
            f'<text x="{_n(label_w - 6)}" y="{_n(y + cell / 2 + 4)}" text-anchor="end">'
            f"<title>{_e(row)}</title>{_e(_short(row, 22))}</text>"
        )
        for j, col in enumerate(names):
            v = value(row, col)
            x = label_w + j * cell
            fill = "#ffffff" if v is None or not math.isfinite(v) else _diverging(v)
            tip = f"{row} \N{MULTIPLICATION SIGN} {col}: " + ("n/a" if v is None else f"{v:.3f}")
            parts.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(cell)}" height="{_n(cell)}" '
                f'fill="{fill}" stroke="#ffffff"><title>{_e(tip)}</title></rect>'
            )
            if v is not None and math.isfinite(v) and cell >= 30:
                ink = "#ffffff" if abs(v) > 0.6 else "#1f2933"
                parts.append(
                    _text(x + cell / 2, y + cell / 2 + 4, f"{v:.2f}", "middle", f' fill="{ink}"')
                )
    grid = f"M{_n(label_w)} {_n(top)}h{_n(cell * n)}v{_n(cell * n)}h{_n(-cell * n)}Z"
    parts.append(f'<path d="{grid}" fill="none" stroke="{GRID}"/>')
    legend_y = top + cell * n + 14
    for k, v in enumerate((-1.0, -0.5, 0.0, 0.5, 1.0)):
        x = label_w + k * 54
        parts.append(
            f'<rect x="{_n(x)}" y="{_n(legend_y)}" width="18" height="12" '
            f'fill="{_diverging(v)}" stroke="{GRID}"/>'
        )
        parts.append(_text(x + 22, legend_y + 10, f"{v:+g}" if v else "0"))
    return _svg(width, height, title, parts)


# ----------------------------------------------------------------------------- x-y charts


class Line(NamedTuple):
    """One series of `lines` (or a guide drawn over `scatter`), in data units."""

    name: str
    points: Sequence[tuple[float, float]]
    color: str = BLUE
    dashed: bool = False
    dots: bool = False


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values (steps of 1, 2, 2.5 or 5 times a power of ten) from lo to hi."""
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [lo]
    magnitude = 10 ** math.floor(math.log10(span / count))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if span / (m * magnitude) <= count)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    # round() drops float noise such as 0.30000000000000004.
    return [round(k * step, 12) for k in range(first, last + 1)]


def nice_range(lo: float, hi: float) -> tuple[float, float]:
    """[lo, hi] widened to the round ticks around it (a point gets some room)."""
    if hi <= lo:
        pad = abs(lo) * 0.1 or 0.5
        lo, hi = lo - pad, hi + pad
    ticks = nice_ticks(lo, hi)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else (hi - lo)
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step


def _span(values: Sequence[float], given: tuple[float, float] | None) -> tuple[float, float]:
    """The axis range: as given, else the data's, widened to round ticks."""
    if given is not None:
        return given
    finite = [v for v in values if math.isfinite(v)]
    return nice_range(min(finite), max(finite)) if finite else (0.0, 1.0)


class _Plane:
    """Maps data to pixels inside the plot area, and draws the axes around it."""

    def __init__(
        self,
        width: float,
        height: float,
        top: float,
        x_span: tuple[float, float],
        y_span: tuple[float, float],
        y_label: Callable[[float], str],
    ) -> None:
        self.x_span, self.y_span = x_span, y_span
        self.x_ticks = [t for t in nice_ticks(*x_span) if x_span[0] <= t <= x_span[1]]
        self.y_ticks = [t for t in nice_ticks(*y_span) if y_span[0] <= t <= y_span[1]]
        # Room for the longest y label, and the y title beside it.
        longest = max((len(y_label(t)) for t in self.y_ticks), default=1)
        self.left, self.right, self.top, self.bottom = 30 + longest * FONT * 0.6, 16.0, top, 42.0
        self.width, self.height = width, height
        self.plot_w = width - self.left - self.right
        self.plot_h = height - top - self.bottom

    def x(self, value: float) -> float:
        lo, hi = self.x_span
        share = (value - lo) / (hi - lo) if hi > lo else 0.5
        return self.left + min(max(share, 0.0), 1.0) * self.plot_w

    def y(self, value: float) -> float:
        lo, hi = self.y_span
        share = (value - lo) / (hi - lo) if hi > lo else 0.5
        return self.top + (1 - min(max(share, 0.0), 1.0)) * self.plot_h

    def axes(
        self,
        x_title: str,
        y_title: str,
        x_label: Callable[[float], str],
        y_label: Callable[[float], str],
    ) -> list[str]:
        parts: list[str] = []
        base, end = self.top + self.plot_h, self.left + self.plot_w
        for t in self.y_ticks:
            y = self.y(t)
            parts.append(f'<path d="M{_n(self.left)} {_n(y)}H{_n(end)}" stroke="{GRID}"/>')
            parts.append(_text(self.left - 6, y + 4, y_label(t), "end"))
        right_edge = (
            -math.inf
        )  # of the last x label drawn: labels that would overlap it are left out
        for t in self.x_ticks:
            x = self.x(t)
            parts.append(f'<path d="M{_n(x)} {_n(self.top)}V{_n(base)}" stroke="{GRID}"/>')
            parts.append(f'<path d="M{_n(x)} {_n(base)}v4" stroke="{AXIS}"/>')
            label = x_label(t)
            half = len(label) * FONT * 0.3
            if x - half > right_edge + 6:
                parts.append(_text(x, base + 16, label, "middle"))
                right_edge = x + half
        parts.append(
            f'<path d="M{_n(self.left)} {_n(self.top)}V{_n(base)}H{_n(end)}" '
            f'fill="none" stroke="{AXIS}"/>'
        )
        parts.append(_text(self.left + self.plot_w / 2, base + 34, x_title, "middle"))
        middle = self.top + self.plot_h / 2
        parts.append(
            f'<text x="12" y="{_n(middle)}" text-anchor="middle" '
            f'transform="rotate(-90 12 {_n(middle)})">{_e(y_title)}</text>'
        )
        return parts

    def line(self, series: Line) -> list[str]:
        coords = [(self.x(x), self.y(y)) for x, y in series.points]
        if not coords:
            return []
        parts: list[str] = []
        if len(coords) > 1:
            dash = ' stroke-dasharray="5 4"' if series.dashed else ""
            path = "M" + "L".join(f"{_n(x)} {_n(y)}" for x, y in coords)
            width = 1.5 if series.dashed else 2
            parts.append(
                f'<path d="{path}" fill="none" stroke="{series.color}" stroke-width="{width}"'
                f' stroke-linejoin="round"{dash}/>'
            )
        if series.dots or len(coords) == 1:
            for (x, y), (vx, vy) in zip(coords, series.points, strict=True):
                tip = f"{series.name}: {vx:.4g}, {vy:.4g}"
                parts.append(
                    f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3" fill="{series.color}">'
                    f"<title>{_e(tip)}</title></circle>"
                )
        return parts


def _legend(series: Sequence[Line], width: float) -> tuple[list[str], float]:
    """Swatches and names in rows across the top; returns them and the height taken."""
    parts: list[str] = []
    x, y = 54.0, 12.0
    for s in series:
        if not s.name:  # a second line of a named pair (p10 / p90): one entry is enough
            continue
        item_w = 26 + len(s.name) * FONT * 0.6 + 14
        if x + item_w > width and x > 54:
            x, y = 54.0, y + 16
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        if len(s.points) > 1:
            parts.append(
                f'<path d="M{_n(x)} {_n(y - 4)}h18" stroke="{s.color}" stroke-width="2"{dash}/>'
            )
        if s.dots or len(s.points) == 1:
            parts.append(f'<circle cx="{_n(x + 9)}" cy="{_n(y - 4)}" r="3" fill="{s.color}"/>')
        parts.append(_text(x + 23, y, s.name))
        x += item_w
    return parts, y + 10


def lines(
    series: Sequence[Line],
    *,
    title: str,
    x_title: str,
    y_title: str,
    width: float = 380,
    height: float = 280,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    x_label: Callable[[float], str] = compact,
    y_label: Callable[[float], str] = compact,
) -> str:
    """Lines over x-y axes, with a legend when there is more than one series."""
    drawn = [s for s in series if s.points]
    if not drawn:
        return ""
    named = [s for s in drawn if s.name]
    legend, top = _legend(drawn, width) if len(named) > 1 else ([], 10.0)
    plane = _Plane(
        width,
        height,
        top,
        _span([x for s in drawn for x, _ in s.points], x_range),
        _span([y for s in drawn for _, y in s.points], y_range),
        y_label,
    )
    parts = legend + plane.axes(x_title, y_title, x_label, y_label)
    for s in drawn:
        parts += plane.line(s)
    return _svg(width, height, title, parts)


def scatter(
    points: Sequence[tuple[float, float]],
    *,
    title: str,
    x_title: str,
    y_title: str,
    width: float = 380,
    height: float = 280,
    color: str = BLUE,
    guides: Sequence[Line] = (),
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    x_label: Callable[[float], str] = compact,
    y_label: Callable[[float], str] = compact,
) -> str:
    """Translucent dots (one path of zero-length round-capped strokes, small for
    thousands of points), with guide lines drawn over them."""
    if not points:
        return ""
    legend, top = _legend(guides, width) if guides else ([], 10.0)
    plane = _Plane(
        width,
        height,
        top,
        _span([x for x, _ in points], x_range),
        _span([y for _, y in points], y_range),
        y_label,
    )
    parts = legend + plane.axes(x_title, y_title, x_label, y_label)
    dots = "".join(f"M{_n(plane.x(x))} {_n(plane.y(y))}h0" for x, y in points)
    parts.append(
        f'<path d="{dots}" stroke="{color}" stroke-opacity="0.4" stroke-width="4.5" '
        'stroke-linecap="round" fill="none"/>'
    )
    for guide in guides:
        parts += plane.line(guide)
    return _svg(width, height, title, parts)


def _shade(value: float, color: str) -> str:
    """White at 0, `color` (#rrggbb) at 1."""
    t = min(max(value, 0.0), 1.0) if math.isfinite(value) else 0.0
    end = (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16))
    r, g, b = (round(255 + (c - 255) * t) for c in end)
    return f"#{r:02x}{g:02x}{b:02x}"


def matrix(
    rows: Sequence[str],
    columns: Sequence[str],
    shares: Sequence[Sequence[float]],
    notes: Sequence[Sequence[str]],
    *,
    title: str,
    row_title: str = "",
    column_title: str = "",
    color: str = BLUE,
) -> str:
    """A grid of cells shaded by `shares` (0 to 1) and labelled with `notes`, such as a
    confusion matrix (rows actual, columns predicted)."""
    if not rows or not columns:
        return ""
    cell = max(16.0, min(72.0, 540.0 / max(len(rows), len(columns))))
    label_w = min(170.0, 6.6 * max(len(_short(r, 22)) for r in rows) + 14)
    longest = max(len(_short(c, 22)) for c in columns)
    rotate = longest * FONT * 0.6 > cell - 4
    head = (longest * FONT * 0.6 * 0.72 + 10 if rotate else 18.0) + (18 if column_title else 0)
    top = head + 6
    width = label_w + cell * len(columns) + (longest * 4.8 if rotate else 0) + 12
    height = top + cell * len(rows) + 8
    parts: list[str] = []
    if column_title:
        middle = label_w + cell * len(columns) / 2
        parts.append(_text(middle, 13, column_title, "middle", ' font-weight="600"'))
    if row_title:
        parts.append(_text(label_w - 6, top - 6, row_title, "end", ' font-weight="600"'))
    for j, name in enumerate(columns):
        x = label_w + (j + 0.5) * cell
        label = f"<title>{_e(name)}</title>{_e(_short(name, 22))}"
        if rotate:
            x += 4
            parts.append(
                f'<text x="{_n(x)}" y="{_n(top - 6)}" '
                f'transform="rotate(-45 {_n(x)} {_n(top - 6)})">{label}</text>'
            )
        else:
            parts.append(f'<text x="{_n(x)}" y="{_n(top - 6)}" text-anchor="middle">{label}</text>')
    for i, row in enumerate(rows):
        y = top + i * cell
        parts.append(
            f'<text x="{_n(label_w - 6)}" y="{_n(y + cell / 2 + 4)}" text-anchor="end">'
            f"<title>{_e(row)}</title>{_e(_short(row, 22))}</text>"
        )
        for j, column in enumerate(columns):
            x = label_w + j * cell
            value, note = shares[i][j], notes[i][j]
            parts.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(cell)}" height="{_n(cell)}" '
                f'fill="{_shade(value, color)}" stroke="#ffffff">'
                f"<title>{_e(f'{row} → {column}: {note}')}</title></rect>"
            )
            if cell >= 30 and note:
                ink = "#ffffff" if value > 0.55 else "#1f2933"
                parts.append(
                    _text(x + cell / 2, y + cell / 2 + 4, note, "middle", f' fill="{ink}"')
                )
    grid = (
        f"M{_n(label_w)} {_n(top)}h{_n(cell * len(columns))}v{_n(cell * len(rows))}"
        f"h{_n(-cell * len(columns))}Z"
    )
    parts.append(f'<path d="{grid}" fill="none" stroke="{AXIS}"/>')
    return _svg(width, height, title, parts)
