"""The types the diff is tested on, per source engine: DDL, edge values and a changed value.

Until the shared type table (the ingest conformance suite's) exists, this is the diff's
own list. `TYPES` is what tests/checks/test_diff_types.py runs over: switching it to the
shared table is the one line that builds it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TypeCase:
    """One source column type: its DDL per source engine, edge values (SQL literals of
    that engine; the suite adds NULL) and one value different from the first edge value."""

    name: str
    ddl: dict[str, str]
    values: dict[str, list[str]]
    changed: dict[str, str]


def _pg(name: str, ddl: str, values: list[str], changed: str) -> TypeCase:
    return TypeCase(name, {"postgres": ddl}, {"postgres": values}, {"postgres": changed})


def _my(name: str, ddl: str, values: list[str], changed: str) -> TypeCase:
    return TypeCase(name, {"mysql": ddl}, {"mysql": values}, {"mysql": changed})


POSTGRES_TYPES = [
    _pg("smallint", "smallint", ["-32768", "0", "32767"], "1"),
    _pg("int", "integer", ["-2147483648", "7", "2147483647"], "8"),
    _pg("bigint", "bigint", ["-9223372036854775808", "9223372036854775807", "0"], "1"),
    _pg("numeric_5_0", "numeric(5,0)", ["-99999", "0", "12345"], "-99998"),
    _pg("numeric_12_2", "numeric(12,2)", ["-9999999999.99", "0.00", "12.30"], "-9999999999.98"),
    _pg(
        "numeric_38_10",
        "numeric(38,10)",
        ["1234567890123456789012345678.1234567890", "-0.0000000001", "0"],
        "1234567890123456789012345678.1234567891",
    ),
    _pg(
        "numeric_30_25",
        "numeric(30,25)",
        ["12345.1234567890123456789012345", "-0.0000000000000000000000001"],
        "12345.1234567890123456789012346",
    ),
    _pg("numeric", "numeric", ["1.5", "-123.456", "0", "100", "1.50"], "1.51"),
    _pg(
        "real",
        "real",
        [
            "0.1",
            "'-3.4028235e38'",
            "'1.4e-45'",
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "'-0'",
        ],
        "0.10000001",
    ),
    _pg(
        "double",
        "double precision",
        [
            "0.1",
            "'1.7976931348623157e308'",
            "'-5e-324'",
            "'NaN'",
            "'Infinity'",
            "'-Infinity'",
            "'-0'",
            "'0.30000000000000004'",
        ],
        "'0.10000000000000002'",  # one unit in the last place
    ),
    _pg("bool", "boolean", ["true", "false"], "false"),
    _pg(
        "text",
        "text",
        ["''", "'héllo ✓ 日本 🇺🇸'", "'it''s \"q\" \\ back'", "E'tab\\tnl\\n'", "'NULL'"],
        "' '",
    ),
    _pg("char", "char(5)", ["'ab'", "' b'", "''"], "'ac'"),
    _pg("varchar", "varchar(20)", ["'a'", "''"], "'A'"),
    _pg(
        "date",
        "date",
        ["'2024-02-29'", "'1970-01-01'", "'0001-01-01'", "'9999-12-31'"],
        "'2024-03-01'",
    ),
    _pg(
        "timestamp",
        "timestamp",
        ["'2024-02-29 23:59:59.999999'", "'1970-01-01 00:00:00'", "'1900-01-01 00:00:00.000001'"],
        "'2024-02-29 23:59:59.999998'",
    ),
    _pg(
        "timestamptz",
        "timestamptz",
        ["'2024-03-31 01:30:00+02'", "'1969-12-31 23:59:59.999999+00'"],
        "'2024-03-31 01:30:00+01'",
    ),
    _pg("time", "time", ["'12:34:56.5'", "'00:00:00'", "'23:59:59.999999'"], "'12:34:56.4'"),
    _pg(
        "interval",
        "interval",
        ["'1 day 02:00:00'", "'-3 mons'", "'00:00:00.000001'"],
        "'1 day 02:00:01'",
    ),
    _pg(
        "json",
        "json",
        [
            """'{"b": 1, "a": [1.50, 2e2, "x"]}'""",
            "'[]'",
            """'"s"'""",
            """'{"k": {"z": null, "y": true}}'""",
            """'{"a": 1, "a": 2}'""",
        ],
        """'{"b": 1, "a": [1.5, 2e2, "x"]}'""",  # 1.5 is not 1.50 to jsonb either
    ),
    _pg(
        "jsonb",
        "jsonb",
        ["""'{"b": 1, "a": [1.50, 2e2]}'""", "'{}'", "'null'", """'"é\\u00e9 \\n"'"""],
        """'{"b": 1, "a": [1.50, 2e2, null]}'""",
    ),
    _pg("bytea", "bytea", ["'\\x00ff'", "'\\x'", "'\\x5c27'"], "'\\x00fe'"),
    _pg(
        "uuid",
        "uuid",
        ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'"],
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12'",
    ),
    _pg("int_array", "integer[]", ["'{}'", "'{1,NULL,3}'", "'{-2147483648}'"], "'{NULL}'"),
    _pg(
        "text_array",
        "text[]",
        ["'{}'", """'{"a,b","",NULL,"x\\"y","NULL"," sp",é,"{"}'"""],
        "'{\"\"}'",
    ),
    _pg("numeric_array", "numeric(6,2)[]", ["'{1.50,NULL}'", "'{}'"], "'{1.51,NULL}'"),
    _pg("bool_array", "boolean[]", ["'{t,f,NULL}'"], "'{t,t,NULL}'"),
    _pg(
        "double_array",
        "double precision[]",
        ["'{0.1,1e+16,1e15,-0,1,NaN,-Infinity,5e-324}'"],
        "'{0.1,1e+16,1e15,0,1,NaN,-Infinity,5e-324}'",  # -0 and 0 are one value
    ),
    _pg(
        "timestamptz_array",
        "timestamptz[]",
        ["""'{"2024-10-27 02:30:00.5+01",NULL}'""", "'{}'"],
        """'{"2024-10-27 02:30:00.5+00",NULL}'""",
    ),
    _pg(
        "date_array", "date[]", ["'{2024-02-29,NULL,1970-01-01}'"], "'{2024-02-28,NULL,1970-01-01}'"
    ),
    _pg("enum", "{schema}.mood", ["'sad'", "'happy'"], "'ok'"),
]
"""PostgreSQL: the enum type `mood` ('sad', 'ok', 'happy') is created in the test's schema."""

