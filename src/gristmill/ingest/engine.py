"""The sync engine: reads a source table as Arrow batches and loads it exactly once.

Every table is loaded the same way, whatever the source and warehouse:

1. the source's batches stream into a staging table beside the target (several
   streams in parallel where the source can split its read), or, for a small
   incremental read, are held as Arrow that the warehouse reads in place; such a read
   may have begun before the sync, from the cursor the catalog mirrors (`read_ahead.py`);
2. one warehouse transaction then applies the stage to the target (replace, append
   or merge, then deletes), evolves the target's columns, and writes the table's
   sync state (cursor, files loaded, schema).

Because the state commits with the data, a process killed at any moment leaves either
the old data with the old state or the new data with the new state; the next run
drops any half-filled stage and starts again from the committed state.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pyarrow as pa

from gristmill.errors import ConfigError, TypeMappingError
from gristmill.ingest.cursor import decode_cursor, encode_cursor
from gristmill.ingest.read_ahead import ReadAhead, hold
from gristmill.ingest.schema import (
    SchemaPlan,
    plan_evolution,
    replacement_plan,
    schema_from_text,
    schema_to_text,
)
from gristmill.ingest.sources.base import RejectedRow, Source
from gristmill.ingest.spec import TableSpec
from gristmill.types import conform
from gristmill.warehouse.base import Transaction, Warehouse

STAGE_PREFIX = "_gm_stage_"
KEYS_PREFIX = "_gm_keys_"
ARROW_STAGE_PREFIX = "_gm_incoming_"
REJECTS_TABLE = "rejected_rows"


class Progress(Protocol):
    def start(self, key: str) -> None: ...

    def advance(self, key: str, rows: int) -> None: ...

    def finish(self, key: str, result: TableResult) -> None: ...


@dataclass
class TableResult:
    source: str
    table: str
    target: str
    mode: str
    status: str = "ok"
    rows: int = 0
    seconds: float = 0.0
    """From taking the table to committing it. A read begun ahead, alongside the
    warehouse's opening, counts in the run's seconds only."""
    schema_change: str | None = None
    cursor: Any = None
    rejected_rows: int = 0
    deleted_rows: int = 0
    error: str | None = None
    changed: bool = False
    """Whether the sync changed the table (its rows or columns): what downstream sees."""
    dropped_columns: list[str] = field(default_factory=list)
    """Columns the source no longer gives, since this sync."""
    unfilled_columns: list[str] = field(default_factory=list)
    """Columns added by this sync, NULL in the rows synced before it, which were not read
    again: the source may hold other values for them (a DEFAULT)."""
    warnings: list[str] = field(default_factory=list)
    """What the sync could not carry over by itself, and the command that does."""

    @property
    def key(self) -> str:
        return f"{self.source}.{self.table}"

    @property
    def outcome(self) -> str:
        """synced (the table changed), unchanged, or failed."""
        if self.status != "ok":
            return "failed"
        return "synced" if self.changed else "unchanged"


class TableSync:
    """Syncs one source table into one warehouse table."""

    def __init__(
        self,
        warehouse: Warehouse,
        source: Source,
        spec: TableSpec,
        raw_schema: str,
        full_refresh: bool,
        progress: Progress | None,
        read_ahead: ReadAhead | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.source = source
        self.spec = spec
        self.schema = raw_schema
        self.full_refresh = full_refresh
        self.progress = progress
        self.stage = STAGE_PREFIX + spec.target
        self.keys_stage = KEYS_PREFIX + spec.target
        self.staged = self.t(self.stage)
        """The relation holding what was read: the stage table, or an Arrow table."""
        self._arrow_stage: str | None = None
        self.read_ahead = read_ahead
        """This table's read, begun before the sync from the cursor the catalog mirrors."""
        self.key = f"{spec.source}.{spec.table.name}"
        self.incoming = spec.schema
        """The table's columns as this warehouse loads them (see `Dialect.load_type`)."""

    # -- helpers ------------------------------------------------------------------------
    def q(self, identifier: str) -> str:
        return self.warehouse.quote(identifier)

    def t(self, table: str) -> str:
        return self.warehouse.qualified(self.schema, table)

    def _drop_stages(self) -> None:
        if self._arrow_stage is not None:
            self.warehouse.unregister_arrow(self._arrow_stage)
            self._arrow_stage = None
            self.staged = self.t(self.stage)
        self.warehouse.drop_table(self.schema, self.stage)
        self.warehouse.drop_table(self.schema, self.keys_stage)

    def _renamed(
        self, stream: Iterator[pa.RecordBatch], names: list[str]
    ) -> Iterator[pa.RecordBatch]:
        schema = pa.schema([self.incoming.field(n) for n in names])
        where = f" in the {self.warehouse.dialect.NAME} warehouse"
        for batch in stream:
            if batch.num_rows == 0:
                continue
            if batch.schema.names != names:
                batch = batch.rename_columns(names)
            yield conform(batch, schema, ("text", "double"), where)
            if self.progress is not None:
                self.progress.advance(self.key, batch.num_rows)

    def _load_streams(self, table: str, streams: list[Iterator[pa.RecordBatch]]) -> int:
        def load(stream: Iterator[pa.RecordBatch]) -> int:
            return self.warehouse.append(self.schema, table, stream)

        if len(streams) <= 1 or not self.warehouse.SUPPORTS_PARALLEL_APPEND:
            return sum(load(s) for s in streams)
        with ThreadPoolExecutor(max_workers=len(streams), thread_name_prefix="gm-stream") as pool:
            return sum(pool.map(load, streams))

    def _stage(self, streams: list[Iterator[pa.RecordBatch]], in_memory: bool) -> int:
        """Load what was read into the stage, in memory when allowed and small enough."""
        if in_memory and len(streams) == 1 and self.warehouse.SUPPORTS_ARROW_RELATIONS:
            held, whole = hold(streams[0])
            if whole:
                table = pa.Table.from_batches(held) if held else self.incoming.empty_table()
                self._arrow_stage = ARROW_STAGE_PREFIX + self.spec.target
                self.staged = self.warehouse.register_arrow(self._arrow_stage, table)
                return int(table.num_rows)
            streams = [itertools.chain(held, streams[0])]
        self.warehouse.recreate_table(self.schema, self.stage, self.incoming)
        return self._load_streams(self.stage, streams)

    # -- the sync -------------------------------------------------------------------------
    def run(self) -> TableResult:
        """Sync the table; a column or value the warehouse cannot keep stops it, named,
        before anything of it is written."""
        try:
            self.incoming = self.warehouse.dialect.load_schema(self.spec.schema)
            return self._run()
        except TypeMappingError as exc:
            column = exc.column
            if column in self.spec.names:  # named as the source names it
                column = self.spec.columns[self.spec.names.index(column)]
            exc.column = column
            raise exc.within(self.spec.source, self.spec.table.name) from None

    def _run(self) -> TableResult:
        spec = self.spec
        config = spec.config
        result = TableResult(spec.source, spec.table.name, spec.target, config.mode)
        state = (
            None if self.full_refresh else self.warehouse.read_state(spec.source, spec.table.name)
        )
        if state is not None and (
            state.get("mode") != config.mode
            or state.get("target") != spec.target
            or not self.warehouse.table_exists(self.schema, spec.target)
        ):
            state = None
        replace = config.mode == "full" or state is None
        previous: dict[str, Any] = {} if replace or state is None else state
        incoming = self.incoming
        plan = (
            replacement_plan(schema_from_text(state["schema"]) if state else None, incoming)
            if replace
            else plan_evolution(
                f"{self.schema}.{spec.target}", schema_from_text(previous["schema"]), incoming
            )
        )
        cursor_from = decode_cursor(previous.get("cursor"))

        self._drop_stages()
        read_early = self.read_ahead and self.read_ahead.take(previous.get("cursor"))
        extract = read_early or self.source.extract(
            spec.read_request(cursor_from, previous.get("files"))
        )
        try:
            result.rows = self._stage(
                [self._renamed(s, spec.names) for s in extract.streams], in_memory=not replace
            )
            detect_deletes = config.detect_deletes and not replace
            if detect_deletes:
                self.warehouse.recreate_table(
                    self.schema,
                    self.keys_stage,
                    pa.schema([incoming.field(k) for k in spec.primary_key]),
                )
                key_columns = [spec.columns[spec.names.index(k)] for k in spec.primary_key]
                self._load_streams(
                    self.keys_stage,
                    [
                        self._renamed(
                            self.source.read_keys(spec.table, key_columns), spec.primary_key
                        )
                    ],
                )
            max_bad = config.max_bad_rows
            if len(extract.rejects) > max_bad:
                from gristmill.errors import BadRowsError

                shown = "\n".join(f"  {r.file}:{r.line}: {r.error}" for r in extract.rejects[:10])
                raise BadRowsError(
                    f"{self.key}: {len(extract.rejects)} malformed row(s), more than "
                    f"max_bad_rows = {max_bad}. Nothing was loaded for this table.\n{shown}\n"
                    "Fix the rows, or raise max_bad_rows to quarantine them into "
                    f"{self.warehouse.meta_schema}.{REJECTS_TABLE}."
                )
            new_cursor = self._max_cursor()
            fingerprint = (
                self.warehouse.fingerprint(self.schema, self.stage)
                if config.mode == "full"
                else None
            )
            with self.warehouse.transaction() as tx:
                if replace:
                    # A full reload that brought the same rows keeps the table's version,
                    # so that what is built from it is not rebuilt for nothing.
                    changed = fingerprint is None or fingerprint != (state or {}).get("fingerprint")
                    self._replace(tx)
                else:
                    self._evolve(tx, plan)
                    changed = plan.changed or self._brings_rows(
                        tx, result.rows, cursor_from, new_cursor
                    )
                    self._apply(tx, cursor_from)
                result.deleted_rows = self._delete(tx, detect_deletes)
                changed = changed or result.deleted_rows > 0 or bool(extract.rejects)
                if extract.rejects:
                    self._quarantine(tx, extract.rejects)
                cursor = new_cursor if new_cursor is not None else cursor_from
                encoded = encode_cursor(cursor) if config.cursor else None
                new_state: dict[str, Any] = {
                    "mode": config.mode,
                    "target": spec.target,
                    "cursor": encoded,
                    "schema": schema_to_text(plan.table_schema),
                    "files": extract.files if extract.files is not None else {},
                    "synced_at": datetime.now(UTC).isoformat(),
                    # What downstream assets compare to know whether to rebuild.
                    "version": (not changed and (state or {}).get("version")) or uuid.uuid4().hex,
                    "fingerprint": fingerprint,
                }
                self.warehouse.write_state(tx, spec.source, spec.table.name, new_state)
        finally:
            extract.close()
            self._drop_stages()
        result.cursor = encoded["value"] if encoded else None
        result.rejected_rows = len(extract.rejects)
        result.changed = changed
        result.schema_change = plan.describe() or None
        result.dropped_columns = plan.dropped
        if not replace and cursor_from is not None and not self.source.READS_FILES:
            # The rows before the cursor were not read again.
            result.unfilled_columns = [f.name for f in plan.added]
        self.state = new_state
        self.table_schema = plan.table_schema
        return result

    def _max_cursor(self) -> Any:
        cursor = self.spec.renamed(self.spec.config.cursor)
        if cursor is None:
            return None
        self._refuse_infinite_cursor(cursor)
        return self.warehouse.fetchall(f"SELECT max({self.q(cursor)}) FROM {self.staged}")[0][0]

    def _refuse_infinite_cursor(self, cursor: str) -> None:
        """A cursor at infinity would never be passed again: every row changed after it
        would be skipped, so the sync stops instead."""
        dtype = self.incoming.field(cursor).type
        if not (pa.types.is_timestamp(dtype) or pa.types.is_date(dtype)):
            return
        infinity = self.warehouse.dialect.cast("'infinity'", self.warehouse.column_type(dtype))
        column = self.q(cursor)
        rows = self.warehouse.fetchall(
            f"SELECT count(*) FROM {self.staged} WHERE {column} = {infinity}"
        )
        if rows[0][0]:
            raise ConfigError(
                f"Source '{self.spec.source}', table '{self.spec.table.name}': the cursor column "
                f"'{self.spec.config.cursor}' holds infinity, which no later change can pass: "
                "rows changed afterwards would never be read. Nothing was loaded for this "
                "table. Choose a cursor column of finite values, or sync the table with "
                'mode = "full".'
            )

    def _key_match(self, left: str, right: str, columns: list[str]) -> str:
        return " AND ".join(f"{left}.{self.q(c)} = {right}.{self.q(c)}" for c in columns)

    def _replace(self, tx: Transaction) -> None:
        target = self.t(self.spec.target)
        tx.execute(f"DROP TABLE IF EXISTS {target}")
        if self.spec.config.mode == "merge" and self.source.READS_FILES:
            tx.execute(f"CREATE TABLE {target} AS {self._latest_per_key()}")
        else:
            tx.execute(f"ALTER TABLE {self.t(self.stage)} RENAME TO {self.q(self.spec.target)}")

    def _latest_per_key(self) -> str:
        """The stage with one row per key, the one with the greatest cursor."""
        spec = self.spec
        columns = ", ".join(self.q(n) for n in spec.names)
        keys = ", ".join(self.q(k) for k in spec.primary_key)
        order = self.q(spec.renamed(spec.config.cursor) or spec.names[0])
        return (
            f"SELECT {columns} FROM (SELECT *, row_number() OVER (PARTITION BY {keys}"
            f" ORDER BY {order} DESC) AS _gm_rank FROM {self.staged}) AS ranked"
            " WHERE _gm_rank = 1"
        )

    def _evolve(self, tx: Transaction, plan: SchemaPlan) -> None:
        target = self.t(self.spec.target)
        for f in plan.added:
            tx.execute(
                f"ALTER TABLE {target} ADD COLUMN {self.q(f.name)} {self.warehouse.column_type(f.type)}"
            )
        for f in plan.widened:
            tx.execute(
                f"ALTER TABLE {target} ALTER COLUMN {self.q(f.name)}"
                f" TYPE {self.warehouse.column_type(f.type)}"
            )

    def _apply(self, tx: Transaction, cursor_from: Any) -> None:
        spec = self.spec
        target, stage = self.t(spec.target), self.staged
        columns = ", ".join(self.q(n) for n in spec.names)
        cursor = spec.renamed(spec.config.cursor)
        if spec.config.mode == "merge":
            tx.execute(
                f"DELETE FROM {target} AS t WHERE EXISTS (SELECT 1 FROM {stage} AS s"
                f" WHERE {self._key_match('s', 't', spec.primary_key)})"
            )
            rows = f"SELECT {columns} FROM {stage}" if spec.keys_unique else self._latest_per_key()
            tx.execute(f"INSERT INTO {target} ({columns}) {rows}")
            return
        select = f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {stage} AS s"
        if cursor is None or cursor_from is None:
            tx.execute(select)
            return
        tx.execute(f"{select} WHERE {self._new_rows_filter()}", [cursor_from])

    def _new_rows_filter(self) -> str:
        """The stage rows an append adds, given the last cursor value as $1.

        The read was inclusive of the last cursor value: rows at exactly that value that
        an earlier sync loaded are skipped, so ties are neither lost nor doubled.
        """
        spec = self.spec
        match = (
            self._key_match("s", "t", spec.primary_key)
            if spec.primary_key
            else " AND ".join(
                f"s.{self.q(n)} IS NOT DISTINCT FROM t.{self.q(n)}" for n in spec.names
            )
        )
        c = self.q(spec.renamed(spec.config.cursor) or "")
        return (
            f"s.{c} >= $1 AND NOT (s.{c} = $1 AND EXISTS (SELECT 1 FROM"
            f" {self.t(spec.target)} AS t WHERE t.{c} = $1 AND {match}))"
        )

    def _brings_rows(self, tx: Transaction, staged: int, cursor_from: Any, cursor_to: Any) -> bool:
        """Whether applying the stage changes the target (asked before `_apply`)."""
        if staged == 0:
            return False
        if cursor_from is None or cursor_to is None or cursor_to != cursor_from:
            return True
        # Every staged row sits at the last cursor value, which each sync reads again:
        # only rows the target does not already hold, exactly, are news. The target's rows
        # at that value are few, and the filter lets the engine skip the rest unread.
        cursor = self.q(self.spec.renamed(self.spec.config.cursor) or "")
        same = " AND ".join(
            f"s.{self.q(n)} IS NOT DISTINCT FROM t.{self.q(n)}" for n in self.spec.names
        )
        sql = (
            f"SELECT count(*) FROM {self.staged} AS s WHERE NOT EXISTS"
            f" (SELECT 1 FROM {self.t(self.spec.target)} AS t WHERE t.{cursor} = $1 AND {same})"
        )
        return int(tx.fetchall(sql, [cursor_from])[0][0]) > 0

    def _delete(self, tx: Transaction, detect_deletes: bool) -> int:
        spec = self.spec
        target = self.t(spec.target)
        deleted = 0
        if detect_deletes:
            before = tx.fetchall(f"SELECT count(*) FROM {target}")[0][0]
            tx.execute(
                f"DELETE FROM {target} AS t WHERE NOT EXISTS (SELECT 1 FROM"
                f" {self.t(self.keys_stage)} AS k WHERE {self._key_match('k', 't', spec.primary_key)})"
            )
            deleted += before - tx.fetchall(f"SELECT count(*) FROM {target}")[0][0]
        soft = spec.renamed(spec.config.soft_delete_column)
        if soft:
            dtype = spec.schema.field(soft).type
            condition = (
                f"{self.q(soft)} = TRUE"
                if pa.types.is_boolean(dtype)
                else f"{self.q(soft)} IS NOT NULL"
            )
            deleted += tx.fetchall(f"SELECT count(*) FROM {target} WHERE {condition}")[0][0]
            tx.execute(f"DELETE FROM {target} WHERE {condition}")
        return int(deleted)

    def _quarantine(self, tx: Transaction, rejects: list[RejectedRow]) -> None:
        table = self.warehouse.qualified(self.warehouse.meta_schema, REJECTS_TABLE)
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (source TEXT, source_table TEXT, file TEXT,"
            " line BIGINT, error TEXT, raw TEXT, rejected_at TIMESTAMP)"
        )
        now = datetime.now(UTC).replace(tzinfo=None)
        for r in rejects:
            tx.execute(
                f"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [self.spec.source, self.spec.table.name, r.file, r.line, r.error, r.raw, now],
            )
