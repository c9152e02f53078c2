"""The type table of README's "Types" section, as test data: for every source kind, each
source type with its edge values, what arrives in each warehouse, and where gristmill
stops instead (with the column_types override that then loads the column).

Importable by any suite that needs every type a sync supports (ingest, diff): a
`TypeRow` holds a column's DDL and the SQL literals of its values, in the source's own
dialect, the Python values expected after the round trip, and (PostgreSQL and MySQL, the
sources diff reads) a changed value the diff must find.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pyarrow as pa

INF = "infinity"
"""Expected for a timestamp or date +infinity (Python has no such datetime)."""
NINF = "-infinity"
WAREHOUSES = ("duckdb", "postgres")


@dataclass(frozen=True)
class TypeRow:
    column: str
    source_type: str
    """The column's DDL in the source (for files: the Arrow type's name)."""
    values: tuple[str, ...]
    """One value per row, as a SQL literal of the source's dialect (files: Python)."""
    expected: tuple[Any, ...]
    """What each value arrives as (the same value, unless the row says otherwise)."""
    stops: tuple[str, ...] = ()
    """Warehouses on which the sync stops instead, naming the column and `override`."""
    override: str = "text"
    """The column_types override the stop names, and that then loads the column."""
    override_expected: tuple[Any, ...] = ()
    read_as_text: bool = False
    """Read back as text and compared as decimals: numbers beyond any Arrow decimal."""
    warehouse_expected: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """Where a warehouse stores the value differently (rare: documented in the README)."""
    changed: str | None = None
    """A value close to the first (one unit in the last place, one microsecond, one
    character), as a SQL literal: tests/checks/test_diff_types.py changes a cell holding
    the first value to it, and the diff must find that one cell."""
    setup: tuple[str, ...] = ()
    """Statements the source runs before creating the column (e.g. its enum type)."""

    def expected_on(self, warehouse: str) -> tuple[Any, ...]:
        return self.warehouse_expected.get(warehouse, self.expected)


