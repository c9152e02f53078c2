"""Feature views: one definition of the behaviour features a model uses, for training sets
(as of each past decision) and, later, for online serving.

    # features/user_velocity.py
    from gristmill.features import FeatureView, aggregate, expression

    user_velocity = FeatureView(
        name="user_velocity",
        entity=["user_id"],
        timestamp="created_at",
        source="clean_transactions",
        ttl="30d",
        features=[
            aggregate("tx_count", "count", windows=["1h", "24h", "7d"]),
            aggregate("amount_sum", "sum", "amount", windows=["24h", "7d"]),
            aggregate("merchants", "count_distinct", "merchant_id", windows=["7d"]),
            aggregate("failed", "count", windows=["24h"], filter="status = 'failed'"),
            expression("last_amount", "amount"),
        ],
    )

A windowed feature named `tx_count` with window 1h is the column `tx_count_1h`; its value
at a moment T aggregates the view's events with T - 1h <= time < T (events at T itself
are not yet known). An expression feature is the value of a SQL expression on the latest
event before T; it is NULL when that event is older than the view's `ttl`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from gristmill.durations import parse_duration
from gristmill.errors import ConfigError, did_you_mean
from gristmill.values import content_hash

Aggregation = Literal["count", "sum", "mean", "min", "max", "count_distinct"]
AGGREGATIONS: tuple[str, ...] = ("count", "sum", "mean", "min", "max", "count_distinct")
"""The last value of a column is an `expression` feature: the latest event's value."""


@dataclass(frozen=True)
class Feature:
    """One feature of a view: a windowed aggregation, or an expression on the latest event."""

    name: str
    aggregation: Aggregation | None = None
    """None for an expression feature."""
    column: str | None = None
    """What is aggregated (a column or SQL expression); None counts events."""
    windows: tuple[str, ...] = ()
    filter: str | None = None
    """A SQL condition: only events that meet it are aggregated."""
    sql: str | None = None
    """An expression feature's SQL, evaluated on the latest event."""

    def outputs(self) -> list[tuple[str, str | None]]:
        """(column name, window) of every column this feature produces."""
        if self.aggregation is None:
            return [(self.name, None)]
        return [(f"{self.name}_{w.replace(' ', '')}", w) for w in self.windows]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aggregation": self.aggregation,
            "column": self.column,
            "windows": list(self.windows),
            "filter": self.filter,
            "sql": self.sql,
        }


def aggregate(
    name: str,
    aggregation: str,
    column: str | None = None,
    *,
    windows: list[str],
    filter: str | None = None,
) -> Feature:
    """A windowed aggregation of the view's events (`count` needs no column)."""
    if aggregation not in AGGREGATIONS:
        raise ConfigError(
            f"Feature {name}: unknown aggregation '{aggregation}'.{did_you_mean(aggregation, AGGREGATIONS)}"
            f" Known: {', '.join(AGGREGATIONS)}."
        )
    if aggregation != "count" and column is None:
        raise ConfigError(f"Feature {name}: '{aggregation}' needs a column to aggregate.")
    if not windows:
        raise ConfigError(f"Feature {name}: give at least one window, such as windows=['24h'].")
    for window in windows:
        try:
            parse_duration(window)
        except ValueError as exc:
            raise ConfigError(f"Feature {name}: {exc}") from None
    return Feature(name, aggregation, column, tuple(windows), filter)  # type: ignore[arg-type]


def expression(name: str, sql: str) -> Feature:
    """The value of a SQL expression on the entity's latest event."""
    return Feature(name, sql=sql)


@dataclass
class FeatureView:
    name: str
    entity: list[str]
    timestamp: str
    source: str
    features: list[Feature]
    ttl: str | None = None
    description: str = ""
    where: str = field(default="", compare=False)
    """The file that defines the view, for messages."""

    def __post_init__(self) -> None:
        if isinstance(self.entity, str):
            self.entity = [self.entity]
        if not self.entity:
            raise ConfigError(
                f"Feature view {self.name}: name its entity key, such as entity=['user_id']."
            )
        names = [column for f in self.features for column, _ in f.outputs()]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(
                f"Feature view {self.name}: columns named twice: {', '.join(repeated)}."
            )
        if self.ttl is not None:
            parse_duration(self.ttl)

    @property
    def ttl_delta(self) -> timedelta | None:
        return parse_duration(self.ttl) if self.ttl else None

    def columns(self) -> list[str]:
        """The feature columns the view produces, in order."""
        return [column for f in self.features for column, _ in f.outputs()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entity": self.entity,
            "timestamp": self.timestamp,
            "source": self.source,
            "ttl": self.ttl,
            "features": [f.to_dict() for f in self.features],
        }

    @property
    def version(self) -> str:
        """The content hash of the definition."""
        return content_hash(self.to_dict())


@dataclass
class Dataset:
    """A training set: a spine (entity keys, a timestamp, a label, any other columns) and
    the features joined to it as of each spine row's timestamp."""

    name: str
    spine: str
    """A table name, or a SELECT."""
    timestamp: str
    features: list[str]
    """'view' (every feature of the view) or 'view.column'."""
    label: str | None = None
    inclusive: bool = False
    """Join events at exactly the spine row's time too (by default only earlier ones)."""
    where: str = field(default="", compare=False)
