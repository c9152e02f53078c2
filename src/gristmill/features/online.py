"""Online features: each entity's recent events in the online store, and the features
computed from them as of now, by the same definitions as the training sets.

The store keeps an entity's events within the view's longest window (or its ttl, if
longer) and always its latest event. An event is its time (epoch microseconds) and, per
feature, the value it aggregates and whether it passes the feature's filter, evaluated
by DuckDB with the view's own SQL; a decimal is kept as its digits (`{"$d": "0.01"}`), so
that integers and decimals are summed exactly, as the training sets sum them. Windowed
features are aggregated over `[T - window, T)` when they are read, so nothing stored
goes stale, and pushing an event only appends it.
"""

from __future__ import annotations

import bisect
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, localcontext
from typing import TYPE_CHECKING, Any

from gristmill.durations import parse_duration
from gristmill.features.definition import Feature, FeatureView

if TYPE_CHECKING:
    import pyarrow as pa

    from gristmill.dialects import Dialect
    from gristmill.online.base import OnlineStore

MICROS = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
"""Decimal arithmetic that never rounds a sum (a sum has no more digits than its terms)."""
DECIMAL_TAG = "$d"
_COMPACT = json.JSONEncoder(separators=(",", ":")).encode
"""json.dumps(value, separators=(",", ":")) without making an encoder per call."""


def span_us(view: FeatureView) -> int:
    """How far back a record keeps events."""
    spans = [parse_duration(w) for f in view.features for w in f.windows]
    if view.ttl_delta is not None:
        spans.append(view.ttl_delta)
    return int(max(spans).total_seconds() * MICROS) if spans else 0


def entity_key(values: Iterable[Any]) -> str:
    plain = [_plain(v) for v in values]
    if len(plain) == 1 and type(plain[0]) is int:
        return f"[{plain[0]}]"  # what json.dumps writes, for the commonest key, sooner
    return _COMPACT(plain)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _stored(value: Any) -> Any:
    """A feature's value as JSON keeps it: a decimal as its digits, not the nearest float."""
    if isinstance(value, Decimal):
        return {DECIMAL_TAG: str(value)}
    return _plain(value)


def _restored(value: dict[str, Any]) -> Any:
    return Decimal(value[DECIMAL_TAG]) if len(value) == 1 and DECIMAL_TAG in value else value


def to_micros(moment: datetime) -> int:
    """Epoch microseconds of a moment (a naive one is UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(microseconds=1)


def encode_event(time: int, values: list[Any], keeps: list[int], nonce: int) -> bytes:
    """One event as the store keeps it. The nonce tells apart two otherwise equal events
    of an entity (the same moment and values): a store may keep events as a set."""
    return _COMPACT([time, values, keeps, nonce]).encode()


@dataclass
class Record:
    """One entity's recent events, in time order."""

    times: list[int] = field(default_factory=list)
    values: list[list[Any]] = field(default_factory=list)
    """Per event: the value each feature aggregates."""
    keeps: list[list[int]] = field(default_factory=list)
    """Per event: 1 where the event passes each feature's filter."""

    @classmethod
    def decode(cls, events: list[bytes]) -> Record:
        """From the store's events, oldest first (one JSON parse for all of them)."""
        if not events:
            return cls()
        decoded = json.loads(b"[" + b",".join(events) + b"]", object_hook=_restored)
        return cls([e[0] for e in decoded], [e[1] for e in decoded], [e[2] for e in decoded])


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
        return _sum(values)
    if feature.aggregation == "mean":
        # The exact sum rounded once, then divided: what the training sets compute.
        return float(_sum(values)) / len(values)
    if feature.aggregation == "min":
        return min(values)
    return max(values)


def _sum(values: list[Any]) -> Any:
    """Integers and decimals summed exactly (so a 1e12 amount does not swallow the cents
    after it), floats correctly rounded."""
    if isinstance(values[0], float):
        return math.fsum(values)
    with localcontext(EXACT):
        try:
            total = sum(values)
        except TypeError:  # floats beside decimals, stored before decimals were kept exact
            return math.fsum(values)
    return math.fsum(values) if isinstance(total, float) else total


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


def event_rows_sql(view: FeatureView, relation: str, dialect: Dialect) -> str:
    """The view's events as (entity keys..., time in µs, each feature's value, each
    feature's filter flag), from `relation` (a table, or an Arrow table DuckDB scans), in
    the SQL of `dialect`."""
    q = dialect.quote
    parts = [q(k) for k in view.entity]
    parts.append(f"{dialect.EPOCH_US_SQL.format(x=q(view.timestamp))} AS _gm_time")
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
    *,
    now: int,
    replace: bool = False,
    nonces: Sequence[int] | None = None,
) -> int:
    """Append event rows (as `event_rows_sql` gives them) to their entities, and forget
    each entity's events older than the view's span before `now` (the serving clock, in
    epoch µs), never its latest one as of `now`; with `replace`, the rows are each
    entity's whole history. Returns the entities touched.

    The clock, not the newest event, decides what is old: an event dated in the future
    must not push an entity's history out of its windows."""
    import pyarrow as pa

    n = len(view.features)
    columns = rows.to_pydict()
    times = columns["_gm_time"]
    values = list(zip(*(columns[f"_gm_in{i}"] for i in range(n)), strict=True))
    keeps = list(zip(*(columns[f"_gm_keep{i}"] for i in range(n)), strict=True))
    # Decimals and moments are not JSON: those columns go through _stored.
    plain = any(
        not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))
        and not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t))
        for t in (rows.schema.field(f"_gm_in{i}").type for i in range(n))
    )
    by_entity: dict[str, list[tuple[int, bytes]]] = {}
    newest: dict[str, int] = {}
    nonce = random.getrandbits(40)
    for r, values_of_key in enumerate(zip(*(columns[k] for k in view.entity), strict=True)):
        key = entity_key(values_of_key)
        time = int(times[r])
        row = [_stored(v) for v in values[r]] if plain else list(values[r])
        by_entity.setdefault(key, []).append(
            (
                time,
                encode_event(time, row, list(keeps[r]), nonce + r if nonces is None else nonces[r]),
            )
        )
        if now > time > newest.get(key, time - 1):
            newest[key] = time
    if not by_entity:
        return 0
    span = span_us(view)
    # The newest new event before now stays, so the event that is an entity's latest as
    # of now (a read at T sees the events before T) is never forgotten. An entity whose
    # new events are all still to come (within the clock skew) forgets nothing: its
    # latest event until then is one already stored.
    forget = {k: min(now - span, t) for k, t in newest.items()}
    store.write(view.name, by_entity, forget, replace=replace)
    return len(by_entity)
