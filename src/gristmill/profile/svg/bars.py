"""Bar-type charts over a count axis: `histogram` (vertical bars between bin edges),
`hbars` (labelled horizontal bars with notes and dashed reference lines) and `timeline`
(rows per period as an area and a line, with highlighted periods). Each returns one
inline ``<svg>`` element, or "" when there is nothing to draw.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

from gristmill.profile.svg.base import (
    AXIS,
    BLUE,
    FONT,
    HALO,
    ORANGE,
    _e,
    _n,
    _short,
    _svg,
    _text,
    _x_labels,
    _y_axis,
)


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
