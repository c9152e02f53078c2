"""MySQL and MariaDB: a table of a mysql source, read on a connection of the diff's own
(UTC session, so that TIMESTAMP columns read as stored)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gristmill.checks.diff.base import DiffEndpoint
from gristmill.checks.diff.normalise import ColumnType
from gristmill.ingest.sources.mysql import GEOMETRY_TYPES

if TYPE_CHECKING:
    from gristmill.config import SourceConfig
    from gristmill.ingest.sources.mysql import MySQLSource
    from gristmill.project import Project

_INTS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}
_TEXTS = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
_BIT = re.compile(r"bit\((\d+)\)")
_BYTES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}


def column_type(
    name: str, data_type: str, column: str, scale: int | None, is_json: bool = False
) -> ColumnType:
    dtype, ctype = data_type.lower(), column.lower()
    if ctype == "bit(1)":
        return ColumnType(name, data_type, "boolean")
    if dtype in _INTS:
        # TINYINT(1) is an integer to MySQL, whatever it holds: compared as one (a
        # boolean on the other side compares as 0 or 1).
        bits = _INTS[dtype] + ("unsigned" in ctype)
        return ColumnType(name, data_type, "integer", max_abs=2 ** (bits - 1))
    if dtype == "year":
        return ColumnType(name, data_type, "integer", max_abs=10_000)
    if dtype == "decimal":
        return ColumnType(name, data_type, "decimal", scale=scale or 0)
    if dtype in ("float", "double", "real"):
        return ColumnType(name, data_type, "float", single=dtype == "float")
    if dtype == "json" or is_json:
        return ColumnType(name, data_type, "json")
    if dtype in _TEXTS:
        return ColumnType(name, data_type, "text")
    if dtype in _BYTES or dtype in GEOMETRY_TYPES or dtype == "bit":
        # Spatial values as ingest keeps them: the server's bytes.
        return ColumnType(name, column, "bytes")
    if dtype == "date":
        return ColumnType(name, data_type, "date")
    if dtype == "datetime":
        return ColumnType(name, data_type, "timestamp")
    if dtype == "timestamp":
        return ColumnType(name, data_type, "timestamptz")
    if dtype == "time":
        return ColumnType(name, data_type, "interval")
    return ColumnType(name, data_type, "other")


class MySQLEndpoint(DiffEndpoint):
    NAME = "MySQL"
    DIALECT = "mysql"

    def __init__(self, label: str, source: MySQLSource, table: str) -> None:
        super().__init__(label, source.database, table)
        # The source's own connection (UTC session): the endpoint is its only user.
        self._source = source

    @classmethod
    def for_source(
        cls, project: Project, label: str, source: str, config: SourceConfig, table: str
    ) -> DiffEndpoint:
        from gristmill.ingest.sources.mysql import MySQLSource as Source

        return cls(label, Source(source, config, project.root), table)

    def _fetch(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self._source.query(sql)
        except Exception as exc:
            raise self.rejected(sql, str(exc.args[-1])) from None

    def _describe(self) -> list[ColumnType]:
        rows = self._fetch(
            "SELECT column_name, data_type, column_type, numeric_scale"
            " FROM information_schema.columns"
            f" WHERE table_schema = {self.literal(self.schema)}"
            f" AND table_name = {self.literal(self.table)} ORDER BY ordinal_position"
        )
        json = self._source.json_columns(self.table) if rows else set()
        return [
            column_type(name, dtype, ctype, None if scale is None else int(scale), name in json)
            for name, dtype, ctype, scale in rows
        ]

    def _tables(self) -> list[str]:
        rows = self._fetch(
            "SELECT CONCAT(table_schema, '.', table_name) FROM information_schema.tables"
            f" WHERE table_schema = {self.literal(self.schema)}"
        )
        return [r[0] for r in rows]

    def close(self) -> None:
        self._source.close()

    def column_sql(self, own: ColumnType) -> str:
        name = super().column_sql(own)
        bits = _BIT.fullmatch(own.data_type.lower())
        if bits:
            # BIT(n) reads as a number: its bytes, as ingest stores them, are these.
            width = 2 * -(-int(bits.group(1)) // 8)
            return f"UNHEX(LPAD(HEX({name}), {width}, '0'))"
        return name
