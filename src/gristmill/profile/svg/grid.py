"""Grids of shaded cells: `heatmap` (a correlation matrix on a diverging blue-white-red
scale, with a legend) and `matrix` (cells shaded from white to one colour by a share and
labelled with a note, such as a confusion matrix). Each returns one inline ``<svg>``
element, or "" when there are no rows or columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from gristmill.profile.svg.base import AXIS, BLUE, FONT, GRID, _e, _n, _short, _svg, _text


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
