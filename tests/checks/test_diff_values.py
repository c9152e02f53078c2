"""Diff values: what is equal (hostile values, the float tolerance) and how differences are
shown (as the user would write them: ISO 8601 timestamps, decimals at their scale, bytes as
hex), in the Python API, the JSON report and the terminal."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.checks.diff import diff, diff_tables
from gristmill.checks.diff.duckdb import DuckDBEndpoint
from gristmill.config import WarehouseConfig
from gristmill.errors import ConfigError
from gristmill.project import Project
from gristmill.warehouse.duckdb import DuckDBWarehouse
from tests.checks.conftest import Side
from tests.helpers import write_project

TYPES = {
    "postgres": {
        "ts": "TIMESTAMPTZ",
        "naive": "TIMESTAMP",
        "day": "DATE",
        "amount": "NUMERIC(12,2)",
        "blob": "BYTEA",
        "flag": "BOOLEAN",
        "ratio": "DOUBLE PRECISION",
        "small": "REAL",
    },
    "mysql": {
        "ts": "TIMESTAMP(6) NULL",
        "naive": "DATETIME(6)",
        "day": "DATE",
        "amount": "DECIMAL(12,2)",
        "blob": "BLOB",
        "flag": "BIT(1)",
        "ratio": "DOUBLE",
        "small": "FLOAT",
    },
    "duckdb": {
        "ts": "TIMESTAMPTZ",
        "naive": "TIMESTAMP",
        "day": "DATE",
        "amount": "DECIMAL(12,2)",
        "blob": "BLOB",
        "flag": "BOOLEAN",
        "ratio": "DOUBLE",
        "small": "FLOAT",
    },
}
KOLKATA = timezone(timedelta(hours=5, minutes=30))


def _row(i: int) -> list[Any]:
    return [
        i,
        datetime(2024, 3, 31, 1, 30, 0, 5, tzinfo=KOLKATA) + timedelta(hours=i),
        datetime(2024, 2, 29, 23, 59, 59, 999999) + timedelta(days=i),
        date(2024, 2, 29) + timedelta(days=i),
        Decimal("12.30") + i,
        b"\x00\xffa" + bytes([i]),
        i % 2 == 0,
        0.1 * i,
        0.5 + i,
    ]


def _values(side: Side, rows: list[list[Any]]) -> list[list[Any]]:
    if side.dialect != "mysql":
        return rows
    # MySQL takes instants in the session's zone (UTC) and no zone in a literal.
    return [
        [v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) else v for v in r]
        for r in rows
    ]


def test_values_are_shown_as_the_user_writes_them(
    source_pair: tuple[Project, Side, Side],
) -> None:
    project, a, b = source_pair
    rows = [_row(i) for i in range(1, 21)]
    for side in (a, b):
        side.create(TYPES[side.dialect], key_type="INTEGER")
    a.insert(_values(a, rows))
    other = [list(r) for r in rows]
    other[2] = [3, *[None] * 8]  # every value of row 3 changed to NULL
    other[4][1] += timedelta(microseconds=1)
    other[5][7] = math.nextafter(other[5][7], 1.0)
    b.insert(_values(b, other))

    result = diff_tables(project, a.name, b.name, "id")

    changed = {c.key: c.columns for c in result.changed}
    assert set(changed) == {3, 5, 6}
    assert changed[3] == {
        "ts": ("2024-03-30T23:00:00.000005+00:00", None),  # 01:30 +05:30, plus 3 hours
        "naive": ("2024-03-03T23:59:59.999999", None),
        "day": ("2024-03-03", None),
        "amount": ("15.30", None),
        "blob": ("\\x00ff6103", None),
        "flag": ("false", None),
        "ratio": ("0.30000000000000004", None),
        "small": ("3.5", None),
    }
    assert changed[5] == {
        "ts": ("2024-03-31T01:00:00.000005+00:00", "2024-03-31T01:00:00.000006+00:00")
    }
    assert changed[6] == {"ratio": ("0.6000000000000001", "0.6000000000000002")}
    report = json.loads(json.dumps(result.to_dict()))
    assert report["changed"][0]["columns"]["naive"] == {
        "a": "2024-03-03T23:59:59.999999",
        "b": None,
    }


def test_hostile_values_compare_as_values(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    for side in (a, b):
        double = "DOUBLE" if side.dialect == "duckdb" else "DOUBLE PRECISION"
        text = "VARCHAR" if side.dialect == "duckdb" else "TEXT"
        side.create({"x": double, "s": text, "f": "BOOLEAN"})
    nan, inf = math.nan, math.inf
    a.insert(
        [
            (1, nan, "", False),
            (2, -0.0, None, None),
            (3, inf, "NULL", True),
            (4, nan, "a", None),
            (5, 1.0, " ", False),
            (6, -inf, "x", True),
        ]
    )
    b.insert(
        [
            (1, nan, "", False),  # NaN equals NaN
            (2, 0.0, None, None),  # -0.0 equals 0.0
            (3, inf, "NULL", True),
            (4, 1.0, None, False),  # NaN -> 1.0, 'a' -> NULL, NULL -> false
            (5, 1.0, "", False),  # ' ' -> ''
            (6, inf, "x", True),  # -inf -> inf
        ]
    )

    result = diff_tables(project, a.name, b.name, "id")

    assert {c.key: c.columns for c in result.changed} == {
        4: {"x": ("NaN", "1.0"), "s": ("a", None), "f": (None, "false")},
        5: {"s": (" ", "")},
        6: {"x": ("-Infinity", "Infinity")},
    }


LOADED_AS_TEXT = {
    # column -> (type on A per engine, what the source had; B holds text or JSON)
    "n": {"postgres": "NUMERIC(20,5)", "duckdb": "DECIMAL(20,5)"},
    "i": {"postgres": "BIGINT", "duckdb": "BIGINT"},
    "y": {"postgres": "BYTEA", "duckdb": "BLOB"},
    "l": {"postgres": "INTEGER[]", "duckdb": "INTEGER[]"},
    "m": {"postgres": "INTEGER[][]", "duckdb": "INTEGER[][]"},
}


def test_a_column_loaded_as_text_or_json_compares_with_its_source(
    pair: tuple[Project, Side, Side],
) -> None:
    """A column_types override loads what the warehouse cannot hold as text (or an array
    of arrays as JSON): the diff compares it with the source column by value."""
    project, a, b = pair
    a.create({c: types[a.dialect] for c, types in LOADED_AS_TEXT.items()})
    text = "VARCHAR" if b.dialect == "duckdb" else "TEXT"
    json_type = "JSON" if b.dialect == "duckdb" else "JSONB"
    b.create({c: json_type if c == "m" else text for c in LOADED_AS_TEXT})
    a.insert(
        [
            (1, Decimal("1.5"), 12, "abé".encode(), [1, 2], [[1, 2], [3, 4]]),
            (2, Decimal("-0.25"), -3, b"", [], [[5]]),
            (3, Decimal("3"), 7, b"x", [1, None], [[1]]),
            (4, None, None, None, None, None),
        ]
    )
    b.insert(
        [
            (1, "1.5", "12", "abé", "{1,2}", "[[1, 2], [3, 4]]"),  # trailing zeros aside
            (2, "-0.250", "-3", "", "{}", "[[5]]"),
            (3, "3.00001", "7.0", "y", "{1}", "[[2]]"),
            (4, None, None, None, None, None),
        ]
    )

    result = diff_tables(project, a.name, b.name, "id")

    assert result.not_compared == {}
    assert {c.key: c.columns for c in result.changed} == {
        3: {
            "n": ("3.00000", "3.00001"),
            "y": ("\\x78", "y"),
            "l": ("{1,NULL}", "{1}"),
            "m": ("[[1]]", "[[2]]"),
        }
    }


def test_mysql_json_against_jsonb_is_named_not_compared_and_the_rest_compared(
    tmp_path: Path, mysql_url: str, pg_url: str, unique_name: str
) -> None:
    """jsonb keeps no text as written and MySQL cannot print jsonb's: rather than report
    equal documents as changed, the diff says it leaves the column out."""
    import psycopg

    write_project(
        tmp_path,
        {"shop": {"type": "mysql", "url": mysql_url}},
        warehouse={"type": "postgres", "url": pg_url, "raw_schema": unique_name},
    )
    mysql = Side("mysql", f"shop.{unique_name}", None, "test")
    mysql.create({"doc": "JSON", "n": "INT"})
    mysql.execute(f"""INSERT INTO {mysql.ref} VALUES (1, '{{"b": 1, "a": 2}}', 1), (2, '[]', 2)""")
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA "{unique_name}"')
        db.execute(f'CREATE TABLE "{unique_name}".t (id BIGINT PRIMARY KEY, doc JSONB, n INT)')
        db.execute(
            f"""INSERT INTO "{unique_name}".t VALUES (1, '{{"b": 1, "a": 2}}', 1), (2, '[]', 3)"""
        )
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "gristmill",
                "diff",
                mysql.name,
                "t",
                "-k",
                "id",
                "-p",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
            timeout=120,
        )
        report = subprocess.run(
            [
                sys.executable,
                "-m",
                "gristmill",
                "diff",
                mysql.name,
                "t",
                "-k",
                "id",
                "--json",
                "-p",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        mysql.execute(f"DROP TABLE {mysql.ref}")
        with psycopg.connect(pg_url, autocommit=True) as db:
            db.execute(f'DROP SCHEMA "{unique_name}" CASCADE')

    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "not compared: doc: JSON against MySQL is compared as stored" in " ".join(
        run.stdout.split()
    )
    found = json.loads(report.stdout)
    assert found["columns"] == ["n"]
    assert "a jsonb column keeps no text as written" in found["not_compared"]["doc"]
    assert found["changed"] == [{"key": 2, "columns": {"n": {"a": 2, "b": 3}}}]


def test_float_tolerance(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    for side in (a, b):
        side.create({"x": "DOUBLE" if side.dialect == "duckdb" else "DOUBLE PRECISION"})
    base = [(i, 1000.0 + i / 7) for i in range(1, 2001)]
    a.insert(base)
    noisy = [(i, x * (1 + 4e-13 * (-1) ** i)) for i, x in base]  # 4e-13 relative everywhere
    noisy[99] = (100, base[99][1] * (1 + 2e-9))
    b.insert(noisy)

    exact = diff_tables(project, a.name, b.name, "id")
    loose = diff_tables(project, a.name, b.name, "id", float_tolerance=1e-12)
    looser = diff_tables(project, a.name, b.name, "id", float_tolerance=1e-8)

    assert len(exact.changed) == 2000  # the default is exact: every value moved
    assert [c.key for c in loose.changed] == [100]
    assert loose.to_dict()["float_tolerance"] == 1e-12
    assert looser.equal
    # Within the tolerance the codes agree: the noise is not even compared row by row.
    assert looser.rows_moved < 200


@pytest.mark.parametrize("tolerance", [-1e-9, math.nan, 0.5, math.inf])
def test_a_float_tolerance_out_of_bounds_is_refused(tmp_path: Path, tolerance: float) -> None:
    warehouse = DuckDBWarehouse(WarehouseConfig(path=str(tmp_path / "w.duckdb")), tmp_path)
    warehouse.execute("CREATE TABLE t AS SELECT 1 AS id, 0.5::DOUBLE AS x")
    side = DuckDBEndpoint("t", warehouse, "main", "t")
    with pytest.raises(ConfigError, match=r"float tolerance .*between 0 \(exact, the default\)"):
        diff(side, side, "id", float_tolerance=tolerance)
    warehouse.close()


FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 5e-324])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pairs=st.lists(
        st.tuples(FLOATS, FLOATS, st.integers(-3, 3), st.booleans()), min_size=1, max_size=60
    ),
    tolerance=st.sampled_from([0.0, 1e-15, 1e-12, 1e-9, 1e-3]),
)
def test_float_tolerance_matches_a_brute_force_comparison(
    tmp_path: Path, pairs: list[tuple[float, float, int, bool]], tolerance: float
) -> None:
    """Whatever the values, the diff reports exactly the rows a value-by-value comparison
    under the tolerance finds, near the tolerance's edge too."""
    from gristmill.checks.diff.normalise import floats_equal

    rows_a, rows_b = [], []
    for i, (x, y, steps, near) in enumerate(pairs):
        if near and math.isfinite(x):  # just inside or outside the tolerance of x
            y = x * (1 + steps * tolerance / 2) if tolerance else math.nextafter(x, steps)
        rows_a.append((i, x))
        rows_b.append((i, y))
    warehouse = DuckDBWarehouse(WarehouseConfig(path=str(tmp_path / "f.duckdb")), tmp_path)
    try:
        for name, rows in (("a", rows_a), ("b", rows_b)):
            warehouse.execute(f"CREATE OR REPLACE TABLE {name} (id INTEGER, x DOUBLE)")
            values = ", ".join(f"({i}, CAST('{x!r}' AS DOUBLE))" for i, x in rows)
            warehouse.execute(f"INSERT INTO {name} VALUES {values}")
        result = diff(
            DuckDBEndpoint("a", warehouse, "main", "a"),
            DuckDBEndpoint("b", warehouse, "main", "b"),
            "id",
            float_tolerance=tolerance,
        )
    finally:
        warehouse.close()
    expected = [
        i
        for (i, x), (_, y) in zip(rows_a, rows_b, strict=True)
        if not floats_equal(x, y, tolerance)
    ]
    assert [c.key for c in result.changed] == expected