POSTGRES: list[TypeRow] = [
    TypeRow(
        "c_smallint",
        "SMALLINT",
        ("-32768", "32767", "0"),
        (-32768, 32767, 0),
        changed="-32767",
    ),
    TypeRow(
        "c_int",
        "INTEGER",
        ("-2147483648", "2147483647"),
        (-(2**31), 2**31 - 1),
        changed="-2147483647",
    ),
    TypeRow(
        "c_bigint",
        "BIGINT",
        (str(-(2**63)), str(2**63 - 1)),
        (-(2**63), 2**63 - 1),
        changed=str(-(2**63) + 1),
    ),
    TypeRow(
        "c_numeric_5_0",
        "NUMERIC(5,0)",
        ("-99999", "0", "12345"),
        (Decimal(-99999), Decimal(0), Decimal(12345)),
        changed="-99998",
    ),
    TypeRow(
        "c_numeric_12_2",
        "NUMERIC(12,2)",
        ("1234567890.12", "-0.01", "0", "12.30"),
        (Decimal("1234567890.12"), Decimal("-0.01"), Decimal("0"), Decimal("12.30")),
        changed="1234567890.11",
    ),
    TypeRow(
        "c_numeric_38_10",
        "NUMERIC(38,10)",
        ("1234567890123456789012345678.1234567890", "-0.0000000001", "0"),
        (
            Decimal("1234567890123456789012345678.1234567890"),
            Decimal("-0.0000000001"),
            Decimal("0"),
        ),
        changed="1234567890123456789012345678.1234567891",
    ),
    TypeRow(
        "c_numeric_30_25",
        "NUMERIC(30,25)",
        ("12345.1234567890123456789012345", "-0.0000000000000000000000001"),
        (Decimal("12345.1234567890123456789012345"), Decimal("-0.0000000000000000000000001")),
        changed="12345.1234567890123456789012346",
    ),
    TypeRow(
        "c_numeric_free",
        "NUMERIC",
        (
            "3.141592654",
            "1e20",
            "-0.000000001",
            "99999999999999999999999999999.999999999",
            "1.50",
            "100",
        ),
        (
            Decimal("3.141592654"),
            Decimal("1e20"),
            Decimal("-0.000000001"),
            Decimal("99999999999999999999999999999.999999999"),
            Decimal("1.5"),
            Decimal("100"),
        ),
        read_as_text=True,
        changed="3.141592653",
    ),
    TypeRow(
        "c_numeric_huge",
        "NUMERIC",
        ("1e-30", "'NaN'", "123456789012345678901234567890123456789012.5", "'-Infinity'"),
        (
            Decimal("1e-30"),
            Decimal("NaN"),
            Decimal("123456789012345678901234567890123456789012.5"),
            Decimal("-Infinity"),
        ),
        stops=("duckdb",),
        override_expected=(
            "0.000000000000000000000000000001",
            "NaN",
            "123456789012345678901234567890123456789012.5",
            "-Infinity",
        ),
        read_as_text=True,
        changed="1e-31",
    ),
    TypeRow(
        "c_numeric_50_20",
        "NUMERIC(50,20)",
        ("123456789012345678901234567890.12345678901234567890", "-1"),
        (Decimal("123456789012345678901234567890.12345678901234567890"), Decimal("-1")),
        stops=("duckdb",),
        override_expected=(
            "123456789012345678901234567890.12345678901234567890",
            "-1.00000000000000000000",
        ),
        changed="123456789012345678901234567890.12345678901234567891",
    ),
    TypeRow(
        "c_numeric_100_50",
        "NUMERIC(100,50)",
        ("1" * 50 + "." + "2" * 50, "-0.5"),
        (Decimal("1" * 50 + "." + "2" * 50), Decimal("-0.5")),
        stops=("duckdb",),
        override_expected=("1" * 50 + "." + "2" * 50, "-0." + "5" + "0" * 49),
        read_as_text=True,
        changed="1" * 50 + "." + "2" * 49 + "3",
    ),
    TypeRow(
        "c_timestamp_far",
        "TIMESTAMP",
        ("'294270-01-01 00:00:00'",),
        (None,),
        stops=WAREHOUSES,
        override_expected=("294270-01-01 00:00:00",),
        changed="'294270-01-01 00:00:00.000001'",
    ),
    TypeRow(
        "c_real",
        "REAL",
        (
            "1.5",
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "0.1",
            "'-3.4028235e38'",
            "'1.4e-45'",
            "'-0'",
        ),
        (
            1.5,
            math.nan,
            math.inf,
            -math.inf,
            0.10000000149011612,
            -3.4028234663852886e38,
            1.401298464324817e-45,
            -0.0,
        ),
        changed="1.5000001",  # the next single-precision float
    ),
    TypeRow(
        "c_double",
        "DOUBLE PRECISION",
        (
            "1.7976931348623157e308",
            "5e-324",
            "'NaN'",
            "'-Infinity'",
            "-0.0",
            "0.1",
            "'0.30000000000000004'",
            "'Infinity'",
        ),
        (
            1.7976931348623157e308,
            5e-324,
            math.nan,
            -math.inf,
            -0.0,
            0.1,
            0.30000000000000004,
            math.inf,
        ),
        changed="1.7976931348623155e308",  # one unit in the last place
    ),
    TypeRow(
        "c_money",
        "MONEY",
        ("12.34", "'-92233720368547758.08'", "'92233720368547758.07'"),
        (Decimal("12.34"), Decimal("-92233720368547758.08"), Decimal("92233720368547758.07")),
        changed="12.35",
    ),
    TypeRow(
        "c_text",
        "TEXT",
        (
            "'héllo wörld, 世界 🚀'",
            "''",
            "'it''s a \\ backslash'",
            "E'tab\\tand\\nnewline'",
            "'NULL'",
            "'it''s \"q\"'",
        ),
        (
            "héllo wörld, 世界 🚀",
            "",
            "it's a \\ backslash",
            "tab\tand\nnewline",
            "NULL",
            'it\'s "q"',
        ),
        changed="'héllo wörld, 世界 🚀 '",
    ),
    TypeRow("c_varchar", "VARCHAR(5)", ("'abcde'", "''"), ("abcde", ""), changed="'abcdE'"),
    TypeRow("c_char", "CHAR(3)", ("'ab'", "' b'"), ("ab", " b"), changed="'ac'"),
    TypeRow("c_bool", "BOOLEAN", ("true", "false"), (True, False), changed="false"),
    TypeRow(
        "c_date",
        "DATE",
        (
            "'2024-02-29'",
            "'infinity'",
            "'-infinity'",
            "'0001-01-01'",
            "'9999-12-31'",
            "'1970-01-01'",
        ),
        (date(2024, 2, 29), INF, NINF, date(1, 1, 1), date(9999, 12, 31), date(1970, 1, 1)),
        changed="'2024-03-01'",
    ),
    TypeRow(
        "c_timestamp",
        "TIMESTAMP",
        (
            "'2024-01-02 03:04:05.123456'",
            "'infinity'",
            "'-infinity'",
            "'0001-01-01 00:00:00'",
            "'9999-12-31 23:59:59.999999'",
            "'1900-01-01 00:00:00.000001'",
            "'1970-01-01 00:00:00'",
        ),
        (
            datetime(2024, 1, 2, 3, 4, 5, 123456),
            INF,
            NINF,
            datetime(1, 1, 1),
            datetime(9999, 12, 31, 23, 59, 59, 999999),
            datetime(1900, 1, 1, 0, 0, 0, 1),
            datetime(1970, 1, 1),
        ),
        changed="'2024-01-02 03:04:05.123457'",
    ),
    TypeRow(
        "c_timestamptz",
        "TIMESTAMPTZ",
        (
            "'2024-01-02 03:04:05.123456+03'",
            "'infinity'",
            "'-infinity'",
            "'2024-03-31 01:30:00+02'",
            "'1969-12-31 23:59:59.999999+00'",
        ),
        (
            datetime(2024, 1, 2, 0, 4, 5, 123456, tzinfo=UTC),
            INF,
            NINF,
            datetime(2024, 3, 30, 23, 30, tzinfo=UTC),
            datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ),
        changed="'2024-01-02 03:04:05.123456+02'",
    ),
    TypeRow(
        "c_time",
        "TIME",
        ("'00:00:00'", "'23:59:59.999999'", "'12:34:56.5'"),
        (time(0), time(23, 59, 59, 999999), time(12, 34, 56, 500000)),
        changed="'00:00:00.000001'",
    ),
    TypeRow(
        "c_interval",
        "INTERVAL",
        ("'1 year 2 mons 3 days 04:05:06.000007'", "'-1 mon 3 days'", "'00:00:00.000001'"),
        (
            pa.MonthDayNano([14, 3, (4 * 3600 + 5 * 60 + 6) * 10**9 + 7000]),
            pa.MonthDayNano([-1, 3, 0]),
            pa.MonthDayNano([0, 0, 1000]),
        ),
        changed="'1 year 2 mons 3 days 04:05:06.000008'",
    ),
    TypeRow(
        "c_uuid",
        "UUID",
        ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'"),
        (UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), UUID(int=0)),
        changed="'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'",
    ),
    TypeRow(
        "c_jsonb",
        "JSONB",
        ('\'{"a": [1, 2, {"b": "ü"}]}\'', "'[]'", "'{}'", '\'{"b": 1, "a": [1.50, 2e2]}\''),
        ({"a": [1, 2, {"b": "ü"}]}, [], {}, {"a": [1.5, 200], "b": 1}),
        changed='\'{"a": [1, 2, {"b": "ü", "c": null}]}\'',
    ),
    TypeRow(
        "c_json",
        "JSON",
        (
            "'{\"k\": 1.5}'",
            '\'{"b": 1, "a": [1.50, 2e2, "x"]}\'',
            "'[]'",
            '\'{"k": {"z": null, "y": true}}\'',
            '\'{"a": 1, "a": 2}\'',
        ),
        ({"k": 1.5}, {"a": [1.5, 200, "x"], "b": 1}, [], {"k": {"y": True, "z": None}}, {"a": 2}),
        changed="'{\"k\": 1.50}'",  # 1.50 is not 1.5 to jsonb either
    ),
    TypeRow(
        "c_bytea",
        "BYTEA",
        ("'\\x00deadbeef'", "'\\x'", "'\\x5c27'"),
        (b"\x00\xde\xad\xbe\xef", b"", b"\\'"),
        changed="'\\x00deadbeee'",
    ),
    TypeRow(
        "c_int_array",
        "INTEGER[]",
        ("'{1,2,3}'", "'{}'", "'{1,NULL}'", "'{-2147483648}'"),
        ([1, 2, 3], [], [1, None], [-(2**31)]),
        changed="'{1,2,4}'",
    ),
    TypeRow(
        "c_timestamp_array",
        "TIMESTAMP[]",
        ("'{\"2024-01-01 00:00:00\",infinity}'", "'{}'"),
        ([datetime(2024, 1, 1), INF], []),
        stops=("postgres",),
        override_expected=('{"2024-01-01 00:00:00",infinity}', "{}"),
        changed="'{\"2024-01-01 00:00:01\",infinity}'",
    ),
    TypeRow(
        "c_timestamptz_array",
        "TIMESTAMPTZ[]",
        ("'{\"2024-10-27 02:30:00.5+01\",NULL}'", "'{}'"),
        ([datetime(2024, 10, 27, 1, 30, 0, 500000, tzinfo=UTC), None], []),
        changed="'{\"2024-10-27 02:30:00.5+00\",NULL}'",
    ),
    TypeRow(
        "c_date_array",
        "DATE[]",
        ("'{2024-02-29,NULL,1970-01-01}'",),
        ([date(2024, 2, 29), None, date(1970, 1, 1)],),
        changed="'{2024-02-28,NULL,1970-01-01}'",
    ),
    TypeRow(
        "c_text_array",
        "TEXT[]",
        ('\'{"a,b","ü",""}\'', '\'{"",NULL,"x\\"y","NULL"," sp",é,"{"}\''),
        (["a,b", "ü", ""], ["", None, 'x"y', "NULL", " sp", "é", "{"]),
        changed='\'{"a,b","ü"," "}\'',
    ),
    TypeRow(
        "c_bool_array",
        "BOOLEAN[]",
        ("'{t,f,NULL}'",),
        ([True, False, None],),
        changed="'{t,t,NULL}'",
    ),
    TypeRow(
        "c_numeric_array",
        "NUMERIC[]",
        ("'{1.5,-2}'",),
        ([Decimal("1.5"), Decimal("-2")],),
        changed="'{1.5,-3}'",
    ),
    TypeRow(
        "c_numeric_6_2_array",
        "NUMERIC(6,2)[]",
        ("'{1.50,NULL}'", "'{}'"),
        ([Decimal("1.50"), None], []),
        changed="'{1.51,NULL}'",
    ),
    TypeRow(
        "c_double_array",
        "DOUBLE PRECISION[]",
        ("'{0.1,1e+16,1e15,-0,1,NaN,-Infinity,5e-324}'",),
        ([0.1, 1e16, 1e15, -0.0, 1.0, math.nan, -math.inf, 5e-324],),
        changed="'{0.1,1e+16,1e15,-0,1,NaN,-Infinity,1e-323}'",
    ),
    TypeRow(
        "c_int_matrix",
        "INTEGER[][]",
        ("'{{1,2},{3,4}}'",),
        ([[1, 2], [3, 4]],),
        stops=WAREHOUSES,
        override="json",
        override_expected=([[1, 2], [3, 4]],),
        changed="'{{1,2},{3,5}}'",
    ),
    TypeRow(
        "c_enum",
        "mood",
        ("'sad'", "'happy'"),
        ("sad", "happy"),
        changed="'ok'",
        setup=("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",),
    ),
    TypeRow(
        "c_inet", "INET", ("'192.168.0.1/24'",), ("192.168.0.1/24",), changed="'192.168.0.2/24'"
    ),
    TypeRow("c_oid", "OID", ("4294967295", "0"), (4294967295, 0), changed="4294967294"),
]

