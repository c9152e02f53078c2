"""Every literal a dialect writes reads back, in the real engine, as the very value it
was made from: DuckDB in process, PostgreSQL and MariaDB on their servers."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.dialects import dialect
from gristmill.errors import BackendError
from tests.conftest import PG_URL, require_server

Select = Callable[[str], Any]

TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30)
DECIMALS = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: len(d.as_tuple().digits) <= 38 and -30 <= int(d.as_tuple().exponent) <= 30
)
INSTANTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    DECIMALS,
    TEXT,
    st.binary(max_size=20),
    st.dates(min_value=date(1, 1, 1)),
    st.datetimes(min_value=datetime(1, 1, 1)),
    INSTANTS,
)


@pytest.fixture(scope="module")
def duckdb_select() -> Iterator[Select]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Kolkata'")  # a literal must not depend on the session
    yield lambda sql: con.execute(f"SELECT {sql}").fetchone()[0]  # type: ignore[index]
    con.close()


@pytest.fixture(scope="module")
def postgres_select() -> Iterator[Select]:
    import psycopg

    require_server("PostgreSQL", "127.0.0.1", 5432)
    con = psycopg.connect(PG_URL, autocommit=True)
    con.execute("SET TimeZone = 'America/St_Johns'")
    yield lambda sql: con.execute(f"SELECT {sql}").fetchone()[0]  # type: ignore[index]
    con.close()


def _same(sent: Any, got: Any) -> bool:
    if isinstance(sent, float) and math.isnan(sent):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(sent, datetime) and sent.tzinfo is not None:
        return isinstance(got, datetime) and got.astimezone(UTC) == sent
    if isinstance(sent, bytes | bytearray):
        return bytes(got) == sent
    if isinstance(sent, Decimal):
        return isinstance(got, Decimal) and got == sent
    return bool(got == sent and type(got) is type(sent))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=SCALARS)
def test_duckdb_reads_back_every_literal(duckdb_select: Select, value: Any) -> None:
    got = duckdb_select(dialect("duckdb").literal(value))
    assert _same(value, got), (value, got)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=SCALARS)
def test_postgres_reads_back_every_literal(postgres_select: Select, value: Any) -> None:
    if isinstance(value, datetime) and value.year < 2 and value.tzinfo is None:
        return
    got = postgres_select(dialect("postgres").literal(value))
    assert _same(value, got), (value, got)


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        -0.0,
        5e-324,
        1.7976931348623157e308,
        'it\'s \\ "quoted" 🚀',
        time(23, 59, 59, 999999),
        timedelta(days=-3, microseconds=7),
        [1, None, 3],
    ],
)
def test_edge_values_read_back(request: Any, engine: str, value: Any) -> None:
    select: Select = request.getfixturevalue(f"{engine}_select")
    got = select(dialect(engine).literal(value))
    assert _same(value, got), (value, got)


def test_an_empty_array_takes_the_type_its_column_needs(postgres_select: Select) -> None:
    empty = dialect("postgres").literal([])
    assert postgres_select(f"CAST({empty} AS INTEGER[]) = ARRAY[]::INTEGER[]") is True
    assert postgres_select(f"array_length({empty}::TEXT[], 1)") is None


def test_mysql_reads_back_text_and_refuses_what_it_cannot_hold() -> None:
    import pymysql

    require_server("MariaDB/MySQL", "127.0.0.1", 3306)
    con = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    try:
        with con.cursor() as cursor:
            for value in ["it's \\ a \\' test", "🚀", "", "back\\\\slash\\"]:
                cursor.execute(f"SELECT {dialect('mysql').literal(value)}")
                assert cursor.fetchone()[0] == value  # type: ignore[index]
            cursor.execute("SELECT " + dialect("mysql").literal(b"\x00\xff"))
            assert cursor.fetchone()[0] == b"\x00\xff"  # type: ignore[index]
    finally:
        con.close()
    with pytest.raises(BackendError, match="MySQL has no floating-point value"):
        dialect("mysql").literal(float("nan"))


def test_a_decimal_wider_than_the_engine_is_refused_not_rounded() -> None:
    with pytest.raises(BackendError, match="40 digits"):
        dialect("duckdb").literal(Decimal("1" * 40))
    assert dialect("postgres").literal(Decimal("1" * 40)) == f"'{'1' * 40}'::NUMERIC"


def test_duckdb_text_holds_nul_and_postgresql_refuses_it(duckdb_select: Select) -> None:
    text = "nul\x00inside\x00"
    assert duckdb_select(dialect("duckdb").literal(text)) == text
    with pytest.raises(BackendError, match="NUL"):
        dialect("postgres").literal(text)


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
@given(
    fields=st.dictionaries(
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8),
        # PostgreSQL's jsonb holds no \u0000: the text values leave it out.
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=8).filter(lambda t: "\x00" not in t),
            st.booleans(),
        ),
        max_size=5,
    )
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_json_fields_read_each_key_as_text(
    request: pytest.FixtureRequest, engine: str, fields: dict[str, Any]
) -> None:
    """`json_fields` (the monitor reads logged features with it): each key's value as
    text, NULL for a missing key or JSON's null; keys with quotes and dots included."""
    import json

    select: Select = request.getfixturevalue(f"{engine}_select")
    d = dialect(engine)
    keys = [*fields, "absent"] if "absent" not in fields else list(fields)
    parsed, values = d.json_fields(d.string_literal(json.dumps(fields)), keys, "j")
    if not keys:
        return
    got = select(f"ARRAY[{', '.join(values)}] FROM (SELECT {parsed} AS j) AS i")
    expected = [
        None
        if fields.get(k) is None
        else str(fields[k]).lower()
        if isinstance(fields[k], bool)
        else str(fields[k])
        for k in keys
    ]
    assert list(got) == expected
