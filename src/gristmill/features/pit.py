"""Point-in-time training sets in one SQL query, computed by the warehouse (DuckDB or
PostgreSQL: where their SQL differs, the warehouse class says what it offers).

Windowed aggregations of an entity with few events per window come from joining each
spine row with the entity's recent events (`recent.py`). Those of dense entities, and
the latest values, come from window functions over a sequence: for each feature view the
spine's rows are put among the view's events, ordered by entity and time. Counts, sums
and means over `[T - window, T)` are differences of running totals, read by probe rows
at T and at T - window (`totals_sql`), and so are distinct counts (from runs of each
value's occurrences); min and max use RANGE frames, and the latest event a ROWS frame
(`view_sql`). A spine row sorts before the events of its own instant, so those events
are not seen (unless the dataset asks for `inclusive` joins). Spine rows contribute
nothing to an aggregate.

Times are compared as the dialect's UTC_TIMESTAMP_SQL gives them (UTC without time zone),
never as stored: an engine compares a timestamp with time zone to one without in its
session's time zone, which would make a training set depend on the machine's.

Counts are exact, and so are sums of integer and decimal columns: their running totals
are HUGEINT or DECIMAL (DuckDB) or NUMERIC (PostgreSQL, `SUM_INPUT_SQL`), so a window's
difference of totals loses nothing however large the amounts before it. A mean is that
exact sum rounded once to a double, then divided by the count (the online path computes
the same). A floating-point column's sum is not exact: DuckDB's running totals are
doubles, each off by at most (n - 1)·2⁻⁵³·Σ|x| for the entity's n events before the spine
row, so a window's sum is within 2n·2⁻⁵³·Σ|x| of the exact one (1e12 then a hundred 0.01:
within 0.03). PostgreSQL reads each double as a NUMERIC of 15 significant digits and sums
exactly: within 10⁻¹⁴·Σ|x| of the window's values. The join of sparse entities sums only
the window's values, within either bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from gristmill.features.definition import Feature, FeatureView
from gristmill.features.recent import (
    DENSE_EVENTS_PER_BUCKET,
    dense_entities_sql,
    interval_sql,
    present_sql,
    recent_sql,
    utc_sql,
    windowed_columns,
)

if TYPE_CHECKING:
    from gristmill.dialects import Dialect

TOTALS = ("count", "sum", "mean", "count_distinct")
"""Aggregations computed as differences of per-entity running totals (one streaming pass):
far cheaper than bounded window frames."""
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
    }[feature.aggregation or "count"]
    return f"{function} OVER {frame}"


def view_sql(
    selection: Selection,
    spine: str,
    spine_ts: str,
    inclusive: bool,
    engine: Dialect,
    windowed: bool,
) -> str | None:
    """A query giving, per spine row (`_gm_row`), the selected min and max over windows
    (`windowed`) or else the latest values, of one view."""
    view = selection.view
    keys = [engine.quote(k) for k in view.entity]
    partition = f"PARTITION BY {', '.join(keys)}"
    wanted = set(selection.columns)
    inputs, filters, inner, outer = [], [], [], []
    carried: list[str] = []
    regroup: list[str] = []
    windows: dict[str, str] = {}
    groups: dict[str, str] = {}
    upper = "CURRENT ROW" if inclusive else "INTERVAL '1 microseconds' PRECEDING"
    for index, feature in enumerate(view.features):
        inputs.append(f"{feature.sql or feature.column or '1'} AS _gm_in{index}")
        if feature.filter:
            filters.append(f"CASE WHEN ({feature.filter}) THEN 1 ELSE 0 END AS _gm_keep{index}")
        for column, window in feature.outputs():
            if column not in wanted:
                continue
            if (window is not None) != windowed:
                continue
            if window is not None:
                if feature.aggregation in TOTALS:
                    continue  # computed from running totals (totals_sql)
                name = f"w_{window.replace(' ', '')}"
                windows[name] = (
                    f"({partition} ORDER BY {TS} RANGE BETWEEN {interval_sql(window, engine)} PRECEDING"
                    f" AND {upper})"
                )
                inner.append(f"{_aggregate(feature, name, index)} AS {engine.quote(column)}")
                outer.append(engine.quote(column))
                continue
            # The latest event: spine rows sort before the events of their own instant
            # (after them when inclusive), and ties among events go to the largest value.
            order = f"{partition} ORDER BY {TS}, _gm_rank, _gm_in{index} NULLS FIRST"
            name = f"w_latest{index}"
            if engine.SUPPORTS_IGNORE_NULLS:
                windows[name] = f"({order} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
                struct = f"{{'v': _gm_in{index}, 't': {TS}}}"
                inner.append(
                    f"last_value(CASE WHEN {EVENT} = 1 THEN {struct} END IGNORE NULLS)"
                    f" OVER {name} AS _gm_latest{index}"
                )
                value, at = f"_gm_latest{index}.v", f"_gm_latest{index}.t"
            else:
                # Numbered by the events up to it, each row shares a group with the latest
                # event before it (group 0: none), whose value the group then takes.
                windows[name] = f"({order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
                inner.append(f"count(CASE WHEN {EVENT} = 1 THEN 1 END) OVER {name} AS _gm_g{index}")
                carried.append(f"_gm_in{index}")
                group = f"g_latest{index}"
                groups[group] = (
                    f"({partition}, _gm_g{index} ORDER BY {EVENT} DESC"
                    " ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)"
                )
                regroup += [
                    f"first_value(CASE WHEN {EVENT} = 1 THEN _gm_in{index} END) OVER {group}"
                    f" AS _gm_lv{index}",
                    f"first_value(CASE WHEN {EVENT} = 1 THEN _gm_at END) OVER {group}"
                    f" AS _gm_lt{index}",
                ]
                value, at = f"_gm_lv{index}", f"_gm_lt{index}"
            ttl = view.ttl_delta
            stale = (
                f"_gm_at - {at} > INTERVAL '{int(ttl.total_seconds() * 1e6)} microseconds'"
                if ttl
                else "FALSE"
            )
            outer.append(f"CASE WHEN {stale} THEN NULL ELSE {value} END AS {engine.quote(column)}")
    spine_rank = "2" if inclusive else "0"
    event_columns = [
        *keys,
        f"{utc_sql(view.timestamp, engine)} AS {TS}",
        f"NULL AS {ROW}",
        f"1 AS {EVENT}",
    ]
    spine_columns = [*keys, f"{utc_sql(spine_ts, engine)} AS {TS}", ROW, f"0 AS {EVENT}"]
    event_columns += ["1 AS _gm_rank", *inputs, *filters]
    spine_columns += [f"{spine_rank} AS _gm_rank"]
    spine_columns += [f"NULL AS _gm_in{i}" for i in range(len(view.features))]
    spine_columns += [f"NULL AS _gm_keep{i}" for i, f in enumerate(view.features) if f.filter]
    present = present_sql(selection, engine)
    points = (
        f"SELECT {', '.join(event_columns)} FROM {selection.relation} WHERE {present}"
        f" UNION ALL SELECT {', '.join(spine_columns)} FROM {spine}"
    )
    if not outer:
        return None
    frames = ", ".join(f"{name} AS {frame}" for name, frame in windows.items())
    taken = [ROW, f"{TS} AS _gm_at", *([*keys, EVENT, *carried] if regroup else []), *inner]
    computed = f"SELECT {', '.join(taken)} FROM ({points}) AS p WINDOW {frames}"
    if regroup:
        latest = ", ".join(f"{name} AS {frame}" for name, frame in groups.items())
        computed = f"SELECT *, {', '.join(regroup)} FROM ({computed}) AS l WINDOW {latest}"
    return f"SELECT {ROW}, {', '.join(outer)} FROM ({computed}) AS c WHERE {ROW} IS NOT NULL"


def _distinct_runs(
    feature: Feature, index: int, windows: list[str], keys: list[str], ts: str, engine: Dialect
) -> tuple[list[str], list[tuple[str, str]]]:
    """The previous and next occurrence of each event's value (per entity), and from them,
    per window, two conditions: a run of occurrences (cut wherever two are more than the
    window apart) starts here, or ends here. A value is in `[T - window, T)` exactly when
    one of its runs started before T and did not end before T - window, so a distinct
    count is (runs started, read at T) - (runs ended, read at the window's start): running
    totals like a count's."""
    present = f"({feature.filter or 'TRUE'}) AND ({feature.column}) IS NOT NULL"
    order = f"(PARTITION BY {', '.join(keys)}, {present}, ({feature.column}) ORDER BY {ts})"
    prev, next_ = f"_gm_prev{index}", f"_gm_next{index}"
    neighbours = [f"lag({ts}) OVER {order} AS {prev}", f"lead({ts}) OVER {order} AS {next_}"]
    conditions = []
    for window in windows:
        gap = interval_sql(window, engine)
        starts = f"{present} AND ({prev} IS NULL OR {prev} + {gap} < {ts})"
        ends = f"{present} AND ({next_} IS NULL OR {ts} + {gap} < {next_})"
        conditions.append((starts, ends))
    return neighbours, conditions


class _Totals:
    """What each event adds to the running totals the features read: flags (0 or 1,
    counted) and values (summed), each computed once however many features use it."""

    PACK = 1 << 32
    """Two flags share one BIGINT, the second times 2**32: half the running sums, and
    exact while an entity has fewer than 2**32 events."""

    def __init__(self, engine: Dialect) -> None:
        self.engine = engine
        self.flags: dict[str, str] = {}
        self.values: dict[str, str] = {}

    def flag(self, condition: str) -> str:
        return self.flags.setdefault(condition, f"_gm_c{len(self.flags)}")

    def value(self, expression: str) -> str:
        return self.values.setdefault(expression, f"_gm_v{len(self.values)}")

    def event_columns(self) -> list[str]:
        """The events' contributions, flags packed in pairs."""
        flags = list(self.flags)
        columns = []
        for i in range(0, len(flags), 2):
            pair = [
                f"CASE WHEN {condition} THEN {weight} ELSE 0 END"
                for condition, weight in zip(flags[i : i + 2], (1, self.PACK), strict=False)
            ]
            columns.append(f"CAST({' + '.join(pair)} AS BIGINT) AS _gm_p{i // 2}")
        return columns + [f"{expression} AS {name}" for expression, name in self.values.items()]

    def running(self) -> list[str]:
        """The running totals of the packed columns and values, as window functions."""
        packed = [f"_gm_p{i}" for i in range((len(self.flags) + 1) // 2)]
        return [f"sum({c}) OVER _gm_run AS {c}" for c in [*packed, *self.values.values()]]

    def at(self, name: str, edge: int) -> str:
        """A flag's or value's running total as read by a spine row's probe at `edge`,
        in the spine row's group. A flag is taken out of its packed pair after the
        grouping, on one row per spine row instead of one per probe."""
        read = f"max(CASE WHEN _gm_edge = {edge} THEN {{}} END)"
        if name in self.values.values():
            return read.format(name)
        index = list(self.flags.values()).index(name)
        packed = read.format(f"_gm_p{index // 2}")
        half = (
            f"{packed} % {self.PACK}"
            if index % 2 == 0
            else self.engine.INTEGER_DIVISION_SQL.format(a=packed, b=self.PACK)
        )
        return f"CAST({half} AS BIGINT)"


def totals_sql(
    selection: Selection, spine: str, spine_ts: str, inclusive: bool, engine: Dialect
) -> str | None:
    """Per spine row, the selected counts, sums, means and distinct counts of one view:
    running totals per entity over its events, read at the spine row's time and at the
    start of each window (by probe rows in the same ordered pass), and subtracted."""
    view = selection.view
    wanted = set(selection.columns)
    keys = [engine.quote(k) for k in view.entity]
    ts = utc_sql(view.timestamp, engine)
    picked = []
    for index, feature in enumerate(view.features):
        columns = [(c, w) for c, w in feature.outputs() if c in wanted and w is not None]
        if feature.aggregation in TOTALS and columns:
            picked.append((feature, index, columns))
    if not picked:
        return None
    windows = list(dict.fromkeys(w for _, _, columns in picked for _, w in columns))
    edge = {w: k for k, w in enumerate(windows, start=1)}

    totals = _Totals(engine)

    def diff(upper_total: str, window: str, lower_total: str | None = None) -> str:
        upper = totals.at(upper_total, 0)
        lower = totals.at(lower_total or upper_total, edge[window])
        return f"(coalesce({upper}, 0) - coalesce({lower}, 0))"

    neighbours: list[str] = []
    outputs = []
    for feature, index, columns in picked:
        if feature.aggregation == "count_distinct":
            found, conditions = _distinct_runs(
                feature, index, [w for _, w in columns], keys, ts, engine
            )
            neighbours += found
            for (column, window), (starts, ends) in zip(columns, conditions, strict=True):
                count = diff(totals.flag(starts), window, totals.flag(ends))
                outputs.append(f"{count} AS {engine.quote(column)}")
            continue
        keep = f"({feature.filter})" if feature.filter else "TRUE"
        if feature.aggregation == "count":
            counted = totals.flag(keep)
            outputs += [f"{diff(counted, w)} AS {engine.quote(c)}" for c, w in columns]
            continue
        value = f"({feature.column})"
        present = f"{keep} AND {value} IS NOT NULL"
        counted = totals.flag(present)
        widened = engine.SUM_INPUT_SQL.format(x=value)
        summed = totals.value(f"CASE WHEN {present} THEN {widened} ELSE 0 END")
        for column, window in columns:
            count, total = diff(counted, window), diff(summed, window)
            mean = f"CAST({total} AS DOUBLE PRECISION) / {count}"
            result = total if feature.aggregation == "sum" else mean
            outputs.append(f"CASE WHEN {count} > 0 THEN {result} END AS {engine.quote(column)}")
    contributions = totals.event_columns()
    # Probe rows: each spine row at its time (edge 0) and at the start of each window
    # (edge k); a probe sorts before the events of its instant (after them for an
    # inclusive edge 0), so the running total it reads counts only earlier events.
    zeros = ", ".join(f"0 AS {c.split(' AS ')[-1]}" for c in contributions)
    probes = [
        f"SELECT {', '.join(keys)}, {utc_sql(spine_ts, engine)} AS {TS}, {ROW}, 0 AS _gm_edge,"
        f" {2 if inclusive else 0} AS _gm_rank, {zeros} FROM {spine}"
    ]
    for window, k in edge.items():
        probes.append(
            f"SELECT {', '.join(keys)}, {utc_sql(spine_ts, engine)} - {interval_sql(window, engine)} AS {TS}, {ROW},"
            f" {k} AS _gm_edge, 0 AS _gm_rank, {zeros} FROM {spine}"
        )
    present = present_sql(selection, engine)
    source = f"(SELECT * FROM {selection.relation} WHERE {present})"
    if neighbours:
        source = f"(SELECT *, {', '.join(neighbours)} FROM {source} AS e)"
    events = (
        f"SELECT {', '.join(keys)}, {ts} AS {TS}, NULL AS {ROW}, NULL AS _gm_edge,"
        f" 1 AS _gm_rank, {', '.join(contributions)} FROM {source} AS e"
    )
    sequence = (
        f"SELECT {ROW}, _gm_edge, {', '.join(totals.running())}"
        f" FROM ({' UNION ALL '.join([events, *probes])}) AS p"
        f" WINDOW _gm_run AS (PARTITION BY {', '.join(keys)} ORDER BY {TS}, _gm_rank"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    )
    return (
        f"SELECT {ROW}, {', '.join(outputs)} FROM ({sequence}) AS t"
        f" WHERE _gm_edge IS NOT NULL GROUP BY {ROW}"
    )


def training_set_sql(
    spine: str,
    spine_ts: str,
    selections: Sequence[Selection],
    engine: Dialect,
    inclusive: bool = False,
    dense_after: int = DENSE_EVENTS_PER_BUCKET,
) -> str:
    """The whole training set, in the SQL of `engine` (a warehouse class): the spine's
    columns, then every selected feature.

    Windowed aggregations of entities with at most `dense_after` events per bucket come
    from joining each spine row with its entity's recent events (`recent.py`); those of
    denser entities from running totals and window frames over their whole sequence.
    """
    if engine.SUPPORTS_STAR_EXCLUDE:
        numbered, spine_columns = "*", f"_gm_spine.* EXCLUDE ({ROW})"
    else:  # the spine row also travels whole, to come out without its number
        numbered, spine_columns = "(s.*)::record AS _gm_whole, *", "(_gm_spine._gm_whole).*"
    parts = [f"_gm_spine AS (SELECT row_number() OVER () AS {ROW}, {numbered} FROM ({spine}) AS s)"]
    joins, columns = [], []
    for i, selection in enumerate(selections):
        windowed = {c for _, _, pairs in windowed_columns(selection) for c, _ in pairs}
        latest = view_sql(selection, "_gm_spine", spine_ts, inclusive, engine, windowed=False)
        if latest is not None:
            parts.append(f"_gm_f{i} AS ({latest})")
            joins.append(f" LEFT JOIN _gm_f{i} USING ({ROW})")
        if windowed:
            parts += _windowed_parts(i, selection, spine_ts, inclusive, engine, dense_after)
            joins.append(f" LEFT JOIN _gm_w{i} USING ({ROW})")
        columns += [
            f"_gm_{'w' if c in windowed else 'f'}{i}.{engine.quote(c)}" for c in selection.columns
        ]
    return (
        f"WITH {', '.join(parts)} SELECT {spine_columns}, {', '.join(columns)}"
        f" FROM _gm_spine{''.join(joins)} ORDER BY _gm_spine.{ROW}"
    )


def _windowed_parts(
    i: int,
    selection: Selection,
    spine_ts: str,
    inclusive: bool,
    engine: Dialect,
    dense_after: int,
) -> list[str]:
    """The CTEs that give `_gm_w{i}`: every selected windowed aggregation of view i, per
    spine row, the sparse entities' from the join and the dense ones' from the frames."""
    keys = [engine.quote(k) for k in selection.view.entity]
    match = " AND ".join(f"d.{k} = x.{k}" for k in keys)
    dense = f"EXISTS (SELECT 1 FROM _gm_d{i} AS d WHERE {match})"
    dense_view = replace(selection, relation=f"_gm_de{i}")
    parts = [
        f"_gm_d{i} AS ({dense_entities_sql(selection, engine, dense_after)})",
        f"_gm_de{i} AS (SELECT * FROM {selection.relation} AS x WHERE {dense})",
        f"_gm_sparse{i} AS (SELECT * FROM _gm_spine AS x WHERE NOT {dense})",
        f"_gm_dense{i} AS (SELECT * FROM _gm_spine AS x WHERE {dense})",
    ]
    frames = [
        sql
        for sql in (
            totals_sql(dense_view, f"_gm_dense{i}", spine_ts, inclusive, engine),
            view_sql(dense_view, f"_gm_dense{i}", spine_ts, inclusive, engine, windowed=True),
        )
        if sql is not None
    ]
    names = [engine.quote(c) for _, _, pairs in windowed_columns(selection) for c, _ in pairs]
    dense_rows = f"SELECT {ROW}, {', '.join(names)} FROM ({frames[0]}) AS a"
    if len(frames) == 2:
        dense_rows += f" JOIN ({frames[1]}) AS b USING ({ROW})"
    recent = recent_sql(selection, f"_gm_sparse{i}", spine_ts, inclusive, engine)
    sparse_rows = f"SELECT {ROW}, {', '.join(names)} FROM ({recent}) AS r"
    return [*parts, f"_gm_w{i} AS ({sparse_rows} UNION ALL {dense_rows})"]