MYSQL: list[TypeRow] = [
    TypeRow("c_tinyint", "TINYINT", ("-128", "127", "0"), (-128, 127, 0), changed="-127"),
    TypeRow("c_tinyint_unsigned", "TINYINT UNSIGNED", ("0", "255"), (0, 255), changed="1"),
    TypeRow("c_smallint", "SMALLINT", ("-32768", "32767"), (-32768, 32767), changed="-32767"),
    TypeRow(
        "c_mediumint",
        "MEDIUMINT",
        ("-8388608", "8388607"),
        (-8388608, 8388607),
        changed="-8388607",
    ),
    TypeRow(
        "c_int",
        "INT",
        ("-2147483648", "2147483647"),
        (-(2**31), 2**31 - 1),
        changed="-2147483647",
    ),
    TypeRow(
        "c_bigint",
        "BIGINT",
        (str(-(2**63)), str(2**63 - 1)),
        (-(2**63), 2**63 - 1),
        changed=str(-(2**63) + 1),
    ),
    TypeRow(
        "c_bigint_unsigned",
        "BIGINT UNSIGNED",
        ("18446744073709551615", "0"),
        (Decimal("18446744073709551615"), Decimal(0)),
        changed="18446744073709551614",
    ),
    TypeRow("c_bool", "BOOLEAN", ("0", "1"), (False, True), changed="1"),
    TypeRow("c_bit1", "BIT(1)", ("b'0'", "b'1'"), (False, True), changed="b'1'"),
    TypeRow(
        "c_tinyint1_wide",
        "TINYINT(1)",
        ("5", "-1", "1"),
        (5, -1, 1),
        stops=WAREHOUSES,
        override="int",
        override_expected=(5, -1, 1),
        changed="6",
    ),
    TypeRow(
        "c_decimal_12_2",
        "DECIMAL(12,2)",
        ("1234567890.12", "-0.01", "12.30"),
        (Decimal("1234567890.12"), Decimal("-0.01"), Decimal("12.30")),
        changed="1234567890.11",
    ),
    TypeRow(
        "c_decimal_30_20",
        "DECIMAL(30,20)",
        ("1234567890.12345678901234567890", "-0.00000000000000000001"),
        (Decimal("1234567890.12345678901234567890"), Decimal("-0.00000000000000000001")),
        changed="1234567890.12345678901234567891",
    ),
    TypeRow(
        "c_decimal_65_30",
        "DECIMAL(65,30)",
        ("12345678901234567890123456789012345.123456789012345678901234567890", "0"),
        (
            Decimal("12345678901234567890123456789012345.123456789012345678901234567890"),
            Decimal("0"),
        ),
        stops=("duckdb",),
        override_expected=(
            "12345678901234567890123456789012345.123456789012345678901234567890",
            "0.000000000000000000000000000000",
        ),
        changed="12345678901234567890123456789012345.123456789012345678901234567891",
    ),
    TypeRow(
        "c_float",
        "FLOAT",
        ("1.5", "-0.25", "0.123456789", "16777217", "3.4028234e38", "0.1", "-0"),
        (
            1.5,
            -0.25,
            0.12345679104328156,
            16777216.0,
            3.4028234663852886e38,
            0.10000000149011612,
            -0.0,
        ),
        changed="1.5000001",  # the next single-precision float
    ),
    TypeRow(
        "c_double",
        "DOUBLE",
        ("1.7976931348623157e308", "-2.2250738585072014e-308", "0.1", "0", "0.30000000000000004"),
        (1.7976931348623157e308, -2.2250738585072014e-308, 0.1, 0.0, 0.30000000000000004),
        changed="1.7976931348623155e308",  # one unit in the last place
    ),
    TypeRow("c_char", "CHAR(5)", ("'ab'", "''", "' b'"), ("ab", "", " b"), changed="'ac'"),
    TypeRow(
        "c_varchar",
        "VARCHAR(20)",
        ("'héllo ✓ 日本'", "''", "'it''s \"q\"'"),
        ("héllo ✓ 日本", "", 'it\'s "q"'),
        changed="'héllo'",
    ),
    TypeRow(
        "c_text",
        "TEXT",
        ("'héllo wörld, 世界 🚀'", "''", "'it''s a \\\\ backslash'", "'NULL'"),
        ("héllo wörld, 世界 🚀", "", "it's a \\ backslash", "NULL"),
        changed="'héllo wörld, 世界 🚀 '",
    ),
    TypeRow(
        "c_text_nul",
        "TEXT",
        ("'a\\0b'",),
        ("a\x00b",),
        stops=("postgres",),
        override="bytes",
        override_expected=(b"a\x00b",),
        changed="'a\\0c'",
    ),
    TypeRow(
        "c_enum", "ENUM('calm','busy')", ("'busy'", "'calm'"), ("busy", "calm"), changed="'calm'"
    ),
    TypeRow("c_set", "SET('a','b')", ("'a,b'", "''"), ("a,b", ""), changed="'a'"),
    TypeRow(
        "c_date",
        "DATE",
        ("'2024-02-29'", "'1000-01-01'", "'9999-12-31'"),
        (date(2024, 2, 29), date(1000, 1, 1), date(9999, 12, 31)),
        changed="'2024-03-01'",
    ),
    TypeRow(
        "c_zero_date",
        "DATE",
        ("'0000-00-00'", "'2024-01-01'"),
        (None, date(2024, 1, 1)),
        stops=WAREHOUSES,
        override_expected=("0000-00-00", "2024-01-01"),
        changed="'2024-01-02'",
    ),
    TypeRow(
        "c_zero_datetime",
        "DATETIME",
        ("'0000-00-00 00:00:00'",),
        (None,),
        stops=WAREHOUSES,
        override_expected=("0000-00-00 00:00:00",),
        changed="'2024-01-02 00:00:00'",
    ),
    TypeRow(
        "c_datetime",
        "DATETIME(6)",
        ("'2024-01-02 03:04:05.123456'", "'1000-01-01 00:00:00'", "'9999-12-31 23:59:59.999999'"),
        (
            datetime(2024, 1, 2, 3, 4, 5, 123456),
            datetime(1000, 1, 1),
            datetime(9999, 12, 31, 23, 59, 59, 999999),
        ),
        changed="'2024-01-02 03:04:05.123457'",
    ),
    TypeRow(
        "c_timestamp",
        "TIMESTAMP(6) NULL",
        ("'2024-01-02 03:04:05.123456'", "'1970-01-01 00:00:01'", "'2038-01-19 03:14:07.999999'"),
        (
            datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
            datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
            datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=UTC),
        ),
        changed="'2024-01-02 03:04:05.123457'",
    ),
    TypeRow(
        "c_time",
        "TIME(6)",
        ("'-838:59:59'", "'838:59:59'", "'12:34:56.789'", "'-12:34:56.5'", "'00:00:00'"),
        (
            -timedelta(hours=838, minutes=59, seconds=59),
            timedelta(hours=838, minutes=59, seconds=59),
            timedelta(hours=12, minutes=34, seconds=56, microseconds=789000),
            -timedelta(hours=12, minutes=34, seconds=56, microseconds=500000),
            timedelta(0),
        ),
        changed="'-838:59:58.999999'",
    ),
    TypeRow("c_year", "YEAR", ("1901", "2155", "2024"), (1901, 2155, 2024), changed="1902"),
    TypeRow(
        "c_bit8", "BIT(8)", ("b'11111111'", "b'101'"), (b"\xff", b"\x05"), changed="b'11111110'"
    ),
    TypeRow(
        "c_blob",
        "LONGBLOB",
        ("x'00ff'", "x''", "x'5c27'"),
        (b"\x00\xff", b"", b"\\'"),
        changed="x'00fe'",
    ),
    TypeRow(
        "c_varbinary", "VARBINARY(10)", ("x'5c27'", "x'00'"), (b"\\'", b"\x00"), changed="x'5c28'"
    ),
    TypeRow(
        "c_point",
        "POINT",
        ("ST_GeomFromText('POINT(1 2)')",),
        (bytes.fromhex("000000000101000000000000000000f03f0000000000000040"),),
        changed="ST_GeomFromText('POINT(1 3)')",
    ),
    TypeRow(
        "c_json",
        "JSON",
        ('\'{"a": [1, 2, {"b": "ü"}]}\'', "'[]'", '\'{"b": 1, "a": [1.50, 2e2]}\''),
        ({"a": [1, 2, {"b": "ü"}]}, [], {"a": [1.5, 200], "b": 1}),
        changed='\'{"a": [1, 2, {"b": "ü"}], "c": 1}\'',
    ),
]

