"""The monitor's figures, computed by the warehouse over the logged predictions
(`log.py`): each feature's PSI against the training set with the training set's bins
(`profile/bins.py`), missing and stale shares, and per day the decisions, latency
percentiles and the score's PSI against the training evaluation's deciles."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from gristmill.monitor.log import DAY, STALE
from gristmill.monitor.model import FeatureDrift, Window
from gristmill.profile.bins import MISSING, Bins, psi, shares

if TYPE_CHECKING:
    from gristmill.monitor.log import LoggedPredictions

LATENCY_QUANTILES = (0.5, 0.9, 0.99)


def feature_drift(logged: LoggedPredictions) -> list[FeatureDrift]:
    from gristmill.profile.bins import bins_for
    from gristmill.profile.drift import bin_counts
    from gristmill.profile.stats import TableStats

    warehouse = logged.warehouse
    training = TableStats(warehouse, logged.training_relation, logged.columns)
    profiles = training.aggregates()
    found: list[FeatureDrift] = []
    for i, (column, profile) in enumerate(zip(logged.columns, profiles, strict=True)):
        stale = f"avg({STALE}{i})" if logged.stale else "NULL"
        [shares] = warehouse.fetchall(
            f"SELECT avg(CASE WHEN {column.sql} IS NULL THEN 1.0 ELSE 0.0 END), {stale}"
            f" FROM {logged.relation}"
        )
        feature = FeatureDrift(
            column.name,
            None,
            float(shares[0]),
            profile.missing / training.rows if training.rows else 0.0,
            None if shares[1] is None else float(shares[1]),
        )
        found.append(feature)
        bins = bins_for(training, column, profile)
        if bins is None:
            continue
        expected = bin_counts(training, bins)
        by_day: dict[str, dict[str, int]] = defaultdict(dict)
        for day, label, count in warehouse.fetchall(
            f"SELECT {DAY}, {bins.sql}, count(*) FROM {logged.relation} GROUP BY 1, 2"
        ):
            by_day[str(day)][str(label)] = int(count)
        overall: dict[str, int] = defaultdict(int)
        for counts in by_day.values():
            for label, count in counts.items():
                overall[label] += count
        feature.psi = psi(expected, overall, bins.labels)
        feature.psi_by_day = {
            day: psi(expected, counts, bins.labels) for day, counts in sorted(by_day.items())
        }
    return found


def score_bins(metadata: dict[str, Any]) -> tuple[Bins, dict[str, int]] | None:
    """The bins of the training evaluation's score deciles (binary models), and how many
    evaluation rows each held; None without them."""
    deciles = sorted(
        (metadata.get("metrics") or {}).get("deciles") or [], key=lambda d: d["decile"]
    )
    if len(deciles) < 2:
        return None
    labels = [f"decile {d['decile']}" for d in deciles]
    cases = ["WHEN score IS NULL THEN '(missing)'"]
    cases += [
        f"WHEN score >= {float(d['min_score'])!r} THEN '{label}'"
        for d, label in zip(deciles[:-1], labels, strict=False)
    ]
    sql = f"CASE {' '.join(cases)} ELSE '{labels[-1]}' END"
    expected = {label: round(float(d["count"])) for d, label in zip(deciles, labels, strict=True)}
    return Bins(sql, [*labels, MISSING]), expected


def windows(
    logged: LoggedPredictions, scores: tuple[Bins, dict[str, int]] | None
) -> tuple[list[Window], float | None, list[tuple[str, float, float]]]:
    """Per UTC day: predictions, decisions, latency percentiles, score PSI; the score PSI
    over the whole window; and per score bin, its share in training and in the window."""
    warehouse = logged.warehouse
    quantiles = warehouse.dialect.quantiles_sql("latency_ms", LATENCY_QUANTILES, False)
    days = {
        str(day): Window(
            str(day),
            int(count),
            {},
            dict(
                zip(
                    ("p50", "p90", "p99"),
                    [None if q is None else round(float(q), 3) for q in (latency or [None] * 3)],
                    strict=True,
                )
            ),
        )
        for day, count, latency in warehouse.fetchall(
            f"SELECT {DAY}, count(*), {quantiles} FROM {logged.relation} GROUP BY 1 ORDER BY 1"
        )
    }
    for day, decision, count in warehouse.fetchall(
        f"SELECT {DAY}, decision, count(*) FROM {logged.relation} GROUP BY 1, 2 ORDER BY 1, 3 DESC"
    ):
        days[str(day)].decisions[str(decision)] = int(count)
    overall_psi = None
    score_shares: list[tuple[str, float, float]] = []
    if scores is not None:
        bins, expected = scores
        overall: dict[str, int] = defaultdict(int)
        by_day: dict[str, dict[str, int]] = defaultdict(dict)
        for day, label, count in warehouse.fetchall(
            f"SELECT {DAY}, {bins.sql}, count(*) FROM {logged.relation} GROUP BY 1, 2"
        ):
            by_day[str(day)][str(label)] = int(count)
            overall[str(label)] += int(count)
        for day, counts in by_day.items():
            days[day].score_psi = psi(expected, counts, bins.labels)
        overall_psi = psi(expected, overall, bins.labels)
        trained, seen = shares(expected, bins.labels), shares(overall, bins.labels)
        score_shares = list(zip(bins.labels, trained, seen, strict=True))
    return list(days.values()), overall_psi, score_shares
