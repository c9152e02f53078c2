"""MySQL and MariaDB: a table of a mysql source, read on a connection of the diff's own
(UTC session, so that TIMESTAMP columns read as stored)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gristmill.checks.diff.base import FLOAT_DIGITS, REAL_DIGITS, ColumnType, DiffEndpoint, Key

if TYPE_CHECKING:
    from gristmill.config import SourceConfig
    from gristmill.ingest.sources.mysql import MySQLSource
    from gristmill.project import Project

_INTS = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"}
_TEXTS = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
_BYTES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}


def column_type(name: str, data_type: str, column: str, scale: int | None) -> ColumnType:
    dtype, ctype = data_type.lower(), column.lower()
    if ctype.startswith("tinyint(1)") or ctype == "bit(1)":
        return ColumnType(name, data_type, "boolean")
    if dtype in _INTS:
        return ColumnType(name, data_type, "integer")
    if dtype == "decimal":
        return ColumnType(name, data_type, "decimal", scale=scale or 0)
    if dtype in ("float", "double", "real"):
        return ColumnType(
            name, data_type, "float", digits=REAL_DIGITS if dtype == "float" else FLOAT_DIGITS
        )
    if dtype in _TEXTS:
        return ColumnType(name, data_type, "text")
    if dtype in _BYTES:
        return ColumnType(name, data_type, "bytes")
    if dtype == "date":
        return ColumnType(name, data_type, "date")
    if dtype == "datetime":
        return ColumnType(name, data_type, "timestamp")
    if dtype == "timestamp":
        return ColumnType(name, data_type, "timestamptz")
    return ColumnType(name, data_type, "other")


class MySQLEndpoint(DiffEndpoint):
    NAME = "MySQL"
    QUOTE = "`"
    TEXT_TYPE = "CHAR"
    MD5_32 = "CAST(CONV(SUBSTR({md5}, 1, 8), 16, 10) AS UNSIGNED)"

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
        return [
            column_type(name, dtype, ctype, None if scale is None else int(scale))
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

    def literal(self, value: Key) -> str:
        if isinstance(value, str):
            return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
        return super().literal(value)

    def ordered_text(self, expr: str) -> str:
        return f"CAST({expr} AS BINARY)"

    def boolean_text(self, column: str) -> str:
        return f"CAST(({column} <> 0) AS CHAR)"

    def decimal_text(self, column: str, own: ColumnType, scale: int) -> str:
        if own.kind == "integer" or own.scale == scale:
            return self.text(column)
        return self.text(f"CAST({column} AS DECIMAL(65,{scale}))")

    def float_text(self, column: str, digits: int) -> str:
        # No printf: mantissa and exponent by hand, as the other backends print them.
        x = f"CAST({column} AS DOUBLE)"
        exponent = f"FLOOR(LOG10(ABS({x})))"
        mantissa = f"ROUND({x} / POW(10, {exponent}), {digits - 1})"
        return (
            f"CASE WHEN {x} = 0 THEN CONCAT(' ', FORMAT(0, {digits - 1}, 'C'), 'e+00')"
            f" ELSE CONCAT(IF({x} < 0, '', ' '), REPLACE(FORMAT({mantissa}, {digits - 1}, 'C'), ',', ''),"
            f" 'e', IF({exponent} < 0, '-', '+'), LPAD(ABS({exponent}), 2, '0')) END"
        )

    def days_since_epoch(self, column: str) -> str:
        return f"DATEDIFF({column}, '1970-01-01')"

    def epoch_us(self, column: str, own: ColumnType) -> str:
        return f"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {column})"

    def bytes_text(self, column: str) -> str:
        return f"LOWER(HEX({column}))"

    def to_bigint(self, expr: str) -> str:
        return f"CAST({expr} AS SIGNED)"

    def int_div(self, left: str, right: str) -> str:
        return f"({left} DIV {right})"
