"""PostgreSQL: a table of a postgres source or of the PostgreSQL warehouse, read on an
ADBC connection of the diff's own, with parallel workers for the checksum scans."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from gristmill.checks.diff.base import DiffEndpoint
from gristmill.checks.diff.normalise import ColumnType, Kind
from gristmill.errors import ConfigError
from gristmill.postgres_adbc import DriverError, PostgresConnection

if TYPE_CHECKING:
    from gristmill.config import SourceConfig
    from gristmill.project import Project

_KINDS: dict[str, Kind] = {
    "smallint": "integer",
    "integer": "integer",
    "bigint": "integer",
    "numeric": "decimal",
    "money": "decimal",  # compared as its numeric value (see PostgresEndpoint.column_sql)
    "real": "float",
    "double precision": "float",
    "boolean": "boolean",
    "text": "text",
    "character varying": "text",
    "character": "text",
    "name": "text",
    "bytea": "bytes",
    "date": "date",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "json",
    "ARRAY": "array",
    "interval": "interval",
}


def _url(url: str | None, owner: str) -> str:
    if not url:
        raise ConfigError(f"'{owner}' has no url in gristmill.toml.")
    return url


_ELEMENT_KINDS: dict[str, Kind] = {
    "_int2": "integer",
    "_int4": "integer",
    "_int8": "integer",
    "_numeric": "decimal",
    "_float4": "float",
    "_float8": "float",
    "_text": "text",
    "_varchar": "text",
}
"""Array types (udt_name) and the kind of their elements."""

_INTEGER_BOUNDS = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}


def column_type(
    name: str,
    data_type: str,
    udt_name: str,
    scale: int | None,
    precision: int | None,
    nullable: bool,
) -> ColumnType:
    kind = _KINDS.get(data_type, "other")
    bound = _INTEGER_BOUNDS.get(data_type)
    if kind == "decimal" and precision is not None and scale is not None:
        bound = 10 ** (int(precision) - int(scale))
    return ColumnType(
        name,
        # An array's element type is in its udt_name (_int4, _float4, ...).
        udt_name if kind == "array" else data_type,
        kind,
        element=_ELEMENT_KINDS.get(udt_name, "other") if kind == "array" else None,
        scale=None if scale is None else int(scale),
        single=data_type == "real",
        nullable=nullable,
        max_abs=bound,
        as_written=data_type != "jsonb",
    )


EXACT_COUNT_BELOW = 100_000
"""Tables the statistics say are smaller than this are counted; larger ones are estimated."""


class PostgresEndpoint(DiffEndpoint):
    NAME = "PostgreSQL"
    DIALECT = "postgres"
    SESSION: ClassVar[tuple[str, ...]] = (
        # Dates and timestamps (in arrays, in text) print as ISO, with time zone in UTC.
        "SET DateStyle = 'ISO'",
        "SET TimeZone = 'UTC'",
        "SET max_parallel_workers_per_gather = 2",
        # The planner cannot estimate the number of segments (it assumes one per row), so
        # left alone it sorts the table to group it. Segments are few: hash them, in
        # parallel workers.
        "SET enable_sort = off",
        # ... and it plans a partial (per-worker) hash aggregate only if the hash table it
        # imagines fits in memory. The real one holds a few thousand segments at most.
        "SET work_mem = '1GB'",
        "SET hash_mem_multiplier = 4",
        "SET parallel_setup_cost = 0",
        "SET parallel_tuple_cost = 0.0001",
        "SET jit = off",
    )

    def __init__(self, label: str, url: str, schema: str, table: str) -> None:
        super().__init__(label, schema, table)
        self._who = f"Diff of {label}"
        self._conn = PostgresConnection.open(url, self._who)
        for statement in self.SESSION:
            self._conn.execute(statement)
        self._conn.commit()

    @classmethod
    def for_source(
        cls, project: Project, label: str, source: str, config: SourceConfig, table: str
    ) -> DiffEndpoint:
        schema, _, name = table.rpartition(".")
        return cls(label, _url(config.url, source), schema or config.schema_name or "public", name)

    @classmethod
    def for_warehouse(cls, project: Project, label: str, schema: str, table: str) -> DiffEndpoint:
        return cls(label, _url(project.config.warehouse.url, "warehouse"), schema, table)

    def _fetch(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self._conn.rows(sql)
        except DriverError as exc:
            raise self.rejected(sql, exc.first_line) from None
        finally:
            self._conn.rollback()  # never hold a snapshot open between queries

    def _describe(self) -> list[ColumnType]:
        rows = self._fetch(
            "SELECT column_name, data_type, udt_name,"
            # money: the server's lc_monetary decides its digits after the point, and it
            # holds a bigint of those units (19 digits).
            " CASE WHEN data_type = 'money' THEN scale(0::money::numeric)"
            " ELSE numeric_scale END,"
            " CASE WHEN data_type = 'money' THEN 19 ELSE numeric_precision END,"
            " is_nullable FROM information_schema.columns"
            f" WHERE table_schema = {self.literal(self.schema)}"
            f" AND table_name = {self.literal(self.table)} ORDER BY ordinal_position"
        )
        return [
            column_type(name, data_type, udt_name, scale, precision, nullable == "YES")
            for name, data_type, udt_name, scale, precision, nullable in rows
        ]

    def _tables(self) -> list[str]:
        rows = self._fetch(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        )
        return [r[0] for r in rows]

    def column_sql(self, own: ColumnType) -> str:
        name = super().column_sql(own)
        if own.data_type == "money":
            return f"({name})::numeric"  # its value, not its text ('$12.34')
        return name

    def estimate_rows(self) -> int:
        rows = self._fetch(
            f"SELECT reltuples::bigint FROM pg_class WHERE oid = {self.literal(self.ref)}::regclass"
        )
        if rows and rows[0][0] is not None and int(rows[0][0]) >= EXACT_COUNT_BELOW:
            return int(rows[0][0])
        return super().estimate_rows()

    def close(self) -> None:
        self._conn.close()
