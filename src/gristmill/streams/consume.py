"""One stream's micro-batches: read, checked, applied, acknowledged.

A batch (at most [streams.NAME] batch messages) is applied in one warehouse transaction:
its new events appended to the stream's table (an event id the table already holds, or
that the batch holds twice, is applied once) and its dead letters recorded; the online
values of its feature views are written before that commit, each event under a nonce
derived from its id, so that writing it again stores nothing new. The messages are
acknowledged after the commit: a consumer killed at any moment gets them again, and
applying them again changes nothing.

A message that cannot be applied (not UTF-8, not JSON, a missing or unknown field, a value
its column cannot take, a time beyond the serving clock's skew) becomes a dead letter
(`_gristmill.dead_letters`: the stream, the message id, the reason, the message as
received); the others go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from gristmill import backends
from gristmill.config import StreamConfig
from gristmill.errors import ConfigError, did_you_mean
from gristmill.features.discover import load_definitions
from gristmill.features.events import RefusedValue, arrow_column, value_check
from gristmill.streams.base import Broker, Message
from gristmill.types import override_type

if TYPE_CHECKING:
    from gristmill.features.api import Pusher
    from gristmill.features.definition import FeatureView
    from gristmill.project import Project
    from gristmill.transforms.row_level import RowTransform
    from gristmill.warehouse.base import Transaction, Warehouse

logger = logging.getLogger(__name__)

DEAD_LETTERS = "dead_letters"
STAGE = "_gm_stream_"


@dataclass
class BatchResult:
    messages: int
    applied: int
    """Events new to the stream's table (or to the online store, without a table)."""
    dead: int
    seconds: float


