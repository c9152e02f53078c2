"""Small hand-built SVG charts for the HTML profile and model reports.

No JavaScript and no external file: each function returns one inline ``<svg>`` element,
with its colours as attributes (so it renders without the page's CSS) and every label
escaped. Labels arrive formatted; these helpers only place them. `base.py` holds the
palette, the shared primitives and the axis ticks; `bars.py` the histogram, horizontal
bars and timeline; `grid.py` the correlation heatmap and the shaded matrix; `xy.py` the
line and scatter charts. Callers import this package: ``from gristmill.profile import svg``.
"""

from __future__ import annotations

from gristmill.profile.svg.bars import hbars, histogram, timeline
from gristmill.profile.svg.base import (
    AXIS,
    BLUE,
    FONT,
    GREY,
    GRID,
    HALO,
    ORANGE,
    TEXT,
    compact,
    nice_range,
    nice_ticks,
)
from gristmill.profile.svg.grid import heatmap, matrix
from gristmill.profile.svg.xy import Line, lines, scatter

__all__ = [
    "AXIS",
    "BLUE",
    "FONT",
    "GREY",
    "GRID",
    "HALO",
    "ORANGE",
    "TEXT",
    "Line",
    "compact",
    "hbars",
    "heatmap",
    "histogram",
    "lines",
    "matrix",
    "nice_range",
    "nice_ticks",
    "scatter",
    "timeline",
]
