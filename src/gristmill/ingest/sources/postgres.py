"""PostgreSQL, read with the ADBC driver: binary COPY straight into Arrow batches.

A full read splits the table into block (ctid) ranges read by parallel connections
that share one exported snapshot, so the streams together see one consistent state
of the table, and each scans only its own blocks. NUMERIC travels as text (far cheaper
for the server to send than binary numeric) and becomes a decimal of the column's
declared precision, or stays exact text when it has none (see README, Types).

A read by a date or timestamp cursor first asks which transactions are open: a row a
transaction writes with `now()` (a default, a trigger) carries the transaction's start
time, and commits later, below cursor values the read is about to see. The sync's cursor
then stops at the oldest open transaction's start (`Extract.pending_from`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from gristmill.config import SourceConfig
from gristmill.errors import BackendError, ConfigError, TypeMappingError
from gristmill.ingest.sources.base import Extract, ReadRequest, Snapshot, SourceTable, SqlSource
from gristmill.memory import return_large_buffers_to_the_system
from gristmill.postgres_adbc import (
    DriverError,
    PostgresDatabase,
    infinities,
    to_type,
    wire_type,
)
from gristmill.types import cast_exact, is_numeric_text

if TYPE_CHECKING:
    from gristmill.ingest.cdc.base import ChangeLog

MIN_BLOCKS_PER_STREAM = 1_000
SERVER_PARALLEL_PLAN = (
    "SET LOCAL parallel_setup_cost = 0",
    "SET LOCAL parallel_tuple_cost = 0",
    "SET LOCAL jit = off",
)
"""For a read on one connection: the changed rows of an incremental read lie scattered
over the table's pages, and a parallel index scan fetches them in about three quarters of
the time (100,000 rows of 10 million: 0.27 s instead of 0.35 s). JIT compilation alone
would cost a tenth of such a read."""
_MULTIDIMENSIONAL = re.compile(r'"(\d+)-dimensional array in column (.*)"')
"""The error the read raises on purpose for an array of more than one dimension, which
the driver would flatten (see `column_sql`)."""

OPEN_TRANSACTIONS_SQL = (
    # As microseconds since 1970: a time zone-aware value would cost its conversion to
    # Python an import of pandas (a quarter of a second).
    "SELECT (extract(epoch FROM since) * 1000000)::bigint,"
    " (extract(epoch FROM since::timestamp) * 1000000)::bigint, hidden,"
    " pg_is_in_recovery() FROM (SELECT"
    " least(min(xact_start), clock_timestamp()) AS since,"
    " count(*) FILTER (WHERE query = '<insufficient privilege>') AS hidden"
    " FROM pg_stat_activity"
    " WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND pid <> pg_backend_pid()"
    " AND backend_type IS DISTINCT FROM 'autovacuum worker'"
    " AND backend_type IS DISTINCT FROM 'walsender') AS open"
)
"""When the oldest transaction still open in this database began (or now, if none is), as
an instant and in this session's time zone; how many sessions of other roles this role
may not inspect (their start is hidden unless it holds pg_read_all_stats); and whether
this is a standby, which cannot see the primary's transactions. Vacuum and replication
senders write no table rows."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

logger = logging.getLogger(__name__)