class StreamConsumer:
    """Applies one [streams.NAME] entry's batches to a project."""

    def __init__(self, root: Path, name: str, config: StreamConfig, consumer: str) -> None:
        self.root = root
        self.name = name
        self.config = config
        self.schema = pa.schema([pa.field(c, override_type(t)) for c, t in config.columns.items()])
        self._checks = {f.name: value_check(f.type) for f in self.schema}
        self._text_checks = {
            f.name: _after(_text_parser(f.type), self._checks[f.name]) for f in self.schema
        }
        """The checks of a `fields` message, whose values are text."""
        self.definitions = load_definitions(root)
        self.views: list[FeatureView] = [self.definitions.view(v) for v in config.feature_views]
        self._required = {config.event_id}
        """The fields every event needs (its id, and the keys and time of direct views)."""
        self._transforms: dict[str, RowTransform] = {}
        """Per view reading a row-level transform of the stream's table: the transform."""
        broker_class = backends.resolve("broker", config.type)
        self.broker: Broker = broker_class(name, config, consumer)
        self._pusher: Pusher | None = None
        self._duckdb: Any = None

    def prepare(self, project: Project) -> None:
        """Each view's input, the stream's events or a row-level transform of the stream's
        table, checked against the columns (once)."""
        import duckdb

        from gristmill.features.api import Pusher
        from gristmill.transforms.row_level import (
            ROW,
            find_row_transform,
            project_transforms,
            run_on_batch,
        )

        self._duckdb = duckdb.connect()
        self._duckdb.execute("SET TimeZone = 'UTC'")  # as the warehouse and Pusher see times
        self._pusher = Pusher(project, self.definitions)
        empty = self.schema.empty_table()
        transforms = project_transforms(project) if self.config.table and self.views else {}
        for view in self.views:
            transform = (
                find_row_transform(
                    project,
                    transforms,
                    view.source,
                    self._target(project),
                    f"Stream '{self.name}', feeding feature view '{view.name}',",
                )
                if self.config.table
                else None
            )
            if transform is None:
                columns, given = self.schema.names, "the stream's columns do not declare"
                self._required.update((*view.entity, view.timestamp))
                rows = empty
            else:
                self._transforms[view.name] = transform
                rows = run_on_batch(transform, _numbered(empty), self._duckdb).drop([ROW])
                columns, given = rows.column_names, f"transform '{transform.name}' does not make"
            missing = [c for c in (*view.entity, view.timestamp) if c not in columns]
            if missing:
                raise ConfigError(
                    f"Stream '{self.name}': feature view {view.name} needs column"
                    f" {missing[0]!r}, which {given}.{did_you_mean(missing[0], columns)}"
                )
            self._pusher.rows(view, rows)  # the view's SQL binds to these columns

    # -- a batch --------------------------------------------------------------------------------
    def poll(self, open_project: Any, block_seconds: float = 0.0) -> BatchResult | None:
        """Read one batch and apply it (`open_project()` gives the project, opened for the
        batch only); None when the stream had nothing."""
        if self._pusher is None:
            with open_project() as project:
                self.prepare(project)
        messages = self.broker.read(block_seconds)
        if not messages:
            return None
        started = time.perf_counter()
        events, dead = self._check(messages)
        with open_project() as project:
            applied, buried = self._apply(project, events, dead)
        self.broker.ack([m.id for m in messages])
        return BatchResult(len(messages), applied, buried, time.perf_counter() - started)

    def _check(
        self, messages: list[Message]
    ) -> tuple[list[tuple[Message, dict[str, Any]]], list[tuple[Message, str]]]:
        good: list[tuple[Message, dict[str, Any]]] = []
        dead: list[tuple[Message, str]] = []
        for message in messages:
            try:
                good.append((message, self._event(message)))
            except RefusedValue as refused:
                dead.append((message, refused.detail))
        return good, dead

    def _event(self, message: Message) -> dict[str, Any]:
        if message.problem is not None:
            raise RefusedValue("malformed", message.problem)
        if self.config.format == "json":
            text = message.fields.get("data")
            if text is None:
                raise RefusedValue("missing", "no `data` field holding the event as JSON")
            try:
                given = json.loads(text)
            except ValueError as exc:
                raise RefusedValue("malformed", f"the `data` field is not JSON ({exc})") from None
            if not isinstance(given, dict):
                raise RefusedValue("malformed", "the `data` field is not a JSON object")
            checks = self._checks
        else:
            given, checks = message.fields, self._text_checks
        event: dict[str, Any] = {}
        for field, value in given.items():
            check = checks.get(field)
            if check is None:
                hint = did_you_mean(str(field), self._checks)
                raise RefusedValue(
                    "unknown_field", f"{field}: not one of the stream's columns.{hint}"
                )
            if value is None:
                continue
            try:
                event[field] = check(value)
            except RefusedValue as refused:
                raise RefusedValue(refused.reason, f"{field}: {refused.detail}") from None
        for field in self._required:
            if event.get(field) is None:
                raise RefusedValue(
                    "missing", f"{field}: missing (an event needs its id, keys and time)"
                )
        return event

    # -- applying ---------------------------------------------------------------------------------
    def _apply(
        self,
        project: Project,
        events: list[tuple[Message, dict[str, Any]]],
        dead: list[tuple[Message, str]],
    ) -> tuple[int, int]:
        """(events applied, dead letters)"""
        now = datetime.now(UTC)
        events, late = self._on_the_clock(project, events, now)
        events, refused, outputs = self._transformed(project, events, now)
        dead = dead + late + refused
        table = self._table(events)
        if not (self.config.table and table.num_rows) and not dead:
            # Nothing for the warehouse: it is not even opened.
            new = _unique(table, self.config.event_id)
            self._online(project, new, now, table, outputs)
            return int(new.num_rows), 0
        warehouse = project.warehouse
        if dead:
            warehouse.ensure_schema(warehouse.meta_schema)
        stage = None
        if self.config.table and table.num_rows:
            schema, target = self._target(project)
            warehouse.ensure_schema(schema)
            if not warehouse.table_exists(schema, target):
                warehouse.recreate_table(schema, target, warehouse.dialect.load_schema(self.schema))
            stage = STAGE + target
            warehouse.recreate_table(schema, stage, table.schema)
            warehouse.append(schema, stage, table.to_batches())
        stored = self._stored_transforms(warehouse) if stage is not None else []
        try:
            with warehouse.transaction() as tx:
                if stage is not None:
                    schema, target = self._target(project)
                    new = self._new_events(tx, warehouse, schema, target, stage)
                else:
                    new = _unique(table, self.config.event_id)
                self._online(project, new, now, table, outputs)
                if stage is not None and new.num_rows:
                    new_sql = self._new_sql(warehouse, schema, target, stage)
                    for transform in stored:
                        # Before the events join the table: `new_sql` reads those it lacks.
                        relation = warehouse.qualified(*transform.relation)
                        tx.execute(f"INSERT INTO {relation} {transform.over(new_sql)}")
                    columns = ", ".join(warehouse.quote(c) for c in self.schema.names)
                    tx.execute(
                        f"INSERT INTO {warehouse.qualified(schema, target)} ({columns})"
                        f" {self._new_sql(warehouse, schema, target, stage)}"
                    )
                if dead:
                    self._bury(tx, warehouse, dead, now)
        finally:
            if stage is not None:
                warehouse.drop_table(self._target(project)[0], stage)
        return int(new.num_rows), len(dead)

    def _on_the_clock(
        self, project: Project, events: list[tuple[Message, dict[str, Any]]], now: datetime
    ) -> tuple[list[tuple[Message, dict[str, Any]]], list[tuple[Message, str]]]:
        """Events dated beyond the serving clock's skew are dead letters (the push's rule)."""
        from gristmill.features.api import clock_skew
        from gristmill.features.events import future_cut
        from gristmill.features.online import to_micros

        times = {v.timestamp for v in self.views if v.name not in self._transforms}
        if not times:
            return events, []
        cut = future_cut(now, clock_skew(project))
        kept, late = [], []
        for message, event in events:
            beyond = [t for t in times if to_micros(event[t]) > cut]
            if beyond:
                late.append(
                    (
                        message,
                        f"{beyond[0]}: {event[beyond[0]].isoformat()}Z is later than now"
                        f" ({now.replace(tzinfo=None).isoformat(timespec='seconds')}Z) plus the"
                        " clock skew ([online] clock_skew)",
                    )
                )
            else:
                kept.append((message, event))
        return kept, late

    def _transformed(
        self, project: Project, events: list[tuple[Message, dict[str, Any]]], now: datetime
    ) -> tuple[
        list[tuple[Message, dict[str, Any]]], list[tuple[Message, str]], dict[str, pa.Table]
    ]:
        """The batch through each row-level transform a view reads: (the events kept, those
        refused, each transform's rows with `_gm_row`, the index of the event they come
        from). An event a transform fails on, or that a transform dates beyond the serving
        clock's skew, is refused."""
        import duckdb

        from gristmill.features.api import clock_skew
        from gristmill.features.events import future_cut
        from gristmill.features.online import to_micros
        from gristmill.transforms.row_level import ROW

        if not self._transforms or not events:
            return events, [], {}
        refused: list[tuple[Message, str]] = []
        try:
            outputs = self._outputs(events)
        except duckdb.Error:  # some event a transform cannot take: which ones
            for transform in self._distinct_transforms.values():
                events, failed = self._runnable(transform, events)
                refused += failed
            outputs = self._outputs(events)
        cut = future_cut(now, clock_skew(project))
        late: dict[int, str] = {}
        for view in self.views:
            if view.name not in self._transforms:
                continue
            output = outputs[self._transforms[view.name].name]
            rows = output.column(ROW).to_pylist()
            for row, moment in zip(rows, output.column(view.timestamp).to_pylist(), strict=True):
                if isinstance(moment, datetime) and to_micros(moment) > cut:
                    late.setdefault(
                        row,
                        f"{view.timestamp} (made by transform"
                        f" '{self._transforms[view.name].name}'): {moment.isoformat()} is later"
                        " than now plus the clock skew ([online] clock_skew)",
                    )
        if late:
            refused += [(events[row][0], reason) for row, reason in late.items()]
            events = [e for row, e in enumerate(events) if row not in late]
            outputs = self._outputs(events)
        return events, refused, outputs

    def _outputs(self, events: list[tuple[Message, dict[str, Any]]]) -> dict[str, pa.Table]:
        from gristmill.transforms.row_level import run_on_batch

        rows = _numbered(self._table(events))
        return {
            name: run_on_batch(t, rows, self._duckdb)
            for name, t in self._distinct_transforms.items()
        }

    @property
    def _distinct_transforms(self) -> dict[str, RowTransform]:
        """Each transform the views read, once (two views may read the same one)."""
        return {t.name: t for t in self._transforms.values()}

    def _runnable(
        self, transform: RowTransform, events: list[tuple[Message, dict[str, Any]]]
    ) -> tuple[list[tuple[Message, dict[str, Any]]], list[tuple[Message, str]]]:
        """The events `transform` runs on, and those it fails on (a cast that cannot take a
        value), found by halving the batch."""
        import duckdb

        from gristmill.transforms.row_level import run_on_batch

        try:
            run_on_batch(transform, _numbered(self._table(events)), self._duckdb)
            return events, []
        except duckdb.Error as exc:
            if len(events) == 1:
                problem = str(exc).splitlines()[0]
                return [], [(events[0][0], f"transform '{transform.name}' fails on it: {problem}")]
        half = len(events) // 2
        first, first_failed = self._runnable(transform, events[:half])
        second, second_failed = self._runnable(transform, events[half:])
        return first + second, first_failed + second_failed

    def _stored_transforms(self, warehouse: Warehouse) -> list[RowTransform]:
        """The transforms fed by the stream's table that the warehouse holds as tables (one
        not built yet is left to `gristmill run`)."""
        return [
            t
            for t in self._distinct_transforms.values()
            if t.stored and warehouse.table_exists(*t.relation)
        ]

    def _table(self, events: list[tuple[Message, dict[str, Any]]]) -> pa.Table:
        columns = {name: [e.get(name) for _, e in events] for name in self.schema.names}
        return pa.Table.from_arrays(
            [arrow_column(columns[f.name], f.type) for f in self.schema], schema=self.schema
        )

    def _target(self, project: Project) -> tuple[str, str]:
        assert self.config.table is not None
        schema, _, table = self.config.table.rpartition(".")
        return schema or project.config.warehouse.raw_schema, table

    def _new_sql(self, warehouse: Warehouse, schema: str, target: str, stage: str) -> str:
        """The staged events whose id neither the table nor an earlier row of the batch has."""
        key = warehouse.quote(self.config.event_id)
        columns = ", ".join(warehouse.quote(c) for c in self.schema.names)
        first = (
            f"SELECT {columns} FROM (SELECT *, row_number() OVER (PARTITION BY {key}) AS _gm_n"
            f" FROM {warehouse.qualified(schema, stage)}) AS s WHERE _gm_n = 1"
        )
        return (
            f"SELECT * FROM ({first}) AS s WHERE NOT EXISTS (SELECT 1 FROM"
            f" {warehouse.qualified(schema, target)} AS t WHERE t.{key} = s.{key})"
        )

    def _new_events(
        self, tx: Transaction, warehouse: Warehouse, schema: str, target: str, stage: str
    ) -> pa.Table:
        found = tx.fetch_arrow(self._new_sql(warehouse, schema, target, stage))
        return found.cast(self.schema) if found.schema != self.schema else found

    def _online(
        self,
        project: Project,
        events: pa.Table,
        now: datetime,
        batch: pa.Table,
        outputs: dict[str, pa.Table],
    ) -> None:
        """The new `events` (of the `batch`) into the views' online values; a view reading
        a transform gets the transform's rows of those events (`outputs`)."""
        if self._pusher is None or not events.num_rows:
            return
        from gristmill.features.online import apply_events, to_micros
        from gristmill.transforms.row_level import ROW

        key = self.config.event_id
        nonces = [_nonce(str(i)) for i in events.column(key).to_pylist()]
        new = set(events.column(key).to_pylist())
        ids = batch.column(key).to_pylist()
        first: dict[Any, int] = {}
        for row, event_id in enumerate(ids):
            first.setdefault(event_id, row)
        for view in self.views:
            transform = self._transforms.get(view.name)
            if transform is None:
                rows = self._pusher.rows(view, events)
                apply_events(project.online, view, rows, now=to_micros(now), nonces=nonces)
                continue
            output = outputs[transform.name]
            origins = output.column(ROW).to_pylist()
            keep = [i for i, r in enumerate(origins) if ids[r] in new and first[ids[r]] == r]
            made = output.take(keep)
            rows = self._pusher.rows(view, made.drop([ROW]))
            made_nonces = [_nonce(str(ids[r])) for r in made.column(ROW).to_pylist()]
            apply_events(project.online, view, rows, now=to_micros(now), nonces=made_nonces)

    def _bury(
        self, tx: Transaction, warehouse: Warehouse, dead: list[tuple[Message, str]], now: datetime
    ) -> None:
        table = warehouse.qualified(warehouse.meta_schema, DEAD_LETTERS)
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (stream TEXT, message_id TEXT, reason TEXT,"
            " message TEXT, received_at TIMESTAMP)"
        )
        # A batch delivered again (its consumer killed after the commit, before the ack)
        # brings its dead letters again: each message is buried once.
        ids = [message.id for message, _ in dead]
        buried = {
            str(r[0])
            for r in tx.fetchall(
                f"SELECT message_id FROM {table} WHERE stream = $1 AND"
                f" {warehouse.dialect.in_list('message_id', ids)}",
                [self.name],
            )
        }
        moment = now.replace(tzinfo=None)
        for message, reason in dead:
            if message.id in buried:
                continue
            buried.add(message.id)
            tx.execute(
                f"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5)",
                [self.name, message.id, reason, message.raw, moment],
            )
        logger.warning("Stream '%s': %d message(s) to %s", self.name, len(dead), table)

    def close(self) -> None:
        self.broker.close()
        if self._pusher is not None:
            self._pusher.close()
        if self._duckdb is not None:
            self._duckdb.close()


