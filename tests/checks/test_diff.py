"""`gristmill diff`: reconciliation between two tables, in the same or different databases.

Every test runs over endpoint pairs on real servers: PostgreSQL source ↔ DuckDB warehouse,
DuckDB ↔ DuckDB (two warehouse tables), PostgreSQL source ↔ PostgreSQL warehouse.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gristmill.checks.diff import diff_tables
from gristmill.errors import NotFoundError
from gristmill.project import Project
from tests.checks.conftest import Side
from tests.helpers import write_project

# name: (type on side A, type on side B) per dialect; B's decimal is wider, as ingest makes it.
COLUMNS: dict[str, dict[str, tuple[str, str]]] = {
    "postgres": {
        "amount": ("NUMERIC(12,2)", "NUMERIC(38,9)"),
        "ts": ("TIMESTAMPTZ", "TIMESTAMPTZ"),
        "naive": ("TIMESTAMP", "TIMESTAMP"),
        "day": ("DATE", "DATE"),
        "flag": ("BOOLEAN", "BOOLEAN"),
        "name": ("TEXT", "VARCHAR(200)"),
        "payload": ("BYTEA", "BYTEA"),
        "ratio": ("DOUBLE PRECISION", "DOUBLE PRECISION"),
        "uid": ("UUID", "UUID"),
    },
    "duckdb": {
        "amount": ("DECIMAL(12,2)", "DECIMAL(38,9)"),
        "ts": ("TIMESTAMPTZ", "TIMESTAMPTZ"),
        "naive": ("TIMESTAMP", "TIMESTAMP"),
        "day": ("DATE", "DATE"),
        "flag": ("BOOLEAN", "BOOLEAN"),
        "name": ("VARCHAR", "VARCHAR"),
        "payload": ("BLOB", "BLOB"),
        "ratio": ("DOUBLE", "DOUBLE"),
        "uid": ("UUID", "UUID"),
    },
}
CEST = timezone(timedelta(hours=2))


def typed_row(i: int) -> tuple[Any, ...]:
    return (
        i,
        Decimal(i) / 4 + Decimal("12.50"),
        datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=CEST) + timedelta(seconds=i),
        datetime(2024, 3, 1, 12, 0, 0, 654321) + timedelta(minutes=i),
        date(2024, 1, 1) + timedelta(days=i),
        i % 2 == 0,
        ["", None, "héllo ✓ 日本", "plain"][i % 4],
        [b"\x00\xffab", None, b""][i % 3],
        [1 / 3, 0.1, -1e-5, None][i % 4],
        uuid.UUID(int=i * 7919),
    )


def make(side: Side, index: int, rows: Sequence[Sequence[Any]]) -> None:
    side.create({c: types[index] for c, types in COLUMNS[side.dialect].items()})
    side.insert(rows)


def test_equal_values_of_every_type_hash_the_same(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    rows = [typed_row(i) for i in range(1, 41)]
    make(a, 0, rows)
    make(b, 1, rows)

    result = diff_tables(project, a.name, b.name, "id")

    assert result.equal, result.to_dict()
    assert (result.rows_a, result.rows_b) == (40, 40)
    assert result.columns == list(COLUMNS["postgres"])


def test_each_changed_value_is_named_with_its_column(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    rows = [typed_row(i) for i in range(1, 41)]
    make(a, 0, rows)
    changed = [list(r) for r in rows]
    changed[0][6] = ""  # name: NULL -> '' (distinct)
    changed[1][1] = Decimal("13.01")  # amount: 13.00 -> 13.01
    changed[3][6] = None  # name: '' -> NULL
    changed[4][2] += timedelta(microseconds=1)  # ts
    changed[5][3] += timedelta(microseconds=1)  # naive
    changed[6][4] += timedelta(days=1)  # day
    changed[7][5] = not changed[7][5]  # flag
    changed[8][7] = b"\x00\xffaB"  # payload
    changed[9][8] = 0.1 + 1e-9  # ratio
    changed[10][9] = uuid.UUID(int=1)  # uid
    make(b, 1, [tuple(r) for r in changed])

    result = diff_tables(project, a.name, b.name, "id")

    found = {c.key: sorted(c.columns) for c in result.changed}
    assert found == {
        1: ["name"],
        2: ["amount"],
        4: ["name"],
        5: ["ts"],
        6: ["naive"],
        7: ["day"],
        8: ["flag"],
        9: ["payload"],
        10: ["ratio"],
        11: ["uid"],
    }
    assert result.changed[0].columns["name"] == (None, "")
    assert result.changed[1].columns["amount"] == ("13.00", "13.010000000")  # each at its scale
    assert not result.missing_in_a and not result.missing_in_b


def test_missing_extra_and_changed_rows_at_range_edges(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    columns = {"v": "TEXT" if a.dialect == "postgres" else "VARCHAR"}
    a.create(columns)
    b.create({"v": "TEXT" if b.dialect == "postgres" else "VARCHAR"})
    rows = [(i, f"v{i}") for i in range(1, 5001)]
    a.insert([(0, "only a"), *rows[:-1]])  # lacks 5000, has an extra 0 below the range
    b.insert([*rows[1:2499], (2500, "changed"), *rows[2500:], (5001, "only b")])  # lacks 1

    result = diff_tables(project, a.name, b.name, "id", columns=["v"])

    assert result.missing_in_b == [0, 1]
    assert result.missing_in_a == [5000, 5001]
    assert [(c.key, c.columns) for c in result.changed] == [(2500, {"v": ("v2500", "changed")})]
    assert result.levels >= 2  # bisected, not fetched whole
    assert result.rows_moved < 2 * 5000


def test_empty_tables_and_one_empty_side(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    a.create({"v": "INTEGER"})
    b.create({"v": "INTEGER"})

    empty = diff_tables(project, a.name, b.name, "id")
    assert empty.equal and empty.rows_a == empty.rows_b == 0

    b.insert([(i, i) for i in range(3000)])
    one_sided = diff_tables(project, a.name, b.name, "id")
    assert one_sided.missing_in_a == list(range(3000))
    assert not one_sided.missing_in_b and not one_sided.changed
    assert one_sided.rows_moved < 3000 + 200  # the keys, and a few checksums


def test_text_keys(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    text = {"postgres": "TEXT", "duckdb": "VARCHAR"}
    a.create({"v": "INTEGER"}, key_type=text[a.dialect])
    b.create({"v": "INTEGER"}, key_type=text[b.dialect])
    keys = [f"k{i:05d}" for i in range(2000)] + ["Zürich", "zebra", "Émile", "日本", "a b", ""]
    a.insert([(k, i) for i, k in enumerate(keys) if k != "Émile"])
    b.insert([(k, i + (k == "k01000")) for i, k in enumerate(keys) if k != "日本"] + [("k9", 1)])

    result = diff_tables(project, a.name, b.name, "id")

    assert result.missing_in_a == ["k9", "Émile"]
    assert result.missing_in_b == ["日本"]
    assert [c.key for c in result.changed] == ["k01000"]


def test_keys_of_different_types_still_compare(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    a.create({"v": "INTEGER"}, key_type="INTEGER")
    b.create(
        {"v": "BIGINT"}, key_type="NUMERIC(18,0)" if b.dialect == "postgres" else "DECIMAL(18,0)"
    )
    a.insert([(i, i) for i in range(1, 1001)])
    b.insert([(i, i + (i == 500)) for i in range(2, 1001)])

    result = diff_tables(project, a.name, b.name, "id")

    assert result.missing_in_b == [1]
    assert [(c.key, c.columns) for c in result.changed] == [(500, {"v": (500, 501)})]


def test_rows_moved_stay_small_on_a_big_table(
    pg_url: str, tmp_path: Path, unique_name: str
) -> None:
    import psycopg

    rows = 200_000
    write_project(
        tmp_path,
        {"app": {"type": "postgres", "url": pg_url, "schema": unique_name}},
        warehouse={"type": "duckdb", "path": str(tmp_path / "wh.duckdb")},
    )
    select = "amount, 'm' || (g %% 977), g %% 3 = 0"
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute(f'CREATE SCHEMA "{unique_name}"')
        db.execute(
            f'CREATE TABLE "{unique_name}".tx (id BIGINT PRIMARY KEY, amount NUMERIC(12,2),'
            " merchant TEXT, flag BOOLEAN)"
        )
        db.execute(
            f'INSERT INTO "{unique_name}".tx SELECT g, {select} FROM generate_series(1, %s) g,'
            " LATERAL (SELECT (g %% 10007) / 100.0 AS amount) x",
            [rows],
        )
        db.execute(f"UPDATE \"{unique_name}\".tx SET merchant = 'changed' WHERE id = 100000")
        db.execute(f'DELETE FROM "{unique_name}".tx WHERE id = 7')
        db.execute(f"INSERT INTO \"{unique_name}\".tx VALUES (250001, 1, 'x', true)")
    try:
        with Project.load(tmp_path) as project:
            wh = project.warehouse
            wh.execute("CREATE SCHEMA raw")
            wh.execute(
                "CREATE TABLE raw.tx AS SELECT g AS id, CAST((g % 10007) / 100.0 AS DECIMAL(38,9))"
                f" AS amount, 'm' || (g % 977) AS merchant, g % 3 = 0 AS flag FROM range(1, {rows + 1}) t(g)"
            )
            result = diff_tables(project, "app.tx", "raw.tx", "id")
    finally:
        with psycopg.connect(pg_url, autocommit=True) as db:
            db.execute(f'DROP SCHEMA IF EXISTS "{unique_name}" CASCADE')

    assert result.missing_in_a == [7]
    assert result.missing_in_b == [250001]
    assert [(c.key, list(c.columns)) for c in result.changed] == [(100000, ["merchant"])]
    assert result.rows_moved < rows // 100, result.to_dict()["stats"]


def test_unknown_table_or_column_names_the_closest(pair: tuple[Project, Side, Side]) -> None:
    project, a, b = pair
    a.create({"amount": "INTEGER"})
    b.create({"amount": "INTEGER"})

    with pytest.raises(NotFoundError, match=r"no table .*Did you mean"):
        diff_tables(project, a.name + "x", b.name, "id")
    with pytest.raises(NotFoundError, match=r"no column 'idd'.*Did you mean 'id'"):
        diff_tables(project, a.name, b.name, "idd")
    with pytest.raises(NotFoundError, match=r"no column 'amout'.*Did you mean 'amount'"):
        diff_tables(project, a.name, b.name, "id", columns=["amout"])


def test_mysql_source_against_duckdb(mysql_url: str, tmp_path: Path, unique_name: str) -> None:
    import pymysql

    write_project(
        tmp_path,
        {"shop": {"type": "mysql", "url": mysql_url}},
        warehouse={"type": "duckdb", "path": str(tmp_path / "wh.duckdb")},
    )
    rows = [
        (
            i,
            Decimal(i) / 4,
            datetime(2024, 1, 1, 0, 0, 1, 5) + timedelta(hours=i),
            ["x", "", None][i % 3],
            i % 2,
        )
        for i in range(1, 801)
    ]
    db = pymysql.connect(host="127.0.0.1", user="root", database="test", autocommit=True)
    try:
        with db.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE `{unique_name}` (id INT PRIMARY KEY, amount DECIMAL(12,2),"
                " at_ DATETIME(6), note VARCHAR(20), ok TINYINT(1))"
            )
            cursor.executemany(f"INSERT INTO `{unique_name}` VALUES (%s, %s, %s, %s, %s)", rows)
        with Project.load(tmp_path) as project:
            wh = project.warehouse
            wh.execute("CREATE SCHEMA raw")
            wh.execute(
                f"CREATE TABLE raw.{unique_name} (id BIGINT, amount DECIMAL(38,9), at_ TIMESTAMP,"
                " note VARCHAR, ok BOOLEAN)"
            )
            changed = [(r[0], r[1] + (r[0] == 400), r[2], r[3], bool(r[4])) for r in rows[1:]]
            wh.append("raw", unique_name, [_batch(["id", "amount", "at_", "note", "ok"], changed)])
            result = diff_tables(project, f"shop.{unique_name}", f"raw.{unique_name}", "id")
    finally:
        with db.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS `{unique_name}`")
        db.close()

    assert result.missing_in_b == [1]
    assert [(c.key, c.columns) for c in result.changed] == [
        (400, {"amount": ("100.00", "101.000000000")})  # each side's value at its own scale
    ]


def test_cli_lists_differences_and_exits_1(pg_url: str, tmp_path: Path, unique_name: str) -> None:
    import duckdb

    write_project(tmp_path, {}, warehouse={"type": "duckdb", "path": str(tmp_path / "wh.duckdb")})
    with duckdb.connect(str(tmp_path / "wh.duckdb")) as db:
        db.execute("CREATE SCHEMA raw")
        db.execute("CREATE TABLE raw.a AS SELECT range AS id, range * 2 AS v FROM range(1000)")
        db.execute("CREATE TABLE raw.b AS SELECT * FROM raw.a WHERE id <> 3")
        db.execute("UPDATE raw.b SET v = -1 WHERE id = 10")
        db.execute("CREATE TABLE raw.c AS SELECT * FROM raw.a")

    def gristmill(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gristmill", "diff", *args, "-p", str(tmp_path)],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
            timeout=120,
        )

    differ = gristmill("a", "b", "--key", "id", "--json")
    assert differ.returncode == 1, differ.stderr
    out = json.loads(differ.stdout)
    assert out["missing_in_b"] == [3] and out["missing_in_a"] == []
    assert out["changed"] == [{"key": 10, "columns": {"v": {"a": 20, "b": -1}}}]

    table = gristmill("raw.a", "raw.b", "--key", "id")
    assert table.returncode == 1
    assert "missing in raw.b" in table.stdout and "changed rows" in table.stdout

    same = gristmill("a", "c", "-k", "id")
    assert same.returncode == 0 and "equal" in same.stdout

    missing = gristmill("a", "nope", "-k", "id")
    assert missing.returncode == 1 and "no table 'raw.nope'" in missing.stderr


def _batch(names: list[str], rows: Sequence[Sequence[Any]]) -> Any:
    import pyarrow as pa

    return pa.record_batch([pa.array(list(col)) for col in zip(*rows, strict=True)], names=names)


def test_values_swapped_between_rows_and_negative_keys_are_found(tmp_path: Path) -> None:
    from gristmill.checks.diff import diff
    from gristmill.checks.diff.duckdb import DuckDBEndpoint
    from gristmill.config import WarehouseConfig
    from gristmill.warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(WarehouseConfig(path=str(tmp_path / "w.duckdb")), tmp_path)
    rows = ", ".join(f"({k}, {k * 10}, 'v{k}')" for k in range(-3000, 3000))
    with warehouse.transaction() as tx:
        tx.execute("CREATE TABLE a (id BIGINT, n BIGINT, s VARCHAR)")
        tx.execute(f"INSERT INTO a VALUES {rows}")
        tx.execute("CREATE TABLE b AS SELECT * FROM a")
        # Two rows trade values: every column sum stays the same.
        tx.execute(
            "UPDATE b SET n = CASE id WHEN -1 THEN 20 WHEN 2 THEN -10 END WHERE id IN (-1, 2)"
        )
        tx.execute(
            "UPDATE b SET s = CASE id WHEN -5 THEN 'v7' WHEN 7 THEN 'v-5' END WHERE id IN (-5, 7)"
        )
    result = diff(
        DuckDBEndpoint("a", warehouse, "main", "a"),
        DuckDBEndpoint("b", warehouse, "main", "b"),
        "id",
    )
    assert sorted(c.key for c in result.changed) == [-5, -1, 2, 7]
    warehouse.close()
