"""PostgreSQL's SQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import pyarrow as pa

from gristmill.dialects.base import Dialect


class PostgresDialect(Dialect):
    NAME = "PostgreSQL"
    SQLGLOT = "postgres"
    JSON_TYPE = "JSONB"
    DECIMAL_TYPE = "NUMERIC"
    MAX_DECIMAL_PRECISION = 1000
    DROP_CASCADE = " CASCADE"
    SIMPLE_TYPES: ClassVar[dict[pa.DataType, str]] = {
        pa.bool_(): "BOOLEAN",
        pa.int8(): "SMALLINT",
        pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.uint8(): "SMALLINT",
        pa.uint16(): "INTEGER",
        pa.uint32(): "BIGINT",
        pa.uint64(): "NUMERIC(20,0)",
        pa.float16(): "REAL",
        pa.float32(): "REAL",
        pa.float64(): "DOUBLE PRECISION",
        pa.string(): "TEXT",
        pa.large_string(): "TEXT",
        pa.string_view(): "TEXT",
        pa.binary(): "BYTEA",
        pa.large_binary(): "BYTEA",
        pa.date32(): "DATE",
        pa.date64(): "DATE",
        pa.null(): "TEXT",
    }
    EPOCH_SQL = "extract(epoch from {x})::float8"
    EPOCH_US_SQL = "CAST(extract(epoch FROM {x}) * 1000000 AS BIGINT)"
    TIMESTAMP_FROM_US_SQL = "(TIMESTAMP 'epoch' + {x} * INTERVAL '1 microsecond')"
    FINGERPRINT_SQL = (
        "SELECT count(*), CAST(sum(hashtext(t::text)::bigint) AS TEXT) FROM {relation} AS t"
    )

    def array_literal(self, values: list[Any]) -> str:
        # ARRAY[] has no element type; the untyped '{}' takes the one its context needs.
        return super().array_literal(values) if values else "'{}'"

    def bytewise(self, expr: str) -> str:
        # "C" compares UTF-8 bytes: code point order, as DuckDB does.
        return f'{expr} COLLATE "C"'

    def numeric_text_type(self, dtype: pa.OpaqueType) -> str:
        # NUMERIC holds every value of every NUMERIC exactly (NaN and ±Infinity too).
        return str(dtype.type_name).upper()

    def decimal_literal(self, value: Decimal) -> str:
        if value.is_nan():
            return "'NaN'::NUMERIC"
        if value.is_infinite():
            return f"'{'-' if value < 0 else ''}Infinity'::NUMERIC"
        # NUMERIC without a typmod holds any finite value exactly.
        return f"'{value:f}'::NUMERIC"
