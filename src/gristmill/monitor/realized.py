"""Realized performance: logged predictions joined to their outcomes (the model's
`labels` table, by `label_key`), computed by the warehouse.

A prediction is bad once its outcome says so, whenever that came; good once it is older
than `label_maturity` without a bad outcome (a chargeback can come weeks later: before
that, no news is not good news); pending otherwise. AUC (ranks, ties averaged), KS,
bad rate by decision and calibration by the training evaluation's score deciles count
only the bad and the good.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gristmill.monitor.log import AT, DAY, KEY

if TYPE_CHECKING:
    from gristmill.monitor.log import LoggedPredictions
    from gristmill.profile.bins import Bins
    from gristmill.project import Project
    from gristmill.train.spec import Model

ALL = "all"


@dataclass
class Outcomes:
    """Realized performance over a day, or over the whole window (`day` "all")."""

    day: str
    bad: int
    good: int
    pending: int
    auc: float | None = None
    """None without both a bad and a good prediction."""
    ks: float | None = None

    @property
    def bad_rate(self) -> float | None:
        return self.bad / (self.bad + self.good) if self.bad + self.good else None

    def cells(self) -> list[str]:
        """As shown in the terminal and the HTML report (`COLUMNS`)."""
        return [
            self.day,
            f"{self.bad:,}",
            f"{self.good:,}",
            f"{self.pending:,}",
            "-" if self.bad_rate is None else f"{self.bad_rate:.2%}",
            "-" if self.auc is None else f"{self.auc:.3f}",
            "-" if self.ks is None else f"{self.ks:.3f}",
        ]


COLUMNS = ["day (UTC)", "bad", "good", "pending", "bad rate", "AUC", "KS"]


@dataclass
class Realized:
    overall: Outcomes
    by_day: list[Outcomes] = field(default_factory=list)
    by_decision: dict[str, dict[str, float | int | None]] = field(default_factory=dict)
    """Per decision: bad, good, pending, bad rate."""
    calibration: list[dict[str, Any]] = field(default_factory=list)
    """Per training score decile: predictions, mean score, bad rate."""
    training_auc: float | None = None
    """The AUC of the training evaluation, to compare with."""


def realized(
    logged: LoggedPredictions, spec: Model, now: datetime, scores: Bins | None
) -> Realized:
    with outcomes_table(logged.project, spec, logged.relation, now) as (outcomes, by_group):
        warehouse = logged.warehouse
        found = Realized(
            overall=by_group.pop(ALL, Outcomes(ALL, 0, 0, 0)),
            by_day=[by_group[d] for d in sorted(by_group)],
            training_auc=(logged.version.metadata.get("metrics") or {}).get("roc_auc"),
        )
        for decision, bad, good, pending in warehouse.fetchall(
            f"SELECT decision, sum(CASE WHEN y = 1 THEN 1 ELSE 0 END),"
            f" sum(CASE WHEN y = 0 THEN 1 ELSE 0 END), sum(CASE WHEN y IS NULL THEN 1 ELSE 0 END)"
            f" FROM {outcomes} GROUP BY 1 ORDER BY 1"
        ):
            bad, good = int(bad), int(good)
            found.by_decision[str(decision)] = {
                "bad": bad,
                "good": good,
                "pending": int(pending),
                "bad_rate": bad / (bad + good) if bad + good else None,
            }
        if scores is not None:
            for label, count, mean, rate in warehouse.fetchall(
                f"SELECT {scores.sql}, count(*), avg(score), avg(CAST(y AS DOUBLE PRECISION))"
                f" FROM {outcomes} WHERE y IS NOT NULL GROUP BY 1"
            ):
                found.calibration.append(
                    {
                        "bin": str(label),
                        "predictions": int(count),
                        "mean_score": mean,
                        "bad_rate": rate,
                    }
                )
            order = {label: i for i, label in enumerate(scores.labels)}
            found.calibration.sort(key=lambda c: order.get(c["bin"], len(order)))
        return found


@contextmanager
def outcomes_table(
    project: Project, spec: Model, relation: str, now: datetime
) -> Iterator[tuple[str, dict[str, Outcomes]]]:
    """A temporary table of `relation`'s predictions (day, score, decision and label key
    columns) with their outcome y: 1 bad, 0 good (matured without a bad label), NULL
    pending; and its figures per day and over all."""
    import pyarrow as pa

    from gristmill.durations import parse_duration
    from gristmill.profile import resolve_table

    assert spec.labels is not None
    warehouse = project.warehouse
    dialect = warehouse.dialect
    labels = warehouse.qualified(*resolve_table(project, spec.labels))
    keys = [dialect.quote(k) for k in spec.label_key]
    text = dialect.column_type(pa.string())
    outcome_keys = ", ".join(f"CAST({k} AS {text}) AS {KEY}{i}" for i, k in enumerate(keys))
    matches = " AND ".join(f"o.{KEY}{i} = p.{KEY}{i}" for i in range(len(keys)))
    maturity = parse_duration(spec.label_maturity) if spec.label_maturity else None
    matured = f"p.{AT} <= {dialect.timestamp_literal(now - maturity)}" if maturity else "TRUE"
    target = dialect.quote(spec.target)
    outcomes = warehouse.quote(relation.strip('"') + "_outcomes")
    warehouse.execute(
        f"CREATE TEMPORARY TABLE {outcomes} AS SELECT p.{DAY} AS day, p.score, p.decision,"
        f" CASE WHEN o.y = 1 THEN 1 WHEN {matured} THEN 0 END AS y"
        f" FROM {relation} AS p LEFT JOIN (SELECT {outcome_keys},"
        f" max(CASE WHEN CAST({target} AS INTEGER) = 1 THEN 1 ELSE 0 END) AS y"
        f" FROM {labels} GROUP BY {', '.join(f'{KEY}{i}' for i in range(len(keys)))}) AS o"
        f" ON {matches}"
    )
    try:
        yield outcomes, _outcomes(warehouse, outcomes)
    finally:
        warehouse.execute(f"DROP TABLE IF EXISTS {outcomes}")


def _outcomes(warehouse: Any, outcomes: str) -> dict[str, Outcomes]:
    """Per day and over all ('all'): counts, AUC by ranks (ties averaged), KS."""
    found: dict[str, Outcomes] = {}
    groups = f"SELECT day AS g, score, y FROM {outcomes} UNION ALL SELECT '{ALL}', score, y FROM {outcomes}"
    for g, bad, good, pending in warehouse.fetchall(
        f"SELECT g, sum(CASE WHEN y = 1 THEN 1 ELSE 0 END), sum(CASE WHEN y = 0 THEN 1 ELSE 0 END),"
        f" sum(CASE WHEN y IS NULL THEN 1 ELSE 0 END) FROM ({groups}) AS s GROUP BY 1"
    ):
        found[str(g)] = Outcomes(str(g), int(bad), int(good), int(pending))
    known = f"SELECT * FROM ({groups}) AS s WHERE y IS NOT NULL AND score IS NOT NULL"
    for g, positives, negatives, rank_sum in warehouse.fetchall(
        f"SELECT g, sum(y), count(*) - sum(y), sum(CASE WHEN y = 1 THEN rk + (ties - 1) / 2.0 END)"
        f" FROM (SELECT g, y, rank() OVER (PARTITION BY g ORDER BY score) AS rk,"
        f" count(*) OVER (PARTITION BY g, score) AS ties FROM ({known}) AS k) AS r GROUP BY 1"
    ):
        positives, negatives = int(positives), int(negatives)
        if positives and negatives:
            found[str(g)].auc = (float(rank_sum) - positives * (positives + 1) / 2) / (
                positives * negatives
            )
    for g, ks in warehouse.fetchall(
        f"SELECT g, max(abs(cp / tp - cn / tn)) FROM (SELECT g,"
        f" CAST(sum(p) OVER (PARTITION BY g ORDER BY score) AS DOUBLE PRECISION) AS cp,"
        f" CAST(sum(n) OVER (PARTITION BY g ORDER BY score) AS DOUBLE PRECISION) AS cn,"
        f" sum(p) OVER (PARTITION BY g) AS tp, sum(n) OVER (PARTITION BY g) AS tn"
        f" FROM (SELECT g, score, sum(y) AS p, count(*) - sum(y) AS n FROM ({known}) AS k"
        f" GROUP BY 1, 2) AS per) AS c WHERE tp > 0 AND tn > 0 GROUP BY 1"
    ):
        found[str(g)].ks = float(ks)
    return found
