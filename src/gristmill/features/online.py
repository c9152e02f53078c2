"""Online features: each entity's recent events in the online store, and the features
computed from them as of now, by the same definitions as the training sets.

A record holds an entity's events within the view's longest window (or its ttl, if
longer) and always its latest event: their times (epoch microseconds) and, per feature,
the value it aggregates and whether the event passes the feature's filter, evaluated by
DuckDB with the view's own SQL. Windowed features are aggregated over `[T - window, T)`
when they are read; so a record never goes stale, and pushing an event only appends it.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gristmill.durations import parse_duration
from gristmill.features.definition import Feature, FeatureView

if TYPE_CHECKING:
    import pyarrow as pa

    from gristmill.online.base import OnlineStore

MICROS = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def span_us(view: FeatureView) -> int:
    """How far back a record keeps events."""
    spans = [parse_duration(w) for f in view.features for w in f.windows]
    if view.ttl_delta is not None:
        spans.append(view.ttl_delta)
    return int(max(spans).total_seconds() * MICROS) if spans else 0


def entity_key(values: Iterable[Any]) -> str:
    return json.dumps([_plain(v) for v in values], separators=(",", ":"))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def to_micros(moment: datetime) -> int:
    """Epoch microseconds of a moment (a naive one is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1)


@dataclass
class Record:
    """One entity's recent events, in time order."""

    times: list[int] = field(default_factory=list)
    values: list[list[Any]] = field(default_factory=list)
    """Per event: the value each feature aggregates."""
    keeps: list[list[int]] = field(default_factory=list)
    """Per event: 1 where the event passes each feature's filter."""

    def encode(self) -> bytes:
        return json.dumps([self.times, self.values, self.keeps], separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes | None) -> Record:
        if data is None:
            return cls()
        times, values, keeps = json.loads(data)
        return cls(times, values, keeps)

    def add(self, time: int, values: list[Any], keeps: list[int]) -> None:
        at = bisect.bisect_right(self.times, time)
        self.times.insert(at, time)
        self.values.insert(at, values)
        self.keeps.insert(at, keeps)

    def trim(self, now: int, span: int) -> None:
        """Forget events older than `span` before `now`, but always keep the latest one."""
        cut = min(bisect.bisect_left(self.times, now - span), max(len(self.times) - 1, 0))
        if cut > 0:
            del self.times[:cut], self.values[:cut], self.keeps[:cut]


def compute(view: FeatureView, record: Record, at: int, inclusive: bool = False) -> dict[str, Any]:
    """Every feature column of `view` as of `at` (epoch µs), as the training sets define it."""
    end = (
        bisect.bisect_right(record.times, at) if inclusive else bisect.bisect_left(record.times, at)
    )
    result: dict[str, Any] = {}
    for index, feature in enumerate(view.features):
        if feature.aggregation is None:
            result[feature.name] = _latest(view, record, index, end, at)
            continue
        for column, window in feature.outputs():
            start = bisect.bisect_left(
                record.times, at - int(parse_duration(window or "0s").total_seconds() * MICROS)
            )
            result[column] = _aggregate(feature, record, index, start, end)
    return result


def _aggregate(feature: Feature, record: Record, index: int, start: int, end: int) -> Any:
    kept = [record.values[i][index] for i in range(start, end) if record.keeps[i][index]]
    if feature.aggregation == "count":
        return len(kept)
    values = [v for v in kept if v is not None]
    if feature.aggregation == "count_distinct":
        return len(set(values))
    if not values:
        return None
    if feature.aggregation == "sum":
        return sum(values)
    if feature.aggregation == "mean":
        return math.fsum(values) / len(values)
    if feature.aggregation == "min":
        return min(values)
    return max(values)


def _latest(view: FeatureView, record: Record, index: int, end: int, at: int) -> Any:
    if end == 0:
        return None
    newest = record.times[end - 1]
    ttl = view.ttl_delta
    if ttl is not None and at - newest > ttl.total_seconds() * MICROS:
        return None
    first = bisect.bisect_left(record.times, newest, 0, end)
    tied = [record.values[i][index] for i in range(first, end)]
    present = [v for v in tied if v is not None]
    return max(present) if present else None


def event_rows_sql(view: FeatureView, relation: str, epoch_us: str) -> str:
    """The view's events as (entity keys..., time in µs, each feature's value, each
    feature's filter flag), from `relation` (a table, or an Arrow table DuckDB scans)."""

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    parts = [q(k) for k in view.entity]
    parts.append(f"{epoch_us.format(x=q(view.timestamp))} AS _gm_time")
    parts += [f"{f.sql or f.column or '1'} AS _gm_in{i}" for i, f in enumerate(view.features)]
    parts += [
        f"CASE WHEN {f'({f.filter})' if f.filter else 'TRUE'} THEN 1 ELSE 0 END AS _gm_keep{i}"
        for i, f in enumerate(view.features)
    ]
    present = " AND ".join(f"{q(c)} IS NOT NULL" for c in [*view.entity, view.timestamp])
    return f"SELECT {', '.join(parts)} FROM {relation} WHERE {present}"


def apply_events(
    store: OnlineStore,
    view: FeatureView,
    rows: pa.Table,
    now: int | None = None,
    replace: bool = False,
) -> int:
    """Add event rows (as `event_rows_sql` gives them) to their entities' records; with
    `replace`, the rows are each entity's whole history. Returns the entities touched."""
    n = len(view.features)
    by_entity: dict[str, list[tuple[int, list[Any], list[int]]]] = {}
    columns = rows.to_pydict()
    keys = list(zip(*(columns[k] for k in view.entity), strict=True))
    for r, values_of_key in enumerate(keys):
        events = by_entity.setdefault(entity_key(values_of_key), [])
        events.append(
            (
                int(columns["_gm_time"][r]),
                [_plain(columns[f"_gm_in{i}"][r]) for i in range(n)],
                [int(columns[f"_gm_keep{i}"][r]) for i in range(n)],
            )
        )
    if not by_entity:
        return 0
    entity_keys = list(by_entity)
    current = (
        [Record() for _ in entity_keys]
        if replace
        else [Record.decode(d) for d in store.read(view.name, entity_keys)]
    )
    span = span_us(view)
    records = {}
    for key, record in zip(entity_keys, current, strict=True):
        for time, values, keeps in by_entity[key]:
            record.add(time, values, keeps)
        record.trim(now if now is not None else record.times[-1], span)
        records[key] = record.encode()
    store.write(view.name, records)
    return len(records)