class PostgresSource(SqlSource):
    KIND = "postgres"
    DIALECT = "postgres"
    INLINES_CURSOR = True
    READS_ON_WORKERS = True
    SHARES_SNAPSHOTS = True
    CAPTURES_CHANGES = True
    SUPPORTS_PARALLEL_STREAMS = True
    PLACEHOLDER = "$1"

    def __init__(self, name: str, config: SourceConfig, root: Path) -> None:
        super().__init__(name, config, root)
        if not config.url:
            raise ConfigError(f"Source '{name}' (postgres) needs url = \"${{APP_DB_URL}}\".")
        self.url = config.url
        self.db_schema = config.schema_name or "public"
        return_large_buffers_to_the_system()
        # Enums and composites then arrive opaque, which describe() turns into text.
        self._database = PostgresDatabase(self.url, f"Source '{name}'", builtin_types=True)
        self._conn = self._database.connect()
        self._warned = False

    def _error(self, exc: DriverError) -> BackendError | TypeMappingError:
        if found := _MULTIDIMENSIONAL.search(exc.first_line):
            return TypeMappingError(
                found.group(2),
                f"it holds a {found.group(1)}-dimensional array, which arrives only as JSON "
                "or text (a list column has one dimension)",
                ("json", "text"),
            )
        return BackendError(f"Source '{self.name}': {exc.first_line}")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.rows(sql, params)
        except DriverError as exc:
            raise self._error(exc) from None
        finally:
            self._conn.rollback()  # end the transaction: never hold a snapshot open

    def table_ref(self, table: str) -> str:
        if "." in table:
            return super().table_ref(table)
        return f"{self.quote(self.db_schema)}.{self.quote(table)}"

    def list_tables(self) -> list[str]:
        """The schema's tables, each row in one of them only: a partitioned table, and not
        its partitions, which are its storage (a partition whose partitioned ancestors all
        live in other schemas is listed: no other table of this schema holds its rows).
        Views, materialized views and foreign tables are synced only when named."""
        rows = self._query(
            "SELECT c.relname::text FROM pg_class AS c"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT EXISTS (SELECT 1"
            " FROM pg_partition_ancestors(c.oid) AS a(relid) JOIN pg_class AS p"
            " ON p.oid = a.relid WHERE a.relid <> c.oid AND p.relnamespace = c.relnamespace)"
            " ORDER BY 1",
            [self.db_schema],
        )
        return [r[0] for r in rows]

    def describe(self, table: str) -> SourceTable:
        found = self._query(
            "SELECT oid IS NOT NULL,"
            " ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = oid AND attnotnull"
            " AND attnum > 0 AND NOT attisdropped),"
            " ARRAY(SELECT a.attname::text FROM pg_index i JOIN LATERAL unnest(i.indkey)"
            " WITH ORDINALITY AS k(attnum, n) ON true JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " WHERE i.indrelid = oid AND i.indisprimary ORDER BY k.n)"
            " FROM (SELECT to_regclass($1)::oid AS oid) AS relation",
            [self.table_ref(table)],
        )
        exists, not_null, key = found[0]
        if not exists:
            raise self.missing_table(table)
        try:
            wire = self._conn.arrow(f"SELECT * FROM {self.table_ref(table)} LIMIT 0").schema
        except DriverError as exc:
            raise self._error(exc) from None
        finally:
            self._conn.rollback()
        kinds = {(f.metadata or {}).get(b"POSTGRESQL:type") for f in wire}
        money_scale = self._money_scale() if kinds & {b"money", b"_money"} else 2
        fields = [
            pa.field(f.name, wire_type(f, money_scale), nullable=f.name not in not_null)
            for f in wire
        ]
        return SourceTable(table, pa.schema(fields), tuple(key))

    def _money_scale(self) -> int:
        """The fractional digits of money, which the server's lc_monetary decides."""
        return int(self._query("SELECT scale(0::money::numeric)")[0][0])

    def column_sql(self, name: str, dtype: pa.DataType) -> str:
        column = self.quote(name)
        if pa.types.is_decimal(dtype) or is_numeric_text(dtype):
            # Text is the cheapest wire form of a numeric (and money's only exact one).
            return f"{column}::numeric::text AS {column}"
        if pa.types.is_string(dtype):
            return f"{column}::text AS {column}"
        if pa.types.is_list(dtype):
            return f"{self._one_dimension(name, self._list_sql(column, dtype))} AS {column}"
        return column

    @staticmethod
    def _list_sql(column: str, dtype: pa.ListType) -> str:
        value = dtype.value_type
        if pa.types.is_decimal(value) or is_numeric_text(value):
            return f"{column}::numeric[]::text[]"
        if pa.types.is_string(value):
            return f"{column}::text[]"
        return column

    def _one_dimension(self, name: str, expression: str) -> str:
        """`expression`, or an error for an array of several dimensions: the driver would
        flatten it. The error's text depends on the row, so the server cannot raise it
        while planning; the inner CASE keeps the outer one's order of evaluation."""
        column = self.quote(name)
        label = self.dialect.string_literal(f"-dimensional array in column {name}")
        return (
            f"CASE WHEN array_ndims({column}) > 1 THEN CASE WHEN"
            f" (array_ndims({column}) || {label})::int = 0 THEN {expression} END"
            f" ELSE {expression} END"
        )

    def override_sql(self, name: str, dtype: pa.DataType) -> str:
        if isinstance(dtype, pa.JsonType):
            return f"to_jsonb({self.quote(name)}) AS {self.quote(name)}"
        return super().override_sql(name, dtype)

    def pending_from(self, cursor_type: pa.DataType) -> Any:
        """The least value of a cursor of `cursor_type` that a transaction open now may
        still commit: the start of the oldest one, in the cursor's own terms. None for a
        cursor that no clock sets (a sequence hands out values at insert, from per-session
        caches: only a lookback covers those)."""
        temporal = pa.types.is_timestamp(cursor_type) or pa.types.is_date(cursor_type)
        if not temporal:
            return None
        since, local_since, hidden, standby = self._query(OPEN_TRANSACTIONS_SQL)[0]
        if standby:
            self._warn_once(
                "it is a standby, which cannot see the transactions open on the primary."
                " Set lookback on its incremental tables to cover the longest of them."
            )
            return None
        if hidden:
            self._warn_once(
                f"{hidden} session(s) of other roles in this database cannot be inspected,"
                " so a transaction they hold open is not waited for. Grant the role"
                " pg_read_all_stats, or set lookback on the tables it syncs."
            )
        if pa.types.is_timestamp(cursor_type) and cursor_type.tz is not None:
            return EPOCH + timedelta(microseconds=since)
        # Without a time zone, `now()` is written in the writing session's zone: taken to
        # be the server's, which this session has too.
        local = EPOCH.replace(tzinfo=None) + timedelta(microseconds=local_since)
        return local if pa.types.is_timestamp(cursor_type) else local.date()

    def _warn_once(self, why: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("Source '%s': %s", self.name, why)

    def stream(
        self,
        sql: str,
        params: Sequence[Any],
        schema: pa.Schema,
        setup: Sequence[str] = (),
        own_connection: bool = False,
    ) -> Iterator[pa.RecordBatch]:
        # A parallel stream needs a connection of its own; a lone stream (an incremental
        # read, a small table) reuses the source's connection and saves a handshake.
        conn = self._database.connect() if own_connection else self._conn
        try:
            for statement in setup:
                conn.execute(statement)
            for batch in conn.batches(sql, params):
                yield pa.record_batch(
                    [_convert(c, f) for c, f in zip(batch.columns, schema, strict=True)],
                    schema=schema,
                )
        except DriverError as exc:
            raise self._error(exc) from None
        finally:
            if own_connection:
                conn.close()
            else:
                conn.rollback()

    def extract(self, request: ReadRequest) -> Extract:
        schema = pa.schema([request.table.schema.field(c) for c in request.columns])
        # Asked before the read's snapshot is taken: a transaction the read cannot see
        # was open then, or began later.
        pending = (
            self.pending_from(request.table.schema.field(request.cursor).type)
            if request.cursor
            else None
        )
        blocks = 0 if request.cursor_from is not None else self._blocks(request.table.name)
        streams = min(request.streams, max(1, blocks // MIN_BLOCKS_PER_STREAM))
        given = request.snapshot
        if streams == 1:
            sql, params = self.select_sql(request)
            setup = (*given.setup, *SERVER_PARALLEL_PLAN) if given else SERVER_PARALLEL_PLAN
            # Its own connection in a given snapshot: the source's may hold a transaction.
            stream = self.stream(sql, params, schema, setup, own_connection=given is not None)
            return Extract(streams=[stream], pending_from=pending)
        # The exporting transaction must stay open until every stream has imported its
        # snapshot: the Extract closes it once the streams are done.
        snapshot = given or self.export_snapshot()
        step = -(-blocks // streams)
        parts = []
        for i in range(streams):
            low = f"ctid >= '({i * step},0)'::tid"
            # The last range is open: blocks added since the size was read still count.
            high = f" AND ctid < '({(i + 1) * step},0)'::tid" if i < streams - 1 else ""
            sql, params = self.select_sql(request, [low + high])
            parts.append(self.stream(sql, params, schema, snapshot.setup, own_connection=True))

        return Extract(
            streams=parts, pending_from=pending, on_close=None if given else snapshot.close
        )

    def change_log(self, table: SourceTable, project: str) -> ChangeLog:
        """The table's changes, from logical replication (`ingest/cdc/postgres.py`)."""
        from gristmill.ingest.cdc.postgres import PostgresChangeLog

        return PostgresChangeLog(self, table, project)

    def typed_rows(
        self, table: SourceTable, columns: Sequence[str], rows: str
    ) -> Iterator[pa.RecordBatch]:
        """`rows` (a JSON array of objects of column -> text, as the change log gives
        values) in the types a read of the table has: the server parses each text with
        the column's own input function, and the read's conversions follow, so a change
        holds exactly what a sync of the row would."""
        select = self.select_list(table, columns)
        ref = self.table_ref(table.name)
        # A json or jsonb column takes a JSON value as it is: its text, a JSON string, is
        # parsed again here, so that SQL NULL and JSON null stay apart.
        json_kinds = dict(
            self._query(
                "SELECT attname::text, format_type(atttypid, NULL) FROM pg_attribute"
                " WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
                " AND atttypid IN ('json'::regtype, 'jsonb'::regtype)",
                [ref],
            )
        )
        rows_sql = f"json_populate_recordset(NULL::{ref}, $1::json) WITH ORDINALITY AS p"
        if json_kinds.keys() & set(columns):
            values = ", ".join(
                f"(p.{self.quote(c)} #>> '{{}}')::{json_kinds[c]} AS {self.quote(c)}"
                if c in json_kinds
                else f"p.{self.quote(c)}"
                for c in columns
            )
            rows_sql = f"(SELECT {values}, p.ordinality FROM {rows_sql}) AS p"
        sql = f"SELECT {select} FROM {rows_sql} ORDER BY p.ordinality"
        schema = pa.schema([table.schema.field(c) for c in columns])
        return self.stream(sql, [rows], schema)

    def export_snapshot(self) -> Snapshot:
        exporter = self._database.connect()
        try:
            exporter.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            exported = exporter.rows("SELECT pg_export_snapshot()")[0][0]
        except DriverError as exc:
            exporter.close()
            raise self._error(exc) from None
        setup = (
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            f"SET TRANSACTION SNAPSHOT '{exported}'",
        )
        return Snapshot(setup, exporter.close)

    def _blocks(self, table: str) -> int:
        rows = self._query(
            "SELECT pg_relation_size($1::regclass) / current_setting('block_size')::int",
            [self.table_ref(table)],
        )
        return int(rows[0][0])

    def close(self) -> None:
        self._conn.close()
        self._database.close()


def _convert(column: pa.Array, f: pa.Field) -> pa.Array:
    """A column as the driver delivered it, in the type the table describes."""
    if pa.types.is_temporal(column.type) or pa.types.is_list(column.type):
        column = infinities(column, f.name)
    if isinstance(column.type, pa.BaseExtensionType) and not isinstance(
        f.type, pa.BaseExtensionType
    ):
        column = to_type(column, column.type.storage_type)
    if f.type == pa.uint32():
        column = to_type(column, f.type)  # an oid: the driver's int32, read unsigned
    return cast_exact(column, f.type, f.name)
