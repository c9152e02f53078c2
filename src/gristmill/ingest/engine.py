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

An incremental read begins at the last cursor value (inclusive, for rows tied at it), or
`lookback` before it; and the cursor a sync records stops where a transaction still open
may yet commit rows (`Extract.pending_from`). So each read takes again rows the warehouse
already holds: only the staged rows the target does not hold exactly are applied, and
counted, so that a sync which finds nothing new changes nothing, not even the table's
data version.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

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
from gristmill.ingest.sources.base import Extract, ReadRequest, RejectedRow, Source
from gristmill.ingest.spec import TableSpec
from gristmill.types import conform
from gristmill.warehouse.base import Transaction, Warehouse

if TYPE_CHECKING:
    from gristmill.execution.base import Executor

STAGE_PREFIX = "_gm_stage_"
KEYS_PREFIX = "_gm_keys_"
ARROW_STAGE_PREFIX = "_gm_incoming_"
REJECTS_TABLE = "rejected_rows"

logger = logging.getLogger(__name__)


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
    """Rows the sync inserted into the warehouse table or changed there (a full reload:
    every row, or none when it brought the same rows). Rows read again and found
    unchanged do not count; deleted rows count in `deleted_rows`."""
    rows_read: int = 0
    """Rows read from the source, rows read again (ties, the lookback window) included."""
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
        executor: Executor | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.executor = executor
        """Where a large read runs: split into ranges on its workers when DISTRIBUTED."""
        self._one_version = True
        """Whether the read holds at most one version of each row (`Extract.keys_unique`)."""
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
        self.extra_state: dict[str, Any] = {}
        """What a sync in another mode records with the table's state (`cdc/apply.py`)."""

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
            # Rows loaded before a soft-delete column was set may be deleted rows.
            or state.get("soft_delete_column", config.soft_delete_column)
            != config.soft_delete_column
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
        extract = read_early or self._extract(spec.read_request(cursor_from, previous.get("files")))
        self._one_version = extract.keys_unique
        try:
            result.rows_read = self._stage(
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
            cursor = self._next_cursor(cursor_from, extract.pending_from)
            fingerprint = (
                self.warehouse.fingerprint(self.schema, self.stage)
                if config.mode == "full"
                else None
            )
            with self.warehouse.transaction() as tx:
                if replace:
                    loaded = self._replace(tx, result.rows_read)
                    # A full reload that brought the same rows keeps the table's version,
                    # so that what is built from it is not rebuilt for nothing.
                    changed = fingerprint is None or fingerprint != (state or {}).get("fingerprint")
                    result.rows = loaded if changed else 0
                else:
                    self._evolve(tx, plan)
                    # A database table is read again from its last cursor value (or a
                    # lookback before it); files are read once each.
                    rereads = not self.source.READS_FILES
                    window = spec.read_from(cursor_from) if rereads else None
                    result.rows, result.deleted_rows = self._apply(tx, rereads, window)
                    changed = plan.changed or result.rows > 0
                result.deleted_rows += self._delete_missing_keys(tx, detect_deletes)
                changed = changed or result.deleted_rows > 0 or bool(extract.rejects)
                if extract.rejects:
                    self._quarantine(tx, extract.rejects)
                encoded = encode_cursor(cursor) if config.cursor else None
                new_state: dict[str, Any] = {
                    "mode": config.mode,
                    "target": spec.target,
                    "cursor": encoded,
                    "soft_delete_column": config.soft_delete_column,
                    "schema": schema_to_text(plan.table_schema),
                    "files": extract.files if extract.files is not None else {},
                    "synced_at": datetime.now(UTC).isoformat(),
                    # What downstream assets compare to know whether to rebuild.
                    "version": (not changed and (state or {}).get("version")) or uuid.uuid4().hex,
                    "fingerprint": fingerprint,
                    **self.extra_state,
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

    def _extract(self, request: ReadRequest) -> Extract:
        """The read: by the executor's workers where it splits them (`distributed.py`),
        else here."""
        if self.executor is not None and self.executor.DISTRIBUTED:
            from gristmill.ingest.distributed import read_on_workers

            extract = read_on_workers(self.executor, self.source, self.spec, request)
            if extract is not None:
                return extract
        return self.source.extract(request)

    def _next_cursor(self, cursor_from: Any, pending_from: Any) -> Any:
        """The cursor to record: the greatest value read (or, if the read found nothing
        beyond it, the last one), but no further than a transaction still open may yet
        commit rows."""
        read = self._max_cursor()
        cursor = (
            cursor_from
            if read is None or (cursor_from is not None and read < cursor_from)
            else read
        )
        if pending_from is not None and cursor is not None and pending_from < cursor:
            logger.info(
                "%s: the cursor stops at %s, where a transaction still open at the source"
                " began (the rows read beyond it are read again next time)",
                self.key,
                pending_from,
            )
            return pending_from
        return cursor

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

    def _soft_deleted(self, alias: str) -> tuple[str, str] | None:
        """(deleted, live): the conditions on the row `alias` for a soft-deleted row and for
        one that is not; None without a soft-delete column."""
        soft = self.spec.renamed(self.spec.config.soft_delete_column)
        if not soft:
            return None
        column = f"{alias}.{self.q(soft)}"
        if pa.types.is_boolean(self.spec.schema.field(soft).type):
            return f"{column} = TRUE", f"{column} IS NOT TRUE"
        return f"{column} IS NOT NULL", f"{column} IS NULL"

    def _replace(self, tx: Transaction, staged: int) -> int:
        """Make the stage the target; the rows it then holds."""
        target = self.t(self.spec.target)
        tx.execute(f"DROP TABLE IF EXISTS {target}")
        rows = staged
        # A file may hold a key twice; a read split without a shared snapshot, two versions.
        several = (self.spec.config.mode == "merge" and self.source.READS_FILES) or (
            not self._one_version and bool(self.spec.primary_key)
        )
        if several:
            tx.execute(f"CREATE TABLE {target} AS {self._latest_per_key()}")
            rows = int(tx.fetchall(f"SELECT count(*) FROM {target}")[0][0])
        else:
            tx.execute(f"ALTER TABLE {self.t(self.stage)} RENAME TO {self.q(self.spec.target)}")
        soft = self._soft_deleted("t")
        if soft is not None:
            deleted = f"FROM {target} AS t WHERE {soft[0]}"
            rows -= int(tx.fetchall(f"SELECT count(*) {deleted}")[0][0])
            tx.execute(f"DELETE {deleted}")
        return rows

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

    def _not_held(
        self, tx: Transaction, staged: str, window: Any, match: str | None
    ) -> tuple[str, list[Any]]:
        """The rows of the query `staged` that the target does not already hold: none
        that `match`es (a condition on staged row `s` and target row `t`), or, without
        `match`, as many copies as the stage has more than the target.

        A row read again lies at or after `window`, the read's lower bound, and no later
        than the greatest cursor value the target holds there; the rows past that value
        (most of a sync's, which the lookup would cost a hash of every column) are news
        as they are, without looking."""
        spec = self.spec
        target = self.t(spec.target)
        columns = ", ".join(self.q(n) for n in spec.names)
        if window is None:
            # The last read found no cursor value (only NULLs): it is all read again.
            if match is None:
                return f"{staged} EXCEPT ALL SELECT {columns} FROM {target}", []
            return (
                f"SELECT * FROM ({staged}) AS s WHERE NOT EXISTS"
                f" (SELECT 1 FROM {target} AS t WHERE {match})",
                [],
            )
        cursor = self.q(spec.renamed(spec.config.cursor) or "")
        last = tx.fetchall(f"SELECT max({cursor}) FROM {target} WHERE {cursor} >= $1", [window])
        if last[0][0] is None:
            return staged, []
        if match is None:
            again = (
                f"SELECT * FROM ({staged}) AS s WHERE s.{cursor} <= $2 EXCEPT ALL"
                f" SELECT {columns} FROM {target} WHERE {cursor} >= $1 AND {cursor} <= $2"
            )
        else:
            again = (
                f"SELECT * FROM ({staged}) AS s WHERE s.{cursor} <= $2 AND NOT EXISTS"
                f" (SELECT 1 FROM {target} AS t"
                f" WHERE t.{cursor} >= $1 AND t.{cursor} <= $2 AND {match})"
            )
        return (
            f"SELECT * FROM ({staged}) AS s WHERE s.{cursor} > $2"
            f" UNION ALL SELECT * FROM ({again}) AS a",
            [window, last[0][0]],
        )

    def _apply(self, tx: Transaction, rereads: bool, window: Any) -> tuple[int, int]:
        """Apply the stage to the target: (rows inserted or changed, rows deleted).

        When the read takes again rows already loaded (`rereads`), only the staged rows
        the target does not already hold are news: in a merge, rows not held exactly (every
        column the same); in an append, rows whose key is not held (without a key, each
        row as often as the stage has it more than the target)."""
        if self.spec.config.mode == "merge":
            return self._merge(tx, rereads, window)
        return self._append(tx, rereads, window), 0

    def _append(self, tx: Transaction, rereads: bool, window: Any) -> int:
        spec = self.spec
        columns = ", ".join(self.q(n) for n in spec.names)
        soft = self._soft_deleted("s")
        staged = self.staged if self._one_version else f"({self._latest_per_key()})"
        rows = f"SELECT {columns} FROM {staged} AS s"
        if soft is not None:
            rows += f" WHERE {soft[1]}"
        params: list[Any] = []
        if rereads:
            match = self._key_match("s", "t", spec.primary_key) if spec.primary_key else None
            rows, params = self._not_held(tx, rows, window, match)
        new = int(tx.fetchall(f"SELECT count(*) FROM ({rows}) AS n", params)[0][0])
        if new:
            tx.execute(
                f"INSERT INTO {self.t(spec.target)} ({columns}) SELECT {columns} FROM ({rows}) AS n",
                params,
            )
        return new

    def _merge(self, tx: Transaction, rereads: bool, window: Any) -> tuple[int, int]:
        spec = self.spec
        target = self.t(spec.target)
        columns = ", ".join(self.q(n) for n in spec.names)
        latest = (
            f"SELECT {columns} FROM {self.staged}"
            if spec.keys_unique and self._one_version
            else self._latest_per_key()
        )
        news = latest
        params: list[Any] = []
        if rereads:
            same = " AND ".join(
                [self._key_match("s", "t", spec.primary_key)]
                + [
                    f"s.{self.q(n)} IS NOT DISTINCT FROM t.{self.q(n)}"
                    for n in spec.names
                    if n not in spec.primary_key
                ]
            )
            news, params = self._not_held(tx, news, window, same)
        key_match = self._key_match("n", "t", spec.primary_key)
        soft = self._soft_deleted("n")
        if soft is None:
            changed = int(tx.fetchall(f"SELECT count(*) FROM ({news}) AS n", params)[0][0])
            deleted = 0
        else:
            dead, live = soft
            changed, dying = tx.fetchall(
                f"SELECT count(*) FILTER (WHERE {live}), count(*) FILTER (WHERE {dead})"
                f" FROM ({news}) AS n",
                params,
            )[0]
            # A row deleted at the source counts if the target still holds it: one read
            # again, long deleted here, is no change.
            deleted = 0
            if dying:
                deleted = tx.fetchall(
                    f"SELECT count(*) FROM {target} AS t WHERE EXISTS"
                    f" (SELECT 1 FROM ({news}) AS n WHERE {dead} AND {key_match})",
                    params,
                )[0][0]
        if changed or deleted:
            # Every staged row, the ones found unchanged too: rewriting them as they are
            # costs less than telling them apart again.
            tx.execute(
                f"DELETE FROM {target} AS t WHERE EXISTS"
                f" (SELECT 1 FROM ({latest}) AS n WHERE {key_match})"
            )
            where = f" WHERE {soft[1]}" if soft is not None else ""
            tx.execute(
                f"INSERT INTO {target} ({columns}) SELECT {columns} FROM ({latest}) AS n{where}"
            )
        return int(changed), int(deleted)

    def _delete_missing_keys(self, tx: Transaction, detect_deletes: bool) -> int:
        """Delete the target rows whose key the source no longer has (`detect_deletes`)."""
        if not detect_deletes:
            return 0
        spec = self.spec
        target = self.t(spec.target)
        before = tx.fetchall(f"SELECT count(*) FROM {target}")[0][0]
        tx.execute(
            f"DELETE FROM {target} AS t WHERE NOT EXISTS (SELECT 1 FROM"
            f" {self.t(self.keys_stage)} AS k WHERE {self._key_match('k', 't', spec.primary_key)})"
        )
        return int(before - tx.fetchall(f"SELECT count(*) FROM {target}")[0][0])

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
