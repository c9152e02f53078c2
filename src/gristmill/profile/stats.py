"""Column and table statistics, computed by the warehouse in a handful of scans.

One aggregate query gives every column's count, distinct count, min, max, mean, std,
zeros, negatives and text lengths; one more gives the quantiles; then a grouped query per
column gives its histogram and its top values. Nothing is computed row by row in Python.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from gristmill.profile.model import ColumnKind, ColumnProfile, Histogram, TopValue
from gristmill.values import jsonable

if TYPE_CHECKING:
    from gristmill.warehouse.base import Warehouse

QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
DECILES = [i / 10 for i in range(1, 10)]
HISTOGRAM_BINS = 20
TOP_VALUES = 10
EXACT_BELOW = 1_000_000
"""Tables up to this many rows get exact distinct counts and quantiles."""
HIGH_CARDINALITY = 0.5
"""A text column whose distinct values exceed this share of its rows is flagged."""


def kind_of(dtype: pa.DataType) -> ColumnKind:
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "text"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return "temporal"
    return "other"


@dataclass
class Column:
    name: str
    type: str
    kind: ColumnKind
    sql: str
    """The quoted column name."""

    @property
    def ordered(self) -> bool:
        return self.kind in ("numeric", "temporal")


class TableStats:
    """The statistics of one relation (a table, or a sample of it) in one warehouse."""

    def __init__(self, warehouse: Warehouse, relation: str, columns: Sequence[Column]) -> None:
        self.warehouse = warehouse
        self.relation = relation
        self.columns = list(columns)
        self.rows = 0

    def q(self, sql: str) -> list[dict[str, Any]]:
        # Statistics are doubles: a NUMERIC that no decimal holds (NaN) arrives as them.
        rows: list[dict[str, Any]] = self.warehouse.query_arrow(
            sql, beyond_decimal="float"
        ).to_pylist()
        return rows

    def ordering(self, column: Column) -> str:
        """The column as it is ordered: text by its bytes, on every engine."""
        if column.kind == "text":
            return self.warehouse.dialect.bytewise(column.sql)
        return column.sql

    def number(self, column: Column) -> str:
        """The column as a double: numbers as they are, dates and timestamps as epoch seconds."""
        if column.kind == "temporal":
            return self.warehouse.dialect.EPOCH_SQL.format(x=column.sql)
        return f"CAST({column.sql} AS DOUBLE PRECISION)"

    def finite(self, column: Column) -> str:
        """The column as a double, NULL where it is NaN or infinite: the statistics of
        numbers (mean, std, quantiles, histogram, correlations, deciles) leave those out,
        as pandas leaves out NaN; min and max show them."""
        x, low, high = (
            self.number(column),
            self.warehouse.literal(-math.inf),
            self.warehouse.literal(math.inf),
        )
        # NaN is above infinity on both engines.
        return f"CASE WHEN {x} > {low} AND {x} < {high} THEN {x} END"

    # -- the passes ----------------------------------------------------------------
    def profile(self) -> list[ColumnProfile]:
        profiles = self.aggregates()
        self._quantiles(profiles)
        for column, profile in zip(self.columns, profiles, strict=True):
            if profile.count == 0:
                continue
            if column.ordered and profile.distinct > 1:
                profile.histogram = self._histogram(column, profile)
            if column.kind in ("text", "boolean", "other") or profile.distinct <= TOP_VALUES * 5:
                profile.top = self._top(column)
        self._flag(profiles)
        return profiles

    def aggregates(self) -> list[ColumnProfile]:
        """One pass over the relation: each column's count, distinct values, range, moments."""
        exact = self.warehouse.dialect.APPROX_DISTINCT_SQL is None
        parts = ["count(*) AS n"]
        for i, c in enumerate(self.columns):
            parts.append(f"count({c.sql}) AS c{i}_count")
            if c.kind == "other":
                continue  # JSON, lists and bytes: counted, not compared
            # PostgreSQL has no min(boolean): booleans go through integers.
            x = f"CAST({c.sql} AS INTEGER)" if c.kind == "boolean" else self.ordering(c)
            parts += [f"min({x}) AS c{i}_min", f"max({x}) AS c{i}_max"]
            if c.kind == "numeric":
                x = self.finite(c)
                parts += [
                    f"avg({x}) AS c{i}_mean",
                    f"stddev_samp({x}) AS c{i}_std",
                    f"sum(CASE WHEN {c.sql} = 0 THEN 1 ELSE 0 END) AS c{i}_zeros",
                    f"sum(CASE WHEN {c.sql} < 0 THEN 1 ELSE 0 END) AS c{i}_negatives",
                ]
            if c.kind == "text":
                length = f"length({c.sql})"
                parts += [
                    f"min({length}) AS c{i}_len_min",
                    f"avg({length}) AS c{i}_len_mean",
                    f"max({length}) AS c{i}_len_max",
                ]
        [row] = self.q(f"SELECT {', '.join(parts)} FROM {self.relation}")
        self.rows = int(row["n"])
        # Distinct counts: exact on tables of moderate size, HyperLogLog above.
        approx = not exact and self.rows > EXACT_BELOW
        template = (
            self.warehouse.dialect.APPROX_DISTINCT_SQL if approx else None
        ) or "count(DISTINCT {x})"
        distinct_sql = [
            f"{template.format(x=self.ordering(c))} AS c{i}"
            for i, c in enumerate(self.columns)
            if c.kind != "other"
        ]
        distinct = (
            self.q(f"SELECT {', '.join(distinct_sql)} FROM {self.relation}")[0]
            if distinct_sql
            else {}
        )
        profiles = []
        for i, c in enumerate(self.columns):
            count = int(row[f"c{i}_count"] or 0)
            d = distinct.get(f"c{i}")
            profile = ColumnProfile(
                name=c.name,
                type=c.type,
                kind=c.kind,
                count=count,
                missing=self.rows - count,
                distinct=min(int(d), count) if d is not None else 0,
                distinct_exact=not approx,
                min=_value(c, row.get(f"c{i}_min")),
                max=_value(c, row.get(f"c{i}_max")),
            )
            if c.kind == "numeric":
                profile.mean = _float(row.get(f"c{i}_mean"))
                profile.std = _float(row.get(f"c{i}_std"))
                profile.zeros = int(row.get(f"c{i}_zeros") or 0)
                profile.negatives = int(row.get(f"c{i}_negatives") or 0)
            if c.kind == "text" and count:
                profile.text_length = {
                    "min": float(row[f"c{i}_len_min"]),
                    "mean": float(row[f"c{i}_len_mean"]),
                    "max": float(row[f"c{i}_len_max"]),
                }
            profiles.append(profile)
        return profiles

    def _quantiles(self, profiles: list[ColumnProfile]) -> None:
        ordered = [
            (i, c) for i, c in enumerate(self.columns) if c.ordered and profiles[i].count > 0
        ]
        if not ordered:
            return
        fractions = list(QUANTILES.values())
        approx = self.rows > EXACT_BELOW
        parts = [
            f"{self.warehouse.dialect.quantiles_sql(self.finite(c), fractions, approx)} AS q{i}"
            for i, c in ordered
        ]
        [row] = self.q(f"SELECT {', '.join(parts)} FROM {self.relation}")
        for i, c in ordered:
            values = row[f"q{i}"] or []
            profiles[i].quantiles = {
                name: _temporal(v) if c.kind == "temporal" else float(v)
                for name, v in zip(QUANTILES, values, strict=False)
                if v is not None
            }

    def bounds(self, column: Column) -> tuple[float, float] | None:
        [row] = self.q(
            f"SELECT min({self.finite(column)}) AS lo, max({self.finite(column)}) AS hi"
            f" FROM {self.relation}"
        )
        if row["lo"] is None:
            return None
        return float(row["lo"]), float(row["hi"])

    def _histogram(self, column: Column, profile: ColumnProfile) -> Histogram | None:
        bounds = self.bounds(column)
        if bounds is None:
            return None
        lo, hi = bounds
        bins = HISTOGRAM_BINS if hi > lo else 1
        width = (hi - lo) / bins or 1.0
        x = self.finite(column)
        rows = self.q(
            f"SELECT least(CAST(floor(({x} - {lo!r}) / {width!r}) AS INTEGER), {bins - 1}) AS b,"
            f" count(*) AS n FROM {self.relation} WHERE {x} IS NOT NULL GROUP BY 1"
        )
        counts = [0] * bins
        for r in rows:
            counts[max(0, min(bins - 1, int(r["b"])))] += int(r["n"])
        return Histogram(edges=[lo + width * k for k in range(bins + 1)], counts=counts)

    def _top(self, column: Column) -> list[TopValue]:
        if column.kind == "other":
            value = self.warehouse.dialect.bytewise(f"CAST({column.sql} AS VARCHAR)")
        else:
            value = self.ordering(column)
        rows = self.q(
            f"SELECT {value} AS v, count(*) AS n FROM {self.relation} WHERE {column.sql} IS NOT NULL"
            f" GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP_VALUES}"
        )
        return [TopValue(jsonable(r["v"]), int(r["n"])) for r in rows]

    def _flag(self, profiles: list[ColumnProfile]) -> None:
        for profile in profiles:
            if profile.count == 0:
                profile.flags.append("all_missing")
            elif profile.distinct == 1:
                profile.flags.append("constant")
            if (
                profile.kind == "text"
                and profile.count > 100
                and profile.distinct > HIGH_CARDINALITY * profile.count
            ):
                profile.flags.append("high_cardinality")

    # -- whole-table figures ---------------------------------------------------------
    def candidate_keys(self, profiles: list[ColumnProfile]) -> list[str]:
        """Columns with no missing value and as many distinct values as rows (checked
        exactly where the distinct count was an estimate)."""
        keys = []
        for column, profile in zip(self.columns, profiles, strict=True):
            if self.rows == 0 or profile.missing or column.kind == "other":
                continue
            if profile.distinct_exact and profile.distinct != self.rows:
                continue
            if not profile.distinct_exact and profile.distinct < 0.97 * self.rows:
                continue
            if not profile.distinct_exact:
                [row] = self.q(
                    f"SELECT count(DISTINCT {self.ordering(column)}) AS d FROM {self.relation}"
                )
                profile.distinct, profile.distinct_exact = int(row["d"]), True
                if profile.distinct != self.rows:
                    continue
            keys.append(profile.name)
            profile.flags.append("candidate_key")
        return keys

    def duplicate_rows(self) -> int | None:
        """Rows that repeat another row in every column; None where the engine cannot
        compare some column type (JSON on PostgreSQL)."""
        from gristmill.errors import BackendError

        try:
            [row] = self.q(
                f"SELECT count(*) AS n FROM (SELECT DISTINCT * FROM {self.relation}) AS d"
            )
        except BackendError:
            return None
        return self.rows - int(row["n"])

    def correlations(self) -> dict[str, dict[str, float | None]]:
        numeric = [c for c in self.columns if c.kind == "numeric"]
        if len(numeric) < 2:
            return {}
        pairs = [(a, b) for i, a in enumerate(numeric) for b in numeric[i + 1 :]]
        parts = [
            f"corr({self.finite(a)}, {self.finite(b)}) AS r{k}" for k, (a, b) in enumerate(pairs)
        ]
        [row] = self.q(f"SELECT {', '.join(parts)} FROM {self.relation}")
        matrix: dict[str, dict[str, float | None]] = {c.name: {c.name: 1.0} for c in numeric}
        for k, (a, b) in enumerate(pairs):
            r = _float(row[f"r{k}"])
            matrix[a.name][b.name] = matrix[b.name][a.name] = r
        return matrix


def _value(column: Column, value: Any) -> Any:
    if column.kind == "boolean" and value is not None:
        return bool(value)
    return jsonable(value)


def _float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _temporal(seconds: Any) -> str:
    return datetime.fromtimestamp(float(seconds), UTC).replace(tzinfo=None).isoformat(sep=" ")
