"""PostgreSQL's SQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import pyarrow as pa

from gristmill.dialects.base import (
    CODE_MODULUS,
    FLOAT_ABS_BITS,
    FLOAT_INFINITY_CODE,
    FLOAT_NAN_CODE,
    INFINITE_DAYS,
    INFINITE_US,
    Dialect,
    float_rounding,
    float_subnormal_offset,
)


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
    # The branch of the column's type is taken (each casts to what it is): AT TIME ZONE
    # gives a timestamp with time zone's UTC wall time, exactly, infinities kept.
    UTC_TIMESTAMP_SQL = (
        "CASE WHEN pg_typeof({x}) = 'timestamp with time zone'::regtype"
        " THEN CAST({x} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' ELSE CAST({x} AS TIMESTAMP) END"
    )
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

    # -- normalisation for hashing (checks/diff) ---------------------------------------
    TEXT_HASHES = ("hashtext", "md5")
    HASHTEXT_SQL = "(hashtext({text})::bigint & 4294967295)"
    MD5_32_SQL = "('x' || substr({md5}, 1, 8))::bit(32)::bigint"
    CANONICAL_JSON = True

    def hash_text(self, expr: str) -> str:
        return f"({expr})::text"

    def ordered_text(self, expr: str) -> str:
        return f'({expr}) COLLATE "C"'

    def to_bigint(self, expr: str) -> str:
        return f"({expr})::bigint"

    def decimal_text(self, expr: str, own_scale: int, scale: int | None) -> str:
        if scale is None:
            return f"trim_scale({expr})::text"
        return super().decimal_text(expr, own_scale, scale)

    def decimal_code(self, expr: str, own_scale: int, scale: int, fits_bigint: bool) -> str:
        if fits_bigint:
            # bigint arithmetic costs a fraction of numeric's.
            code = f"(({expr} * {10**scale})::bigint % {CODE_MODULUS})"
        else:
            code = f"((({expr} * {10**scale}) % {CODE_MODULUS})::bigint)"
        # A numeric may be NaN (no other engine's decimal can): the modulus, no residue.
        return f"CASE WHEN ({expr})::numeric = 'NaN' THEN {CODE_MODULUS} ELSE {code} END"

    def float_code(self, expr: str, shift: int) -> str:
        # The bit pattern itself: float8send's 8 bytes, big-endian, read as a bigint.
        x = f"({expr})::float8"
        bits = f"(('x' || encode(float8send({x}), 'hex'))::bit(64)::bigint & {FLOAT_ABS_BITS})"
        magnitude = (
            f"CASE WHEN {bits} < {2**52} THEN {bits} + {float_subnormal_offset(shift)}"
            f" ELSE ({bits} + {float_rounding(shift)}) >> {shift} END"
        )
        return (
            f"CASE WHEN {x} = 0 THEN 0 WHEN {x} = 'NaN'::float8 THEN {FLOAT_NAN_CODE}"
            f" WHEN {x} = 'Infinity'::float8 THEN {FLOAT_INFINITY_CODE}"
            f" WHEN {x} = '-Infinity'::float8 THEN -{FLOAT_INFINITY_CODE}"
            f" ELSE sign({x})::bigint * (1 + {magnitude}) END"
        )

    def epoch_us(self, expr: str) -> str:
        return (
            f"CASE WHEN isfinite({expr}) THEN (extract(epoch FROM {expr}) * 1000000)::bigint"
            f" WHEN {expr} > 'epoch' THEN {INFINITE_US} ELSE -{INFINITE_US} END"
        )

    def epoch_us_code(self, expr: str) -> str:
        # date_part's float8 seconds, rounded: exact to the microsecond for centuries
        # around 1970 at a quarter of extract()'s numeric cost. A code one microsecond
        # off only sends its segment to the exact, row-by-row comparison. Infinities
        # clamp to +-INFINITE_US, as every engine's code does.
        limit = INFINITE_US // 1_000_000
        return (
            f"round(least(greatest(date_part('epoch', {expr}), -{limit}), {limit})"
            " * 1000000)::bigint"
        )

    def timestamp_text(self, expr: str) -> str:
        return (
            f"CASE WHEN isfinite({expr}) THEN (extract(epoch FROM {expr}) * 1000000)::bigint::text"
            f" ELSE {expr}::text END"
        )

    def date_code(self, expr: str) -> str:
        return (
            f"CASE WHEN isfinite({expr}) THEN {expr} - DATE '1970-01-01'"
            f" WHEN {expr} > DATE '1970-01-01' THEN {INFINITE_DAYS} ELSE -{INFINITE_DAYS} END"
        )

    def bytes_text(self, expr: str) -> str:
        return f"encode({expr}, 'hex')"

    def utf8_hex(self, expr: str) -> str:
        return f"encode(convert_to({expr}, 'UTF8'), 'hex')"

    def json_text(self, expr: str) -> str:
        return f"({expr})::jsonb::text"

    def array_json(self, expr: str) -> str:
        return f"to_jsonb({expr})"

    def array_text(self, expr: str, data_type: str, trim_decimals: bool = False) -> str:
        if data_type == "_float4":  # compared widened, as DuckDB's FLOAT lists are
            return f"({expr})::float8[]::text"
        text = f"({expr})::text"
        if trim_decimals:
            # Numbers are never quoted in array_out's text: trim them there, whatever
            # the array's dimensions (unnest would flatten them).
            text = f"regexp_replace({text}, '(\\.[0-9]*?)0+([,}}])', '\\1\\2', 'g')"
            text = f"regexp_replace({text}, '\\.([,}}])', '\\1', 'g')"
        return text