MYSQL_TYPES = [
    _my("tinyint", "tinyint", ["-128", "127", "0"], "1"),
    _my("tinyint_1", "tinyint(1)", ["0", "1"], "1"),
    _my("smallint", "smallint", ["-32768", "32767"], "0"),
    _my("mediumint", "mediumint", ["-8388608", "8388607"], "0"),
    _my("int", "int", ["-2147483648", "2147483647"], "0"),
    _my("bigint", "bigint", ["-9223372036854775808", "9223372036854775807"], "0"),
    _my(
        "bigint_unsigned", "bigint unsigned", ["18446744073709551615", "0"], "18446744073709551614"
    ),
    _my("decimal_12_2", "decimal(12,2)", ["-9999999999.99", "0.00", "12.30"], "-9999999999.98"),
    _my(
        "decimal_30_20",
        "decimal(30,20)",
        ["1234567890.12345678901234567890", "-0.00000000000000000001"],
        "1234567890.12345678901234567891",
    ),
    _my("float", "float", ["0.5", "-1.25", "0.1", "-0"], "0.25"),
    _my(
        "double",
        "double",
        ["0.1", "-1.7976931348623157e308", "2.2250738585072014e-308", "0", "0.30000000000000004"],
        "0.10000000000000002",
    ),
    _my("char", "char(5)", ["'ab'", "''", "' b'"], "'ac'"),
    _my("varchar", "varchar(20)", ["'héllo ✓ 日本'", "''", "'it''s \"q\"'"], "'héllo'"),
    _my("text", "text", ["'a\\\\b'", "'NULL'", "''"], "'a\\\\c'"),
    _my("date", "date", ["'2024-02-29'", "'1000-01-01'", "'9999-12-31'"], "'2024-03-01'"),
    _my(
        "datetime",
        "datetime(6)",
        ["'2024-02-29 23:59:59.999999'", "'1000-01-01 00:00:00'"],
        "'2024-02-29 23:59:59.999998'",
    ),
    _my(
        "timestamp",
        "timestamp(6) NULL",
        ["'2024-02-29 23:59:59.999999'", "'1970-01-01 00:00:01'"],
        "'2024-02-29 23:59:59.999998'",
    ),
    _my("time", "time(6)", ["'-12:34:56.5'", "'838:59:59'", "'00:00:00'"], "'-12:34:56.4'"),
    _my("year", "year", ["2024", "1901"], "2025"),
    _my("json", "json", ["""'{"b": 1, "a": [1.50, 2e2]}'""", "'[]'"], """'{"b": 2}'"""),
    _my("blob", "blob", ["X'00ff'", "X''"], "X'00fe'"),
    _my("varbinary", "varbinary(10)", ["X'5c27'", "X'00'"], "X'5c28'"),
    _my("enum", "enum('a','b')", ["'a'", "'b'"], "'b'"),
    _my("set", "set('x','y')", ["'x,y'", "''"], "'x'"),
    _my("bit_1", "bit(1)", ["b'0'", "b'1'"], "b'1'"),
    _my("bit_8", "bit(8)", ["b'101'", "b'11111111'"], "b'100'"),
]

TYPES = POSTGRES_TYPES + MYSQL_TYPES
"""Every case the type suite runs (the one line to switch to the shared type table)."""


def cases(engine: str) -> list[TypeCase]:
    """The cases with a column type on the source engine `engine`."""
    return [t for t in TYPES if engine in t.ddl]