SQLITE: list[TypeRow] = [
    TypeRow("c_integer", "INTEGER", (str(-(2**63)), str(2**63 - 1)), (-(2**63), 2**63 - 1)),
    TypeRow(
        "c_real", "REAL", ("1.5", "1e308", "9e999", "-9e999"), (1.5, 1e308, math.inf, -math.inf)
    ),
    TypeRow(
        "c_decimal",
        "DECIMAL(12,2)",
        ("1234567890.12", "-0.01", "5"),
        (Decimal("1234567890.12"), Decimal("-0.01"), Decimal("5")),
    ),
    TypeRow(
        "c_decimal_extra_digit",
        "DECIMAL(12,2)",
        ("0.125",),
        (Decimal("0.125"),),
        stops=WAREHOUSES,
        override_expected=("0.125",),
    ),
    TypeRow("c_bool", "BOOLEAN", ("0", "1"), (False, True)),
    TypeRow(
        "c_bool_wide",
        "BOOLEAN",
        ("5",),
        (5,),
        stops=WAREHOUSES,
        override_expected=("5",),
    ),
    TypeRow(
        "c_text",
        "TEXT",
        ("'héllo wörld, 世界 🚀'", "''", "'it''s'"),
        ("héllo wörld, 世界 🚀", "", "it's"),
    ),
    TypeRow(
        "c_text_nul",
        "TEXT",
        ("'a' || char(0) || 'b'",),
        ("a\x00b",),
        stops=("postgres",),
        override="bytes",
        override_expected=(b"a\x00b",),
    ),
    TypeRow("c_date", "DATE", ("'2024-02-29'", "'0001-01-01'"), (date(2024, 2, 29), date(1, 1, 1))),
    TypeRow(
        "c_timestamp",
        "TIMESTAMP",
        ("'2024-01-02 03:04:05.123456'", "'9999-12-31 23:59:59.999999'"),
        (datetime(2024, 1, 2, 3, 4, 5, 123456), datetime(9999, 12, 31, 23, 59, 59, 999999)),
    ),
    TypeRow("c_json", "JSON", ('\'{"a": [1, {"b": "ü"}]}\'',), ({"a": [1, {"b": "ü"}]},)),
    TypeRow("c_blob", "BLOB", ("x'00ff'", "x''"), (b"\x00\xff", b"")),
]

