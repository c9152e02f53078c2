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