def test_cli_float_tolerance_and_iso_values_under_another_time_zone(tmp_path: Path) -> None:
    import duckdb

    write_project(tmp_path, {}, warehouse={"type": "duckdb", "path": str(tmp_path / "wh.duckdb")})
    with duckdb.connect(str(tmp_path / "wh.duckdb")) as db:
        db.execute("SET TimeZone = 'UTC'")
        db.execute("CREATE SCHEMA raw")
        db.execute(
            "CREATE TABLE raw.a AS SELECT i AS id, 1.0 + i / 3 AS x,"
            " TIMESTAMPTZ '2024-03-31 00:30:00+00' + to_hours(i) AS \"at\" FROM range(100) t(i)"
        )
        db.execute('CREATE TABLE raw.b AS SELECT id, x * (1 + 1e-12) AS x, "at" FROM raw.a')
        db.execute('UPDATE raw.b SET "at" = "at" + INTERVAL 1 SECOND WHERE id = 2')

    def gristmill(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "gristmill",
                "diff",
                "a",
                "b",
                "-k",
                "id",
                "-p",
                str(tmp_path),
                *args,
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200", "TZ": "Europe/Berlin"},
            timeout=120,
        )

    exact = json.loads(gristmill("--json").stdout)
    assert len(exact["changed"]) == 100
    loose = gristmill("--json", "--float-tolerance", "1e-9")
    assert loose.returncode == 1
    assert json.loads(loose.stdout)["changed"] == [
        {
            "key": 2,
            "columns": {"at": {"a": "2024-03-31T02:30:00+00:00", "b": "2024-03-31T02:30:01+00:00"}},
        }
    ]
    table = gristmill("--float-tolerance", "1e-9")
    assert "2024-03-31T02:30:00+00:00" in table.stdout
    refused = gristmill("--float-tolerance", "-1")
    assert refused.returncode != 0 and "float tolerance" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_time_zone_of_the_process_changes_nothing(
    pg_url: str, tmp_path: Path, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import psycopg

    from tests.helpers import run_ingest

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        with psycopg.connect(pg_url, autocommit=True) as db:
            db.execute(f'CREATE SCHEMA "{unique_name}"')
            db.execute(
                f'CREATE TABLE "{unique_name}".t (id INT PRIMARY KEY, at TIMESTAMPTZ,'
                " ats TIMESTAMPTZ[], naive TIMESTAMP, day DATE)"
            )
            db.execute(
                f'INSERT INTO "{unique_name}".t SELECT g,'
                " TIMESTAMPTZ '2024-03-31 01:30:00+02' + g * INTERVAL '1 hour',"
                " ARRAY[TIMESTAMPTZ '2024-10-27 02:30:00+01', NULL],"
                " TIMESTAMP '2024-03-31 02:30:00' + g * INTERVAL '1 hour', DATE '2024-03-31' + g"
                " FROM generate_series(1, 50) g"
            )
        sources = {"app": {"type": "postgres", "url": pg_url, "schema": unique_name}}
        write_project(
            tmp_path, sources, warehouse={"type": "duckdb", "path": str(tmp_path / "w.duckdb")}
        )
        assert run_ingest(tmp_path).ok
        with Project.load(tmp_path) as project:
            clean = diff_tables(project, "app.t", "t", "id")
            with psycopg.connect(pg_url, autocommit=True) as db:
                db.execute(
                    f"UPDATE \"{unique_name}\".t SET at = at + INTERVAL '1 microsecond' WHERE id = 2"
                )
            changed = diff_tables(project, "app.t", "t", "id")
    finally:
        monkeypatch.undo()
        time.tzset()
        with psycopg.connect(pg_url, autocommit=True) as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')

    assert clean.equal, clean.to_dict()
    assert [(c.key, c.columns) for c in changed.changed] == [
        (2, {"at": ("2024-03-31T01:30:00.000001+00:00", "2024-03-31T01:30:00+00:00")})
    ]


def test_infinite_dates_and_timestamps(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    rows = [
        ("infinity", "infinity", "infinity"),
        ("-infinity", "-infinity", "-infinity"),
        ("2024-01-01", "2024-01-01", "2024-01-01 00:00:00+00"),
    ]
    for side, day in ((a, "2024-01-01"), (b, "infinity")):
        side.create_table({"k": "TIMESTAMP", "d": "DATE", "tz": "TIMESTAMPTZ"}, ["k"])
        values = [(k, d if k != "2024-01-01" else day, tz) for k, d, tz in rows]
        side.execute(
            f"INSERT INTO {side.ref} VALUES "
            + ", ".join(
                f"(CAST('{k}' AS TIMESTAMP), CAST('{d}' AS DATE), CAST('{tz}' AS TIMESTAMPTZ))"
                for k, d, tz in values
            )
        )

    result = diff_tables(project, a.name, b.name, "k")

    assert not result.missing_in_a and not result.missing_in_b
    assert [(c.key, c.columns) for c in result.changed] == [
        ("2024-01-01T00:00:00", {"d": ("2024-01-01", "infinity")})
    ]


def test_numeric_nan(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    if a.dialect != "postgres" or b.dialect != "postgres":
        pytest.skip("only PostgreSQL's numeric holds NaN")
    for side in (a, b):
        side.create({"n": "NUMERIC(12,2)", "wide": "NUMERIC(30,2)"})
    a.insert([(1, Decimal("NaN"), Decimal("NaN")), (2, Decimal(1), Decimal(1))])
    b.insert([(1, Decimal("NaN"), Decimal("NaN")), (2, Decimal("NaN"), Decimal(2))])

    result = diff_tables(project, a.name, b.name, "id")

    assert [(c.key, c.columns) for c in result.changed] == [
        (2, {"n": ("1.00", "NaN"), "wide": ("1.00", "2.00")})
    ]


def test_decimal_arrays_of_different_scales(pair: tuple[Project, Side, Side]) -> None:
    """numeric(6,2)[] against numeric[] (DuckDB: DECIMAL(38,9)[]): 1.50 is 1.500000000."""
    project, a, b = pair
    types = {
        "postgres": ("NUMERIC(6,2)[]", "NUMERIC[]"),
        "duckdb": ("DECIMAL(6,2)[]", "DECIMAL(38,9)[]"),
    }
    for side, index, last in ((a, 0, "2.00"), (b, 1, "2.010")):
        array = types[side.dialect][index]
        side.create_table({"id": "INTEGER", "ns": array}, ["id"])
        rows = [(1, ["1.50", "NULL"]), (2, []), (3, [last])]
        if side.dialect == "postgres":
            values = [f"({i}, CAST('{{{','.join(v)}}}' AS {array}))" for i, v in rows]
        else:
            values = [f"({i}, CAST([{', '.join(v)}] AS {array}))" for i, v in rows]
        side.execute(f"INSERT INTO {side.ref} VALUES {', '.join(values)}")

    result = diff_tables(project, a.name, b.name, "id")

    assert [(c.key, list(c.columns)) for c in result.changed] == [(3, ["ns"])]
