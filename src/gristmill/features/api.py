"""What the features module offers a notebook, the CLI and the server: materializing the
online store, reading features for entities now, pushing events, and verifying that the
online path agrees with the training sets."""

from __future__ import annotations

import bisect
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gristmill.dialects import dialect
from gristmill.durations import parse_duration
from gristmill.errors import ConfigError, InvalidEventError, did_you_mean
from gristmill.features.discover import Definitions, load_definitions
from gristmill.features.events import (
    EventChecker,
    cached_types,
    future_cut,
    parse_key,
    refuse_not_finite,
    remember_types,
)
from gristmill.features.online import (
    MICROS,
    Record,
    apply_events,
    compute,
    entity_key,
    event_rows_sql,
    span_us,
    to_micros,
)

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

    from gristmill.dialects import Dialect
    from gristmill.features.definition import FeatureView
    from gristmill.online.base import OnlineStore
    from gristmill.project import Project

WATERMARK = "watermark_us"

log = logging.getLogger(__name__)


def _source(project: Project, view: FeatureView) -> str:
    from gristmill.profile import resolve_table

    return project.warehouse.qualified(*resolve_table(project, view.source))


@dataclass
class MaterializeResult:
    view: str
    entities: int
    events: int
    full: bool
    seconds: float
    future_events: int = 0
    """Rows of the source dated later than the serving clock allows (now + [online]
    clock_skew): left out, as a push of them would be refused."""


def clock_skew(project: Project) -> timedelta:
    """How far past now an event may be dated ([online] clock_skew)."""
    return parse_duration(project.config.online.clock_skew)


def materialize(
    project: Project, views: Sequence[str] | None = None, *, full: bool = False
) -> list[MaterializeResult]:
    """Write the recent events of every entity into the online store: of all entities on
    the first run (or with `full`), then only of entities with events newer than the last
    run's newest."""
    definitions = load_definitions(project.root)
    results = []
    for name in views or list(definitions.views):
        view = definitions.view(name)
        started = time.perf_counter()
        store = project.online
        mark = store.get_meta(view.name, WATERMARK)
        incremental = (
            mark is not None and not full and store.get_meta(view.name, "version") == view.version
        )
        clock = datetime.now(UTC)
        now, cut = to_micros(clock), future_cut(clock, clock_skew(project))
        source = _source(project, view)
        events = event_rows_sql(view, source, project.warehouse.dialect)
        current = f"SELECT * FROM ({events}) AS c WHERE _gm_time <= {cut}"
        keys = ", ".join(project.warehouse.quote(k) for k in view.entity)
        sql = online_events_sql(view, source, project.warehouse.dialect, now, cut)
        if incremental:
            sql = (
                f"SELECT * FROM ({sql}) AS e WHERE ({keys}) IN"
                f" (SELECT {keys} FROM ({current}) AS n WHERE _gm_time > {int(mark or 0)})"
            )
        else:
            store.clear(view.name)
        rows = project.warehouse.query_arrow(sql, beyond_decimal="float")
        future = _future_rows(project, events, cut)
        entities = apply_events(store, view, rows, now=now, replace=True)
        newest = max(rows.column("_gm_time").to_pylist(), default=int(mark or 0))
        store.set_meta(view.name, WATERMARK, str(max(newest, int(mark or 0))))
        store.set_meta(view.name, "version", view.version)
        remember_types(project, view)
        _remember_online(project, view)
        if future:
            log.warning(
                "Feature view %s: %d rows of %s are dated later than now + [online]"
                " clock_skew and were left out of the online store.",
                view.name,
                future,
                view.source,
            )
        results.append(
            MaterializeResult(
                view.name,
                entities,
                rows.num_rows,
                not incremental,
                time.perf_counter() - started,
                future,
            )
        )
    return results


