"""DuckDB's SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar

import pyarrow as pa

from gristmill.dialects.base import CODE_MODULUS, INFINITE_US, Dialect
from gristmill.errors import BackendError
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
    # typeof is folded when the query is planned: a column without time zone is taken
    # as it is (no cost), one with goes to its UTC wall time, infinities kept.
    UTC_TIMESTAMP_SQL = (
        "CASE WHEN typeof({x}) = 'TIMESTAMP WITH TIME ZONE'"
        " THEN timezone('UTC', CAST({x} AS TIMESTAMPTZ)) ELSE CAST({x} AS TIMESTAMP) END"
    )

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

    # -- normalisation for hashing (checks/diff) ---------------------------------------
    # PostgreSQL's hashtext and jsonb rendering run as Python functions the diff's DuckDB
    # endpoint registers under these names (checks/diff/hashtext.py and canonical_json.py).
    HASHTEXT_FUNCTION: ClassVar[str] = "gm_pg_hashtext"
    JSONB_TEXT_FUNCTION: ClassVar[str] = "gm_pg_jsonb_text"
    TEXT_HASHES = ("hashtext", "md5")
    HASHTEXT_SQL = HASHTEXT_FUNCTION + "({text})"
    MD5_32_SQL = "CAST('0x' || substr({md5}, 1, 8) AS BIGINT)"
    CANONICAL_JSON = True

    def int_div(self, left: str, right: str) -> str:
        return f"({left} // {right})"

    def decimal_code(self, expr: str, own_scale: int, scale: int, fits_bigint: bool) -> str:
        carry = 10 ** (scale - own_scale) % CODE_MODULUS
        if own_scale > 18:
            # (x - trunc(x)) * 10**own_scale would overflow DECIMAL(38): the digits instead.
            units = f"CAST(replace(CAST({expr} AS VARCHAR), '.', '') AS HUGEINT)"
            return f"CAST((({units}) % {CODE_MODULUS}) * {carry} % {CODE_MODULUS} AS BIGINT)"
        whole = f"CAST(trunc({expr}) AS HUGEINT)"
        code = f"({whole} % {CODE_MODULUS}) * {10**scale % CODE_MODULUS}"
        if own_scale:
            fraction = f"CAST(({expr} - trunc({expr})) * {10**own_scale} AS HUGEINT)"
            code += f" + {fraction} * {carry}"
        return f"CAST(({code}) % {CODE_MODULUS} AS BIGINT)"

    def epoch_us(self, expr: str) -> str:
        return (
            f"CASE WHEN isinf({expr}) THEN CASE WHEN {expr} > TIMESTAMP '1970-01-01'"
            f" THEN {INFINITE_US} ELSE -{INFINITE_US} END ELSE epoch_us({expr}) END"
        )

    def epoch_us_code(self, expr: str) -> str:
        return f"least(greatest({self.epoch_us(expr)}, -{INFINITE_US}), {INFINITE_US})"

    def timestamp_text(self, expr: str) -> str:
        return (
            f"CASE WHEN isinf({expr}) THEN CAST({expr} AS VARCHAR)"
            f" ELSE CAST(epoch_us({expr}) AS VARCHAR) END"
        )

    def json_text(self, expr: str) -> str:
        return f"{self.JSONB_TEXT_FUNCTION}(CAST({expr} AS VARCHAR))"

    def json_fields(self, expr: str, keys: Sequence[str], alias: str) -> tuple[str, list[str]]:
        # One call with a list of paths parses the text once (a call per key parses it
        # again each time: 4x slower over 30 keys).
        if not keys:
            return "NULL", []
        # JSON pointers: any key (quotes, dots, the empty one) with ~ and / escaped.
        paths = ", ".join(
            self.string_literal("/" + key.replace("~", "~0").replace("/", "~1")) for key in keys
        )
        return f"json_extract_string({expr}, [{paths}])", [
            f"{alias}[{i + 1}]" for i in range(len(keys))
        ]

    def array_json(self, expr: str) -> str:
        return f"to_json({expr})"

    def array_text(self, expr: str, data_type: str, trim_decimals: bool = False) -> str:
        element = data_type.upper()
        depth = 0
        while element.endswith("[]"):
            element, depth = element[:-2], depth + 1
        if not depth:
            raise BackendError(f"DuckDB type {data_type} is no list.")
        return self._array_text(expr, element, depth, trim_decimals)

    def _array_text(self, expr: str, element: str, depth: int, trim_decimals: bool) -> str:
        item = f"e{depth}"
        inner = (
            self._array_text(item, element, depth - 1, trim_decimals)
            if depth > 1
            else _array_quoted(self._array_element_text(item, element, trim_decimals))
        )
        listed = f"list_transform({expr}, lambda {item}: CASE WHEN {item} IS NULL THEN 'NULL' ELSE {inner} END)"
        return f"('{{' || array_to_string({listed}, ',') || '}}')"

    def _array_element_text(self, expr: str, element: str, trim_decimals: bool) -> str:
        """An array element as PostgreSQL's array_out prints it, before quoting."""
        if trim_decimals and element.startswith("DECIMAL"):
            return self.trim_decimal_text(f"CAST({expr} AS VARCHAR)")
        if element == "BOOLEAN":
            return f"CASE WHEN {expr} THEN 't' ELSE 'f' END"
        if element == "DOUBLE":
            return self._pg_float_text(expr)
        if element in ("FLOAT", "REAL"):
            # Compared widened to double on both sides (PostgreSQL: real[] as float8[]):
            # DuckDB does not print every FLOAT in its shortest digits, as PostgreSQL does.
            return self._pg_float_text(f"CAST({expr} AS DOUBLE)")
        if element == "BLOB":
            return f"'\\x' || lower(hex({expr}))"
        return f"CAST({expr} AS VARCHAR)"

    @staticmethod
    def _pg_float_text(expr: str) -> str:
        """A double as PostgreSQL prints it: the shortest exact digits, as DuckDB has them,
        but exponent notation from 10**15, no '.0' on whole numbers, NaN and Infinity by
        those names."""
        text = f"CAST({expr} AS VARCHAR)"
        digits = f"ltrim({text}, '-')"
        significant = f"rtrim(replace({digits}, '.', ''), '0')"
        exponent = f"length(split_part({digits}, '.', 1)) - 1"
        mantissa = (
            f"left({significant}, 1) || CASE WHEN length({significant}) > 1"
            f" THEN '.' || substring({significant}, 2) ELSE '' END"
        )
        # Above 2**53 the shortest digits may fall exactly halfway to the next double.
        # DuckDB (as Python) takes them; PostgreSQL's Ryu rejects the tie and prints the
        # shortest digits strictly closer to the value: the first correctly rounded
        # longer form that is.
        exact = f"CAST({expr} AS HUGEINT)"
        spacing = f"CAST(nextafter(abs({expr}), 'inf'::DOUBLE) - abs({expr}) AS HUGEINT)"

        def off(candidate: str) -> str:
            """Twice the distance from the value to `candidate`'s digits."""
            return f"2 * abs(TRY_CAST({candidate} AS DECIMAL(38,0)) - {exact})"

        tie = f"abs({expr}) >= {2.0**53!r} AND abs({expr}) < 1e37 AND {off(text)} = {spacing}"
        shortest = f"length(rtrim(replace(split_part({digits}, 'e', 1), '.', ''), '0'))"
        candidates = {n: f"printf('%.{n - 1}e', {expr})" for n in range(2, 18)}
        longer = " ".join(
            f"WHEN {n} > {shortest} AND {off(candidate)} < {spacing} THEN {candidate}"
            for n, candidate in candidates.items()
        )
        return (
            f"CASE WHEN isnan({expr}) THEN 'NaN'"
            f" WHEN isinf({expr}) THEN CASE WHEN {expr} > 0 THEN 'Infinity' ELSE '-Infinity' END"
            f" WHEN {tie} THEN CASE {longer} END"
            f" WHEN contains({text}, 'e') THEN {text}"
            f" WHEN abs({expr}) >= 1e15 THEN CASE WHEN {expr} < 0 THEN '-' ELSE '' END"
            f" || {mantissa} || 'e+' || lpad(CAST({exponent} AS VARCHAR), 2, '0')"
            f" WHEN suffix({text}, '.0') THEN left({text}, length({text}) - 2)"
            f" ELSE {text} END"
        )


def _array_quoted(text: str) -> str:
    """An array element's text quoted as PostgreSQL's array_out quotes it: when empty, NULL
    (in any case), or holding a brace, comma, quote, backslash or white space."""
    return (
        f"CASE WHEN {text} = '' OR lower({text}) = 'null'"
        f" OR regexp_matches({text}, '[{{}}\",\\\\ \\t\\n\\r\\v\\f]')"
        f" THEN '\"' || replace(replace({text}, '\\', '\\\\'), '\"', '\\\"') || '\"'"
        f" ELSE {text} END"
    )