def _numbered(table: pa.Table) -> pa.Table:
    """`table` with `_gm_row`, each row's index."""
    from gristmill.transforms.row_level import ROW

    return table.append_column(ROW, pa.array(range(table.num_rows), pa.int64()))


def _unique(table: pa.Table, key: str) -> pa.Table:
    """The first row of each id (a batch may hold one event twice)."""
    seen: set[Any] = set()
    keep = []
    for index, value in enumerate(table.column(key).to_pylist()):
        if value not in seen:
            seen.add(value)
            keep.append(index)
    return table if len(keep) == table.num_rows else table.take(keep)


def _nonce(event_id: str) -> int:
    """An event's nonce in the online store, from its id: the same event, the same entry."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=5).digest(), "big")


def _after(parse: Any, check: Any) -> Any:
    return lambda text: check(parse(text))


def _text_parser(dtype: pa.DataType) -> Any:
    """How a message field's text becomes the value a column's check takes (JSON's kinds)."""
    if pa.types.is_integer(dtype):
        return lambda text: int(text) if text.lstrip("-").isdigit() else text
    if not (pa.types.is_floating(dtype) or pa.types.is_boolean(dtype)):
        return _same
    if pa.types.is_floating(dtype):

        def number(text: str) -> Any:
            try:
                return float(text)
            except ValueError:
                return text

        return number
    if pa.types.is_boolean(dtype):
        return lambda text: {"true": True, "false": False}.get(text, text)
    return _same


def _same(text: str) -> str:
    return text