def online_events_sql(view: FeatureView, source: str, dialect: Dialect, now: int, cut: int) -> str:
    """The events of `source` the online store keeps for `view` as of `now` (epoch µs):
    those within the view's span, and each entity's latest, however old (expressions read
    it). Rows dated after `cut` (now + [online] clock_skew) are not events yet: a push of
    them is refused, so they neither count nor decide an entity's latest event."""
    events = event_rows_sql(view, source, dialect)
    current = f"SELECT * FROM ({events}) AS c WHERE _gm_time <= {cut}"
    keys = ", ".join(dialect.quote(k) for k in view.entity)
    ranked = (
        f"SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY _gm_time DESC)"
        f" AS _gm_newest FROM ({current}) AS e"
    )
    recent = f"_gm_time >= {now - span_us(view)}"
    return f"SELECT * FROM ({ranked}) AS e WHERE {recent} OR _gm_newest = 1"


def _future_rows(project: Project, events: str, cut: int) -> int:
    """How many of the event rows of `events` (SQL) are dated after `cut` (epoch µs)."""
    counted = project.warehouse.query_arrow(
        f"SELECT count(*) AS n FROM ({events}) AS f WHERE _gm_time > {cut}"
    )
    return int(counted.column(0)[0].as_py())


def _remember_online(project: Project, view: FeatureView) -> None:
    """Tell `gristmill run` that the online store holds this view, so that its runs keep
    it fresh. The data version stays unknown until a run records it (a run then refreshes
    the view once, incrementally)."""
    from gristmill.catalog.base import AssetVersion
    from gristmill.graph.assets import ONLINE

    recorded = project.catalog.asset_versions().get(view.name)
    if recorded is None or recorded.definition_hash != view.version:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        project.catalog.record_asset_version(
            AssetVersion(view.name, view.version, "", ONLINE, 0, stamp)
        )


@dataclass
class OnlineFeatures:
    """Feature values of one entity as of a moment, and how old its latest event is."""

    entity: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    age_seconds: dict[str, float | None] = field(default_factory=dict)
    """Per view: seconds since the entity's latest event (None: no event known)."""


class OnlineReader:
    """Reads features for entities, computing windows as of the moment of the read. Keeps
    the definitions loaded, for a server that reads many times."""

    def __init__(self, project: Project, definitions: Definitions | None = None) -> None:
        self.project = project
        self.definitions = definitions or load_definitions(project.root)

    def read(
        self,
        features: Sequence[str],
        entities: Sequence[Mapping[str, Any]],
        at: datetime | None = None,
    ) -> list[OnlineFeatures]:
        """`features`: 'view' or 'view.column' entries; `entities`: their key values."""
        plan = self.plan(features, entities)
        return self.finish(plan, self.project.online.read_views(plan.lookups), at)

    async def read_async(
        self,
        features: Sequence[str],
        entities: Sequence[Mapping[str, Any]],
        at: datetime | None = None,
    ) -> list[OnlineFeatures]:
        """`read` for an event loop: the store's answer is awaited, never waited for."""
        plan = self.plan(features, entities)
        return self.finish(plan, await self.project.online.read_views_async(plan.lookups), at)

    def plan(self, features: Sequence[str], entities: Sequence[Mapping[str, Any]]) -> ReadPlan:
        """What to ask the store for `features` of `entities`."""
        wanted: dict[str, list[str] | None] = {}
        for entry in features:
            name, _, column = entry.partition(".")
            self.definitions.view(name)
            if column:
                picked = wanted.setdefault(name, [])
                if picked is not None:
                    picked.append(column)
            else:
                wanted[name] = None
        keys_of: list[list[str]] = []
        lookups: list[tuple[str, list[str]]] = []
        for name in wanted:
            view = self.definitions.view(name)
            missing = [k for k in view.entity if any(k not in e for e in entities)]
            if missing:
                raise ConfigError(f"Feature view {name} needs the entity key {missing[0]}.")
            keys = [entity_key(e[k] for k in view.entity) for e in entities]
            keys_of.append(keys)
            # A batch may name an entity many times: it is read and computed once.
            lookups.append((name, list(dict.fromkeys(keys))))
        return ReadPlan(entities, wanted, keys_of, lookups)

    def finish(
        self, plan: ReadPlan, found: list[list[list[bytes]]], at: datetime | None = None
    ) -> list[OnlineFeatures]:
        """The features of `plan`, from what the store answered, as of `at` (now)."""
        moment = to_micros(at or datetime.now(UTC))
        results = [OnlineFeatures(dict(e)) for e in plan.entities]
        for (name, columns), keys, (_, distinct), stored in zip(
            plan.wanted.items(), plan.keys_of, plan.lookups, found, strict=True
        ):
            view = self.definitions.view(name)
            computed: dict[str, tuple[dict[str, Any], float | None]] = {}
            for key, data in zip(distinct, stored, strict=True):
                record = Record.decode(data)
                values = compute(view, record, moment)
                known = bisect.bisect_left(record.times, moment)
                age = (moment - record.times[known - 1]) / MICROS if known else None
                computed[key] = (
                    values if columns is None else {c: values[c] for c in columns},
                    age,
                )
            for result, key in zip(results, keys, strict=True):
                values, age = computed[key]
                result.values.update(values)
                result.age_seconds[name] = age
        return results


