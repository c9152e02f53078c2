"""PostgreSQL, read with the ADBC driver: binary COPY straight into Arrow batches.

A full read splits the table into block (ctid) ranges read by parallel connections
that share one exported snapshot, so the streams together see one consistent state
of the table, and each scans only its own blocks. NUMERIC travels as text (far cheaper
for the server to send than binary numeric) and becomes a decimal of the column's
declared precision, or stays exact text when it has none (see README, Types).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from gristmill.config import SourceConfig
from gristmill.errors import BackendError, ConfigError, TypeMappingError
from gristmill.ingest.sources.base import Extract, ReadRequest, SourceTable, SqlSource
from gristmill.memory import return_large_buffers_to_the_system
from gristmill.postgres_adbc import (
    DriverError,
    PostgresDatabase,
    infinities,
    to_type,
    wire_type,
)
from gristmill.types import cast_exact, is_numeric_text

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


class PostgresSource(SqlSource):
    KIND = "postgres"
    DIALECT = "postgres"
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

    def cursor_condition(self, cursor: str, value: Any) -> tuple[str, list[Any]]:
        # Inlined, not bound: with a parameter the server plans for any value and scans
        # the whole table; with the literal it uses the index on the cursor column.
        return f"{self.quote(cursor)} >= {_literal(value)}", []

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
        blocks = 0 if request.cursor_from is not None else self._blocks(request.table.name)
        streams = min(request.streams, max(1, blocks // MIN_BLOCKS_PER_STREAM))
        if streams == 1:
            sql, params = self.select_sql(request)
            return Extract(streams=[self.stream(sql, params, schema, SERVER_PARALLEL_PLAN)])
        # The exporting transaction must stay open until every stream has imported its
        # snapshot: the Extract closes it once the streams are done.
        exporter = self._database.connect()
        exporter.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snapshot = exporter.rows("SELECT pg_export_snapshot()")[0][0]
        setup = [
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            f"SET TRANSACTION SNAPSHOT '{snapshot}'",
        ]
        step = -(-blocks // streams)
        parts = []
        for i in range(streams):
            low = f"ctid >= '({i * step},0)'::tid"
            # The last range is open: blocks added since the size was read still count.
            high = f" AND ctid < '({(i + 1) * step},0)'::tid" if i < streams - 1 else ""
            sql, params = self.select_sql(request, [low + high])
            parts.append(self.stream(sql, params, schema, setup, own_connection=True))

        return Extract(streams=parts, on_close=exporter.close)

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


def _literal(value: Any) -> str:
    """A typed SQL literal for a cursor value (which comes from gristmill's own state)."""
    if isinstance(value, datetime):
        kind = "timestamptz" if value.tzinfo else "timestamp"
        return f"'{value.isoformat()}'::{kind}"
    if isinstance(value, date):
        return f"'{value.isoformat()}'::date"
    if isinstance(value, bool | int | Decimal | float):
        return f"{value}::numeric" if isinstance(value, Decimal) else str(value)
    return "'" + str(value).replace("'", "''") + "'"
