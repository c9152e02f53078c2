"""Binning a column for the target and drift analyses: deciles of an ordered column,
the most frequent categories of any other, and a bin of its own for missing values."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from gristmill.profile.model import ColumnProfile
from gristmill.profile.stats import DECILES, Column, TableStats

MISSING = "(missing)"
OTHER = "(other)"
CATEGORIES = 10


@dataclass
class Bins:
    """A column's bins: the SQL giving each row's bin label, and the labels in order."""

    sql: str
    labels: list[str]


def _number_label(value: float) -> str:
    return f"{value:.4g}"


def bins_for(stats: TableStats, column: Column, profile: ColumnProfile) -> Bins | None:
    """The bins of `column`, or None when it cannot be binned (JSON, lists, all missing)."""
    if profile.count == 0 or column.kind == "other":
        return None
    dialect = stats.warehouse.dialect
    lit = dialect.literal
    if column.ordered and profile.distinct > CATEGORIES:
        x = stats.number(column)
        [row] = stats.q(
            f"SELECT {dialect.quantiles_sql(x, DECILES, stats.rows > 1_000_000)} AS q"
            f" FROM {stats.relation}"
        )
        edges = sorted({float(e) for e in row["q"] or [] if e is not None and math.isfinite(e)})
        if edges:
            cases = [f"WHEN {column.sql} IS NULL THEN {lit(MISSING)}"]
            labels = [f"< {_number_label(edges[0])}"]
            cases.append(f"WHEN {x} < {lit(edges[0])} THEN {lit(labels[0])}")
            for lo, hi in itertools.pairwise(edges):
                label = f"{_number_label(lo)} to {_number_label(hi)}"
                labels.append(label)
                cases.append(f"WHEN {x} < {lit(hi)} THEN {lit(label)}")
            last = f"≥ {_number_label(edges[-1])}"
            labels.append(last)
            return Bins(f"CASE {' '.join(cases)} ELSE {lit(last)} END", [*labels, MISSING])
    # Categories: the most frequent values, the rest together.
    value = dialect.cast(column.sql, dialect.TEXT_TYPE)
    rows = stats.q(
        f"SELECT {value} AS v FROM {stats.relation} WHERE {column.sql} IS NOT NULL"
        f" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT {CATEGORIES}"
    )
    top = [str(r["v"]) for r in rows]
    known = f"WHEN {dialect.in_list(value, top)} THEN {value} " if top else ""
    return Bins(
        f"CASE WHEN {column.sql} IS NULL THEN {lit(MISSING)} {known}ELSE {lit(OTHER)} END",
        [*top, OTHER, MISSING],
    )


def shares(counts: dict[str, int], labels: list[str]) -> list[float]:
    total = sum(counts.values()) or 1
    return [counts.get(label, 0) / total for label in labels]


def psi(expected: dict[str, int], actual: dict[str, int], labels: list[str]) -> float:
    """Population stability index of `actual` against `expected` (bins with shares floored
    at 0.0001, as is usual, so that an empty bin does not make it infinite)."""
    total = 0.0
    for e, a in zip(shares(expected, labels), shares(actual, labels), strict=True):
        e, a = max(e, 1e-4), max(a, 1e-4)
        total += (a - e) * math.log(a / e)
    return total
