"""The Dialect interface: how one engine spells identifiers, literals, column types and
the few functions every stage needs.

Every stage (ingest, diff, transforms, checks, profile, features, train) asks the
dialect of the engine it talks to; none quotes, escapes or casts by itself. A dialect
holds no connection: it is a pure description of the engine's SQL, so golden tests can
pin exactly what each engine is sent (tests/dialects/).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

import pyarrow as pa

from gristmill.errors import BackendError, TypeMappingError
from gristmill.types import is_numeric_text


class Dialect:
    """One engine's SQL. Subclasses set the class constants and override what differs."""

    NAME: ClassVar[str]
    """The engine, for messages ('PostgreSQL')."""
    SQLGLOT: ClassVar[str]
    """sqlglot's name of the dialect."""
    QUOTE: ClassVar[str] = '"'

    # -- column types ------------------------------------------------------------------
    SIMPLE_TYPES: ClassVar[Mapping[pa.DataType, str]] = {}
    """Column types of the Arrow types that take no parameters."""
    TEXT_TYPE: ClassVar[str] = "TEXT"
    JSON_TYPE: ClassVar[str] = "JSON"
    UUID_TYPE: ClassVar[str] = "UUID"
    DECIMAL_TYPE: ClassVar[str] = "DECIMAL"
    DOUBLE_TYPE: ClassVar[str] = "DOUBLE PRECISION"
    MAX_DECIMAL_PRECISION: ClassVar[int] = 38
    """The widest DECIMAL(p,s) the engine stores exactly."""
    TYPED_TEXT_LITERALS: ClassVar[bool] = True
    """Whether a UUID or JSON literal is cast to its type (else it stays text: MariaDB's
    JSON is LONGTEXT, and SQLite has neither type)."""
    SUPPORTS_INTERVALS: ClassVar[bool] = True
    SUPPORTS_ARRAYS: ClassVar[bool] = True
    DROP_CASCADE: ClassVar[str] = ""
    """Appended to DROP statements: PostgreSQL refuses to drop what a view depends on."""

    # -- what point-in-time training sets need (features.pit) ------------------------
    SUPPORTS_IGNORE_NULLS: ClassVar[bool] = False
    """`last_value(x IGNORE NULLS)` over a window frame (else the latest event is found
    by grouping rows after it)."""
    SUPPORTS_STAR_EXCLUDE: ClassVar[bool] = False
    """`SELECT t.* EXCLUDE (c)` (else the spine travels as one row-valued column)."""
    INTEGER_DIVISION_SQL: ClassVar[str] = "div({a}, {b})"
    SUM_INPUT_SQL: ClassVar[str] = "CAST({x} AS NUMERIC)"
    """A summed feature's value as it enters the running totals: windows are differences
    of totals, so these must not lose digits (PostgreSQL sums a REAL as a REAL)."""
    UTC_TIMESTAMP_SQL: ClassVar[str] = "{x}"
    """The date or timestamp `{x}`, with or without time zone, as a timestamp without time
    zone in UTC (one without is read as UTC). Training sets compare event and spine times
    only in this form: an engine compares a timestamp with time zone to one without in
    its session's time zone, which follows the machine's (DuckDB reads TZ). The engine
    picks the branch of the column's type when it plans the query, so a column without
    time zone costs nothing."""

    # -- what the online path needs (features.api) -----------------------------------
    EPOCH_US_SQL: ClassVar[str] = ""
    """Microseconds since 1970 of the timestamp `{x}`, as a BIGINT."""
    TIMESTAMP_FROM_US_SQL: ClassVar[str] = ""
    """The timestamp (without time zone) `{x}` microseconds after 1970."""

    # -- what profiling needs ---------------------------------------------------------
    APPROX_DISTINCT_SQL: ClassVar[str | None] = None
    """An approximate count of distinct `{x}` (HyperLogLog), where the engine has one."""
    EPOCH_SQL: ClassVar[str] = ""
    """Seconds since 1970 of the date or timestamp `{x}`, as a double."""
    FINGERPRINT_SQL: ClassVar[str] = ""
    """Row count and an order-independent sum of row hashes of {relation}, as text."""

    # -- identifiers -----------------------------------------------------------------
    def quote(self, identifier: str) -> str:
        q = self.QUOTE
        return q + identifier.replace(q, q + q) + q

    def qualified(self, *parts: str) -> str:
        """`schema.table` (or any dotted name) with every part quoted."""
        return ".".join(self.quote(p) for p in parts)

    # -- literals ----------------------------------------------------------------------
    def literal(self, value: Any) -> str:
        """`value` as a SQL literal that the engine reads back with its type and value, or
        a BackendError when the engine cannot hold it (never an approximation)."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return self.integer_literal(value)
        if isinstance(value, float):
            return self.float_literal(value)
        if isinstance(value, Decimal):
            return self.decimal_literal(value)
        if isinstance(value, str):
            return self.string_literal(value)
        if isinstance(value, bytes | bytearray | memoryview):
            return self.bytes_literal(bytes(value))
        if isinstance(value, datetime):
            return self.timestamp_literal(value)
        if isinstance(value, date):
            return self.date_literal(value)
        if isinstance(value, time):
            return self.time_literal(value)
        if isinstance(value, timedelta):
            return self.interval_literal(value)
        if isinstance(value, UUID):
            return self.uuid_literal(value)
        if isinstance(value, list | tuple):
            return self.array_literal(list(value))
        if isinstance(value, dict):
            return self.json_literal(json.dumps(value))
        return self.unsupported(value)

    def unsupported(self, value: Any) -> str:
        raise BackendError(f"No {self.NAME} literal for a value of type {type(value).__name__}.")

    def integer_literal(self, value: int) -> str:
        return str(value)

    def float_literal(self, value: float) -> str:
        # Quoted: a bare 0.1 is a DECIMAL to DuckDB and PostgreSQL, and -0.0 loses its sign.
        if math.isfinite(value):
            text = repr(value)
        else:
            text = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
        return self.cast(self.string_literal(text), self.DOUBLE_TYPE)

    def decimal_literal(self, value: Decimal) -> str:
        if not value.is_finite():
            raise BackendError(f"{self.NAME} has no decimal value {value}.")
        precision, scale = decimal_shape(value)
        if precision > self.MAX_DECIMAL_PRECISION:
            raise BackendError(
                f"{self.NAME} cannot hold the decimal {value} exactly "
                f"({precision} digits; at most {self.MAX_DECIMAL_PRECISION})."
            )
        return self.cast(f"'{value:f}'", f"{self.DECIMAL_TYPE}({precision},{scale})")

    def string_literal(self, value: str) -> str:
        if "\x00" in value:
            raise BackendError(f"{self.NAME} text cannot hold the NUL character (in {value!r}).")
        return "'" + value.replace("'", "''") + "'"

    def bytes_literal(self, value: bytes) -> str:
        return f"'\\x{value.hex()}'::BYTEA"

    def timestamp_literal(self, value: datetime) -> str:
        if value.tzinfo is None:
            return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
        return f"TIMESTAMPTZ '{value.astimezone(UTC).isoformat(sep=' ')}'"

    def date_literal(self, value: date) -> str:
        return f"DATE '{value.isoformat()}'"

    def time_literal(self, value: time) -> str:
        return f"TIME '{value.isoformat()}'"

    def uuid_literal(self, value: UUID) -> str:
        text = self.string_literal(str(value))
        return self.cast(text, self.UUID_TYPE) if self.TYPED_TEXT_LITERALS else text

    def json_literal(self, text: str) -> str:
        literal = self.string_literal(text)
        return self.cast(literal, self.JSON_TYPE) if self.TYPED_TEXT_LITERALS else literal

    def interval_literal(self, value: timedelta) -> str:
        if not self.SUPPORTS_INTERVALS:
            return self.unsupported(value)
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        return f"INTERVAL '{micros} microseconds'"

    def array_literal(self, values: list[Any]) -> str:
        if not self.SUPPORTS_ARRAYS:
            return self.unsupported(values)
        return "ARRAY[" + ", ".join(self.literal(v) for v in values) + "]"

    def cast(self, expr: str, type_sql: str) -> str:
        return f"CAST({expr} AS {type_sql})"

    # -- column types --------------------------------------------------------------------
    def load_type(self, dtype: pa.DataType) -> pa.DataType:
        """The Arrow type in which values of `dtype` are loaded into this engine: `dtype`
        itself where the engine stores every value exactly, else a narrower type into
        which each value is converted exactly or not at all; a `ValueError` saying why
        where the engine has no such type (its message names the choices)."""
        if pa.types.is_decimal(dtype) and dtype.precision > self.MAX_DECIMAL_PRECISION:
            raise ValueError(
                f"{self.NAME} stores decimals of at most {self.MAX_DECIMAL_PRECISION} digits"
                f", and the column is decimal({dtype.precision},{dtype.scale})"
            )
        if pa.types.is_list(dtype):
            return pa.list_(self.load_type(dtype.value_type))
        if pa.types.is_timestamp(dtype) and dtype.unit == "ns":
            return pa.timestamp("us", dtype.tz)  # a nanosecond is refused, never cut
        if pa.types.is_time64(dtype) and dtype.unit == "ns":
            return pa.time64("us")
        return dtype

    def load_schema(self, schema: pa.Schema) -> pa.Schema:
        """`schema` with each column's `load_type`; a TypeMappingError naming the first
        column the engine cannot store."""
        fields = []
        for f in schema:
            try:
                fields.append(f.with_type(self.load_type(f.type)))
            except ValueError as exc:
                scale = min(getattr(f.type, "scale", 9), self.MAX_DECIMAL_PRECISION)
                narrower = f"decimal({self.MAX_DECIMAL_PRECISION},{scale})"
                raise TypeMappingError(f.name, str(exc), ("text", "double", narrower)) from None
        return pa.schema(fields)

    def column_type(self, dtype: pa.DataType) -> str:
        """The column type that stores Arrow `dtype` without loss."""
        if is_numeric_text(dtype):
            return self.numeric_text_type(dtype)
        if isinstance(dtype, pa.BaseExtensionType):
            if dtype.extension_name == "arrow.json":
                return self.JSON_TYPE
            if dtype.extension_name == "arrow.uuid":
                return self.UUID_TYPE
            return self.column_type(dtype.storage_type)
        simple = self.SIMPLE_TYPES.get(dtype)
        if simple:
            return simple
        if pa.types.is_decimal(dtype):
            if dtype.precision > self.MAX_DECIMAL_PRECISION:
                raise BackendError(
                    f"{self.NAME} has no column type for decimal({dtype.precision},"
                    f"{dtype.scale}): at most {self.MAX_DECIMAL_PRECISION} digits."
                )
            return f"{self.DECIMAL_TYPE}({dtype.precision},{dtype.scale})"
        if pa.types.is_timestamp(dtype):
            return "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
        if pa.types.is_time(dtype):
            return "TIME"
        if pa.types.is_duration(dtype) or pa.types.is_interval(dtype):
            return "INTERVAL"
        if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
            return self.list_type(dtype.value_type)
        if pa.types.is_struct(dtype):
            return self.struct_type(dtype)
        if pa.types.is_dictionary(dtype):
            return self.column_type(dtype.value_type)
        raise BackendError(f"No {self.NAME} column type for the Arrow type {dtype}.")

    def numeric_text_type(self, dtype: pa.OpaqueType) -> str:
        """The column type of a PostgreSQL NUMERIC carried as text (`numeric`, or wider than
        any Arrow decimal: `numeric(100,50)`)."""
        return self.column_type(self.load_type(dtype))

    def list_type(self, value_type: pa.DataType) -> str:
        return f"{self.column_type(value_type)}[]"

    def struct_type(self, dtype: pa.StructType) -> str:
        return self.JSON_TYPE

    # -- functions -----------------------------------------------------------------------
    def quantiles_sql(self, expr: str, fractions: Sequence[float], approx: bool) -> str:
        """An aggregate giving the list of the `fractions` quantiles of `expr`."""
        listed = ", ".join(str(f) for f in fractions)
        return f"percentile_cont(ARRAY[{listed}]) WITHIN GROUP (ORDER BY {expr})"

    def bytewise(self, expr: str) -> str:
        """The text `expr` compared by its bytes (by code point), as DuckDB and SQLite
        compare text: min, max and ORDER BY then agree on every engine, whatever the
        column's collation."""
        return expr

    def sample_sql(self, relation: str, rows: int) -> str:
        """A query returning a fixed random sample of about `rows` rows of `relation`."""
        return f"SELECT * FROM {relation} ORDER BY md5(ctid::text) LIMIT {int(rows)}"

    def in_list(self, expr: str, values: Sequence[Any]) -> str:
        """`expr IN (...)` over literals; FALSE for no values."""
        if not values:
            return "FALSE"
        return f"{expr} IN ({', '.join(self.literal(v) for v in values)})"

    # -- normalisation for hashing (checks/diff) ---------------------------------------
    # The diff compares tables across engines through values rendered the same way on
    # every engine, inside each database: `*_text` spells a value's canonical text,
    # `*_code` an integer code (a signed 64-bit integer) that segment checksums sum; NULL
    # stays NULL. Equal values render equal on every engine: tests/dialects pins the SQL
    # (golden) and runs it against a Python reference on each engine.
    TEXT_HASHES: ClassVar[tuple[str, ...]] = ("md5",)
    """The 32-bit text hashes the engine computes, best first ('hashtext', 'md5')."""
    HASHTEXT_SQL: ClassVar[str] = ""
    """PostgreSQL's hashtext of `{text}` as a non-negative integer (where TEXT_HASHES has it)."""
    MD5_32_SQL: ClassVar[str] = ""
    """The first 32 bits of the md5 hex digest `{md5}` as a non-negative integer."""
    SEGMENT_SUM_SQL: ClassVar[str] = "CAST(sum({code}) AS {text})"
    """The sum of a segment's row codes `{code}` as text `{text}` (it may exceed 64 bits)."""
    CANONICAL_JSON: ClassVar[bool] = False
    """`json_text` renders JSON as PostgreSQL's jsonb prints it (keys sorted, the last of
    duplicate keys kept, one spacing, numbers as numeric prints them); else as stored."""

    def hash_text(self, expr: str) -> str:
        """`expr` cast to text."""
        return self.cast(expr, self.TEXT_TYPE)

    def ordered_text(self, expr: str) -> str:
        """A text expression that compares byte-wise (code point order), as Python does."""
        return expr

    def concat_text(self, parts: Sequence[str]) -> str:
        """The texts `parts` joined, a NULL part read as empty (one call: far cheaper than
        a chain of || on PostgreSQL)."""
        return "concat(" + ", ".join(parts) + ")"

    def strict_concat(self, parts: Sequence[str]) -> str:
        """The texts `parts` joined; NULL when a part is NULL."""
        return "(" + " || ".join(parts) + ")"

    def md5_hex(self, text: str) -> str:
        return f"md5({text})"

    def to_bigint(self, expr: str) -> str:
        return self.cast(expr, "BIGINT")

    def int_div(self, left: str, right: str) -> str:
        """Integer division of non-negative integers."""
        return f"({left} / {right})"

    def decimal_text(self, expr: str, own_scale: int, scale: int | None) -> str:
        """The decimal `expr` (`own_scale` digits after the point; 0 for an integer) as
        text with `scale` (>= `own_scale`) digits after the point, or for `scale` None
        without trailing zeros after the point."""
        text = self.hash_text(expr)
        if scale is None:
            return self.trim_decimal_text(text)
        if scale == own_scale:
            return text
        zeros = "0" * (scale - own_scale)
        return self.strict_concat([text, self.string_literal(zeros if own_scale else "." + zeros)])

    def trim_decimal_text(self, text: str) -> str:
        """The decimal text `text` without trailing zeros after the point, nor a bare point."""
        return f"CASE WHEN {text} LIKE '%.%' THEN rtrim(rtrim({text}, '0'), '.') ELSE {text} END"

    def decimal_code(self, expr: str, own_scale: int, scale: int, fits_bigint: bool) -> str:
        """(`expr` * 10**`scale`) modulo CODE_MODULUS, with the sign of `expr`: the decimal
        (`own_scale` <= `scale` digits after the point) as an integer code, exactly.
        `fits_bigint`: the product always fits a signed 64-bit integer."""
        # x * 10**scale = trunc(x) * 10**scale + (x - trunc(x)) * 10**own_scale * 10**(scale -
        # own_scale): each term is an exact integer of the engine's decimal arithmetic.
        whole = f"trunc({expr})"
        fraction = f"({expr} - {whole}) * {10**own_scale}"
        return self.to_bigint(
            f"(({whole} % {CODE_MODULUS}) * {10**scale % CODE_MODULUS}"
            f" + ({fraction}) * {10 ** (scale - own_scale) % CODE_MODULUS}) % {CODE_MODULUS}"
        )

    def float_value(self, expr: str) -> str:
        """`expr` as a double (what the diff fetches to compare floats within a tolerance)."""
        return self.cast(expr, self.DOUBLE_TYPE)

    def float_code(self, expr: str, shift: int) -> str:
        """The float code of `expr`: 0 for zero (either sign), FLOAT_NAN_CODE for NaN,
        +-FLOAT_INFINITY_CODE for the infinities, else sign * (1 + m): m is the bit pattern
        of |x| as a double, rounded to a multiple of 2**`shift` and shifted right by it (a
        round number sits in the middle of its bucket). Two doubles with one code differ by
        less than 2**(shift - 52) of the larger (the float tolerance). A subnormal (below
        2**-1022) is never rounded: its m is its pattern plus float_subnormal_offset."""
        x = self.float_value(expr)
        ax = f"abs({x})"
        # floor(log2) may round up just below a power of two (and some engines compute
        # log2 as ln / ln 2): the exponent is corrected against exact powers of two, none
        # above 2**1023 (MySQL refuses an overflow where others give infinity).
        e0 = f"least(floor({self.log2(ax)}), 1023)"
        e = self.to_bigint(
            f"{e0} - CASE WHEN {ax} < power(2.0, {e0}) THEN 1 ELSE 0 END"
            f" + CASE WHEN {ax} / 2 >= power(2.0, {e0}) THEN 1 ELSE 0 END"
        )
        unit = 2 ** (52 - shift)
        half = " + 0.5" if shift else ""  # exact: the product is below 2**52
        mantissa = self.to_bigint(f"floor({ax} * power(2.0, -{e}) * {unit}{half})")
        subnormal = (
            f"{self.to_bigint(f'floor({ax} * power(2.0, 1022) * {2**52})')}"
            f" + {float_subnormal_offset(shift)}"
        )
        magnitude = (
            f"CASE WHEN {ax} < power(2.0, -1022) THEN {subnormal}"
            f" ELSE ({e} + 1022) * {unit} + {mantissa} END"
        )
        return (
            f"CASE WHEN {x} = 0 THEN 0{self.float_special_codes(x, shift)}"
            f" ELSE {self.to_bigint(f'sign({x})')} * (1 + {magnitude}) END"
        )

    def log2(self, expr: str) -> str:
        return f"log2({expr})"

    def float_special_codes(self, x: str, shift: int) -> str:
        """`float_code`'s WHEN branches for NaN and infinities (none where the engine has
        no such values)."""
        return (
            f" WHEN isnan({x}) THEN {FLOAT_NAN_CODE}"
            f" WHEN isinf({x}) THEN {self.to_bigint(f'sign({x})')} * {FLOAT_INFINITY_CODE}"
        )

    def epoch_us(self, expr: str) -> str:
        """Microseconds since 1970-01-01 of the timestamp `expr` (one without time zone read
        as UTC), exactly; +-infinity as +-INFINITE_US."""
        raise NotImplementedError(f"{self.NAME} has no epoch_us")

    def epoch_us_code(self, expr: str) -> str:
        """`epoch_us` as segment checksums read it, where a cheaper form exists."""
        return self.epoch_us(expr)

    def timestamp_text(self, expr: str) -> str:
        """`epoch_us` as text, +-infinity as 'infinity' and '-infinity'."""
        return self.hash_text(self.epoch_us(expr))

    def date_text(self, expr: str) -> str:
        """The date as ISO text (yyyy-mm-dd)."""
        return self.hash_text(expr)

    def date_code(self, expr: str) -> str:
        """Days from 1970-01-01 to the date `expr`; +-infinity as +-INFINITE_DAYS."""
        return (
            f"CASE WHEN isinf({expr}) THEN CASE WHEN {expr} > DATE '1970-01-01'"
            f" THEN {INFINITE_DAYS} ELSE -{INFINITE_DAYS} END"
            f" ELSE ({expr} - DATE '1970-01-01') END"
        )

    def boolean_text(self, expr: str) -> str:
        """'1' or '0'."""
        return self.hash_text(self.boolean_code(expr))

    def boolean_code(self, expr: str) -> str:
        """1 or 0."""
        return self.cast(expr, "INTEGER")

    def bytes_text(self, expr: str) -> str:
        """Lower-case hex digits."""
        return f"lower(hex({expr}))"

    def utf8_hex(self, expr: str) -> str:
        """The UTF-8 bytes of the text `expr` as lower-case hex digits (as `bytes_text`)."""
        return f"lower(hex({expr}))"

    def uuid_text(self, expr: str) -> str:
        """Lower-case, with hyphens."""
        return f"lower({self.hash_text(expr)})"

    def json_text(self, expr: str) -> str:
        """The JSON `expr` as text: canonical where CANONICAL_JSON, else as stored."""
        return self.hash_text(expr)

    def json_fields(self, expr: str, keys: Sequence[str], alias: str) -> tuple[str, list[str]]:
        """The values of `keys` in the JSON object held as text in `expr`, as text (NULL
        where missing or JSON's null), the object parsed once per row: (an expression to
        select as `alias` in an inner query, the expression of each key over `alias`)."""
        return f"CAST({expr} AS jsonb)", [
            f"({alias} ->> {self.string_literal(key)})" for key in keys
        ]

    def array_text(self, expr: str, data_type: str, trim_decimals: bool = False) -> str:
        """The array `expr` (of this engine's type `data_type`; PostgreSQL's udt_name, as
        _int4) as PostgreSQL prints it: {1,NULL,"a b"}, nested arrays in braces, elements
        quoted as array_out quotes them, reals widened to doubles; with `trim_decimals`,
        decimal elements without trailing zeros after the point (nor a bare point)."""
        raise NotImplementedError(f"{self.NAME} has no arrays")

    def array_json(self, expr: str) -> str:
        """The array `expr` as JSON, nested arrays as nested lists (as ingest's `json`
        override reads an array)."""
        raise NotImplementedError(f"{self.NAME} has no arrays")

    def interval_text(self, expr: str) -> str:
        """'months:days:microseconds' of an interval (or a duration)."""

        def field(name: str) -> str:
            return f"extract({name} FROM {expr})"

        months = self.to_bigint(f"{field('year')} * 12 + {field('month')}")
        micros = self.to_bigint(
            f"{field('hour')} * 3600000000 + {field('minute')} * 60000000 + {field('microseconds')}"
        )
        days = self.to_bigint(field("day"))
        return self.strict_concat(
            [self.hash_text(months), "':'", self.hash_text(days), "':'", self.hash_text(micros)]
        )