PARQUET: list[TypeRow] = [
    TypeRow("c_int8", "int8", (-128, 127), (-128, 127)),
    TypeRow("c_int64", "int64", (-(2**63), 2**63 - 1), (-(2**63), 2**63 - 1)),
    TypeRow("c_uint64", "uint64", (0, 2**64 - 1), (0, 2**64 - 1)),
    TypeRow("c_float32", "float", (1.5, math.nan, math.inf), (1.5, math.nan, math.inf)),
    TypeRow("c_float64", "double", (5e-324, -math.inf, -0.0), (5e-324, -math.inf, -0.0)),
    TypeRow("c_string", "string", ("héllo 世界 🚀", ""), ("héllo 世界 🚀", "")),
    TypeRow("c_bool", "bool", (True, False), (True, False)),
    TypeRow(
        "c_date",
        "date32[day]",
        (date(2024, 2, 29), date(1, 1, 1)),
        (date(2024, 2, 29), date(1, 1, 1)),
    ),
    TypeRow(
        "c_timestamp",
        "timestamp[us]",
        (datetime(2024, 1, 2, 3, 4, 5, 123456), datetime(9999, 12, 31, 23, 59, 59, 999999)),
        (datetime(2024, 1, 2, 3, 4, 5, 123456), datetime(9999, 12, 31, 23, 59, 59, 999999)),
    ),
    TypeRow(
        "c_timestamptz",
        "timestamp[us, tz=UTC]",
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),),
    ),
    TypeRow(
        "c_decimal",
        "decimal128(12, 2)",
        (Decimal("1234567890.12"), Decimal("-0.01")),
        (Decimal("1234567890.12"), Decimal("-0.01")),
    ),
    TypeRow(
        "c_timestamp_ns",
        "timestamp[ns]",
        (datetime(2024, 1, 2, 3, 4, 5, 123456),),
        (datetime(2024, 1, 2, 3, 4, 5, 123456),),
    ),
    TypeRow(
        "c_nanoseconds",
        "timestamp[ns]",
        (pa.scalar(1_704_164_645_123_456_789, pa.timestamp("ns")),),
        (pa.scalar(1_704_164_645_123_456_789, pa.timestamp("ns")).as_py(),),
        stops=("postgres",),
        override_expected=("2024-01-02 03:04:05.123456789",),
    ),
    TypeRow("c_binary", "binary", (b"\x00\xff", b""), (b"\x00\xff", b"")),
    TypeRow("c_list", "list<item: int32>", ([1, None], []), ([1, None], [])),
]

