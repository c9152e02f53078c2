"""What the features module offers a notebook, the CLI and the server: materializing the
online store, reading features for entities now, pushing events, and verifying that the
online path agrees with the training sets."""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gristmill.dialects import dialect
from gristmill.errors import ConfigError
from gristmill.features.discover import Definitions, load_definitions
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
    import pyarrow as pa

    from gristmill.features.definition import FeatureView
    from gristmill.project import Project

WATERMARK = "watermark_us"


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
        now = to_micros(datetime.now(UTC))
        source = _source(project, view)
        events = event_rows_sql(view, source, project.warehouse.dialect)
        keys = ", ".join(project.warehouse.quote(k) for k in view.entity)
        # The latest event of every entity is kept, however old: expressions read it.
        ranked = (
            f"SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY _gm_time DESC)"
            f" AS _gm_newest FROM ({events}) AS e"
        )
        recent = f"_gm_time >= {now - span_us(view)}"
        sql = f"SELECT * FROM ({ranked}) AS e WHERE {recent} OR _gm_newest = 1"
        if incremental:
            sql = (
                f"SELECT * FROM ({sql}) AS e WHERE ({keys}) IN"
                f" (SELECT {keys} FROM ({events}) AS n WHERE _gm_time > {int(mark or 0)})"
            )
        else:
            store.clear(view.name)
        rows = project.warehouse.query_arrow(sql, beyond_decimal="float")
        entities = apply_events(store, view, rows, now=now, replace=True)
        newest = max(rows.column("_gm_time").to_pylist(), default=int(mark or 0))
        store.set_meta(view.name, WATERMARK, str(max(newest, int(mark or 0))))
        store.set_meta(view.name, "version", view.version)
        _remember_online(project, view)
        results.append(
            MaterializeResult(
                view.name, entities, rows.num_rows, not incremental, time.perf_counter() - started
            )
        )
    return results


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
        moment = to_micros(at or datetime.now(UTC))
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
        results = [OnlineFeatures(dict(e)) for e in entities]
        lookups = []
        for name in wanted:
            view = self.definitions.view(name)
            missing = [k for k in view.entity if any(k not in e for e in entities)]
            if missing:
                raise ConfigError(f"Feature view {name} needs the entity key {missing[0]}.")
            lookups.append((name, [entity_key(e[k] for k in view.entity) for e in entities]))
        found = self.project.online.read_views(lookups)
        for (name, columns), stored in zip(wanted.items(), found, strict=True):
            view = self.definitions.view(name)
            for result, data in zip(results, stored, strict=True):
                record = Record.decode(data)
                values = compute(view, record, moment)
                result.values.update(values if columns is None else {c: values[c] for c in columns})
                known = bisect.bisect_left(record.times, moment)
                result.age_seconds[name] = (
                    (moment - record.times[known - 1]) / MICROS if known else None
                )
        return results


def get_online_features(
    project: Project,
    features: Sequence[str],
    entities: Sequence[Mapping[str, Any]],
    at: datetime | None = None,
) -> list[OnlineFeatures]:
    """Feature values for `entities` now (or at `at`), from the online store."""
    return OnlineReader(project).read(features, entities, at)


class Pusher:
    """Adds new events to the online store, with the definitions loaded and the SQL that
    evaluates the views' expressions prepared once (a server pushes many times)."""

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

    def push(self, view_name: str, events: pa.Table | Sequence[Mapping[str, Any]]) -> int:
        """Add events of a view (its features are fresh at once); returns how many
        entities changed."""
        import pyarrow as pa

        view = self.definitions.view(view_name)
        if not isinstance(events, pa.Table):
            events = [_parse_time(e, view.timestamp, i) for i, e in enumerate(events)]
        table = events if isinstance(events, pa.Table) else pa.Table.from_pylist(events)
        self._db.register("_gm_pushed", table)
        try:
            rows = self._db.sql(self._sql[view_name]).to_arrow_table()
        finally:
            self._db.unregister("_gm_pushed")
        return apply_events(self.project.online, view, rows)

    def close(self) -> None:
        self._db.close()


def _parse_time(event: Mapping[str, Any], column: str, index: int) -> Mapping[str, Any]:
    """An event whose time came as text (JSON) with the time as a UTC datetime."""
    value = event.get(column)
    if value is None:
        raise ConfigError(f"events[{index}]: missing {column!r}, the view's event time.")
    if not isinstance(value, str):
        return event
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"events[{index}].{column}: {value!r} is not an ISO 8601 time, such as"
            " 2026-11-26T10:00:00Z."
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return {**event, column: moment}


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
    """Replay the view's events through the online path (push into an empty store, read
    as of each sampled instant) and compare every value with the training-set value as
    of the same instant, computed by the warehouse."""
    import tempfile
    from pathlib import Path

    from gristmill.config import OnlineConfig
    from gristmill.features.pit import Selection, training_set_sql
    from gristmill.online.sqlite import SQLiteOnlineStore

    view = load_definitions(project.root).view(view_name)
    source = _source(project, view)
    events = project.warehouse.query_arrow(
        f"SELECT * FROM ({event_rows_sql(view, source, project.warehouse.dialect)}) AS e"
        " ORDER BY _gm_time",
        beyond_decimal="float",
    )
    if events.num_rows == 0:
        return VerifyResult(view.name, 0, 0, [])
    rng = random.Random(seed)
    times = events.column("_gm_time").to_pylist()
    keys = list(zip(*(events.column(k).to_pylist() for k in view.entity), strict=True))
    # Instants: some exactly at an event (which must not count), some between events.
    points = []
    for _ in range(samples):
        i = rng.randrange(len(times))
        shift = rng.choice([0, 1, rng.randrange(1, 3 * 3600) * MICROS])
        points.append((keys[i], times[i] + shift))
    points.sort(key=lambda p: p[1])
    with tempfile.TemporaryDirectory() as scratch:
        store = SQLiteOnlineStore(
            OnlineConfig(path=str(Path(scratch) / "replay.sqlite")), Path(scratch)
        )
        online_values = []
        pushed = 0
        for key, at in points:
            upto = pushed
            while upto < len(times) and times[upto] < at:
                upto += 1
            if upto > pushed:
                apply_events(store, view, events.slice(pushed, upto - pushed), now=at)
                pushed = upto
            [stored] = store.read(view.name, [entity_key(key)])
            online_values.append(compute(view, Record.decode(stored), at))
        store.close()
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
    mismatches = []
    for (key, at), online, offline in zip(points, online_values, batch, strict=True):
        for column in view.columns():
            if not _same(online[column], offline[column]):
                mismatches.append(
                    Mismatch(
                        dict(zip(view.entity, key, strict=True)),
                        datetime.fromtimestamp(at / MICROS, UTC).isoformat(),
                        column,
                        online[column],
                        offline[column],
                    )
                )
    return VerifyResult(view.name, len(points), events.num_rows, mismatches)