def decimal_shape(value: Decimal) -> tuple[int, int]:
    """(precision, scale) of the narrowest DECIMAL that holds `value` exactly."""
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    scale = max(-exponent, 0)
    integer_digits = max(len(digits) + exponent, 0) if digits != (0,) else 0
    return max(integer_digits + scale, 1), scale


# -- normalisation for hashing (checks/diff): constants every engine's codes share -------
CODE_MODULUS = 4_294_967_291
"""The largest prime below 2**32: decimal codes are taken modulo it."""
FLOAT_NAN_CODE = 2**63 - 1
"""The float code of NaN."""
FLOAT_INFINITY_CODE = 2**63 - 2
"""The float code of +infinity (minus it: -infinity), above every finite value's."""


def float_subnormal_offset(shift: int) -> int:
    """Added to a subnormal's bit pattern in its float code: above every rounded and
    shifted normal pattern (for a shift of 1 or more), so that the two never share a code."""
    return 2**62 if shift else 0


def float_rounding(shift: int) -> int:
    """Added to a normal pattern before it is shifted: half the bucket, so that it rounds."""
    return 2 ** (shift - 1) if shift else 0


FLOAT_ABS_BITS = 2**63 - 1
"""Masks the sign bit off a double's bit pattern."""
INFINITE_DAYS = 2**31 - 1
"""The day code of the date +infinity (minus it: -infinity)."""
INFINITE_US = 9_200_000_000_000_000_000
"""+-infinity as microseconds since 1970 (year ~293,000): timestamp codes are clamped to
+-this, so that they stay signed 64-bit integers on every engine."""