CSV: list[TypeRow] = [
    TypeRow("c_int", "int64", ("9223372036854775807", "-1"), (2**63 - 1, -1)),
    TypeRow("c_float", "double", ("1.5", "1e308"), (1.5, 1e308)),
    TypeRow("c_text", "string", ("héllo, 世界", "x"), ("héllo, 世界", "x")),
    TypeRow("c_bool", "bool", ("true", "false"), (True, False)),
    TypeRow(
        "c_date", "date32[day]", ("2024-02-29", "0001-01-01"), (date(2024, 2, 29), date(1, 1, 1))
    ),
    TypeRow(
        "c_timestamp",
        "timestamp[s]",
        ("2024-01-02 03:04:05", "9999-12-31 23:59:59"),
        (datetime(2024, 1, 2, 3, 4, 5), datetime(9999, 12, 31, 23, 59, 59)),
    ),
]

JSONL: list[TypeRow] = [
    TypeRow("c_int", "int64", (2**63 - 1, -1), (2**63 - 1, -1)),
    TypeRow("c_float", "double", (1.5, 1e308), (1.5, 1e308)),
    TypeRow("c_text", "string", ("héllo 世界 🚀", ""), ("héllo 世界 🚀", "")),
    TypeRow("c_bool", "bool", (True, False), (True, False)),
    TypeRow("c_list", "list<item: int64>", ([1, 2], []), ([1, 2], [])),
    TypeRow(
        "c_object",
        "struct",
        ({"a": 1, "b": "ü"},),
        ({"a": 1, "b": "ü"},),
    ),
]

TABLES: dict[str, list[TypeRow]] = {
    "postgres": POSTGRES,
    "mysql": MYSQL,
    "sqlite": SQLITE,
    "parquet": PARQUET,
    "csv": CSV,
    "jsonl": JSONL,
}
"""Every source kind's rows of the type table."""
