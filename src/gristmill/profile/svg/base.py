"""Shared primitives of the inline SVG charts: the palette and font size, escaping and
short coordinates, the ``<svg>`` and ``<text>`` wrappers, `compact` axis labels, x labels
that drop those that would overlap, the gridded count axis of the bar charts, and the
round ticks and ranges (`nice_ticks`, `nice_range`) of the x-y axes. Every chart module
of this package builds on these; none of them draws a chart by itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