@dataclass
class ReadPlan:
    """The store lookups of a read: per view, each entity's key, and the distinct keys."""

    entities: Sequence[Mapping[str, Any]]
    wanted: dict[str, list[str] | None]
    """Per view: the columns asked for (None: all)."""
    keys_of: list[list[str]]
    lookups: list[tuple[str, list[str]]]


def typed_keys(
    project: Project, features: Sequence[str], given: Mapping[str, str]
) -> dict[str, Any]:
    """Entity keys given as text (a command line's `device_id=007`), each parsed as its
    column's declared type in the source of the first view (of `features`) keyed by it."""
    definitions = load_definitions(project.root)
    views = [definitions.view(entry.partition(".")[0]) for entry in features]
    typed = {}
    for name, text in given.items():
        view = next((v for v in views if name in v.entity), None)
        if view is None:
            known = sorted({k for v in views for k in v.entity})
            raise ConfigError(
                f"{name} is not an entity key of {', '.join(v.name for v in views)}."
                f"{did_you_mean(name, known)} Give {', '.join(f'{k}=VALUE' for k in known)}."
            )
        types = cached_types(project, view)
        typed[name] = parse_key(view, types, name, text)
    return typed


def get_online_features(
    project: Project,
    features: Sequence[str],
    entities: Sequence[Mapping[str, Any]],
    at: datetime | None = None,
) -> list[OnlineFeatures]:
    """Feature values for `entities` now (or at `at`), from the online store."""
    return OnlineReader(project).read(features, entities, at)


class Pusher:
    """Adds new events to the online store, with the definitions loaded, and the SQL that
    evaluates the views' expressions and the checks of their source's column types
    prepared once (a server pushes many times)."""

    def __init__(self, project: Project, definitions: Definitions | None = None) -> None:
        import duckdb

        self.project = project
        self.definitions = definitions or load_definitions(project.root)
        self._db = duckdb.connect()
        # The views' SQL sees a pushed time with a zone as the warehouse does (in UTC),
        # not in the machine's zone, which DuckDB's session takes by default.
        self._db.execute("SET TimeZone = 'UTC'")
        self._sql = {
            name: event_rows_sql(view, "_gm_pushed", dialect("duckdb"))
            for name, view in self.definitions.views.items()
        }
        self._skew = clock_skew(project)
        self._checkers: dict[str, EventChecker] = {}

    def checker(self, view: FeatureView) -> EventChecker:
        if view.name not in self._checkers:
            types = cached_types(self.project, view)
            self._checkers[view.name] = EventChecker(view, types, self._skew)
        return self._checkers[view.name]

    def push(self, view_name: str, events: pa.Table | Sequence[Mapping[str, Any]]) -> int:
        """Add events of a view (its features are fresh at once); returns how many
        entities changed. The push is refused whole (InvalidEventError, nothing stored)
        if an event holds a value its source column cannot take, or a time later than
        the serving clock (now, UTC) plus [online] clock_skew."""
        import pyarrow as pa

        view = self.definitions.view(view_name)
        clock = datetime.now(UTC)
        table = self.checker(view).table(
            events.to_pylist() if isinstance(events, pa.Table) else events, clock
        )
        rows = self.rows(view, table)
        refuse_not_finite(view, rows)
        return apply_events(self.project.online, view, rows, now=to_micros(clock))

    def rows(self, view: FeatureView, table: pa.Table) -> pa.Table:
        """The view's event rows (`event_rows_sql`) of events already checked (`table`, of
        the source's columns), one per event, in order."""
        import duckdb

        self._db.register("_gm_pushed", table)
        try:
            return self._db.sql(self._sql[view.name]).to_arrow_table()
        except duckdb.Error as exc:
            # The values fit their columns, so this is the view's own SQL failing on them
            # (a cast in a feature's expression): said without DuckDB's internals.
            problem = str(exc).splitlines()[0].partition(": ")[2] or str(exc).splitlines()[0]
            raise InvalidEventError(
                f"View {view.name}: its feature SQL fails on the pushed events ({problem})."
                " Nothing was stored.",
                view=view.name,
                reason="malformed",
            ) from None
        finally:
            self._db.unregister("_gm_pushed")

    def close(self) -> None:
        self._db.close()


