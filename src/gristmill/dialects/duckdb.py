"""DuckDB's SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar

import pyarrow as pa

from gristmill.dialects.base import Dialect
from gristmill.types import is_numeric_text

UNCONSTRAINED_DECIMAL = pa.decimal128(38, 9)
"""How DuckDB stores a PostgreSQL NUMERIC without precision: 29 integer and 9 fractional
digits, as dlt does; a value that does not fit exactly (1e-30, NaN, 40 digits) stops
the table."""


class DuckDBDialect(Dialect):
    NAME = "DuckDB"
    SQLGLOT = "duckdb"
    TEXT_TYPE = "VARCHAR"
    DOUBLE_TYPE = "DOUBLE"
    SIMPLE_TYPES: ClassVar[dict[pa.DataType, str]] = {
        pa.bool_(): "BOOLEAN",
        pa.int8(): "TINYINT",
        pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.uint8(): "UTINYINT",
        pa.uint16(): "USMALLINT",
        pa.uint32(): "UINTEGER",
        pa.uint64(): "UBIGINT",
        pa.float16(): "FLOAT",
        pa.float32(): "FLOAT",
        pa.float64(): "DOUBLE",
        pa.string(): "VARCHAR",
        pa.large_string(): "VARCHAR",
        pa.string_view(): "VARCHAR",
        pa.binary(): "BLOB",
        pa.large_binary(): "BLOB",
        pa.date32(): "DATE",
        pa.date64(): "DATE",
        pa.null(): "VARCHAR",
    }
    FINGERPRINT_SQL = "SELECT count(*), CAST(sum(hash(t)) AS VARCHAR) FROM {relation} AS t"
    APPROX_DISTINCT_SQL = "approx_count_distinct({x})"
    EPOCH_SQL = "epoch({x})"
    SUPPORTS_IGNORE_NULLS = True
    SUPPORTS_STAR_EXCLUDE = True
    INTEGER_DIVISION_SQL = "{a} // {b}"
    SUM_INPUT_SQL = "{x}"  # integers sum as HUGEINT, floats as DOUBLE
    EPOCH_US_SQL = "epoch_us({x})"
    TIMESTAMP_FROM_US_SQL = "make_timestamp({x})"

    def load_type(self, dtype: pa.DataType) -> pa.DataType:
        if is_numeric_text(dtype):
            if dtype.type_name == "numeric":
                return UNCONSTRAINED_DECIMAL
            raise ValueError(
                f"DuckDB stores decimals of at most {self.MAX_DECIMAL_PRECISION} digits, and"
                f" the column is {dtype.type_name}"
            )
        if pa.types.is_decimal256(dtype) and dtype.precision <= self.MAX_DECIMAL_PRECISION:
            return pa.decimal128(dtype.precision, dtype.scale)  # DuckDB reads no decimal256
        if pa.types.is_timestamp(dtype) and dtype.unit == "ns" and dtype.tz is None:
            return dtype  # TIMESTAMP_NS
        return super().load_type(dtype)

    def column_type(self, dtype: pa.DataType) -> str:
        if pa.types.is_timestamp(dtype) and dtype.unit == "ns" and dtype.tz is None:
            return "TIMESTAMP_NS"
        return super().column_type(dtype)

    def integer_literal(self, value: int) -> str:
        # A literal beyond BIGINT would be read as a DOUBLE: say HUGEINT (or refuse).
        if -(2**63) <= value < 2**63:
            return str(value)
        if -(2**127) <= value < 2**127:
            return f"CAST('{value}' AS HUGEINT)"
        return self.decimal_literal(Decimal(value))

    def string_literal(self, value: str) -> str:
        # DuckDB text may hold NUL, which no quoted literal can: join the parts with chr(0).
        parts = value.split("\x00")
        return " || chr(0) || ".join("'" + p.replace("'", "''") + "'" for p in parts)

    def bytes_literal(self, value: bytes) -> str:
        return f"from_hex('{value.hex()}')"

    def timestamp_literal(self, value: datetime) -> str:
        if value.tzinfo is None:
            return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
        # The instant, whatever the session's TimeZone setting.
        return f"TIMESTAMPTZ '{value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=' ')}+00'"

    def array_literal(self, values: list[object]) -> str:
        return "[" + ", ".join(self.literal(v) for v in values) + "]"

    def struct_type(self, dtype: pa.StructType) -> str:
        fields = ", ".join(f"{self.quote(f.name)} {self.column_type(f.type)}" for f in dtype)
        return f"STRUCT({fields})"

    def quantiles_sql(self, expr: str, fractions: Sequence[float], approx: bool) -> str:
        function = "approx_quantile" if approx else "quantile_cont"
        return f"{function}({expr}, [{', '.join(str(f) for f in fractions)}])"

    def sample_sql(self, relation: str, rows: int) -> str:
        return f"SELECT * FROM {relation} USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE (7)"
