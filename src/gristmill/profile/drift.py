"""Rows over time, and how each column's distribution shifts: between the first and last
periods of a time column, or between two tables (population stability index)."""

from __future__ import annotations

from gristmill.errors import ConfigError
from gristmill.profile.bins import Bins, bins_for, psi
from gristmill.profile.model import ColumnProfile, TableProfile, TimeProfile
from gristmill.profile.stats import Column, TableStats

DRIFT_PSI = 0.25
"""Above this, a distribution is said to have shifted (the usual rule of thumb)."""
_DAY = 86_400.0


def _grain(span_seconds: float) -> str:
    if span_seconds <= 62 * _DAY:
        return "day"
    if span_seconds <= 366 * _DAY:
        return "week"
    if span_seconds <= 10 * 366 * _DAY:
        return "month"
    return "year"


def over_time(
    stats: TableStats,
    columns: list[Column],
    profiles: list[ColumnProfile],
    result: TableProfile,
    time: Column,
) -> None:
    if time.kind != "temporal":
        raise ConfigError(
            f"--time {time.name}: a date or timestamp column is needed; it is {time.type}."
        )
    bounds = stats.bounds(time)
    if bounds is None:
        result.warnings.append(f"{time.name} has no values: no profile over time.")
        return
    grain = _grain(bounds[1] - bounds[0])
    # Truncated as a timestamp without time zone: DuckDB needs no time zone data for it.
    period = f"CAST(date_trunc('{grain}', CAST({time.sql} AS TIMESTAMP)) AS DATE)"
    rows = stats.q(
        f"SELECT {period} AS p, count(*) AS n FROM {stats.relation}"
        f" WHERE {time.sql} IS NOT NULL GROUP BY 1 ORDER BY 1"
    )
    periods = [(str(r["p"]), int(r["n"])) for r in rows]
    # The periods compared are the first and last that are not mostly empty (a table
    # often starts and ends mid-period).
    typical = sorted(n for _, n in periods)[len(periods) // 2]
    full = [p for p, n in periods if n >= typical / 2]
    first, last = full[0], full[-1]
    result.time = TimeProfile(time.name, grain, periods, first, last)
    if first == last:
        return
    for column, profile in zip(columns, profiles, strict=True):
        # A key or the time itself always moves with time: its shift says nothing.
        if column is time or "candidate_key" in profile.flags:
            continue
        bins = bins_for(stats, column, profile)
        if bins is None:
            continue
        found = stats.q(
            f"SELECT {period} AS p, {bins.sql} AS bin, count(*) AS n FROM {stats.relation}"
            f" WHERE {period} IN (DATE '{first}', DATE '{last}') GROUP BY 1, 2"
        )
        early = {str(r["bin"]): int(r["n"]) for r in found if str(r["p"]) == first}
        late = {str(r["bin"]): int(r["n"]) for r in found if str(r["p"]) == last}
        _set_psi(profile, psi(early, late, bins.labels), f"between {first} and {last}")
    result.warnings.extend(w for p in profiles for w in p.warnings if "shifted" in w)


def against(
    stats: TableStats,
    other: TableStats,
    columns: list[Column],
    profiles: list[ColumnProfile],
    result: TableProfile,
) -> None:
    """PSI of each column of `other` against the same column of `stats` (same bins)."""
    by_name = {c.name: c for c in other.columns}
    for column, profile in zip(columns, profiles, strict=True):
        twin = by_name.get(column.name)
        if twin is None:
            profile.warnings.append(f"{column.name} is missing from {result.compared_with}.")
            continue
        bins = bins_for(stats, column, profile)
        if bins is None:
            continue
        _set_psi(
            profile,
            psi(
                bin_counts(stats, bins),
                bin_counts(other, _rebound(bins, column, twin)),
                bins.labels,
            ),
            f"in {result.compared_with}",
        )
    result.warnings.extend(w for p in profiles for w in p.warnings)


def _rebound(bins: Bins, column: Column, twin: Column) -> Bins:
    return Bins(bins.sql.replace(column.sql, twin.sql), bins.labels)


def bin_counts(stats: TableStats, bins: Bins) -> dict[str, int]:
    """Rows per bin label of the relation `stats` reads."""
    rows = stats.q(f"SELECT {bins.sql} AS bin, count(*) AS n FROM {stats.relation} GROUP BY 1")
    return {str(r["bin"]): int(r["n"]) for r in rows}


def _set_psi(profile: ColumnProfile, value: float, where: str) -> None:
    profile.psi = value
    if value > DRIFT_PSI:
        profile.flags.append("drift")
        profile.warnings.append(f"{profile.name} shifted {where} (PSI {value:.2f}).")
