"""Binning a column for the target and drift analyses: deciles of an ordered column,
the most frequent categories of any other, and a bin of its own for missing values."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

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


_MOMENT_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f")


def edge_labels(edges: list[float], temporal: bool) -> list[str]:
    """The edges as the shortest text that still tells each from the next: numbers to
    four significant digits or more, moments (epoch seconds, UTC) as days when they all
    are midnights, else to the minute or finer. Equal labels would merge bins that the
    SQL keeps apart."""
    if temporal:
        moments = [datetime.fromtimestamp(e, UTC).replace(tzinfo=None) for e in edges]
        midnights = all(m.time() == time() for m in moments)
        formats = ("%Y-%m-%d", *_MOMENT_FORMATS) if midnights else _MOMENT_FORMATS
        candidates = [[m.strftime(f) for m in moments] for f in formats]
    else:
        candidates = [[f"{e:.{digits}g}" for e in edges] for digits in range(4, 18)]
    for labels in candidates:
        if len(set(labels)) == len(labels):
            return labels
    return [repr(e) for e in edges]


def category_label(value: Any) -> str:
    """A category as a bin's label: the same text whichever engine returned the value."""
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def bins_for(stats: TableStats, column: Column, profile: ColumnProfile) -> Bins | None:
    """The bins of `column`, or None when it cannot be binned (JSON, lists, all missing)."""
    if profile.count == 0 or column.kind == "other":
        return None
    dialect = stats.warehouse.dialect
    if column.ordered and profile.distinct > CATEGORIES:
        x, finite = stats.number(column), stats.finite(column)
        [row] = stats.q(
            f"SELECT {dialect.quantiles_sql(finite, DECILES, stats.rows > 1_000_000)} AS q"
            f" FROM {stats.relation}"
        )
        edges = sorted({float(e) for e in row["q"] or [] if e is not None and math.isfinite(e)})
        if edges:
            shown = edge_labels(edges, column.kind == "temporal")
            labels = [f"< {shown[0]}"]
            labels += [f"{lo} to {hi}" for lo, hi in itertools.pairwise(shown)]
            labels.append(f"≥ {shown[-1]}")
            cases = [f"WHEN {column.sql} IS NULL THEN {dialect.literal(MISSING)}"]
            cases += [
                f"WHEN {x} < {dialect.literal(edge)} THEN {dialect.literal(label)}"
                for edge, label in zip(edges, labels, strict=False)
            ]
            return Bins(
                f"CASE {' '.join(cases)} ELSE {dialect.literal(labels[-1])} END",
                [*labels, MISSING],
            )
    # Categories: the most frequent values, the rest together. Text is told apart by its
    # bytes, which a case-insensitive collation would not.
    value = stats.ordering(column)
    rows = stats.q(
        f"SELECT {value} AS v FROM {stats.relation} WHERE {column.sql} IS NOT NULL"
        f" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT {CATEGORIES}"
    )
    top = [r["v"] for r in rows]
    labels = [category_label(v) for v in top]
    cases = [f"WHEN {column.sql} IS NULL THEN {dialect.literal(MISSING)}"]
    cases += [
        f"WHEN {value} = {dialect.literal(v)} THEN {dialect.literal(label)}"
        for v, label in zip(top, labels, strict=True)
    ]
    return Bins(
        f"CASE {' '.join(cases)} ELSE {dialect.literal(OTHER)} END", [*labels, OTHER, MISSING]
    )


def shares(counts: dict[str, int], labels: list[str]) -> list[float]:
    total = sum(counts.values()) or 1
    return [counts.get(label, 0) / total for label in labels]


def psi(expected: dict[str, int], actual: dict[str, int], labels: list[str]) -> float:
    """Population stability index of `actual` against `expected`, by Evidently's rule for
    empty bins (so that the figures match its `psi` test): a share of 0 is replaced by
    0.0001, or by a millionth of the smallest share when that is 0.0001 or less; a bin
    empty on both sides adds nothing."""
    total = 0.0
    kept = [label for label in labels if expected.get(label) or actual.get(label)]
    pairs = zip(_filled(shares(expected, kept)), _filled(shares(actual, kept)), strict=True)
    for e, a in pairs:
        total += (a - e) * math.log(a / e)
    return total


def _filled(values: list[float]) -> list[float]:
    present = [v for v in values if v > 0]
    if not present:
        return [1.0 for _ in values]  # no row at all: no shift to measure
    smallest = min(present)
    fill = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return [v if v > 0 else fill for v in values]