def push(project: Project, view_name: str, events: pa.Table | Sequence[Mapping[str, Any]]) -> int:
    """Add new events of a view to the online store (its features are fresh at once);
    returns how many entities changed."""
    pusher = Pusher(project)
    try:
        return pusher.push(view_name, events)
    finally:
        pusher.close()


@dataclass
class Mismatch:
    entity: dict[str, Any]
    at: str
    column: str
    online: Any
    batch: Any


@dataclass
class VerifyResult:
    view: str
    samples: int
    events: int
    mismatches: list[Mismatch]
    future_events: int = 0
    """Rows of the source dated beyond the serving clock: left out of both paths."""
    unknown_keys: int = 0
    """Instants read for entity keys with no events (both paths must say so alike)."""
    store: str = ""
    """The kind of online store the events were replayed through."""

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
    return bool(a == b) or float(a) == float(b)


def verify(project: Project, view_name: str, *, samples: int = 200, seed: int = 0) -> VerifyResult:
    """Replay the view's events through the online path and compare every value with the
    training-set value as of the same instant, computed by the warehouse.

    The replay runs on a scratch store of the project's own kind: events are pushed in
    shuffled order, each as soon as the serving clock (the instant read next) accepts it,
    so up to [online] clock_skew early; a tenth of the instants read entities that have
    no event at all. Source rows dated beyond the real clock are left out of both paths,
    and no instant lies beyond it."""

    view = load_definitions(project.root).view(view_name)
    source = _source(project, view)
    skew = clock_skew(project)
    cut = future_cut(datetime.now(UTC), skew)
    rows_sql = event_rows_sql(view, source, project.warehouse.dialect)
    events = project.warehouse.query_arrow(
        f"SELECT * FROM ({rows_sql}) AS e WHERE _gm_time <= {cut} ORDER BY _gm_time",
        beyond_decimal="float",
    )
    future = _future_rows(project, rows_sql, cut)
    kind = project.config.online.type
    if events.num_rows == 0:
        return VerifyResult(view.name, 0, 0, [], future, 0, kind)
    rng = random.Random(seed)
    times = events.column("_gm_time").to_pylist()
    keys = list(zip(*(events.column(k).to_pylist() for k in view.entity), strict=True))
    absent = _absent_keys(keys, samples // 10)
    # Instants: some exactly at an event (which must not count), some between events.
    points = []
    for n in range(samples):
        i = rng.randrange(len(times))
        shift = rng.choice([0, 1, rng.randrange(1, 3 * 3600) * MICROS])
        key = absent[n] if n < len(absent) else keys[i]
        points.append((key, min(times[i] + shift, cut)))
    points.sort(key=lambda p: p[1])
    online_values = _replay(project, view, events, points, skew, rng)
    mismatches = compare_with_batch(project, view, source, points, online_values)
    return VerifyResult(
        view.name, len(points), events.num_rows, mismatches, future, len(absent), kind
    )


def compare_with_batch(
    project: Project,
    view: FeatureView,
    source: str,
    points: Sequence[tuple[tuple[Any, ...], int]],
    online_values: Sequence[Mapping[str, Any]],
) -> list[Mismatch]:
    """Every value of `online_values` (one per point: an entity key and an instant in epoch
    µs) that differs from the batch value of the same entity and instant, computed by the
    warehouse from `source` with the training sets' point-in-time SQL."""
    from gristmill.features.pit import Selection, training_set_sql

    engine = project.warehouse.dialect
    values_sql = " UNION ALL ".join(
        "SELECT "
        + ", ".join(
            f"{engine.literal(v)} AS {engine.quote(k)}"
            for k, v in zip(view.entity, key, strict=True)
        )
        + f", {engine.TIMESTAMP_FROM_US_SQL.format(x=at)} AS _gm_at"
        for key, at in points
    )
    selection = Selection(view, view.columns(), source)
    sql = training_set_sql(values_sql, "_gm_at", [selection], engine)
    batch = project.warehouse.query_arrow(sql, beyond_decimal="float").to_pylist()
    return [
        Mismatch(
            dict(zip(view.entity, key, strict=True)),
            datetime.fromtimestamp(at / MICROS, UTC).isoformat(),
            column,
            online[column],
            offline[column],
        )
        for (key, at), online, offline in zip(points, online_values, batch, strict=True)
        for column in view.columns()
        if not _same(online[column], offline[column])
    ]


def _replay(
    project: Project,
    view: FeatureView,
    events: pa.Table,
    points: list[tuple[tuple[Any, ...], int]],
    skew: timedelta,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """The online values at each point: before each read, the events the serving clock
    (the point's instant) accepts are pushed, out of order and in a few pushes."""
    import tempfile
    from pathlib import Path

    times = events.column("_gm_time").to_pylist()
    ahead = int(skew.total_seconds() * MICROS)
    values = []
    with tempfile.TemporaryDirectory() as scratch:
        store = _scratch_store(project, Path(scratch))
        try:
            pushed = 0
            for key, at in points:
                upto = bisect.bisect_right(times, at + ahead, lo=pushed)
                if upto > pushed:
                    batch = list(range(pushed, upto))
                    rng.shuffle(batch)
                    parts = rng.randint(1, min(3, len(batch)))
                    for part in range(parts):
                        chunk = batch[part::parts]
                        apply_events(store, view, events.take(chunk), now=at)
                    pushed = upto
                [stored] = store.read(view.name, [entity_key(key)])
                values.append(compute(view, Record.decode(stored), at))
        finally:
            store.clear(view.name)
            store.close()
    return values


def _scratch_store(project: Project, scratch: Path) -> OnlineStore:
    """An empty store of the project's configured kind: a file in `scratch` (SQLite), or
    keys under a prefix of their own on the project's server (Redis), which the caller
    clears."""
    import uuid

    from gristmill.online import open_online_store

    config = project.config.online
    if config.type == "sqlite":
        changes = {"path": str(scratch / "replay.sqlite")}
    else:
        changes = {"prefix": f"{config.prefix}-verify-{uuid.uuid4().hex}"}
    return open_online_store(config.model_copy(update=changes), scratch)


def _absent_keys(keys: list[tuple[Any, ...]], count: int) -> list[tuple[Any, ...]]:
    """Up to `count` entity keys with no events, of the same types as `keys`: each changes
    the first key column to a value no event has."""
    if not count:
        return []
    first = [k[0] for k in keys]
    known = set(keys)
    absent = []
    for n in range(count):
        value = first[n % len(first)]
        if isinstance(value, bool) or value is None:
            break
        if isinstance(value, int | float | Decimal):
            value = max(v for v in first if v is not None) + 1 + n
        elif isinstance(value, str):
            value = f"{value}~no-events-{n}"
        else:
            break
        key = (value, *keys[n % len(keys)][1:])
        if key not in known:
            absent.append(key)
    return absent
