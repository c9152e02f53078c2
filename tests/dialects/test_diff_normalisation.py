"""The dialects' normalisation for hashing (what checks/diff sends each engine).

Golden: the SQL each engine gets, pinned in golden/diff_<engine>.sql (after a deliberate
change: `GRISTMILL_UPDATE_GOLDEN=1 pytest tests/dialects`, then review the diff).

Reference: each rendering run on the engine itself (DuckDB in process, PostgreSQL and
MariaDB on their servers) equals a Python reference, or another engine's rendering of
the same value, on hostile values drawn by hypothesis.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gristmill.checks.diff.canonical_json import canonical
from gristmill.dialects import Dialect, dialect
from gristmill.dialects.base import (
    CODE_MODULUS,
    FLOAT_INFINITY_CODE,
    FLOAT_NAN_CODE,
    INFINITE_DAYS,
    INFINITE_US,
)
from tests.conftest import PG_URL, mysql_connect, require_server

GOLDEN = Path(__file__).parent / "golden"
ENGINES = ("duckdb", "postgres", "mysql")
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# -- golden SQL ------------------------------------------------------------------------
def _spellings(d: Dialect, engine: str) -> Iterator[tuple[str, str]]:
    yield "TEXT_HASHES", ", ".join(d.TEXT_HASHES)
    yield "HASHTEXT_SQL", d.HASHTEXT_SQL
    yield "MD5_32_SQL", d.MD5_32_SQL
    yield "SEGMENT_SUM_SQL", d.SEGMENT_SUM_SQL
    yield "CANONICAL_JSON", str(d.CANONICAL_JSON)
    yield "hash_text", d.hash_text("x")
    yield "ordered_text", d.ordered_text("x")
    yield "concat_text", d.concat_text(["a", "b"])
    yield "strict_concat", d.strict_concat(["a", "b"])
    yield "md5_hex", d.md5_hex("t")
    yield "to_bigint", d.to_bigint("x")
    yield "int_div", d.int_div("a", "b")
    for own, scale in ((2, 2), (2, 9), (0, 3), (9, None)):
        yield f"decimal_text own={own} scale={scale}", d.decimal_text("x", own, scale)
    for own, scale, fits in ((2, 2, True), (2, 9, False), (0, 3, False), (20, 25, False)):
        yield (
            f"decimal_code own={own} scale={scale} fits={fits}",
            d.decimal_code("x", own, scale, fits),
        )
    yield "float_value", d.float_value("x")
    yield "float_code shift=0", d.float_code("x", 0)
    yield "float_code shift=2", d.float_code("x", 2)
    yield "epoch_us", d.epoch_us("t")
    yield "epoch_us_code", d.epoch_us_code("t")
    yield "timestamp_text", d.timestamp_text("t")
    yield "date_text", d.date_text("d")
    yield "date_code", d.date_code("d")
    yield "boolean_text", d.boolean_text("b")
    yield "boolean_code", d.boolean_code("b")
    yield "bytes_text", d.bytes_text("y")
    yield "utf8_hex", d.utf8_hex("s")
    yield "uuid_text", d.uuid_text("u")
    yield "json_text", d.json_text("j")
    yield "interval_text", d.interval_text("i")
    arrays = {
        "duckdb": ["INTEGER[]", "VARCHAR[][]", "DOUBLE[]", "FLOAT[]", "BOOLEAN[]", "BLOB[]"],
        "postgres": ["_int4", "_float4"],
        "mysql": [],
    }
    for data_type in arrays[engine]:
        yield f"array_text {data_type}", d.array_text("a", data_type)
    if arrays[engine]:
        yield "array_json", d.array_json("a")


@pytest.mark.parametrize("engine", ENGINES)
def test_golden_normalisation_sql(engine: str) -> None:
    text = "".join(f"{label}: {sql}\n" for label, sql in _spellings(dialect(engine), engine))
    path = GOLDEN / f"diff_{engine}.sql"
    if os.environ.get("GRISTMILL_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with GRISTMILL_UPDATE_GOLDEN=1"
    assert text == path.read_text()


def test_mysql_has_no_arrays() -> None:
    with pytest.raises(NotImplementedError, match="MySQL has no arrays"):
        dialect("mysql").array_text("a", "json")
    with pytest.raises(NotImplementedError, match="MySQL has no arrays"):
        dialect("mysql").array_json("a")


# -- running renderings on each engine -----------------------------------------------
Run = Callable[[Sequence[str]], list[Any]]
"""Evaluates SQL expressions (one query), returning their values."""


@pytest.fixture(scope="module")
def duckdb_run() -> Iterator[Run]:
    import duckdb

    from gristmill.checks.diff.duckdb import _register_functions

    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    _register_functions(db)

    def run(expressions: Sequence[str]) -> list[Any]:
        return list(db.execute("SELECT " + ", ".join(expressions)).fetchone() or ())

    yield run
    db.close()


@pytest.fixture(scope="module")
def postgres_run() -> Iterator[Run]:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    db = psycopg.connect(PG_URL, autocommit=True)
    db.execute("SET TimeZone = 'UTC'")
    db.execute("SET DateStyle = 'ISO'")

    def run(expressions: Sequence[str]) -> list[Any]:
        return list(db.execute("SELECT " + ", ".join(expressions)).fetchone() or ())

    yield run
    db.close()


@pytest.fixture(scope="module")
def mysql_run() -> Iterator[Run]:
    require_server("MariaDB/MySQL", "127.0.0.1", 3306)
    db = mysql_connect()

    def run(expressions: Sequence[str]) -> list[Any]:
        with db.cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(expressions))
            return list(cursor.fetchone() or ())

    yield run
    db.close()


@pytest.fixture(params=ENGINES)
def engine(request: Any) -> tuple[str, Run]:
    return request.param, request.getfixturevalue(f"{request.param}_run")


# -- floats: the bit pattern, shifted ------------------------------------------------------
def float_code(x: float, shift: int) -> int:
    if math.isnan(x):
        return FLOAT_NAN_CODE
    if x == 0:
        return 0
    if math.isinf(x):
        return FLOAT_INFINITY_CODE if x > 0 else -FLOAT_INFINITY_CODE
    bits: int = struct.unpack(">q", struct.pack(">d", abs(x)))[0]
    if bits < 2**52:  # a subnormal: never rounded, and apart from the normals
        magnitude = bits + (2**62 if shift else 0)
    else:  # rounded to a multiple of 2**shift
        magnitude = (bits + (2 ** (shift - 1) if shift else 0)) >> shift
    return int(math.copysign(1, x)) * (1 + magnitude)


HOSTILE_FLOATS = [
    0.1,
    -0.0,
    5e-324,
    -2.2250738585072014e-308,
    2.225073858507201e-308,  # the largest subnormal
    1.7976931348623157e308,
    2.0**1023,
    1 - 2**-53,
    2 - 2**-52,
    2.0**-1022,
    float(struct.unpack(">f", struct.pack(">f", 0.1))[0]),
    math.inf,
    -math.inf,
    math.nan,
]


def _double(d: Dialect, x: float) -> str:
    return d.cast(d.string_literal(repr(x) if math.isfinite(x) else str(x)), d.DOUBLE_TYPE)


@SETTINGS
@given(
    values=st.lists(st.floats(allow_subnormal=True), min_size=1, max_size=20),
    shift=st.sampled_from([0, 1, 2, 12, 52]),
)
def test_float_codes_are_the_shifted_bit_patterns(
    engine: tuple[str, Run], values: list[float], shift: int
) -> None:
    name, run = engine
    d = dialect(name)
    values = values + HOSTILE_FLOATS
    if name == "mysql":  # MySQL has no NaN nor infinities
        values = [v for v in values if math.isfinite(v)]
    got = run([d.float_code(_double(d, v), shift) for v in values])
    assert [int(g) for g in got] == [float_code(v, shift) for v in values]


# -- decimals: exact text and codes at a common scale ----------------------------------------
SHAPES = [(12, 2, 2), (12, 2, 9), (18, 0, 4), (38, 9, 9), (38, 10, 12), (30, 25, 25), (38, 30, 30)]
"""(precision, own scale, compared scale)."""


EXACT = Context(prec=200)


def _code(value: Decimal, scale: int) -> int:
    product = int(value.scaleb(scale, EXACT))
    return int(math.copysign(abs(product) % CODE_MODULUS, product))


@SETTINGS
@given(data=st.data(), shape=st.sampled_from(SHAPES))
def test_decimal_texts_and_codes_are_exact(
    engine: tuple[str, Run], data: st.DataObject, shape: tuple[int, int, int]
) -> None:
    name, run = engine
    d = dialect(name)
    precision, own, scale = shape
    digits = st.integers(-(10**precision) + 1, 10**precision - 1)
    units = [*data.draw(st.lists(digits, min_size=1, max_size=8)), 0, 10**precision - 1]
    values = [Decimal(n).scaleb(-own, EXACT) for n in units]
    typed = [
        d.cast(d.string_literal(f"{v:f}"), f"{d.DECIMAL_TYPE}({precision},{own})") for v in values
    ]
    fits = 10 ** (precision - own) * 10**scale < 2**63
    got = run(
        [d.decimal_text(t, own, scale) for t in typed]
        + [d.decimal_text(t, own, None) for t in typed]
        + [d.decimal_code(t, own, scale, fits) for t in typed]
    )
    n = len(values)
    assert got[:n] == [
        f"{v:f}" + ("" if own else ".") * (scale > own) + "0" * (scale - own) for v in values
    ]
    trimmed = [f"{v:f}".rstrip("0").rstrip(".") if own else f"{v:f}" for v in values]
    assert got[n : 2 * n] == trimmed
    assert [int(g) for g in got[2 * n :]] == [_code(v, scale) for v in values]


# -- timestamps and dates ----------------------------------------------------------------------
EPOCH = datetime(1970, 1, 1)


@SETTINGS
@given(
    values=st.lists(
        st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
        min_size=1,
        max_size=10,
    )
)
def test_timestamps_are_epoch_microseconds(engine: tuple[str, Run], values: list[datetime]) -> None:
    name, run = engine
    d = dialect(name)
    values += [EPOCH, EPOCH - timedelta(microseconds=1), datetime(2024, 2, 29, 23, 59, 59, 999999)]
    typed = [d.literal(v) for v in values]
    got = run(
        [d.epoch_us(t) for t in typed]
        + [d.timestamp_text(t) for t in typed]
        + [d.epoch_us_code(t) for t in typed]
    )
    n = len(values)
    expected = [(v - EPOCH) // timedelta(microseconds=1) for v in values]
    assert [int(g) for g in got[:n]] == expected
    assert got[n : 2 * n] == [str(e) for e in expected]
    # The cheap code may be off by the rounding of PostgreSQL's float seconds: a
    # microsecond for centuries around 1970 (a code off only costs a row comparison).
    for code, exact in zip(got[2 * n :], expected, strict=True):
        assert abs(int(code) - exact) <= 1 + abs(exact) * 2**-51


@pytest.mark.parametrize("name", ["duckdb", "postgres"])
def test_infinite_timestamps_and_dates(name: str, request: pytest.FixtureRequest) -> None:
    run: Run = request.getfixturevalue(f"{name}_run")
    d = dialect(name)
    exprs: list[str] = []
    for sign in ("", "-"):
        ts = d.cast(d.string_literal(f"{sign}infinity"), "TIMESTAMP")
        day = d.cast(d.string_literal(f"{sign}infinity"), "DATE")
        exprs += [d.epoch_us(ts), d.epoch_us_code(ts), d.timestamp_text(ts), d.date_code(day)]
    got = run(exprs)
    assert [int(g) for g in got[0:2]] == [INFINITE_US, INFINITE_US]
    assert got[2] == "infinity" and int(got[3]) == INFINITE_DAYS
    assert [int(g) for g in got[4:6]] == [-INFINITE_US, -INFINITE_US]
    assert got[6] == "-infinity" and int(got[7]) == -INFINITE_DAYS


@SETTINGS
@given(values=st.lists(st.dates(min_value=date(1000, 1, 1)), min_size=1, max_size=10))
def test_dates_are_iso_and_days(engine: tuple[str, Run], values: list[date]) -> None:
    name, run = engine
    d = dialect(name)
    typed = [d.literal(v) for v in values]
    got = run([d.date_text(t) for t in typed] + [d.date_code(t) for t in typed])
    n = len(values)
    assert got[:n] == [v.isoformat() for v in values]
    assert [int(g) for g in got[n:]] == [(v - EPOCH.date()).days for v in values]


def test_booleans_bytes_and_uuids(engine: tuple[str, Run]) -> None:
    name, run = engine
    d = dialect(name)
    truth = "(1 = 1)" if name == "mysql" else "TRUE"
    null = "NULL" if name == "mysql" else "CAST(NULL AS BOOLEAN)"
    got = run(
        [
            d.boolean_text(truth),
            d.boolean_code(f"NOT {truth}"),
            d.hash_text(d.boolean_code(null)),
            d.bytes_text(d.literal(b"\x00\xff\x5c")),
            d.uuid_text(d.string_literal("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")),
        ]
    )
    assert got[0] == "1" and int(got[1]) == 0 and got[2] is None  # NULL is no 0
    assert got[3:] == ["00ff5c", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]


def test_intervals_are_months_days_microseconds(duckdb_run: Run, postgres_run: Run) -> None:
    written = ["1 year 2 months 3 days 04:05:06.789", "-3 months", "-26:03:04.5", "00:00:00.000001"]
    for name, run in (("duckdb", duckdb_run), ("postgres", postgres_run)):
        d = dialect(name)
        got = run([d.interval_text(d.cast(d.string_literal(w), "INTERVAL")) for w in written])
        assert got == ["14:3:14706789000", "-3:0:0", "0:0:-93784500000", "0:0:1"], name


def test_mysql_time_is_a_duration(mysql_run: Run) -> None:
    d = dialect("mysql")
    written = ["-12:34:56.5", "838:59:59", "00:00:00"]
    got = mysql_run([d.interval_text(d.cast(d.string_literal(w), "TIME(6)")) for w in written])
    assert got == ["0:0:-45296500000", "0:0:3020399000000", "0:0:0"]


# -- arrays: DuckDB prints its lists as PostgreSQL prints arrays -------------------------------
HOSTILE_TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6
) | st.sampled_from(["", "NULL", "null", " ", "a,b", '"', "\\", "{}", "\t\n\r\x0b\x0c", "é"])
FLOAT_ELEMENTS = st.floats(width=64) | st.sampled_from(
    [1e15, 1e16, 123456789012345.0, -0.0, 1.0, 3.5763616122422168e16, -1.1328786106155341e17]
)
"""The last two: shortest digits exactly halfway between two doubles (PostgreSQL prints 17)."""
REAL_ELEMENTS = st.floats(width=32) | st.sampled_from([1e6, 1234567.5, 123456.0, -0.0, 0.1])

ARRAYS: dict[str, tuple[str, str, str, Any]] = {
    "text": ("VARCHAR[]", "text[]", "_text", HOSTILE_TEXT),
    "integer": ("BIGINT[]", "bigint[]", "_int8", st.integers(-(2**63), 2**63 - 1)),
    "double": ("DOUBLE[]", "float8[]", "_float8", FLOAT_ELEMENTS),
    "real": ("FLOAT[]", "float4[]", "_float4", REAL_ELEMENTS),
    "boolean": ("BOOLEAN[]", "boolean[]", "_bool", st.booleans()),
    "bytes": ("BLOB[]", "bytea[]", "_bytea", st.binary(max_size=4)),
    "date": ("DATE[]", "date[]", "_date", st.dates()),
    "timestamp": ("TIMESTAMP[]", "timestamp[]", "_timestamp", st.datetimes()),
    "timestamptz": (
        "TIMESTAMP WITH TIME ZONE[]",
        "timestamptz[]",
        "_timestamptz",
        st.datetimes(timezones=st.just(UTC)),
    ),
    "uuid": ("UUID[]", "uuid[]", "_uuid", st.uuids()),
}
"""kind -> (DuckDB type, PostgreSQL type, its udt_name, elements)."""


@SETTINGS
@given(data=st.data(), kind=st.sampled_from(sorted(ARRAYS)))
def test_duckdb_lists_print_as_postgres_arrays(
    duckdb_run: Run, postgres_run: Run, data: st.DataObject, kind: str
) -> None:
    duck_type, pg_type, udt_name, elements = ARRAYS[kind]
    values = data.draw(st.lists(st.none() | elements, max_size=6))
    duck, pg = dialect("duckdb"), dialect("postgres")
    expected = postgres_run(
        [pg.array_text(pg.cast(_pg_array(values, pg_type), pg_type), udt_name)]
    )[0]
    listed = duck.cast("[" + ", ".join(_duck_element(duck, v) for v in values) + "]", duck_type)
    assert duckdb_run([duck.array_text(listed, duck_type)]) == [expected]


def test_nested_lists_print_as_postgres_arrays(duckdb_run: Run, postgres_run: Run) -> None:
    duck, pg = dialect("duckdb"), dialect("postgres")
    expected = postgres_run(["ARRAY[['a b', NULL], ['', 'c']]::text[][]::text"])[0]
    got = duckdb_run([duck.array_text("[['a b', NULL], ['', 'c']]::VARCHAR[][]", "VARCHAR[][]")])
    assert got == [expected] == ['{{"a b",NULL},{"",c}}']
    assert duckdb_run([duck.array_text("[]::INTEGER[]", "INTEGER[]")]) == ["{}"]
    assert pg.array_text("a", "_text") == "(a)::text"


@SETTINGS
@given(text=HOSTILE_TEXT | st.just("a\x00b"))
def test_utf8_hex_is_the_texts_utf8_bytes(engine: tuple[str, Run], text: str) -> None:
    name, run = engine
    assume(name != "postgres" or "\x00" not in text)  # PostgreSQL text holds no NUL
    d = dialect(name)
    assert run([d.utf8_hex(d.string_literal(text))]) == [text.encode().hex()]


def test_arrays_as_json_are_nested_lists(duckdb_run: Run, postgres_run: Run) -> None:
    """What a diff compares a column loaded as JSON (column_types) with: its source array."""
    duck, pg = dialect("duckdb"), dialect("postgres")
    expected = ["[[1, 2], [3, null]]", "[]", '["a b", null, "é"]']
    assert (
        postgres_run(
            [
                pg.json_text(pg.array_json(a))
                for a in ("'{{1,2},{3,NULL}}'::int[]", "'{}'::int[]", "'{\"a b\",NULL,é}'::text[]")
            ]
        )
        == expected
    )
    assert (
        duckdb_run(
            [
                duck.json_text(duck.array_json(a))
                for a in ("[[1, 2], [3, NULL]]::INTEGER[][]", "[]::INTEGER[]", "['a b', NULL, 'é']")
            ]
        )
        == expected
    )


def _duck_element(d: Dialect, value: Any) -> str:
    if isinstance(value, float):
        return _double(d, value)
    return d.literal(value)


def _pg_array(values: list[Any], pg_type: str) -> str:
    pg = dialect("postgres")
    element = pg_type.removesuffix("[]")

    def one(v: Any) -> str:
        if v is None:
            return "NULL"
        if isinstance(v, float):
            return pg.cast(pg.string_literal(repr(v) if math.isfinite(v) else str(v)), element)
        return pg.literal(v)

    return "ARRAY[" + ", ".join(one(v) for v in values) + "]" if values else "'{}'"


# -- JSON: jsonb's rendering, in Python ------------------------------------------------------
NUMBERS = st.builds(
    lambda n, point, exponent, form: form.format(n=n, p=point, e=exponent),
    st.integers(-1000, 1000),
    st.sampled_from(["", ".0", ".50", ".001"]),
    st.integers(-8, 8),
    st.sampled_from(["{n}{p}", "{n}{p}e{e}", "{n}{p}E{e:+d}"]),
)
KEYS = st.sampled_from(["a", "b", "aa", "é", "", "\n", "a\x01", "B", "ab"]) | st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), max_size=3
)
SCALARS = st.one_of(st.none(), st.booleans(), HOSTILE_TEXT, NUMBERS.map(lambda n: _Raw(n)))


class _Raw:
    """A number as written in the document."""

    def __init__(self, text: str) -> None:
        self.text = text


def _write(value: Any, spacing: str) -> str:
    """JSON text with duplicate keys kept, numbers as written, and some spacing."""
    if isinstance(value, _Raw):
        return value.text
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        items = [f"{json.dumps(k)}{spacing}:{_write(v, spacing)}" for k, v in value]
        return "{" + f",{spacing}".join(items) + "}"
    if isinstance(value, list):
        return "[" + f",{spacing}".join(_write(v, spacing) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.lists(st.tuples(KEYS, inner), min_size=1, max_size=4)
    ),
    max_leaves=12,
)


@SETTINGS
@given(document=DOCUMENTS, spacing=st.sampled_from(["", " ", "\n  "]))
def test_canonical_json_is_jsonb_text(
    postgres_run: Run, duckdb_run: Run, document: Any, spacing: str
) -> None:
    text = _write(document, spacing)
    pg = dialect("postgres")
    expected = postgres_run([pg.json_text(pg.cast(pg.string_literal(text), "json"))])[0]
    assert canonical(text) == expected
    duck = dialect("duckdb")
    assert duckdb_run([duck.json_text(duck.string_literal(text))]) == [expected]


def test_decimal_arrays_of_different_scales_compare_trimmed(
    duckdb_run: Run, postgres_run: Run
) -> None:
    duck, pg = dialect("duckdb"), dialect("postgres")
    written = "{{1.50,-0.10,NULL},{100,0.00,10.010}}"
    expected = "{{1.5,-0.1,NULL},{100,0,10.01}}"
    got = postgres_run(
        [
            pg.array_text(f"'{written}'::numeric(8,3)[]", "_numeric", trim_decimals=True),
            pg.array_text("'{1.000,NaN}'::numeric[]", "_numeric", trim_decimals=True),
            pg.array_text("'{1.50}'::numeric(6,2)[]", "_numeric"),
        ]
    )
    assert got == [expected, "{1,NaN}", "{1.50}"]
    listed = "[[1.5, -0.1, NULL], [100, 0, 10.01]]::DECIMAL(38,9)[][]"
    assert duckdb_run([duck.array_text(listed, "DECIMAL(38,9)[][]", trim_decimals=True)]) == [
        expected
    ]
