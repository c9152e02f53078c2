"""Point-in-time training sets in one SQL query, computed by the warehouse (DuckDB).

For each feature view the spine's rows are put among the view's events, ordered by
entity and time, and every feature is a window function over that sequence: windowed
aggregates over RANGE frames `[T - window, T)` and the latest event over ROWS frames. A
spine row sorts before the events of its own instant, so those events are not seen
(unless the dataset asks for `inclusive` joins). Spine rows contribute nothing to an
aggregate: their inputs are NULL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gristmill.durations import parse_duration
from gristmill.features.definition import Feature, FeatureView

ROW = "_gm_row"
TS = "_gm_ts"
EVENT = "_gm_event"


@dataclass
class Selection:
    """The columns of one view a training set takes."""

    view: FeatureView
    columns: list[str]
    relation: str
    """The view's source table, quoted and qualified."""


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _interval(window: str) -> str:
    micros = int(parse_duration(window).total_seconds() * 1_000_000)
    return f"INTERVAL '{micros} microseconds'"


def _aggregate(feature: Feature, frame: str, index: int) -> str:
    value = f"_gm_in{index}"
    keep = f"_gm_keep{index}" if feature.filter else EVENT
    picked = f"CASE WHEN {keep} = 1 THEN {value} END"
    function = {
        "count": f"count(CASE WHEN {keep} = 1 THEN 1 END)",
        "sum": f"sum({picked})",
        "mean": f"avg({picked})",
        "min": f"min({picked})",
        "max": f"max({picked})",
        "count_distinct": f"count(DISTINCT {picked})",
    }[feature.aggregation or "count"]
    return f"{function} OVER {frame}"


def view_sql(selection: Selection, spine: str, spine_ts: str, inclusive: bool) -> str:
    """A query giving, per spine row (`_gm_row`), the selected columns of one view."""
    view = selection.view
    keys = [_q(k) for k in view.entity]
    partition = f"PARTITION BY {', '.join(keys)}"
    wanted = set(selection.columns)
    inputs, filters, inner, outer = [], [], [], []
    windows: dict[str, str] = {}
    upper = "CURRENT ROW" if inclusive else "INTERVAL '1 microseconds' PRECEDING"
    for index, feature in enumerate(view.features):
        inputs.append(f"{feature.sql or feature.column or '1'} AS _gm_in{index}")
        if feature.filter:
            filters.append(f"CASE WHEN ({feature.filter}) THEN 1 ELSE 0 END AS _gm_keep{index}")
        for column, window in feature.outputs():
            if column not in wanted:
                continue
            if window is not None:
                name = f"w_{window.replace(' ', '')}"
                windows[name] = (
                    f"({partition} ORDER BY {TS} RANGE BETWEEN {_interval(window)} PRECEDING"
                    f" AND {upper})"
                )
                inner.append(f"{_aggregate(feature, name, index)} AS {_q(column)}")
                outer.append(_q(column))
                continue
            # The latest event: spine rows sort before the events of their own instant
            # (after them when inclusive), and ties among events go to the largest value.
            name = f"w_latest{index}"
            windows[name] = (
                f"({partition} ORDER BY {TS}, _gm_rank, _gm_in{index} NULLS FIRST"
                " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
            )
            struct = f"{{'v': _gm_in{index}, 't': {TS}}}"
            inner.append(
                f"last_value(CASE WHEN {EVENT} = 1 THEN {struct} END IGNORE NULLS) OVER {name}"
                f" AS _gm_latest{index}"
            )
            ttl = view.ttl_delta
            stale = (
                f"_gm_at - _gm_latest{index}.t > INTERVAL '{int(ttl.total_seconds() * 1e6)} microseconds'"
                if ttl
                else "FALSE"
            )
            outer.append(
                f"CASE WHEN {stale} THEN NULL ELSE _gm_latest{index}.v END AS {_q(column)}"
            )
    spine_rank = "2" if inclusive else "0"
    event_columns = [*keys, f"{_q(view.timestamp)} AS {TS}", f"NULL AS {ROW}", f"1 AS {EVENT}"]
    spine_columns = [*keys, f"{_q(spine_ts)} AS {TS}", ROW, f"0 AS {EVENT}"]
    event_columns += ["1 AS _gm_rank", *inputs, *filters]
    spine_columns += [f"{spine_rank} AS _gm_rank"]
    spine_columns += [f"NULL AS _gm_in{i}" for i in range(len(view.features))]
    spine_columns += [f"NULL AS _gm_keep{i}" for i, f in enumerate(view.features) if f.filter]
    present = " AND ".join(f"{k} IS NOT NULL" for k in [*keys, _q(view.timestamp)])
    points = (
        f"SELECT {', '.join(event_columns)} FROM {selection.relation} WHERE {present}"
        f" UNION ALL SELECT {', '.join(spine_columns)} FROM {spine}"
    )
    frames = ", ".join(f"{name} AS {frame}" for name, frame in windows.items())
    computed = (
        f"SELECT {ROW}, {TS} AS _gm_at, {', '.join(inner)} FROM ({points}) AS p"
        f" WINDOW {frames} QUALIFY {ROW} IS NOT NULL"
    )
    return f"SELECT {ROW}, {', '.join(outer)} FROM ({computed}) AS c"


def training_set_sql(
    spine: str, spine_ts: str, selections: Sequence[Selection], inclusive: bool = False
) -> str:
    """The whole training set: the spine's columns, then every selected feature."""
    parts = [f"_gm_spine AS (SELECT row_number() OVER () AS {ROW}, * FROM ({spine}) AS s)"]
    joins, columns = [], []
    for i, selection in enumerate(selections):
        parts.append(f"_gm_v{i} AS ({view_sql(selection, '_gm_spine', spine_ts, inclusive)})")
        joins.append(f" LEFT JOIN _gm_v{i} USING ({ROW})")
        columns += [f"_gm_v{i}.{_q(c)}" for c in selection.columns]
    return (
        f"WITH {', '.join(parts)} SELECT _gm_spine.* EXCLUDE ({ROW}), {', '.join(columns)}"
        f" FROM _gm_spine{''.join(joins)} ORDER BY _gm_spine.{ROW}"
    )
