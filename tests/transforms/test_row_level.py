"""Row-level transforms: which SELECTs can run on each micro-batch, and the SQL each engine
gets when one does (golden)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from gristmill.transforms.definition import Transform, TransformOptions
from gristmill.transforms.row_level import RowTransform, row_level_problem, run_on_batch


def transform(sql: str) -> Transform:
    return Transform(
        "clean", "sql", Path("transforms/clean.sql"), TransformOptions(), sql=sql, inputs=["raw.tx"]
    )


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("SELECT id, CAST(amount AS DOUBLE) AS amount FROM raw.tx WHERE amount > 0", None),
        ("SELECT t.id, upper(t.kind) AS k FROM raw.tx AS t WHERE t.amount > 0", None),
        ("SELECT * FROM raw.tx", None),
        ("SELECT user_id, sum(amount) FROM raw.tx GROUP BY 1", "GROUP BY"),
        ("SELECT count(*) FROM raw.tx", "aggregates (COUNT(*))"),
        ("SELECT a.id FROM raw.tx AS a JOIN raw.users AS b ON a.user_id = b.id", "joins raw.users"),
        ("SELECT id, row_number() OVER (PARTITION BY user_id) FROM raw.tx", "window function"),
        ("SELECT DISTINCT id FROM raw.tx", "DISTINCT"),
        ("SELECT id FROM raw.tx ORDER BY id LIMIT 5", "ORDER BY"),
        ("SELECT id FROM raw.tx WHERE ts > now() - INTERVAL 1 DAY", "depends on when it runs"),
        ("SELECT id, random() AS r FROM raw.tx", "depends on when it runs"),
        ("SELECT id FROM raw.tx UNION ALL SELECT id FROM raw.tx", "combines queries"),
        ("WITH x AS (SELECT * FROM raw.tx) SELECT * FROM x", "WITH clause"),
        ("SELECT id, (SELECT max(id) FROM raw.tx) FROM raw.tx", "subquery"),
        ("SELECT * FROM read_parquet('x.parquet')", "reads no table"),
    ],
)
def test_what_runs_per_batch(sql: str, problem: str | None, dialect: str) -> None:
    found = row_level_problem(transform(sql), dialect)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found, found


def test_the_sql_each_engine_gets() -> None:
    sql = "SELECT t.id, upper(t.kind) AS k FROM raw.tx AS t WHERE t.amount > 0"
    rt = RowTransform(transform(sql), ("raw", "tx"), ("analytics", "clean"), "postgres", False)
    assert rt.over("SELECT * FROM raw.tx WHERE id IN (1, 2)") == (
        "SELECT t.id, UPPER(t.kind) AS k FROM (SELECT * FROM raw.tx WHERE id IN (1, 2)) AS t"
        " WHERE t.amount > 0"
    )
    assert rt.with_row() == (
        'SELECT t.id, UPPER(t.kind) AS k, t."_gm_row" FROM _gm_batch AS t WHERE t.amount > 0'
    )
    assert rt.keeps_columns(["id", "kind"]) == ["kind"]
    star = RowTransform(
        transform("SELECT * FROM raw.tx WHERE amount > 0"),
        ("raw", "tx"),
        ("a", "c"),
        "duckdb",
        True,
    )
    assert star.with_row() == "SELECT * FROM _gm_batch AS tx WHERE amount > 0"
    assert star.keeps_columns(["id"]) == []


@pytest.mark.parametrize("rows", [0, 1, 2, 1023, 1024, 1025])
def test_a_batch_gives_the_rows_the_whole_table_gives(rows: int) -> None:
    """Against the reference: the same SELECT over the whole table in DuckDB."""
    sql = "SELECT t.id, CAST(t.amount * 100 AS BIGINT) AS cents FROM raw.tx AS t WHERE t.amount > 5"
    rt = RowTransform(transform(sql), ("raw", "tx"), ("analytics", "clean"), "duckdb", False)
    data = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "amount": pa.array([(i * 7919) % 13 + 0.25 for i in range(rows)], pa.float64()),
            "_gm_row": pa.array(range(rows), pa.int64()),
        }
    )
    db = duckdb.connect()
    made = run_on_batch(rt, data, db)
    db.execute("CREATE SCHEMA raw")
    db.register("_data", data)
    db.execute("CREATE TABLE raw.tx AS SELECT * FROM _data")
    expected = db.sql(sql + " ORDER BY id").fetchall()
    found = sorted(
        zip(made.column("id").to_pylist(), made.column("cents").to_pylist(), strict=True)
    )
    assert found == expected
    assert made.column("_gm_row").to_pylist() == made.column("id").to_pylist()
