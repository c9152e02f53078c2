"""X-y charts: `Line` (one series in data units), `lines` (series over x-y axes, with a
legend when there are several) and `scatter` (translucent dots with guide lines drawn
over them). Both charts share the private `_Plane`, which maps data to pixels and draws
the round-ticked axes and their titles, and `_legend`. Each returns one inline ``<svg>``
element, or "" when there is nothing to draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from gristmill.profile.svg.base import (
    AXIS,
    BLUE,
    FONT,
    GRID,
    _e,
    _n,
    _svg,
    _text,
    compact,
    nice_range,
    nice_ticks,
)


class Line(NamedTuple):
    """One series of `lines` (or a guide drawn over `scatter`), in data units."""

    name: str
    points: Sequence[tuple[float, float]]
    color: str = BLUE
    dashed: bool = False
    dots: bool = False


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
